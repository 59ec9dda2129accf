// [global] keys of issue 5: drain_timeout, user, group, worker_cpu_affinity,
// worker_rlimit_nofile; the default user of a root master (issue 9); control_socket (issue 12).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "support/temp_dir.h"

namespace weir::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

constexpr std::string_view kRest = R"(
[listeners.web]
bind = "127.0.0.1:8080"
pool = "web"

[pools.web]
backends = [{ address = "10.0.0.1:80" }]
)";

// A config whose [global] table holds `global_lines` (line 2 onwards).
std::string withGlobal(std::string_view global_lines) {
  return "[global]\n" + std::string(global_lines) + "\n" + std::string(kRest);
}

std::vector<std::string> errorsOf(const std::string& text) {
  try {
    parse(text, "weir.toml");
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return {};
}

constexpr uint32_t kRootEuid = 0;
constexpr uint32_t kUserEuid = 1000;

TEST(GlobalConfig, Defaults) {
  // A master started by an ordinary user: no default user, the children keep its uid.
  Config c = parse(withGlobal(""), "weir.toml", kUserEuid);
  EXPECT_EQ(c.global.drain_timeout, 30s);
  EXPECT_EQ(c.global.user, "");
  EXPECT_EQ(c.global.group, "");
  EXPECT_FALSE(c.global.uid.has_value());
  EXPECT_FALSE(c.global.gid.has_value());
  EXPECT_FALSE(c.global.user_default);
  EXPECT_FALSE(c.global.worker_cpu_affinity);
  EXPECT_FALSE(c.global.worker_rlimit_nofile.has_value());
}

TEST(GlobalConfig, AllKeysSet) {
  Config c = parse(withGlobal("drain_timeout = \"1m30s\"\n"
                              "user = \"nobody\"\n"
                              "group = \"nogroup\"\n"
                              "worker_cpu_affinity = \"auto\"\n"
                              "worker_rlimit_nofile = 65536"),
                   "weir.toml");
  EXPECT_EQ(c.global.drain_timeout, 90s);
  EXPECT_EQ(c.global.user, "nobody");
  EXPECT_EQ(c.global.group, "nogroup");
  ASSERT_TRUE(c.global.uid.has_value());
  EXPECT_EQ(*c.global.uid, 65534u);  // Debian's nobody
  ASSERT_TRUE(c.global.gid.has_value());
  EXPECT_EQ(*c.global.gid, 65534u);  // and nogroup
  EXPECT_TRUE(c.global.worker_cpu_affinity);
  EXPECT_EQ(c.global.worker_rlimit_nofile, 65536u);
}

TEST(GlobalConfig, UserAloneMeansItsPrimaryGroup) {
  Config c = parse(withGlobal("user = \"root\""), "weir.toml");
  EXPECT_EQ(c.global.uid, 0u);
  EXPECT_EQ(c.global.gid, 0u);
  EXPECT_EQ(c.global.group, "");
}

TEST(GlobalConfig, NumericIds) {
  Config c = parse(withGlobal("user = \"4242\"\ngroup = \"4343\""), "weir.toml");
  EXPECT_EQ(c.global.uid, 4242u);
  EXPECT_EQ(c.global.gid, 4343u);  // a uid with no passwd entry has no primary group
}

TEST(GlobalConfig, ABareUidNeedsAGroup) {
  // 4242 has no passwd entry, so no primary group: the children would keep root's group.
  const auto errors = errorsOf(withGlobal("user = \"4242\""));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::HasSubstr("weir.toml:2:8: global.user:"));
  EXPECT_THAT(errors[0], ::testing::HasSubstr("set group as well"));
}

TEST(GlobalConfig, GroupAlone) {
  Config c = parse(withGlobal("group = \"nogroup\""), "weir.toml", kUserEuid);
  EXPECT_FALSE(c.global.uid.has_value());
  EXPECT_EQ(c.global.gid, 65534u);
}

