// Keys that trade a protocol assumption for fewer wake-ups: [listeners.NAME] defer_accept.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace weir::config {
namespace {

using ::testing::ElementsAre;

// A pool and a listener; tests append the rest of [listeners.edge]. Line 6 is the first
// appended line.
constexpr std::string_view kHead =
    "[pools.web]\n"                                 // 1
    "backends = [{ address = \"10.0.0.1:80\" }]\n"  // 2
    "[listeners.edge]\n"                            // 3
    "bind = \"127.0.0.1:8080\"\n"                   // 4
    "pool = \"web\"\n";                             // 5

Config parseRest(std::string_view rest) {
  return parse(std::string(kHead) + std::string(rest), "weir.toml");
}

std::vector<std::string> errorsOf(std::string_view rest) {
  try {
    parseRest(rest);
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

TEST(PerformanceConfig, DeferAcceptIsOffUnlessAsked) {
  EXPECT_FALSE(parseRest("").listeners[0].defer_accept);
  EXPECT_TRUE(parseRest("defer_accept = true\n").listeners[0].defer_accept);
  EXPECT_FALSE(parseRest("defer_accept = false\n").listeners[0].defer_accept);
}

TEST(PerformanceConfig, DeferAcceptErrorsNameTheKeyAndPlace) {
  EXPECT_THAT(errorsOf("defer_accept = \"yes\"\n"),
              ElementsAre("weir.toml:6:16: listeners.edge.defer_accept: expected true or false, "
                          "got \"yes\""));
  EXPECT_THAT(errorsOf("defer_acept = true\n"),
              ElementsAre("weir.toml:6:15: listeners.edge.defer_acept: unknown key; did you mean "
                          "\"defer_accept\"?"));
}

}  // namespace
}  // namespace weir::config
