// rate_per_client's arithmetic: the GCRA cells of bpf/steer.h as the workers run them (the
// program runs the same inline functions), with time given by the test.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "steer/client_limits.h"

namespace weir::steer {
namespace {

constexpr uint64_t kSecond = 1000000000;

config::Listener listenerWith(const std::string& rate, unsigned v4 = 32, unsigned v6 = 64) {
  config::Listener l;
  l.name = "front";
  l.rate_per_client = config::parseRate(rate);
  l.per_client_ipv4_prefix = v4;
  l.per_client_ipv6_prefix = v6;
  return l;
}

net::SockAddr peer(const std::string& text) { return *net::SockAddr::parse(text); }

struct State {
  std::unique_ptr<weir_steer_state> state = std::make_unique<weir_steer_state>();
  State() { state->client_seed = 0x1234567887654321ULL; }
};

// How many of `n` starts at `now` are allowed.
int starts(weir_steer_state& s, const weir_client_limit& limit, const std::string& client,
           uint64_t now, int n) {
  int allowed = 0;
  for (int i = 0; i < n; ++i) {
    allowed += rateAllows(s, limit, peer(client), now) ? 1 : 0;
  }
  return allowed;
}

TEST(ClientRate, ABurstOfTheRateThenOnePerInterval) {
  State s;
  const weir_client_limit limit = clientLimitOf(listenerWith("5/s"));
  EXPECT_EQ(limit.rate_interval_ns, kSecond / 5);
  EXPECT_EQ(limit.rate_tolerance_ns, 4 * kSecond / 5);
  const uint64_t t = 100 * kSecond;
  EXPECT_EQ(starts(*s.state, limit, "192.0.2.1:1000", t, 20), 5);
  EXPECT_EQ(starts(*s.state, limit, "192.0.2.1:1000", t + kSecond / 5 - 1, 5), 0);
  EXPECT_EQ(starts(*s.state, limit, "192.0.2.1:1001", t + kSecond / 5, 5), 1);  // port ignored
  EXPECT_EQ(starts(*s.state, limit, "192.0.2.1:1000", t + 3 * kSecond, 20), 5);  // refilled
}

TEST(ClientRate, ClientsAndListenersCountApart) {
  State s;
  const weir_client_limit front = clientLimitOf(listenerWith("3/s"));
  config::Listener other_listener = listenerWith("3/s");
  other_listener.name = "other";
  const weir_client_limit other = clientLimitOf(other_listener);
  const uint64_t t = 50 * kSecond;
  EXPECT_EQ(starts(*s.state, front, "192.0.2.1:1", t, 10), 3);
  EXPECT_EQ(starts(*s.state, front, "192.0.2.2:1", t, 10), 3);
  EXPECT_EQ(starts(*s.state, other, "192.0.2.1:1", t, 10), 3);
  EXPECT_EQ(starts(*s.state, front, "[2001:db8::1]:1", t, 10), 3);
  // An IPv4 client of a dual-stack socket is the IPv4 client.
  EXPECT_EQ(starts(*s.state, front, "[::ffff:192.0.2.1]:1", t, 10), 0);
}

TEST(ClientRate, APrefixMakesOneClientOfItsAddresses) {
  State s;
  const weir_client_limit limit = clientLimitOf(listenerWith("4/m", 24, 48));
  const uint64_t t = 10 * kSecond;
  EXPECT_EQ(starts(*s.state, limit, "198.51.100.1:1", t, 3), 3);
  EXPECT_EQ(starts(*s.state, limit, "198.51.100.200:1", t, 3), 1);  // the same /24
  EXPECT_EQ(starts(*s.state, limit, "198.51.101.1:1", t, 3), 3);
  EXPECT_EQ(starts(*s.state, limit, "[2001:db8:1:2::1]:1", t, 3), 3);
  EXPECT_EQ(starts(*s.state, limit, "[2001:db8:1:ffff::9]:1", t, 3), 1);  // the same /48
  EXPECT_EQ(starts(*s.state, limit, "198.51.100.7:1", t + 15 * kSecond, 3), 1);  // 1 per 15 s
}

TEST(ClientRate, NoRateAllowsEverything) {
  State s;
  config::Listener l;
  l.name = "front";
  const weir_client_limit limit = clientLimitOf(l);
  EXPECT_EQ(limit.rate_interval_ns, 0u);
  EXPECT_EQ(starts(*s.state, limit, "192.0.2.1:1", kSecond, 1000), 1000);
}

}  // namespace
}  // namespace weir::steer

namespace weir::steer {
namespace {

config::Listener limitedTo(uint32_t max, unsigned v4 = 32) {
  config::Listener l;
  l.name = "front";
  l.max_connections_per_client = max;
  l.per_client_ipv4_prefix = v4;
  return l;
}

TEST(ClientConnectionCount, HoldsUpToTheLimitAndReleasesNeverBelowZero) {
  State s;
  const weir_client_limit limit = clientLimitOf(limitedTo(3));
  EXPECT_EQ(limit.max_conns, 3u);
  EXPECT_EQ(limit.rate_interval_ns, 0u);
  const uint32_t a = *clientCells(*s.state, limit, peer("192.0.2.1:1"));
  const uint32_t b = *clientCells(*s.state, limit, peer("192.0.2.2:1"));
  EXPECT_EQ(a, *clientCells(*s.state, limit, peer("192.0.2.1:9")));  // the port is no part
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(holdConnection(*s.state, a, 3));
  }
  EXPECT_FALSE(holdConnection(*s.state, a, 3));
  EXPECT_TRUE(holdConnection(*s.state, b, 3));
  releaseConnection(*s.state, a);
  EXPECT_TRUE(holdConnection(*s.state, a, 3));
  EXPECT_FALSE(holdConnection(*s.state, a, 3));
  for (int i = 0; i < 5; ++i) {
    releaseConnection(*s.state, b);  // one held: the rest must not wrap below zero
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(holdConnection(*s.state, b, 3));
  }
  EXPECT_FALSE(holdConnection(*s.state, b, 3));
}

TEST(ClientConnectionCount, ReleaseAllGivesBackWhatADeadWorkerHeld) {
  State s;
  const weir_client_limit limit = clientLimitOf(limitedTo(2, 24));
  const uint32_t net = *clientCells(*s.state, limit, peer("198.51.100.9:1"));
  EXPECT_EQ(net, *clientCells(*s.state, limit, peer("198.51.100.200:1")));  // one /24
  ClientHolds holds(8);
  holds.set(0, net);
  ASSERT_TRUE(holdConnection(*s.state, net, 2));
  holds.set(5, net);
  ASSERT_TRUE(holdConnection(*s.state, net, 2));
  EXPECT_EQ(holds.get(5), net);
  EXPECT_FALSE(holds.get(1).has_value());
  EXPECT_FALSE(holdConnection(*s.state, net, 2));
  holds.set(99, net);  // past the record: ignored
  EXPECT_EQ(holds.releaseAll(*s.state), 2u);
  EXPECT_FALSE(holds.get(0).has_value());
  EXPECT_TRUE(holdConnection(*s.state, net, 2));
  EXPECT_TRUE(holdConnection(*s.state, net, 2));
  EXPECT_EQ(holds.releaseAll(*s.state), 0u);
}

}  // namespace
}  // namespace weir::steer
