#include "net/pipe_pool.h"

#include <fcntl.h>

#include <gtest/gtest.h>

namespace weir::net {
namespace {

constexpr int kLarge = 256 * 1024;  // within the default pipe-max-size, so no privilege needed

int capacity(const Pipe& p) { return ::fcntl(p.write_end.get(), F_GETPIPE_SZ); }

TEST(PipePool, DefaultPipesAreNotGrown) {
  PipePool pool(4, kLarge, 2);
  Pipe p = pool.take();
  ASSERT_TRUE(p.read_end);
  EXPECT_FALSE(p.large);
  EXPECT_LT(capacity(p), kLarge);
  EXPECT_EQ(pool.liveLarge(), 0U);
}

TEST(PipePool, LargeRequestGrowsThePipe) {
  PipePool pool(4, kLarge, 2);
  Pipe p = pool.take(true);
  ASSERT_TRUE(p.read_end);
  EXPECT_TRUE(p.large);
  EXPECT_GE(capacity(p), kLarge);
  EXPECT_EQ(pool.liveLarge(), 1U);
}

TEST(PipePool, LargePipesAreCappedAndFallBackToDefault) {
  PipePool pool(4, kLarge, 2);
  Pipe a = pool.take(true);
  Pipe b = pool.take(true);
  Pipe c = pool.take(true);
  EXPECT_TRUE(a.large);
  EXPECT_TRUE(b.large);
  ASSERT_TRUE(c.read_end);
  EXPECT_FALSE(c.large);  // over the cap: a working default pipe, not a failure
  EXPECT_LT(capacity(c), kLarge);
  EXPECT_EQ(pool.liveLarge(), 2U);
}

TEST(PipePool, GivenLargePipeIsReusedForLargeRequestsOnly) {
  PipePool pool(4, kLarge, 1);
  Pipe a = pool.take(true);
  const int fd = a.read_end.get();
  pool.give(std::move(a));
  EXPECT_EQ(pool.liveLarge(), 1U);  // idle large pipes still count against the budget
  Pipe small = pool.take(false);
  EXPECT_NE(small.read_end.get(), fd);
  EXPECT_FALSE(small.large);
  Pipe again = pool.take(true);
  EXPECT_EQ(again.read_end.get(), fd);
  EXPECT_TRUE(again.large);
}

TEST(PipePool, DiscardFreesLargeBudget) {
  PipePool pool(4, kLarge, 1);
  Pipe a = pool.take(true);
  ASSERT_TRUE(a.large);
  EXPECT_FALSE(pool.take(true).large);  // budget used up
  pool.discard(std::move(a));
  EXPECT_EQ(pool.liveLarge(), 0U);
  EXPECT_TRUE(pool.take(true).large);
}

TEST(PipePool, NoLargeSizeMeansDefaultPipes) {
  PipePool pool(4);
  Pipe p = pool.take(true);
  ASSERT_TRUE(p.read_end);
  EXPECT_FALSE(p.large);
}

TEST(PipePool, LargePipesForReadsTheKernelLimits) {
  LargePipes lp = largePipesFor(2);
  EXPECT_GT(lp.bytes, 0);
  EXPECT_LE(lp.bytes, 1 << 20);
  EXPECT_LE(lp.max, 64U);
}

}  // namespace
}  // namespace weir::net
