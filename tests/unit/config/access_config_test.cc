// [listeners.NAME] allow, deny, allow_file and deny_file: parsing, the list files load() reads,
// and the messages for each mistake.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "support/temp_dir.h"

namespace weir::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A pool and a listener; tests append the rest of [listeners.edge]. Line 6 is the first
// appended line.
constexpr std::string_view kHead =
    "[pools.web]\n"                                 // 1
    "backends = [{ address = \"10.0.0.1:80\" }]\n"  // 2
    "[listeners.edge]\n"                            // 3
    "bind = \"127.0.0.1:8080\"\n"                   // 4
    "pool = \"web\"\n";                             // 5

std::vector<std::string> errorsOf(std::string_view rest) {
  try {
    parse(std::string(kHead) + std::string(rest), "weir.toml");
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

net::SockAddr peer(std::string_view text) { return net::SockAddr::parse(text).value(); }

TEST(AccessConfig, NoListMeansNoAccessList) {
  Config c = parse(std::string(kHead), "weir.toml");
  EXPECT_EQ(c.listeners[0].access, nullptr);
}

TEST(AccessConfig, AllowAndDenyBuildOneList) {
  Config c = parse(std::string(kHead) +
                       "allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n"
                       "deny = [\"10.9.0.0/16\"]\n",
                   "weir.toml");
  const auto& access = c.listeners[0].access;
  ASSERT_NE(access, nullptr);
  EXPECT_EQ(access->allowCount(), 2u);
  EXPECT_EQ(access->denyCount(), 1u);
  EXPECT_TRUE(access->allows(peer("10.1.0.1:1")));
  EXPECT_FALSE(access->allows(peer("10.9.0.1:1")));
  EXPECT_FALSE(access->allows(peer("192.0.2.1:1")));
  EXPECT_TRUE(access->allows(peer("[2001:db8::5]:1")));
}

TEST(AccessConfig, MistakesNameTheElement) {
  EXPECT_THAT(errorsOf("deny = \"10.0.0.0/8\"\n"),
              ElementsAre(HasSubstr("weir.toml:6:8: listeners.edge.deny: expected an array")));
  EXPECT_THAT(errorsOf("deny = [\"10.0.0.0/8\", \"10.1.0.0/8\", 7]\n"),
              ElementsAre("weir.toml:6:23: listeners.edge.deny[1]: \"10.1.0.0/8\": bits set "
                          "past the prefix length (did you mean \"10.0.0.0/8\"?)",
                          HasSubstr("weir.toml:6:37: listeners.edge.deny[2]: expected an "
                                    "address or prefix")));
  EXPECT_THAT(errorsOf("allow = [\"10.0.0.0/8\", \"10.0.0.0/8\"]\n"),
              ElementsAre("weir.toml:6:24: listeners.edge.allow[1]: \"10.0.0.0/8\" is already "
                          "listed as allow[0]"));
}

TEST(AccessConfig, APrefixBothAllowedAndDeniedIsAnError) {
  EXPECT_THAT(errorsOf("allow = [\"10.0.0.0/8\"]\ndeny = [\"192.0.2.0/24\", \"10.0.0.0/8\"]\n"),
              ElementsAre(HasSubstr("weir.toml:7:25: listeners.edge.deny[1]: \"10.0.0.0/8\" is "
                                    "also allowed by listeners.edge.allow[0]")));
}

TEST(AccessConfig, FilePathsAreResolvedButNotReadByParse) {
  Config c = parse(std::string(kHead) + "allow_file = \"lists/allow.txt\"\n"
                                        "deny_file = \"/nonexistent/deny.txt\"\n",
                   "/etc/weir/weir.toml");
  ASSERT_TRUE(c.listeners[0].allow_file.has_value());
  EXPECT_EQ(c.listeners[0].allow_file->path, "/etc/weir/lists/allow.txt");
  EXPECT_EQ(c.listeners[0].deny_file->path, "/nonexistent/deny.txt");
  EXPECT_EQ(c.listeners[0].access, nullptr);
}

class AccessFiles : public ::testing::Test {
protected:
  // Writes weir.toml (kHead + `rest`) into the temp dir and loads it.
  Config load(const std::string& rest) {
    return config::load(dir_.write("weir.toml", std::string(kHead) + rest));
  }
  std::vector<std::string> loadErrors(const std::string& rest) {
    try {
      load(rest);
    } catch (const ConfigError& e) {
      return e.messages();
    }
    ADD_FAILURE() << "no ConfigError for:\n" << rest;
    return {};
  }
  test::TempDir dir_;
};

TEST_F(AccessFiles, LoadReadsBothFilesIntoTheList) {
  dir_.write("allow.txt", "# partners\n10.0.0.0/8\n192.0.2.0/24\n");
  std::string deny;
  for (int i = 0; i < 20000; ++i) {  // a long blocklist inside the allowed /8
    deny += "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".7\n";
  }
  dir_.write("deny.txt", deny);
  Config c = load("allow = [\"2001:db8::/32\"]\nallow_file = \"allow.txt\"\n"
                  "deny_file = \"deny.txt\"\n");
  const auto& access = c.listeners[0].access;
  ASSERT_NE(access, nullptr);
  EXPECT_EQ(access->allowCount(), 3u);
  EXPECT_EQ(access->denyCount(), 20000u);
  EXPECT_TRUE(access->allows(peer("10.0.0.8:1")));
  EXPECT_FALSE(access->allows(peer("10.0.0.7:1")));
  EXPECT_FALSE(access->allows(peer("10.78.31.7:1")));  // entry 19999
  EXPECT_TRUE(access->allows(peer("10.78.32.7:1")));   // one past the list
  EXPECT_TRUE(access->allows(peer("192.0.2.9:1")));
  EXPECT_FALSE(access->allows(peer("198.51.100.1:1")));
}

TEST_F(AccessFiles, ProblemsNameTheConfigKeyAndTheListFileLine) {
  dir_.write("deny.txt", "10.0.0.0/8\n\n  10.1.0.0/8  # typo\n192.0.2.0/24\n");
  const std::string config = dir_.file("weir.toml");
  const std::string list = dir_.file("deny.txt");
  EXPECT_THAT(loadErrors("allow = [\"192.0.2.0/24\"]\ndeny_file = \"deny.txt\"\n"),
              ElementsAre(config + ":7:13: listeners.edge.deny_file: " + list +
                              ":3:3: \"10.1.0.0/8\": bits set past the prefix length (did you "
                              "mean \"10.0.0.0/8\"?)",
                          HasSubstr(list + ":4:1: \"192.0.2.0/24\" is also allowed by "
                                           "listeners.edge.allow[0]")));
  EXPECT_THAT(loadErrors("allow_file = \"missing.txt\"\n"),
              ElementsAre(config + ":6:14: listeners.edge.allow_file: cannot open " +
                          dir_.file("missing.txt") + ": No such file or directory"));
}

}  // namespace
}  // namespace weir::config
