#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/address.h"
#include "util/result.h"

struct ares_channeldata;  // c-ares's channel (ares_channel is a pointer to it)
struct ares_addrinfo;

namespace weir::resolve {

// At most this many addresses are kept from one answer (the lowest after sorting).
inline constexpr size_t kMaxAddresses = 1024;

// The outcome of one lookup of a name's A and AAAA records.
struct Answer {
  bool ok = false;    // false: the name did not resolve; error says why
  std::string error;  // "app.example:80: Domain name not found" (host:port: c-ares's text)
  // Every A and AAAA address with the asked port, sorted (IPv4 first, then by bytes), unique,
  // at most kMaxAddresses. Empty when !ok: an answer without addresses is an error.
  std::vector<net::SockAddr> addresses;
  // The smallest TTL of the records (CNAMEs included), in ms. 0 when unknown (an answer from
  // the hosts file) or when a record's TTL is 0: the caller then uses its own interval.
  int64_t ttl_ms = 0;
};

struct Options {
  // Nameservers (IP:PORT), queried over DNS only, without the hosts file or search domains.
  // Empty: the system's configuration (/etc/resolv.conf, /etc/hosts, search domains), read
  // once by create(): a Resolver does not see later changes to those files.
  std::vector<net::SockAddr> servers;
  // Per query attempt; c-ares tries each server twice, doubling the timeout on the retry, so a
  // silent server fails a lookup after about 3 x timeout.
  std::chrono::milliseconds timeout{2000};
};

// Asynchronous lookups for an epoll loop, with one c-ares channel. Not thread-safe: every call,
// and every callback, happens on the owner's thread.
//
// c-ares opens its UDP/TCP sockets itself (non-blocking, close-on-exec) and reports through
// Watch which of them to poll for what; the owner registers them in its epoll and hands
// readiness back through onReady(). c-ares's retransmissions and timeouts run from
// onTimeout(), due after timeoutMs().
//
// Callbacks: `done` never runs inside resolve(). c-ares may finish a lookup at once (hosts file,
// a malformed name, no usable server); such answers are queued and timeoutMs() returns 0 until
// onTimeout() delivers them. Every `done` runs from onReady() or onTimeout(), after c-ares
// has returned, so it may call resolve() again; it must not destroy the Resolver.
class Resolver {
public:
  // Called when c-ares opens a socket or changes what it waits for; (fd, false, false) when it
  // is about to close it (the owner removes it from its epoll then). It runs inside resolve(),
  // onReady() and onTimeout(), so it must not call the Resolver. Never called from the
  // destructor: its closes remove the fds from every epoll set by themselves. c-ares closes
  // its sockets whenever no lookup is left pending, and opens new ones for the next.
  using Watch = std::function<void(int fd, bool read, bool write)>;
  using Done = std::function<void(Answer)>;

  // A channel with `options`; fails (code ENOMEM or EINVAL, c-ares's text in the context) if
  // c-ares cannot initialise or does not accept the servers.
  static util::Result<std::unique_ptr<Resolver>> create(const Options& options, Watch watch);

  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  // Destroys the channel and closes its sockets. Lookups still pending are dropped: their
  // `done` never runs.
  ~Resolver();

  // Starts a lookup of host's A and AAAA records (both queries at once, no cache: every call
  // asks the servers); `done` gets the answer later (see above). `host` should pass
  // net::validHostName(): c-ares 1.18 answers an IPv4 literal only after asking the servers.
  void resolve(const std::string& host, uint16_t port, Done done);

  // `fd` (one Watch reported) is ready: EPOLLIN, EPOLLOUT, EPOLLERR and EPOLLHUP bits.
  void onReady(int fd, uint32_t epoll_events);
  // Milliseconds until onTimeout() is due (0: now, answers are queued), for epoll_wait; -1 when
  // no lookup is pending.
  int64_t timeoutMs() const;
  // Runs c-ares's timeouts and delivers queued answers. Harmless when nothing is due.
  void onTimeout();
  // Lookups started whose `done` has not run yet.
  size_t pending() const { return pending_; }

private:
  struct Query;

  Resolver(Watch watch) : watch_(std::move(watch)) {}
  static void onSockState(void* self, int fd, int read, int write);
  static void onAnswer(void* query, int status, int timeouts, ares_addrinfo* result);
  void deliver();

  ares_channeldata* channel_ = nullptr;
  Watch watch_;
  bool destroying_ = false;
  size_t pending_ = 0;
  // Answers c-ares gave, with their callbacks, to be run once c-ares has returned.
  std::vector<std::pair<Done, Answer>> ready_;
};

// Blocking: one lookup with a channel of its own and a poll() loop, bounded by `limit` in
// total (an Answer with ok=false and a "no answer within" error when it passes).
Answer resolveNow(const Options& options, const std::string& host, uint16_t port,
                  std::chrono::milliseconds limit);

}  // namespace weir::resolve
