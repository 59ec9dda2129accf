// listeners.NAME.announce: the master keeps a host route to each announced VIP in its
// announce table while it can serve the VIP, for a routing daemon to announce (the daemon
// itself is in ecmp_test.cc). Here weir runs alone in a network namespace of the test's own,
// and the test reads the table with `ip route show`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/deadline.h"
#include "support/net_io.h"
#include "support/netns.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr const char* kVip = "10.201.0.1";
constexpr const char* kVip6 = "fd00:201::1";

class Announce : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!canUseNetns(&why)) {
      GTEST_SKIP() << why;
    }
    ns_ = topo_.addNamespace("node");
    topo_.addAddress(ns_, "lo", std::string(kVip) + "/32");
    topo_.addAddress(ns_, "lo", std::string(kVip6) + "/128");
    backend_ = startTestServer(kTestsrvBin, "echo", {}, "127.0.0.1", 0, ns_);
  }

  // A listener on each VIP that announces them, one on 127.0.0.1 that does not, and a pool
  // checked every 100 ms.
  WeirConfig config(const std::string& withdraw_delay = "2s") const {
    WeirConfig c;
    ListenerSpec v4{"vip", "back"};
    v4.host = kVip;
    v4.lines = {"announce = true"};
    ListenerSpec v6{"vip6", "back"};
    v6.host = kVip6;
    v6.lines = {"announce = true"};
    ListenerSpec local{"local", "back"};
    c.listeners = {v4, v6, local};
    PoolSpec p;
    p.name = "back";
    p.backends = {{backend_.endpoint()}};
    p.health = "kind = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"50ms\"\nfall = 2\nrise = 1\n";
    c.pools = {p};
    c.global_lines = {"withdraw_delay = \"" + withdraw_delay + "\""};
    return c;
  }

  // The host routes of weir's table (4747, protocol 87) in the namespace, both families: the
  // destinations `ip route show` prints first on each line.
  std::vector<std::string> routes() const {
    std::vector<std::string> out;
    for (const char* family : {"-4", "-6"}) {
      RunResult r = runInNetns(ns_, ipBinary(),
                               {family, "route", "show", "table", "4747", "proto", "87"},
                               seconds(5));
      if (r.err.find("FIB table does not exist") != std::string::npos) {
        continue;  // the kernel makes a table with its first route: none so far
      }
      EXPECT_EQ(r.exitCode(), 0) << r.err;
      size_t at = 0;
      while (at < r.out.size()) {
        size_t end = r.out.find('\n', at);
        end = end == std::string::npos ? r.out.size() : end;
        const std::string line = r.out.substr(at, end - at);
        if (!line.empty()) {
          out.push_back(line.substr(0, line.find(' ')));
        }
        at = end + 1;
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> both() const { return {kVip, kVip6}; }
  bool waitForRoutes(const std::vector<std::string>& want, Clock::duration timeout) const {
    return waitFor([&] { return routes() == want; }, timeout);
  }

  void ipRoute(const std::vector<std::string>& args) const {
    std::vector<std::string> all = {"route"};
    all.insert(all.end(), args.begin(), args.end());
    RunResult r = runInNetns(ns_, ipBinary(), all, seconds(5));
    ASSERT_EQ(r.exitCode(), 0) << r.err;
  }

  // A connection to `listener` that echoes a message.
  ::testing::AssertionResult echoes(const WeirProcess& weir, const std::string& listener) const {
    std::string err;
    Fd fd = connectTcpInNetns(ns_, weir.addr(listener), seconds(2), &err);
    if (!fd.valid()) {
      return ::testing::AssertionFailure() << "connect to " << listener << ": " << err;
    }
    if (echoRoundTrip(fd.get(), "hello", deadlineIn(seconds(2))) != IoStatus::Ok) {
      return ::testing::AssertionFailure() << "no echo through " << listener;
    }
    return ::testing::AssertionSuccess();
  }

  NetnsTopology topo_;
  std::string ns_;
  TestServer backend_;
};

TEST_F(Announce, VipRoutesFollowServingAndThePoolsHealth) {
  // A route a master that did not stop cleanly left behind, for an address no longer announced.
  ipRoute({"replace", "10.201.0.99/32", "dev", "lo", "table", "4747", "proto", "87"});
  WeirConfig cfg = config();
  const std::string metrics =
      "127.0.0.1:" + std::to_string(pickFreePortInNetns(ns_, "127.0.0.1"));
  cfg.global_lines.push_back("metrics = \"" + metrics + "\"");
  WeirProcess weir(cfg, {ns_, ""});
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(waitForRoutes(both(), seconds(5)))
      << "routes: " << ::testing::PrintToString(routes()) << "\n" << weir.logTail();
  EXPECT_TRUE(weir.logLine("announce: added 10.201.0.1/32 to table 4747 (listener vip)"))
      << weir.logTail();
  // The gauge, for listeners that announce only.
  auto announced = [&] {
    RunResult r = runInNetns(ns_, findProgram("curl"), {"-sS", "http://" + metrics + "/metrics"},
                             seconds(5));
    std::string out;
    for (const char* l : {"vip", "vip6", "local"}) {
      const std::string key = "weir_listener_announced{listener=\"" + std::string(l) + "\"} ";
      const size_t at = r.out.find(key);
      out += std::string(l) + "=" +
             (at == std::string::npos ? "-" : r.out.substr(at + key.size(), 1)) + " ";
    }
    return out;
  };
  EXPECT_EQ(announced(), "vip=1 vip6=1 local=- ");
  EXPECT_TRUE(weir.logLine("announce: withdrew 10.201.0.99/32")) << weir.logTail();

  // Every backend of the pool down: nothing to send the routers' traffic to.
  const uint16_t port = backend_.port;
  backend_.process.stop();
  ASSERT_TRUE(waitForRoutes({}, seconds(3)))
      << "routes: " << ::testing::PrintToString(routes()) << "\n" << weir.logTail();
  EXPECT_TRUE(weir.logLine("no backend up in pool back")) << weir.logTail();
  EXPECT_EQ(announced(), "vip=0 vip6=0 local=- ");

  // Back up: announced again.
  backend_ = startTestServer(kTestsrvBin, "echo", {}, "127.0.0.1", port, ns_);
  ASSERT_TRUE(waitForRoutes(both(), seconds(3)))
      << "routes: " << ::testing::PrintToString(routes()) << "\n" << weir.logTail();
  EXPECT_TRUE(echoes(weir, "vip"));

  // A fast stop withdraws before it closes anything.
  weir.stop();
  EXPECT_EQ(routes(), std::vector<std::string>{});
}

TEST_F(Announce, GracefulStopWithdrawsFirstAndServesThroughTheDelay) {
  WeirProcess weir(config("2s"), {ns_, ""});
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(waitForRoutes(both(), seconds(5))) << weir.logTail();

  const auto quit_at = Clock::now();
  ASSERT_TRUE(weir.signal(SIGQUIT));
  ASSERT_TRUE(waitForRoutes({}, seconds(1))) << "the routes should go at once\n"
                                             << weir.logTail();
  // Routers still converging send new connections here: they are served as before.
  int served = 0;
  while (Clock::now() < quit_at + milliseconds(1500)) {
    ASSERT_TRUE(echoes(weir, "vip")) << "after " << served << " connections";
    ASSERT_TRUE(echoes(weir, "vip6"));
    ++served;
  }
  EXPECT_GT(served, 5);
  EXPECT_FALSE(weir.waitExit(milliseconds(200)).has_value()) << "stopped before withdraw_delay";
  // Then the drain: nothing is open, so the master exits soon after the delay.
  const auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value()) << weir.logTail();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_GE(Clock::now() - quit_at, milliseconds(2000));
  EXPECT_TRUE(weir.logLine("still accepting new connections for 2s (withdraw_delay)"))
      << weir.logTail();
  EXPECT_EQ(routes(), std::vector<std::string>{});
}

TEST_F(Announce, ReloadsWinchAndRemovalsByHand) {
  WeirProcess weir(config(), {ns_, ""});
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(waitForRoutes(both(), seconds(5))) << weir.logTail();
  WeirConfig next = weir.config();
  next.listeners[1].lines = {"announce = false"};
  weir.writeConfig(next);
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(waitForRoutes({kVip}, seconds(5)))
      << "routes: " << ::testing::PrintToString(routes()) << "\n" << weir.logTail();
  next.listeners[1].lines = {"announce = true"};
  weir.writeConfig(next);
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(waitForRoutes(both(), seconds(5))) << weir.logTail();
  EXPECT_TRUE(echoes(weir, "vip6"));

  // SIGWINCH stops the workers: nothing serves, nothing is announced; SIGHUP starts them.
  ASSERT_TRUE(weir.signal(SIGWINCH));
  ASSERT_TRUE(waitForRoutes({}, seconds(5))) << weir.logTail();
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(waitForRoutes(both(), seconds(5))) << weir.logTail();

  // A route removed behind weir's back comes back at the next check (every 5 s).
  ipRoute({"del", std::string(kVip) + "/32", "table", "4747", "proto", "87"});
  ASSERT_TRUE(waitForRoutes(both(), seconds(8))) << weir.logTail();
  EXPECT_TRUE(weir.logLine("was removed from table 4747 by someone else")) << weir.logTail();
}

// A killed master cannot withdraw; `weir -w` (weir.service's ExecStopPost) does it for it.
TEST_F(Announce, WeirDashWRemovesTheRoutesOfAKilledMaster) {
  WeirProcess weir(config(), {ns_, ""});
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(waitForRoutes(both(), seconds(5))) << weir.logTail();
  ASSERT_TRUE(weir.signal(SIGKILL));
  ASSERT_TRUE(weir.waitExit(seconds(5)).has_value());
  EXPECT_EQ(routes(), both()) << "a killed master's routes stay behind";
  RunResult r = runInNetns(ns_, kWeirBin, {"-w", "-c", weir.configPath()}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_NE(r.err.find("weir: withdrew 10.201.0.1/32 from table 4747"), std::string::npos)
      << r.err;
  EXPECT_EQ(routes(), std::vector<std::string>{});
  // Nothing left: it succeeds and says nothing.
  r = runInNetns(ns_, kWeirBin, {"-w", "-c", weir.configPath()}, seconds(10));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_EQ(r.err, "");
}

// A root master without CAP_NET_ADMIN cannot change routes: it says so and serves anyway.
TEST_F(Announce, NoPermissionIsLoggedAndWeirServes) {
  const std::string setpriv = findProgram("setpriv");
  ASSERT_FALSE(setpriv.empty()) << "setpriv (util-linux) is missing";
  WeirProcess weir(config(), {ns_, ""});
  weir.setWrapper({setpriv, "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"});
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(weir.waitForLogLines("announce: ip route replace", 1, seconds(5))) << weir.logTail();
  EXPECT_TRUE(weir.logLine("Operation not permitted")) << weir.logTail();
  EXPECT_EQ(routes(), std::vector<std::string>{});
  EXPECT_TRUE(echoes(weir, "vip"));
}

}  // namespace
}  // namespace weir::test
