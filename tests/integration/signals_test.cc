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
#include <set>
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

size_t countOf(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) {
    ++n;
  }
  return n;
}

// logrotate moved the files away, but something that cannot be opened as a log file now sits
// at their names (a directory here, which stops root too). USR1 must cost nothing but the
// rotation: every process says in the file it keeps that the reopen failed, no worker dies,
// no connection drops. Once the path is fixed, the next USR1 reopens as usual.
TEST(Signals, Usr1WithAnUnopenableLogPathKeepsTheOldFilesAndTheConnections) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir logs("weir-logs");
  // Run as root, weir's workers are nobody: they must reach the directory to reopen in it.
  ASSERT_EQ(chmod(logs.path().c_str(), 0755), 0);
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.error_log = logs.file("error.log");
  cfg.access_log = logs.file("access.log");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.workerPids();
  ASSERT_EQ(workers.size(), 2U);

  // Connections held through both workers (the steering spreads them; open more until it has).
  std::vector<Fd> held;
  std::set<pid_t> holders;
  for (int i = 0; i < 32 && holders.size() < workers.size(); ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "held\n", deadlineIn(seconds(5))), IoStatus::Ok);
    held.push_back(std::move(fd));
    const std::vector<pid_t> owners = connectionOwners(weir.port(), workers, held);
    holders = std::set<pid_t>(owners.begin(), owners.end());
    holders.erase(0);
  }
  ASSERT_EQ(holders.size(), workers.size()) << "could not place a connection on every worker";

  const std::string old_error = cfg.error_log + ".1";
  const std::string old_access = cfg.access_log + ".1";
  std::filesystem::rename(cfg.error_log, old_error);
  std::filesystem::rename(cfg.access_log, old_access);
  std::filesystem::create_directory(cfg.error_log);
  std::filesystem::create_directory(cfg.access_log);
  ASSERT_TRUE(weir.signal(SIGUSR1));

  // The master and both workers report it, in the file they keep.
  const std::string failed = "reopening log files failed, still writing to the old ones";
  EXPECT_TRUE(waitFor(
      [&] {
        const std::string text = readTextFile(old_error);
        return countOf(text, "master: " + failed) == 1 &&
               countOf(text, "worker 0 (gen 1): " + failed) == 1 &&
               countOf(text, "worker 1 (gen 1): " + failed) == 1;
      },
      seconds(10)))
      << "old error.log:\n" << readTextFile(old_error);
  EXPECT_NE(readTextFile(old_error).find("Is a directory"), std::string::npos)
      << "the error should say why:\n" << readTextFile(old_error);

  // Nobody died, the held connections still echo, and new ones are logged in the old file.
  EXPECT_TRUE(weir.running());
  EXPECT_EQ(weir.workerPids(), workers) << "a worker died or was replaced";
  EXPECT_EQ(countOf(readTextFile(old_error), "exited"), 0U) << readTextFile(old_error);
  for (Fd& fd : held) {
    EXPECT_EQ(echoRoundTrip(fd.get(), "still here\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  const size_t access_before = countOf(readTextFile(old_access), "reason=");
  {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "after\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  EXPECT_TRUE(waitFor(
      [&] { return countOf(readTextFile(old_access), "reason=") > access_before; }, seconds(5)))
      << "the access line of a new connection did not reach the old access.log";

  // Path fixed: the next USR1 reopens normally.
  std::filesystem::remove(cfg.error_log);
  std::filesystem::remove(cfg.access_log);
  ASSERT_TRUE(weir.signal(SIGUSR1));
  EXPECT_TRUE(waitFor([&] { return countOf(readTextFile(cfg.error_log), "reopened") >= 3; },
                      seconds(10)))
      << "new error.log:\n" << readTextFile(cfg.error_log) << "\nold error.log:\n"
      << readTextFile(old_error);
  held.clear();  // their access lines go to the new file
  EXPECT_TRUE(waitFor([&] { return countOf(readTextFile(cfg.access_log), "reason=") > 0; },
                      seconds(5)))
      << "no access line in the new access.log";
  EXPECT_EQ(weir.workerPids(), workers);
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

// A stop that arrives before the master has confirmed its workers (they must live 300 ms)
// must not leave it polling with a zero timeout: while it drains, it sleeps.
TEST(Signals, AStopBeforeTheWorkersAreConfirmedDoesNotSpin) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  // The stop must come within 300 ms of the workers' start; a slow start is tried again.
  for (int attempt = 1; attempt <= 5; ++attempt) {
    WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 1);
    cfg.global_lines.push_back("drain_timeout = \"30s\"");
    WeirProcess weir(cfg);
    ASSERT_TRUE(weir.start(Readiness::Accepts));
    Fd held = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(held.valid());
    ASSERT_EQ(echoRoundTrip(held.get(), "held\n", deadlineIn(seconds(5))), IoStatus::Ok);
    ASSERT_TRUE(weir.signal(SIGQUIT));
    if (weir.countLogLines("master: ready:") > 0) {
      std::printf("attempt %d: the master was ready before the stop; again\n", attempt);
      continue;
    }
    ASSERT_TRUE(weir.waitForLogLines("graceful stop", 1, seconds(5)));
    // The master waits for the held connection: over one second it must use next to no CPU.
    const long before = processCpuTicks(weir.pid());
    const Deadline end = deadlineIn(seconds(1));
    ASSERT_TRUE(waitFor([&] { return Clock::now() >= end; }, seconds(2), milliseconds(50)));
    const long used = processCpuTicks(weir.pid()) - before;
    const long hz = ::sysconf(_SC_CLK_TCK);
    EXPECT_LT(used, hz / 10) << "the stopping master used " << used << " ticks in 1 s";
    EXPECT_TRUE(weir.running());
    EXPECT_EQ(echoRoundTrip(held.get(), "still\n", deadlineIn(seconds(5))), IoStatus::Ok);
    held.reset();  // the last connection ends: the master exits
    auto st = weir.waitExit(seconds(10));
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0);
    return;
  }
  FAIL() << "five attempts in a row took more than 300 ms to start";
}

}  // namespace
}  // namespace weir::test
