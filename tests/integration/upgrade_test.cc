// SIGUSR2 binary upgrade: the master execs the binary at its own path again, the new master
// takes over the listening sockets and the steering maps, the old one drains and exits. A
// new binary that fails leaves the old master serving.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "child_fds.h"
#include "support/load_client.h"
#include "support/netns.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

namespace fs = std::filesystem;

// While alive, orphans of our descendants (the new master, once the old one exits) become our
// children, so that the test can wait for them and read their exit status.
class SubreaperScope {
public:
  SubreaperScope() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SubreaperScope() { prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

// Puts a copy of `from` at `to` atomically (as a package manager replaces a binary).
void installBinary(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".new";
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
  fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::rename(tmp, to);
}

std::optional<pid_t> readPid(const std::string& path) {
  const std::string text = readTextFile(path);
  if (text.empty()) {
    return std::nullopt;
  }
  return static_cast<pid_t>(std::stol(text));
}

// Waits for a process that became our child through the subreaper; SIGTERM/SIGKILL it if it
// does not exit by itself within `timeout` when `stop` is set. Returns the wait status.
std::optional<int> reapAdopted(pid_t pid, bool stop, Clock::duration timeout) {
  if (stop) {
    kill(pid, SIGTERM);
  }
  int status = 0;
  std::optional<int> result;
  waitFor(
      [&] {
        if (waitpid(pid, &status, WNOHANG) == pid) {
          result = status;
        }
        return result.has_value();
      },
      timeout);
  if (!result) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  return result;
}

// Runs the whole service from a copy of weir, with a pid file, in front of two echo backends.
struct UpgradeRig {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  TempDir bin{"weir-bin"};
  std::string binary = bin.file("weir");
  std::string pid_file = bin.file("weir.pid");

  WeirConfig config() const {
    WeirConfig c = WeirConfig::simple({echo0.endpoint(), echo1.endpoint()}, 2);
    c.pid_file = pid_file;
    c.global_lines.push_back("drain_timeout = \"20s\"");
    return c;
  }
};

// Sends SIGUSR2 to `old_master` and waits until a new master has written the pid file and
// the old one has exited; returns the new master's pid (0 on failure, with `why`).
pid_t upgrade(pid_t old_master, const std::string& pid_file,
              const std::function<std::optional<int>()>& wait_old_exit, std::string* why) {
  if (kill(old_master, SIGUSR2) != 0) {
    *why = "old master not running";
    return 0;
  }
  pid_t fresh = 0;
  if (!waitFor(
          [&] {
            auto p = readPid(pid_file);
            fresh = p && *p != old_master ? *p : 0;
            return fresh != 0;
          },
          seconds(15))) {
    *why = "no new pid in " + pid_file;
    return 0;
  }
  auto st = wait_old_exit();
  if (!st) {
    *why = "the old master did not exit";
    return 0;
  }
  if (!WIFEXITED(*st) || WEXITSTATUS(*st) != 0) {
    *why = "the old master ended " + describeStatus(*st);
    return 0;
  }
  return fresh;
}

// The new master takes over the old one's steering maps (the program is loaded in every mode,
// "hash" included).
class UpgradeUnderLoad : public ::testing::TestWithParam<const char*> {};

TEST_P(UpgradeUnderLoad, TwoUpgradesFailNoConnection) {
  SubreaperScope subreaper;
  UpgradeRig s;
  installBinary(kWeirBin, s.binary);
  WeirConfig cfg = s.config();
  cfg.steering = GetParam();
  // A client the access list denies keeps trying through both upgrades: each new master puts
  // the list in before its program takes the sockets over, so it never gets through.
  cfg.listeners.front().lines.push_back("deny = [\"127.0.0.4\"]");
  WeirProcess weir(cfg);
  weir.setBinary(s.binary);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const pid_t first = weir.pid();

  LoadClient::Options opts;
  opts.target = weir.addr();
  opts.concurrency = 32;
  opts.max_rate = 2500;
  LoadClient load(opts);
  load.start();
  LoadClient::Options denied_opts;
  denied_opts.target = weir.addr();
  denied_opts.source = *SockAddr::from("127.0.0.4", 0);
  denied_opts.concurrency = 4;
  denied_opts.max_rate = 200;
  LoadClient denied(denied_opts);
  denied.start();
  const Deadline began = Clock::now();
  std::this_thread::sleep_for(seconds(1));

  // First upgrade: the master the test started hands over to a new one.
  installBinary(kWeirBin, s.binary);
  std::string why;
  const pid_t second = upgrade(first, s.pid_file, [&] { return weir.waitExit(seconds(25)); },
                               &why);
  ASSERT_NE(second, 0) << why;
  EXPECT_FALSE(fs::exists(s.pid_file + ".oldbin")) << "the old master left its .oldbin file";
  std::this_thread::sleep_for(seconds(1));

  // Second upgrade: a master started by an upgrade upgrades again (maps passed on twice),
  // and the new master reads a config with one more worker (it grows the socket groups).
  WeirConfig three = weir.config();
  three.workers = "3";
  weir.writeConfig(three);
  installBinary(kWeirBin, s.binary);
  const pid_t third = upgrade(
      second, s.pid_file, [&] { return reapAdopted(second, false, seconds(25)); }, &why);
  ASSERT_NE(third, 0) << why;
  std::this_thread::sleep_for(seconds(1));

  const LoadStats stats = load.stop();
  const LoadStats refused = denied.stop();
  const double secs = std::chrono::duration<double>(Clock::now() - began).count();
  std::printf("upgrade under load (steering %s): %.1f s, 2 upgrades, %.0f connections/s; %s\n",
              GetParam(), secs, stats.completed / secs, stats.summary().c_str());
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();
  EXPECT_GE(stats.completed, 3000u);
  std::printf("denied client: %s\n", refused.summary().c_str());
  EXPECT_EQ(refused.completed + refused.incomplete + refused.timeouts, 0u)
      << "the denied client got through: " << refused.summary();
  EXPECT_GT(refused.connect_errors + refused.resets, 100u) << refused.summary();
  if (canLoadBpf()) {  // the program is loaded in every mode, "hash" included
    EXPECT_EQ(weir.countLogLines("maps taken over from the old master"), 2u)
        << "each new master should steer with the old master's maps";
  }

  // The third master serves with its own workers and stops cleanly.
  std::vector<pid_t> workers;
  EXPECT_TRUE(waitFor(
      [&] {
        workers = childPids(third);
        return workers.size() == 4;  // three workers and the health checker
      },
      seconds(5)))
      << "children of the new master: " << workers.size();
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "after two upgrades\n", deadlineIn(seconds(5))),
            IoStatus::Ok);
  fd.reset();
  auto st = reapAdopted(third, true, seconds(10));
  ASSERT_TRUE(st.has_value()) << "the new master ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  for (pid_t w : workers) {
    EXPECT_TRUE(waitFor([&] { return !processAlive(w); }, seconds(5))) << "worker " << w;
    reapAdopted(w, false, milliseconds(100));
  }
}

