// apply(): steps run in order, printed first; probes decide conditional steps; removals of
// what is not there succeed; the first failure stops the run and says which command and why.
#include "netsetup/steps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "netsetup/fake_runner.h"

namespace weir::netsetup {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kRuleLine = "32765:\tfrom all fwmark 0x7765 lookup 7765\n";

Plan ipv4Plan() {
  Plan plan;
  plan.mark = 0x7765;
  plan.table = 7765;
  plan.ipv4 = true;
  plan.intercepts.push_back(Intercept{AF_INET, "192.0.2.10", 80});
  return plan;
}

struct Printed {
  std::vector<std::string> lines;
  std::function<void(const std::string&)> fn() {
    return [this](const std::string& s) { lines.push_back(s); };
  }
};

TEST(Apply, UpOnACleanHostRunsEveryStep) {
  FakeRunner runner;
  Printed printed;
  EXPECT_EQ(apply(upSteps(ipv4Plan()), runner, printed.fn(), false), std::nullopt);
  EXPECT_THAT(runner.ran, ElementsAre("ip route replace local default dev lo table 7765",
                                      "ip rule show fwmark 0x7765 lookup 7765",
                                      "ip rule add fwmark 0x7765 lookup 7765", "nft -f -"));
  EXPECT_EQ(runner.inputs[3], nftScript(ipv4Plan()));
  ASSERT_EQ(printed.lines.size(), 4u);
  EXPECT_EQ(printed.lines[1], "ip rule show fwmark 0x7765 lookup 7765");
  EXPECT_EQ(printed.lines[3], "nft -f - <<'EOF'\n" + nftScript(ipv4Plan()) + "EOF");
}

TEST(Apply, UpDoesNotAddARuleThatIsThere) {
  FakeRunner runner;
  runner.replies["ip rule show fwmark 0x7765 lookup 7765"] = Output{0, kRuleLine, ""};
  Printed printed;
  EXPECT_EQ(apply(upSteps(ipv4Plan()), runner, printed.fn(), false), std::nullopt);
  EXPECT_THAT(runner.ran, ElementsAre("ip route replace local default dev lo table 7765",
                                      "ip rule show fwmark 0x7765 lookup 7765", "nft -f -"));
}

TEST(Apply, DownDeletesEveryCopyOfTheRuleAndToleratesMissingTables) {
  FakeRunner runner;
  int copies = 2;  // two identical rules, as two `ip rule add` would leave
  runner.answer = [&](const std::string& line) -> util::Result<Output> {
    if (line == "ip rule show fwmark 0x7765 lookup 7765") {
      return Output{0, copies > 0 ? kRuleLine : "", ""};
    }
    if (line == "ip rule del fwmark 0x7765 lookup 7765") {
      --copies;
      return Output{};
    }
    if (line == "ip -6 route flush table 7765") {
      return Output{2, "", "Error: ipv6: FIB table does not exist.\nFlush terminated\n"};
    }
    return Output{};
  };
  Printed printed;
  EXPECT_EQ(apply(downSteps(ipv4Plan()), runner, printed.fn(), false), std::nullopt);
  EXPECT_THAT(runner.ran,
              ElementsAre("nft -f -", "ip rule show fwmark 0x7765 lookup 7765",
                          "ip rule del fwmark 0x7765 lookup 7765",
                          "ip rule show fwmark 0x7765 lookup 7765",
                          "ip rule del fwmark 0x7765 lookup 7765",
                          "ip rule show fwmark 0x7765 lookup 7765",
                          "ip route flush table 7765", "ip -6 rule show fwmark 0x7765 lookup 7765",
                          "ip -6 route flush table 7765"));
  EXPECT_EQ(runner.inputs[0], "table inet weir\ndelete table inet weir\n");
}

TEST(Apply, FirstFailureStopsWithTheCommandAndItsStderr) {
  FakeRunner runner;
  runner.replies["ip rule add fwmark 0x7765 lookup 7765"] =
      Output{2, "", "RTNETLINK answers: Operation not permitted\n"};
  Printed printed;
  const auto failure = apply(upSteps(ipv4Plan()), runner, printed.fn(), false);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(*failure, "ip rule add fwmark 0x7765 lookup 7765: exit 2:\n"
                      "RTNETLINK answers: Operation not permitted");
  EXPECT_EQ(runner.ran.back(), "ip rule add fwmark 0x7765 lookup 7765");  // nft never ran
}

TEST(Apply, AFailingRemovalThatIsNotAbsenceFails) {
  FakeRunner runner;
  runner.replies["ip route flush table 7765"] =
      Output{2, "", "RTNETLINK answers: Operation not permitted\n"};
  Printed printed;
  const auto failure = apply(downSteps(ipv4Plan()), runner, printed.fn(), false);
  ASSERT_TRUE(failure.has_value());
  EXPECT_THAT(*failure, HasSubstr("ip route flush table 7765: exit 2:"));
}

TEST(Apply, MissingProgramSaysWhatToInstall) {
  FakeRunner runner;
  runner.answer = [](const std::string& line) -> util::Result<Output> {
    if (line.rfind("nft", 0) == 0) {
      return util::SysError{ENOENT, "nft"};
    }
    return Output{};
  };
  Printed printed;
  EXPECT_EQ(apply(upSteps(ipv4Plan()), runner, printed.fn(), false),
            "nft not found: install nftables");
  runner.answer = [](const std::string&) -> util::Result<Output> {
    return util::SysError{ENOENT, "ip"};
  };
  EXPECT_EQ(apply(upSteps(ipv4Plan()), runner, printed.fn(), false),
            "ip not found: install iproute2");
}

TEST(Apply, RuleThatNeverGoesAwayIsBounded) {
  FakeRunner runner;
  runner.replies["ip rule show fwmark 0x7765 lookup 7765"] = Output{0, kRuleLine, ""};
  Printed printed;
  const auto failure = apply(downSteps(ipv4Plan()), runner, printed.fn(), false);
  ASSERT_TRUE(failure.has_value());
  EXPECT_THAT(*failure, HasSubstr("still lists one"));
}

TEST(Apply, DryRunRunsNothingAndSaysWhenConditionalStepsRun) {
  FakeRunner runner;
  Printed printed;
  EXPECT_EQ(apply(upSteps(ipv4Plan()), runner, printed.fn(), true), std::nullopt);
  EXPECT_TRUE(runner.ran.empty());
  EXPECT_THAT(printed.lines,
              ElementsAre("ip route replace local default dev lo table 7765",
                          "ip rule add fwmark 0x7765 lookup 7765  # unless `ip rule show fwmark "
                          "0x7765 lookup 7765` lists one",
                          "nft -f - <<'EOF'\n" + nftScript(ipv4Plan()) + "EOF"));
}

}  // namespace
}  // namespace weir::netsetup