// The account a root master's children get without `user`: "weir" where it exists, else
// "nobody" (Debian's 65534:65534).
struct DefaultAccount {
  std::string name;
  uint32_t uid;
  uint32_t gid;
};
DefaultAccount defaultAccount() {
  if (const passwd* pw = getpwnam("weir")) {
    return {"weir", pw->pw_uid, pw->pw_gid};
  }
  return {"nobody", 65534, 65534};
}

TEST(GlobalConfig, RootMasterGetsAnUnprivilegedDefaultUser) {
  const DefaultAccount want = defaultAccount();
  for (const std::string& text : {withGlobal(""), std::string(kRest)}) {  // [global] or none
    Config c = parse(text, "weir.toml", kRootEuid);
    EXPECT_EQ(c.global.user, want.name);
    EXPECT_EQ(c.global.uid, want.uid);
    EXPECT_EQ(c.global.gid, want.gid) << "the default user's primary group";
    EXPECT_EQ(c.global.group, "");
    EXPECT_TRUE(c.global.user_default);
  }
}

TEST(GlobalConfig, DefaultUserKeepsAConfiguredGroup) {
  Config c = parse(withGlobal("group = \"root\""), "weir.toml", kRootEuid);
  EXPECT_EQ(c.global.uid, defaultAccount().uid);
  EXPECT_EQ(c.global.gid, 0u);
  EXPECT_TRUE(c.global.user_default);
}

TEST(GlobalConfig, ExplicitRootIsKeptAndIsNoDefault) {
  Config c = parse(withGlobal("user = \"root\""), "weir.toml", kRootEuid);
  EXPECT_EQ(c.global.uid, 0u);
  EXPECT_EQ(c.global.gid, 0u);
  EXPECT_FALSE(c.global.user_default);
}

TEST(GlobalConfig, AffinityOff) {
  Config c = parse(withGlobal("worker_cpu_affinity = \"off\""), "weir.toml");
  EXPECT_FALSE(c.global.worker_cpu_affinity);
}

TEST(GlobalConfig, ErrorsNameFileLineColumnAndKey) {
  EXPECT_THAT(errorsOf(withGlobal("drain_timeout = \"soon\"")),
              ElementsAre("weir.toml:2:17: global.drain_timeout: expected a duration such as "
                          "\"3s\", got \"soon\""));
  EXPECT_THAT(errorsOf(withGlobal("drain_timeout = \"0s\"")),
              ElementsAre("weir.toml:2:17: global.drain_timeout: must be greater than 0, got "
                          "\"0s\""));
  EXPECT_THAT(errorsOf(withGlobal("user = \"no-such-user-weir\"")),
              ElementsAre("weir.toml:2:8: global.user: no such user \"no-such-user-weir\""));
  EXPECT_THAT(errorsOf(withGlobal("group = \"no-such-group-weir\"")),
              ElementsAre("weir.toml:2:9: global.group: no such group \"no-such-group-weir\""));
  EXPECT_THAT(errorsOf(withGlobal("user = \"\"")),
              ElementsAre("weir.toml:2:8: global.user: expected a user name or uid, got \"\""));
  EXPECT_THAT(errorsOf(withGlobal("user = 65534")),
              ElementsAre("weir.toml:2:8: global.user: expected a user name or uid, got 65534"));
  EXPECT_THAT(errorsOf(withGlobal("worker_cpu_affinity = \"on\"")),
              ElementsAre("weir.toml:2:23: global.worker_cpu_affinity: expected \"auto\" or "
                          "\"off\", got \"on\"; did you mean \"off\"?"));
  EXPECT_THAT(errorsOf(withGlobal("worker_rlimit_nofile = 10")),
              ElementsAre("weir.toml:2:24: global.worker_rlimit_nofile: must be "
                          "64..1073741816, got 10"));
  EXPECT_THAT(errorsOf(withGlobal("worker_rlimit_nofile = \"many\"")),
              ElementsAre(::testing::StartsWith(
                  "weir.toml:2:24: global.worker_rlimit_nofile: expected an integer")));
}

