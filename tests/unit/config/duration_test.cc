#include <gtest/gtest.h>

#include "config/config.h"

namespace weir::config {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, SingleUnits) {
  EXPECT_EQ(parseDuration("250ms"), Duration(250));
  EXPECT_EQ(parseDuration("3s"), Duration(3s));
  EXPECT_EQ(parseDuration("5m"), Duration(5min));
  EXPECT_EQ(parseDuration("1h"), Duration(1h));
  EXPECT_EQ(parseDuration("1d"), Duration(24h));
  EXPECT_EQ(parseDuration("0s"), Duration(0));
  EXPECT_EQ(parseDuration("007s"), Duration(7s));
}

TEST(ParseDuration, Compound) {
  EXPECT_EQ(parseDuration("1m30s"), Duration(90s));
  EXPECT_EQ(parseDuration("1h5m"), Duration(65min));
  EXPECT_EQ(parseDuration("1d2h3m4s5ms"), Duration(26h + 3min + 4s + 5ms));
  EXPECT_EQ(parseDuration("1s500ms"), Duration(1500));
  EXPECT_EQ(parseDuration("90m"), Duration(90min));  // a unit need not "carry"
}

TEST(ParseDuration, RejectsMalformed) {
  for (const char* text : {"", "5", "s", "ms", "-1s", "+1s", "1.5s", "1 s", " 1s", "1s ", "1S",
                           "1sec", "1us", "1x", "1m30", "s30", "1m_30s", "1,5s"}) {
    EXPECT_EQ(parseDuration(text), std::nullopt) << text;
  }
}

TEST(ParseDuration, RejectsUnitsOutOfOrderOrRepeated) {
  EXPECT_EQ(parseDuration("30s1m"), std::nullopt);
  EXPECT_EQ(parseDuration("1s1s"), std::nullopt);
  EXPECT_EQ(parseDuration("1ms1s"), std::nullopt);
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_EQ(parseDuration("99999999999999999999ms"), std::nullopt);
  EXPECT_EQ(parseDuration("9223372036854775807d"), std::nullopt);
  EXPECT_EQ(parseDuration("9223372036854775807ms"), Duration(9223372036854775807));
  EXPECT_EQ(parseDuration("9223372036854775807ms1ms"), std::nullopt);
}

TEST(FormatDuration, UsesTheLargestExactUnits) {
  EXPECT_EQ(formatDuration(Duration(250)), "250ms");
  EXPECT_EQ(formatDuration(Duration(1000)), "1s");
  EXPECT_EQ(formatDuration(Duration(1500)), "1s500ms");
  EXPECT_EQ(formatDuration(Duration(90000)), "1m30s");
  EXPECT_EQ(formatDuration(Duration(86400000 + 3600000)), "1d1h");
  EXPECT_EQ(formatDuration(Duration(0)), "0ms");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (int64_t ms : {1, 999, 1000, 1001, 61000, 3600000, 90061001}) {
    EXPECT_EQ(parseDuration(formatDuration(Duration(ms))), Duration(ms)) << ms;
  }
}

}  // namespace
}  // namespace weir::config
