#include "balance/balancer.h"

#include <cassert>

#include "balance/least_conn.h"
#include "balance/maglev.h"
#include "balance/random_two.h"
#include "balance/round_robin_balancer.h"
#include "balance/slow_start.h"
#include "util/time.h"

namespace weir::balance {
namespace {

// Rounds of choose + reserve before giving up on exact counts (see comparesCounts()).
constexpr int kRounds = 8;

bool isTried(uint64_t tried, size_t i) {
  return i < 64 && ((tried >> i) & 1) != 0;
}

}  // namespace

Balancer::Balancer(const config::Pool& pool, shm::PoolSlots slots)
    : slots_(std::move(slots)),
      slow_start_ms_(pool.slow_start.count()),
      next_refresh_ms_(util::kMinMs),
      allowed_(pool.backends.size(), 0),
      active_(pool.backends.size(), 0) {
  const uint32_t scale = slow_start_ms_ > 0 ? kRampScale : 1;
  for (const auto& backend : pool.backends) {
    full_.push_back(backend.weight * scale);
    backup_.push_back(backend.backup ? 1 : 0);
    max_.push_back(backend.max_connections);
  }
  weights_ = full_;
  // BackendMap builds one slot per configured backend, in config order.
  assert(slots_.size() == pool.backends.size());
}

PickStatus Balancer::fillAllowed(uint64_t tried) {
  const size_t n = size();
  bool primary = false;
  for (size_t i = 0; i < n; ++i) {
    allowed_[i] = slots_.eligible(i) && !isTried(tried, i);
    primary = primary || (allowed_[i] && !backup_[i]);
  }
  bool any_candidate = false;
  bool any_room = false;
  for (size_t i = 0; i < n; ++i) {
    // The tier in use: primaries if any primary is a candidate, else backups.
    if (!allowed_[i] || (backup_[i] != 0) == primary) {
      allowed_[i] = 0;
      continue;
    }
    any_candidate = true;
    active_[i] = slots_.active(i);
    if (max_[i] != 0 && active_[i] >= max_[i]) {
      allowed_[i] = 0;
    } else {
      any_room = true;
    }
  }
  if (!any_candidate) {
    return PickStatus::NoBackend;
  }
  return any_room ? PickStatus::Ok : PickStatus::AllFull;
}

void Balancer::refreshWeights(int64_t now_ms) {
  const uint64_t generation = slots_.generation();
  if (generation == seen_generation_ && now_ms < next_refresh_ms_) {
    return;
  }
  seen_generation_ = generation;
  bool changed = false;
  bool any_ramping = false;
  for (size_t i = 0; i < weights_.size(); ++i) {
    const int64_t elapsed = slots_.rampElapsed(i, now_ms);
    const uint32_t w = rampedWeight(full_[i], elapsed, slow_start_ms_);
    any_ramping = any_ramping || w != full_[i];
    changed = changed || w != weights_[i];
    weights_[i] = w;
  }
  // Nothing ramps: only a state change (a new generation) can start a ramp.
  next_refresh_ms_ =
      any_ramping ? util::addSaturating(now_ms, rampStepMs(slow_start_ms_)) : util::kMaxMs;
  if (changed) {
    weightsChanged();
  }
}

Pick Balancer::pick(const PickInput& in) {
  if (slow_start_ms_ > 0) {
    refreshWeights(in.now_ms);
  }
  int last = -1;
  for (int round = 0; round < kRounds; ++round) {
    PickStatus status = fillAllowed(in.tried);
    if (status != PickStatus::Ok) {
      return {status, -1};
    }
    int i = choose(in);
    assert(i >= 0 && allowed_[static_cast<size_t>(i)]);  // fillAllowed found a candidate
    bool reserved = comparesCounts() ? slots_.reserveIfActiveIs(i, active_[i])
                                     : slots_.reserve(i, max_[i]);
    if (reserved) {
      return {PickStatus::Ok, i};
    }
    last = i;
  }
  // The counts kept moving under us: settle for the last choice if it still has room.
  if (slots_.reserve(last, max_[last])) {
    return {PickStatus::Ok, last};
  }
  return {PickStatus::AllFull, -1};
}

std::unique_ptr<Balancer> makeBalancer(const config::Pool& pool, const shm::PoolSlots& slots,
                                       uint64_t seed) {
  switch (pool.balance) {
    case config::Balance::RoundRobin:
      return std::make_unique<RoundRobinBalancer>(pool, slots);
    case config::Balance::LeastConn:
      return std::make_unique<LeastConn>(pool, slots);
    case config::Balance::Maglev:
      return std::make_unique<Maglev>(pool, slots);
    case config::Balance::RandomTwo:
      return std::make_unique<RandomTwo>(pool, slots, seed);
  }
  return std::make_unique<RoundRobinBalancer>(pool, slots);
}

}  // namespace weir::balance
