#include "util/time.h"

#include <gtest/gtest.h>

namespace weir::util {
namespace {

constexpr int64_t kMax = kMaxMs;
constexpr int64_t kMin = kMinMs;

TEST(Saturating, AddIsExactInRange) {
  EXPECT_EQ(addSaturating(1000, 86400000), 86401000);
  EXPECT_EQ(addSaturating(-5, 3), -2);
  EXPECT_EQ(addSaturating(kMax - 1, 1), kMax);
  EXPECT_EQ(addSaturating(kMin + 1, -1), kMin);
  EXPECT_EQ(addSaturating(kMax, kMin), -1);
}

TEST(Saturating, AddClampsAtTheEdges) {
  EXPECT_EQ(addSaturating(kMax, 1), kMax);
  EXPECT_EQ(addSaturating(kMax, kMax), kMax);
  EXPECT_EQ(addSaturating(kMax - 10, 86400000), kMax);
  EXPECT_EQ(addSaturating(kMin, -1), kMin);
  EXPECT_EQ(addSaturating(kMin, kMin), kMin);
}

TEST(Saturating, SubIsExactInRange) {
  EXPECT_EQ(subSaturating(5000, 2000), 3000);
  EXPECT_EQ(subSaturating(0, kMax), -kMax);
  EXPECT_EQ(subSaturating(kMin + 1, 1), kMin);
  EXPECT_EQ(subSaturating(kMax, kMax), 0);
}

TEST(Saturating, SubClampsAtTheEdges) {
  // now - a garbage "changed at" from shared memory.
  EXPECT_EQ(subSaturating(1000, kMin), kMax);
  EXPECT_EQ(subSaturating(0, kMin), kMax);
  EXPECT_EQ(subSaturating(-1, kMax), kMin);
  EXPECT_EQ(subSaturating(kMin, 1), kMin);
  EXPECT_EQ(subSaturating(kMax, -1), kMax);
  EXPECT_EQ(subSaturating(-2, kMax), kMin);
}

TEST(Saturating, MulClampsAtTheEdges) {
  EXPECT_EQ(mulSaturating(3, 86400000), 259200000);
  EXPECT_EQ(mulSaturating(-3, 4), -12);
  EXPECT_EQ(mulSaturating(kMax, 2), kMax);
  EXPECT_EQ(mulSaturating(kMin, -1), kMax);
  EXPECT_EQ(mulSaturating(kMin, 2), kMin);
  EXPECT_EQ(mulSaturating(kMax, -2), kMin);
  EXPECT_EQ(mulSaturating(kMax, 0), 0);
}

static_assert(addSaturating(kMax, 1) == kMax, "usable in constant expressions");

}  // namespace
}  // namespace weir::util
