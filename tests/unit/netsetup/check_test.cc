// missingPieces(): what `nft list table inet weir`, `ip rule show` and `ip route show table`
// print (as nftables 1.0.6 and iproute2 6.1 print it) is checked part by part against the plan.
#include "netsetup/check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "netsetup/fake_runner.h"

namespace weir::netsetup {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr const char* kNftList = "nft list table inet weir";
constexpr const char* kRule4 = "ip rule show fwmark 0x7765 lookup 7765";
constexpr const char* kRule6 = "ip -6 rule show fwmark 0x7765 lookup 7765";
constexpr const char* kRoutes4 = "ip route show table 7765";
constexpr const char* kRoutes6 = "ip -6 route show table 7765";

Plan dualPlan() {
  Plan plan;
  plan.mark = 0x7765;
  plan.table = 7765;
  plan.ipv4 = true;
  plan.ipv6 = true;
  plan.intercepts = {Intercept{AF_INET, "", 8080}, Intercept{AF_INET, "192.0.2.10", 80},
                     Intercept{AF_INET6, "2001:db8::10", 443}};
  return plan;
}

// What nft 1.0.6 lists after `weir-netsetup up` of dualPlan().
constexpr const char* kTableListed =
    "table inet weir {\n"
    "\tchain prerouting {\n"
    "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
    "\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x00007765 accept\n"
    "\t\ttcp dport 8080 tproxy ip to :8080 meta mark set 0x00007765 accept\n"
    "\t\tip daddr 192.0.2.10 tcp dport 80 tproxy ip to :80 meta mark set 0x00007765 accept\n"
    "\t\tip6 daddr 2001:db8::10 tcp dport 443 tproxy ip6 to :443 meta mark set 0x00007765 "
    "accept\n"
    "\t}\n"
    "}\n";

FakeRunner complete() {
  FakeRunner r;
  r.replies[kNftList] = Output{0, kTableListed, ""};
  r.replies[kRule4] = Output{0, "32765:\tfrom all fwmark 0x7765 lookup 7765\n", ""};
  r.replies[kRule6] = Output{0, "32765:\tfrom all fwmark 0x7765 lookup 7765\n", ""};
  r.replies[kRoutes4] = Output{0, "local default dev lo scope host \n", ""};
  r.replies[kRoutes6] = Output{0, "local default dev lo metric 1024 pref medium\n", ""};
  return r;
}

TEST(Check, EmptyPlanRunsNothing) {
  FakeRunner r;
  EXPECT_THAT(missingPieces(Plan{}, r), IsEmpty());
  EXPECT_THAT(r.ran, IsEmpty());
}

TEST(Check, CompleteSetupHasNothingMissing) {
  FakeRunner r = complete();
  EXPECT_THAT(missingPieces(dualPlan(), r), IsEmpty());
  EXPECT_THAT(r.ran, ElementsAre(kNftList, kRule4, kRoutes4, kRule6, kRoutes6));
}

TEST(Check, OnlyTheFamiliesThePlanNeedsAreChecked) {
  FakeRunner r = complete();
  Plan plan = dualPlan();
  plan.ipv6 = false;
  plan.intercepts.pop_back();
  EXPECT_THAT(missingPieces(plan, r), IsEmpty());
  EXPECT_THAT(r.ran, ElementsAre(kNftList, kRule4, kRoutes4));
}

TEST(Check, NothingInstalled) {
  FakeRunner r;
  r.replies[kNftList] =
      Output{1, "", "Error: No such file or directory\nlist table inet weir\n     ^^^^\n"};
  r.replies[kRule4] = Output{0, "", ""};
  r.replies[kRule6] = Output{0, "", ""};
  r.replies[kRoutes4] = Output{2, "", "Error: ipv4: FIB table does not exist.\n"};
  r.replies[kRoutes6] = Output{2, "", "Error: ipv6: FIB table does not exist.\n"};
  EXPECT_THAT(missingPieces(dualPlan(), r),
              ElementsAre("no nftables table inet weir",
                          "no IPv4 rule 'fwmark 0x7765 lookup 7765'",
                          "no local default route in IPv4 table 7765",
                          "no IPv6 rule 'fwmark 0x7765 lookup 7765'",
                          "no local default route in IPv6 table 7765"));
}

TEST(Check, EachMissingOrWrongRuleIsNamed) {
  FakeRunner r = complete();
  r.replies[kNftList] = Output{
      0,
      "table inet weir {\n"
      "\tchain prerouting {\n"
      "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
      // the wrong mark: its packets would not find table 7765
      "\t\tmeta l4proto tcp socket transparent 1 meta mark set 0x00000001 accept\n"
      // another VIP, and the right VIP on another port
      "\t\tip daddr 192.0.2.11 tcp dport 80 tproxy ip to :80 meta mark set 0x00007765 accept\n"
      "\t\tip daddr 192.0.2.10 tcp dport 81 tproxy ip to :81 meta mark set 0x00007765 accept\n"
      // a wildcard rule for 8080 that matches one address only is not the wildcard
      "\t\tip daddr 192.0.2.10 tcp dport 8080 tproxy ip to :8080 meta mark set 0x00007765 "
      "accept\n"
      // the IPv6 VIP redirected as IPv4
      "\t\tip6 daddr 2001:db8::10 tcp dport 443 tproxy ip to :443 meta mark set 0x00007765 "
      "accept\n"
      "\t}\n"
      "}\n",
      ""};
  EXPECT_THAT(missingPieces(dualPlan(), r),
              ElementsAre("no rule marking packets of transparent sockets in nftables table "
                          "inet weir ('socket transparent 1 meta mark set 0x7765 accept')",
                          "no tproxy rule for 0.0.0.0:8080", "no tproxy rule for 192.0.2.10:80",
                          "no tproxy rule for [2001:db8::10]:443"));
}

TEST(Check, RulesOutsideTheHookedChainDoNotCount) {
  FakeRunner r = complete();
  std::string listed = kTableListed;
  listed.replace(listed.find("chain prerouting"), 16, "chain other");
  r.replies[kNftList] = Output{0, listed, ""};
  EXPECT_THAT(missingPieces(dualPlan(), r),
              ElementsAre("no chain prerouting on the prerouting hook in nftables table inet "
                          "weir"));
}

TEST(Check, AddressesAreComparedAsAddresses) {
  FakeRunner r = complete();
  std::string listed = kTableListed;
  listed.replace(listed.find("2001:db8::10"), 12, "2001:0db8:0:0::10");
  r.replies[kNftList] = Output{0, listed, ""};
  EXPECT_THAT(missingPieces(dualPlan(), r), IsEmpty());
}

TEST(Check, RuleWithANamedTableOrMaskedMark) {
  FakeRunner r = complete();
  // /etc/iproute2/rt_tables names 7765 "weir"; the filter matched it.
  r.replies[kRule4] = Output{0, "32765:\tfrom all fwmark 0x7765 lookup weir\n", ""};
  // A mark under a partial mask is another rule.
  r.replies[kRule6] = Output{0, "32765:\tfrom all fwmark 0x7765/0xffff lookup 7765\n", ""};
  EXPECT_THAT(missingPieces(dualPlan(), r),
              ElementsAre("no IPv6 rule 'fwmark 0x7765 lookup 7765'"));
}

TEST(Check, RouteOfAnotherKindIsNotTheLocalRoute) {
  FakeRunner r = complete();
  r.replies[kRoutes4] = Output{0, "default via 192.0.2.1 dev eth0 \n", ""};
  r.replies[kRoutes6] = Output{0, "local 2001:db8::/64 dev lo metric 1024 pref medium\n", ""};
  EXPECT_THAT(missingPieces(dualPlan(), r),
              ElementsAre("no local default route in IPv4 table 7765",
                          "no local default route in IPv6 table 7765"));
}

TEST(Check, ToolsThatCannotRunAreFindings) {
  FakeRunner r;
  r.answer = [](const std::string& line) -> util::Result<Output> {
    return util::SysError{ENOENT, line.substr(0, line.find(' '))};
  };
  EXPECT_THAT(missingPieces(dualPlan(), r),
              ElementsAre("nft not found: install nftables", "ip not found: install iproute2"));

  FakeRunner denied = complete();
  denied.replies[kNftList] =
      Output{1, "", "Error: Could not process rule: Operation not permitted\n"};
  denied.replies[kRule6] =
      Output{2, "", "RTNETLINK answers: Address family not supported by protocol\n"};
  EXPECT_THAT(missingPieces(dualPlan(), denied),
              ElementsAre("cannot list nftables table inet weir: Error: Could not process "
                          "rule: Operation not permitted",
                          "cannot list IPv6 rules: RTNETLINK answers: Address family not "
                          "supported by protocol"));
}

}  // namespace
}  // namespace weir::netsetup
