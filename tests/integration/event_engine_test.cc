// global.event_engine: the workers wait on epoll or on io_uring (lb/engine). The whole suite
// runs once per engine (see CMakeLists.txt); these tests check what only the setting does:
// the engine a worker uses is the one asked for, io_uring falls back to epoll with the reason
// in the log where the kernel refuses it, and a reload under load moves between the engines
// without failing a connection.
#include <gtest/gtest.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "support/deadline.h"
#include "support/load_client.h"
#include "support/net_io.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr const char* kDisabledKnob = "/proc/sys/kernel/io_uring_disabled";

// Whether this process can set up an io_uring ring ("" if so, else why not).
std::string ioUringRefusal() {
  io_uring_params params{};
  const long fd = ::syscall(__NR_io_uring_setup, 4, &params);
  if (fd < 0) {
    return std::string("io_uring_setup: ") + std::strerror(errno);
  }
  ::close(static_cast<int>(fd));
  return "";
}

WeirConfig withEngine(WeirConfig c, const std::string& engine) {
  c.event_engine = engine;
  return c;
}

std::string workerLine(const std::string& engine) { return "event engine " + engine; }

// One connection through `weir`'s only listener, one echoed message.
IoStatus echoOnce(const WeirProcess& weir, const std::string& msg, std::string* err) {
  Fd fd = connectTcp(weir.addr(), seconds(5), err);
  if (!fd) {
    return IoStatus::Error;
  }
  return echoRoundTrip(fd.get(), msg, deadlineIn(seconds(5)));
}

// Whether both workers of generation `gen` logged that they wait on `engine`.
bool generationRuns(const WeirProcess& weir, size_t gen, const std::string& engine) {
  for (int slot = 0; slot < 2; ++slot) {
    const std::string who = "(gen " + std::to_string(gen) + "): worker " +
                            std::to_string(slot) + " started";
    const std::optional<std::string> line = weir.logLine(who);
    if (!line || line->find(workerLine(engine)) == std::string::npos) {
      return false;
    }
  }
  return true;
}

TEST(EventEngine, WorkersUseTheEngineTheConfigNames) {
  const std::string refusal = ioUringRefusal();
  if (!refusal.empty()) {
    GTEST_SKIP() << "this kernel gives no io_uring ring here (" << refusal
                 << "), so weir would fall back to epoll; FallsBackToEpoll covers that";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  for (const std::string engine : {"epoll", "io_uring"}) {
    WeirProcess weir(withEngine(WeirConfig::simple({echo.endpoint()}, 2), engine));
    ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip)) << engine;
    EXPECT_TRUE(waitFor([&] { return generationRuns(weir, 1, engine); }, seconds(5)))
        << engine << ":\n" << weir.logTail();
    EXPECT_EQ(weir.countLogLines("is unavailable, using epoll"), 0u) << weir.logTail();
    for (int i = 0; i < 20; ++i) {
      std::string err;
      ASSERT_EQ(echoOnce(weir, "engine " + engine + "\n", &err), IoStatus::Ok)
          << engine << ": " << err;
    }
  }
}

// kernel.io_uring_disabled = 2 (Linux 6.6+) makes io_uring_setup fail with EPERM for every
// process: weir's workers say so and serve through epoll. The knob is global, so the test
// restores it however it ends.
TEST(EventEngine, FallsBackToEpollWithTheReasonWhenTheKernelRefusesIoUring) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "writing kernel.io_uring_disabled needs root";
  }
  std::string before;
  {
    std::ifstream in(kDisabledKnob);
    if (!(in >> before)) {
      GTEST_SKIP() << "this kernel has no " << kDisabledKnob << " (Linux 6.6 added it)";
    }
  }
  struct Restore {
    std::string value;
    ~Restore() { std::ofstream(kDisabledKnob) << value << "\n"; }
  } restore{before};
  {
    std::ofstream out(kDisabledKnob);
    out << "2\n";
    ASSERT_TRUE(out.flush()) << "cannot write " << kDisabledKnob;
  }
  ASSERT_FALSE(ioUringRefusal().empty()) << "io_uring still works with the knob at 2";

  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(withEngine(WeirConfig::simple({echo.endpoint()}, 2), "io_uring"));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  EXPECT_TRUE(weir.waitForLogLines("event_engine \"io_uring\" is unavailable, using epoll: "
                                   "io_uring_setup: Operation not permitted "
                                   "(kernel.io_uring_disabled = 2)",
                                   2, seconds(5)))
      << weir.logTail();
  EXPECT_TRUE(waitFor([&] { return generationRuns(weir, 1, "epoll"); }, seconds(5)))
      << weir.logTail();
  for (int i = 0; i < 20; ++i) {
    std::string err;
    ASSERT_EQ(echoOnce(weir, "fallback\n", &err), IoStatus::Ok) << err;
  }
}

// Reloads that switch the engine back and forth under a steady load of short connections:
// each new generation waits on the engine its config names, and no connection fails.
TEST(EventEngine, ReloadsSwitchingTheEngineUnderLoadFailNoConnection) {
  const std::string refusal = ioUringRefusal();
  if (!refusal.empty()) {
    GTEST_SKIP() << "this kernel gives no io_uring ring here (" << refusal << ")";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = withEngine(WeirConfig::simple({echo.endpoint()}, 2), "epoll");
  base.global_lines.push_back("drain_timeout = \"30s\"");
  WeirProcess weir(base);
  base = weir.config();  // with the port it picked
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  LoadClient::Options opts;
  opts.target = weir.addr();
  opts.concurrency = 16;
  opts.max_rate = 2000;
  LoadClient load(opts);
  load.start();
  const Deadline began = Clock::now();
  constexpr size_t kReloads = 6;
  for (size_t i = 1; i <= kReloads; ++i) {
    std::this_thread::sleep_until(began + milliseconds(500) * i);
    const std::string engine = i % 2 == 1 ? "io_uring" : "epoll";
    ASSERT_TRUE(reload(weir, withEngine(base, engine), i)) << engine;
    // The generation the reload started runs `engine`: gen i+1's two workers say so.
    EXPECT_TRUE(waitFor([&] { return generationRuns(weir, i + 1, engine); }, seconds(5)))
        << "generation " << i + 1 << " should run " << engine << ":\n" << weir.logTail();
  }
  std::this_thread::sleep_until(began + milliseconds(500) * (kReloads + 2));
  const LoadStats stats = load.stop();
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();
  EXPECT_GE(stats.completed, 2000u) << "the load was too light to prove anything";
  EXPECT_EQ(weir.countLogLines("reload failed"), 0u);
  EXPECT_EQ(weir.countLogLines("is unavailable, using epoll"), 0u) << weir.logTail();
}

}  // namespace
}  // namespace weir::test
