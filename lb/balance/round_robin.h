#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weir::balance {

// Smooth weighted round-robin (as nginx's upstream): over any window of sum(weights) picks,
// backend i is chosen exactly weight[i] times, and picks of one backend are spread out rather
// than bunched. Not thread-safe; each worker owns its own instance.
class RoundRobin {
public:
  // weights: one entry per backend, each >= 1. An empty vector is allowed (next() returns -1).
  explicit RoundRobin(std::vector<uint32_t> weights);

  // Returns the index of the next backend, or -1 if there are none.
  int next();
  // The same over the backends with allowed[i] != 0 only (allowed.size() == size()), as
  // nginx skips down peers: the skipped ones neither earn nor pay. -1 if none is allowed.
  int nextAmong(const std::vector<uint8_t>& allowed);
  // New weights (same size, each >= 1), as slow start ramps a backend. The rotation's state
  // is kept, as nginx keeps it when a peer's effective weight changes: the picks go on
  // spread out rather than restarting from the first backend.
  void setWeights(const std::vector<uint32_t>& weights);
  size_t size() const { return weights_.size(); }

private:
  std::vector<uint32_t> weights_;
  std::vector<int64_t> current_;
  int64_t total_ = 0;
};

}  // namespace weir::balance
