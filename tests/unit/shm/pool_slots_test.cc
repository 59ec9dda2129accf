#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <optional>
#include <thread>
#include <vector>

#include "shm/error_text.h"
#include "shm/pool_slots.h"
#include "shm_fixture.h"

namespace weir::shm {
namespace {

constexpr Transition kWentDown{BackendState::Up, BackendState::Down};
constexpr Transition kCameUp{BackendState::Down, BackendState::Up};

TEST(PoolSlots, PolicyOfAPassiveOnlyPool) {
  ShmFixture f("[pools.p]\npassive_holddown = \"7s\"\n" + backendList(2));
  const HealthPolicy& p = f.pool().policy();
  EXPECT_EQ(p.passive_fall, 3u);
  EXPECT_EQ(p.holddown_ms, 7000);
}

TEST(PoolSlots, PolicyOfACheckedPool) {
  ShmFixture f("[pools.p]\n" + backendList(2) + "[pools.p.health]\nrise = 4\nfall = 5\n");
  const HealthPolicy& p = f.pool().policy();
  EXPECT_EQ(p.rise, 4u);
  EXPECT_EQ(p.fall, 5u);
  EXPECT_EQ(p.passive_fall, 5u);
  EXPECT_EQ(p.holddown_ms, 0);  // the checker brings backends back
}

TEST(PoolSlots, BackendsStartUpAndIdle) {
  ShmFixture f("[pools.p]\n" + backendList(3));
  const PoolSlots& s = f.pool();
  ASSERT_EQ(s.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(s.eligible(i));
    EXPECT_EQ(s.active(i), 0);
    EXPECT_EQ(s.slot(i).last_check_ms.load(), 0);
  }
  EXPECT_STREQ(s.slot(2).address, "10.0.0.3:80");
  EXPECT_STREQ(s.slot(2).pool, "p");
}

TEST(PoolSlots, ConnectionLifeCounters) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  const PoolSlots& s = f.pool();
  ASSERT_TRUE(s.reserve(0, 0));
  EXPECT_EQ(s.active(0), 1);
  s.onConnectOk(0);
  s.onClose(0, 100, 7);
  ASSERT_TRUE(s.reserve(0, 0));
  EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 1), std::nullopt);
  ASSERT_TRUE(s.reserve(0, 0));
  s.release(0);
  EXPECT_EQ(s.active(0), 0);
  EXPECT_EQ(s.total(0), 1u);
  EXPECT_EQ(s.failedConnects(0), 1u);
  EXPECT_EQ(s.bytesIn(0), 100u);
  EXPECT_EQ(s.bytesOut(0), 7u);
  // All of it in worker 0's own row (row 1); nobody else's row was touched.
  EXPECT_EQ(s.traffic(1, 0).total.load(), 1u);
  for (uint32_t row : {0u, 2u, 3u, 4u}) {
    EXPECT_EQ(s.traffic(row, 0).total.load(), 0u) << row;
    EXPECT_EQ(s.traffic(row, 0).active.load(), 0) << row;
  }
}

TEST(PoolSlots, EachWorkerCountsInItsOwnRowAndTheSumIsGlobal) {
  ShmFixture f("[pools.p]\n" + backendList(2));
  PoolSlots w0 = f.pool();
  PoolSlots w2 = f.pool();
  w2.setWriter(3);  // worker slot 2
  ASSERT_TRUE(w0.reserve(0, 0));
  ASSERT_TRUE(w2.reserve(0, 0));
  ASSERT_TRUE(w2.reserve(0, 0));
  EXPECT_EQ(w0.active(0), 3);
  EXPECT_EQ(w2.active(0), 3);
  EXPECT_EQ(f.pool().traffic(1, 0).active.load(), 1);
  EXPECT_EQ(f.pool().traffic(3, 0).active.load(), 2);
  // max_connections counts every worker's connections.
  EXPECT_FALSE(w0.reserve(0, 3));
  EXPECT_EQ(w0.active(0), 3) << "a refused reservation is taken back";
  EXPECT_TRUE(w0.reserve(1, 3));
}

