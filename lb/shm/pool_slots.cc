#include "shm/pool_slots.h"

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "shm/error_text.h"
#include "shm/resolved_address.h"
#include "util/time.h"

namespace weir::shm {
namespace {

void logChange(const BackendSlot& s, BackendState to, const std::string& why) {
  // Bounded by the fields: any process may have scribbled over the terminating NUL.
  const std::string_view pool(s.pool, strnlen(s.pool, kPoolKeyLen));
  const std::string_view address(s.address, strnlen(s.address, kAddressKeyLen));
  if (to == BackendState::Down) {
    spdlog::warn("pool {}: backend {} is down: {}", pool, address, why);
  } else {
    spdlog::info("pool {}: backend {} is {}: {}", pool, address, toString(to), why);
  }
}

std::string inARow(uint32_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s") + " in a row";
}

}  // namespace

HealthPolicy policyFor(const config::Pool& pool) {
  HealthPolicy policy;
  policy.passive_fall = pool.passive_fall;
  if (pool.health) {
    policy.rise = pool.health->rise;
    policy.fall = pool.health->fall;
  } else {
    policy.holddown_ms = pool.passive_holddown.count();
  }
  policy.slow_start_ms = pool.slow_start.count();
  return policy;
}

const char* toString(BackendState state) {
  switch (state) {
    case BackendState::Up:
      return "up";
    case BackendState::Down:
      return "down";
    case BackendState::Draining:
      return "draining";
    case BackendState::Empty:
      return "empty";
  }
  return "?";
}

const char* toString(AdminState state) {
  switch (state) {
    case AdminState::None:
      return "none";
    case AdminState::Drain:
      return "drain";
    case AdminState::Maint:
      return "maint";
  }
  return "?";
}

int64_t PoolSlots::rampElapsed(size_t i, int64_t now_ms) const {
  if (policy_.slow_start_ms <= 0 || state(i) != BackendState::Up) {
    return -1;
  }
  const int64_t since = slots_[i]->changed_ms.load(std::memory_order_relaxed);
  if (since <= 0) {
    return -1;
  }
  // Saturating: changed_ms is shared memory any worker can scribble on.
  const int64_t elapsed = std::max<int64_t>(0, util::subSaturating(now_ms, since));
  return elapsed < policy_.slow_start_ms ? elapsed : -1;
}

int64_t PoolSlots::active(size_t i) const {
  // Each row clamped first: no sum of at most kMaxWorkerSlots of them can overflow.
  int64_t total = 0;
  for (uint32_t row = 1; row < rows_; ++row) {
    total += std::clamp<int64_t>(traffic(row, i).active.load(std::memory_order_relaxed), 0,
                                 kMaxActive);
  }
  return std::min(total, kMaxActive);
}

uint64_t PoolSlots::sum(size_t i, std::atomic<uint64_t> Traffic::*field) const {
  uint64_t total = 0;
  for (uint32_t row = 0; row < rows_; ++row) {
    total += (traffic(row, i).*field).load(std::memory_order_relaxed);
  }
  return total;
}

// Spins on a busy reservation lock: a few quick retries, then yielding; past the bound the
// holder most likely died holding it (a worker killed in those few instructions).
constexpr int kLockSpins = 16;
constexpr int kLockAttempts = 1000;

template <typename Ok>
bool PoolSlots::reserveWhen(size_t i, Ok ok) const {
  auto& lock = slots_[i]->reserving;
  const uint32_t me = writer_ + 1;
  for (int attempt = 0;; ++attempt) {
    uint32_t free = 0;
    if (lock.compare_exchange_weak(free, me, std::memory_order_acquire,
                                   std::memory_order_relaxed)) {
      break;
    }
    if (attempt >= kLockAttempts) {
      return false;
    }
    if (attempt >= kLockSpins) {
      ::sched_yield();
    }
  }
  // Nobody else adds to this backend now; what others take away only makes room.
  const bool take = ok(active(i));
  if (take) {
    mine(i).active.fetch_add(1, std::memory_order_relaxed);
  }
  lock.store(0, std::memory_order_release);
  return take;
}

bool PoolSlots::reserve(size_t i, uint32_t max_connections) const {
  if (max_connections == 0) {
    mine(i).active.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return reserveWhen(i, [max_connections](int64_t n) { return n < max_connections; });
}

bool PoolSlots::reserveIfActiveIs(size_t i, int64_t seen) const {
  return reserveWhen(i, [seen](int64_t n) { return n == seen; });
}

void PoolSlots::release(size_t i) const {
  mine(i).active.fetch_sub(1, std::memory_order_relaxed);
}

void PoolSlots::onConnectOk(size_t i) const {
  BackendSlot& s = *slots_[i];
  mine(i).total.fetch_add(1, std::memory_order_relaxed);
  // Read first: most connects succeed, and a store would bounce the cache line between workers.
  if (s.passive_failures.load(std::memory_order_relaxed) != 0) {
    s.passive_failures.store(0, std::memory_order_relaxed);
  }
}

std::optional<Transition> PoolSlots::onConnectFailed(size_t i, int err, int64_t now_ms) const {
  BackendSlot& s = *slots_[i];
  Traffic& own = mine(i);
  own.active.fetch_sub(1, std::memory_order_relaxed);
  own.failed_connects.fetch_add(1, std::memory_order_relaxed);
  uint32_t n = s.passive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (policy_.passive_fall == 0 || n < policy_.passive_fall ||
      !changeState(s, BackendState::Up, BackendState::Down, now_ms)) {
    return std::nullopt;
  }
  // Start the way back from scratch: the checker needs `rise` fresh passes. (The checker may
  // overwrite `successes` concurrently; at worst the backend returns one check early.)
  s.passive_failures.store(0, std::memory_order_relaxed);
  s.successes.store(0, std::memory_order_relaxed);
  std::string error = std::string("connect: ") + std::strerror(err);
  (void)writeErrorText(s, error);
  std::string why = inARow(n, "failed connect") + " from traffic (" + error + ")";
  if (policy_.holddown_ms > 0) {
    why += "; tried again in " + config::formatDuration(config::Duration(policy_.holddown_ms));
  } else {
    why += "; health checks bring it back";
  }
  logChange(s, BackendState::Down, why);
  return Transition{BackendState::Up, BackendState::Down};
}

void PoolSlots::onClose(size_t i, uint64_t bytes_in, uint64_t bytes_out) const {
  Traffic& own = mine(i);
  own.active.fetch_sub(1, std::memory_order_relaxed);
  own.bytes_in.fetch_add(bytes_in, std::memory_order_relaxed);
  own.bytes_out.fetch_add(bytes_out, std::memory_order_relaxed);
}

std::optional<Transition> PoolSlots::recordProbe(size_t i, bool ok, std::string_view error,
                                                 int64_t now_ms) const {
  BackendSlot& s = *slots_[i];
  s.last_check_ms.store(now_ms, std::memory_order_relaxed);
  if (ok) {
    uint32_t n = s.successes.fetch_add(1, std::memory_order_relaxed) + 1;
    s.failures.store(0, std::memory_order_relaxed);
    if (n < policy_.rise || !changeState(s, BackendState::Down, BackendState::Up, now_ms)) {
      return std::nullopt;
    }
    s.passive_failures.store(0, std::memory_order_relaxed);
    logChange(s, BackendState::Up, inARow(n, "passed check"));
    return Transition{BackendState::Down, BackendState::Up};
  }
  uint32_t n = s.failures.fetch_add(1, std::memory_order_relaxed) + 1;
  s.successes.store(0, std::memory_order_relaxed);
  (void)writeErrorText(s, error);
  if (n < policy_.fall || !changeState(s, BackendState::Up, BackendState::Down, now_ms)) {
    return std::nullopt;
  }
  logChange(s, BackendState::Down, std::string(error) + " (" + inARow(n, "failed check") + ")");
  return Transition{BackendState::Up, BackendState::Down};
}

std::optional<Transition> PoolSlots::reviveIfHeldDown(size_t i, int64_t now_ms) const {
  BackendSlot& s = *slots_[i];
  // changed_ms is shared memory any worker can scribble on: saturating, so that garbage there
  // gives a wrong hold-down at worst, never signed overflow.
  const int64_t held_ms = util::subSaturating(now_ms, s.changed_ms.load(std::memory_order_relaxed));
  if (policy_.holddown_ms <= 0 || state(i) != BackendState::Down || held_ms < policy_.holddown_ms ||
      !changeState(s, BackendState::Down, BackendState::Up, now_ms)) {
    return std::nullopt;
  }
  uint32_t trial = policy_.passive_fall > 0 ? policy_.passive_fall - 1 : 0;
  s.passive_failures.store(trial, std::memory_order_relaxed);
  logChange(s, BackendState::Up,
            "on trial after a " +
                config::formatDuration(config::Duration(policy_.holddown_ms)) +
                " hold-down; one failed connect takes it down again");
  return Transition{BackendState::Down, BackendState::Up};
}

std::optional<Transition> PoolSlots::setDraining(size_t i, int64_t now_ms) const {
  BackendSlot& s = *slots_[i];
  auto from = static_cast<BackendState>(
      s.state.exchange(static_cast<uint32_t>(BackendState::Draining), std::memory_order_acq_rel));
  if (from == BackendState::Draining) {
    return std::nullopt;
  }
  s.changed_ms.store(now_ms, std::memory_order_relaxed);
  generation_->fetch_add(1, std::memory_order_release);
  logChange(s, BackendState::Draining, std::string("was ") + toString(from));
  return Transition{from, BackendState::Draining};
}

std::optional<Transition> PoolSlots::fill(size_t i, const net::SockAddr& address,
                                          int64_t now_ms) const {
  BackendSlot& s = *slots_[i];
  if (state(i) != BackendState::Empty) {
    return std::nullopt;
  }
  // The address first: a worker that sees the slot up must find an address in it.
  writeResolved(s, address);
  s.successes.store(0, std::memory_order_relaxed);
  s.failures.store(0, std::memory_order_relaxed);
  s.passive_failures.store(0, std::memory_order_relaxed);
  if (!changeState(s, BackendState::Empty, BackendState::Up, now_ms)) {
    return std::nullopt;
  }
  logChange(s, BackendState::Up, "the name resolves to " + address.toString());
  return Transition{BackendState::Empty, BackendState::Up};
}

std::optional<Transition> PoolSlots::empty(size_t i, std::string_view why, int64_t now_ms) const {
  BackendSlot& s = *slots_[i];
  for (BackendState from : {BackendState::Up, BackendState::Down}) {
    if (changeState(s, from, BackendState::Empty, now_ms)) {
      const auto address = readResolved(s);
      logChange(s, BackendState::Empty,
                (address ? address->toString() + ": " : std::string()) + std::string(why));
      return Transition{from, BackendState::Empty};
    }
  }
  return std::nullopt;
}

std::optional<net::SockAddr> PoolSlots::resolved(size_t i) const {
  return readResolved(*slots_[i]);
}

bool PoolSlots::changeState(BackendSlot& s, BackendState from, BackendState to,
                            int64_t now_ms) const {
  auto expected = static_cast<uint32_t>(from);
  if (!s.state.compare_exchange_strong(expected, static_cast<uint32_t>(to),
                                       std::memory_order_acq_rel)) {
    return false;
  }
  s.changed_ms.store(now_ms, std::memory_order_relaxed);
  generation_->fetch_add(1, std::memory_order_release);
  return true;
}

}  // namespace weir::shm
