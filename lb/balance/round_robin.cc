#include "balance/round_robin.h"

#include <utility>

namespace weir::balance {

RoundRobin::RoundRobin(std::vector<uint32_t> weights)
    : weights_(std::move(weights)), current_(weights_.size(), 0) {
  for (uint32_t weight : weights_) {
    total_ += weight;
  }
}

// nginx's smooth weighted round-robin: every backend earns its weight, the richest one is
// picked and pays back the total. Over sum(weights) picks each backend earns and pays exactly
// its share, so the state returns to zero and the sequence repeats.
int RoundRobin::next() {
  if (weights_.empty()) {
    return -1;
  }
  size_t best = 0;
  for (size_t i = 0; i < weights_.size(); ++i) {
    current_[i] += weights_[i];
    if (current_[i] > current_[best]) {
      best = i;  // strictly greater: ties go to the lowest index
    }
  }
  current_[best] -= total_;
  return static_cast<int>(best);
}

void RoundRobin::setWeights(const std::vector<uint32_t>& weights) {
  weights_ = weights;
  total_ = 0;
  for (uint32_t weight : weights_) {
    total_ += weight;
  }
}

int RoundRobin::nextAmong(const std::vector<uint8_t>& allowed) {
  int best = -1;
  int64_t total = 0;
  for (size_t i = 0; i < weights_.size(); ++i) {
    if (allowed[i] == 0) {
      continue;
    }
    current_[i] += weights_[i];
    total += weights_[i];
    if (best < 0 || current_[i] > current_[best]) {
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) {
    current_[best] -= total;
  }
  return best;
}

}  // namespace weir::balance
