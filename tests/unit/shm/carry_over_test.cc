#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

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

constexpr int64_t kNow = 1'000'000;

TEST(CarryOver, MatchingKeysKeepTheirState) {
  ShmFixture old_gen(kOld);
  const PoolSlots& old_p = old_gen.pool(0);
  for (int i = 0; i < 3; ++i) {
    (void)old_p.recordProbe(0, false, "connect: Connection refused", 50);  // 10.0.0.1 down
  }
  ASSERT_EQ(old_p.state(0), BackendState::Down);
  old_p.traffic(1, 2).total.store(70);  // 10.0.0.3, counted by two workers
  old_p.traffic(3, 2).total.store(7);
  old_p.traffic(2, 2).bytes_in.store(1000);
  ASSERT_TRUE(old_p.reserve(2, 0));  // an old worker's connection: stays counted there
  old_p.traffic(1, 1).total.store(5);  // 10.0.0.2 of pool p, gone from p

  ShmFixture new_gen(kNew);
  const CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  EXPECT_EQ(report.carried, 2u);
  EXPECT_TRUE(report.rejected.empty());
  EXPECT_TRUE(report.header_problem.empty());
  const PoolSlots& p = new_gen.pool(0);
  const PoolSlots& q = new_gen.pool(1);
  // p.backends = [.3, .9, .1]
  EXPECT_EQ(p.state(2), BackendState::Down);
  EXPECT_EQ(p.slot(2).failures.load(), 3u);
  EXPECT_EQ(p.slot(2).last_check_ms.load(), 50);
  EXPECT_EQ(readErrorText(p.slot(2)), "connect: Connection refused");
  EXPECT_EQ(p.state(0), BackendState::Up);
  EXPECT_EQ(p.total(0), 77u) << "the old rows' totals, summed";
  EXPECT_EQ(p.bytesIn(0), 1000u);
  EXPECT_EQ(p.traffic(0, 0).total.load(), 77u) << "into the new region's carried row";
  EXPECT_EQ(p.active(0), 0);  // not carried
  EXPECT_EQ(p.state(1), BackendState::Up);
  EXPECT_EQ(p.total(1), 0u);
  // Same address in another pool is another backend.
  EXPECT_EQ(q.total(0), 0u);
  EXPECT_GT(new_gen.region.header().health_generation.load(), 0u);
}

TEST(CarryOver, DrainingBackendsComeBackAsNew) {
  ShmFixture old_gen(kOld);
  (void)old_gen.pool(0).setDraining(0, 1);
  ShmFixture new_gen(kNew);
  EXPECT_EQ(carryOver(old_gen.region, new_gen.region, kNow).carried, 2u);
  EXPECT_EQ(new_gen.pool(0).state(2), BackendState::Up);
}

TEST(CarryOver, NewBackendsAreUpSinceNowKeptOnesKeepTheirTime) {
  // What slow start ramps from (PoolSlots::rampElapsed): a backend a reload adds (or brings
  // back from draining) came up now; one it keeps did not come up again.
  ShmFixture old_gen(kOld);
  old_gen.pool(0).slot(2).changed_ms.store(500);  // 10.0.0.3 came up at 500
  (void)old_gen.pool(0).setDraining(0, 700);      // 10.0.0.1 was being removed
  ShmFixture new_gen(kNew);
  ASSERT_EQ(carryOver(old_gen.region, new_gen.region, kNow).carried, 2u);
  // p.backends = [.3, .9, .1]; q = [.2], new in q.
  EXPECT_EQ(new_gen.pool(0).slot(0).changed_ms.load(), 500);
  EXPECT_EQ(new_gen.pool(0).slot(1).changed_ms.load(), kNow);
  EXPECT_EQ(new_gen.pool(0).slot(2).changed_ms.load(), kNow);
  EXPECT_EQ(new_gen.pool(1).slot(0).changed_ms.load(), kNow);
}

TEST(CarryOver, ScribbledSlotsStartFresh) {
  ShmFixture old_gen(kOld);
  const PoolSlots& old_p = old_gen.pool(0);
  for (int i = 0; i < 3; ++i) {
    (void)old_p.recordProbe(2, false, "refused", 10);  // 10.0.0.3 down, honestly
  }
  old_p.slot(0).state.store(0xdeadbeef);  // 10.0.0.1: no such state
  ShmFixture new_gen(kNew);
  CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  EXPECT_EQ(report.carried, 1u);
  ASSERT_EQ(report.rejected.size(), 1u);
  EXPECT_NE(report.rejected[0].find("p/10.0.0.1:80"), std::string::npos) << report.rejected[0];
  EXPECT_EQ(new_gen.pool(0).state(0), BackendState::Down);  // .3 carried
  EXPECT_EQ(new_gen.pool(0).state(2), BackendState::Up);    // .1 fresh

  // Times from the future (or before the clock began) are no more believable.
  ShmFixture again(kOld);
  again.pool(0).slot(2).changed_ms.store(kNow + 1);
  again.pool(0).slot(0).last_check_ms.store(-5);
  ShmFixture next(kNew);
  report = carryOver(again.region, next.region, kNow);
  EXPECT_EQ(report.carried, 0u);
  EXPECT_EQ(report.rejected.size(), 2u);
}

