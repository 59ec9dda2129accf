#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "balance_fixture.h"

namespace weir::balance {
namespace {

constexpr std::string_view kHead = "[pools.p]\nbalance = \"least-conn\"\n";

TEST(LeastConn, PicksTheFewestActive) {
  BalanceFixture f(std::string(kHead) + weighted({1, 1, 1}));
  f.setActive(0, 5);
  f.setActive(1, 0);
  f.setActive(2, 3);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(f.pickReleased(), 1);
  }
  f.setActive(1, 4);
  EXPECT_EQ(f.pickReleased(), 2);
}

TEST(LeastConn, ComparesActivePerWeight) {
  BalanceFixture f(std::string(kHead) + weighted({1, 2, 3}));
  f.setActive(0, 10);
  f.setActive(1, 10);
  f.setActive(2, 10);
  EXPECT_EQ(f.pickReleased(), 2);  // 10/3 < 10/2 < 10/1
  f.setActive(2, 16);              // 16/3 > 10/2
  EXPECT_EQ(f.pickReleased(), 1);
}

TEST(LeastConn, TiesRotate) {
  BalanceFixture f(std::string(kHead) + weighted({1, 1, 1}));
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 300; ++i) {
    ++counts[static_cast<size_t>(f.pickReleased())];
  }
  EXPECT_EQ(counts, (std::vector<int>{100, 100, 100}));
}

TEST(LeastConn, HeldConnectionsFollowTheWeights) {
  BalanceFixture f(std::string(kHead) + weighted({1, 2, 3, 4}));
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(f.balancer->pick({}).status, PickStatus::Ok);
  }
  const int expected[] = {1000, 2000, 3000, 4000};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(f.pool(0).active(i), expected[i], 1) << i;
  }
}

TEST(LeastConn, CountsAreGlobalAcrossWorkers) {
  // Four workers (threads here, processes in weir) each with their own balancer over the same
  // shm slots, holding every connection: the global counts end up level.
  BalanceFixture f(std::string(kHead) + weighted({1, 1, 1, 1, 1}));
  std::vector<std::unique_ptr<Balancer>> workers;
  for (uint64_t w = 0; w < 4; ++w) {
    workers.push_back(f.another(w));
  }
  std::vector<std::thread> threads;
  for (auto& b : workers) {
    threads.emplace_back([&b] {
      for (int i = 0; i < 2001; ++i) {
        (void)b->pick({});
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::vector<int64_t> counts;
  for (size_t i = 0; i < 5; ++i) {
    counts.push_back(f.pool(0).active(i));
  }
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_LE(*hi - *lo, 1) << counts[0] << " " << counts[1] << " " << counts[2] << " "
                          << counts[3] << " " << counts[4];
  EXPECT_EQ(counts[0] + counts[1] + counts[2] + counts[3] + counts[4], 4 * 2001);
}

}  // namespace
}  // namespace weir::balance
