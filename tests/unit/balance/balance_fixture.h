#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "balance/balancer.h"
#include "net/address.h"
#include "shm/shm_fixture.h"

namespace weir::balance {

// A pool "p" in a fresh shm region with a balancer over it, as one worker would have.
class BalanceFixture : public shm::ShmFixture {
public:
  explicit BalanceFixture(std::string_view pools, uint64_t seed = 1)
      : ShmFixture(pools), balancer(makeBalancer(cfg.pools[0], pool(0), seed)) {}

  // Another worker's balancer over the same shared slots: worker `seed % kWorkers`'s row.
  std::unique_ptr<Balancer> another(uint64_t seed = 2) const {
    shm::PoolSlots theirs = pool(0);
    theirs.setWriter(static_cast<uint32_t>(seed % kWorkers) + 1);
    return makeBalancer(cfg.pools[0], theirs, seed);
  }

  // Picks and releases the reservation at once, so active counts stay as the test set them.
  int pickReleased(const PickInput& in = {}) {
    Pick p = balancer->pick(in);
    if (p.status == PickStatus::Ok) {
      pool(0).release(static_cast<size_t>(p.backend));
    }
    return p.backend;
  }

  // Sets a backend's state as the checker or a reload would, bumping the generation.
  void setState(size_t i, shm::BackendState state) {
    pool(0).slot(i).state.store(static_cast<uint32_t>(state));
    region.header().health_generation.fetch_add(1);
  }

  // Sets a backend's admin state as the master does.
  void setAdmin(size_t i, shm::AdminState state) {
    ASSERT_TRUE(region.setAdmin("p", cfg.pools[0].backends[i].address.toString(), state));
  }

  // Backend i's active count, as if worker 0 held all n connections.
  void setActive(size_t i, int64_t n) { pool(0).traffic(1, i).active.store(n); }

  std::unique_ptr<Balancer> balancer;
};

// `n` distinct client addresses, 10.(i/65536).(i/256%256).(i%256):40000.
inline std::vector<net::SockAddr> clients(int n) {
  std::vector<net::SockAddr> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::string text = "10." + std::to_string(i / 65536 % 256) + "." +
                       std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + ":40000";
    out.push_back(*net::SockAddr::parse(text));
  }
  return out;
}

// "backends = [...]" with the given weights, addresses 10.0.0.1.. port 80.
inline std::string weighted(const std::vector<int>& weights) {
  std::string out = "backends = [";
  for (size_t i = 0; i < weights.size(); ++i) {
    out += "{ address = \"10.0.0." + std::to_string(i + 1) +
           ":80\", weight = " + std::to_string(weights[i]) + " },";
  }
  return out + "]\n";
}

}  // namespace weir::balance
