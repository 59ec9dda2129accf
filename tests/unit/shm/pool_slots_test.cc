#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
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
  const BackendSlot& b = s.slot(0);
  EXPECT_EQ(b.active.load(), 0);
  EXPECT_EQ(b.total.load(), 1u);
  EXPECT_EQ(b.failed_connects.load(), 1u);
  EXPECT_EQ(b.bytes_in.load(), 100u);
  EXPECT_EQ(b.bytes_out.load(), 7u);
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
  EXPECT_EQ(s.slot(0).failed_connects.load(), 4000u);
  EXPECT_EQ(s.active(0), 0);
}

}  // namespace
}  // namespace weir::shm
