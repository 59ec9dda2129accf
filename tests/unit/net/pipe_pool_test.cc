#include "net/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <vector>

namespace weir::net {
namespace {

const size_t kPage = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
const int kDefault = static_cast<int>(16 * kPage);  // a new pipe: 16 slots
const int kLarge = static_cast<int>(64 * kPage);    // within the default pipe-max-size
const size_t kDefaultPages = 16;
const size_t kLargePages = 64;

int capacity(const Pipe& p) { return ::fcntl(p.write_end.get(), F_GETPIPE_SZ); }

// A budget of `default_pipes` default pipes plus `large_pipes` large ones.
PipeBudget budget(size_t default_pipes, size_t large_pipes, size_t floor = 1) {
  PipeBudget b;
  b.pages = default_pipes * kDefaultPages + large_pipes * kLargePages;
  b.large_bytes = kLarge;
  b.default_bytes = kDefault;
  b.floor = floor;
  b.max_idle = 256;
  return b;
}

TEST(PipePool, DefaultPipesAreNotGrown) {
  PipePool pool(budget(4, 2));
  Pipe p = pool.take();
  ASSERT_TRUE(p.read_end);
  EXPECT_FALSE(p.large);
  EXPECT_EQ(capacity(p), kDefault);
  EXPECT_EQ(p.bytes, kDefault);
  EXPECT_EQ(pool.liveLarge(), 0U);
  EXPECT_EQ(pool.pages(), 0U);  // busy default pipes are not the pool's to count
}

TEST(PipePool, LargeRequestGrowsThePipe) {
  PipePool pool(budget(4, 2));
  Pipe p = pool.take(true);
  ASSERT_TRUE(p.read_end);
  EXPECT_TRUE(p.large);
  EXPECT_GE(capacity(p), kLarge);
  EXPECT_EQ(pool.liveLarge(), 1U);
  EXPECT_EQ(pool.pages(), kLargePages);
}

TEST(PipePool, LargePipesStayWithinTheBudgetAndFallBackToDefault) {
  PipePool pool(budget(0, 2));
  Pipe a = pool.take(true);
  Pipe b = pool.take(true);
  Pipe c = pool.take(true);
  EXPECT_TRUE(a.large);
  EXPECT_TRUE(b.large);
  ASSERT_TRUE(c.read_end);
  EXPECT_FALSE(c.large);  // over the budget: a working default pipe, not a failure
  EXPECT_EQ(capacity(c), kDefault);
  EXPECT_EQ(pool.liveLarge(), 2U);
  EXPECT_EQ(pool.pages(), 2 * kLargePages);
}

TEST(PipePool, GivenLargePipeIsReusedForLargeRequestsOnly) {
  PipePool pool(budget(4, 1));
  Pipe a = pool.take(true);
  const int fd = a.read_end.get();
  pool.give(std::move(a));
  EXPECT_EQ(pool.liveLarge(), 1U);  // idle large pipes still count against the budget
  EXPECT_EQ(pool.pages(), kLargePages);
  Pipe small = pool.take(false);
  EXPECT_NE(small.read_end.get(), fd);
  EXPECT_FALSE(small.large);
  Pipe again = pool.take(true);
  EXPECT_EQ(again.read_end.get(), fd);
  EXPECT_TRUE(again.large);
}

TEST(PipePool, DiscardFreesTheBudget) {
  PipePool pool(budget(0, 1));
  Pipe a = pool.take(true);
  ASSERT_TRUE(a.large);
  EXPECT_FALSE(pool.take(true).large);  // budget used up
  pool.discard(std::move(a));
  EXPECT_EQ(pool.liveLarge(), 0U);
  EXPECT_EQ(pool.pages(), 0U);
  EXPECT_TRUE(pool.take(true).large);
}

TEST(PipePool, NoLargeSizeMeansDefaultPipes) {
  PipeBudget b = budget(4, 2);
  b.large_bytes = 0;
  PipePool pool(b);
  Pipe p = pool.take(true);
  ASSERT_TRUE(p.read_end);
  EXPECT_FALSE(p.large);
}

TEST(PipePool, WithoutABudgetNothingIsKept) {
  PipePool pool;
  Pipe p = pool.take(true);
  ASSERT_TRUE(p.read_end);
  EXPECT_FALSE(p.large);
  pool.give(std::move(p));
  EXPECT_EQ(pool.idle(), 0U);
  EXPECT_EQ(pool.pages(), 0U);
}

// Idle default pipes are kept only while their pages fit: the rest are closed on give.
TEST(PipePool, IdleDefaultPipesAreBoundedByTheBudget) {
  PipePool pool(budget(3, 0));
  std::vector<Pipe> busy;
  for (int i = 0; i < 5; ++i) {
    busy.push_back(pool.take());
  }
  for (Pipe& p : busy) {
    pool.give(std::move(p));
  }
  EXPECT_EQ(pool.idle(), 3U);
  EXPECT_EQ(pool.pages(), 3 * kDefaultPages);
  EXPECT_EQ(pool.created(), 5U);
  // Reuse: no new pipe for the next three.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(pool.take().read_end);
  }
  EXPECT_EQ(pool.created(), 5U);
  EXPECT_EQ(pool.pages(), 0U);
}

TEST(PipePool, IdleDefaultPipesCountAgainstAMaximumToo) {
  PipeBudget b = budget(8, 0);
  b.max_idle = 2;
  PipePool pool(b);
  std::vector<Pipe> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(pool.take());
  }
  for (Pipe& p : busy) {
    pool.give(std::move(p));
  }
  EXPECT_EQ(pool.idle(), 2U);
  EXPECT_EQ(pool.pages(), 2 * kDefaultPages);
}

