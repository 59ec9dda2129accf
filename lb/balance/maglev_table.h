#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weir::balance {

// Maglev's lookup table (Eisenbud et al., NSDI 2016): every backend walks its own permutation
// of the M positions (M prime), taking the next free one on each of its turns, until all are
// taken. A backend's permutation depends only on its own key and M, so rebuilding the table
// after the backend set changed (a reload) leaves most positions with their old backend.
//
// Weights: a backend takes turns in proportion to its weight (each round it earns
// weight/max_weight of a turn), so it ends up with that share of the positions.
//
// The table is a pure function of (key, weight) of the included backends and the size: turns
// go in key order, whatever order the backends are listed in, so every weir node with the
// same pool builds the same table (docs/scale-out.md).
class MaglevTable {
public:
  // The table size used for a pool of `backends`: the smallest prime >= 65537 and >= 1000 x
  // backends (100 x beyond 1000 backends, to bound memory). The extra disruption of a rebuild
  // shrinks with size / backends: at 1000 x, removing one of N backends by a reload moves under
  // 0.5% of clients beyond the removed backend's own 1/N (measured for N = 2..500); at 100 x it
  // would be about 2%. Built once per worker, so the size costs memory (4 bytes a position),
  // not time on the data path.
  static uint32_t sizeFor(size_t backends);

  // Rebuilds the table of `size` positions (a prime) over the backends i with include[i] != 0.
  // keys[i] identifies backend i (a hash of its address); weights[i] >= 1. With nothing
  // included the table is empty.
  void build(const std::vector<uint64_t>& keys, const std::vector<uint32_t>& weights,
             const std::vector<uint8_t>& include, uint32_t size);

  bool empty() const { return empty_; }
  uint32_t size() const { return static_cast<uint32_t>(entries_.size()); }
  // The backend at position pos % size(); -1 if the table is empty.
  int at(uint64_t pos) const { return empty_ ? -1 : entries_[pos % entries_.size()]; }

private:
  std::vector<int32_t> entries_;
  bool empty_ = true;
  // Scratch for build(), kept to avoid reallocating on every health change.
  std::vector<uint64_t> offset_, skip_, next_, credit_;
  std::vector<size_t> order_;
};

}  // namespace weir::balance
