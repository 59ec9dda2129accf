#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "balance/slow_start.h"
#include "balance_fixture.h"

namespace weir::balance {
namespace {

// Backend 1 of two comes up at kUp; the pools ramp it over 10 s.
constexpr int64_t kUp = 1'000'000;
constexpr int64_t kRamp = 10'000;

std::string pool(std::string_view balance, std::string_view slow_start = "10s") {
  return "[pools.p]\nbalance = \"" + std::string(balance) + "\"\nslow_start = \"" +
         std::string(slow_start) + "\"\n" + weighted({1, 1});
}

// Backend i comes up at `at_ms`, as the checker marks it (changed_ms, then the generation).
void comeUp(BalanceFixture& f, size_t i, int64_t at_ms) {
  f.pool(0).slot(i).changed_ms.store(at_ms);
  f.setState(i, shm::BackendState::Up);
}

// How many of `picks` idle picks (released at once) at `now_ms` go to backend 1.
int idleShare(BalanceFixture& f, int64_t now_ms, int picks) {
  int ones = 0;
  for (int k = 0; k < picks; ++k) {
    ones += f.pickReleased({nullptr, 0, now_ms}) == 1 ? 1 : 0;
  }
  return ones;
}

TEST(SlowStart, RampedWeight) {
  EXPECT_EQ(rampedWeight(1000, 0, 10'000), 1u) << "starts near 0, never at 0";
  EXPECT_EQ(rampedWeight(1000, 1, 10'000), 1u);
  EXPECT_EQ(rampedWeight(1000, 2'500, 10'000), 250u);
  EXPECT_EQ(rampedWeight(1000, 9'999, 10'000), 999u);
  EXPECT_EQ(rampedWeight(1000, 10'000, 10'000), 1000u) << "the ramp is over";
  EXPECT_EQ(rampedWeight(1000, 50'000, 10'000), 1000u);
  EXPECT_EQ(rampedWeight(1000, -1, 10'000), 1000u) << "not ramping";
  EXPECT_EQ(rampedWeight(1000, 5'000, 0), 1000u) << "no slow start";
  // The config's bounds: weight 1000 scaled, a ramp of a day.
  EXPECT_EQ(rampedWeight(1000 * kRampScale, 86'400'000 - 1, 86'400'000), 999'999u);
  EXPECT_EQ(rampStepMs(3'000), 100);
  EXPECT_EQ(rampStepMs(30'000), 300);
  EXPECT_EQ(rampStepMs(86'400'000), 1000);
}

TEST(SlowStart, RampElapsedFromTheSharedState) {
  BalanceFixture f(pool("round-robin"));
  const shm::PoolSlots& slots = f.pool(0);
  EXPECT_EQ(slots.rampElapsed(1, kUp), -1) << "up since the start: changed_ms 0";
  comeUp(f, 1, kUp);
  EXPECT_EQ(slots.rampElapsed(1, kUp), 0);
  EXPECT_EQ(slots.rampElapsed(1, kUp + 2'500), 2'500);
  EXPECT_EQ(slots.rampElapsed(1, kUp + kRamp - 1), kRamp - 1);
  EXPECT_EQ(slots.rampElapsed(1, kUp + kRamp), -1) << "over";
  EXPECT_EQ(slots.rampElapsed(1, kUp - 5), 0) << "came up after the caller read its clock";
  slots.slot(1).changed_ms.store(INT64_MIN + 1);  // scribbled: no overflow, just over
  EXPECT_EQ(slots.rampElapsed(1, kUp), -1);
  comeUp(f, 1, kUp);
  f.setState(1, shm::BackendState::Down);
  EXPECT_EQ(slots.rampElapsed(1, kUp + 1), -1) << "down";

  BalanceFixture off(pool("round-robin", "0s"));
  comeUp(off, 1, kUp);
  EXPECT_EQ(off.pool(0).rampElapsed(1, kUp + 1), -1) << "no slow_start";
}

TEST(SlowStart, WhoeverMarksABackendUpStartsItsRamp) {
  // Active checks: rise passes bring it back, at the time of the last one.
  BalanceFixture f("[pools.p]\nslow_start = \"10s\"\n" + weighted({1, 1}) +
                   "[pools.p.health]\nrise = 2\nfall = 1\n");
  const shm::PoolSlots& slots = f.pool(0);
  ASSERT_TRUE(slots.recordProbe(1, false, "refused", kUp - 500).has_value());
  EXPECT_EQ(slots.rampElapsed(1, kUp), -1) << "down";
  EXPECT_FALSE(slots.recordProbe(1, true, "", kUp - 100).has_value());
  ASSERT_TRUE(slots.recordProbe(1, true, "", kUp).has_value());
  EXPECT_EQ(slots.rampElapsed(1, kUp + 300), 300);

  // Passive health: the end of a hold-down brings it back on trial, ramping.
  BalanceFixture passive("[pools.p]\nslow_start = \"10s\"\npassive_fall = 1\n"
                         "passive_holddown = \"1s\"\n" + weighted({1, 1}));
  const shm::PoolSlots& held = passive.pool(0);
  ASSERT_TRUE(held.reserve(1, 0));
  ASSERT_TRUE(held.onConnectFailed(1, ECONNREFUSED, kUp - 1000).has_value());
  EXPECT_EQ(held.rampElapsed(1, kUp - 1), -1) << "held down";
  ASSERT_TRUE(held.reviveIfHeldDown(1, kUp).has_value());
  EXPECT_EQ(held.rampElapsed(1, kUp + 300), 300);
}

TEST(SlowStart, RoundRobinSharesFollowTheRamp) {
  BalanceFixture f(pool("round-robin"));
  EXPECT_EQ(idleShare(f, kUp - 1, 1000), 500) << "no ramp for backends there from the start";
  comeUp(f, 1, kUp);
  // Effective weights 1 : 1000 at first, 100 : 1000 a tenth in, 500 : 1000 at half.
  EXPECT_LE(idleShare(f, kUp, 1000), 2);
  EXPECT_NEAR(idleShare(f, kUp + kRamp / 10, 1100), 100, 2);
  EXPECT_NEAR(idleShare(f, kUp + kRamp / 2, 1500), 500, 2);
  EXPECT_EQ(idleShare(f, kUp + kRamp, 1000), 500) << "full weight after the ramp";
}

TEST(SlowStart, WeightsAreRefreshedEveryStepWhileRamping) {
  BalanceFixture f(pool("round-robin"));
  comeUp(f, 1, kUp);
  EXPECT_LE(idleShare(f, kUp, 1000), 2);
  // Within one step (100 ms of a 10 s ramp) the weights stay: 99 ms in is still 1 : 1000 ...
  EXPECT_LE(idleShare(f, kUp + 99, 1000), 2);
  // ... and the next step picks up the new weight without any state change (10 : 1000).
  EXPECT_NEAR(idleShare(f, kUp + 100, 1010), 10, 2);
}

TEST(SlowStart, AStateChangeIsSeenAtOnce) {
  BalanceFixture f(pool("round-robin"));
  EXPECT_EQ(idleShare(f, kUp, 1000), 500);
  // Nothing ramped, so no timed refresh is due; the new health generation triggers it.
  comeUp(f, 1, kUp + 1);
  EXPECT_LE(idleShare(f, kUp + 1, 1000), 2);
}

TEST(SlowStart, OffWithoutSlowStart) {
  BalanceFixture f(std::string("[pools.p]\n") + weighted({1, 1}));
  comeUp(f, 1, kUp);
  EXPECT_EQ(idleShare(f, kUp, 1000), 500);
}

TEST(SlowStart, LeastConnHeldConnectionsFollowTheEffectiveWeight) {
  BalanceFixture f(pool("least-conn"));
  comeUp(f, 1, kUp);
  const int64_t tenth = kUp + kRamp / 10;  // 100 : 1000
  for (int k = 0; k < 1100; ++k) {
    ASSERT_EQ(f.balancer->pick({nullptr, 0, tenth}).status, PickStatus::Ok);
  }
  EXPECT_NEAR(f.pool(0).active(1), 100, 1);
  EXPECT_NEAR(f.pool(0).active(0), 1000, 1);
  // After the ramp the new connections even the counts out.
  for (int k = 0; k < 900; ++k) {
    ASSERT_EQ(f.balancer->pick({nullptr, 0, kUp + kRamp}).status, PickStatus::Ok);
  }
  EXPECT_NEAR(f.pool(0).active(1), 1000, 1);
}

TEST(SlowStart, RandomTwoDrawsByEffectiveWeight) {
  BalanceFixture f(pool("random-two"));
  comeUp(f, 1, kUp);
  // Idle backends tie, and a tie goes to the first draw: backend 1's share is its weight's.
  EXPECT_LE(idleShare(f, kUp, 10000), 30);
  const int tenth = idleShare(f, kUp + kRamp / 10, 10000);  // 100 / 1100 = 909 expected
  EXPECT_GT(tenth, 700);
  EXPECT_LT(tenth, 1100);
  const int after = idleShare(f, kUp + kRamp, 10000);
  EXPECT_GT(after, 4500);
  EXPECT_LT(after, 5500);
}

TEST(SlowStart, MaglevAdmitsAGrowingShareOfTheBackendsOwnClients) {
  const auto from = clients(20000);
  BalanceFixture f("[pools.p]\nbalance = \"maglev\"\nslow_start = \"10s\"\n" +
                   weighted({1, 1, 1}));
  auto mapping = [&](int64_t now_ms) {
    std::vector<int> out;
    for (const auto& client : from) {
      out.push_back(f.pickReleased({&client, 0, now_ms}));
    }
    return out;
  };
  const std::vector<int> up = mapping(kUp - 1);
  f.setState(1, shm::BackendState::Down);
  const std::vector<int> down = mapping(kUp - 1);
  comeUp(f, 1, kUp);
  int owned = 0;  // backend 1's clients
  for (int b : up) {
    owned += b == 1 ? 1 : 0;
  }
  ASSERT_GT(owned, 6000);
  std::vector<int> admitted_before(from.size(), 0);
  for (int64_t in : {int64_t{0}, kRamp / 4, kRamp / 2, kRamp * 3 / 4}) {
    const std::vector<int> now = mapping(kUp + in);
    int back = 0;
    for (size_t c = 0; c < from.size(); ++c) {
      // Every client is where it was with the backend up or where it went while it was down;
      // only backend 1's own clients ever move.
      if (up[c] != 1) {
        ASSERT_EQ(now[c], up[c]) << "client " << c;
        continue;
      }
      ASSERT_TRUE(now[c] == 1 || now[c] == down[c]) << "client " << c;
      if (now[c] == 1) {
        ++back;
        admitted_before[c] = 1;
      } else {
        ASSERT_EQ(admitted_before[c], 0) << "client " << c << " was admitted, then not";
      }
    }
    const int expected = static_cast<int>(owned * in / kRamp);
    EXPECT_NEAR(back, expected, owned / 50 + 5) << in << " ms into the ramp";
  }
  EXPECT_EQ(mapping(kUp + kRamp), up) << "every client is back after the ramp";
}

}  // namespace
}  // namespace weir::balance
