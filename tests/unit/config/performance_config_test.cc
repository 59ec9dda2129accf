// Keys that trade a protocol assumption for fewer wake-ups or round trips: [listeners.NAME]
// defer_accept, [pools.NAME] tcp_fastopen.
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

// [pools.web] with `rest` appended after its backends line (line 3 is the first appended line).
Config parsePool(std::string_view rest) {
  return parse("[pools.web]\n"                                 // 1
               "backends = [{ address = \"10.0.0.1:80\" }]\n"  // 2
               + std::string(rest) +
                   "[listeners.edge]\n"
                   "bind = \"127.0.0.1:8080\"\n"
                   "pool = \"web\"\n",
               "weir.toml");
}

std::vector<std::string> poolErrorsOf(std::string_view rest) {
  try {
    parsePool(rest);
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

TEST(PerformanceConfig, TcpFastOpenIsOffUnlessAsked) {
  EXPECT_FALSE(parsePool("").pools[0].tcp_fastopen);
  EXPECT_TRUE(parsePool("tcp_fastopen = true\n").pools[0].tcp_fastopen);
  EXPECT_FALSE(parsePool("tcp_fastopen = false\n").pools[0].tcp_fastopen);
  // With PROXY headers: the header goes first in the SYN.
  const Config both = parsePool("tcp_fastopen = true\nproxy_protocol = \"v2\"\n");
  EXPECT_TRUE(both.pools[0].tcp_fastopen);
  EXPECT_EQ(both.pools[0].proxy_protocol, ProxyProtocol::V2);
}

TEST(PerformanceConfig, TcpFastOpenErrorsNameTheKeyAndPlace) {
  EXPECT_THAT(poolErrorsOf("tcp_fastopen = 1\n"),
              ElementsAre("weir.toml:3:16: pools.web.tcp_fastopen: expected true or false, got 1"));
  EXPECT_THAT(poolErrorsOf("tcp_fast_open = true\n"),
              ElementsAre("weir.toml:3:17: pools.web.tcp_fast_open: unknown key; did you mean "
                          "\"tcp_fastopen\"?"));
}

TEST(PerformanceConfig, TcpFastOpenCannotCarryATlsPoolsHello) {
  EXPECT_THAT(poolErrorsOf("tcp_fastopen = true\n"
                           "[pools.web.tls]\n"),
              ElementsAre("weir.toml:3:16: pools.web.tcp_fastopen: cannot be used with "
                          "[pools.web.tls]: the ClientHello only exists after the connect, so "
                          "nothing could ride in the SYN"));
  // Off, it may be written down next to [tls].
  EXPECT_FALSE(parsePool("tcp_fastopen = false\n[pools.web.tls]\n").pools[0].tcp_fastopen);
}

}  // namespace
}  // namespace weir::config
