// SystemRunner: fork + exec without a shell, stdin fed, stdout and stderr captured, the exit
// status kept; a program that is not installed, one that hangs, and one that does not read
// its input are told apart from a command that fails.
#include "netsetup/command.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <string>

namespace weir::netsetup {
namespace {

using namespace std::chrono_literals;

TEST(SystemRunner, FeedsStdinAndCapturesStdout) {
  SystemRunner runner;
  std::string big(1 << 20, 'x');  // more than a pipe holds: written while cat echoes it
  auto out = runner.run({"cat"}, big);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->code, 0);
  EXPECT_EQ(out->out.size(), big.size());
  EXPECT_EQ(out->out, big);
}

TEST(SystemRunner, KeepsStderrAndTheExitCode) {
  SystemRunner runner;
  auto out = runner.run({"ls", "/nonexistent-weir-netsetup"}, "");
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_NE(out->code, 0);
  EXPECT_FALSE(out->ok());
  EXPECT_NE(out->err.find("nonexistent-weir-netsetup"), std::string::npos) << out->err;
}

TEST(SystemRunner, ArgumentsReachTheProgramUnchanged) {
  SystemRunner runner;
  auto out = runner.run({"echo", "a b", "$HOME", "*"}, "");
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->out, "a b $HOME *\n");  // no shell: no splitting, expansion or globbing
}

TEST(SystemRunner, MissingProgramIsENOENT) {
  SystemRunner runner;
  auto out = runner.run({"weir-no-such-program"}, "");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ENOENT);
}

TEST(SystemRunner, HangingProgramIsKilled) {
  SystemRunner runner(200ms);
  auto out = runner.run({"sleep", "10"}, "");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ETIMEDOUT);
}

TEST(SystemRunner, ProgramThatIgnoresItsInputDoesNotKillTheCaller) {
  // `true` exits without reading: writing the rest of the input hits EPIPE, not SIGPIPE.
  SystemRunner runner;
  auto out = runner.run({"true"}, std::string(1 << 20, 'x'));
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->code, 0);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "a SIGPIPE was left pending";
}

TEST(CommandLine, JoinsWithSpaces) {
  EXPECT_EQ(commandLine({"ip", "-6", "rule", "show"}), "ip -6 rule show");
  EXPECT_EQ(commandLine({}), "");
}

}  // namespace
}  // namespace weir::netsetup
