#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/config.h"

namespace weir::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

// Lets a test write its TOML as a raw string that starts on the line after R"(.
std::string toml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') {
    text.remove_prefix(1);
  }
  return std::string(text);
}

// The messages of the ConfigError that parsing `text` as "weir.toml" throws.
std::vector<std::string> errorsOf(std::string_view text) {
  try {
    parse(toml(text), "weir.toml");
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return {};
}

// The smallest valid config; tests append to or change it.
constexpr std::string_view kMinimal = R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[pools.web]
backends = [{ address = "10.0.0.1:80" }]
)";

unsigned expectedAutoWorkers() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<unsigned>(std::clamp<long>(n, 1, kMaxWorkers));
}

TEST(Config, DemoConfigParses) {
  Config c = load(WEIR_SOURCE_DIR "/config/weir.toml");
  EXPECT_TRUE(c.global.workers_auto);
  EXPECT_EQ(c.global.workers, expectedAutoWorkers());
  EXPECT_EQ(c.global.steering, Steering::LeastLoaded);
  EXPECT_EQ(c.global.log_level, "info");
  EXPECT_EQ(c.global.error_log, "stderr");
  EXPECT_EQ(c.global.access_log, "stderr");
  EXPECT_EQ(c.global.pid_file, "");
  EXPECT_EQ(c.global.max_connections, 10000u);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].name, "demo");
  ASSERT_EQ(c.listeners[0].binds.size(), 1u);
  EXPECT_EQ(c.listeners[0].binds[0].toString(), "127.0.0.1:8080");
  EXPECT_EQ(c.listeners[0].pool, "demo");
  EXPECT_EQ(c.listeners[0].pool_index, 0u);
  EXPECT_EQ(c.listeners[0].backlog, 511);
  ASSERT_EQ(c.pools.size(), 1u);
  const Pool& pool = c.pools[0];
  EXPECT_EQ(pool.name, "demo");
  EXPECT_EQ(pool.balance, Balance::RoundRobin);
  EXPECT_EQ(pool.connect_timeout, 2s);
  EXPECT_EQ(pool.idle_timeout, 1min);
  EXPECT_EQ(pool.retries, 1u);
  ASSERT_EQ(pool.backends.size(), 2u);
  EXPECT_EQ(pool.backends[0].address.toString(), "127.0.0.1:9001");
  EXPECT_EQ(pool.backends[0].weight, 1u);
  EXPECT_EQ(pool.backends[1].address.toString(), "127.0.0.1:9002");
  EXPECT_EQ(pool.backends[1].weight, 1u);
}

TEST(Config, DefaultsWhenKeysAreAbsent) {
  Config c = parse(toml(kMinimal), "x.toml");
  EXPECT_EQ(c.path, "x.toml");
  EXPECT_TRUE(c.global.workers_auto);
  EXPECT_EQ(c.global.workers, expectedAutoWorkers());
  EXPECT_EQ(c.global.log_level, "info");
  EXPECT_EQ(c.global.error_log, "stderr");
  EXPECT_EQ(c.global.access_log, "off");
  EXPECT_EQ(c.global.pid_file, "");
  EXPECT_EQ(c.global.max_connections, 10000u);
  EXPECT_EQ(c.global.steering, Steering::LeastLoaded);
  EXPECT_EQ(c.listeners[0].backlog, 511);
  const Pool& pool = c.pools[0];
  EXPECT_EQ(pool.balance, Balance::RoundRobin);
  EXPECT_EQ(pool.connect_timeout, 5s);
  EXPECT_EQ(pool.idle_timeout, 10min);
  EXPECT_EQ(pool.retries, 2u);
  EXPECT_EQ(pool.backends[0].weight, 1u);
}

