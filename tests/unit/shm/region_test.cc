#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

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
  EXPECT_GE(h.size, sizeof(Header) + 8 * sizeof(WorkerSlot) + 100 * sizeof(BackendSlot) +
                        9 * 100 * sizeof(Traffic));
  EXPECT_EQ(h.backend_slots, 100u);
  EXPECT_EQ(h.worker_slots, 8u);
  EXPECT_EQ(region->backendCount(), 0u);
  EXPECT_EQ(region->trafficRows(), 9u);
  EXPECT_EQ(h.health_generation.load(), 0u);
  EXPECT_TRUE(region->intact());
  // The parts follow each other and nothing overlaps the end of the mapping.
  auto* end = reinterpret_cast<const char*>(&region->header()) + h.size;
  EXPECT_LE(reinterpret_cast<const char*>(&region->traffic(8, 99) + 1), end);
  EXPECT_LE(reinterpret_cast<const char*>(&region->worker(7) + 1),
            reinterpret_cast<const char*>(&region->backend(0)));
  EXPECT_LE(reinterpret_cast<const char*>(&region->backend(99) + 1),
            reinterpret_cast<const char*>(&region->traffic(0, 0)));
  // Every worker's row starts on a cache line of its own.
  for (uint32_t row = 0; row < 9; ++row) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(&region->traffic(row, 0)) % 64, 0u) << row;
  }
  EXPECT_LE(reinterpret_cast<const char*>(&region->traffic(0, 99) + 1),
            reinterpret_cast<const char*>(&region->traffic(1, 0)));
}

TEST(ShmRegion, SizesOutOfRangeAreErrors) {
  EXPECT_EQ(ShmRegion::create(0, 1).error().code, EINVAL);
  EXPECT_EQ(ShmRegion::create(1, 0).error().code, EINVAL);
  EXPECT_EQ(ShmRegion::create(1, kMaxWorkerSlots + 1).error().code, EINVAL);
  EXPECT_TRUE(ShmRegion::create(1, kMaxWorkerSlots).ok());
}

TEST(ShmRegion, KeysFindTheirSlot) {
  auto region = ShmRegion::create(3, 1);
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

TEST(ShmRegion, SetAdminWritesTheSlotAndBumpsTheGeneration) {
  auto region = ShmRegion::create(2, 1);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.2:80"), 1);
  const uint64_t before = region->header().health_generation.load();
  EXPECT_TRUE(region->setAdmin("web", "10.0.0.2:80", AdminState::Maint));
  EXPECT_EQ(region->backend(1).admin.load(), 2u);
  EXPECT_EQ(region->backend(0).admin.load(), 0u);
  EXPECT_EQ(region->header().health_generation.load(), before + 1);
  EXPECT_FALSE(region->setAdmin("web", "10.0.0.3:80", AdminState::Drain));
  EXPECT_EQ(region->header().health_generation.load(), before + 1);
}

TEST(ShmRegion, RestartRampMovesAnUpBackendsChangeTimeOnly) {
  auto region = ShmRegion::create(2, 1);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.2:80"), 1);
  region->backend(1).state.store(static_cast<uint32_t>(BackendState::Down));
  region->backend(1).changed_ms.store(500);
  const uint64_t before = region->header().health_generation.load();
  EXPECT_TRUE(region->restartRamp("web", "10.0.0.1:80", 9000));
  EXPECT_EQ(region->backend(0).changed_ms.load(), 9000);
  EXPECT_EQ(region->header().health_generation.load(), before + 1);
  // A down backend keeps the time its hold-down counts from; an unknown one is refused.
  EXPECT_FALSE(region->restartRamp("web", "10.0.0.2:80", 9000));
  EXPECT_EQ(region->backend(1).changed_ms.load(), 500);
  EXPECT_FALSE(region->restartRamp("web", "10.0.0.3:80", 9000));
  EXPECT_EQ(region->header().health_generation.load(), before + 1);
}

TEST(ShmRegion, KeysLiveInPrivateMemory) {
  auto region = ShmRegion::create(2, 1);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);
  // A worker overwrites the shared copy of the key: the master still finds its backend.
  std::memset(region->backend(0).pool, 'x', kPoolKeyLen);
  EXPECT_EQ(region->find("web", "10.0.0.1:80"), 0);
  EXPECT_EQ(region->poolOf(0), "web");
}

TEST(ShmRegion, KeysTooLongAreRefused) {
  auto region = ShmRegion::create(4, 1);
  ASSERT_TRUE(region.ok());
  std::string pool(kPoolKeyLen, 'p');
  EXPECT_EQ(region->findOrAdd(pool, "10.0.0.1:80"), -1);
  pool.pop_back();
  EXPECT_EQ(region->findOrAdd(pool, "10.0.0.1:80"), 0);
  EXPECT_EQ(region->findOrAdd("p", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), 1);
}

TEST(ShmRegion, CapacityIsOneSlotPerBackend) {
  config::Config small = ShmFixture::parseConfig("[pools.p]\n" + backendList(3));
  EXPECT_EQ(ShmRegion::capacityFor(small), 3u);
  config::Config big = ShmFixture::parseConfig("[pools.p]\n" + backendList(40) + "[pools.q]\n" +
                                               backendList(10));
  EXPECT_EQ(ShmRegion::capacityFor(big), 50u);
}

