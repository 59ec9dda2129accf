#include <gtest/gtest.h>

#include <vector>

#include "balance/maglev_table.h"
#include "balance_fixture.h"

namespace weir::balance {
namespace {

constexpr std::string_view kHead = "[pools.p]\nbalance = \"maglev\"\n";
constexpr int kClients = 100000;

bool isPrime(uint32_t n) {
  for (uint32_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) {
      return false;
    }
  }
  return n >= 2;
}

// The backend each client gets (picks released, so loads stay zero).
std::vector<int> mapping(BalanceFixture& f, const std::vector<net::SockAddr>& from) {
  std::vector<int> out;
  out.reserve(from.size());
  for (const auto& client : from) {
    out.push_back(f.pickReleased({&client, 0}));
  }
  return out;
}

std::vector<double> shares(const std::vector<int>& map, size_t backends) {
  std::vector<double> out(backends, 0);
  for (int b : map) {
    out[static_cast<size_t>(b)] += 1.0 / static_cast<double>(map.size());
  }
  return out;
}

TEST(MaglevTable, SizeIsAPrimeOfAtLeast1000PerBackend) {
  EXPECT_EQ(MaglevTable::sizeFor(1), 65537u);
  EXPECT_EQ(MaglevTable::sizeFor(65), 65537u);
  for (size_t n : {1, 5, 17, 64, 66, 100, 1000}) {
    uint32_t m = MaglevTable::sizeFor(n);
    EXPECT_GE(m, 1000 * n);
    EXPECT_TRUE(isPrime(m)) << m;
  }
  EXPECT_GE(MaglevTable::sizeFor(5000), 500000u);
  EXPECT_TRUE(isPrime(MaglevTable::sizeFor(5000)));
}

TEST(MaglevTable, EveryPositionIsFilledInProportionToWeight) {
  MaglevTable table;
  std::vector<uint64_t> keys = {11, 22, 33, 44};
  std::vector<uint32_t> weights = {1, 1, 2, 4};
  std::vector<uint8_t> include = {1, 1, 1, 1};
  table.build(keys, weights, include, 1009);
  std::vector<int> counts(4, 0);
  for (uint32_t pos = 0; pos < table.size(); ++pos) {
    ASSERT_GE(table.at(pos), 0);
    ++counts[static_cast<size_t>(table.at(pos))];
  }
  EXPECT_NEAR(counts[0], 1009 / 8, 2);
  EXPECT_NEAR(counts[1], 1009 / 8, 2);
  EXPECT_NEAR(counts[2], 1009 / 4, 2);
  EXPECT_NEAR(counts[3], 1009 / 2, 2);
  include = {0, 0, 0, 0};
  table.build(keys, weights, include, 1009);
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.at(5), -1);
}

TEST(Maglev, AClientKeepsItsBackendInEveryWorker) {
  BalanceFixture f(std::string(kHead) + shm::backendList(7));
  auto other_worker = f.another();
  auto from = clients(1000);
  for (const auto& client : from) {
    int a = f.pickReleased({&client, 0});
    Pick b = other_worker->pick({&client, 0});
    f.pool(0).release(static_cast<size_t>(b.backend));
    ASSERT_EQ(a, b.backend);
    ASSERT_EQ(a, f.pickReleased({&client, 0}));
  }
}

// What each client gets, as backend addresses: comparable across pools that list the same
// backends in another order.
std::vector<std::string> addressMapping(BalanceFixture& f, const std::vector<net::SockAddr>& from) {
  std::vector<std::string> out;
  for (int b : mapping(f, from)) {
    out.push_back(f.cfg.pools[0].backends[static_cast<size_t>(b)].address.toString());
  }
  return out;
}

// Nodes behind ECMP each build their own table: the same backends listed in another order,
// with their weights, give every client the same backend.
TEST(Maglev, TheTableDoesNotDependOnTheOrderBackendsAreListedIn) {
  const auto from = clients(20000);
  BalanceFixture listed(std::string(kHead) + R"(backends = [
  { address = "10.0.0.1:80", weight = 1 }, { address = "10.0.0.2:80", weight = 2 },
  { address = "10.0.0.3:80", weight = 1 }, { address = "[2001:db8::4]:80", weight = 3 },
  { address = "10.0.0.5:80", weight = 1 },
]
)");
  BalanceFixture reversed(std::string(kHead) + R"(backends = [
  { address = "10.0.0.5:80", weight = 1 }, { address = "[2001:db8::4]:80", weight = 3 },
  { address = "10.0.0.3:80", weight = 1 }, { address = "10.0.0.2:80", weight = 2 },
  { address = "10.0.0.1:80", weight = 1 },
]
)");
  EXPECT_EQ(addressMapping(listed, from), addressMapping(reversed, from));
  // The same backend down on both keeps them in agreement.
  listed.setState(1, shm::BackendState::Down);
  reversed.setState(3, shm::BackendState::Down);
  EXPECT_EQ(addressMapping(listed, from), addressMapping(reversed, from));
}

