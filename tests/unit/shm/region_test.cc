#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "shm/region.h"
#include "shm/worker_stats.h"
#include "shm_fixture.h"

namespace weir::shm {
namespace {

TEST(ShmRegion, HeaderDescribesTheLayout) {
  auto region = ShmRegion::create(100, 8);
  ASSERT_TRUE(region.ok());
  const Header& h = region->header();
  EXPECT_EQ(h.magic, kMagic);
  EXPECT_EQ(h.version, kVersion);
  EXPECT_EQ(h.size % 4096, 0u);
  EXPECT_GE(h.size, sizeof(Header) + 8 * sizeof(WorkerSlot) + 100 * sizeof(BackendSlot));
  EXPECT_EQ(h.backend_capacity, 100u);
  EXPECT_EQ(h.worker_capacity, 8u);
  EXPECT_EQ(region->backendCount(), 0u);
  EXPECT_EQ(h.health_generation.load(), 0u);
  EXPECT_TRUE(region->valid());
  // The slots follow the header and each other: nothing overlaps the end of the mapping.
  auto* end = reinterpret_cast<const char*>(&region->header()) + h.size;
  EXPECT_LE(reinterpret_cast<const char*>(&region->backend(99) + 1), end);
  EXPECT_LT(reinterpret_cast<const char*>(&region->worker(7) + 1),
            reinterpret_cast<const char*>(&region->backend(0)) + 1);
}

TEST(ShmRegion, DefaultWorkerSlotsMatchTheWorkerLimit) {
  auto region = ShmRegion::create(1);
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(region->workerCapacity(), config::kMaxWorkers);
}

TEST(ShmRegion, ZeroBackendsIsAnError) {
  auto region = ShmRegion::create(0);
  ASSERT_FALSE(region.ok());
  EXPECT_EQ(region.error().code, EINVAL);
}

TEST(ShmRegion, KeysFindTheirSlot) {
  auto region = ShmRegion::create(3);
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(region->find("web", "10.0.0.1:80"), -1);
  EXPECT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);
  EXPECT_EQ(region->findOrAdd("web", "10.0.0.2:80"), 1);
  EXPECT_EQ(region->findOrAdd("api", "10.0.0.1:80"), 2);  // same address, other pool
  EXPECT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);  // found, not added
  EXPECT_EQ(region->find("api", "10.0.0.1:80"), 2);
  EXPECT_EQ(region->find("we", "10.0.0.1:80"), -1);       // prefixes do not match
  EXPECT_EQ(region->find("web", "10.0.0.1:8"), -1);
  EXPECT_EQ(region->findOrAdd("web", "10.0.0.3:80"), -1);  // full
  EXPECT_EQ(region->backendCount(), 3u);
  EXPECT_STREQ(region->backend(1).address, "10.0.0.2:80");
  EXPECT_STREQ(region->backend(2).pool, "api");
}

TEST(ShmRegion, KeysTooLongAreRefused) {
  auto region = ShmRegion::create(4);
  ASSERT_TRUE(region.ok());
  std::string pool(kPoolKeyLen, 'p');
  EXPECT_EQ(region->findOrAdd(pool, "10.0.0.1:80"), -1);
  pool.pop_back();
  EXPECT_EQ(region->findOrAdd(pool, "10.0.0.1:80"), 0);
  EXPECT_EQ(region->findOrAdd("p", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), 1);
}

TEST(ShmRegion, CapacityForLeavesRoomForReloads) {
  config::Config small = ShmFixture::parseConfig("[pools.p]\n" + backendList(3));
  EXPECT_EQ(ShmRegion::capacityFor(small), 64u);
  config::Config big = ShmFixture::parseConfig("[pools.p]\n" + backendList(40) + "[pools.q]\n" +
                                               backendList(10));
  EXPECT_EQ(ShmRegion::capacityFor(big), 100u);
}

TEST(ShmRegion, ChildrenShareTheMapping) {
  auto region = ShmRegion::create(1);
  ASSERT_TRUE(region.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    workerStarted(region->worker(3), ::getpid());
    onAccept(region->worker(3));
    region->backend(0).total.store(42);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(region->worker(3).pid.load(), pid);
  EXPECT_EQ(region->worker(3).accepted.load(), 1u);
  EXPECT_EQ(region->worker(3).active.load(), 1);
  EXPECT_EQ(region->backend(0).total.load(), 42u);
}

TEST(ShmRegion, WorkerCounters) {
  auto region = ShmRegion::create(1);
  ASSERT_TRUE(region.ok());
  WorkerSlot& w = region->worker(0);
  workerStarted(w, 1234);
  onAccept(w);
  onAccept(w);
  onClientClosed(w);
  onRejectedFull(w);
  EXPECT_EQ(w.pid.load(), 1234);
  EXPECT_EQ(w.active.load(), 1);
  EXPECT_EQ(w.accepted.load(), 2u);
  EXPECT_EQ(w.rejected_full.load(), 1u);
  workerExited(w);
  EXPECT_EQ(w.pid.load(), 0);
  EXPECT_EQ(w.active.load(), 0);
  EXPECT_EQ(w.accepted.load(), 2u);  // totals survive a respawn
}

TEST(ShmRegion, MoveKeepsOneOwner) {
  auto region = ShmRegion::create(2);
  ASSERT_TRUE(region.ok());
  ShmRegion a = std::move(*region);
  a.findOrAdd("p", "10.0.0.1:80");
  ShmRegion b = std::move(a);
  EXPECT_EQ(b.find("p", "10.0.0.1:80"), 0);
  auto other = ShmRegion::create(5);
  ASSERT_TRUE(other.ok());
  b = std::move(*other);  // unmaps the first region
  EXPECT_EQ(b.backendCapacity(), 5u);
  EXPECT_TRUE(b.valid());
}

}  // namespace
}  // namespace weir::shm
