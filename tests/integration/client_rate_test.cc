// listeners.NAME.rate_per_client against the real weir: a client over its rate is refused in
// the kernel while other clients are served in full, the count holds across a reload, and the
// workers enforce the same rate where the steering program is not loaded. Clients come from
// loopback addresses of their own (127.0.0.0/8).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client_attempt.h"
#include "http_client.h"
#include "support/load_client.h"
#include "support/net_io.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// Counts what `n` back-to-back attempts from `source` got.
std::map<std::string, int> attempts(const std::string& source, const SockAddr& target, int n) {
  std::map<std::string, int> got;
  for (int i = 0; i < n; ++i) {
    ++got[attemptFrom(source, target)];
  }
  return got;
}

std::string describe(const std::map<std::string, int>& got) {
  std::string out;
  for (const auto& [what, n] : got) {
    out += (out.empty() ? "" : ", ") + what + " " + std::to_string(n);
  }
  return out;
}

const std::string kLimited = "weir_listener_client_limited_total{listener=\"front\"}";

struct Rig {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  uint16_t metrics = pickFreePort();

  WeirConfig config(const std::string& rate) const {
    WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
    cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
    cfg.listeners.front().lines = {"rate_per_client = \"" + rate + "\""};
    return cfg;
  }
};

// One client far over its rate gets its burst and then its rate, every other start refused
// with a RST by the kernel, while five clients within theirs are all served.
TEST(ClientRate, OneClientOverItsRateIsRefusedWhileOthersAreServed) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirProcess weir(rig.config("20/s"));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  std::vector<std::unique_ptr<LoadClient>> within;
  for (int i = 0; i < 5; ++i) {
    LoadClient::Options o{weir.addr(), 2, 100, 10, seconds(5)};  // 10/s: half the rate
    o.source = *SockAddr::from("127.0.0." + std::to_string(10 + i), 0);
    within.push_back(std::make_unique<LoadClient>(o));
  }
  LoadClient::Options over_opts{weir.addr(), 8, 100, 500, seconds(5)};
  over_opts.source = *SockAddr::from("127.0.0.2", 0);
  LoadClient over(over_opts);
  const auto began = Clock::now();
  for (auto& c : within) {
    c->start();
  }
  over.start();
  ASSERT_TRUE(waitFor([&] { return over.snapshot().connect_errors >= 300; }, seconds(10),
                      milliseconds(20)));
  const LoadStats flood = over.stop();
  const double secs = std::chrono::duration<double>(Clock::now() - began).count();
  uint64_t served = 0;
  for (auto& c : within) {
    const LoadStats s = c->stop();
    EXPECT_EQ(s.failures(), 0u) << "a client within its rate: " << s.summary();
    served += s.completed;
  }
  std::printf("over its rate (%.2f s): %s\nwithin: %llu served\n", secs, flood.summary().c_str(),
              static_cast<unsigned long long>(served));
  EXPECT_GT(served, 5 * 5u);
  // The burst of 20, then 20 a second (and a few for the time the load took to stop).
  EXPECT_GE(flood.completed, 20u) << flood.summary();
  EXPECT_LE(flood.completed, 20 + static_cast<uint64_t>(20 * (secs + 0.5))) << flood.summary();
  EXPECT_EQ(flood.resets + flood.incomplete + flood.timeouts + flood.other_errors, 0u)
      << "refusals come from the kernel, before any worker: " << flood.summary();
  const auto refused = static_cast<double>(flood.connect_errors);
  EXPECT_EQ(waitSample(rig.metrics, kLimited, refused, true, seconds(5)), refused);
}

// The clients' cells live in the steering state the master keeps: a reload does not give a
// client over its rate a new burst.
TEST(ClientRate, AReloadKeepsEachClientsCount) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirProcess weir(rig.config("3/m"));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  auto got = attempts("127.0.0.2", weir.addr(), 6);
  EXPECT_EQ(got["echo"], 3) << describe(got);
  EXPECT_EQ(got["refused"], 3) << describe(got);
  WeirConfig next = weir.config();
  next.workers = "3";
  ASSERT_TRUE(reload(weir, next, 1));
  got = attempts("127.0.0.2", weir.addr(), 3);
  EXPECT_EQ(got["refused"], 3) << "the reload gave the client a new burst: " << describe(got);
  got = attempts("127.0.0.3", weir.addr(), 4);
  EXPECT_EQ(got["echo"], 3) << describe(got);
  EXPECT_EQ(waitSample(rig.metrics, kLimited, 7, true, seconds(5)), 7);
}

// Without the steering program the workers keep the same cells in shared memory: the client
// is accepted, then reset, once over its rate.
TEST(ClientRate, WithoutBpfTheWorkersEnforceTheRate) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to drop CAP_BPF from a capability set it has";
  }
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to drop capabilities";
  }
  Rig rig;
  WeirProcess weir(rig.config("4/m"));
  weir.setWrapper({"/usr/bin/setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon", "--"});
  weir.allowSteeringOff();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  auto got = attempts("127.0.0.2", weir.addr(), 10);
  EXPECT_EQ(got["echo"], 4) << describe(got);
  EXPECT_EQ(got["reset"], 6) << describe(got);
  EXPECT_EQ(waitSample(rig.metrics, kLimited, 6, true, seconds(5)), 6);
}

}  // namespace
}  // namespace weir::test