// The table is part of weir's contract between nodes, which may run different versions during
// a rolling upgrade: these clients got these backends when the contract was written down
// (docs/scale-out.md). A change to the hash, the table size or the turn order breaks it and
// must be called out in the release notes.
TEST(Maglev, TheMappingIsStableAcrossVersions) {
  BalanceFixture f(std::string(kHead) + shm::backendList(5));
  const auto from = clients(8);
  EXPECT_EQ(mapping(f, from), (std::vector<int>{0, 2, 1, 0, 3, 2, 1, 4}));
}

TEST(Maglev, ThePortDoesNotMatter) {
  BalanceFixture f(std::string(kHead) + shm::backendList(7));
  auto a = *net::SockAddr::parse("192.0.2.7:1000");
  auto b = *net::SockAddr::parse("192.0.2.7:2000");
  EXPECT_EQ(f.pickReleased({&a, 0}), f.pickReleased({&b, 0}));
}

TEST(Maglev, EqualWeightsShareEvenly) {
  BalanceFixture f(std::string(kHead) + shm::backendList(5));
  auto s = shares(mapping(f, clients(kClients)), 5);
  for (double share : s) {
    EXPECT_NEAR(share, 0.2, 0.01);
  }
}

TEST(Maglev, WeightsAreHonoured) {
  BalanceFixture f(std::string(kHead) + weighted({1, 2, 3, 4}));
  auto s = shares(mapping(f, clients(kClients)), 4);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(s[i], (i + 1) / 10.0, 0.01) << i;
  }
}

TEST(Maglev, ABackendGoingDownMovesOnlyItsOwnClients) {
  const auto from = clients(kClients);
  for (int n : {2, 3, 5, 10, 20, 50}) {
    BalanceFixture f(std::string(kHead) + shm::backendList(n));
    const std::vector<int> before = mapping(f, from);
    for (int gone : {0, n / 2, n - 1}) {
      f.setState(static_cast<size_t>(gone), shm::BackendState::Down);
      const std::vector<int> during = mapping(f, from);
      int moved = 0;
      std::vector<int> moved_to(static_cast<size_t>(n), 0);
      for (size_t c = 0; c < from.size(); ++c) {
        ASSERT_NE(during[c], gone);
        if (during[c] != before[c]) {
          ASSERT_EQ(before[c], gone) << "client " << c << " moved off a backend still up";
          ++moved;
          ++moved_to[static_cast<size_t>(during[c])];
        }
      }
      EXPECT_LE(moved, kClients / n + kClients / 100) << n << " backends, removed " << gone;
      // The orphans spread over the others rather than landing on one neighbour.
      for (int b = 0; b < n; ++b) {
        if (b != gone && n > 2) {
          EXPECT_NEAR(moved_to[static_cast<size_t>(b)], moved / (n - 1), moved / (n - 1) / 2 + 30)
              << n << " backends, removed " << gone << ", to " << b;
        }
      }
      f.setState(static_cast<size_t>(gone), shm::BackendState::Up);
      EXPECT_EQ(mapping(f, from), before) << n << " backends, restored " << gone;
    }
  }
}

TEST(Maglev, RemovingABackendFromTheConfigMovesFewClients) {
  // A reload builds a new table without the backend: Maglev's own bound, 1/N + well under 1%.
  const auto from = clients(kClients);
  for (int n : {3, 5, 10, 20, 50}) {
    BalanceFixture all(std::string(kHead) + shm::backendList(n));
    const std::vector<int> before = mapping(all, from);
    // backendList(n - 1) is backendList(n) without its last backend.
    BalanceFixture fewer(std::string(kHead) + shm::backendList(n - 1));
    const std::vector<int> after = mapping(fewer, from);
    int moved = 0;
    for (size_t c = 0; c < from.size(); ++c) {
      moved += after[c] != before[c] ? 1 : 0;
    }
    EXPECT_LE(moved, kClients / n + kClients / 100) << n << " backends";
  }
}

TEST(Maglev, RetriesAndFullBackendsWalkOnConsistently) {
  BalanceFixture f(std::string(kHead) + shm::backendList(5));
  auto from = clients(500);
  for (const auto& client : from) {
    int first = f.pickReleased({&client, 0});
    uint64_t tried = uint64_t{1} << first;
    int second = f.pickReleased({&client, tried});
    ASSERT_NE(second, first);
    ASSERT_EQ(second, f.pickReleased({&client, tried}));  // the same second choice every time
  }
}

TEST(Maglev, Ipv6Clients) {
  BalanceFixture f(std::string(kHead) + shm::backendList(4));
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 4000; ++i) {
    auto client = *net::SockAddr::parse("[2001:db8::" + std::to_string(i) + "]:5000");
    ++counts[static_cast<size_t>(f.pickReleased({&client, 0}))];
  }
  for (int c : counts) {
    EXPECT_NEAR(c, 1000, 150);
  }
}

TEST(Maglev, BackupsGetTheirOwnTable) {
  BalanceFixture f(std::string(kHead) + R"(backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2:80", backup = true },
  { address = "10.0.0.3:80", backup = true },
]
)");
  f.setState(0, shm::BackendState::Down);
  auto s = shares(mapping(f, clients(10000)), 3);
  EXPECT_EQ(s[0], 0);
  EXPECT_NEAR(s[1], 0.5, 0.03);
  EXPECT_NEAR(s[2], 0.5, 0.03);
}

}  // namespace
}  // namespace weir::balance