TEST(Config, ExplicitValues) {
  Config c = parse(toml(R"(
[global]
workers = 4
log_level = "debug"
error_log = "/var/log/weir/error.log"
access_log = "/var/log/weir/access.log"
pid_file = "/run/weir.pid"
max_connections = 1000000
steering = "hash"

[listeners.web]
bind = ["127.0.0.1:8080", "[::1]:8080"]
pool = "web"
backlog = 65535

[pools.web]
balance = "round-robin"
connect_timeout = "250ms"
idle_timeout = "1h30m"
retries = 0
backends = [{ address = "10.0.0.1:80", weight = 1000 }, { address = "[2001:db8::1]:443" }]
)"),
                   "weir.toml");
  EXPECT_FALSE(c.global.workers_auto);
  EXPECT_EQ(c.global.workers, 4u);
  EXPECT_EQ(c.global.log_level, "debug");
  EXPECT_EQ(c.global.error_log, "/var/log/weir/error.log");
  EXPECT_EQ(c.global.access_log, "/var/log/weir/access.log");
  EXPECT_EQ(c.global.pid_file, "/run/weir.pid");
  EXPECT_EQ(c.global.max_connections, 1000000u);
  EXPECT_EQ(c.global.steering, Steering::Hash);
  ASSERT_EQ(c.listeners[0].binds.size(), 2u);
  EXPECT_EQ(c.listeners[0].binds[1].toString(), "[::1]:8080");
  EXPECT_EQ(c.listeners[0].backlog, 65535);
  const Pool& pool = c.pools[0];
  EXPECT_EQ(pool.connect_timeout, 250ms);
  EXPECT_EQ(pool.idle_timeout, 90min);
  EXPECT_EQ(pool.retries, 0u);
  ASSERT_EQ(pool.backends.size(), 2u);
  EXPECT_EQ(pool.backends[0].weight, 1000u);
  EXPECT_EQ(pool.backends[1].address.toString(), "[2001:db8::1]:443");
  EXPECT_EQ(pool.backends[1].weight, 1u);
}

TEST(Config, SteeringValues) {
  for (auto [text, mode] : {std::pair{"least-loaded", Steering::LeastLoaded},
                            std::pair{"round-robin", Steering::RoundRobin},
                            std::pair{"hash", Steering::Hash}}) {
    Config c = parse("global.steering = \"" + std::string(text) + "\"\n" + toml(kMinimal), "w");
    EXPECT_EQ(c.global.steering, mode) << text;
  }
}

TEST(Config, EventEngineValues) {
  EXPECT_EQ(parse(toml(kMinimal), "w").global.event_engine, EventEngine::Epoll);
  for (auto [text, engine] : {std::pair{"epoll", EventEngine::Epoll},
                              std::pair{"io_uring", EventEngine::IoUring}}) {
    Config c = parse("global.event_engine = \"" + std::string(text) + "\"\n" + toml(kMinimal),
                     "w");
    EXPECT_EQ(c.global.event_engine, engine) << text;
  }
  EXPECT_THAT(errorsOf("global.event_engine = \"io-uring\"\n" + std::string(kMinimal)),
              ElementsAre("weir.toml:1:23: global.event_engine: expected \"epoll\" or "
                          "\"io_uring\", got \"io-uring\"; did you mean \"io_uring\"?"));
}

TEST(Config, AnnounceDefaultsAndValues) {
  Config d = parse(toml(kMinimal), "w");
  EXPECT_FALSE(d.listeners[0].announce);
  EXPECT_EQ(d.global.announce_table, 4747u);
  EXPECT_EQ(d.global.announce_protocol, 87u);
  EXPECT_EQ(d.global.withdraw_delay, Duration(5000));
  Config c = parse("global.announce_table = 100\nglobal.announce_protocol = 200\n"
                   "global.withdraw_delay = \"12s\"\n[listeners.web]\nbind = \"192.0.2.1:80\"\n"
                   "pool = \"web\"\nannounce = true\n"
                   "[pools.web]\nbackends = [{ address = \"10.0.0.1:80\" }]\n",
                   "w");
  EXPECT_TRUE(c.listeners[0].announce);
  EXPECT_EQ(c.global.announce_table, 100u);
  EXPECT_EQ(c.global.announce_protocol, 200u);
  EXPECT_EQ(c.global.withdraw_delay, Duration(12000));
  EXPECT_EQ(parse("global.withdraw_delay = \"0s\"\n" + toml(kMinimal), "w").global.withdraw_delay,
            Duration(0));
}