TEST(GlobalConfig, NginxChildKeys) {
  Config c = parse(withGlobal(""), "weir.toml");
  EXPECT_FALSE(c.global.worker_priority.has_value());
  EXPECT_FALSE(c.global.worker_rlimit_core.has_value());
  EXPECT_EQ(c.global.working_directory, "");

  c = parse(withGlobal("worker_priority = -5\n"
                       "worker_rlimit_core = \"500M\"\n"
                       "working_directory = \"/tmp\""),
            "weir.toml");
  EXPECT_EQ(c.global.worker_priority, -5);
  EXPECT_EQ(c.global.worker_rlimit_core, uint64_t{500} << 20);
  EXPECT_EQ(c.global.working_directory, "/tmp");

  auto core = [](std::string_view value) {
    return parse(withGlobal("worker_rlimit_core = " + std::string(value)), "weir.toml")
        .global.worker_rlimit_core;
  };
  EXPECT_EQ(core("\"unlimited\""), kUnlimitedCore);
  EXPECT_EQ(core("\"0\""), 0u);
  EXPECT_EQ(core("0"), 0u);
  EXPECT_EQ(core("4096"), 4096u);
  EXPECT_EQ(core("\"64k\""), 65536u);
  EXPECT_EQ(core("\"2G\""), uint64_t{2} << 30);
}

TEST(GlobalConfig, NginxChildKeyErrors) {
  EXPECT_THAT(errorsOf(withGlobal("worker_priority = 20")),
              ElementsAre("weir.toml:2:19: global.worker_priority: must be -20..19, got 20"));
  EXPECT_THAT(errorsOf(withGlobal("worker_rlimit_core = \"lots\"")),
              ElementsAre("weir.toml:2:22: global.worker_rlimit_core: expected a size such as "
                          "\"500M\" (bytes, or k, m, g), \"0\" or \"unlimited\", got "
                          "\"lots\""));
  EXPECT_THAT(errorsOf(withGlobal("worker_rlimit_core = \"5T\"")),
              ElementsAre(::testing::HasSubstr("global.worker_rlimit_core: expected a size")));
  EXPECT_THAT(errorsOf(withGlobal("worker_rlimit_core = -1")),
              ElementsAre(::testing::HasSubstr("global.worker_rlimit_core: expected a size")));
  EXPECT_THAT(errorsOf(withGlobal("worker_rlimit_core = \"99999999999999999999\"")),
              ElementsAre(::testing::HasSubstr("global.worker_rlimit_core: expected a size")));
  EXPECT_THAT(errorsOf(withGlobal("working_directory = \"/no/such/weir-dir\"")),
              ElementsAre("weir.toml:2:21: global.working_directory: \"/no/such/weir-dir\": "
                          "No such file or directory"));
  EXPECT_THAT(errorsOf(withGlobal("working_directory = \"/etc/passwd\"")),
              ElementsAre("weir.toml:2:21: global.working_directory: \"/etc/passwd\" is not a "
                          "directory"));
  EXPECT_THAT(errorsOf(withGlobal("working_directory = \"tmp\"")),
              ElementsAre("weir.toml:2:21: global.working_directory: expected an absolute "
                          "directory path, got \"tmp\""));
}

// Found by fuzzing (config_fuzz): an unknown user or group name went into the message as it
// was, so a tab or newline in it ("nobody\n") broke the one-line error.
TEST(GlobalConfig, UnknownUserOrGroupIsQuotedOnOneLine) {
  EXPECT_THAT(errorsOf(withGlobal("user = \"nobody\\n\"")),
              ElementsAre("weir.toml:2:8: global.user: no such user \"nobody\\n\""));
  EXPECT_THAT(errorsOf(withGlobal("group = \"no\\tgroup\\\"\"")),
              ElementsAre("weir.toml:2:9: global.group: no such group \"no\\tgroup\\\"\""));
}

