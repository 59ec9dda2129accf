#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "balance_fixture.h"

namespace weir::balance {
namespace {

constexpr std::string_view kHead = "[pools.p]\nbalance = \"random-two\"\n";

TEST(RandomTwo, IdleBackendsArePickedByWeight) {
  BalanceFixture f(std::string(kHead) + weighted({1, 2, 3, 4}));
  constexpr int kPicks = 200000;
  std::vector<int> counts(4, 0);
  for (int i = 0; i < kPicks; ++i) {
    ++counts[static_cast<size_t>(f.pickReleased())];
  }
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(static_cast<double>(counts[i]) / kPicks, (i + 1) / 10.0, 0.01) << i;
  }
}

TEST(RandomTwo, TakesTheLessLoadedOfTwo) {
  BalanceFixture f(std::string(kHead) + weighted({1, 1}));
  f.setActive(0, 100);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(f.pickReleased(), 1);
  }
}

TEST(RandomTwo, HeldConnectionsStayLevel) {
  BalanceFixture f(std::string(kHead) + weighted({1, 1, 1, 1, 1, 1, 1, 1}));
  for (int i = 0; i < 8000; ++i) {
    ASSERT_EQ(f.balancer->pick({}).status, PickStatus::Ok);
  }
  std::vector<int64_t> counts;
  for (size_t i = 0; i < 8; ++i) {
    counts.push_back(f.pool(0).active(i));
  }
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  // The power of two choices keeps the gap tiny (O(log log n)); pure random would be ~60.
  EXPECT_LE(*hi - *lo, 6);
}

TEST(RandomTwo, SeedsChangeTheSequence) {
  BalanceFixture a(std::string(kHead) + weighted({1, 1, 1, 1}), 1);
  BalanceFixture b(std::string(kHead) + weighted({1, 1, 1, 1}), 2);
  int same = 0;
  for (int i = 0; i < 100; ++i) {
    same += a.pickReleased() == b.pickReleased() ? 1 : 0;
  }
  EXPECT_LT(same, 60);
}

}  // namespace
}  // namespace weir::balance
