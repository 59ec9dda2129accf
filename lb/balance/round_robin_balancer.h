#pragma once

#include "balance/balancer.h"
#include "balance/round_robin.h"

namespace weir::balance {

// balance = "round-robin": smooth weighted round-robin over the candidates. Each worker keeps
// its own rotation, so across N workers the shares are exact per worker and per window.
class RoundRobinBalancer : public Balancer {
public:
  RoundRobinBalancer(const config::Pool& pool, shm::PoolSlots slots)
      : Balancer(pool, std::move(slots)), rr_(weights()) {}

protected:
  int choose(const PickInput&) override { return rr_.nextAmong(allowedMask()); }
  // Slow start: the rotation goes on with the ramped weights.
  void weightsChanged() override { rr_.setWeights(weights()); }

private:
  RoundRobin rr_;
};

}  // namespace weir::balance
