#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "health/schedule.h"

namespace weir::health {
namespace {

using namespace std::chrono_literals;

config::HealthCheck check(config::Duration interval, config::Duration timeout) {
  config::HealthCheck c;
  c.interval = interval;
  c.timeout = timeout;
  return c;
}

TEST(Schedule, JitterIsSmallAndLeavesRoomForTheTimeout) {
  EXPECT_EQ(jitterFor(check(2s, 1s)), 100);      // interval / 20
  EXPECT_EQ(jitterFor(check(2s, 100ms)), 25);    // timeout / 4
  EXPECT_EQ(jitterFor(check(2s, 1900ms)), 25);   // (interval - timeout) / 4
  EXPECT_EQ(jitterFor(check(10ms, 9ms)), 0);
}

TEST(Schedule, FirstChecksSpreadOverTheFirstInterval) {
  config::HealthCheck c = check(1s, 500ms);
  std::vector<int64_t> firsts;
  for (uint64_t r = 0; r < 200; ++r) {
    Schedule s(c, 5000, r * 7919, r);
    ASSERT_GE(s.due(), 5000);
    ASSERT_LE(s.due(), 5000 + 1000 + jitterFor(c));
    firsts.push_back(s.due());
  }
  auto [lo, hi] = std::minmax_element(firsts.begin(), firsts.end());
  EXPECT_LT(*lo, 5200);
  EXPECT_GT(*hi, 5800);
}

TEST(Schedule, OneCheckPerIntervalOnAverageWithBoundedJitter) {
  config::HealthCheck c = check(2s, 1s);
  const int64_t j = jitterFor(c);
  Schedule s(c, 0, 12345, 678);
  int64_t first = s.due();
  int64_t prev = first;
  for (int k = 1; k <= 1000; ++k) {
    s.advance(prev);  // the checker starts each check when due
    int64_t gap = s.due() - prev;
    ASSERT_GE(gap, 2000 - 2 * j);
    ASSERT_LE(gap, 2000 + 2 * j);
    prev = s.due();
  }
  // No drift: check 1000 is within the jitter of anchor + 1000 intervals.
  EXPECT_NEAR(prev - first, 1000 * 2000, 2 * j);
}

TEST(Schedule, ALateCheckerSkipsMissedRoundsInsteadOfBursting) {
  config::HealthCheck c = check(1s, 500ms);
  Schedule s(c, 0, 0, 1);
  int64_t first = s.due();
  s.advance(first + 10500);  // stopped for ten intervals
  EXPECT_GT(s.due(), first + 10500);
  EXPECT_LE(s.due(), first + 12000 + 2 * jitterFor(c));
}

// Times near the end of int64 saturate at "never" instead of wrapping into the past (which
// would make the checker probe in a tight loop).
TEST(Schedule, DueTimesSaturateAtTheEndOfTime) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const config::HealthCheck c = check(24h, 1s);
  Schedule s(c, kMax - 1000, 123456789, 42);
  EXPECT_GE(s.due(), kMax - 1000);
  s.advance(kMax - 10);
  EXPECT_GE(s.due(), kMax - jitterFor(c));  // saturated, then moved by at most the jitter
  s.advance(kMax);
  EXPECT_GE(s.due(), kMax - jitterFor(c));
}

}  // namespace
}  // namespace weir::health
