// Per-connection and per-worker limits: idle_timeout, max_connections, running out of file
// descriptors, and the access log line every closed connection leaves.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "support/temp_dir.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// True if `fd` becomes readable (data, EOF or error) within `timeout`.
bool readableWithin(int fd, Clock::duration timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(
                           std::chrono::duration_cast<milliseconds>(timeout).count())) > 0;
}

TEST(Limits, IdleConnectionIsClosedAfterIdleTimeout) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 1);
  cfg.pools.front().idle_timeout = "300ms";
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  std::string err;
  Fd fd = connectTcp(weir.addr(), seconds(5), &err);
  ASSERT_TRUE(fd.valid()) << err;
  ASSERT_EQ(echoRoundTrip(fd.get(), "still here?", deadlineIn(seconds(5))), IoStatus::Ok);
  const auto silent_since = Clock::now();
  const IoStatus s = readUntilClosed(fd.get(), deadlineIn(seconds(5)));
  const auto waited = Clock::now() - silent_since;
  EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset) << toString(s);
  EXPECT_GE(waited, milliseconds(250)) << "closed before the idle timeout";
  EXPECT_LE(waited, seconds(3)) << "idle connection outlived its timeout by far";
}

TEST(Limits, MaxConnectionsBoundsAWorker) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 1);
  cfg.max_connections = 4;
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  std::vector<Fd> held;
  std::string err;
  for (int i = 0; i < 4; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    ASSERT_TRUE(fd.valid()) << err;
    ASSERT_EQ(echoRoundTrip(fd.get(), "hold " + std::to_string(i), deadlineIn(seconds(5))),
              IoStatus::Ok);
    held.push_back(std::move(fd));
  }
  // The fifth completes its handshake in the kernel's queue but the worker must not take it.
  Fd fifth = connectTcp(weir.addr(), seconds(5), &err);
  ASSERT_TRUE(fifth.valid()) << err;
  ASSERT_EQ(writeAll(fifth.get(), "five", deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_FALSE(readableWithin(fifth.get(), milliseconds(500)))
      << "a fifth connection was served with max_connections = 4";
  held.front().reset();  // frees a place: the queued connection is taken now
  char buf[4];
  ASSERT_EQ(readExact(fifth.get(), buf, sizeof(buf), deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_EQ(std::string(buf, sizeof(buf)), "five");
}

TEST(Limits, RunningOutOfFileDescriptorsNeitherSpinsNorCrashes) {
  if (::access("/usr/bin/prlimit", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/prlimit (util-linux) to lower the fd limit";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 1);
  WeirProcess weir(cfg);
  // About a dozen connections' worth of descriptors once weir's own are open.
  weir.setWrapper({"/usr/bin/prlimit", "--nofile=40:40", "--"});
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.waitForWorkers(1);
  ASSERT_EQ(workers.size(), 1u);

  // Far more connections than descriptors; each says hello.
  std::vector<Fd> conns;
  std::string err;
  for (int i = 0; i < 60; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    ASSERT_TRUE(fd.valid()) << err;
    (void)writeAll(fd.get(), "hi", deadlineIn(seconds(5)));
    conns.push_back(std::move(fd));
  }
  // While the queue holds connections it cannot take, the worker must sleep, not spin.
  const long before = processCpuTicks(workers[0]);
  const auto t0 = Clock::now();
  ASSERT_TRUE(readableWithin(conns.front().get(), seconds(5)));
  while (Clock::now() - t0 < seconds(1)) {
    (void)readableWithin(conns.back().get(), milliseconds(100));  // a bounded 1 s window
  }
  const long used = processCpuTicks(workers[0]) - before;
  const long hz = ::sysconf(_SC_CLK_TCK);
  EXPECT_LT(used, hz / 5) << "worker used " << used << " ticks of CPU in 1 s while out of fds";
  EXPECT_EQ(weir.workerPids(), workers) << "the worker died";

  // Once the clients go away, service resumes in the same worker.
  conns.clear();
  EXPECT_TRUE(waitFor(
      [&] {
        Fd fd = connectTcp(weir.addr(), seconds(2));
        return fd.valid() &&
               echoRoundTrip(fd.get(), "back", deadlineIn(seconds(2))) == IoStatus::Ok;
      },
      seconds(10), milliseconds(100)));
  EXPECT_EQ(weir.workerPids(), workers) << "the worker died";
}

TEST(Limits, EveryClosedConnectionLeavesOneAccessLogLine) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir dir("weir-access");
  const std::string path = dir.file("access.log");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.access_log = path;
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  // The readiness probe's connection also leaves a line; ours are told apart by client port.
  std::vector<std::string> clients;
  for (int i = 0; i < 3; ++i) {
    std::string err;
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    ASSERT_TRUE(fd.valid()) << err;
    auto local = SockAddr::local(fd.get());
    ASSERT_TRUE(local.has_value());
    clients.push_back("client=" + local->str() + " ");
    ASSERT_EQ(echoRoundTrip(fd.get(), "twelve bytes", deadlineIn(seconds(5))), IoStatus::Ok);
    ::shutdown(fd.get(), SHUT_WR);
    ASSERT_EQ(readUntilClosed(fd.get(), deadlineIn(seconds(5))), IoStatus::Eof);
  }
  const auto linesOf = [&](const std::string& client) {
    std::vector<std::string> found;
    std::istringstream in(readTextFile(path));
    for (std::string l; std::getline(in, l);) {
      if (l.find(client) != std::string::npos) {
        found.push_back(l);
      }
    }
    return found;
  };
  ASSERT_TRUE(waitFor(
      [&] {
        for (const std::string& c : clients) {
          if (linesOf(c).empty()) {
            return false;
          }
        }
        return true;
      },
      seconds(5)))
      << readTextFile(path);
  for (const std::string& c : clients) {
    const std::vector<std::string> lines = linesOf(c);
    ASSERT_EQ(lines.size(), 1u) << c;
    const std::string& l = lines.front();
    EXPECT_NE(l.find("listener=front "), std::string::npos) << l;
    EXPECT_NE(l.find("backend=" + echo.endpoint() + " "), std::string::npos) << l;
    EXPECT_NE(l.find("up=12 down=12 "), std::string::npos) << l;
    EXPECT_NE(l.find("duration="), std::string::npos) << l;
    EXPECT_NE(l.find("reason=done"), std::string::npos) << l;
  }
}

}  // namespace
}  // namespace weir::test
