#include <gtest/gtest.h>

#include <cerrno>

#include "shm/carry_over.h"
#include "shm/error_text.h"
#include "shm_fixture.h"

namespace weir::shm {
namespace {

// Old config: pool p with 10.0.0.1..3; new config: p keeps .1 and .3, adds .9; pool q is new.
constexpr std::string_view kOld = R"([pools.p]
backends = [{ address = "10.0.0.1:80" }, { address = "10.0.0.2:80" }, { address = "10.0.0.3:80" }]
)";
constexpr std::string_view kNew = R"([pools.p]
backends = [{ address = "10.0.0.3:80" }, { address = "10.0.0.9:80" }, { address = "10.0.0.1:80" }]
[pools.q]
backends = [{ address = "10.0.0.2:80" }]
)";

TEST(CarryOver, MatchingKeysKeepTheirState) {
  ShmFixture old_gen(kOld);
  const PoolSlots& old_p = old_gen.pool(0);
  for (int i = 0; i < 3; ++i) {
    (void)old_p.recordProbe(0, false, "connect: Connection refused", 50);  // 10.0.0.1 down
  }
  ASSERT_EQ(old_p.state(0), BackendState::Down);
  old_p.slot(2).total.store(77);  // 10.0.0.3
  ASSERT_TRUE(old_p.reserve(2, 0));  // an old worker's connection: stays counted there
  old_p.slot(1).total.store(5);      // 10.0.0.2 of pool p, gone from p

  ShmFixture new_gen(kNew);
  EXPECT_EQ(carryOver(old_gen.region, new_gen.region), 2u);
  const PoolSlots& p = new_gen.pool(0);
  const PoolSlots& q = new_gen.pool(1);
  // p.backends = [.3, .9, .1]
  EXPECT_EQ(p.state(2), BackendState::Down);
  EXPECT_EQ(p.slot(2).failures.load(), 3u);
  EXPECT_EQ(p.slot(2).last_check_ms.load(), 50);
  EXPECT_EQ(readErrorText(p.slot(2)), "connect: Connection refused");
  EXPECT_EQ(p.state(0), BackendState::Up);
  EXPECT_EQ(p.slot(0).total.load(), 77u);
  EXPECT_EQ(p.active(0), 0);  // not carried
  EXPECT_EQ(p.state(1), BackendState::Up);
  EXPECT_EQ(p.slot(1).total.load(), 0u);
  // Same address in another pool is another backend.
  EXPECT_EQ(q.slot(0).total.load(), 0u);
  EXPECT_GT(new_gen.region.header().health_generation.load(), 0u);
}

TEST(CarryOver, DrainingBackendsComeBackAsNew) {
  ShmFixture old_gen(kOld);
  (void)old_gen.pool(0).setDraining(0, 1);
  ShmFixture new_gen(kNew);
  EXPECT_EQ(carryOver(old_gen.region, new_gen.region), 2u);
  EXPECT_EQ(new_gen.pool(0).state(2), BackendState::Up);
}

TEST(CarryOver, ReloadIntoTheSameRegionKeepsState) {
  ShmFixture f(kOld);
  for (int i = 0; i < 3; ++i) {
    (void)f.pool(0).recordProbe(2, false, "x", 1);  // 10.0.0.3 down
  }
  config::Config next = ShmFixture::parseConfig(kNew);
  auto map = BackendMap::create(f.region, next);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->pool(0).state(0), BackendState::Down);  // 10.0.0.3 again
  EXPECT_EQ(&map->pool(0).slot(2), &f.pool(0).slot(0));   // 10.0.0.1: the same slot
  EXPECT_EQ(f.region.backendCount(), 5u);                 // .9 and q's .2 were added
}

TEST(CarryOver, FindFailsForBackendsNotInTheRegion) {
  ShmFixture f(kOld);
  config::Config next = ShmFixture::parseConfig(kNew);
  auto map = BackendMap::find(f.region, next);
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.error().code, ENOENT);
  EXPECT_NE(map.error().context.find("10.0.0.9:80"), std::string::npos);
}

TEST(CarryOver, CreateFailsWhenTheRegionIsFull) {
  config::Config cfg = ShmFixture::parseConfig("[pools.p]\n" + backendList(5));
  auto region = ShmRegion::create(4);
  ASSERT_TRUE(region.ok());
  auto map = BackendMap::create(*region, cfg);
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.error().code, ENOSPC);
}

}  // namespace
}  // namespace weir::shm
