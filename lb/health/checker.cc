#include "health/checker.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <unordered_map>
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "health/name_slots.h"
#include "health/probe.h"
#include "health/schedule.h"
#include "net/unique_fd.h"
#include "proxy/header.h"
#include "resolve/resolver.h"
#include "shm/backend_map.h"
#include "tls/client_context.h"
#include "util/log.h"

namespace weir::health {
namespace {

int64_t monotonicUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

constexpr int kMaxEvents = 64;
constexpr int64_t kReviveTickMs = 100;  // how late a passive hold-down may end
constexpr int64_t kMaxWaitMs = 1000;
// A name that did not resolve is asked again this soon (or at resolve_interval, if shorter).
constexpr int64_t kRetryFailedMs = 5000;

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

sigset_t stopSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1}) {
    sigaddset(&mask, sig);
  }
  return mask;
}

// The body of runChecker: one per checker process.
class Checker {
public:
  Checker(const config::Config& cfg, const shm::BackendMap& map, uint64_t seed,
          const tls::Contexts* prebuilt);
  int run();

private:
  // What an epoll event's data.ptr points at: a Target (a check's socket), a Lookup socket of
  // the resolver, or nullptr (the signalfd).
  struct Watched {
    bool resolver = false;
  };
  struct Target : Watched {
    Target(size_t p, const shm::PoolSlots* s, size_t b, Schedule sch)
        : pool(p), slots(s), backend(b), schedule(sch) {}
    size_t pool;  // index into Config::pools
    const shm::PoolSlots* slots;
    size_t backend;
    ProbeSpec spec;
    Schedule schedule;
    Probe probe;
    int64_t started_us = 0;  // when the running check started (CLOCK_MONOTONIC)
  };
  struct ResolverSocket : Watched {
    int fd = -1;
  };
  // One named backend ("NAME:PORT") of one pool: its slots are backends first .. first+count-1.
  struct Name {
    size_t pool;
    size_t first;
    uint32_t count;
    std::string host;
    uint16_t port;
    std::string where;  // where the config names it
    std::vector<std::optional<net::SockAddr>> current;  // what slot k holds (as this process wrote)
    int64_t due_ms = 0;       // next lookup
    bool pending = false;     // a lookup is under way
    bool failing = false;     // the last lookup failed (warned once)
    size_t dropped = 0;       // addresses left out by the last answer (warned when it changes)
    bool answered = false;    // had an answer or a failure (Header::names_unanswered)
  };

  const tls::ClientContext* contextFor(const config::Pool& pool);
  void setup();
  void startDue(int64_t now);
  void expire(int64_t now);
  void reviveHeldDown(int64_t now);
  void record(Target& t, const Outcome& outcome, int64_t now);
  void watch(Target& t, bool added);
  bool onSignal();  // true: stop
  int waitMs(int64_t now) const;
  // Backends by name.
  void setupNames();
  void resolveDue(int64_t now);
  void onAnswer(Name& name, const resolve::Answer& answer);
  void markAnswered(Name& name);
  void watchResolver(int fd, bool read, bool write);
  Target* targetOf(size_t pool, size_t backend);
  void pointTarget(Target& t, const std::optional<net::SockAddr>& address);

  const config::Config& cfg_;
  const shm::BackendMap& map_;
  std::vector<std::unique_ptr<Target>> targets_;  // stable addresses for epoll_event.data.ptr
  std::vector<tls::ClientContext> contexts_;       // kind tls: one per pool, ProbeSpec::tls
  std::vector<size_t> passive_pools_;             // pools without [health]
  std::vector<const tls::ClientContext*> pool_tls_;  // per pool: kind tls checks' context
  std::vector<std::unique_ptr<Name>> names_;
  size_t names_answered_ = 0;
  int64_t next_revive_ms_ = 0;
  net::UniqueFd epoll_;
  net::UniqueFd signal_fd_;
  // Last, so that the resolver goes first: closing its sockets calls watchResolver.
  std::unordered_map<int, std::unique_ptr<ResolverSocket>> resolver_sockets_;
  std::vector<std::unique_ptr<ResolverSocket>> retired_sockets_;
  std::unique_ptr<resolve::Resolver> resolver_;
};

}  // namespace

