#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "support/deadline.h"
#include "support/fd.h"
#include "support/testsrv/conn.h"
#include "support/testsrv/options.h"
#include "support/testsrv/tls_context.h"

namespace weir::testsrv {

// weir-testsrv's event loop: one thread, one level-triggered epoll set holding the listening
// socket, a signalfd for SIGTERM/SIGINT and every connection.
//
// With --proxy-protocol every connection first reads its PROXY header, and not a byte more:
// what follows is the client's (or OpenSSL's) and stays in the socket.
//
// With --tls-cert every connection first runs its TLS handshake (Conn::tls_) and only then
// meets its protocol; reads and writes go through OpenSSL, which behaves like recv/send here.
//
// Level-triggered keeps the loop simple and fair: a connection reads a bounded amount per
// wake-up and the kernel reports it again if more is waiting. Epoll events carry a
// connection id, never an fd, so an event queued for a connection closed earlier in the same
// batch cannot reach a newer connection that reused the fd.
class Server {
public:
  explicit Server(Options options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and prints "PORT <n>". Returns false (after printing why) on failure.
  bool start();
  // Runs until SIGTERM/SIGINT. Returns the process exit code.
  int run();

private:
  static constexpr uint64_t kListenerId = 1;
  static constexpr uint64_t kSignalId = 2;
  static constexpr uint64_t kFirstConnId = 16;

  void acceptAll();
  void onConnEvent(Conn& conn, uint32_t events);
  // After accept and after the PROXY header: starts TLS, or opens the protocol.
  void open(Conn& conn);
  // Reads the PROXY header (--proxy-protocol); when it is whole, open(); when it is not
  // valid, closes.
  void readProxyHeader(Conn& conn);
  // Advances a TLS handshake; when it is done, opens the protocol.
  void continueHandshake(Conn& conn);
  // recv()/send() on the connection, through TLS when it has it.
  ssize_t receive(Conn& conn, char* buf, size_t len);
  ssize_t transmit(Conn& conn, const char* buf, size_t len);
  // Reads what is available (bounded per call) and hands it to the protocol.
  void readFrom(Conn& conn);
  // Writes queued output; on a drained Finishing connection shuts down writes.
  void writeTo(Conn& conn);
  // Moves the connection along its close states and updates its epoll interest.
  void settle(Conn& conn);
  void close(Conn& conn);
  void expireTimers();
  int nextTimeoutMs() const;
  void setListenerPaused(bool paused);

  Options options_;
  std::string name_;
  std::unique_ptr<TlsContext> tls_;  // with --tls-cert
  test::Fd epoll_;
  test::Fd listener_;
  test::Fd signals_;
  bool listener_paused_ = false;
  test::Deadline listener_resume_{};
  uint64_t next_id_ = kFirstConnId;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::set<std::pair<test::Deadline, uint64_t>> linger_timers_;
  std::vector<char> read_buf_;
  bool stopping_ = false;
};

}  // namespace weir::testsrv
