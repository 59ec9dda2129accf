// The keys issue 4 adds: balance algorithms, backup / max_connections, [pools.NAME.health] and
// passive health.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace weir::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

// Listener and pool header of every config below; tests append the rest of [pools.web].
// Line 5 is the first appended line.
constexpr std::string_view kHead =
    "[listeners.web]\n"
    "bind = \"127.0.0.1:8080\"\n"
    "pool = \"web\"\n"
    "[pools.web]\n";

Config parsePool(std::string_view rest) {
  return parse(std::string(kHead) + std::string(rest), "weir.toml");
}

std::vector<std::string> errorsOf(std::string_view rest) {
  try {
    parsePool(rest);
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

constexpr std::string_view kBackends = "backends = [{ address = \"10.0.0.1:80\" }]\n";

TEST(HealthConfig, DemoConfigChecksItsBackendsOverHttp) {
  Config c = load(WEIR_SOURCE_DIR "/config/weir.toml");
  ASSERT_TRUE(c.pools[0].health.has_value());
  const HealthCheck& h = *c.pools[0].health;
  EXPECT_EQ(h.kind, HealthKind::Http);
  EXPECT_EQ(h.interval, 2s);
  EXPECT_EQ(h.timeout, 1s);
  EXPECT_EQ(h.rise, 2u);
  EXPECT_EQ(h.fall, 3u);
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(c.pools[0].passive_fall, 3u);
  EXPECT_FALSE(c.pools[0].backends[0].backup);
  EXPECT_EQ(c.pools[0].backends[0].max_connections, 0u);
}

TEST(HealthConfig, BalanceAlgorithms) {
  const std::pair<std::string, Balance> cases[] = {
      {"round-robin", Balance::RoundRobin},
      {"least-conn", Balance::LeastConn},
      {"maglev", Balance::Maglev},
      {"random-two", Balance::RandomTwo},
  };
  for (const auto& [name, balance] : cases) {
    Config c = parsePool("balance = \"" + name + "\"\n" + std::string(kBackends));
    EXPECT_EQ(c.pools[0].balance, balance) << name;
  }
}

TEST(HealthConfig, BalanceTypoSuggestsTheAlgorithm) {
  EXPECT_THAT(errorsOf("balance = \"magelv\"\n" + std::string(kBackends)),
              ElementsAre("weir.toml:5:11: pools.web.balance: expected \"round-robin\", "
                          "\"least-conn\", \"maglev\" or \"random-two\", got \"magelv\"; did you "
                          "mean \"maglev\"?"));
}

TEST(HealthConfig, BackendDefaultsAndValues) {
  Config c = parsePool(R"(backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2:80", backup = true, max_connections = 1000000 },
  { address = "10.0.0.3:80", backup = false, max_connections = 0 },
]
)");
  const auto& b = c.pools[0].backends;
  ASSERT_EQ(b.size(), 3u);
  EXPECT_FALSE(b[0].backup);
  EXPECT_EQ(b[0].max_connections, 0u);
  EXPECT_TRUE(b[1].backup);
  EXPECT_EQ(b[1].max_connections, 1000000u);
  EXPECT_FALSE(b[2].backup);
}

TEST(HealthConfig, BackendErrors) {
  EXPECT_THAT(errorsOf(R"(backends = [
  { address = "10.0.0.1:80", backup = "yes" },
  { address = "10.0.0.2:80", max_connections = -1 },
  { address = "10.0.0.3:80", max_connections = 1000001 },
  { address = "10.0.0.4:80", bakup = true },
]
)"),
              ElementsAre("weir.toml:6:39: pools.web.backends[0].backup: expected true or "
                          "false, got \"yes\"",
                          "weir.toml:7:48: pools.web.backends[1].max_connections: must be "
                          "0..1000000, got -1",
                          "weir.toml:8:48: pools.web.backends[2].max_connections: must be "
                          "0..1000000, got 1000001",
                          "weir.toml:9:38: pools.web.backends[3].bakup: unknown key; did you "
                          "mean \"backup\"?"));
}

TEST(HealthConfig, PassiveOnlyPoolDefaults) {
  Config c = parsePool(kBackends);
  const Pool& pool = c.pools[0];
  EXPECT_FALSE(pool.health.has_value());
  EXPECT_EQ(pool.passive_fall, 3u);
  EXPECT_EQ(pool.passive_holddown, 10s);
}

