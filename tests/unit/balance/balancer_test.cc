// What every algorithm must do the same way: skip down and draining backends, respect tried
// backends, backups and max_connections, and reserve what it picks.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "balance_fixture.h"

namespace weir::balance {
namespace {

using shm::BackendState;

class EveryBalancer : public ::testing::TestWithParam<std::string> {
protected:
  // [pools.p] with `backends` and this test's algorithm.
  std::string pool(const std::string& backends) const {
    return "[pools.p]\nbalance = \"" + GetParam() + "\"\n" + backends;
  }
  // The backends picked (and released) for `n` picks from n different clients.
  std::set<int> picked(BalanceFixture& f, int n, uint64_t tried = 0) {
    std::set<int> out;
    auto from = clients(n);
    for (int i = 0; i < n; ++i) {
      out.insert(f.pickReleased({&from[i], tried}));
    }
    return out;
  }
};

TEST_P(EveryBalancer, PicksEveryUpBackend) {
  BalanceFixture f(pool(shm::backendList(4)));
  EXPECT_EQ(picked(f, 400), (std::set<int>{0, 1, 2, 3}));
}

TEST_P(EveryBalancer, SkipsDownAndDrainingBackends) {
  BalanceFixture f(pool(shm::backendList(4)));
  f.setState(1, BackendState::Down);
  f.setState(3, BackendState::Draining);
  EXPECT_EQ(picked(f, 400), (std::set<int>{0, 2}));
  f.setState(1, BackendState::Up);
  EXPECT_EQ(picked(f, 400), (std::set<int>{0, 1, 2}));
}

TEST_P(EveryBalancer, SkipsDrainedAndMaintainedBackends) {
  BalanceFixture f(pool(shm::backendList(4)));
  f.setAdmin(0, shm::AdminState::Drain);
  f.setAdmin(2, shm::AdminState::Maint);
  EXPECT_EQ(picked(f, 400), (std::set<int>{1, 3}));
  f.setAdmin(0, shm::AdminState::None);
  EXPECT_EQ(picked(f, 400), (std::set<int>{0, 1, 3}));
  // A value that is no admin state (a scribbling worker) keeps the backend out too.
  f.pool(0).slot(1).admin.store(7);
  EXPECT_EQ(picked(f, 400), (std::set<int>{0, 3}));
}

TEST_P(EveryBalancer, NoBackendWhenNoneIsUp) {
  BalanceFixture f(pool(shm::backendList(2)));
  f.setState(0, BackendState::Down);
  f.setState(1, BackendState::Down);
  Pick p = f.balancer->pick({});
  EXPECT_EQ(p.status, PickStatus::NoBackend);
  EXPECT_EQ(p.backend, -1);
}

TEST_P(EveryBalancer, RetriesGoElsewhere) {
  BalanceFixture f(pool(shm::backendList(3)));
  EXPECT_EQ(picked(f, 300, 0b101), (std::set<int>{1}));
  EXPECT_EQ(picked(f, 300, 0b001), (std::set<int>{1, 2}));
  Pick p = f.balancer->pick({nullptr, 0b111});
  EXPECT_EQ(p.status, PickStatus::NoBackend);
}

TEST_P(EveryBalancer, BackupsOnlyWhileNoPrimaryIsUp) {
  BalanceFixture f(pool(R"(backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2:80", backup = true },
  { address = "10.0.0.3:80" },
  { address = "10.0.0.4:80", backup = true },
]
)"));
  EXPECT_EQ(picked(f, 400), (std::set<int>{0, 2}));
  f.setState(0, BackendState::Down);
  EXPECT_EQ(picked(f, 400), (std::set<int>{2}));
  f.setState(2, BackendState::Draining);
  EXPECT_EQ(picked(f, 400), (std::set<int>{1, 3}));
  f.setState(3, BackendState::Down);
  EXPECT_EQ(picked(f, 400), (std::set<int>{1}));
  f.setState(0, BackendState::Up);
  EXPECT_EQ(picked(f, 400), (std::set<int>{0}));
}

TEST_P(EveryBalancer, BackupsOnceEveryPrimaryFailedThisClient) {
  BalanceFixture f(pool(R"(backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2:80", backup = true },
]
)"));
  EXPECT_EQ(picked(f, 100, 0b01), (std::set<int>{1}));
}

TEST_P(EveryBalancer, PickReservesAConnection) {
  BalanceFixture f(pool(shm::backendList(2)));
  Pick p = f.balancer->pick({});
  ASSERT_EQ(p.status, PickStatus::Ok);
  EXPECT_EQ(f.pool(0).active(static_cast<size_t>(p.backend)), 1);
}

TEST_P(EveryBalancer, AllFullIsReportedApart) {
  BalanceFixture f(pool(shm::backendList(2, "max_connections = 2")));
  auto from = clients(4);
  std::multiset<int> held;
  for (int i = 0; i < 4; ++i) {
    Pick p = f.balancer->pick({&from[i], 0});
    ASSERT_EQ(p.status, PickStatus::Ok) << i;
    held.insert(p.backend);
  }
  EXPECT_EQ(held, (std::multiset<int>{0, 0, 1, 1}));
  Pick full = f.balancer->pick({&from[0], 0});
  EXPECT_EQ(full.status, PickStatus::AllFull);
  EXPECT_EQ(full.backend, -1);
  f.pool(0).release(1);
  Pick again = f.balancer->pick({&from[0], 0});
  EXPECT_EQ(again.status, PickStatus::Ok);
  EXPECT_EQ(again.backend, 1);
}

TEST_P(EveryBalancer, FullPrimariesDoNotSpillToBackups) {
  BalanceFixture f(pool(R"(backends = [
  { address = "10.0.0.1:80", max_connections = 1 },
  { address = "10.0.0.2:80", backup = true },
]
)"));
  ASSERT_EQ(f.balancer->pick({}).backend, 0);
  EXPECT_EQ(f.balancer->pick({}).status, PickStatus::AllFull);
}

TEST_P(EveryBalancer, FullBackendsAreSkipped) {
  BalanceFixture f(pool(R"(backends = [
  { address = "10.0.0.1:80", max_connections = 5 },
  { address = "10.0.0.2:80" },
  { address = "10.0.0.3:80" },
]
)"));
  f.setActive(0, 5);
  EXPECT_EQ(picked(f, 300), (std::set<int>{1, 2}));
}

INSTANTIATE_TEST_SUITE_P(Algorithms, EveryBalancer,
                         ::testing::Values("round-robin", "least-conn", "maglev", "random-two"),
                         [](const auto& info) {
                           std::string name = info.param;
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST(RoundRobinBalancer, HonoursWeightsExactly) {
  BalanceFixture f("[pools.p]\n" + weighted({1, 2, 3, 4}));
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 10000; ++i) {
    ++counts[static_cast<size_t>(f.pickReleased())];
  }
  EXPECT_EQ(counts, (std::vector<int>{1000, 2000, 3000, 4000}));
}

TEST(RoundRobinBalancer, SkippedBackendsLeaveTheOthersTheirShares) {
  BalanceFixture f("[pools.p]\n" + weighted({5, 1, 1}));
  f.setState(0, BackendState::Down);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 1000; ++i) {
    ++counts[static_cast<size_t>(f.pickReleased())];
  }
  EXPECT_EQ(counts, (std::vector<int>{0, 500, 500}));
}

}  // namespace
}  // namespace weir::balance