TEST(ShmRegion, ChildrenShareTheMapping) {
  auto region = ShmRegion::create(1, 4);
  ASSERT_TRUE(region.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    workerStarted(region->worker(3), ::getpid());
    onAccept(region->worker(3));
    region->traffic(4, 0).total.store(42);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(region->worker(3).pid.load(), pid);
  EXPECT_EQ(region->worker(3).accepted.load(), 1u);
  EXPECT_EQ(region->worker(3).active.load(), 1);
  EXPECT_EQ(region->traffic(4, 0).total.load(), 42u);
}

TEST(ShmRegion, WorkerCountersAndRetirement) {
  auto region = ShmRegion::create(2, 2);
  ASSERT_TRUE(region.ok());
  WorkerSlot& w = region->worker(1);
  workerStarted(w, 1234);
  onAccept(w);
  onAccept(w);
  onClientClosed(w);
  onRejectedFull(w);
  region->traffic(2, 0).active.store(5);
  region->traffic(2, 1).active.store(7);
  region->traffic(2, 1).total.store(9);
  region->traffic(1, 0).active.store(3);  // worker 0's
  EXPECT_EQ(w.pid.load(), 1234);
  EXPECT_EQ(w.active.load(), 1);
  EXPECT_EQ(w.accepted.load(), 2u);
  EXPECT_EQ(w.rejected_full.load(), 1u);
  region->retireWorker(1);
  EXPECT_EQ(w.pid.load(), 0);
  EXPECT_EQ(w.active.load(), 0);
  EXPECT_EQ(w.accepted.load(), 2u);  // totals survive a respawn
  EXPECT_EQ(region->traffic(2, 0).active.load(), 0);
  EXPECT_EQ(region->traffic(2, 1).active.load(), 0);
  EXPECT_EQ(region->traffic(2, 1).total.load(), 9u);
  EXPECT_EQ(region->traffic(1, 0).active.load(), 3) << "another worker's row is untouched";
  region->retireWorker(7);  // no such worker: nothing happens
}

TEST(ShmRegion, AnOverwrittenHeaderIsNoticed) {
  auto region = ShmRegion::create(2, 2);
  ASSERT_TRUE(region.ok());
  ASSERT_TRUE(region->intact());
  region->header().worker_slots = 60;  // as a worker could
  EXPECT_FALSE(region->intact());
  EXPECT_EQ(region->workerSlots(), 2u) << "the layout is the owner's own, not the header's";
}

TEST(ShmRegion, MoveKeepsOneOwner) {
  auto region = ShmRegion::create(2, 1);
  ASSERT_TRUE(region.ok());
  ShmRegion a = std::move(*region);
  a.findOrAdd("p", "10.0.0.1:80");
  ShmRegion b = std::move(a);
  EXPECT_EQ(b.find("p", "10.0.0.1:80"), 0);
  auto other = ShmRegion::create(5, 1);
  ASSERT_TRUE(other.ok());
  b = std::move(*other);  // unmaps the first region
  EXPECT_EQ(b.backendCapacity(), 5u);
  EXPECT_TRUE(b.intact());
}

TEST(ShmRegion, IsASealedMemfd) {
  auto region = ShmRegion::create(2, 1);
  ASSERT_TRUE(region.ok());
  ASSERT_GE(region->fd(), 0);
  EXPECT_NE(::fcntl(region->fd(), F_GETFD) & FD_CLOEXEC, 0);
  const int seals = ::fcntl(region->fd(), F_GET_SEALS);
  EXPECT_NE(seals & F_SEAL_SHRINK, 0);
  EXPECT_NE(seals & F_SEAL_GROW, 0);
  EXPECT_NE(::ftruncate(region->fd(), 0), 0) << "nobody may shrink it under a mapping";
}

TEST(ShmRegion, AttachReadsAHandedOverRegion) {
  auto region = ShmRegion::create(3, 2);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.2:80"), 1);
  region->traffic(2, 1).total.store(11);
  auto seen = ShmRegion::attach(region->fd());
  ASSERT_TRUE(seen.ok()) << seen.error().message();
  EXPECT_TRUE(seen->readOnly());
  EXPECT_EQ(seen->backendCount(), 2u);
  EXPECT_EQ(seen->find("web", "10.0.0.2:80"), 1);
  EXPECT_EQ(seen->traffic(2, 1).total.load(), 11u);
  EXPECT_EQ(seen->findOrAdd("web", "10.0.0.3:80"), -1) << "read-only";
}

TEST(ShmRegion, AttachRefusesWhatDoesNotCheckOut) {
  // Not sealed.
  int plain = ::memfd_create("plain", MFD_CLOEXEC);
  ASSERT_GE(plain, 0);
  ASSERT_EQ(::ftruncate(plain, 1 << 20), 0);
  auto unsealed = ShmRegion::attach(plain);
  EXPECT_FALSE(unsealed.ok());
  ::close(plain);

  // A region whose header was overwritten, in each of its layout fields.
  for (int field = 0; field < 4; ++field) {
    auto region = ShmRegion::create(3, 2);
    ASSERT_TRUE(region.ok());
    Header& h = region->header();
    switch (field) {
      case 0: h.magic = 1; break;
      case 1: h.version = kVersion + 1; break;
      case 2: h.worker_slots = kMaxWorkerSlots + 1; break;
      default: h.backend_slots = 1000; break;  // in range, but the size no longer adds up
    }
    auto seen = ShmRegion::attach(region->fd());
    EXPECT_FALSE(seen.ok()) << field;
    if (!seen.ok()) {
      EXPECT_EQ(seen.error().code, EINVAL);
    }
  }

  // Keys without their NUL are dropped (and end the list).
  auto region = ShmRegion::create(3, 1);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.1:80"), 0);
  ASSERT_EQ(region->findOrAdd("web", "10.0.0.2:80"), 1);
  std::memset(region->backend(1).address, '9', kAddressKeyLen);
  auto seen = ShmRegion::attach(region->fd());
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->backendCount(), 1u);
  EXPECT_EQ(seen->find("web", "10.0.0.1:80"), 0);
}

}  // namespace
}  // namespace weir::shm