TEST(HealthConfig, PassiveKeys) {
  Config c = parsePool("passive_fall = 0\npassive_holddown = \"1m\"\n" + std::string(kBackends));
  EXPECT_EQ(c.pools[0].passive_fall, 0u);
  EXPECT_EQ(c.pools[0].passive_holddown, 1min);
}

TEST(HealthConfig, SlowStart) {
  EXPECT_EQ(parsePool(kBackends).pools[0].slow_start, 0s);
  EXPECT_EQ(parsePool("slow_start = \"30s\"\n" + std::string(kBackends)).pools[0].slow_start,
            30s);
  EXPECT_EQ(parsePool("slow_start = \"0s\"\n" + std::string(kBackends)).pools[0].slow_start,
            0s);
}

TEST(HealthConfig, SlowStartErrors) {
  EXPECT_THAT(errorsOf("slow_start = \"soon\"\n" + std::string(kBackends)),
              ElementsAre("weir.toml:5:14: pools.web.slow_start: expected a duration such as "
                          "\"3s\", got \"soon\""));
  EXPECT_THAT(errorsOf("slow_start = 30\n" + std::string(kBackends)),
              ElementsAre("weir.toml:5:14: pools.web.slow_start: expected a duration such as "
                          "\"3s\", got 30"));
  EXPECT_THAT(errorsOf("slow_start = \"2d\"\n" + std::string(kBackends)),
              ElementsAre("weir.toml:5:14: pools.web.slow_start: must be at most \"1d\", got "
                          "\"2d\""));
}

TEST(HealthConfig, HealthDefaults) {
  Config c = parsePool(std::string(kBackends) + "[pools.web.health]\n");
  ASSERT_TRUE(c.pools[0].health.has_value());
  const HealthCheck& h = *c.pools[0].health;
  EXPECT_EQ(h.kind, HealthKind::Tcp);
  EXPECT_EQ(h.interval, 2s);
  EXPECT_EQ(h.timeout, 1s);
  EXPECT_EQ(h.rise, 2u);
  EXPECT_EQ(h.fall, 3u);
  EXPECT_EQ(h.port, 0);
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.status_min, 200);
  EXPECT_EQ(h.status_max, 200);
  // Passive marking follows the check's fall unless set.
  EXPECT_EQ(c.pools[0].passive_fall, 3u);
}

TEST(HealthConfig, ShortIntervalHalvesTheDefaultTimeout) {
  Config c = parsePool(std::string(kBackends) + "[pools.web.health]\ninterval = \"500ms\"\n");
  EXPECT_EQ(c.pools[0].health->timeout, 250ms);
}

TEST(HealthConfig, TcpWithEverything) {
  Config c = parsePool(std::string(kBackends) + R"([pools.web.health]
kind = "tcp"
interval = "5s"
timeout = "300ms"
rise = 1
fall = 100
port = 8081
)");
  const HealthCheck& h = *c.pools[0].health;
  EXPECT_EQ(h.interval, 5s);
  EXPECT_EQ(h.timeout, 300ms);
  EXPECT_EQ(h.rise, 1u);
  EXPECT_EQ(h.fall, 100u);
  EXPECT_EQ(h.port, 8081);
  EXPECT_EQ(c.pools[0].passive_fall, 100u);
}

TEST(HealthConfig, PassiveFallOverridesTheCheckFall) {
  Config c = parsePool("passive_fall = 5\n" + std::string(kBackends) +
                       "[pools.web.health]\nfall = 2\n");
  EXPECT_EQ(c.pools[0].passive_fall, 5u);
}

TEST(HealthConfig, SendExpectDecodesEscapes) {
  // A literal string keeps the backslashes for weir; a basic string decodes \r\n itself.
  Config c = parsePool(std::string(kBackends) + R"([pools.web.health]
kind = "send-expect"
send = 'PING\r\n\x00\\'
expect = "+PONG\r\n"
)");
  const HealthCheck& h = *c.pools[0].health;
  EXPECT_EQ(h.kind, HealthKind::SendExpect);
  EXPECT_EQ(h.send, std::string("PING\r\n\0\\", 8));
  EXPECT_EQ(h.expect, "+PONG\r\n");
}

TEST(HealthConfig, SendIsOptional) {
  Config c = parsePool(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"send-expect\"\nexpect = '220 '\n");
  EXPECT_EQ(c.pools[0].health->send, "");
  EXPECT_EQ(c.pools[0].health->expect, "220 ");
}

