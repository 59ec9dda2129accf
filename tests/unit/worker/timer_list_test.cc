#include "worker/timer_list.h"

#include <gtest/gtest.h>

#include <limits>

namespace weir::worker {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(TimerList, ArmsDurationAfterNow) {
  TimerList list(5000);
  TimerHook t;
  list.arm(t, 1000);
  EXPECT_TRUE(t.armed());
  EXPECT_EQ(t.deadline_ms, 6000);
  EXPECT_EQ(list.first(), &t);
  TimerList::disarm(t);
  EXPECT_FALSE(t.armed());
  EXPECT_EQ(list.first(), nullptr);
}

// A deadline past the end of int64 is "never", not a wrapped time in the past that fires at
// once (and not signed overflow).
TEST(TimerList, DeadlineSaturatesInsteadOfWrapping) {
  TimerList list(7LL * 86400000);
  TimerHook t;
  list.arm(t, kMax - 1000);
  EXPECT_EQ(t.deadline_ms, kMax);
  TimerList huge(kMax);
  TimerHook u;
  huge.arm(u, 123456789);
  EXPECT_EQ(u.deadline_ms, kMax);
}

}  // namespace
}  // namespace weir::worker
