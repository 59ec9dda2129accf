#pragma once

#include <vector>

#include "config/config.h"
#include "shm/pool_slots.h"
#include "shm/region.h"
#include "util/result.h"

namespace weir::shm {

// Where each backend of one Config lives in a region: pool(p).slot(b) is the slot of
// config.pools[p].backends[b]. Built once per process at start-up (the lookup by key is a
// linear scan); after that the data path indexes vectors only.
// The address half of a backend's slot key: "IP:PORT", or for a named backend its name
// (config::backendName) when that fits kAddressKeyLen, else "~" and a hash of it.
std::string slotKey(const config::Backend& backend);

// Whether `pool` (a pool of the config `slots` was mapped from) has a backend name with no
// address in any of its slots: one that has never been answered here.
bool hasNameWithoutAddress(const config::Pool& pool, const PoolSlots& slots);

class BackendMap {
public:
  // The master, before forking: finds or allocates the slot of every backend of `cfg` in a
  // region made for it (ShmRegion::capacityFor). Fails with ENOSPC if the region has too few
  // free slots, leaving the slots it did add. A named backend's slot it adds starts Empty.
  static util::Result<BackendMap> create(ShmRegion& region, const config::Config& cfg);
  // Any process: finds the slots create() allocated. Fails with ENOENT if one is missing.
  static util::Result<BackendMap> find(const ShmRegion& region, const config::Config& cfg);

  // In worker slot `slot`'s process, before any connection: its traffic goes to its own row
  // (see layout.h) from now on.
  void setWorker(unsigned slot);

  // pool_index indexes Config::pools.
  const PoolSlots& pool(size_t pool_index) const { return pools_[pool_index]; }
  size_t poolCount() const { return pools_.size(); }

  // Header::names_unanswered: whether workers should still hold back accepting for named
  // backends' first addresses; the checker clears it once every name had an answer.
  bool namesUnanswered() const {
    return names_unanswered_->load(std::memory_order_acquire) != 0;
  }
  void setNamesAnswered() const { names_unanswered_->store(0, std::memory_order_release); }

private:
  BackendMap(std::vector<PoolSlots> pools, std::atomic<uint32_t>* names_unanswered)
      : pools_(std::move(pools)), names_unanswered_(names_unanswered) {}

  template <typename SlotOf>
  static util::Result<BackendMap> build(const ShmRegion& region, const config::Config& cfg,
                                        SlotOf slot_of, int err, const char* what);

  std::vector<PoolSlots> pools_;
  std::atomic<uint32_t>* names_unanswered_ = nullptr;
};

}  // namespace weir::shm