TEST(PoolSlots, RetiringADeadWorkerFreesItsConnectionsAtOnce) {
  ShmFixture f("[pools.p]\n" + backendList(1, "max_connections = 2"));
  PoolSlots dead = f.pool();
  dead.setWriter(2);  // worker slot 1
  ASSERT_TRUE(dead.reserve(0, 2));
  dead.onConnectOk(0);
  ASSERT_TRUE(dead.reserve(0, 2));
  dead.onConnectOk(0);
  EXPECT_FALSE(f.pool().reserve(0, 2)) << "full while worker 1 holds two connections";
  f.region.retireWorker(1);  // the master, after worker 1 died
  EXPECT_EQ(f.pool().active(0), 0);
  EXPECT_TRUE(f.pool().reserve(0, 2));
  EXPECT_EQ(f.pool().total(0), 2u) << "totals survive the worker";
}

TEST(PoolSlots, ConcurrentReservationsNeverExceedTheLimit) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  std::atomic<int64_t> highest{0};
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < ShmFixture::kWorkers; ++w) {
    threads.emplace_back([&, w] {
      PoolSlots mine = f.pool();
      mine.setWriter(w + 1);
      for (int i = 0; i < 20000; ++i) {
        if (mine.reserve(0, 3)) {
          ++taken;
          const int64_t now = mine.active(0);
          int64_t seen = highest.load();
          while (now > seen && !highest.compare_exchange_weak(seen, now)) {
          }
          mine.release(0);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_LE(highest.load(), 3);
  EXPECT_GT(taken.load(), 0);
  EXPECT_EQ(f.pool().active(0), 0);
}

TEST(PoolSlots, ALockLeftByADeadWorkerIsFreedWhenItIsRetired) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  f.pool().slot(0).reserving.store(3);  // worker slot 1 (row 2) died holding it
  EXPECT_FALSE(f.pool().reserve(0, 5)) << "a bounded wait, then the reservation fails";
  EXPECT_TRUE(f.pool().reserve(0, 0)) << "without a limit no lock is needed";
  f.region.retireWorker(0);
  EXPECT_EQ(f.pool().slot(0).reserving.load(), 3u) << "only the dead worker's own lock";
  f.region.retireWorker(1);
  EXPECT_EQ(f.pool().slot(0).reserving.load(), 0u);
  EXPECT_TRUE(f.pool().reserve(0, 5));
}

TEST(PoolSlots, ScribbledRowsNeverOverflowTheSum) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  for (uint32_t row = 1; row <= ShmFixture::kWorkers; ++row) {
    f.pool().traffic(row, 0).active.store(INT64_MAX);
  }
  EXPECT_EQ(f.pool().active(0), PoolSlots::kMaxActive);
  f.pool().traffic(1, 0).active.store(INT64_MIN);
  for (uint32_t row = 2; row <= ShmFixture::kWorkers; ++row) {
    f.pool().traffic(row, 0).active.store(0);
  }
  EXPECT_EQ(f.pool().active(0), 0);
}

TEST(PoolSlots, ReserveHonoursMaxConnections) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  const PoolSlots& s = f.pool();
  EXPECT_TRUE(s.reserve(0, 2));
  EXPECT_TRUE(s.reserve(0, 2));
  EXPECT_FALSE(s.reserve(0, 2));
  EXPECT_EQ(s.active(0), 2);
  s.release(0);
  EXPECT_TRUE(s.reserve(0, 2));
}

TEST(PoolSlots, ReserveIfActiveIsComparesTheCount) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  const PoolSlots& s = f.pool();
  EXPECT_TRUE(s.reserveIfActiveIs(0, 0));
  EXPECT_FALSE(s.reserveIfActiveIs(0, 0));  // another worker got there first
  EXPECT_TRUE(s.reserveIfActiveIs(0, 1));
  EXPECT_EQ(s.active(0), 2);
}