INSTANTIATE_TEST_SUITE_P(Steering, UpgradeUnderLoad,
                         ::testing::Values("least-loaded", "hash"), [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// A master started by an upgrade holds the write end of the report pipe to the old master
// (until it is ready) and the steering maps it inherited; the children it forks hold neither,
// nor any other fd of the master's (see child_fds.h). "hash" has no maps: only the pipe.
class UpgradeChildFds : public ::testing::TestWithParam<const char*> {};

TEST_P(UpgradeChildFds, ChildrenOfTheNewMasterHoldNoFdOfTheMasters) {
  SubreaperScope subreaper;
  UpgradeRig s;
  installBinary(kWeirBin, s.binary);
  WeirConfig cfg = s.config();
  cfg.steering = GetParam();
  WeirProcess weir(cfg);
  weir.setBinary(s.binary);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  installBinary(kWeirBin, s.binary);
  std::string why;
  const pid_t fresh =
      upgrade(weir.pid(), s.pid_file, [&] { return weir.waitExit(seconds(25)); }, &why);
  ASSERT_NE(fresh, 0) << why;
  if (geteuid() == 0 && std::string(GetParam()) != "hash") {
    EXPECT_EQ(weir.countLogLines("maps taken over from the old master"), 1u)
        << "the new master should have inherited the steering maps\n" << weir.logTail();
  }
  // Two workers of generation 2 and the health checker, each past its start-up.
  std::vector<pid_t> children;
  ASSERT_TRUE(waitFor(
      [&] {
        children = childPids(fresh);
        return children.size() == 3 &&
               std::all_of(children.begin(), children.end(), [](pid_t c) {
                 const std::string title = processCmdline(c);
                 return title.find("(gen 2)") != std::string::npos ||
                        title.find("health checker") != std::string::npos;
               });
      },
      seconds(10)))
      << "children of the new master: " << children.size();
  for (pid_t child : children) {
    const std::vector<uint16_t> ports =
        processCmdline(child).find("health checker") != std::string::npos
            ? std::vector<uint16_t>{}
            : std::vector<uint16_t>{weir.port()};
    waitFor([&] { return static_cast<bool>(holdsOnlyItsOwnFds(child, ports)); }, seconds(3));
    EXPECT_TRUE(holdsOnlyItsOwnFds(child, ports));
  }
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "after the upgrade\n", deadlineIn(seconds(5))),
            IoStatus::Ok);
  fd.reset();
  auto st = reapAdopted(fresh, true, seconds(10));
  ASSERT_TRUE(st.has_value()) << "the new master ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  for (pid_t c : children) {
    EXPECT_TRUE(waitFor([&] { return !processAlive(c); }, seconds(5))) << "child " << c;
    reapAdopted(c, false, milliseconds(100));
  }
}

