#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "net/address.h"
#include "shm/layout.h"

namespace weir::shm {

// How one pool's backends go down and come back.
struct HealthPolicy {
  uint32_t rise = 2;          // consecutive passed checks: down -> up
  uint32_t fall = 3;          // consecutive failed checks: up -> down
  uint32_t passive_fall = 3;  // consecutive failed connects from traffic: up -> down; 0 = never
  // > 0 only in a pool without active checks: a backend taken down by traffic is up again
  // (on trial: one more failed connect takes it down) this long after it went down.
  int64_t holddown_ms = 0;
  // Slow start: a backend's weight ramps up over this long after it came up (changed_ms of an
  // Up backend); 0 = off.
  int64_t slow_start_ms = 0;
};
HealthPolicy policyFor(const config::Pool& pool);

struct Transition {
  BackendState from;
  BackendState to;
  bool operator==(const Transition&) const = default;
};

// One pool's backends in the shared region, index i = config backends[i], plus the pool's
// policy. Every backend state change goes through here: it is a compare-and-swap, so among
// all processes exactly one makes it, bumps the health generation and logs it (once).
//
// A connection's life, as a worker sees it:
//   Balancer::pick (reserves: active + 1) -> connect
//     -> onConnectOk -> ... -> onClose(bytes)     ends the reservation
//     -> onConnectFailed(err)                     ends the reservation; may retry elsewhere
//     -> release()                                never connected (no fd, no memory)
// Nothing here allocates or locks except the rare state change that logs.
class PoolSlots {
public:
  PoolSlots() = default;  // empty placeholder: size() == 0, nothing else may be called
  // slots[i]: backend i's health; traffic[i]: its row-0 Traffic, the rows after it each
  // `row_stride` bytes further, `rows` in all (see layout.h).
  PoolSlots(HealthPolicy policy, std::vector<BackendSlot*> slots, std::vector<Traffic*> traffic,
            size_t row_stride, uint32_t rows, std::atomic<uint64_t>* generation)
      : policy_(policy),
        slots_(std::move(slots)),
        traffic_(std::move(traffic)),
        row_stride_(row_stride),
        rows_(rows),
        generation_(generation) {}

  // The traffic row this process writes: 1 + its worker slot in a worker; 0 (the carried
  // totals) elsewhere. Rows the region does not have are ignored.
  void setWriter(uint32_t row) {
    if (row < rows_) {
      writer_ = row;
    }
  }

  size_t size() const { return slots_.size(); }
  BackendSlot& slot(size_t i) const { return *slots_[i]; }
  // Backend i's traffic as counted by row `row` (row < rows).
  Traffic& traffic(uint32_t row, size_t i) const {
    return *reinterpret_cast<Traffic*>(reinterpret_cast<char*>(traffic_[i]) + row * row_stride_);
  }
  const HealthPolicy& policy() const { return policy_; }
  // Changes whenever any backend of the region changes state.
  uint64_t generation() const { return generation_->load(std::memory_order_acquire); }

  BackendState state(size_t i) const {
    return static_cast<BackendState>(slots_[i]->state.load(std::memory_order_acquire));
  }
  // What the operator asked for; a value that is no AdminState reads as Maint.
  AdminState admin(size_t i) const {
    const uint32_t a = slots_[i]->admin.load(std::memory_order_acquire);
    return a <= static_cast<uint32_t>(AdminState::Maint) ? static_cast<AdminState>(a)
                                                         : AdminState::Maint;
  }
  // Up and not drained or in maintenance by the operator: may receive new connections.
  bool eligible(size_t i) const {
    return state(i) == BackendState::Up &&
           slots_[i]->admin.load(std::memory_order_acquire) ==
               static_cast<uint32_t>(AdminState::None);
  }
  // Slow start: milliseconds since backend i came up (a passed-checks or hold-down return,
  // or a reload adding it: changed_ms), or -1 if it is not ramping: the pool has no
  // slow_start, the backend is not up, it never changed state (it was there at start-up) or
  // its ramp is over. A time in the future (written after `now_ms` was read, or garbage)
  // reads as 0: just came up.
  int64_t rampElapsed(size_t i, int64_t now_ms) const;
  // Connections to backend i across all workers (including ones still connecting): the sum
  // of the workers' rows, clamped to [0, kMaxActive] (the rows may hold anything).
  int64_t active(size_t i) const;
  // Sums over every row (carried totals included).
  uint64_t total(size_t i) const { return sum(i, &Traffic::total); }
  uint64_t failedConnects(size_t i) const { return sum(i, &Traffic::failed_connects); }
  uint64_t bytesIn(size_t i) const { return sum(i, &Traffic::bytes_in); }
  uint64_t bytesOut(size_t i) const { return sum(i, &Traffic::bytes_out); }