TEST(PoolSlots, PassiveFallTakesABackendDownOnce) {
  ShmFixture f("[pools.p]\n" + backendList(2));
  const PoolSlots& s = f.pool();
  uint64_t gen = s.generation();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.reserve(0, 0));
    EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 10), std::nullopt);
  }
  EXPECT_TRUE(s.eligible(0));
  ASSERT_TRUE(s.reserve(0, 0));
  EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 20), kWentDown);
  EXPECT_EQ(s.state(0), BackendState::Down);
  EXPECT_EQ(s.slot(0).changed_ms.load(), 20);
  EXPECT_EQ(s.generation(), gen + 1);
  EXPECT_EQ(readErrorText(s.slot(0)), "connect: Connection refused");
  // Connections already under way that fail too change nothing more.
  ASSERT_TRUE(s.reserve(0, 0));
  EXPECT_EQ(s.onConnectFailed(0, ETIMEDOUT, 21), std::nullopt);
  EXPECT_EQ(s.generation(), gen + 1);
  EXPECT_TRUE(s.eligible(1));
  EXPECT_EQ(s.active(0), 0);
}

TEST(PoolSlots, ASuccessfulConnectResetsThePassiveCount) {
  ShmFixture f("[pools.p]\n" + backendList(1));
  const PoolSlots& s = f.pool();
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(s.reserve(0, 0));
      (void)s.onConnectFailed(0, ECONNREFUSED, 1);
    }
    ASSERT_TRUE(s.reserve(0, 0));
    s.onConnectOk(0);
    s.onClose(0, 0, 0);
  }
  EXPECT_TRUE(s.eligible(0));
}

TEST(PoolSlots, PassiveFallZeroNeverMarks) {
  ShmFixture f("[pools.p]\npassive_fall = 0\n" + backendList(1));
  const PoolSlots& s = f.pool();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(s.reserve(0, 0));
    EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 1), std::nullopt);
  }
  EXPECT_TRUE(s.eligible(0));
}

TEST(PoolSlots, HoldDownEndsOnTrial) {
  ShmFixture f("[pools.p]\npassive_holddown = \"10s\"\n" + backendList(1));
  const PoolSlots& s = f.pool();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.reserve(0, 0));
    (void)s.onConnectFailed(0, ECONNREFUSED, 1000);
  }
  ASSERT_EQ(s.state(0), BackendState::Down);
  EXPECT_EQ(s.reviveIfHeldDown(0, 10999), std::nullopt);
  EXPECT_EQ(s.reviveIfHeldDown(0, 11000), kCameUp);
  EXPECT_EQ(s.reviveIfHeldDown(0, 11001), std::nullopt);
  // On trial: the next failure alone takes it down again.
  ASSERT_TRUE(s.reserve(0, 0));
  EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 12000), kWentDown);
  EXPECT_EQ(s.reviveIfHeldDown(0, 21999), std::nullopt);
  EXPECT_EQ(s.reviveIfHeldDown(0, 22000), kCameUp);
  // A success ends the trial: it takes passive_fall failures again.
  ASSERT_TRUE(s.reserve(0, 0));
  s.onConnectOk(0);
  s.onClose(0, 0, 0);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.reserve(0, 0));
    EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 23000), std::nullopt);
  }
}

