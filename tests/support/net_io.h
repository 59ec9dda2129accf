#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "support/deadline.h"
#include "support/fd.h"
#include "support/prng_stream.h"
#include "support/sock_addr.h"

// Blocking-style socket helpers for tests, built on non-blocking sockets and poll() so every
// call is bounded by a deadline. None of them throws; failures come back as IoStatus plus
// an errno where one exists.
namespace weir::test {

enum class IoStatus {
  Ok,       // the operation completed
  Eof,      // the peer closed its sending side (read returned 0) before we were done
  Reset,    // ECONNRESET / EPIPE / ECONNREFUSED: the peer aborted
  Timeout,  // the deadline passed
  Error,    // any other errno, or a content mismatch (see the function)
};
const char* toString(IoStatus s);

// Opens a non-blocking TCP socket to `addr` and waits until connect completes.
// Returns an invalid Fd on failure and, if `error` is set, a description ("connect
// 127.0.0.1:80: Connection refused", "... timed out").
Fd connectTcp(const SockAddr& addr, Clock::duration timeout, std::string* error = nullptr);
// The same with a socket the caller made (non-blocking, of addr's family; e.g. one made in
// another network namespace, see netns.h). Returns it connected, or an invalid Fd.
Fd connectTcp(Fd fd, const SockAddr& addr, Clock::duration timeout, std::string* error = nullptr);

// Opens `count` connections at once: non-blocking connects issued `burst` at a time, each
// burst awaited before the next. `before_connect`, if set, is called with each new socket
// before its connect (for socket options such as SO_RCVBUF). Returns the connected sockets;
// fewer than `count` when a connect fails or the deadline passes, with the reason in `error`.
std::vector<Fd> connectMany(const SockAddr& addr, size_t count, size_t burst, Deadline deadline,
                            std::string* error = nullptr,
                            const std::function<void(int fd)>& before_connect = {});

// Picks a TCP port on `host` that is free right now (binds port 0 and closes). Another
// process may take it before the caller uses it, which on a test machine is rare enough.
// Returns 0 on failure.
uint16_t pickFreePort(const std::string& host = "127.0.0.1");
// True the first time this process is given `port` (never for 0): the pickers hand each out once.
bool claimPort(uint16_t port);
// pickFreePort with sockets of the given family that `open` makes (e.g. in another network
// namespace).
uint16_t pickFreePortWith(const std::string& host, const std::function<Fd(int family)>& open);

// True if nothing is bound to host:port (we can bind it ourselves without SO_REUSEPORT).
bool portIsFree(const std::string& host, uint16_t port);

// Writes all of `data` before `deadline`.
IoStatus writeAll(int fd, const void* data, size_t len, Deadline deadline);
inline IoStatus writeAll(int fd, std::string_view s, Deadline deadline) {
  return writeAll(fd, s.data(), s.size(), deadline);
}
// Reads exactly `len` bytes before `deadline`; Eof if the peer closes first.
IoStatus readExact(int fd, void* buf, size_t len, Deadline deadline);
// Reads until EOF (Eof) or a reset (Reset), discarding data; counts bytes in `*discarded`.
IoStatus readUntilClosed(int fd, Deadline deadline, uint64_t* discarded = nullptr);
// Everything the peer sends until it closes or resets, or until `deadline`: what it got so far.
std::string readAllUntilClosed(int fd, Deadline deadline);
// Sends `msg`, reads msg.size() bytes back and compares: Ok if equal, Error on mismatch.
IoStatus echoRoundTrip(int fd, std::string_view msg, Deadline deadline);

// Result of pump(): what went out, what came in, and how it ended.
struct PumpResult {
  IoStatus status = IoStatus::Error;
  uint64_t sent = 0;
  uint64_t received = 0;
  int err = 0;         // errno behind Reset/Error, 0 otherwise
  std::string detail;  // human-readable account for assertion messages
  // With status Ok: how long EOF took after the exchange was otherwise over (our
  // shutdown(SHUT_WR) done and the last byte received, whichever came later). A peer that
  // fails to pass a half-close on shows up here as a long wait (ended by some timeout).
  Clock::duration eof_lag{};
};

// Full-duplex transfer on one socket without deadlock: writes `send_bytes` bytes taken from
// `source`, then shutdown(SHUT_WR), while concurrently reading everything the peer sends
// into `sink` until EOF. status is Ok when all bytes were sent and EOF was read.
PumpResult pump(int fd, PrngStream& source, uint64_t send_bytes,
                const std::function<void(const char*, size_t)>& sink, Deadline deadline);

// "Connection refused" etc. for errno `err`.
std::string errnoText(int err);

}  // namespace weir::test
