// The plan of transparent mode: which families and VIPs a config needs rules for, and the
// exact nft script and ip commands `weir-netsetup up` and `down` run for it.
#include "netsetup/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "netsetup/steps.h"

namespace weir::netsetup {
namespace {

using ::testing::ElementsAre;
using Argv = std::vector<std::string>;

net::SockAddr addr(const char* text) {
  auto a = net::SockAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(net::SockAddr());
}

config::Listener listener(const std::string& name, std::vector<const char*> binds,
                          bool transparent) {
  config::Listener l;
  l.name = name;
  l.pool = "web";
  l.transparent = transparent;
  for (const char* b : binds) {
    l.binds.push_back(addr(b));
  }
  return l;
}

config::Pool pool(const std::string& name, std::vector<const char*> backends,
                  config::SourceMode source) {
  config::Pool p;
  p.name = name;
  p.source = source;
  for (const char* b : backends) {
    p.backends.push_back(config::Backend{addr(b)});
  }
  return p;
}

// A listener with a VIP of each family, one non-transparent listener, a source = "client"
// pool with IPv4 backends and an ordinary pool with IPv6 backends.
config::Config dualStack() {
  config::Config c;
  c.path = "/etc/weir/weir.toml";
  c.listeners.push_back(listener("plain", {"127.0.0.1:8080", "[::1]:8080"}, false));
  c.listeners.push_back(
      listener("vip", {"192.0.2.10:80", "[2001:db8::10]:443", "192.0.2.10:443"}, true));
  c.pools.push_back(pool("local", {"[2001:db8:1::5]:80"}, config::SourceMode::Local));
  c.pools.push_back(pool("web", {"198.51.100.5:80", "198.51.100.6:80"},
                         config::SourceMode::Client));
  return c;
}

TEST(Plan, NothingForAPlainConfig) {
  config::Config c;
  c.listeners.push_back(listener("web", {"0.0.0.0:80", "[::]:80"}, false));
  c.pools.push_back(pool("web", {"10.0.0.1:80", "[2001:db8::1]:80"}, config::SourceMode::Local));
  const Plan plan = makePlan(c);
  EXPECT_TRUE(plan.empty());
  EXPECT_FALSE(plan.ipv4);
  EXPECT_FALSE(plan.ipv6);
  EXPECT_TRUE(plan.intercepts.empty());
  EXPECT_TRUE(upSteps(plan).empty());
}

TEST(Plan, FamiliesAndInterceptsOfTransparentListenersAndClientSourcePools) {
  const Plan plan = makePlan(dualStack());
  EXPECT_EQ(plan.mark, 0x7765u);
  EXPECT_EQ(plan.table, 7765u);
  EXPECT_TRUE(plan.ipv4);
  EXPECT_TRUE(plan.ipv6);
  // Sorted by family, then address, then port; the non-transparent listener is not there.
  ASSERT_EQ(plan.intercepts.size(), 3u);
  EXPECT_EQ(plan.intercepts[0].describe(), "192.0.2.10:80");
  EXPECT_EQ(plan.intercepts[1].describe(), "192.0.2.10:443");
  EXPECT_EQ(plan.intercepts[2].describe(), "[2001:db8::10]:443");
}

TEST(Plan, ClientSourcePoolAloneNeedsItsBackendsFamilyAndNoIntercept) {
  config::Config c;
  c.global.transparent_mark = 0x10;
  c.global.transparent_table = 100;
  c.listeners.push_back(listener("web", {"0.0.0.0:80"}, false));
  c.pools.push_back(pool("web", {"[2001:db8::5]:80"}, config::SourceMode::Client));
  const Plan plan = makePlan(c);
  EXPECT_FALSE(plan.ipv4);
  EXPECT_TRUE(plan.ipv6);
  EXPECT_TRUE(plan.intercepts.empty());
  EXPECT_EQ(nftScript(plan),
            "table inet weir\n"
            "flush table inet weir\n"
            "table inet weir {\n"
            "\tchain prerouting {\n"
            "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
            "\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x10 accept\n"
            "\t}\n"
            "}\n");
  const std::vector<Step> steps = upSteps(plan);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].argv, (Argv{"ip", "-6", "route", "replace", "local", "::/0", "dev", "lo",
                                 "table", "100"}));
  EXPECT_EQ(steps[1].argv, (Argv{"ip", "-6", "rule", "add", "fwmark", "0x10", "lookup", "100"}));
  EXPECT_EQ(steps[2].argv, (Argv{"nft", "-f", "-"}));
}

