#pragma once

#include "balance/balancer.h"

namespace weir::balance {

// balance = "least-conn": the candidate with the fewest active connections per unit of weight,
// counted across every worker (the counts live in shm). Ties rotate, so an idle pool is
// served in turn rather than always by its first backend.
class LeastConn : public Balancer {
public:
  LeastConn(const config::Pool& pool, shm::PoolSlots slots) : Balancer(pool, std::move(slots)) {}

protected:
  int choose(const PickInput& in) override;
  bool comparesCounts() const override { return true; }

private:
  size_t rotate_ = 0;
};

}  // namespace weir::balance
