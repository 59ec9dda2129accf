// How evenly the sk_reuseport steering program spreads a burst of connections over the
// worker slots, per steering mode.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/sock_addr.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr size_t kWorkers = 4;
constexpr size_t kConns = 2000;
constexpr double kMaxImbalancePercent = 2.0;

class Steering : public ::testing::TestWithParam<const char*> {};

TEST_P(Steering, SpreadsABurstOverWorkers) {
  const std::string mode = GetParam();
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  TestServer hold = startTestServer(kTestsrvBin, "hold");
  WeirConfig cfg = WeirConfig::simple({hold.endpoint()}, kWorkers);
  cfg.steering = mode;
  cfg.listeners.front().backlog = 4096;
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  const std::vector<pid_t> workers = weir.waitForWorkers(kWorkers);
  ASSERT_EQ(workers.size(), kWorkers);
  ASSERT_FALSE(weir.logLine("steering off")) << "BPF steering did not load";

  std::string err;
  std::vector<Fd> conns = connectMany(weir.addr(), kConns, 100, deadlineIn(seconds(60)), &err);
  ASSERT_EQ(conns.size(), kConns) << err;

  std::vector<size_t> counts;
  size_t total = 0;
  const bool all_held = waitFor(
      [&] {
        counts = connectionsPerProcess(weir.port(), workers);
        total = std::accumulate(counts.begin(), counts.end(), size_t{0});
        return total == kConns;
      },
      seconds(30), milliseconds(100));
  ASSERT_FALSE(weir.logLine("steering off")) << "BPF steering did not load";
  ASSERT_TRUE(all_held) << "workers hold " << total << " of " << kConns << " connections";
  ASSERT_EQ(weir.workerPids(), workers) << "a worker was replaced during the burst";

  const double mean = static_cast<double>(kConns) / kWorkers;
  const double busiest = static_cast<double>(*std::max_element(counts.begin(), counts.end()));
  const double above = (busiest / mean - 1.0) * 100.0;
  std::string list;
  for (size_t i = 0; i < counts.size(); ++i) {
    list += (i ? "," : "") + std::to_string(counts[i]);
  }
  char summary[160];
  std::snprintf(summary, sizeof summary, "steering %s: per-worker [%s], busiest +%.2f%% above mean",
                mode.c_str(), list.c_str(), above);
  std::printf("%s\n", summary);
  RecordProperty("per_worker", list);
  RecordProperty("busiest_above_mean_percent", std::to_string(above));
  if (mode != "hash") {
    EXPECT_LE(above, kMaxImbalancePercent) << summary;
  }
}

// least-loaded must count connections the program steered but no worker has accepted yet:
// after one worker loses all its connections, a burst of new ones must refill that worker
// only up to the others' level. Counting accepted connections only, the whole burst would
// see that worker as the emptiest and land there.
TEST(SteeringLeastLoaded, BurstRefillsTheEmptiedWorkerOnlyToTheMean) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  constexpr size_t kFirst = 400;
  constexpr size_t kBurst = 400;
  TestServer hold = startTestServer(kTestsrvBin, "hold");
  WeirConfig cfg = WeirConfig::simple({hold.endpoint()}, kWorkers);
  cfg.steering = "least-loaded";
  cfg.listeners.front().backlog = 4096;
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  const std::vector<pid_t> workers = weir.waitForWorkers(kWorkers);
  ASSERT_EQ(workers.size(), kWorkers);
  ASSERT_FALSE(weir.logLine("steering off")) << "BPF steering did not load";

  std::string err;
  std::vector<Fd> first = connectMany(weir.addr(), kFirst, 100, deadlineIn(seconds(30)), &err);
  ASSERT_EQ(first.size(), kFirst) << err;
  std::vector<size_t> counts;
  ASSERT_TRUE(waitFor(
      [&] {
        counts = connectionsPerProcess(weir.port(), workers);
        return std::accumulate(counts.begin(), counts.end(), size_t{0}) == kFirst;
      },
      seconds(20), milliseconds(50)));

  // Close every client connection that worker 0 holds.
  const std::set<uint64_t> inodes0 = socketInodes(workers[0]);
  const std::map<uint16_t, uint64_t> accepted = acceptedByClientPort(weir.port());
  size_t closed = 0;
  for (Fd& fd : first) {
    auto local = SockAddr::local(fd.get());
    ASSERT_TRUE(local.has_value());
    auto it = accepted.find(local->port());
    if (it != accepted.end() && inodes0.count(it->second) != 0) {
      fd.reset();
      ++closed;
    }
  }
  ASSERT_GT(closed, 0u);
  ASSERT_TRUE(waitFor(
      [&] { return connectionsPerProcess(weir.port(), workers)[0] == 0; }, seconds(20),
      milliseconds(50)))
      << "worker 0 did not close its side";

  std::vector<Fd> burst = connectMany(weir.addr(), kBurst, kBurst, deadlineIn(seconds(30)), &err);
  ASSERT_EQ(burst.size(), kBurst) << err;
  const size_t total = kFirst - closed + kBurst;
  ASSERT_TRUE(waitFor(
      [&] {
        counts = connectionsPerProcess(weir.port(), workers);
        return std::accumulate(counts.begin(), counts.end(), size_t{0}) == total;
      },
      seconds(20), milliseconds(50)));
  const double mean = static_cast<double>(total) / kWorkers;
  const double busiest = static_cast<double>(*std::max_element(counts.begin(), counts.end()));
  std::string list;
  for (size_t i = 0; i < counts.size(); ++i) {
    list += (i ? "," : "") + std::to_string(counts[i]);
  }
  std::printf("least-loaded refill: closed %zu on worker 0, burst %zu -> per-worker [%s]\n",
              closed, kBurst, list.c_str());
  EXPECT_LE((busiest / mean - 1.0) * 100.0, kMaxImbalancePercent) << "per-worker [" << list << "]";
}

// Without CAP_BPF the program cannot load: weir must say so once, clearly, and still serve on
// the kernel's reuseport hash.
TEST(SteeringFallback, WithoutCapBpfWarnsOnceAndServes) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to drop CAP_BPF from a capability set it has";
  }
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to drop capabilities";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.steering = "least-loaded";
  WeirProcess weir(cfg);
  weir.setWrapper({"/usr/bin/setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon", "--"});
  weir.allowSteeringOff();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  auto line = weir.logLine("steering off");
  ASSERT_TRUE(line.has_value()) << "no 'steering off' warning in the log";
  EXPECT_NE(line->find("[warning]"), std::string::npos) << *line;
  EXPECT_NE(line->find("CAP_BPF and CAP_PERFMON"), std::string::npos)
      << "the warning should say why: " << *line;
  EXPECT_EQ(line->find("CAP_NET_ADMIN"), std::string::npos)
      << "loading the program does not need CAP_NET_ADMIN: " << *line;
  const std::string log = weir.log();
  size_t warnings = 0;
  for (size_t pos = log.find("steering off"); pos != std::string::npos;
       pos = log.find("steering off", pos + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << "the fallback should be reported once";
  std::string err;
  for (int i = 0; i < 20; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    ASSERT_TRUE(fd.valid()) << err;
    ASSERT_EQ(echoRoundTrip(fd.get(), "ping " + std::to_string(i), deadlineIn(seconds(5))),
              IoStatus::Ok);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, Steering,
                         ::testing::Values("least-loaded", "round-robin", "hash"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace weir::test