int64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Checker::Checker(const config::Config& cfg, const shm::BackendMap& map, uint64_t seed,
                 const tls::Contexts* prebuilt)
    : cfg_(cfg), map_(map) {
  const int64_t now = monotonicMs();
  // Reserved so that the addresses the specs keep stay valid (one per pool at most).
  contexts_.reserve(cfg.pools.size());
  for (size_t p = 0; p < cfg.pools.size(); ++p) {
    const config::Pool& pool = cfg.pools[p];
    if (!pool.health) {
      passive_pools_.push_back(p);
      continue;
    }
    const tls::ClientContext* tls = nullptr;
    if (pool.health->kind == config::HealthKind::Tls) {
      tls = prebuilt != nullptr && p < prebuilt->clients.size() && prebuilt->clients[p]
                ? prebuilt->clients[p].get()
                : contextFor(pool);
    }
    pool_tls_.resize(p + 1, nullptr);
    pool_tls_[p] = tls;
    for (size_t b = 0; b < pool.backends.size(); ++b) {
      uint64_t r1 = splitmix(seed);
      uint64_t r2 = splitmix(seed);
      auto t = std::make_unique<Target>(p, &map.pool(p), b, Schedule(*pool.health, now, r1, r2));
      // A named slot's spec is made when it gets an address (setupNames, onAnswer).
      pointTarget(*t, pool.backends[b].named()
                          ? std::nullopt
                          : std::optional<net::SockAddr>(pool.backends[b].address));
      targets_.push_back(std::move(t));
    }
  }
}

// The pool's [tls] as its traffic uses it; a pool without one still gets TLS checks, with no
// SNI and no verification (the check then only asks whether the backend completes a
// handshake). A context that cannot be built (a CA file unreadable by now) is logged once
// here, and every check of the pool fails naming it rather than the checker dying.
const tls::ClientContext* Checker::contextFor(const config::Pool& pool) {
  config::UpstreamTls settings;
  if (pool.tls) {
    settings = *pool.tls;
  } else {
    settings.verify = false;
  }
  try {
    contexts_.push_back(tls::ClientContext::build(settings));
  } catch (const std::exception& e) {
    spdlog::error("pool {}: tls checks will fail: {}", pool.name, e.what());
    return nullptr;
  }
  return &contexts_.back();
}

void Checker::setup() {
  // OpenSSL writes handshakes with write(2): a backend that resets must cost an EPIPE, not the
  // checker (the workers ignore SIGPIPE for the same reason).
  ::signal(SIGPIPE, SIG_IGN);
  epoll_ = net::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) {
    throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  }
  // Blocked here too, so that the checker stops cleanly even if its parent did not block them.
  sigset_t mask = stopSignals();
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = net::UniqueFd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) {
    throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr = the signalfd; targets use their own address
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &ev) < 0) {
    throw std::runtime_error(std::string("epoll_ctl signalfd: ") + std::strerror(errno));
  }
}

int Checker::run() {
  try {
    setup();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  spdlog::info("{} backends to check, {} pools on passive health only",
               targets_.size(), passive_pools_.size());
  setupNames();
  epoll_event events[kMaxEvents];
  for (;;) {
    int64_t now = monotonicMs();
    retired_sockets_.clear();
    if (resolver_ && resolver_->pending() > 0) {
      resolver_->onTimeout();  // c-ares: whatever timed out by now
    }
    resolveDue(now);
    startDue(now);
    expire(now);
    reviveHeldDown(now);
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, waitMs(monotonicMs()));
    if (n < 0 && errno != EINTR) {
      spdlog::critical("epoll_wait: {}", std::strerror(errno));
      return 1;
    }
    now = monotonicMs();
    for (int i = 0; i < n; ++i) {
      auto* watched = static_cast<Watched*>(events[i].data.ptr);
      if (watched == nullptr) {
        if (onSignal()) {
          return 0;
        }
        continue;
      }
      if (watched->resolver) {
        const int fd = static_cast<ResolverSocket*>(watched)->fd;
        if (resolver_ && fd >= 0) {
          resolver_->onReady(fd, events[i].events);
        }
        continue;
      }
      auto* t = static_cast<Target*>(watched);
      uint32_t before = t->probe.events();
      if (auto outcome = t->probe.onReady(events[i].events)) {
        record(*t, *outcome, now);
      } else if (t->probe.busy() && t->probe.events() != before) {
        watch(*t, false);
      }
    }
  }
}