// changed_ms is in memory every worker can write. Garbage there must not make the checker
// compute now - changed_ms with signed overflow (which, wrapped, read as "held down for a
// negative time" and kept the backend down for good): a time that far back is long over.
TEST(PoolSlots, HoldDownSurvivesGarbageChangeTime) {
  ShmFixture f("[pools.p]\npassive_holddown = \"10s\"\n" + backendList(1));
  const PoolSlots& s = f.pool();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.reserve(0, 0));
    (void)s.onConnectFailed(0, ECONNREFUSED, 1000);
  }
  ASSERT_EQ(s.state(0), BackendState::Down);
  s.slot(0).changed_ms.store(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(s.reviveIfHeldDown(0, 5000), kCameUp);
  // The other way round: a change "in the far future" only keeps it held down.
  ASSERT_TRUE(s.reserve(0, 0));
  ASSERT_EQ(s.onConnectFailed(0, ECONNREFUSED, 6000), kWentDown);
  s.slot(0).changed_ms.store(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(s.reviveIfHeldDown(0, std::numeric_limits<int64_t>::min() + 5), std::nullopt);
  EXPECT_EQ(s.state(0), BackendState::Down);
}

TEST(PoolSlots, CheckedPoolsHaveNoHoldDown) {
  ShmFixture f("[pools.p]\n" + backendList(1) + "[pools.p.health]\nfall = 1\n");
  const PoolSlots& s = f.pool();
  ASSERT_TRUE(s.reserve(0, 0));
  ASSERT_EQ(s.onConnectFailed(0, ECONNREFUSED, 0), kWentDown);
  EXPECT_EQ(s.reviveIfHeldDown(0, 1'000'000'000), std::nullopt);
  EXPECT_EQ(s.state(0), BackendState::Down);
}

TEST(PoolSlots, ProbesApplyFallAndRise) {
  ShmFixture f("[pools.p]\n" + backendList(1) + "[pools.p.health]\nrise = 2\nfall = 3\n");
  const PoolSlots& s = f.pool();
  EXPECT_EQ(s.recordProbe(0, false, "timeout after 1s", 100), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, false, "timeout after 1s", 200), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, true, "", 300), std::nullopt);  // breaks the run
  EXPECT_EQ(s.recordProbe(0, false, "a", 400), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, false, "b", 500), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, false, "status 500, expected 200", 600), kWentDown);
  EXPECT_EQ(s.slot(0).failures.load(), 3u);
  EXPECT_EQ(s.slot(0).last_check_ms.load(), 600);
  EXPECT_EQ(readErrorText(s.slot(0)), "status 500, expected 200");
  EXPECT_EQ(s.recordProbe(0, false, "c", 700), std::nullopt);  // already down
  EXPECT_EQ(s.recordProbe(0, true, "", 800), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, true, "", 900), kCameUp);
  EXPECT_EQ(s.slot(0).changed_ms.load(), 900);
  EXPECT_EQ(s.recordProbe(0, true, "", 1000), std::nullopt);
  // The last error stays for the operator after the backend recovered.
  EXPECT_EQ(readErrorText(s.slot(0)), "c");
}

TEST(PoolSlots, PassiveDownNeedsFreshPassesToComeBack) {
  ShmFixture f("[pools.p]\n" + backendList(1) + "[pools.p.health]\nrise = 2\nfall = 2\n");
  const PoolSlots& s = f.pool();
  for (int i = 0; i < 5; ++i) {
    (void)s.recordProbe(0, true, "", i);  // checks pass (e.g. on another port)
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.reserve(0, 0));
    (void)s.onConnectFailed(0, ECONNRESET, 10);
  }
  ASSERT_EQ(s.state(0), BackendState::Down);
  EXPECT_EQ(s.recordProbe(0, true, "", 20), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, true, "", 30), kCameUp);
}

TEST(PoolSlots, DrainingIsFinal) {
  ShmFixture f("[pools.p]\n" + backendList(1) + "[pools.p.health]\nrise = 1\nfall = 1\n");
  const PoolSlots& s = f.pool();
  uint64_t gen = s.generation();
  EXPECT_EQ(s.setDraining(0, 5), (Transition{BackendState::Up, BackendState::Draining}));
  EXPECT_EQ(s.setDraining(0, 6), std::nullopt);
  EXPECT_EQ(s.generation(), gen + 1);
  EXPECT_FALSE(s.eligible(0));
  EXPECT_EQ(s.recordProbe(0, false, "x", 7), std::nullopt);
  EXPECT_EQ(s.recordProbe(0, true, "", 8), std::nullopt);
  ASSERT_TRUE(s.reserve(0, 0));
  EXPECT_EQ(s.onConnectFailed(0, ECONNREFUSED, 9), std::nullopt);
  EXPECT_EQ(s.state(0), BackendState::Draining);
}

TEST(PoolSlots, ConcurrentFailuresChangeStateExactlyOnce) {
  ShmFixture f("[pools.p]\npassive_fall = 1\n" + backendList(1));
  const PoolSlots& s = f.pool();
  std::atomic<int> transitions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (s.reserve(0, 0) && s.onConnectFailed(0, ECONNREFUSED, 1)) {
          ++transitions;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(transitions.load(), 1);
  EXPECT_EQ(s.failedConnects(0), 4000u);
  EXPECT_EQ(s.active(0), 0);
}

}  // namespace
}  // namespace weir::shm
