#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/unique_fd.h"

namespace weir::tls {

// Makes SIGPIPE harmless in the test process: OpenSSL writes with write(2), and a peer that
// has gone must cost the writer an EPIPE, not the whole test binary.
void ignoreSigpipe();

// A TLS backend for tests: one thread, one listener on 127.0.0.1 (port picked by the kernel),
// one connection at a time with OpenSSL's blocking calls. Each connection gets a handshake;
// when it succeeds the server writes `greeting`, sends close_notify and closes. What it saw
// of each connection is queued for next().
class TlsTestServer {
public:
  struct Options {
    std::string cert_file;       // PEM: the leaf, then its chain
    std::string key_file;
    std::string client_ca_file;  // set: a client certificate signed by it is required
    int max_version = 0;         // e.g. TLS1_2_VERSION for a 1.2-only server; 0: 1.3
    std::vector<std::string> alpn;  // protocols it accepts, in its preference order
    std::string greeting = "hello\n";
  };

  struct Seen {
    bool handshake_ok = false;
    std::string error;      // OpenSSL's reasons when the handshake failed
    std::string sni;        // the server name the client sent, "" if none
    std::string alpn;       // the protocol selected, "" if none
    std::string client_cn;  // CN of the client's certificate, "" if it sent none
    bool resumed = false;
  };

  // Binds, listens and starts the thread. Throws std::runtime_error on a bad cert or key.
  explicit TlsTestServer(Options options);
  ~TlsTestServer();
  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;

  uint16_t port() const { return port_; }
  // What the server saw of the next connection, once it is done with it; nullopt if none
  // ended within `timeout`.
  std::optional<Seen> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));

private:
  void serve();
  Seen handle(int fd);

  Options options_;
  std::string alpn_wire_;
  void* ctx_ = nullptr;  // SSL_CTX*, kept out of this header
  net::UniqueFd listener_;
  net::UniqueFd stop_;  // eventfd: written by the destructor
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Seen> seen_;
  std::thread thread_;
};

}  // namespace weir::tls