TEST(Plan, ExactScriptAndCommandsForDualStack) {
  const Plan plan = makePlan(dualStack());
  EXPECT_EQ(nftScript(plan),
            "table inet weir\n"
            "flush table inet weir\n"
            "table inet weir {\n"
            "\tchain prerouting {\n"
            "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
            "\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x7765 accept\n"
            "\t\tip daddr 192.0.2.10 tcp dport 80 tproxy ip to :80 meta mark set 0x7765 accept\n"
            "\t\tip daddr 192.0.2.10 tcp dport 443 tproxy ip to :443 meta mark set 0x7765 "
            "accept\n"
            "\t\tip6 daddr 2001:db8::10 tcp dport 443 tproxy ip6 to :443 meta mark set 0x7765 "
            "accept\n"
            "\t}\n"
            "}\n");

  const std::vector<Step> up = upSteps(plan);
  ASSERT_EQ(up.size(), 5u);
  EXPECT_EQ(up[0].argv, (Argv{"ip", "route", "replace", "local", "default", "dev", "lo", "table",
                              "7765"}));
  EXPECT_EQ(up[0].when, Step::When::Always);
  EXPECT_EQ(up[1].argv, (Argv{"ip", "rule", "add", "fwmark", "0x7765", "lookup", "7765"}));
  EXPECT_EQ(up[1].when, Step::When::Unless);
  EXPECT_EQ(up[1].probe, (Argv{"ip", "rule", "show", "fwmark", "0x7765", "lookup", "7765"}));
  EXPECT_EQ(up[2].argv, (Argv{"ip", "-6", "route", "replace", "local", "::/0", "dev", "lo",
                              "table", "7765"}));
  EXPECT_EQ(up[3].argv, (Argv{"ip", "-6", "rule", "add", "fwmark", "0x7765", "lookup", "7765"}));
  EXPECT_EQ(up[3].probe,
            (Argv{"ip", "-6", "rule", "show", "fwmark", "0x7765", "lookup", "7765"}));
  // Interception starts last, once its return path is there.
  EXPECT_EQ(up[4].argv, (Argv{"nft", "-f", "-"}));
  EXPECT_EQ(up[4].input, nftScript(plan));
  EXPECT_EQ(up[4].when, Step::When::Always);
}

TEST(Plan, DownRemovesBothFamiliesWhateverThePlanNeeds) {
  config::Config c;  // needs nothing
  c.global.transparent_mark = 0xbeef;
  c.global.transparent_table = 42;
  const std::vector<Step> down = downSteps(makePlan(c));
  ASSERT_EQ(down.size(), 5u);
  EXPECT_EQ(down[0].argv, (Argv{"nft", "-f", "-"}));
  EXPECT_EQ(down[0].input, "table inet weir\ndelete table inet weir\n");
  EXPECT_EQ(down[1].argv, (Argv{"ip", "rule", "del", "fwmark", "0xbeef", "lookup", "42"}));
  EXPECT_EQ(down[1].when, Step::When::While);
  EXPECT_EQ(down[1].probe, (Argv{"ip", "rule", "show", "fwmark", "0xbeef", "lookup", "42"}));
  EXPECT_EQ(down[2].argv, (Argv{"ip", "route", "flush", "table", "42"}));
  EXPECT_EQ(down[2].absent, "table does not exist");
  EXPECT_EQ(down[3].argv, (Argv{"ip", "-6", "rule", "del", "fwmark", "0xbeef", "lookup", "42"}));
  EXPECT_EQ(down[3].probe,
            (Argv{"ip", "-6", "rule", "show", "fwmark", "0xbeef", "lookup", "42"}));
  EXPECT_EQ(down[4].argv, (Argv{"ip", "-6", "route", "flush", "table", "42"}));
}

TEST(Plan, WildcardBindsInterceptThePortWithoutADestinationMatch) {
  config::Config c;
  c.listeners.push_back(listener("any", {"0.0.0.0:80", "[::]:80", "0.0.0.0:80"}, true));
  c.listeners.push_back(listener("again", {"0.0.0.0:80"}, true));  // one rule, not two
  c.pools.push_back(pool("web", {"10.0.0.1:80"}, config::SourceMode::Local));
  const Plan plan = makePlan(c);
  EXPECT_TRUE(plan.ipv4);
  EXPECT_TRUE(plan.ipv6);
  ASSERT_EQ(plan.intercepts.size(), 2u);
  EXPECT_EQ(plan.intercepts[0].family, AF_INET);
  EXPECT_EQ(plan.intercepts[0].address, "");
  EXPECT_EQ(plan.intercepts[0].describe(), "0.0.0.0:80");
  EXPECT_EQ(plan.intercepts[1].describe(), "[::]:80");
  EXPECT_EQ(nftScript(plan),
            "table inet weir\n"
            "flush table inet weir\n"
            "table inet weir {\n"
            "\tchain prerouting {\n"
            "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
            "\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x7765 accept\n"
            "\t\ttcp dport 80 tproxy ip to :80 meta mark set 0x7765 accept\n"
            "\t\ttcp dport 80 tproxy ip6 to :80 meta mark set 0x7765 accept\n"
            "\t}\n"
            "}\n");
}

TEST(Plan, MarkIsWrittenInHex) {
  EXPECT_EQ(formatMark(0x7765), "0x7765");
  EXPECT_EQ(formatMark(1), "0x1");
  EXPECT_EQ(formatMark(0xffffffff), "0xffffffff");
}

}  // namespace
}  // namespace weir::netsetup
