#include "shm/backend_map.h"

#include <cerrno>
#include <cstdio>
#include <string>

namespace weir::shm {

bool hasNameWithoutAddress(const config::Pool& pool, const PoolSlots& slots) {
  for (const config::NameSlots& name : config::nameSlots(pool.backends)) {
    bool empty = true;
    for (uint32_t k = 0; k < name.count && empty; ++k) {
      empty = slots.state(name.first + k) == BackendState::Empty;
    }
    if (empty) {
      return true;
    }
  }
  return false;
}

std::string slotKey(const config::Backend& backend) {
  std::string name = config::backendName(backend);
  if (name.size() < kAddressKeyLen) {
    return name;
  }
  // FNV-1a, 64-bit: stable across builds, so a binary upgrade finds the slot again.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h = (h ^ c) * 0x100000001b3ULL;
  }
  char text[24];
  std::snprintf(text, sizeof(text), "~%016llx", static_cast<unsigned long long>(h));
  return text;
}

// Shared by create() and find(): slot_of(pool, address) returns a slot index or -1, which
// fails the whole map with `err` and a message starting with `what`.
template <typename SlotOf>
util::Result<BackendMap> BackendMap::build(const ShmRegion& region, const config::Config& cfg,
                                           SlotOf slot_of, int err, const char* what) {
  std::vector<PoolSlots> pools;
  pools.reserve(cfg.pools.size());
  for (const auto& pool : cfg.pools) {
    std::vector<BackendSlot*> slots;
    std::vector<Traffic*> traffic;
    slots.reserve(pool.backends.size());
    traffic.reserve(pool.backends.size());
    for (const auto& backend : pool.backends) {
      std::string address = slotKey(backend);
      int index = slot_of(pool.name, address, backend.named());
      if (index < 0) {
        return util::SysError{err, std::string(what) + " for pool " + pool.name + " backend " +
                                       address + " (" +
                                       std::to_string(region.backendCapacity()) + " slots)"};
      }
      slots.push_back(&region.backend(static_cast<uint32_t>(index)));
      traffic.push_back(&region.traffic(0, static_cast<uint32_t>(index)));
    }
    pools.emplace_back(policyFor(pool), std::move(slots), std::move(traffic),
                       region.trafficRowStride(),
                       region.trafficRows(), &region.header().health_generation);
  }
  return BackendMap(std::move(pools), &region.header().names_unanswered);
}

util::Result<BackendMap> BackendMap::create(ShmRegion& region, const config::Config& cfg) {
  auto slot_of = [&region](const std::string& pool, const std::string& address, bool named) {
    const bool added = region.find(pool, address) < 0;
    const int index = region.findOrAdd(pool, address);
    if (added && named && index >= 0) {
      region.backend(static_cast<uint32_t>(index))
          .state.store(static_cast<uint32_t>(BackendState::Empty), std::memory_order_relaxed);
    }
    return index;
  };
  return build(region, cfg, slot_of, ENOSPC, "no free shared-memory slot");
}

void BackendMap::setWorker(unsigned slot) {
  for (auto& pool : pools_) {
    pool.setWriter(slot + 1);
  }
}

util::Result<BackendMap> BackendMap::find(const ShmRegion& region, const config::Config& cfg) {
  auto slot_of = [&region](const std::string& pool, const std::string& address, bool) {
    return region.find(pool, address);
  };
  return build(region, cfg, slot_of, ENOENT, "no shared-memory slot");
}

}  // namespace weir::shm