TEST(CarryOver, AdminStatesAreReportedNotCopied) {
  ShmFixture old_gen(kOld);
  ASSERT_TRUE(old_gen.region.setAdmin("p", "10.0.0.1:80", AdminState::Drain));
  ASSERT_TRUE(old_gen.region.setAdmin("p", "10.0.0.3:80", AdminState::Maint));
  ASSERT_TRUE(old_gen.region.setAdmin("p", "10.0.0.2:80", AdminState::Drain));  // gone from p
  ShmFixture new_gen(kNew);
  const CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  ASSERT_EQ(report.admin.size(), 2u);
  // In the order of the new region's slots: p's .3, .9, .1.
  EXPECT_EQ(report.admin[0].address, "10.0.0.3:80");
  EXPECT_EQ(report.admin[0].state, AdminState::Maint);
  EXPECT_EQ(report.admin[1].pool, "p");
  EXPECT_EQ(report.admin[1].address, "10.0.0.1:80");
  EXPECT_EQ(report.admin[1].state, AdminState::Drain);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(new_gen.pool(0).admin(i), AdminState::None) << "the master writes them";
  }
}

TEST(CarryOver, AnAdminStateThatIsNoneOfThemRejectsTheSlot) {
  ShmFixture old_gen(kOld);
  old_gen.pool(0).slot(0).admin.store(3);  // 10.0.0.1
  ShmFixture new_gen(kNew);
  const CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  EXPECT_TRUE(report.admin.empty());
  ASSERT_EQ(report.rejected.size(), 1u);
  EXPECT_NE(report.rejected[0].find("admin state 3"), std::string::npos) << report.rejected[0];
}

TEST(CarryOver, AnOverwrittenRegionCarriesNothing) {
  ShmFixture old_gen(kOld);
  for (int i = 0; i < 3; ++i) {
    (void)old_gen.pool(0).recordProbe(0, false, "refused", 10);
  }
  // Everything a worker can write, overwritten: header, keys, slots, rows.
  std::memset(static_cast<void*>(&old_gen.region.header()), 0xa5, old_gen.region.header().size);
  ShmFixture new_gen(kNew);
  const CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  EXPECT_EQ(report.carried, 0u);
  EXPECT_FALSE(report.header_problem.empty());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(new_gen.pool(0).state(i), BackendState::Up);
    EXPECT_EQ(new_gen.pool(0).total(i), 0u);
  }
}

TEST(CarryOver, GarbageUnderAnIntactHeaderIsBoundedByTheOwnersLayout) {
  ShmFixture old_gen(kOld);
  // Keys and slots scribbled, header left as it was: the master matches by its own keys and
  // rejects what is not believable, without reading past the region.
  std::memset(static_cast<void*>(&old_gen.region.backend(0)), 0xff,
              old_gen.region.header().size - sizeof(Header) -
                  ShmFixture::kWorkers * sizeof(WorkerSlot));
  ASSERT_TRUE(old_gen.region.intact());
  ShmFixture new_gen(kNew);
  const CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  EXPECT_EQ(report.carried, 0u);
  EXPECT_EQ(report.rejected.size(), 2u);  // .3 and .1, found by the private keys
  EXPECT_EQ(new_gen.pool(0).active(0), 0);
}

TEST(CarryOver, FromAHandedOverRegion) {
  ShmFixture old_gen(kOld);
  for (int i = 0; i < 3; ++i) {
    (void)old_gen.pool(0).recordProbe(1, false, "refused", 10);  // 10.0.0.2 down
  }
  auto seen = ShmRegion::attach(old_gen.region.fd());
  ASSERT_TRUE(seen.ok()) << seen.error().message();
  ShmFixture new_gen("[pools.p]\nbackends = [{ address = \"10.0.0.2:80\" }]\n");
  EXPECT_EQ(carryOver(*seen, new_gen.region, kNow).carried, 1u);
  EXPECT_EQ(new_gen.pool(0).state(0), BackendState::Down);
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
  auto region = ShmRegion::create(4, 1);
  ASSERT_TRUE(region.ok());
  auto map = BackendMap::create(*region, cfg);
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.error().code, ENOSPC);
}

}  // namespace
}  // namespace weir::shm