INSTANTIATE_TEST_SUITE_P(Steering, UpgradeChildFds, ::testing::Values("least-loaded", "hash"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Upgrade, BrokenOrMissingBinaryLeavesTheOldMasterServing) {
  UpgradeRig s;
  installBinary(kWeirBin, s.binary);
  WeirProcess weir(s.config());
  weir.setBinary(s.binary);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);
  Fd held = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(echoRoundTrip(held.get(), "before\n", deadlineIn(seconds(5))), IoStatus::Ok);

  // A "new binary" that dies at once.
  {
    TempDir scratch("weir-broken");
    const std::string script = scratch.write("weir", "#!/bin/sh\necho 'weir: broken build' >&2\n"
                                                     "exit 3\n");
    installBinary(script, s.binary);
  }
  ASSERT_TRUE(weir.signal(SIGUSR2));
  ASSERT_TRUE(weir.waitForLogLines("binary upgrade failed", 1, seconds(10))) << weir.logTail();
  EXPECT_NE(weir.logLine("binary upgrade failed")->find("exited with status 3"),
            std::string::npos)
      << *weir.logLine("binary upgrade failed");
  // A binary that is not there at all.
  fs::remove(s.binary);
  ASSERT_TRUE(weir.signal(SIGUSR2));
  ASSERT_TRUE(weir.waitForLogLines("binary upgrade failed", 2, seconds(10)));
  EXPECT_TRUE(weir.logLine("No such file or directory").has_value()) << weir.logTail();

  // Nothing changed: same master and workers, pid file back, connections old and new work.
  EXPECT_TRUE(weir.running());
  EXPECT_EQ(readPid(s.pid_file), weir.pid());
  EXPECT_FALSE(fs::exists(s.pid_file + ".oldbin"));
  EXPECT_EQ(weir.workerPids(), workers);
  EXPECT_EQ(echoRoundTrip(held.get(), "after\n", deadlineIn(seconds(5))), IoStatus::Ok);
  LoadClient::Options opts;
  opts.target = weir.addr();
  opts.concurrency = 8;
  opts.max_rate = 1000;
  LoadClient load(opts);
  load.start();
  std::this_thread::sleep_for(milliseconds(500));
  const LoadStats stats = load.stop();
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();
  EXPECT_GT(stats.completed, 100u);
}

