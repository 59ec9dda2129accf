// A worker killed with SIGKILL is respawned; the other worker's connections never notice.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <string>
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

}  // namespace
}  // namespace weir::test