TEST(Config, AnnounceErrors) {
  EXPECT_THAT(errorsOf("global.announce_table = 254\n" + std::string(kMinimal)),
              ElementsAre(::testing::StartsWith(
                  "weir.toml:1:25: global.announce_table: 254 is one of the kernel's own tables")));
  EXPECT_THAT(errorsOf("global.announce_protocol = 4\n" + std::string(kMinimal)),
              ElementsAre(::testing::StartsWith("weir.toml:1:28: global.announce_protocol:")));
  EXPECT_THAT(errorsOf("global.announce_table = 7765\n" + std::string(kMinimal)),
              ElementsAre("weir.toml:1:25: global.announce_table: announce_table and "
                          "transparent_table are both 7765: announced VIP routes need a table of "
                          "their own"));
  EXPECT_THAT(errorsOf(R"([listeners.web]
bind = ["192.0.2.1:8080", "0.0.0.0:8081"]
pool = "web"
announce = true

[pools.web]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre(::testing::StartsWith(
                  "weir.toml:4:12: listeners.web.announce: bind 0.0.0.0:8081 is a wildcard "
                  "address")));
  EXPECT_THAT(errorsOf("[listeners.web]\nbind = \"[::1]:8080\"\npool = \"web\"\nannounce = true\n"
                       "[pools.web]\nbackends = [{ address = \"10.0.0.1:80\" }]\n"),
              ElementsAre(::testing::HasSubstr("is a loopback address")));
}

TEST(Config, BackendsAsArrayOfTables) {
  Config c = parse(toml(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[[pools.web.backends]]
address = "10.0.0.1:80"
weight = 3

[[pools.web.backends]]
address = "10.0.0.2:80"
)"),
                   "weir.toml");
  ASSERT_EQ(c.pools[0].backends.size(), 2u);
  EXPECT_EQ(c.pools[0].backends[0].weight, 3u);
  EXPECT_EQ(c.pools[0].backends[1].address.toString(), "10.0.0.2:80");
}

TEST(Config, SortedByNameWithPoolIndex) {
  Config c = parse(toml(R"(
[listeners.zeta]
bind = "127.0.0.1:3"
pool = "a"

[listeners.alpha]
bind = "127.0.0.1:1"
pool = "c"

[listeners.mid]
bind = "127.0.0.1:2"
pool = "b"

[pools.c]
backends = [{ address = "10.0.0.3:80" }]

[pools.a]
backends = [{ address = "10.0.0.1:80" }]

[pools.b]
backends = [{ address = "10.0.0.2:80" }]

[pools.unused]
backends = [{ address = "10.0.0.4:80" }]
)"),
                   "weir.toml");
  ASSERT_EQ(c.listeners.size(), 3u);
  ASSERT_EQ(c.pools.size(), 4u);
  EXPECT_EQ(c.listeners[0].name, "alpha");
  EXPECT_EQ(c.listeners[1].name, "mid");
  EXPECT_EQ(c.listeners[2].name, "zeta");
  EXPECT_EQ(c.pools[0].name, "a");
  EXPECT_EQ(c.pools[1].name, "b");
  EXPECT_EQ(c.pools[2].name, "c");
  EXPECT_EQ(c.pools[3].name, "unused");
  for (const Listener& l : c.listeners) {
    EXPECT_EQ(c.pools[l.pool_index].name, l.pool) << l.name;
  }
}

TEST(Config, Workers) {
  auto workers = [](std::string_view value) {
    return parse("global.workers = " + std::string(value) + "\n" + toml(kMinimal), "w").global;
  };
  EXPECT_TRUE(workers("\"auto\"").workers_auto);
  EXPECT_EQ(workers("\"auto\"").workers, expectedAutoWorkers());
  EXPECT_EQ(workers("1").workers, 1u);
  EXPECT_FALSE(workers("1").workers_auto);
  EXPECT_EQ(workers("64").workers, 64u);
}

TEST(Config, WorkersOutOfRangeOrWrongType) {
  for (auto [value, got] : {std::pair{"0", "0"}, std::pair{"65", "65"}, std::pair{"-1", "-1"},
                            std::pair{"\"many\"", "\"many\""}, std::pair{"\"Auto\"", "\"Auto\""},
                            std::pair{"4.0", "4.0"}, std::pair{"true", "true"}}) {
    std::string text = "[global]\nworkers = " + std::string(value) + "\n" + toml(kMinimal);
    EXPECT_THAT(errorsOf(text),
                ElementsAre("weir.toml:2:11: global.workers: expected \"auto\" or an integer "
                            "1..64, got " + std::string(got)))
        << value;
  }
}

TEST(Config, GlobalValueErrors) {
  EXPECT_THAT(errorsOf(R"(
[global]
log_level = "wran"
error_log = ""
access_log = 1
pid_file = false
max_connections = 0
steering = "fastest"
)" + std::string(kMinimal)),
              ElementsAre("weir.toml:2:13: global.log_level: expected \"trace\", \"debug\", "
                          "\"info\", \"warn\", \"error\", \"critical\" or \"off\", got \"wran\"; "
                          "did you mean \"warn\"?",
                          "weir.toml:3:13: global.error_log: expected \"stderr\" or a file path, "
                          "got \"\"",
                          "weir.toml:4:14: global.access_log: expected \"off\", \"stderr\" or a "
                          "file path, got 1",
                          "weir.toml:5:12: global.pid_file: expected a file path, or \"\" for "
                          "none, got false",
                          "weir.toml:6:19: global.max_connections: must be 1..1000000, got 0",
                          "weir.toml:7:12: global.steering: expected \"least-loaded\", "
                          "\"round-robin\" or \"hash\", got \"fastest\""));
}

TEST(Config, UnknownKeys) {
  EXPECT_THAT(errorsOf(R"(
pool = 1
[global]
wokers = 4
colour = "red"

[listeners.web]
bnid = "127.0.0.1:8080"
pool = "web"

[listeners.web.tsl]
cert = "x"

[pools.web]
backends = [{ address = "10.0.0.1:80", wieght = 2 }]
)"),
              ElementsAre("weir.toml:1:8: pool: unknown key; did you mean \"pools\"?",
                          "weir.toml:3:10: global.wokers: unknown key; did you mean \"workers\"?",
                          "weir.toml:4:10: global.colour: unknown key",
                          "weir.toml:6:1: listeners.web: missing required key \"bind\"",
                          "weir.toml:7:8: listeners.web.bnid: unknown key; did you mean \"bind\"?",
                          "weir.toml:10:1: listeners.web.tsl: unknown key; did you mean \"tls\"?",
                          "weir.toml:14:49: pools.web.backends[0].wieght: unknown key; did you "
                          "mean \"weight\"?"));
}

TEST(Config, SyntaxErrorLocation) {
  auto errors = errorsOf(R"(
[global]
workers = = 4
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("weir.toml:2:11: syntax error: "));
}

TEST(Config, SyntaxErrorRedefinedKey) {
  auto errors = errorsOf(R"(
[pools.web]
retries = 1
retries = 2
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("weir.toml:3:"));
  EXPECT_THAT(errors[0], ::testing::HasSubstr(": syntax error: "));
}

// Found by fuzzing (config_fuzz): toml++ quotes the character it did not expect as it is, so a
// newline there split the one-line error; weir now writes control characters as escapes.
TEST(Config, SyntaxErrorStaysOnOneLine) {
  EXPECT_THAT(errorsOf("x = i\n"),
              ElementsAre("weir.toml:1:6: syntax error: Error while parsing floating-point: "
                          "expected 'inf', saw 'i\\n'"));
}

TEST(Config, DanglingPoolReference) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "wbe"

[listeners.api]
bind = "127.0.0.1:8081"
pool = "nothing-like-it"

[pools.web]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:3:8: listeners.web.pool: no pool named \"wbe\"; did you "
                          "mean \"web\"?",
                          "weir.toml:7:8: listeners.api.pool: no pool named \"nothing-like-it\""));
}

