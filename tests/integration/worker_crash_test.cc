// A worker killed with SIGKILL is respawned; the other worker's connections never notice.
#include <gtest/gtest.h>
#include <signal.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// Opens `n` connections and proves each is proxied with a round trip.
::testing::AssertionResult openEchoing(const WeirProcess& weir, size_t n,
                                       std::vector<Fd>* conns) {
  for (size_t i = 0; i < n; ++i) {
    std::string err;
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    if (!fd) {
      return ::testing::AssertionFailure() << err;
    }
    const IoStatus s = echoRoundTrip(fd.get(), "hello " + std::to_string(conns->size()) + "\n",
                                     deadlineIn(seconds(5)));
    if (s != IoStatus::Ok) {
      return ::testing::AssertionFailure()
             << "round trip on connection " << conns->size() << ": " << toString(s);
    }
    conns->push_back(std::move(fd));
  }
  return ::testing::AssertionSuccess();
}

TEST(WorkerCrash, KilledWorkerIsRespawnedAndOthersKeepFlowing) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}, 2));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);

  // Open long-lived connections until both workers hold some (bounded: 20, then up to 200).
  std::vector<Fd> conns;
  std::vector<pid_t> owners;
  const auto bothBusy = [&] {
    owners = connectionOwners(weir.port(), workers, conns);
    const bool all_known = std::count(owners.begin(), owners.end(), 0) == 0;
    return all_known && std::count(owners.begin(), owners.end(), workers[0]) > 0 &&
           std::count(owners.begin(), owners.end(), workers[1]) > 0;
  };
  ASSERT_TRUE(openEchoing(weir, 20, &conns));
  while (!bothBusy() && conns.size() < 200) {
    ASSERT_TRUE(openEchoing(weir, 10, &conns));
  }
  ASSERT_TRUE(bothBusy()) << "after " << conns.size()
                          << " connections one worker still holds none (or some are unowned)";

  const pid_t victim = workers[0];
  const pid_t survivor = workers[1];
  std::vector<size_t> on_victim;
  std::vector<size_t> on_survivor;
  for (size_t i = 0; i < conns.size(); ++i) {
    (owners[i] == victim ? on_victim : on_survivor).push_back(i);
  }
  std::printf("%zu connections: %zu on worker %d (killed), %zu on worker %d\n", conns.size(),
              on_victim.size(), victim, on_survivor.size(), survivor);

  ASSERT_EQ(kill(victim, SIGKILL), 0);

  // The master replaces it: two workers again, the survivor plus a new pid.
  std::vector<pid_t> now;
  ASSERT_TRUE(waitFor(
      [&] {
        now = weir.workerPids();
        return now.size() == 2 && std::find(now.begin(), now.end(), victim) == now.end();
      },
      seconds(5)))
      << "no replacement worker within 5 s; workers now: " << now.size();
  ASSERT_NE(std::find(now.begin(), now.end(), survivor), now.end()) << "the survivor changed";
  const pid_t replacement = now[0] == survivor ? now[1] : now[0];
  EXPECT_TRUE(weir.running());

  // Every connection of the surviving worker still echoes.
  for (size_t i : on_survivor) {
    EXPECT_EQ(echoRoundTrip(conns[i].get(), "after crash " + std::to_string(i) + "\n",
                            deadlineIn(seconds(5))),
              IoStatus::Ok)
        << "connection " << i << " on the surviving worker broke";
  }
  // The killed worker's connections were closed by the kernel when it died.
  for (size_t i : on_victim) {
    const IoStatus s = readUntilClosed(conns[i].get(), deadlineIn(seconds(5)));
    EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset)
        << "connection " << i << " of the killed worker: " << toString(s);
  }

  // New connections are served, including by the replacement worker.
  std::vector<Fd> fresh;
  bool replacement_served = false;
  for (int round = 0; round < 20 && !replacement_served; ++round) {
    ASSERT_TRUE(openEchoing(weir, 5, &fresh)) << "new connections after the crash";
    const auto fresh_owners = connectionOwners(weir.port(), now, fresh);
    replacement_served =
        std::find(fresh_owners.begin(), fresh_owners.end(), replacement) != fresh_owners.end();
  }
  EXPECT_TRUE(replacement_served) << "the replacement worker " << replacement
                                  << " served none of " << fresh.size() << " new connections";
}

// The pid of the worker whose title names `slot` (in any generation), or 0.
pid_t workerInSlot(WeirProcess& weir, unsigned slot) {
  for (pid_t p : weir.workerPids()) {
    if (processCmdline(p).rfind("weir: worker " + std::to_string(slot) + " ", 0) == 0) {
      return p;
    }
  }
  return 0;
}

