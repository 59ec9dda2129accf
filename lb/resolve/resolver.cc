#include "resolve/resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <optional>

namespace weir::resolve {

namespace {

// c-ares 1.18 wants ares_library_init before the first channel (newer versions do not care).
// A function-local static runs it once even if two threads create channels at the same time.
int libraryInit() {
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  return status;
}

std::string label(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

// IPv4 before IPv6, then the address bytes in network order (numeric order). The port is the
// same in every address of one answer.
bool addressLess(const net::SockAddr& a, const net::SockAddr& b) {
  if (a.family() != b.family()) {
    return a.family() == AF_INET;
  }
  if (a.family() == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(a.get());
    const auto* y = reinterpret_cast<const sockaddr_in*>(b.get());
    return std::memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr)) < 0;
  }
  const auto* x = reinterpret_cast<const sockaddr_in6*>(a.get());
  const auto* y = reinterpret_cast<const sockaddr_in6*>(b.get());
  const int c = std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
  if (c != 0) {
    return c < 0;
  }
  return x->sin6_scope_id < y->sin6_scope_id;
}

// c-ares's result as an Answer (`res` stays the caller's to free).
Answer toAnswer(const std::string& host, uint16_t port, int status, const ares_addrinfo* res) {
  Answer answer;
  if (status != ARES_SUCCESS) {
    answer.error = label(host, port) + ": " + ares_strerror(status);
    return answer;
  }
  int64_t ttl_s = INT64_MAX;
  if (res != nullptr) {
    for (const ares_addrinfo_node* n = res->nodes; n != nullptr; n = n->ai_next) {
      if (n->ai_addr == nullptr || (n->ai_family != AF_INET && n->ai_family != AF_INET6)) {
        continue;  // c-ares asks for A and AAAA only; anything else is not an address we use
      }
      net::SockAddr addr(n->ai_addr, n->ai_addrlen);
      addr.setPort(port);
      answer.addresses.push_back(addr);
      ttl_s = std::min<int64_t>(ttl_s, std::max(n->ai_ttl, 0));
    }
    // A CNAME that expires first changes the answer as surely as an address record does.
    for (const ares_addrinfo_cname* c = res->cnames; c != nullptr; c = c->next) {
      ttl_s = std::min<int64_t>(ttl_s, std::max(c->ttl, 0));
    }
  }
  if (answer.addresses.empty()) {
    answer.error = label(host, port) + ": no A or AAAA records";
    return answer;
  }
  std::sort(answer.addresses.begin(), answer.addresses.end(), addressLess);
  answer.addresses.erase(std::unique(answer.addresses.begin(), answer.addresses.end()),
                         answer.addresses.end());
  if (answer.addresses.size() > kMaxAddresses) {
    answer.addresses.resize(kMaxAddresses);
  }
  answer.ok = true;
  answer.ttl_ms = ttl_s == INT64_MAX ? 0 : ttl_s * 1000;
  return answer;
}

util::SysError aresError(int status, const std::string& what) {
  return util::SysError{status == ARES_ENOMEM ? ENOMEM : EINVAL,
                        what + ": " + ares_strerror(status)};
}

}  // namespace

// One lookup in flight: c-ares's callback argument, freed by onAnswer.
struct Resolver::Query {
  Resolver* owner;
  std::string host;
  uint16_t port;
  Done done;
};

util::Result<std::unique_ptr<Resolver>> Resolver::create(const Options& options, Watch watch) {
  if (const int status = libraryInit(); status != ARES_SUCCESS) {
    return aresError(status, "ares_library_init");
  }
  std::unique_ptr<Resolver> r(new Resolver(std::move(watch)));

  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  opts.sock_state_cb = &Resolver::onSockState;
  opts.sock_state_cb_data = r.get();
  opts.timeout = static_cast<int>(std::clamp<int64_t>(options.timeout.count(), 1, INT_MAX));
  opts.tries = 2;
  char lookups[] = "b";
  if (!options.servers.empty()) {
    // DNS only: the given servers are the whole truth, not /etc/hosts. And no search domains
    // from resolv.conf: "app" must not become "app.corp.example" asked of those servers.
    mask |= ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS;
    opts.lookups = lookups;
    opts.domains = nullptr;
    opts.ndomains = 0;
  }
  ares_channel channel = nullptr;
  if (const int status = ares_init_options(&channel, &opts, mask); status != ARES_SUCCESS) {
    return aresError(status, "ares_init_options");
  }
  r->channel_ = channel;

  if (!options.servers.empty()) {
    std::string csv;
    for (const net::SockAddr& s : options.servers) {
      csv += (csv.empty() ? "" : ",") + s.toString();  // "1.2.3.4:53" or "[::1]:53"
    }
    if (const int status = ares_set_servers_ports_csv(channel, csv.c_str());
        status != ARES_SUCCESS) {
      return aresError(status, "ares_set_servers_ports_csv " + csv);
    }
  }
  return r;
}