TEST(Config, MissingRequiredListenerKeys) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
backlog = 10

[pools.web]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:1:1: listeners.web: missing required key \"bind\"",
                          "weir.toml:1:1: listeners.web: missing required key \"pool\""));
}

TEST(Config, DuplicateBinds) {
  EXPECT_THAT(errorsOf(R"(
[listeners.a]
bind = ["127.0.0.1:8080", "0.0.0.0:9000", "[::]:9000", "[::1]:7000"]
pool = "p"

[listeners.b]
bind = ["127.0.0.1:8080", "127.0.0.1:9000", "[::1]:9000", "127.0.0.1:8081", "127.0.0.1:8081"]
pool = "p"

[listeners.c]
bind = "[::]:7000"
pool = "p"

[pools.p]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:6:9: listeners.b.bind[0]: 127.0.0.1:8080 is already bound "
                          "by listeners.a",
                          "weir.toml:6:27: listeners.b.bind[1]: 127.0.0.1:9000 is already bound "
                          "by listeners.a (as 0.0.0.0:9000)",
                          "weir.toml:6:45: listeners.b.bind[2]: [::1]:9000 is already bound by "
                          "listeners.a (as [::]:9000)",
                          "weir.toml:6:77: listeners.b.bind[4]: 127.0.0.1:8081 is already bound "
                          "by listeners.b",
                          "weir.toml:10:8: listeners.c.bind: [::]:7000 is already bound by "
                          "listeners.a (as [::1]:7000)"));
}