// A backend at max_connections whose connections partly die with a worker: the dead worker's
// connections stop counting at once, so exactly that many new ones are accepted, and no more.
TEST(WorkerCrash, AKilledWorkersConnectionsStopCountingAtOnce) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.pools[0].backends[0].max_connections = 4;
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  const std::vector<pid_t> workers = weir.waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);
  // The readiness check's connection holds one of the four until its worker closes it.
  ASSERT_TRUE(waitFor(
      [&] {
        const std::vector<size_t> held = connectionsPerProcess(weir.port(), workers);
        return std::all_of(held.begin(), held.end(), [](size_t n) { return n == 0; });
      },
      seconds(5), milliseconds(10)));

  std::vector<Fd> held;
  ASSERT_TRUE(openEchoing(weir, 4, &held));
  // The backend is full: a fifth client is closed without a byte.
  {
    Fd fifth = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fifth.valid());
    EXPECT_NE(echoRoundTrip(fifth.get(), "fifth\n", deadlineIn(seconds(5))), IoStatus::Ok)
        << "max_connections = 4 let a fifth connection through";
  }
  std::vector<pid_t> owners;
  ASSERT_TRUE(waitFor(
      [&] {
        owners = connectionOwners(weir.port(), workers, held);
        return std::count(owners.begin(), owners.end(), 0) == 0;
      },
      seconds(5)));
  const pid_t victim = std::count(owners.begin(), owners.end(), workers[0]) > 0 ? workers[0]
                                                                               : workers[1];
  const auto lost = static_cast<size_t>(std::count(owners.begin(), owners.end(), victim));
  std::printf("max_connections = 4: %zu held by worker %d (killed), %zu by the other\n", lost,
              victim, 4 - lost);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  for (size_t i = 0; i < held.size(); ++i) {
    if (owners[i] == victim) {
      const IoStatus st = readUntilClosed(held[i].get(), deadlineIn(seconds(5)));
      ASSERT_TRUE(st == IoStatus::Eof || st == IoStatus::Reset) << toString(st);
    }
  }
  // At once (not after a reload, and whether or not the worker is back yet): exactly `lost`
  // new connections fit.
  std::vector<Fd> fresh;
  ASSERT_TRUE(openEchoing(weir, lost, &fresh))
      << "the backend still counts the dead worker's connections";
  Fd over = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(over.valid());
  EXPECT_NE(echoRoundTrip(over.get(), "over\n", deadlineIn(seconds(5))), IoStatus::Ok)
      << "more than max_connections after the crash";
}

// While a slot's worker keeps crashing (and waits out its respawn back-off), the steering
// program sends it nothing: every new connection is served at once by the live worker, in
// every steering mode. Without that, a connection steered to the dead slot waits in its
// queue until the next respawn.
class CrashLoop : public ::testing::TestWithParam<const char*> {};

TEST_P(CrashLoop, NewConnectionsAvoidTheDeadSlot) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "the steering program needs root (CAP_BPF + CAP_PERFMON)";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.steering = GetParam();
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  ASSERT_EQ(weir.waitForWorkers(2).size(), 2u);
  ASSERT_EQ(weir.countLogLines("BPF steering on"), 1u) << "needs the steering program";

  // Kill worker 1 every time it comes back until its back-off reaches 1.6 s (100, 200, 400,
  // 800, 1600 ms: five quick deaths). Bounded: 15 s.
  int kills = 0;
  const Deadline give_up = deadlineIn(seconds(15));
  while (weir.countLogLines("respawning in 1600 ms") == 0 && Clock::now() < give_up) {
    if (pid_t p = workerInSlot(weir, 1); p != 0 && kill(p, SIGKILL) == 0) {
      ++kills;
      ASSERT_TRUE(waitFor([&] { return !processAlive(p); }, seconds(5)));
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_GE(weir.countLogLines("respawning in 1600 ms"), 1u) << weir.logTail();
  const Deadline back = Clock::now() + milliseconds(1600);
  EXPECT_EQ(workerInSlot(weir, 1), 0) << "slot 1 should be waiting out its back-off";

  // Sequential connections for most of the back-off: each must be served promptly.
  std::vector<Fd> served;
  int n = 0;
  while (Clock::now() + milliseconds(400) < back && n < 200) {
    Fd fd = connectTcp(weir.addr(), seconds(2));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "live " + std::to_string(n) + "\n",
                            deadlineIn(milliseconds(300))),
              IoStatus::Ok)
        << "connection " << n << " was not served within 300 ms while slot 1 was down ("
        << kills << " kills): it was steered to the dead slot";
    ++n;
  }
  std::printf("steering %s: %d kills, %d connections served while slot 1 was down\n",
              GetParam(), kills, n);
  EXPECT_GE(n, 10);
  // Worker 1 comes back after its back-off and is used again.
  EXPECT_TRUE(waitFor([&] { return workerInSlot(weir, 1) != 0; }, seconds(5)));
}

INSTANTIATE_TEST_SUITE_P(Steering, CrashLoop,
                         ::testing::Values("least-loaded", "round-robin", "hash"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace weir::test