TEST(GlobalConfig, ControlSocket) {
  EXPECT_EQ(parse(withGlobal(""), "weir.toml").global.control_socket, "");
  EXPECT_EQ(parse(withGlobal("control_socket = \"/run/weir/weir.sock\""), "weir.toml")
                .global.control_socket,
            "/run/weir/weir.sock");
  EXPECT_EQ(parse(withGlobal("control_socket = \"\""), "weir.toml").global.control_socket, "");
  EXPECT_THAT(errorsOf(withGlobal("control_socket = \"weir.sock\"")),
              ElementsAre("weir.toml:2:18: global.control_socket: expected an absolute path, or "
                          "\"\" for none, got a relative path"));
  EXPECT_THAT(errorsOf(withGlobal("control_socket = \"/" + std::string(96, 'a') + "\"")),
              ElementsAre("weir.toml:2:18: global.control_socket: a unix socket path may be at "
                          "most 96 bytes here, got 97"));
  EXPECT_THAT(errorsOf(withGlobal("control_socket = 1")),
              ElementsAre(::testing::StartsWith("weir.toml:2:18: global.control_socket: expected "
                                                "an absolute path")));
}

// weirctl reads only this key: the rest of the file may be broken while the master still
// serves the previous configuration.
TEST(GlobalConfig, ControlSocketOfABrokenConfig) {
  test::TempDir dir;
  const std::string broken = dir.write(
      "weir.toml", "[global]\ncontrol_socket = \"/run/w.sock\"\nworkers = \"many\"\n"
                   "[pools.p]\nbackends = 3\n");
  EXPECT_EQ(controlSocketOf(broken), "/run/w.sock");
  EXPECT_EQ(controlSocketOf(dir.write("none.toml", "[pools.p]\n")), "");
  const std::string bad = dir.write("bad.toml", "[global]\ncontrol_socket = \"x\"\n");
  EXPECT_THROW(controlSocketOf(bad), ConfigError);
  EXPECT_THROW(controlSocketOf(dir.write("syntax.toml", "[global\n")), ConfigError);
  EXPECT_THROW(controlSocketOf(dir.file("missing.toml")), ConfigError);
}

TEST(GlobalConfig, MetricsAddress) {
  EXPECT_FALSE(parse(withGlobal(""), "weir.toml", kUserEuid).global.metrics.has_value());
  EXPECT_FALSE(
      parse(withGlobal("metrics = \"\""), "weir.toml", kUserEuid).global.metrics.has_value());
  Config v4 = parse(withGlobal("metrics = \"127.0.0.1:9145\""), "weir.toml", kUserEuid);
  ASSERT_TRUE(v4.global.metrics.has_value());
  EXPECT_EQ(v4.global.metrics->toString(), "127.0.0.1:9145");
  Config v6 = parse(withGlobal("metrics = \"[::1]:9145\""), "weir.toml", kUserEuid);
  ASSERT_TRUE(v6.global.metrics.has_value());
  EXPECT_EQ(v6.global.metrics->toString(), "[::1]:9145");
}

TEST(GlobalConfig, BadMetricsAddressesSayWhere) {
  EXPECT_THAT(errorsOf(withGlobal("metrics = \"localhost\"")),
              ElementsAre("weir.toml:2:11: global.metrics: \"localhost\" is not IP:PORT"));
  EXPECT_THAT(errorsOf(withGlobal("metrics = \"::1:9145\"")),
              ElementsAre(::testing::HasSubstr("write IPv6 addresses in brackets")));
  EXPECT_THAT(errorsOf(withGlobal("metrics = \"127.0.0.1:0\"")),
              ElementsAre(::testing::HasSubstr("port 0 is not allowed")));
  EXPECT_THAT(errorsOf(withGlobal("metrics = 9145")),
              ElementsAre(::testing::HasSubstr("global.metrics: expected \"IP:PORT\"")));
}

}  // namespace
}  // namespace weir::config
