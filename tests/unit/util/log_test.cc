#include "util/log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace weir::util {
namespace {

namespace fs = std::filesystem;

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A temporary directory with error.log and access.log paths; puts logging back on stderr
// afterwards, for the tests that run next in this process.
class LogFiles : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/weir-log-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    error_ = (dir_ / "error.log").string();
    access_ = (dir_ / "access.log").string();
  }
  void TearDown() override {
    setupLogging("stderr", "off", "info", "unit");
    fs::remove_all(dir_);
  }

  fs::path dir_;
  std::string error_;
  std::string access_;
};

// All or nothing: when one of the two files cannot be opened, neither logger changes (the
// error log does not move to its new file, the access log is not dropped).
TEST_F(LogFiles, SetupThatFailsChangesNothing) {
  setupLogging(error_, access_, "info", "test");
  spdlog::info("first");
  ASSERT_NE(accessLog(), nullptr);
  accessLog()->info("a-first");

  const std::string other_error = (dir_ / "other-error.log").string();
  const std::string bad_access = (dir_ / "a-directory").string();
  fs::create_directory(bad_access);
  EXPECT_ANY_THROW(setupLogging(other_error, bad_access, "info", "test"));

  spdlog::info("second");
  ASSERT_NE(accessLog(), nullptr) << "the access log was dropped";
  accessLog()->info("a-second");
  EXPECT_NE(readFile(error_).find("second"), std::string::npos) << "the error log moved";
  EXPECT_EQ(readFile(other_error).find("second"), std::string::npos);
  EXPECT_NE(readFile(access_).find("a-second"), std::string::npos);
}

// logrotate renamed the files and a directory now sits at one name: the reopen fails with a
// reason, both loggers keep their files; once the name is free again, the reopen works.
TEST_F(LogFiles, ReopenKeepsTheOldFilesUntilTheNewOnesOpen) {
  setupLogging(error_, access_, "info", "test");
  spdlog::info("before rotation");
  fs::rename(error_, error_ + ".1");
  fs::rename(access_, access_ + ".1");
  fs::create_directory(access_);

  const std::optional<std::string> why = reopenLogs();
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find(access_), std::string::npos) << *why;
  EXPECT_NE(why->find("Is a directory"), std::string::npos) << *why;
  spdlog::info("while broken");
  ASSERT_NE(accessLog(), nullptr);
  accessLog()->info("a-while-broken");
  EXPECT_NE(readFile(error_ + ".1").find("while broken"), std::string::npos);
  EXPECT_NE(readFile(access_ + ".1").find("a-while-broken"), std::string::npos);

  fs::remove(access_);
  EXPECT_EQ(reopenLogs(), std::nullopt);
  spdlog::info("after the fix");
  accessLog()->info("a-after-the-fix");
  EXPECT_NE(readFile(error_).find("test: after the fix"), std::string::npos)
      << "the process tag is kept";
  EXPECT_NE(readFile(access_).find("a-after-the-fix"), std::string::npos);
  EXPECT_EQ(readFile(error_ + ".1").find("after the fix"), std::string::npos);
}

}  // namespace
}  // namespace weir::util
