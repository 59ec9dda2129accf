#include "balance/maglev_table.h"

#include <algorithm>

namespace weir::balance {
namespace {

bool isPrime(uint32_t n) {
  if (n < 2) {
    return false;
  }
  for (uint32_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}

// Independent halves of one key for the two permutation parameters.
uint64_t mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44d;
  x ^= x >> 33;
  return x;
}

}  // namespace

uint32_t MaglevTable::sizeFor(size_t backends) {
  size_t per_backend = backends <= 1000 ? 1000 : 100;
  auto n = static_cast<uint32_t>(std::max<size_t>(65537, per_backend * backends));
  while (!isPrime(n)) {
    ++n;  // primes are dense (gap < 300 below 2^32 in practice): a short loop
  }
  return n;
}

void MaglevTable::build(const std::vector<uint64_t>& keys, const std::vector<uint32_t>& weights,
                        const std::vector<uint8_t>& include, uint32_t size) {
  const size_t n = keys.size();
  empty_ = std::none_of(include.begin(), include.end(), [](uint8_t in) { return in != 0; });
  if (empty_) {
    entries_.clear();
    return;
  }
  entries_.assign(size, -1);
  offset_.assign(n, 0);
  skip_.assign(n, 0);
  next_.assign(n, 0);
  credit_.assign(n, 0);
  uint32_t max_weight = 0;
  for (size_t i = 0; i < n; ++i) {
    if (include[i] != 0) {
      max_weight = std::max(max_weight, weights[i]);
      offset_[i] = keys[i] % size;
      skip_[i] = mix(keys[i]) % (size - 1) + 1;  // 1..size-1: with size prime, a permutation
    }
  }
  // Turns go in the order of the keys, not of the list: nodes whose configs list the same
  // backends in another order still build the same table.
  order_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    order_[i] = i;
  }
  std::sort(order_.begin(), order_.end(), [&keys](size_t a, size_t b) {
    return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
  });
  uint32_t filled = 0;
  // Each round gives the heaviest backend a turn, so at most size rounds; each turn walks its
  // permutation, which covers all positions, so it finds a free one within size steps.
  for (uint32_t round = 0; filled < size && round < size; ++round) {
    for (size_t o = 0; o < n && filled < size; ++o) {
      const size_t i = order_[o];
      if (include[i] == 0) {
        continue;
      }
      credit_[i] += weights[i];
      if (credit_[i] < max_weight) {
        continue;
      }
      credit_[i] -= max_weight;
      uint64_t pos = (offset_[i] + next_[i] * skip_[i]) % size;
      while (entries_[pos] >= 0) {
        ++next_[i];
        pos = (offset_[i] + next_[i] * skip_[i]) % size;
      }
      entries_[pos] = static_cast<int32_t>(i);
      ++next_[i];
      ++filled;
    }
  }
}

}  // namespace weir::balance
