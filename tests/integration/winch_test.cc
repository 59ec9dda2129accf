// SIGWINCH, as nginx has it: the master stops its workers gracefully but stays up with its
// listening sockets; SIGHUP starts workers again, SIGQUIT stops the master.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// Two workers in front of an echo backend, with a pid file.
struct WinchRig {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir run{"weir-run"};

  WeirConfig config() const {
    WeirConfig c = WeirConfig::simple({echo.endpoint()}, 2);
    c.pid_file = run.file("weir.pid");
    c.global_lines.push_back("drain_timeout = \"60s\"");
    return c;
  }
};

TEST(Winch, StopsTheWorkersKeepsTheMasterAndHupStartsThemAgain) {
  WinchRig rig;
  const WeirConfig cfg = rig.config();
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  Fd held = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(echoRoundTrip(held.get(), "before winch\n", deadlineIn(seconds(5))), IoStatus::Ok);

  ASSERT_TRUE(weir.signal(SIGWINCH));
  ASSERT_TRUE(weir.waitForLogLines("SIGWINCH: stopping the workers", 1, seconds(5)));
  // Graceful: the open connection still works, and its worker stays for it.
  EXPECT_EQ(echoRoundTrip(held.get(), "during winch\n", deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_FALSE(weir.workerPids().empty()) << "the workers did not wait for the open connection";
  ASSERT_EQ(::shutdown(held.get(), SHUT_WR), 0);
  EXPECT_EQ(readUntilClosed(held.get(), deadlineIn(seconds(5))), IoStatus::Eof);
  held.reset();

  // Then every child is gone (the health checker too), none is respawned, and the master
  // stays, with its pid file.
  EXPECT_TRUE(waitFor([&] { return childPids(weir.pid()).empty(); }, seconds(10)))
      << childPids(weir.pid()).size() << " children left after SIGWINCH";
  ASSERT_TRUE(weir.running()) << "the master exited after SIGWINCH";
  EXPECT_EQ(readTextFile(cfg.pid_file), std::to_string(weir.pid()) + "\n");

  // The listening sockets stay open: a connection made now waits in the queue ...
  Fd queued = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(queued.valid()) << "the listening socket is gone after SIGWINCH";
  ASSERT_EQ(writeAll(queued.get(), "queued\n", deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_TRUE(childPids(weir.pid()).empty()) << "a child was started without SIGHUP";

  // ... and SIGHUP starts a new generation, which serves it.
  ASSERT_TRUE(weir.signal(SIGHUP));
  EXPECT_EQ(weir.waitForGenerationWorkers(2, 2).size(), 2u) << "no workers after SIGHUP";
  char echoed[7] = {};
  EXPECT_EQ(readExact(queued.get(), echoed, sizeof(echoed), deadlineIn(seconds(5))), IoStatus::Ok)
      << "the connection queued while the workers were stopped was not served";
  EXPECT_EQ(std::string(echoed, sizeof(echoed)), "queued\n");
  Fd fresh = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fresh.valid());
  EXPECT_EQ(echoRoundTrip(fresh.get(), "after hup\n", deadlineIn(seconds(5))), IoStatus::Ok);
  fresh.reset();
  queued.reset();

  ASSERT_TRUE(weir.signal(SIGQUIT));
  auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value()) << "the master did not exit on SIGQUIT";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_FALSE(std::filesystem::exists(cfg.pid_file)) << "the pid file outlived the master";
}

// A master without workers is not done: it waits for a signal, and SIGQUIT ends it cleanly.
TEST(Winch, QuitEndsAMasterWithoutWorkers) {
  WinchRig rig;
  const WeirConfig cfg = rig.config();
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  ASSERT_TRUE(weir.signal(SIGWINCH));
  ASSERT_TRUE(waitFor([&] { return childPids(weir.pid()).empty(); }, seconds(10)))
      << "children left after SIGWINCH";
  EXPECT_FALSE(weir.waitExit(milliseconds(500)).has_value())
      << "the master exited once its workers were gone";
  // A second SIGWINCH changes nothing.
  ASSERT_TRUE(weir.signal(SIGWINCH));
  ASSERT_TRUE(weir.waitForLogLines("the workers are already stopped", 1, seconds(5)));

  ASSERT_TRUE(weir.signal(SIGQUIT));
  auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value()) << "the master did not exit on SIGQUIT";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_FALSE(std::filesystem::exists(cfg.pid_file)) << "the pid file outlived the master";
}

// A reload that fails while the workers are stopped leaves them stopped, and says so.
TEST(Winch, AFailedReloadKeepsTheWorkersStopped) {
  WinchRig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  ASSERT_TRUE(weir.signal(SIGWINCH));
  ASSERT_TRUE(waitFor([&] { return childPids(weir.pid()).empty(); }, seconds(10)));
  weir.dir().write("weir.toml", "[global]\nworkers = \"many\"\n");
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("the workers stay stopped (SIGWINCH)", 1, seconds(5)))
      << weir.logTail();
  EXPECT_TRUE(childPids(weir.pid()).empty());
  EXPECT_TRUE(weir.running());
}

}  // namespace
}  // namespace weir::test
