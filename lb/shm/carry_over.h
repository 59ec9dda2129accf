#pragma once

#include <cstdint>

#include "shm/region.h"

namespace weir::shm {

// For a reload into a fresh region: copies, for every backend slot of `to` whose (pool,
// address) key is also in `from`, the health state, check counters, times, last error text
// and the cumulative traffic counters (total, failed connects, bytes). Active counts are not
// copied: the old workers still hold those connections and count them down in `from`. A
// backend draining in `from` starts up in `to` (it is back in the config).
// Call it before any process uses `to`; `from` may be in use. Bumps the generation of `to` if
// anything was carried. Returns the number of backends carried.
uint32_t carryOver(const ShmRegion& from, ShmRegion& to);

}  // namespace weir::shm
