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
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "health/probe.h"
#include "health/schedule.h"
#include "net/unique_fd.h"
#include "proxy/header.h"
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
  struct Target {
    const shm::PoolSlots* slots;
    size_t backend;
    ProbeSpec spec;
    Schedule schedule;
    Probe probe;
    int64_t started_us = 0;  // when the running check started (CLOCK_MONOTONIC)
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

  const config::Config& cfg_;
  const shm::BackendMap& map_;
  std::vector<std::unique_ptr<Target>> targets_;  // stable addresses for epoll_event.data.ptr
  std::vector<tls::ClientContext> contexts_;       // kind tls: one per pool, ProbeSpec::tls
  std::vector<size_t> passive_pools_;             // pools without [health]
  int64_t next_revive_ms_ = 0;
  net::UniqueFd epoll_;
  net::UniqueFd signal_fd_;
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
    for (size_t b = 0; b < pool.backends.size(); ++b) {
      uint64_t r1 = splitmix(seed);
      uint64_t r2 = splitmix(seed);
      ProbeSpec spec = makeSpec(*pool.health, pool.backends[b].address, tls);
      if (pool.proxy_protocol != config::ProxyProtocol::Off) {
        // Backends that expect a PROXY header on every connection get one: LOCAL, "this
        // connection is the balancer's own", whichever version the traffic uses (HAProxy and
        // nginx accept v2 wherever they accept v1).
        proxy::encodeV2Local(spec.preamble);
      }
      targets_.push_back(std::make_unique<Target>(
          Target{&map.pool(p), b, std::move(spec), Schedule(*pool.health, now, r1, r2),
                 Probe{}}));
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
    spdlog::error("health checker: pool {}: tls checks will fail: {}", pool.name, e.what());
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
    spdlog::critical("health checker: {}", e.what());
    return 1;
  }
  spdlog::info("health checker: {} backends to check, {} pools on passive health only",
               targets_.size(), passive_pools_.size());
  epoll_event events[kMaxEvents];
  for (;;) {
    int64_t now = monotonicMs();
    startDue(now);
    expire(now);
    reviveHeldDown(now);
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, waitMs(monotonicMs()));
    if (n < 0 && errno != EINTR) {
      spdlog::critical("health checker: epoll_wait: {}", std::strerror(errno));
      return 1;
    }
    now = monotonicMs();
    for (int i = 0; i < n; ++i) {
      auto* t = static_cast<Target*>(events[i].data.ptr);
      if (t == nullptr) {
        if (onSignal()) {
          return 0;
        }
        continue;
      }
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
    spdlog::error("health checker: epoll_ctl: {}", std::strerror(errno));
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
    spdlog::info("health checker: stopping on signal {}", si.ssi_signo);
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
  return static_cast<int>(std::clamp<int64_t>(next - now, 0, kMaxWaitMs));
}

int runChecker(const config::Config& cfg, shm::ShmRegion& region, const tls::Contexts* tls) {
  auto map = shm::BackendMap::find(region, cfg);
  if (!map) {
    spdlog::critical("health checker: {}", map.error().message());
    return 1;
  }
  uint64_t seed = static_cast<uint64_t>(::getpid()) * 0x9e3779b97f4a7c15 ^
                  static_cast<uint64_t>(monotonicMs());
  Checker checker(cfg, *map, seed, tls);
  return checker.run();
}

}  // namespace weir::health
