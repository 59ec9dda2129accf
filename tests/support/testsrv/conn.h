#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/header.h"
#include "support/deadline.h"
#include "support/fd.h"
#include "support/prng_stream.h"
#include "support/sock_addr.h"

namespace weir::testsrv {

class Conn;
class TlsStream;
// Frees a TlsStream (defined in tls_stream.cc, so this header needs no OpenSSL).
struct TlsStreamDeleter {
  void operator()(TlsStream* stream) const;
};

// What a TLS handshake settled, as the client presented it. Empty strings for absent values.
struct TlsInfo {
  std::string version;       // "TLSv1.2", "TLSv1.3"
  std::string sni;           // server_name sent by the client
  std::string alpn;          // protocol we selected
  std::string alpn_offered;  // the client's list, comma-separated
  std::string client_cert;   // subject CN of the client certificate
  bool resumed = false;
};

// What the PROXY protocol header a connection started with said (--proxy-protocol).
struct ProxyInfo {
  int version = 0;  // 1 or 2
  proxy::Header header;
};

// What a mode does with a connection. The server owns the socket and all I/O; a protocol
// only reacts to events and queues output through Conn.
class Protocol {
public:
  virtual ~Protocol() = default;
  // Right after accept; with --proxy-protocol, once the header is read (conn.proxy() is set);
  // over TLS, once the handshake is done (conn.tls() is set).
  virtual void onOpen(Conn&) {}
  // Bytes arrived from the client. Not called once the connection is finishing.
  virtual void onData(Conn& conn, std::string_view data) = 0;
  // The client shut down its sending side (read returned 0).
  virtual void onEof(Conn& conn) = 0;
};

// One accepted client connection: the socket, queued output and the close state machine.
//
// Output is a byte queue followed by an optional PRNG stream segment that the server turns
// into bytes lazily, so a 64 MiB `source` reply costs no more memory than a small one.
//
// Closing is graceful: finish() lets queued output drain, then shutdown(SHUT_WR), then reads
// and discards until the client closes (bounded by a linger timeout) before close(). Closing
// a socket with unread input sends RST, which can destroy a reply still in flight; lingering
// avoids that.
class Conn {
public:
  enum class State {
    Open,       // normal operation
    Finishing,  // flushing output; then shut down writes
    Lingering,  // writes shut down; waiting for the client's EOF
    Closed,     // the server closes and frees it
  };

  Conn(uint64_t id, test::Fd fd, test::SockAddr peer) : id_(id), fd_(std::move(fd)), peer_(peer) {}

  uint64_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  // The client: the socket's peer, or with --proxy-protocol the header's source (unless local).
  const test::SockAddr& peer() const { return peer_; }
  State state() const { return state_; }
  bool peerEof() const { return peer_eof_; }
  // Over TLS (from onOpen on): what the handshake settled. Null on plain TCP.
  const TlsInfo* tls() const { return tls_info_ ? &*tls_info_ : nullptr; }
  // With --proxy-protocol (from onOpen on): the header. Null otherwise.
  const ProxyInfo* proxy() const { return proxy_ ? &*proxy_ : nullptr; }

  // Queues bytes for the client.
  void send(std::string_view bytes) { out_.append(bytes); }
  // Queues `bytes` bytes of the PRNG stream with `seed` after everything queued so far.
  // Nothing may be queued after it.
  void produce(uint64_t seed, uint64_t bytes) {
    stream_.emplace(seed);
    stream_left_ = bytes;
  }
  // Sends what is queued, then closes gracefully (see the class comment).
  void finish() {
    if (state_ == State::Open) {
      state_ = State::Finishing;
    }
  }
  // Closes at once.
  void abort() { state_ = State::Closed; }

  // Bytes still to be written, queued or generated.
  uint64_t pending() const { return (out_.size() - out_off_) + stream_left_; }

private:
  friend class Server;

  uint64_t id_;
  test::Fd fd_;
  test::SockAddr peer_;
  State state_ = State::Open;
  bool peer_eof_ = false;
  uint32_t events_ = 0;  // current epoll interest
  std::string out_;
  size_t out_off_ = 0;
  std::optional<test::PrngStream> stream_;
  uint64_t stream_left_ = 0;
  test::Deadline linger_until_{};
  std::unique_ptr<Protocol> protocol_;
  // TLS (--tls-cert): the OpenSSL side of the socket, and the handshake's result once done.
  std::unique_ptr<TlsStream, TlsStreamDeleter> tls_;
  std::optional<TlsInfo> tls_info_;
  // --proxy-protocol: the header's bytes so far, while awaiting it; then what it said.
  bool awaiting_proxy_ = false;
  std::string proxy_bytes_;
  std::optional<ProxyInfo> proxy_;
};

}  // namespace weir::testsrv
