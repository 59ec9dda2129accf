#pragma once

#include "balance/balancer.h"

namespace weir::balance {

// balance = "random-two": the power of two choices. Draws two distinct candidates at random,
// each with probability proportional to its weight, and takes the one with fewer active
// connections per unit of weight (global counts, from shm). Nearly as even as least-conn, but
// workers picking at the same moment rarely collide on one backend.
class RandomTwo : public Balancer {
public:
  RandomTwo(const config::Pool& pool, shm::PoolSlots slots, uint64_t seed)
      : Balancer(pool, std::move(slots)), state_(seed) {}

protected:
  int choose(const PickInput& in) override;
  bool comparesCounts() const override { return true; }

private:
  uint64_t random();
  // The candidate at weighted position r (0 <= r < total weight of candidates but `skip`).
  int weighted(uint64_t r, int skip) const;

  uint64_t state_;
};

}  // namespace weir::balance
