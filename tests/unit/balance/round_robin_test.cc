#include <gtest/gtest.h>

#include <numeric>
#include <string>

#include "balance/round_robin.h"

namespace weir::balance {
namespace {

std::string picks(RoundRobin& rr, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += static_cast<char>('a' + rr.next());
  }
  return out;
}

TEST(RoundRobin, NginxClassicSequence) {
  RoundRobin rr({5, 1, 1});
  EXPECT_EQ(picks(rr, 7), "aabacaa");
  EXPECT_EQ(picks(rr, 7), "aabacaa");  // the state is back at zero after sum(weights) picks
}

TEST(RoundRobin, EqualWeightsTakeTurns) {
  RoundRobin rr({1, 1, 1});
  EXPECT_EQ(picks(rr, 6), "abcabc");
}

TEST(RoundRobin, EachBackendGetsItsWeightPerWindow) {
  const std::vector<std::vector<uint32_t>> cases = {
      {1}, {1, 1}, {2, 1}, {3, 7}, {5, 1, 1}, {1, 2, 3, 4}, {10, 1, 100, 7, 7}, {1000, 1},
  };
  for (const auto& weights : cases) {
    RoundRobin rr(weights);
    uint32_t window = std::accumulate(weights.begin(), weights.end(), 0u);
    for (int round = 0; round < 3; ++round) {
      std::vector<uint32_t> counts(weights.size(), 0);
      for (uint32_t i = 0; i < window; ++i) {
        int pick = rr.next();
        ASSERT_GE(pick, 0);
        ASSERT_LT(static_cast<size_t>(pick), weights.size());
        ++counts[pick];
      }
      EXPECT_EQ(counts, weights) << "round " << round << " of weights[0]=" << weights[0];
    }
  }
}

TEST(RoundRobin, SpreadsPicksOfAHeavyBackend) {
  // Smoothness: with {2, 1} the light backend lands between the heavy one's picks.
  RoundRobin rr({2, 1});
  EXPECT_EQ(picks(rr, 6), "abaaba");
}

TEST(RoundRobin, SingleBackend) {
  RoundRobin rr({3});
  EXPECT_EQ(rr.size(), 1u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(rr.next(), 0);
  }
}

TEST(RoundRobin, Empty) {
  RoundRobin rr({});
  EXPECT_EQ(rr.size(), 0u);
  EXPECT_EQ(rr.next(), -1);
  EXPECT_EQ(rr.next(), -1);
}

}  // namespace
}  // namespace weir::balance