TEST(Config, WildcardsOfDifferentFamiliesDoNotConflict) {
  Config c = parse(toml(R"(
[listeners.v4]
bind = ["0.0.0.0:80", "127.0.0.1:81"]
pool = "p"

[listeners.v6]
bind = ["[::]:80", "[::1]:81", "[::ffff:127.0.0.1]:82"]
pool = "p"

[listeners.other_port]
bind = ["0.0.0.0:82"]
pool = "p"

[pools.p]
backends = [{ address = "10.0.0.1:80" }]
)"),
                   "weir.toml");
  EXPECT_EQ(c.listeners.size(), 3u);
}

TEST(Config, AHugeUnknownNameGetsNoSuggestionAndCostsLittle) {
  // Suggestions compare names with a table |a| x |b|; a 2 MB pool reference next to a 2 MB
  // pool name must not build a 4e12-cell one.
  const std::string huge(2'000'000, 'x');
  const std::string text = "[listeners.web]\nbind = \"127.0.0.1:80\"\npool = \"" + huge +
                           "y\"\n[pools.\"" + huge + "\"]\nbackends = [{ address = "
                           "\"10.0.0.1:80\" }]\n";
  const std::vector<std::string> errors = errorsOf(text);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].find("did you mean"), std::string::npos);
}

TEST(Config, BadAddresses) {
  EXPECT_THAT(
      errorsOf(R"(
[listeners.web]
bind = ["127.0.0.1:0", "localhost:80", "::1:80", 8080]
pool = "web"

[pools.web]
backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.300:80" },
  { address = "10.0.0.2:0" },
  { address = "10.0.0.3" },
  { address = 80 },
]
)"),
      ElementsAre("weir.toml:2:9: listeners.web.bind[0]: \"127.0.0.1:0\": port 0 is not allowed",
                  "weir.toml:2:24: listeners.web.bind[1]: \"localhost:80\" is not IP:PORT",
                  "weir.toml:2:40: listeners.web.bind[2]: \"::1:80\" is not IP:PORT (write IPv6 "
                  "addresses in brackets, e.g. \"[::1]:80\")",
                  "weir.toml:2:50: listeners.web.bind[3]: expected \"IP:PORT\", got 8080",
                  "weir.toml:8:15: pools.web.backends[1].address: \"10.0.0.300:80\" is not "
                  "IP:PORT",
                  "weir.toml:9:15: pools.web.backends[2].address: \"10.0.0.2:0\": port 0 is not "
                  "allowed",
                  "weir.toml:10:15: pools.web.backends[3].address: \"10.0.0.3\" is not IP:PORT",
                  "weir.toml:11:15: pools.web.backends[4].address: expected \"IP:PORT\" or \"NAME:PORT\", got 80"));
}

TEST(Config, BindShapes) {
  EXPECT_THAT(errorsOf(R"(
[listeners.a]
bind = 8080
pool = "p"

[listeners.b]
bind = []
pool = "p"

[pools.p]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:2:8: listeners.a.bind: expected \"IP:PORT\" or an array of "
                          "them, got 8080",
                          "weir.toml:6:8: listeners.b.bind: needs at least one \"IP:PORT\""));
}

TEST(Config, EmptyPools) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "a"

[pools.a]
backends = []

[pools.b]
retries = 1
)"),
              ElementsAre("weir.toml:6:12: pools.a.backends: a pool needs at least one backend",
                          "weir.toml:8:1: pools.b.backends: a pool needs at least one backend"));
}

TEST(Config, Weights) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[pools.web]
backends = [
  { address = "10.0.0.1:80", weight = 0 },
  { address = "10.0.0.2:80", weight = 1001 },
  { address = "10.0.0.3:80", weight = "5" },
  { address = "10.0.0.4:80", weight = 1000 },
]
)"),
              ElementsAre("weir.toml:7:39: pools.web.backends[0].weight: must be 1..1000, got 0",
                          "weir.toml:8:39: pools.web.backends[1].weight: must be 1..1000, got 1001",
                          "weir.toml:9:39: pools.web.backends[2].weight: expected an integer "
                          "1..1000, got \"5\""));
}

