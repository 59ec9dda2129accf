#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shm/region.h"

namespace weir::shm {

// An admin state found in the old region (see carryOver).
struct CarriedAdmin {
  std::string pool;
  std::string address;
  AdminState state;
};

// What carryOver did.
struct CarryReport {
  uint32_t carried = 0;  // backends whose state came over
  // Backends of `to` whose slot in `from` held an admin state other than None, for the master
  // to adopt (carryOver does not write admin states into `to`: the master does, from its own
  // memory).
  std::vector<CarriedAdmin> admin;
  // Backends of `to` found in `from` whose slot there held impossible values (a state that is
  // no state, times in the future or before the clock began), one "pool/address: why" each;
  // they start fresh (up, counters zero).
  std::vector<std::string> rejected;
  // Empty, or why nothing was carried: `from`'s header no longer says what its owner made it.
  std::string header_problem;
};

// For a reload (or a binary upgrade) into a fresh region: copies, for every backend of `to`
// whose (pool, address) key is also in `from`, the health state, check counters, times, last
// error text and the cumulative traffic counters (total, failed connects, bytes, summed over
// `from`'s rows into `to`'s row 0). Active counts are not copied: the old workers still hold
// those connections and count them down in `from`. A backend draining in `from` starts up in
// `to` (it is back in the config); it and every backend not in `from` get changed_ms = now_ms,
// up since now, so that a pool with slow_start ramps them. Admin states are reported, not
// copied (CarryReport::admin).
//
// `from` is memory other processes can write: nothing read from it is used as a size, count or
// index (keys and layout come from `from`'s private copy), and each slot is checked before its
// values are taken (see CarryReport). `now_ms` is CLOCK_MONOTONIC milliseconds. Call it before
// any process uses `to`. Bumps the generation of `to` if anything was carried.
CarryReport carryOver(const ShmRegion& from, ShmRegion& to, int64_t now_ms);

}  // namespace weir::shm