// nginx's manual procedure sent to weir: USR2, then WINCH and QUIT to the old master. weir's
// old master does steps 2 and 3 by itself once the new master is ready (it drains its workers
// and exits); the procedure's signals, sent after that point, change nothing (docs/upgrade.md).
TEST(Upgrade, NginxManualProcedureAfterTheHandOff) {
  SubreaperScope subreaper;
  UpgradeRig s;
  installBinary(kWeirBin, s.binary);
  WeirProcess weir(s.config());
  weir.setBinary(s.binary);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const pid_t old_master = weir.pid();
  Fd held = connectTcp(weir.addr(), seconds(5));  // keeps the old master draining
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(echoRoundTrip(held.get(), "before\n", deadlineIn(seconds(5))), IoStatus::Ok);

  installBinary(kWeirBin, s.binary);
  ASSERT_TRUE(weir.signal(SIGUSR2));
  ASSERT_TRUE(weir.waitForLogLines("draining this master's workers, then exiting", 1,
                                   seconds(15)))
      << weir.logTail();
  const std::optional<pid_t> fresh = readPid(s.pid_file);
  ASSERT_TRUE(fresh.has_value() && *fresh != old_master);
  EXPECT_EQ(readPid(s.pid_file + ".oldbin"), old_master);

  ASSERT_TRUE(weir.signal(SIGWINCH));
  ASSERT_TRUE(weir.waitForLogLines("SIGWINCH ignored: stopping", 1, seconds(5)));
  ASSERT_TRUE(weir.signal(SIGQUIT));
  ASSERT_TRUE(weir.waitForLogLines("SIGQUIT received", 1, seconds(5)));
  // The old worker still finishes what it holds; then the old master exits.
  EXPECT_EQ(echoRoundTrip(held.get(), "after\n", deadlineIn(seconds(5))), IoStatus::Ok);
  held.reset();
  auto st = weir.waitExit(seconds(10));
  ASSERT_TRUE(st.has_value()) << "the old master did not exit";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_FALSE(fs::exists(s.pid_file + ".oldbin"));

  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "new master\n", deadlineIn(seconds(5))), IoStatus::Ok);
  fd.reset();
  std::vector<pid_t> children = childPids(*fresh);
  auto end = reapAdopted(*fresh, true, seconds(10));
  ASSERT_TRUE(end.has_value()) << "the new master ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*end) && WEXITSTATUS(*end) == 0) << describeStatus(*end);
  for (pid_t c : children) {
    EXPECT_TRUE(waitFor([&] { return !processAlive(c); }, seconds(5))) << "child " << c;
    reapAdopted(c, false, milliseconds(100));
  }
}

// A backend that is down stays down through a binary upgrade: the old master hands its shm
// region over and the new master carries the health state (a fresh start would mark it up,
// and the next checks would take it down again, logging it twice).
TEST(Upgrade, HealthStateCarriesOver) {
  SubreaperScope subreaper;
  UpgradeRig s;
  installBinary(kWeirBin, s.binary);
  WeirConfig cfg = s.config();
  const std::string dead = "127.0.0.1:" + std::to_string(pickFreePort());  // nothing listens
  cfg.pools[0].backends.push_back({dead, 1});
  cfg.pools[0].health = "kind = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"50ms\"\nfall = 2\n";
  cfg.log_level = "debug";  // every check is logged: the test counts the new master's
  WeirProcess weir(cfg);
  weir.setBinary(s.binary);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  const pid_t first = weir.pid();
  const std::string down_line = "backend " + dead + " is down";
  ASSERT_TRUE(weir.waitForLogLines(down_line, 1, seconds(5))) << weir.logTail();

  std::string why;
  const pid_t second = upgrade(first, s.pid_file, [&] { return weir.waitExit(seconds(25)); },
                               &why);
  ASSERT_NE(second, 0) << why;
  EXPECT_EQ(weir.countLogLines("health state of 3 backends carried over from the old master"),
            1u)
      << weir.logTail();
  // Only the new master checks now: let it check the dead backend more than `fall` times.
  const std::string check_line = "check of " + dead + " in pool back:";
  const size_t checks = weir.countLogLines(check_line);
  EXPECT_TRUE(weir.waitForLogLines(check_line, checks + 4, seconds(5)));
  EXPECT_EQ(weir.countLogLines(down_line), 1u)
      << "the backend was up again after the upgrade\n" << weir.logTail();
  EXPECT_EQ(weir.countLogLines("backend " + dead + " is up"), 0u);
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "after\n", deadlineIn(seconds(5))), IoStatus::Ok);
  fd.reset();
  auto st = reapAdopted(second, true, seconds(10));
  ASSERT_TRUE(st.has_value()) << "the new master ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
}

