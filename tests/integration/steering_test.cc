// How evenly the sk_reuseport steering program spreads a burst of connections over the
// worker slots, per steering mode.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
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
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root (CAP_BPF) to load the steering program";
  }
  TestServer hold = startTestServer(kTestsrvBin, "hold");
  WeirConfig cfg = WeirConfig::simple({hold.endpoint()}, kWorkers);
  cfg.steering = mode;
  cfg.listeners.front().backlog = 4096;
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  const std::vector<pid_t> workers = weir.waitForWorkers(kWorkers);
  ASSERT_EQ(workers.size(), kWorkers);
  if (auto line = weir.logLine("steering off")) {
    GTEST_SKIP() << "weir could not load BPF steering: " << *line;
  }

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
  if (auto line = weir.logLine("steering off")) {
    GTEST_SKIP() << "weir could not load BPF steering: " << *line;
  }
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

INSTANTIATE_TEST_SUITE_P(Modes, Steering,
                         ::testing::Values("least-loaded", "round-robin", "hash"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace weir::test
