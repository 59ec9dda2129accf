#include "balance/maglev.h"

#include "balance/hash.h"

namespace weir::balance {
namespace {

// Positions to walk from a client's own before falling back to hashing over the candidates.
// With a fraction f of the tier able to take the client, the walk fails with (1-f)^64: under
// 0.2% even with 9 of 10 backends down.
constexpr uint32_t kMaxWalk = 64;
constexpr uint64_t kTicketSeed = 0x736c6f772d737461;  // "slow-sta"

}  // namespace

Maglev::Maglev(const config::Pool& pool, shm::PoolSlots slots) : Balancer(pool, std::move(slots)) {
  std::vector<uint64_t> keys;
  std::vector<uint8_t> primary;
  std::vector<uint8_t> backup;
  for (const auto& b : pool.backends) {
    keys.push_back(hashString(config::backendName(b), 0));
    primary.push_back(b.backup ? 0 : 1);
    backup.push_back(b.backup ? 1 : 0);
  }
  const uint32_t size = MaglevTable::sizeFor(pool.backends.size());
  primaries_.build(keys, weights(), primary, size);
  backups_.build(keys, weights(), backup, size);
}

int Maglev::choose(const PickInput& in) {
  // pick() offers candidates of one tier only: find out which.
  bool primary = false;
  size_t count = 0;
  for (size_t i = 0; i < size(); ++i) {
    if (allowed(i)) {
      primary = primary || !backup(i);
      ++count;
    }
  }
  const MaglevTable& table = primary ? primaries_ : backups_;
  const uint64_t h = hashClientIp(in.client);
  // Slow start: the client's ticket, independent of its table position (another hash of the
  // same address), admits it to a ramping backend once the ramp has reached it.
  const uint64_t ticket = hashBytes(&h, sizeof(h), kTicketSeed);
  for (uint32_t k = 0; k < kMaxWalk && !table.empty(); ++k) {
    int b = table.at(h % table.size() + k);
    const auto i = static_cast<size_t>(b);
    if (allowed(i) && (!ramping(i) || ticket % fullWeight(i) < weight(i))) {
      return b;
    }
  }
  // Nearly every backend of the tier is out: hash over the candidates themselves.
  size_t nth = static_cast<size_t>(h % count);
  for (size_t i = 0; i < size(); ++i) {
    if (allowed(i) && nth-- == 0) {
      return static_cast<int>(i);
    }
  }
  return -1;  // unreachable: pick() only calls choose() with a candidate
}

}  // namespace weir::balance
