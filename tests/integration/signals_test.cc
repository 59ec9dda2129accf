// The master's signals besides reload and upgrade: QUIT drains, TERM stops, USR1 reopens the
// log files; `weir -s ACTION` sends them through the pid file; systemd hears about it all.
#include <gtest/gtest.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

bool refused(const SockAddr& addr) {
  std::string err;
  return !connectTcp(addr, milliseconds(500), &err).valid();
}

TEST(Signals, QuitStopsAcceptingAndExitsWhenTheLastConnectionEnds) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.global_lines.push_back("drain_timeout = \"60s\"");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  Fd held = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(echoRoundTrip(held.get(), "before quit\n", deadlineIn(seconds(5))), IoStatus::Ok);

  ASSERT_TRUE(weir.signal(SIGQUIT));
  // New connections are refused (once the listening sockets are retired) ...
  EXPECT_TRUE(waitFor([&] { return refused(weir.addr()); }, seconds(5)))
      << "weir still accepts after SIGQUIT";
  // ... while the open one keeps working and holds the master up.
  EXPECT_EQ(echoRoundTrip(held.get(), "during quit\n", deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_FALSE(weir.waitExit(milliseconds(500)).has_value()) << "exited with a connection open";

  ASSERT_EQ(::shutdown(held.get(), SHUT_WR), 0);
  EXPECT_EQ(readUntilClosed(held.get(), deadlineIn(seconds(5))), IoStatus::Eof);
  auto st = weir.waitExit(seconds(5));
  ASSERT_TRUE(st.has_value()) << "the master did not exit after the last connection ended";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
}

TEST(Signals, QuitClosesWhatIsLeftAfterTheDrainTimeout) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.global_lines.push_back("drain_timeout = \"1s\"");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  Fd held = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(echoRoundTrip(held.get(), "x\n", deadlineIn(seconds(5))), IoStatus::Ok);
  const Deadline sent = Clock::now();
  ASSERT_TRUE(weir.signal(SIGQUIT));
  auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value()) << "no exit after drain_timeout";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_GE(Clock::now() - sent, milliseconds(900)) << "exited before drain_timeout";
  const IoStatus s = readUntilClosed(held.get(), deadlineIn(seconds(5)));
  EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset) << toString(s);
}

TEST(Signals, TermStopsAtOnce) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}, 2));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  Fd held = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(echoRoundTrip(held.get(), "x\n", deadlineIn(seconds(5))), IoStatus::Ok);
  const Deadline sent = Clock::now();
  ASSERT_TRUE(weir.signal(SIGTERM));
  auto st = weir.waitExit(seconds(5));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_LT(Clock::now() - sent, seconds(2));
  const IoStatus s = readUntilClosed(held.get(), deadlineIn(seconds(5)));
  EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset) << toString(s);
  EXPECT_TRUE(refused(weir.addr()));
}

TEST(Signals, Usr1ReopensLogFilesAfterARename) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir logs("weir-logs");
  // Workers of a root master run as nobody by default and reopen by name: they must reach
  // the directory (TempDir makes 0700 ones).
  ASSERT_EQ(chmod(logs.path().c_str(), 0755), 0);
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.error_log = logs.file("error.log");
  cfg.access_log = logs.file("access.log");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  ASSERT_TRUE(waitFor([&] { return readTextFile(cfg.access_log).size() > 0; }, seconds(5)))
      << "the readiness probe left no access log line";

  // logrotate: rename, then USR1.
  std::filesystem::rename(cfg.error_log, cfg.error_log + ".1");
  std::filesystem::rename(cfg.access_log, cfg.access_log + ".1");
  ASSERT_TRUE(weir.signal(SIGUSR1));
  // The master and both workers say so in the new file.
  EXPECT_TRUE(waitFor(
      [&] {
        const std::string text = readTextFile(cfg.error_log);
        size_t n = 0;
        for (size_t p = text.find("reopened"); p != std::string::npos;
             p = text.find("reopened", p + 1)) {
          ++n;
        }
        return n >= 3;
      },
      seconds(5)))
      << "new error.log:\n" << readTextFile(cfg.error_log);
  const size_t old_access = readTextFile(cfg.access_log + ".1").size();
  for (int i = 0; i < 4; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "rotated\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  EXPECT_TRUE(waitFor([&] { return readTextFile(cfg.access_log).size() > 0; }, seconds(5)))
      << "no access line in the new access.log";
  EXPECT_EQ(readTextFile(cfg.access_log + ".1").size(), old_access)
      << "the rotated access log still grows";
}