TEST(HealthConfig, Http) {
  // An inline table works as well as a [pools.web.health] section.
  Config c = parsePool(std::string(kBackends) +
                       "health = { kind = \"http\", path = \"/healthz?full=1\", "
                       "host = \"example.com\", expect_status = 204 }\n");
  const HealthCheck& h = *c.pools[0].health;
  EXPECT_EQ(h.kind, HealthKind::Http);
  EXPECT_EQ(h.path, "/healthz?full=1");
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.status_min, 204);
  EXPECT_EQ(h.status_max, 204);
}

TEST(HealthConfig, HttpStatusClass) {
  Config c = parsePool(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"http\"\nexpect_status = \"3xx\"\n");
  EXPECT_EQ(c.pools[0].health->status_min, 300);
  EXPECT_EQ(c.pools[0].health->status_max, 399);
}

TEST(HealthConfig, TlsKind) {
  Config c = parsePool(std::string(kBackends) + "[pools.web.health]\nkind = \"tls\"\n");
  ASSERT_TRUE(c.pools[0].health.has_value());
  EXPECT_EQ(c.pools[0].health->kind, HealthKind::Tls);
  EXPECT_THAT(errorsOf(std::string(kBackends) + "[pools.web.health]\nkind = \"tsl\"\n"),
              ElementsAre("weir.toml:7:8: pools.web.health.kind: expected \"tcp\", "
                          "\"send-expect\", \"http\" or \"tls\", got \"tsl\"; did you mean "
                          "\"tls\"?"));
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"tls\"\npath = \"/\"\n"),
              ElementsAre("weir.toml:8:8: pools.web.health.path: only used with kind = \"http\""));
}

TEST(HealthConfig, ValueErrors) {
  EXPECT_THAT(errorsOf(std::string(kBackends) + R"([pools.web.health]
kind = "htp"
interval = "5ms"
rise = 0
fall = 101
port = 0
)"),
              ElementsAre("weir.toml:7:8: pools.web.health.kind: expected \"tcp\", "
                          "\"send-expect\", \"http\" or \"tls\", got \"htp\"; did you mean "
                          "\"http\"?",
                          "weir.toml:8:12: pools.web.health.interval: must be at least "
                          "\"10ms\", got \"5ms\"",
                          "weir.toml:9:8: pools.web.health.rise: must be 1..100, got 0",
                          "weir.toml:10:8: pools.web.health.fall: must be 1..100, got 101",
                          "weir.toml:11:8: pools.web.health.port: must be 1..65535, got 0"));
}

TEST(HealthConfig, TimeoutMustBeShorterThanInterval) {
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\ninterval = \"1s\"\ntimeout = \"1s\"\n"),
              ElementsAre("weir.toml:8:11: pools.web.health.timeout: must be shorter than "
                          "interval (\"1s\"), got \"1s\""));
  EXPECT_THAT(errorsOf(std::string(kBackends) + "[pools.web.health]\ntimeout = \"3s\"\n"),
              ElementsAre("weir.toml:7:11: pools.web.health.timeout: must be shorter than "
                          "interval (\"2s\", the default), got \"3s\""));
}

TEST(HealthConfig, KeysOfAnotherKind) {
  EXPECT_THAT(errorsOf(std::string(kBackends) + R"([pools.web.health]
kind = "tcp"
send = "x"
path = "/"
expect_status = 200
)"),
              ElementsAre("weir.toml:8:8: pools.web.health.send: only used with kind = "
                          "\"send-expect\"",
                          "weir.toml:9:8: pools.web.health.path: only used with kind = \"http\"",
                          "weir.toml:10:17: pools.web.health.expect_status: only used with kind "
                          "= \"http\""));
}

TEST(HealthConfig, SendExpectErrors) {
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"send-expect\"\nsend = 'PING\\q'\n"),
              ElementsAre("weir.toml:6:1: pools.web.health: missing required key \"expect\" "
                          "(kind = \"send-expect\" needs it)",
                          "weir.toml:8:8: pools.web.health.send: unknown escape \\q at byte 4 "
                          "(known: \\r \\n \\t \\0 \\\\ \\xHH)"));
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"send-expect\"\nexpect = ''\nsend = '\\x4'\n"),
              ElementsAre("weir.toml:8:10: pools.web.health.expect: must not be empty (it "
                          "would match any reply)",
                          "weir.toml:9:8: pools.web.health.send: \\x at byte 0 needs two hex "
                          "digits, as in \\x0d"));
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"send-expect\"\nexpect = 'a\\'\n"),
              ElementsAre("weir.toml:8:10: pools.web.health.expect: a lone \\ at the end "
                          "(write \\\\ for a backslash)"));
  std::string long_send(1025, 'a');
  EXPECT_THAT(errorsOf(std::string(kBackends) + "[pools.web.health]\nkind = \"send-expect\"\n" +
                       "expect = 'x'\nsend = '" + long_send + "'\n"),
              ElementsAre("weir.toml:9:8: pools.web.health.send: at most 1024 bytes, got 1025"));
}