Resolver::~Resolver() {
  // ares_destroy answers every pending query with ARES_EDESTRUCTION (onAnswer only frees it)
  // and closes the sockets, reporting each to onSockState, which stays quiet now: the owner
  // may be half torn down, and a close takes the fd out of every epoll set anyway.
  destroying_ = true;
  if (channel_ != nullptr) {
    ares_destroy(channel_);
  }
}

void Resolver::onSockState(void* self, int fd, int read, int write) {
  auto* r = static_cast<Resolver*>(self);
  if (r->destroying_) {
    return;
  }
  r->watch_(fd, read != 0, write != 0);
}

void Resolver::onAnswer(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  if (status == ARES_EDESTRUCTION) {
    // From ~Resolver: the owner is going away and asked for no more callbacks.
    if (result != nullptr) {
      ares_freeaddrinfo(result);
    }
    return;
  }
  Answer answer = toAnswer(q->host, q->port, status, result);
  if (result != nullptr) {
    ares_freeaddrinfo(result);
  }
  // Queued, not run: this may be inside resolve() or deep in ares_process_fd, where a callback
  // that starts another lookup or touches the owner's epoll would re-enter c-ares.
  q->owner->ready_.emplace_back(std::move(q->done), std::move(answer));
}

void Resolver::resolve(const std::string& host, uint16_t port, Done done) {
  auto* q = new Query{this, host, port, std::move(done)};
  ++pending_;
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one node per address, not one per socket type
  // We sort ourselves; c-ares's RFC 6724 sort connect()s a UDP socket to every address.
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(channel_, q->host.c_str(), nullptr, &hints, &Resolver::onAnswer, q);
}

void Resolver::onReady(int fd, uint32_t epoll_events) {
  // An error or hangup is reported as readable: c-ares's read then sees the error and fails
  // over to the next server or attempt.
  const bool read = (epoll_events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
  const bool write = (epoll_events & EPOLLOUT) != 0;
  ares_process_fd(channel_, read ? fd : ARES_SOCKET_BAD, write ? fd : ARES_SOCKET_BAD);
  deliver();
}

int64_t Resolver::timeoutMs() const {
  if (!ready_.empty()) {
    return 0;
  }
  if (pending_ == 0) {
    return -1;
  }
  timeval tv{};
  const timeval* next = ares_timeout(channel_, nullptr, &tv);
  if (next == nullptr) {
    return -1;
  }
  // Rounded up: waking before c-ares's deadline would only spin.
  return static_cast<int64_t>(next->tv_sec) * 1000 + (next->tv_usec + 999) / 1000;
}

void Resolver::onTimeout() {
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  deliver();
}

void Resolver::deliver() {
  // Only the answers queued so far: a callback that starts a lookup c-ares answers at once
  // queues it for the next round (timeoutMs() is 0 then) instead of looping here.
  std::vector<std::pair<Done, Answer>> batch;
  batch.swap(ready_);
  for (auto& [done, answer] : batch) {
    --pending_;
    done(std::move(answer));
  }
}

Answer resolveNow(const Options& options, const std::string& host, uint16_t port,
                  std::chrono::milliseconds limit) {
  std::map<int, short> fds;  // what c-ares wants to poll for
  auto resolver = Resolver::create(options, [&fds](int fd, bool read, bool write) {
    if (!read && !write) {
      fds.erase(fd);
    } else {
      fds[fd] = static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0));
    }
  });
  Answer out;
  if (!resolver) {
    out.error = label(host, port) + ": " + resolver.error().context;
    return out;
  }
  Resolver& r = **resolver;
  std::optional<Answer> answer;
  r.resolve(host, port, [&answer](Answer a) { answer = std::move(a); });

  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + limit;
  std::vector<pollfd> pfds;
  while (!answer) {
    // Rounded up: a deadline 0.4 ms away is still a deadline to wait for.
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      break;
    }
    const int64_t due = r.timeoutMs();
    const int wait = static_cast<int>(due < 0 ? left : std::min<int64_t>(due, left));
    pfds.clear();
    for (const auto& [fd, events] : fds) {
      pfds.push_back(pollfd{fd, events, 0});
    }
    const int n = ::poll(pfds.data(), pfds.size(), wait);
    if (n < 0 && errno != EINTR) {
      out.error = label(host, port) + ": poll: " + std::strerror(errno);
      return out;  // the Resolver's destructor drops the lookup
    }
    for (const pollfd& p : pfds) {
      if (p.revents == 0) {
        continue;
      }
      uint32_t events = 0;
      events |= (p.revents & POLLIN) != 0 ? uint32_t{EPOLLIN} : 0;
      events |= (p.revents & POLLOUT) != 0 ? uint32_t{EPOLLOUT} : 0;
      events |= (p.revents & (POLLERR | POLLNVAL)) != 0 ? uint32_t{EPOLLERR} : 0;
      events |= (p.revents & POLLHUP) != 0 ? uint32_t{EPOLLHUP} : 0;
      r.onReady(p.fd, events);
    }
    if (!answer && r.timeoutMs() == 0) {
      r.onTimeout();
    }
  }
  if (!answer) {
    out.error = label(host, port) + ": no answer within " + std::to_string(limit.count()) + " ms";
    return out;
  }
  return std::move(*answer);
}

}  // namespace weir::resolve
