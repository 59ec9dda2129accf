// [listeners.NAME] rate_per_client and the per-client prefix lengths, and the rate parser.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "edge_config.h"

namespace weir::config {
namespace {

using namespace edge_config;

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Rate, ParsesPerSecondAndPerMinute) {
  EXPECT_EQ(parseRate("20/s"), (Rate{20, Duration(1000)}));
  EXPECT_EQ(parseRate("600/m"), (Rate{600, Duration(60000)}));
  EXPECT_EQ(parseRate("1/s"), (Rate{1, Duration(1000)}));
  EXPECT_EQ(parseRate("1000000/s"), (Rate{1000000, Duration(1000)}));
  for (const char* bad : {"", "/s", "0/s", "020/s", "20", "20/", "20/h", "20/S", " 20/s", "20/s ",
                          "-1/s", "+1/s", "1000001/s", "99999999/s", "20 /s", "2e1/s"}) {
    EXPECT_FALSE(parseRate(bad).has_value()) << bad;
  }
  EXPECT_EQ(formatRate(Rate{20, Duration(1000)}), "20/s");
  EXPECT_EQ(formatRate(Rate{600, Duration(60000)}), "600/m");
}

TEST(ClientLimitsConfig, DefaultsAndValues) {
  Config none = parseRest("");
  EXPECT_FALSE(none.listeners[0].rate_per_client.has_value());
  Config c = parseRest("rate_per_client = \"50/s\"\nper_client_ipv4_prefix = 24\n"
                       "per_client_ipv6_prefix = 48\n");
  ASSERT_TRUE(c.listeners[0].rate_per_client.has_value());
  EXPECT_EQ(c.listeners[0].rate_per_client->count, 50u);
  EXPECT_EQ(c.listeners[0].per_client_ipv4_prefix, 24u);
  EXPECT_EQ(c.listeners[0].per_client_ipv6_prefix, 48u);
  Config m = parseRest("max_connections_per_client = 10\nper_client_ipv4_prefix = 24\n");
  EXPECT_EQ(m.listeners[0].max_connections_per_client, 10u);
  EXPECT_FALSE(m.listeners[0].rate_per_client.has_value());
  EXPECT_EQ(m.listeners[0].per_client_ipv4_prefix, 24u);
  Config d = parseRest("rate_per_client = \"600/m\"\n");
  EXPECT_EQ(d.listeners[0].per_client_ipv4_prefix, 32u);
  EXPECT_EQ(d.listeners[0].per_client_ipv6_prefix, 64u);
}

TEST(ClientLimitsConfig, MistakesNameTheKey) {
  EXPECT_THAT(errorsOf("rate_per_client = \"20/h\"\n"),
              ElementsAre("weir.toml:6:19: listeners.edge.rate_per_client: \"20/h\": expected "
                          "N/s or N/m with N from 1 to 1000000, such as \"20/s\" or \"600/m\""));
  EXPECT_THAT(errorsOf("rate_per_client = 20\n"),
              ElementsAre(HasSubstr("weir.toml:6:19: listeners.edge.rate_per_client:")));
  EXPECT_THAT(errorsOf("rate_per_client = \"1/s\"\nper_client_ipv4_prefix = 33\n"),
              ElementsAre(HasSubstr("weir.toml:7:26: listeners.edge.per_client_ipv4_prefix:")));
  EXPECT_THAT(errorsOf("per_client_ipv6_prefix = 56\n"),
              ElementsAre("weir.toml:6:26: listeners.edge.per_client_ipv6_prefix: only used with "
                          "rate_per_client or max_connections_per_client (it says which "
                          "clients count as one)"));
  EXPECT_THAT(errorsOf("max_connections_per_client = 0\n"),
              ElementsAre(HasSubstr("weir.toml:6:30: listeners.edge.max_connections_per_client:")));
}

}  // namespace
}  // namespace weir::config
