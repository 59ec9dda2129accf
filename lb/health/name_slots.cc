#include "health/name_slots.h"

#include <algorithm>
#include <cstring>

namespace weir::health {
namespace {

// A total order on addresses, for sorting and de-duplicating `wanted`.
bool before(const net::SockAddr& a, const net::SockAddr& b) {
  if (a.family() != b.family()) {
    return a.family() < b.family();
  }
  if (a.len() != b.len()) {
    return a.len() < b.len();
  }
  return std::memcmp(a.get(), b.get(), a.len()) < 0;
}

}  // namespace

SlotPlan planSlots(const std::vector<std::optional<net::SockAddr>>& current,
                   const std::vector<int64_t>& active, std::vector<net::SockAddr> wanted) {
  std::sort(wanted.begin(), wanted.end(), before);
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  SlotPlan plan;
  std::vector<bool> placed(wanted.size(), false);
  std::vector<size_t> free;
  for (size_t k = 0; k < current.size(); ++k) {
    if (!current[k]) {
      free.push_back(k);
      continue;
    }
    auto it = std::find(wanted.begin(), wanted.end(), *current[k]);
    if (it != wanted.end() && !placed[static_cast<size_t>(it - wanted.begin())]) {
      placed[static_cast<size_t>(it - wanted.begin())] = true;  // stays where it is
      continue;
    }
    plan.empty.push_back(k);
    free.push_back(k);
  }
  // Fewest connections first; among equals, the lowest slot (stable: free is in slot order).
  auto connections = [&active](size_t k) { return k < active.size() ? active[k] : 0; };
  std::stable_sort(free.begin(), free.end(), [&](size_t a, size_t b) {
    return connections(a) < connections(b);
  });
  size_t next = 0;
  for (size_t w = 0; w < wanted.size(); ++w) {
    if (placed[w]) {
      continue;
    }
    if (next == free.size()) {
      ++plan.dropped;
      continue;
    }
    plan.fill.emplace_back(free[next++], wanted[w]);
  }
  return plan;
}

}  // namespace weir::health