void Checker::startDue(int64_t now) {
  for (auto& t : targets_) {
    if (t->schedule.due() > now) {
      continue;
    }
    t->schedule.advance(now);
    if (t->probe.busy()) {
      continue;  // the previous check still runs (the checker fell behind): skip this round
    }
    if (t->slots->admin(t->backend) == shm::AdminState::Maint) {
      continue;  // in maintenance (weirctl disable): no checks until it is enabled again
    }
    if (t->slots->state(t->backend) == shm::BackendState::Empty) {
      continue;  // a named backend's slot with no address: nothing to check
    }
    t->started_us = monotonicUs();
    if (auto outcome = t->probe.start(t->spec, now)) {
      record(*t, *outcome, now);
    } else {
      watch(*t, true);
    }
  }
}

void Checker::expire(int64_t now) {
  for (auto& t : targets_) {
    if (t->probe.busy() && t->probe.deadline() <= now) {
      record(*t, t->probe.onTimeout(), now);
    }
  }
}

void Checker::reviveHeldDown(int64_t now) {
  if (now < next_revive_ms_) {
    return;
  }
  next_revive_ms_ = now + kReviveTickMs;
  for (size_t p : passive_pools_) {
    const shm::PoolSlots& slots = map_.pool(p);
    for (size_t b = 0; b < slots.size(); ++b) {
      (void)slots.reviveIfHeldDown(b, now);
    }
  }
}

void Checker::record(Target& t, const Outcome& outcome, int64_t now) {
  if (spdlog::should_log(spdlog::level::debug)) {
    const shm::BackendSlot& s = t.slots->slot(t.backend);
    const std::string_view pool(s.pool, strnlen(s.pool, shm::kPoolKeyLen));  // may be scribbled
    spdlog::debug("check of {} in pool {}: {}", t.spec.address.toString(), pool,
                  outcome.ok ? "passed" : outcome.error);
  }
  const int64_t took = std::max<int64_t>(0, monotonicUs() - t.started_us);
  t.slots->slot(t.backend).check_duration_us.store(took, std::memory_order_relaxed);
  (void)t.slots->recordProbe(t.backend, outcome.ok, outcome.error, now);
}

void Checker::watch(Target& t, bool added) {
  epoll_event ev{};
  ev.events = t.probe.events();
  ev.data.ptr = &t;
  if (::epoll_ctl(epoll_.get(), added ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, t.probe.fd(), &ev) < 0) {
    // Only ENOMEM/ENOSPC are possible for a fresh socket; without an event the check could
    // never end, so end it now as a failure of the checker rather than of the backend.
    spdlog::error("epoll_ctl: {}", std::strerror(errno));
    (void)t.probe.onTimeout();
  }
}

bool Checker::onSignal() {
  signalfd_siginfo si{};
  // Bounded by the signals pending: the signalfd is non-blocking.
  while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
    if (si.ssi_signo == SIGUSR1) {
      if (auto error = util::reopenLogs()) {
        spdlog::error("reopening log files failed, still writing to the old ones: {}", *error);
      }
      continue;
    }
    spdlog::info("stopping on signal {}", si.ssi_signo);
    return true;
  }
  return false;
}

int Checker::waitMs(int64_t now) const {
  int64_t next = now + kMaxWaitMs;
  if (!passive_pools_.empty()) {
    next = std::min(next, next_revive_ms_);
  }
  for (const auto& t : targets_) {
    next = std::min(next, t->probe.busy() ? t->probe.deadline() : t->schedule.due());
  }
  for (const auto& name : names_) {
    if (!name->pending) {
      next = std::min(next, name->due_ms);
    }
  }
  if (resolver_ && resolver_->pending() > 0) {
    const int64_t ms = resolver_->timeoutMs();
    if (ms >= 0) {
      next = std::min(next, now + ms);
    }
  }
  return static_cast<int>(std::clamp<int64_t>(next - now, 0, kMaxWaitMs));
}