  // Reserves a connection on backend i (adds it to this writer's row) unless it holds
  // max_connections (0 = no limit). Fails too when another process holds the backend's
  // reservation lock for too long (it died in the middle: the master frees the lock).
  bool reserve(size_t i, uint32_t max_connections) const;
  // Reserves a connection on backend i only if its active count is still `seen`, so that a
  // choice made by comparing counts is not based on a count another worker just changed.
  bool reserveIfActiveIs(size_t i, int64_t seen) const;
  void release(size_t i) const;
  void onConnectOk(size_t i) const;
  // Passive health: passive_fall failures in a row take the backend down. `err` is the
  // connect errno (ETIMEDOUT for connect_timeout). Returns the state change, if this call
  // made one.
  std::optional<Transition> onConnectFailed(size_t i, int err, int64_t now_ms) const;
  // bytes_in: received from the backend; bytes_out: sent to it.
  void onClose(size_t i, uint64_t bytes_in, uint64_t bytes_out) const;

  // The checker: one check result (`error` says why it failed; ignored if ok), applying
  // rise/fall. now_ms is CLOCK_MONOTONIC milliseconds.
  std::optional<Transition> recordProbe(size_t i, bool ok, std::string_view error,
                                        int64_t now_ms) const;
  // The checker, for pools without active checks: ends a passive hold-down that is over.
  std::optional<Transition> reviveIfHeldDown(size_t i, int64_t now_ms) const;
  // Any state -> Draining (a reload removed the backend). Draining is final.
  std::optional<Transition> setDraining(size_t i, int64_t now_ms) const;

  // Named backends (config::Backend::named), the checker only: puts `address` in the empty
  // slot i, which comes up with fresh check counters (and ramps, in a pool with slow_start).
  std::optional<Transition> fill(size_t i, const net::SockAddr& address, int64_t now_ms) const;
  // Takes slot i's address away (the name no longer returns it): Up or Down -> Empty, `why`
  // logged. Connections to it finish; new ones go elsewhere.
  std::optional<Transition> empty(size_t i, std::string_view why, int64_t now_ms) const;
  // The address in slot i of a named backend; nullopt if it is empty.
  std::optional<net::SockAddr> resolved(size_t i) const;

  // The largest active count reported (a garbage row cannot make arithmetic on it overflow).
  static constexpr int64_t kMaxActive = int64_t{1} << 31;

private:
  bool changeState(BackendSlot& s, BackendState from, BackendState to, int64_t now_ms) const;
  Traffic& mine(size_t i) const { return traffic(writer_, i); }
  // Under backend i's reservation lock: adds one to this writer's row if ok(active count).
  template <typename Ok>
  bool reserveWhen(size_t i, Ok ok) const;
  uint64_t sum(size_t i, std::atomic<uint64_t> Traffic::*field) const;

  HealthPolicy policy_;
  std::vector<BackendSlot*> slots_;
  std::vector<Traffic*> traffic_;
  size_t row_stride_ = 0;
  uint32_t rows_ = 0;
  uint32_t writer_ = 0;
  std::atomic<uint64_t>* generation_ = nullptr;
};

const char* toString(BackendState state);
const char* toString(AdminState state);

}  // namespace weir::shm
