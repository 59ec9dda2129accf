#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/config.h"
#include "net/address.h"
#include "shm/pool_slots.h"

namespace weir::balance {

struct PickInput {
  const net::SockAddr* client = nullptr;  // maglev hashes the client's IP (not its port)
  uint64_t tried = 0;  // bit i: backend i already failed for this client (first 64 backends)
  // CLOCK_MONOTONIC milliseconds (the worker's loop time): what slow start measures ramps by.
  int64_t now_ms = 0;
};

enum class PickStatus {
  Ok,         // `backend` is chosen and reserved
  NoBackend,  // no backend is up (or every one that is up was tried)
  AllFull,    // backends are up, but each is at its max_connections
};

struct Pick {
  PickStatus status = PickStatus::NoBackend;
  int backend = -1;  // index into the pool's backends when status == Ok
};

// Picks a backend of one pool for a new connection. One instance per pool per worker, not
// thread-safe; what the workers share (health states, active counts) lives in shm.
//
// pick() does what every algorithm has in common, then asks choose() for the algorithm's part:
//  * candidates: backends that are eligible (up, and not drained or in maintenance by the
//    operator: shm::PoolSlots::eligible, read on every pick, so nothing derived from the states
//    is cached) and not yet tried by this client;
//  * backups: the pool's primaries when any primary is a candidate, else its backups (so a
//    backup receives traffic while no primary is up, or once every primary failed this client);
//  * max_connections: a candidate at its limit is skipped; if all are, the result is AllFull;
//  * the chosen backend is reserved: its active count in shm goes up by one before pick()
//    returns, so every worker sees it at once; the caller ends the reservation through
//    shm::PoolSlots (onConnectFailed, onClose or release);
//  * slow start (a pool with slow_start): weight(i) is backend i's effective weight, ramped
//    while it is new (shm::PoolSlots::rampElapsed, so every worker ramps it from the same
//    moment). pick() recomputes the weights when the health generation changed, and every
//    rampStepMs while a backend ramps; weightsChanged() tells the algorithm.
class Balancer {
public:
  Balancer(const config::Pool& pool, shm::PoolSlots slots);
  virtual ~Balancer() = default;
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  // Never allocates or blocks. Bounded: O(backends) per round, a few rounds at most when other
  // workers change the counts it compared.
  Pick pick(const PickInput& in);
  const shm::PoolSlots& slots() const { return slots_; }
  size_t size() const { return weights_.size(); }

protected:
  // Returns one backend i with allowed(i) (pick() guarantees there is at least one).
  virtual int choose(const PickInput& in) = 0;
  // Whether choose() compares active counts: then the reservation succeeds only if the chosen
  // backend's count is still the one compared, else pick() chooses again. This is what keeps
  // least-conn exact across workers that pick at the same moment.
  virtual bool comparesCounts() const { return false; }

  bool allowed(size_t i) const { return allowed_[i] != 0; }
  const std::vector<uint8_t>& allowedMask() const { return allowed_; }
  // The effective weight (scaled by kRampScale in a pool with slow_start).
  uint32_t weight(size_t i) const { return weights_[i]; }
  const std::vector<uint32_t>& weights() const { return weights_; }
  // The weight backend i has when not ramping (scaled like weight()).
  uint32_t fullWeight(size_t i) const { return full_[i]; }
  bool ramping(size_t i) const { return weights_[i] != full_[i]; }
  // Called by pick() after a slow-start refresh changed weights(), before choose().
  virtual void weightsChanged() {}
  bool backup(size_t i) const { return backup_[i] != 0; }
  // The active count of candidate i as read by this pick.
  int64_t seenActive(size_t i) const { return active_[i]; }
  // True if a's active/weight is below b's (the load measure of least-conn and random-two).
  bool lessLoaded(size_t a, size_t b) const {
    return active_[a] * static_cast<int64_t>(weights_[b]) <
           active_[b] * static_cast<int64_t>(weights_[a]);
  }

private:
  PickStatus fillAllowed(uint64_t tried);
  void refreshWeights(int64_t now_ms);

  shm::PoolSlots slots_;
  std::vector<uint32_t> full_;
  std::vector<uint32_t> weights_;
  int64_t slow_start_ms_ = 0;
  int64_t next_refresh_ms_;   // refresh at or after this time (or on a new generation)
  uint64_t seen_generation_ = 0;
  std::vector<uint8_t> backup_;
  std::vector<uint32_t> max_;
  std::vector<uint8_t> allowed_;  // scratch, rewritten by each pick
  std::vector<int64_t> active_;   // scratch
};

// The balancer for pool.balance over `slots` (the pool's slots, see shm::BackendMap). `seed`
// seeds random-two's generator (e.g. the worker's pid).
std::unique_ptr<Balancer> makeBalancer(const config::Pool& pool, const shm::PoolSlots& slots,
                                       uint64_t seed);

}  // namespace weir::balance