TEST(Config, DuplicateBackendInPool) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[pools.web]
backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2:80" },
  { address = "10.0.0.1:80", weight = 2 },
]

[pools.other]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:9:15: pools.web.backends[2].address: 10.0.0.1:80 is already "
                          "listed as backends[0]"));
}

TEST(Config, BackendShapes) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "a"

[pools.a]
backends = "10.0.0.1:80"

[pools.b]
backends = ["10.0.0.1:80", { weight = 2 }]
)"),
              ElementsAre("weir.toml:6:12: pools.a.backends: expected an array such as "
                          "[{ address = \"IP:PORT\" }], got \"10.0.0.1:80\"",
                          "weir.toml:9:13: pools.b.backends[0]: expected a table such as "
                          "{ address = \"IP:PORT\", weight = 1 }, got \"10.0.0.1:80\"",
                          "weir.toml:9:28: pools.b.backends[1]: missing required key "
                          "\"address\""));
}

TEST(Config, NoListeners) {
  EXPECT_THAT(errorsOf(""),
              ElementsAre("weir.toml:1:1: listeners: no listeners defined; add a "
                          "[listeners.NAME] table"));
  EXPECT_THAT(errorsOf(R"(
[pools.web]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:1:1: listeners: no listeners defined; add a "
                          "[listeners.NAME] table"));
  EXPECT_THAT(errorsOf(R"(
[global]
workers = 2
[listeners]
)"),
              ElementsAre("weir.toml:1:1: listeners: no listeners defined; add a "
                          "[listeners.NAME] table"));
}

TEST(Config, SectionShapes) {
  EXPECT_THAT(errorsOf(R"(
global = 1
listeners = 2
pools = "web"
)"),
              ElementsAre("weir.toml:1:10: global: expected a table, got 1",
                          "weir.toml:2:13: listeners: expected tables such as [listeners.NAME], "
                          "got 2",
                          "weir.toml:3:9: pools: expected tables such as [pools.NAME], got "
                          "\"web\""));
  EXPECT_THAT(errorsOf(R"(
[listeners]
web = "127.0.0.1:80"
"a b" = { bind = "127.0.0.1:81", pool = "p" }

[pools.p]
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:2:7: listeners.web: expected a table, got \"127.0.0.1:80\"",
                          "weir.toml:3:9: listeners.\"a b\": a name may only contain letters, "
                          "digits, '_' and '-'"));
}

TEST(Config, PoolValueErrors) {
  EXPECT_THAT(errorsOf(R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"
backlog = 0

[pools.web]
balance = "least_conn"
connect_timeout = 5
idle_timeout = "0s"
retries = 101
backends = [{ address = "10.0.0.1:80" }]

[pools.two]
connect_timeout = "5"
idle_timeout = "1 m"
retries = -1
backends = [{ address = "10.0.0.1:80" }]
)"),
              ElementsAre("weir.toml:4:11: listeners.web.backlog: must be 1..65535, got 0",
                          "weir.toml:7:11: pools.web.balance: expected \"round-robin\", "
                          "\"least-conn\", \"maglev\" or \"random-two\", got \"least_conn\"; "
                          "did you mean \"least-conn\"?",
                          "weir.toml:8:19: pools.web.connect_timeout: expected a duration such "
                          "as \"3s\", got 5",
                          "weir.toml:9:16: pools.web.idle_timeout: must be greater than 0, got "
                          "\"0s\"",
                          "weir.toml:10:11: pools.web.retries: must be 0..100, got 101",
                          "weir.toml:14:19: pools.two.connect_timeout: expected a duration such "
                          "as \"3s\", got \"5\"",
                          "weir.toml:15:16: pools.two.idle_timeout: expected a duration such as "
                          "\"3s\", got \"1 m\"",
                          "weir.toml:16:11: pools.two.retries: must be 0..100, got -1"));
}

TEST(Config, CompoundDurationInConfig) {
  Config c = parse(toml(kMinimal) + "connect_timeout = \"1m30s\"\nidle_timeout = \"1d\"\n", "w");
  EXPECT_EQ(c.pools[0].connect_timeout, 90s);
  EXPECT_EQ(c.pools[0].idle_timeout, 24h);
}

