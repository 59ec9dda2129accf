#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "net/address.h"

namespace weir::health {

// What to change in a named backend's slots after a lookup returned `wanted`.
struct SlotPlan {
  std::vector<size_t> empty;                            // slots whose address went away
  std::vector<std::pair<size_t, net::SockAddr>> fill;   // new addresses and the slot each gets
  size_t dropped = 0;  // addresses left out: the name returned more than it has slots
};

// current[k]: the address in slot k (nullopt: empty); active[k]: the connections slot k holds
// (an emptied slot keeps its old connections until they end). An address that stays keeps its
// slot, so its connections and counters stay with it. New addresses go to free slots, those
// holding no connections first, so that a slot's counts mix two addresses only when nothing
// else is free; wanted is taken in sorted order, so what is dropped is the same every time.
SlotPlan planSlots(const std::vector<std::optional<net::SockAddr>>& current,
                   const std::vector<int64_t>& active, std::vector<net::SockAddr> wanted);

}  // namespace weir::health
