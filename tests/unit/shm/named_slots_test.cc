// A named backend's slots in shared memory: they start empty, the checker fills and empties
// them, readers get the address or nothing, and a reload carries them over.
#include <gtest/gtest.h>

#include <cstring>

#include "shm/carry_over.h"
#include "shm/resolved_address.h"
#include "shm_fixture.h"

namespace weir::shm {
namespace {

constexpr std::string_view kPools = R"([pools.p]
backends = [{ address = "10.0.0.1:80" }, { address = "app.internal:8080", max_addresses = 3 }]
)";

constexpr int64_t kNow = 1'000'000;

net::SockAddr at(const std::string& text) { return *net::SockAddr::parse(text); }

TEST(NamedSlots, StartEmptyWithKeysNamingTheSlot) {
  ShmFixture f(kPools);
  const PoolSlots& p = f.pool();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.state(0), BackendState::Up);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(p.state(i), BackendState::Empty) << i;
    EXPECT_FALSE(p.eligible(i));
    EXPECT_FALSE(p.resolved(i).has_value());
  }
  EXPECT_EQ(f.region.addressOf(1), "app.internal:8080#1");
  EXPECT_EQ(f.region.addressOf(3), "app.internal:8080#3");
}

TEST(NamedSlots, FillAndEmpty) {
  ShmFixture f(kPools);
  const PoolSlots& p = f.pool();
  const uint64_t generation = p.generation();
  auto up = p.fill(2, at("[2001:db8::7]:8080"), kNow);
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(*up, (Transition{BackendState::Empty, BackendState::Up}));
  EXPECT_GT(p.generation(), generation);
  EXPECT_TRUE(p.eligible(2));
  ASSERT_TRUE(p.resolved(2).has_value());
  EXPECT_EQ(p.resolved(2)->toString(), "[2001:db8::7]:8080");
  EXPECT_EQ(p.slot(2).changed_ms.load(), kNow);  // a pool with slow_start ramps it from now
  // Only an empty slot is filled.
  EXPECT_FALSE(p.fill(2, at("10.9.9.9:8080"), kNow).has_value());
  EXPECT_EQ(p.resolved(2)->toString(), "[2001:db8::7]:8080");

  // Down by checks, then emptied: Down -> Empty.
  for (int i = 0; i < 3; ++i) {
    (void)p.recordProbe(2, false, "connect: Connection refused", kNow + 1);
  }
  ASSERT_EQ(p.state(2), BackendState::Down);
  auto gone = p.empty(2, "no longer returned", kNow + 2);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(*gone, (Transition{BackendState::Down, BackendState::Empty}));
  EXPECT_FALSE(p.eligible(2));
  EXPECT_FALSE(p.empty(2, "again", kNow + 3).has_value());
  // Checks of the old address that end late change nothing.
  (void)p.recordProbe(2, true, "", kNow + 4);
  (void)p.recordProbe(2, true, "", kNow + 4);
  EXPECT_EQ(p.state(2), BackendState::Empty);

  // Refilled: fresh counters, up.
  ASSERT_TRUE(p.fill(2, at("10.0.0.5:8080"), kNow + 5).has_value());
  EXPECT_EQ(p.slot(2).failures.load(), 0u);
  EXPECT_EQ(p.resolved(2)->toString(), "10.0.0.5:8080");
  // A draining slot (a reload removed it) is final.
  ASSERT_TRUE(p.setDraining(2, kNow + 6).has_value());
  EXPECT_FALSE(p.empty(2, "gone", kNow + 7).has_value());
  EXPECT_FALSE(p.fill(2, at("10.0.0.6:8080"), kNow + 7).has_value());
}

TEST(NamedSlots, GarbageInTheSlotReadsAsNoAddress) {
  ShmFixture f(kPools);
  BackendSlot& s = f.region.backend(2);
  writeResolved(s, at("10.0.0.5:8080"));
  ASSERT_TRUE(readResolved(s).has_value());
  s.resolved[0].store(0x1234);  // no family weir writes
  EXPECT_FALSE(readResolved(s).has_value());
  writeResolved(s, at("10.0.0.5:8080"));
  s.resolved_seq.fetch_add(1);  // a write that never ended (odd)
  EXPECT_FALSE(readResolved(s).has_value());
  writeResolved(s, std::nullopt);
  EXPECT_FALSE(readResolved(s).has_value());
  EXPECT_EQ(s.resolved_seq.load() % 2, 0u);
}

TEST(NamedSlots, AReloadCarriesAddressesOver) {
  ShmFixture old_gen(kPools);
  const PoolSlots& old_p = old_gen.pool();
  ASSERT_TRUE(old_p.fill(1, at("10.0.0.7:8080"), kNow - 10).has_value());
  ASSERT_TRUE(old_p.fill(3, at("10.0.0.8:8080"), kNow - 10).has_value());
  (void)old_p.empty(3, "gone", kNow - 5);

  ShmFixture new_gen(kPools);
  const CarryReport report = carryOver(old_gen.region, new_gen.region, kNow);
  EXPECT_TRUE(report.rejected.empty());
  const PoolSlots& p = new_gen.pool();
  EXPECT_EQ(p.state(1), BackendState::Up);
  EXPECT_EQ(p.resolved(1)->toString(), "10.0.0.7:8080");
  EXPECT_EQ(p.state(2), BackendState::Empty);
  EXPECT_EQ(p.state(3), BackendState::Empty);

  // A slot that claims to be up with an address nobody can read starts empty.
  ShmFixture bad_gen(kPools);
  ASSERT_TRUE(bad_gen.pool().fill(1, at("10.0.0.7:8080"), kNow - 10).has_value());
  bad_gen.region.backend(1).resolved[0].store(0x1234);
  ShmFixture after(kPools);
  (void)carryOver(bad_gen.region, after.region, kNow);
  EXPECT_EQ(after.pool().state(1), BackendState::Empty);
  EXPECT_FALSE(after.pool().eligible(1));
}

TEST(NamedSlots, ALongNameGetsAHashedKey) {
  const std::string host(60, 'a');
  ShmFixture f("[pools.p]\nbackends = [{ address = \"" + host + ".example:80\", "
               "max_addresses = 2 }]\n");
  const std::string_view k1 = f.region.addressOf(0);
  const std::string_view k2 = f.region.addressOf(1);
  EXPECT_EQ(k1.size(), 17u);
  EXPECT_EQ(k1.front(), '~');
  EXPECT_NE(k1, k2);
  EXPECT_EQ(slotKey(f.cfg.pools[0].backends[1]), k2);
}

}  // namespace
}  // namespace weir::shm