// listeners.NAME.announce through an upgrade: the new master takes the old one's VIP route
// over and the old one leaves it, so the route never blinks (the routers would otherwise
// withdraw the node for a moment). `ip monitor route` in the namespace sees every change.
TEST(Upgrade, AnnouncedRoutesStayThroughTheUpgrade) {
  std::string why;
  if (!canUseNetns(&why)) {
    GTEST_SKIP() << why;
  }
  SubreaperScope subreaper;
  NetnsTopology topo;
  const std::string ns = topo.addNamespace("node");
  topo.addAddress(ns, "lo", "10.201.0.1/32");
  TestServer backend = startTestServer(kTestsrvBin, "echo", {}, "127.0.0.1", 0, ns);
  TempDir bin("weir-bin");
  installBinary(kWeirBin, bin.file("weir"));
  WeirConfig cfg;
  ListenerSpec vip{"vip", "back"};
  vip.host = "10.201.0.1";
  vip.lines = {"announce = true"};
  cfg.listeners = {vip};
  cfg.pools = {{"back", {{backend.endpoint()}}}};
  cfg.pid_file = bin.file("weir.pid");
  WeirProcess weir(cfg, {ns, ""});
  weir.setBinary(bin.file("weir"));
  ASSERT_TRUE(weir.start());
  auto routes = [&] {
    return runInNetns(ns, ipBinary(), {"route", "show", "table", "4747", "proto", "87"},
                      seconds(5)).out;
  };
  ASSERT_TRUE(waitFor([&] { return routes().find("10.201.0.1 dev lo") == 0; }, seconds(5)))
      << routes() << weir.logTail();

  Process::Options opts;
  opts.netns = ns;
  opts.out = Process::Output::File;
  opts.out_path = bin.file("monitor.out");
  Process monitor = Process::spawn(ipBinary(), {"monitor", "route"}, opts);
  // The monitor listens once it reports a change made after it started.
  ASSERT_TRUE(waitFor(
      [&] {
        runInNetns(ns, ipBinary(), {"route", "replace", "10.201.9.9/32", "dev", "lo", "table",
                                    "4748"}, seconds(5));
        return readTextFile(opts.out_path).find("10.201.9.9") != std::string::npos;
      },
      seconds(5)));

  // A connection held through the old master keeps it draining after the hand-off, so that
  // the test sees what it does with the route meanwhile.
  std::string err;
  Fd held = connectTcpInNetns(ns, weir.addr("vip"), seconds(2), &err);
  ASSERT_TRUE(held) << err;
  ASSERT_EQ(echoRoundTrip(held.get(), "old\n", deadlineIn(seconds(2))), IoStatus::Ok);
  const pid_t first = weir.pid();
  ASSERT_TRUE(weir.signal(SIGUSR2));
  ASSERT_TRUE(weir.waitForLogLines("draining this master's workers, then exiting", 1,
                                   seconds(15)))
      << weir.logTail();
  const auto second = readPid(cfg.pid_file);
  ASSERT_TRUE(second.has_value() && *second != first);
  // The new master finds the route once it is ready (it reports ready to the old one first).
  EXPECT_TRUE(weir.waitForLogLines("table 4747 protocol 87 already holds 1 route(s)", 1,
                                   seconds(5)))
      << weir.logTail();
  // Several of the old master's route syncs (every 200 ms) while it drains.
  const auto t = Clock::now() + seconds(1);
  ASSERT_TRUE(waitFor([&] { return Clock::now() >= t; }, seconds(2)));
  EXPECT_FALSE(weir.waitExit(milliseconds(1)).has_value()) << "the old master should drain";
  held.reset();
  const auto old_exit = weir.waitExit(seconds(25));
  ASSERT_TRUE(old_exit.has_value());
  EXPECT_TRUE(WIFEXITED(*old_exit) && WEXITSTATUS(*old_exit) == 0) << describeStatus(*old_exit);
  EXPECT_EQ(routes().find("10.201.0.1 dev lo"), 0u) << routes();
  monitor.stop();
  const std::string changes = readTextFile(opts.out_path);
  EXPECT_EQ(changes.find("Deleted 10.201.0.1"), std::string::npos) << changes;

  // The new master owns the route now: its fast stop withdraws it.
  auto st = reapAdopted(*second, true, seconds(10));
  ASSERT_TRUE(st.has_value()) << "the new master ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
  EXPECT_EQ(routes().find("10.201.0.1"), std::string::npos) << routes();
}

}  // namespace
}  // namespace weir::test