// Found by fuzzing (config_values_fuzz): the byte after the backslash went into the message
// as it was, so an escape of a control character (here a newline, written "\\\n" in TOML)
// split the error over two lines.
TEST(HealthConfig, UnknownEscapeOfAControlCharacterStaysOnOneLine) {
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"send-expect\"\nexpect = \"a\\\\\\n\"\n"),
              ElementsAre("weir.toml:8:10: pools.web.health.expect: unknown escape \\ followed "
                          "by byte 0x0a at byte 1 (known: \\r \\n \\t \\0 \\\\ \\xHH)"));
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"send-expect\"\nexpect = 'a\\\xc3\xa9'\n"),
              ElementsAre("weir.toml:8:10: pools.web.health.expect: unknown escape \\ followed "
                          "by byte 0xc3 at byte 1 (known: \\r \\n \\t \\0 \\\\ \\xHH)"));
}

TEST(HealthConfig, HttpErrors) {
  EXPECT_THAT(errorsOf(std::string(kBackends) + R"([pools.web.health]
kind = "http"
path = "health"
host = "a b"
expect_status = 600
)"),
              ElementsAre("weir.toml:8:8: pools.web.health.path: must start with '/' and hold "
                          "no spaces or control characters, got \"health\"",
                          "weir.toml:9:8: pools.web.health.host: must be non-empty, without "
                          "spaces or control characters, got \"a b\"",
                          "weir.toml:10:17: pools.web.health.expect_status: expected a status "
                          "100..599 or a class \"1xx\"..\"5xx\", got 600"));
  EXPECT_THAT(errorsOf(std::string(kBackends) +
                       "[pools.web.health]\nkind = \"http\"\nexpect_status = \"2XX\"\n"),
              ElementsAre("weir.toml:8:17: pools.web.health.expect_status: expected a status "
                          "100..599 or a class \"1xx\"..\"5xx\", got \"2XX\""));
}

TEST(HealthConfig, HealthTableErrors) {
  EXPECT_THAT(errorsOf("health = \"tcp\"\n" + std::string(kBackends)),
              ElementsAre("weir.toml:5:10: pools.web.health: expected a table such as "
                          "[pools.web.health], got \"tcp\""));
  EXPECT_THAT(errorsOf(std::string(kBackends) + "[pools.web.health]\nintervall = \"1s\"\n"),
              ElementsAre("weir.toml:7:13: pools.web.health.intervall: unknown key; did you "
                          "mean \"interval\"?"));
}

TEST(HealthConfig, PassiveErrors) {
  EXPECT_THAT(
      errorsOf("passive_fall = 101\npassive_holddown = \"0s\"\n" + std::string(kBackends)),
      ElementsAre("weir.toml:5:16: pools.web.passive_fall: must be 0..100, got 101",
                  "weir.toml:6:20: pools.web.passive_holddown: must be greater than 0, got "
                  "\"0s\""));
  EXPECT_THAT(errorsOf("passive_holddown = \"5s\"\n" + std::string(kBackends) +
                       "[pools.web.health]\n"),
              ElementsAre("weir.toml:5:20: pools.web.passive_holddown: only used by pools "
                          "without [pools.web.health] (there, passing health checks bring a "
                          "backend back)"));
}

TEST(HealthConfig, PoolNameLength) {
  std::string name(64, 'p');
  std::string text = "[listeners.web]\nbind = \"127.0.0.1:8080\"\npool = \"" + name +
                     "\"\n[pools." + name + "]\n" + std::string(kBackends);
  try {
    parse(text, "weir.toml");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.messages(), ElementsAre("weir.toml:4:1: pools." + name +
                                          ": a pool name may have at most 63 characters, got "
                                          "64"));
  }
  name.pop_back();
  text = "[listeners.web]\nbind = \"127.0.0.1:8080\"\npool = \"" + name + "\"\n[pools." + name +
         "]\n" + std::string(kBackends);
  EXPECT_EQ(parse(text, "weir.toml").pools[0].name, name);
}

}  // namespace
}  // namespace weir::config