TEST(Signals, DashSSendsSignalsThroughThePidFile) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  TempDir run_dir("weir-run");
  cfg.pid_file = run_dir.file("weir.pid");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  EXPECT_EQ(readTextFile(cfg.pid_file), std::to_string(weir.pid()) + "\n");

  RunResult r = run(kWeirBin, {"-c", weir.configPath(), "-s", "reload"}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_TRUE(weir.waitForLogLines("master: reloaded: generation 2", 1, seconds(10)));
  r = run(kWeirBin, {"-c", weir.configPath(), "-s", "reopen"}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_TRUE(weir.waitForLogLines("master: log files reopened", 1, seconds(10)));
  r = run(kWeirBin, {"-c", weir.configPath(), "-s", "bogus"}, seconds(10));
  EXPECT_EQ(r.exitCode(), 2);
  r = run(kWeirBin, {"-c", weir.configPath(), "-s", "quit"}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value()) << "-s quit did not stop the master";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_FALSE(std::filesystem::exists(cfg.pid_file)) << "the pid file outlived the master";
  // No master now: -s says so and fails.
  r = run(kWeirBin, {"-c", weir.configPath(), "-s", "stop"}, seconds(10));
  EXPECT_EQ(r.exitCode(), 1);
  EXPECT_NE(r.err.find(cfg.pid_file), std::string::npos) << r.err;
}

// A unix datagram socket standing in for systemd's notification socket.
class NotifySocket {
public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = Fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
    bound_ = bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    const char* old = std::getenv("NOTIFY_SOCKET");
    saved_ = old != nullptr ? std::optional<std::string>(old) : std::nullopt;
    setenv("NOTIFY_SOCKET", path.c_str(), 1);  // inherited by the weir we start
  }
  ~NotifySocket() {
    if (saved_) {
      setenv("NOTIFY_SOCKET", saved_->c_str(), 1);
    } else {
      unsetenv("NOTIFY_SOCKET");
    }
  }
  bool bound() const { return bound_; }
  // Messages received so far, appended to `all`; waits until one contains `needle`.
  bool waitFor(const std::string& needle, Clock::duration timeout) {
    const Deadline deadline = deadlineIn(timeout);
    while (Clock::now() < deadline) {
      if (messages_.find(needle, searched_) != std::string::npos) {
        searched_ = messages_.find(needle, searched_) + needle.size();
        return true;
      }
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, std::min(msLeft(deadline), 100)) > 0) {
        char buf[4096];
        ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
        if (n > 0) {
          messages_.append(buf, static_cast<size_t>(n));
          messages_ += "\n--\n";
        }
      }
    }
    return false;
  }
  const std::string& messages() const { return messages_; }

private:
  std::string path_;
  Fd fd_;
  bool bound_ = false;
  std::optional<std::string> saved_;
  std::string messages_;
  size_t searched_ = 0;
};

TEST(Signals, SystemdHearsReadyReloadingAndStopping) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir run_dir("weir-notify");
  NotifySocket systemd(run_dir.file("notify.sock"));
  ASSERT_TRUE(systemd.bound());
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}, 2));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  EXPECT_TRUE(systemd.waitFor("READY=1", seconds(5))) << systemd.messages();
  ASSERT_TRUE(weir.signal(SIGHUP));
  EXPECT_TRUE(systemd.waitFor("RELOADING=1", seconds(5))) << systemd.messages();
  EXPECT_TRUE(systemd.waitFor("READY=1", seconds(5))) << "no READY=1 after the reload:\n"
                                                      << systemd.messages();
  ASSERT_TRUE(weir.signal(SIGTERM));
  EXPECT_TRUE(systemd.waitFor("STOPPING=1", seconds(5))) << systemd.messages();
  auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
}

}  // namespace
}  // namespace weir::test