// A bulk flow gains more from a large pipe than an idle default pipe is worth: idle ones are
// closed to make room.
TEST(PipePool, IdleDefaultPipesMakeRoomForALargeOne) {
  // Room for 4 default pipes, or for 1 large one (64 pages) and nothing else.
  PipeBudget b = budget(4, 0);
  PipePool pool(b);
  std::vector<Pipe> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(pool.take());
  }
  for (Pipe& p : busy) {
    pool.give(std::move(p));
  }
  ASSERT_EQ(pool.pages(), 4 * kDefaultPages);
  Pipe large = pool.take(true);
  EXPECT_TRUE(large.large);
  EXPECT_EQ(pool.idle(), 0U);
  EXPECT_EQ(pool.pages(), kLargePages);
  EXPECT_LE(pool.pages(), b.pages);
  // Now a default pipe given back has no room left.
  Pipe d = pool.take();
  pool.give(std::move(d));
  EXPECT_EQ(pool.idle(), 0U);
}

// A pipe smaller than the default (created while the owner was over its budget) is never
// pooled: it would slow every flow that draws it after the budget recovered.
TEST(PipePool, ShrunkenPipesAreNotPooled) {
  PipePool pool(budget(4, 0));
  Pipe p = pool.take();
  ASSERT_GT(::fcntl(p.write_end.get(), F_SETPIPE_SZ, static_cast<int>(2 * kPage)), 0);
  p.bytes = ::fcntl(p.write_end.get(), F_GETPIPE_SZ);
  ASSERT_LT(p.bytes, kDefault);
  pool.give(std::move(p));
  EXPECT_EQ(pool.idle(), 0U);
  EXPECT_EQ(pool.pages(), 0U);
}

// trim() frees what stayed unused for a whole period, keeping the floor; large pipes have no
// floor. What was used during the period survives it.
TEST(PipePool, TrimFreesWhatStayedUnusedDownToTheFloor) {
  PipePool pool(budget(8, 2, /*floor=*/2));
  std::vector<Pipe> busy;
  for (int i = 0; i < 6; ++i) {
    busy.push_back(pool.take());
  }
  busy.push_back(pool.take(true));
  busy.push_back(pool.take(true));
  for (Pipe& p : busy) {
    pool.give(std::move(p));
  }
  busy.clear();
  ASSERT_EQ(pool.idle(), 8U);
  pool.trim();  // starts the first period: nothing was unused for a whole one yet
  EXPECT_EQ(pool.idle(), 8U);

  // During this period three default pipes and one large are in use at once.
  for (int i = 0; i < 3; ++i) {
    busy.push_back(pool.take());
  }
  busy.push_back(pool.take(true));
  for (Pipe& p : busy) {
    pool.give(std::move(p));
  }
  busy.clear();
  EXPECT_EQ(pool.created(), 8U);
  pool.trim();
  // 3 default pipes that were used stay, the 3 unused ones go; 1 large stays, 1 goes.
  EXPECT_EQ(pool.idle(), 4U);
  EXPECT_EQ(pool.liveLarge(), 1U);
  EXPECT_EQ(pool.pages(), 3 * kDefaultPages + kLargePages);

  pool.trim();  // a period without any use: down to the floor, no large pipe
  EXPECT_EQ(pool.idle(), 2U);
  EXPECT_EQ(pool.liveLarge(), 0U);
  EXPECT_EQ(pool.pages(), 2 * kDefaultPages);
  pool.trim();
  EXPECT_EQ(pool.idle(), 2U);
}

TEST(PipePool, ShrinkFreesEveryIdlePipeAboveTheFloorAtOnce) {
  PipePool pool(budget(8, 2, /*floor=*/1));
  std::vector<Pipe> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(pool.take());
  }
  busy.push_back(pool.take(true));
  Pipe still_busy = pool.take(true);
  for (Pipe& p : busy) {
    pool.give(std::move(p));
  }
  pool.shrink();
  EXPECT_EQ(pool.idle(), 1U);
  EXPECT_EQ(pool.liveLarge(), 1U);  // the one in use stays counted
  EXPECT_EQ(pool.pages(), kDefaultPages + kLargePages);
  pool.give(std::move(still_busy));
  EXPECT_EQ(pool.idle(), 2U);
}

TEST(PipeBudget, ForWorkersReadsTheKernelLimits) {
  const PipeBudget one = pipeBudgetFor(1);
  const PipeBudget four = pipeBudgetFor(4);
  EXPECT_GT(one.default_bytes, 0);
  EXPECT_LE(one.large_bytes, 1 << 20);
  EXPECT_GE(one.pages, four.pages);
  EXPECT_LE(four.floor, 4U);
  if (four.large_bytes > 0) {
    // A large pipe is larger than a default one and at least two fit in the share.
    EXPECT_GT(four.large_bytes, four.default_bytes);
    EXPECT_LE(2 * static_cast<size_t>(four.large_bytes) / kPage, four.pages);
  }
}

}  // namespace
}  // namespace weir::net