// The spec of target t for `address` (nullopt: none, the slot is empty). A check of the old
// address that still runs is ended without a result: it says nothing about the new one.
void Checker::pointTarget(Target& t, const std::optional<net::SockAddr>& address) {
  if (t.probe.busy()) {
    (void)t.probe.onTimeout();
  }
  const config::Pool& pool = cfg_.pools[t.pool];
  if (!address || !pool.health) {
    t.spec = ProbeSpec{};
    return;
  }
  const tls::ClientContext* tls = t.pool < pool_tls_.size() ? pool_tls_[t.pool] : nullptr;
  t.spec = makeSpec(*pool.health, *address, tls, pool.backends[t.backend].host);
  if (pool.proxy_protocol != config::ProxyProtocol::Off) {
    // Backends that expect a PROXY header on every connection get one: LOCAL, "this
    // connection is the balancer's own", whichever version the traffic uses (HAProxy and
    // nginx accept v2 wherever they accept v1).
    proxy::encodeV2Local(t.spec.preamble);
  }
}

// Backends by name: one Name per named backend of every pool, its slots seeded from what
// the region holds (a reload or upgrade carried the last generation's addresses over), then
// every name looked up at once.
void Checker::setupNames() {
  for (size_t p = 0; p < cfg_.pools.size(); ++p) {
    for (const config::NameSlots& slot_range : config::nameSlots(cfg_.pools[p].backends)) {
      const config::Backend& backend = cfg_.pools[p].backends[slot_range.first];
      auto name = std::make_unique<Name>();
      name->pool = p;
      name->first = slot_range.first;
      name->count = slot_range.count;
      name->host = backend.host;
      name->port = backend.port;
      name->where = backend.where;
      const shm::PoolSlots& slots = map_.pool(p);
      for (uint32_t k = 0; k < name->count; ++k) {
        std::optional<net::SockAddr> held;
        const size_t i = slot_range.first + k;
        if (slots.state(i) != shm::BackendState::Empty &&
            slots.state(i) != shm::BackendState::Draining) {
          held = slots.resolved(i);
          if (!held) {
            // Up or down but no address readable: a slot nobody can use; empty it so that
            // the answer fills it again.
            (void)slots.empty(i, "its address could not be read", monotonicMs());
          }
        }
        if (Target* t = targetOf(p, i)) {
          pointTarget(*t, held);
        }
        name->current.push_back(held);
      }
      names_.push_back(std::move(name));
    }
  }
  if (names_.empty()) {
    map_.setNamesAnswered();
    return;
  }
  resolve::Options options;
  options.servers = cfg_.global.resolvers;
  auto resolver = resolve::Resolver::create(
      options, [this](int fd, bool read, bool write) { watchResolver(fd, read, write); });
  if (!resolver) {
    spdlog::error("cannot resolve backend names: {}; named backends keep the "
                  "addresses they have",
                  resolver.error().message());
    map_.setNamesAnswered();  // nothing will answer: the workers need not wait
    return;
  }
  resolver_ = std::move(*resolver);
  spdlog::info("{} backend names to resolve, every {} at most", names_.size(),
               config::formatDuration(cfg_.global.resolve_interval));
}

Checker::Target* Checker::targetOf(size_t pool, size_t backend) {
  for (auto& t : targets_) {
    if (t->pool == pool && t->backend == backend) {
      return t.get();
    }
  }
  return nullptr;
}

void Checker::resolveDue(int64_t now) {
  if (!resolver_) {
    return;
  }
  for (auto& name : names_) {
    if (name->pending || name->due_ms > now) {
      continue;
    }
    name->pending = true;
    Name* n = name.get();
    // The answer may come at once (from inside resolve()), or later from onReady/onTimeout.
    resolver_->resolve(n->host, n->port, [this, n](resolve::Answer answer) {
      n->pending = false;
      onAnswer(*n, answer);
    });
  }
}