// Every duration key has an upper bound (so that now + duration can never overflow): 1d, or
// 7d for idle_timeout. The error names the place, the key and the maximum.
TEST(Config, DurationsAboveTheirMaximumAreErrors) {
  EXPECT_THAT(errorsOf(R"(
[global]
drain_timeout = "1d1ms"

[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[pools.web]
connect_timeout = "2d"
idle_timeout = "8d"
backends = [{ address = "10.0.0.1:80" }]

[pools.web.health]
interval = "99999999d"
timeout = "25h"

[pools.passive]
passive_holddown = "9223372036854775807ms"
backends = [{ address = "10.0.0.2:80" }]
)"),
              ElementsAre("weir.toml:2:17: global.drain_timeout: must be at most \"1d\", got "
                          "\"1d1ms\"",
                          "weir.toml:9:19: pools.web.connect_timeout: must be at most \"1d\", "
                          "got \"2d\"",
                          "weir.toml:10:16: pools.web.idle_timeout: must be at most \"7d\", got "
                          "\"8d\"",
                          "weir.toml:14:12: pools.web.health.interval: must be at most \"1d\", "
                          "got \"99999999d\"",
                          "weir.toml:15:11: pools.web.health.timeout: must be at most \"1d\", "
                          "got \"25h\"",
                          "weir.toml:18:20: pools.passive.passive_holddown: must be at most "
                          "\"1d\", got \"9223372036854775807ms\""));
}

TEST(Config, DurationsAtTheirMaximumAreAccepted) {
  Config c = parse(toml(R"(
[global]
drain_timeout = "1d"

[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[pools.web]
connect_timeout = "24h"
idle_timeout = "7d"
backends = [{ address = "10.0.0.1:80" }]

[pools.web.health]
interval = "1d"
timeout = "23h59m59s999ms"

[pools.passive]
passive_holddown = "1d"
backends = [{ address = "10.0.0.2:80" }]
)"),
                   "w");
  EXPECT_EQ(c.global.drain_timeout, 24h);
  ASSERT_EQ(c.pools.size(), 2U);
  const Pool& passive = c.pools[0];  // sorted by name
  const Pool& web = c.pools[1];
  EXPECT_EQ(web.connect_timeout, 24h);
  EXPECT_EQ(web.idle_timeout, 7 * 24h);
  ASSERT_TRUE(web.health.has_value());
  EXPECT_EQ(web.health->interval, 24h);
  EXPECT_EQ(web.health->timeout, 24h - 1ms);
  EXPECT_EQ(passive.passive_holddown, 24h);
}

TEST(Config, ReportsEveryProblemInFileOrder) {
  // toml++ orders tables by name, not by position; messages must still follow the file.
  EXPECT_THAT(errorsOf(R"(
[pools.zz]
backends = [{ address = "10.0.0.1:80", weight = 0 }]

[listeners.b]
bind = "127.0.0.1:80"
pool = "missing"

[listeners.a]
bind = "0.0.0.0:80"
pool = "zz"
bakclog = 5

[global]
workers = 0
)"),
              ElementsAre("weir.toml:2:49: pools.zz.backends[0].weight: must be 1..1000, got 0",
                          "weir.toml:6:8: listeners.b.pool: no pool named \"missing\"",
                          "weir.toml:9:8: listeners.a.bind: 0.0.0.0:80 is already bound by "
                          "listeners.b (as 127.0.0.1:80)",
                          "weir.toml:11:11: listeners.a.bakclog: unknown key; did you mean "
                          "\"backlog\"?",
                          "weir.toml:14:11: global.workers: expected \"auto\" or an integer "
                          "1..64, got 0"));
}

TEST(Config, MessagesJoinedInWhat) {
  try {
    parse("[global]\nworkers = 0\n", "f.toml");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.messages().size(), 2u);
    EXPECT_EQ(std::string(e.what()), e.messages()[0] + "\n" + e.messages()[1]);
  }
}

TEST(Config, LoadMissingFile) {
  try {
    load("/nonexistent/weir.toml");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.messages(), ElementsAre("/nonexistent/weir.toml: cannot open: No such file or "
                                          "directory"));
  }
}

TEST(Config, LoadDirectoryFails) {
  EXPECT_THROW(load("/"), ConfigError);
}

}  // namespace
}  // namespace weir::config
