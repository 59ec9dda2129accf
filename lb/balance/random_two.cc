#include "balance/random_two.h"

namespace weir::balance {

// SplitMix64: tiny, fast and good enough to spread picks; not for anything secret.
uint64_t RandomTwo::random() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

int RandomTwo::weighted(uint64_t r, int skip) const {
  int last = -1;
  for (size_t i = 0; i < size(); ++i) {
    if (!allowed(i) || static_cast<int>(i) == skip) {
      continue;
    }
    last = static_cast<int>(i);
    if (r < weight(i)) {
      return last;
    }
    r -= weight(i);
  }
  return last;  // only reached if r was out of range; the last candidate is as good as any
}

int RandomTwo::choose(const PickInput&) {
  uint64_t total = 0;
  size_t count = 0;
  for (size_t i = 0; i < size(); ++i) {
    if (allowed(i)) {
      total += weight(i);
      ++count;
    }
  }
  int a = weighted(random() % total, -1);
  if (count == 1) {
    return a;
  }
  int b = weighted(random() % (total - weight(static_cast<size_t>(a))), a);
  return lessLoaded(static_cast<size_t>(b), static_cast<size_t>(a)) ? b : a;
}

}  // namespace weir::balance