void Checker::onAnswer(Name& name, const resolve::Answer& answer) {
  const int64_t now = monotonicMs();
  const std::string what = name.host + ":" + std::to_string(name.port);
  const std::string& pool = cfg_.pools[name.pool].name;
  const int64_t interval = cfg_.global.resolve_interval.count();
  if (!answer.ok) {
    // Keep the addresses it had: a resolver that fails for a while must not empty the pool.
    if (!name.failing) {
      // answer.error starts with "NAME:PORT: ".
      spdlog::warn("pool {}: backend name {}; it does not resolve, its {} keep what they had, "
                   "trying again",
                   pool, answer.error, name.count == 1 ? "slot" : "slots");
    } else {
      spdlog::debug("pool {}: backend name {}; it still does not resolve", pool, answer.error);
    }
    name.failing = true;
    name.due_ms = now + std::min<int64_t>(interval, kRetryFailedMs);
    markAnswered(name);
    return;
  }
  if (name.failing) {
    spdlog::info("pool {}: backend name {} resolves again", pool, what);
    name.failing = false;
  }
  const shm::PoolSlots& slots = map_.pool(name.pool);
  std::vector<int64_t> active;
  for (uint32_t k = 0; k < name.count; ++k) {
    active.push_back(slots.active(name.first + k));
  }
  SlotPlan plan = planSlots(name.current, active, answer.addresses);
  for (size_t k : plan.empty) {
    (void)slots.empty(name.first + k, "no longer returned by " + what, now);
    name.current[k].reset();
    if (Target* t = targetOf(name.pool, name.first + k)) {
      pointTarget(*t, std::nullopt);
    }
  }
  for (const auto& [k, address] : plan.fill) {
    const size_t i = name.first + k;
    if (!slots.fill(i, address, now)) {
      continue;  // not empty: draining (cannot be: this generation's config has it)
    }
    if (Target* t = targetOf(name.pool, i)) {
      pointTarget(*t, address);
    }
    name.current[k] = address;
  }
  if (plan.dropped != name.dropped) {
    if (plan.dropped > 0) {
      spdlog::warn("pool {}: backend name {} returns {} addresses, {} more than its "
                   "max_addresses = {}; those are not used",
                   pool, what, answer.addresses.size(), plan.dropped, name.count);
    }
    name.dropped = plan.dropped;
  }
  // The TTL says how long the answer holds: ask again then, if that is sooner.
  int64_t next = interval;
  if (answer.ttl_ms > 0) {
    next = std::clamp<int64_t>(answer.ttl_ms, config::kMinResolveInterval.count(), interval);
  }
  name.due_ms = now + next;
  markAnswered(name);
}

// Called once the answer is in the slots (or was a failure), so that workers holding back
// their accepts for the first answers find the addresses when they stop waiting.
void Checker::markAnswered(Name& name) {
  if (name.answered) {
    return;
  }
  name.answered = true;
  if (++names_answered_ == names_.size()) {
    map_.setNamesAnswered();
  }
}

void Checker::watchResolver(int fd, bool read, bool write) {
  auto it = resolver_sockets_.find(fd);
  if (!read && !write) {
    if (it != resolver_sockets_.end()) {
      // c-ares closes the socket itself (which would drop it from epoll); remove it first.
      // The object lives until the next loop round: an event of this round may point at it.
      (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      it->second->fd = -1;
      retired_sockets_.push_back(std::move(it->second));
      resolver_sockets_.erase(it);
    }
    return;
  }
  const bool added = it == resolver_sockets_.end();
  if (added) {
    auto socket = std::make_unique<ResolverSocket>();
    socket->resolver = true;
    socket->fd = fd;
    it = resolver_sockets_.emplace(fd, std::move(socket)).first;
  }
  epoll_event ev{};
  ev.events = (read ? EPOLLIN : 0u) | (write ? EPOLLOUT : 0u);
  ev.data.ptr = it->second.get();
  if (::epoll_ctl(epoll_.get(), added ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0) {
    // The lookup on that socket then ends by its timeout.
    spdlog::error("epoll_ctl (resolver socket): {}", std::strerror(errno));
  }
}

int runChecker(const config::Config& cfg, shm::ShmRegion& region, const tls::Contexts* tls) {
  auto map = shm::BackendMap::find(region, cfg);
  if (!map) {
    spdlog::critical("{}", map.error().message());
    return 1;
  }
  uint64_t seed = static_cast<uint64_t>(::getpid()) * 0x9e3779b97f4a7c15 ^
                  static_cast<uint64_t>(monotonicMs());
  Checker checker(cfg, *map, seed, tls);
  return checker.run();
}

}  // namespace weir::health
