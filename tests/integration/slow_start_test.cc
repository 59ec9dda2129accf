// Slow start through the real weir: a backend that comes back up, or that a reload adds,
// takes a small share of new connections at first and its full share once the ramp is over;
// a backend kept across a reload does not ramp again.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "support/net_io.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

const std::string kWeirctlBin = WEIRCTL_BIN;

// Which of `names` served each of the requests made one after another until `until` (at
// most `max` of them); the key "" counts requests that failed or named none.
struct Tally {
  std::map<std::string, int> by_name;
  int requests = 0;
  int count(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? 0 : it->second;
  }
  double share(const std::string& name) const {
    return requests == 0 ? 0.0 : static_cast<double>(count(name)) / requests;
  }
};

Tally tally(const SockAddr& addr, const std::vector<std::string>& names, Clock::time_point until,
            int max) {
  Tally t;
  while (t.requests < max && Clock::now() < until) {
    const std::string reply = httpGet(addr);
    std::string who;
    for (const std::string& name : names) {
      if (reply.find(name) != std::string::npos) {
        who = name;
      }
    }
    ++t.by_name[who];
    ++t.requests;
  }
  return t;
}

// The value of `series` ("name{labels}" as weir writes it) in the metrics listener's
// /metrics, or nullopt.
std::optional<double> metric(uint16_t port, const std::string& series) {
  return sample(scrape(port), series);
}

long long msSince(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

std::string describe(const Tally& t) {
  std::string out = std::to_string(t.requests) + " requests:";
  for (const auto& [name, n] : t.by_name) {
    out += " " + (name.empty() ? std::string("(none)") : name) + "=" + std::to_string(n);
  }
  return out;
}

// Backend "backend-A" (at `endpoint`) of two, whose ramp of `ramp` started at `up`
// (`since` says what started it): a small share of new connections in the first fifth of
// the ramp, as the metrics say; half of them once the ramp is over.
void expectRamp(const SockAddr& addr, uint16_t metrics, const std::string& endpoint,
                Clock::time_point up, Clock::duration ramp, const char* since) {
  const std::vector<std::string> names = {"backend-A", "backend-B"};
  const std::string labels = "{pool=\"back\",backend=\"" + endpoint + "\"}";
  const auto remaining = [&] {
    return metric(metrics, "weir_backend_slow_start_remaining_seconds" + labels);
  };
  const auto effective = [&] { return metric(metrics, "weir_backend_effective_weight" + labels); };
  const double ramp_s = std::chrono::duration<double>(ramp).count();

  // The first fifth of the ramp: A's effective weight grows from ~0 to 1/5 of B's.
  const Tally early = tally(addr, names, up + ramp / 5, 1000);
  std::printf("slow start: the first %lld ms after %s: %s\n",
              static_cast<long long>(msSince(up)), since, describe(early).c_str());
  ASSERT_GE(early.requests, 10) << "too few requests to measure a share";
  EXPECT_EQ(early.count(""), 0) << describe(early);
  EXPECT_LT(early.share("backend-A"), 0.25) << describe(early);
  // The master shows the ramp: most of it still to go, a fraction of the weight.
  EXPECT_GT(remaining().value_or(-1), ramp_s / 2);
  EXPECT_LE(remaining().value_or(-1), ramp_s);
  EXPECT_GT(effective().value_or(-1), 0.0);
  EXPECT_LT(effective().value_or(-1), 0.6);

  // The ramp is time: wait it out, then A has its full share.
  std::this_thread::sleep_until(up + ramp + milliseconds(100));
  const Tally late = tally(addr, names, Clock::now() + seconds(5), 100);
  std::printf("slow start: after the ramp: %s\n", describe(late).c_str());
  EXPECT_EQ(late.count(""), 0) << describe(late);
  EXPECT_NEAR(late.share("backend-A"), 0.5, 0.15) << describe(late);
  EXPECT_EQ(remaining().value_or(-1), 0.0);
  EXPECT_EQ(effective().value_or(-1), 1.0);
}

TEST(SlowStart, ABackendBackUpRampsToItsShare) {
  // Checks every 100 ms, two failures take a backend down, one pass brings it back; a 2 s
  // ramp: a fifth of the way in, the returning backend has 1/6 of the share.
  constexpr auto kRamp = milliseconds(2000);
  TestServer a = startTestServer(kTestsrvBin, "http", {"--name", "backend-A"});
  TestServer b = startTestServer(kTestsrvBin, "http", {"--name", "backend-B"});
  WeirConfig cfg = WeirConfig::simple({a.endpoint(), b.endpoint()}, 2);
  cfg.pools.front().lines.push_back("slow_start = \"2s\"");
  cfg.pools.front().health = "kind = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n"
                             "fall = 2\nrise = 1\n";
  const uint16_t metrics = pickFreePort();
  cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  const std::vector<std::string> names = {"backend-A", "backend-B"};

  // Backends there from the start do not ramp.
  const Tally start = tally(weir.addr(), names, Clock::now() + seconds(5), 40);
  EXPECT_NEAR(start.share("backend-A"), 0.5, 0.2) << describe(start);

  const uint16_t port_a = a.port;
  a.process.signal(SIGKILL);
  a.process.wait(seconds(5));
  ASSERT_TRUE(weir.waitForLogLines("backend " + a.endpoint() + " is down", 1, seconds(5)));
  TestServer again = startTestServer(kTestsrvBin, "http", {"--name", "backend-A"}, "127.0.0.1",
                                     port_a);
  ASSERT_TRUE(weir.waitForLogLines("backend " + a.endpoint() + " is up", 1, seconds(5)));
  expectRamp(weir.addr(), metrics, a.endpoint(), Clock::now(), kRamp, "coming up");
}

TEST(SlowStart, ABackendEnabledByWeirctlRamps) {
  // A backend back from maintenance (`weirctl disable`, then `enable`) ramps as one coming
  // back up does; the health checks play no part (it never went down).
  constexpr auto kRamp = milliseconds(2000);
  TestServer a = startTestServer(kTestsrvBin, "http", {"--name", "backend-A"});
  TestServer b = startTestServer(kTestsrvBin, "http", {"--name", "backend-B"});
  WeirConfig cfg = WeirConfig::simple({a.endpoint(), b.endpoint()}, 2);
  cfg.pools.front().lines.push_back("slow_start = \"2s\"");
  const uint16_t metrics = pickFreePort();
  cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
  TempDir run_dir("weir-run");
  cfg.global_lines.push_back("control_socket = \"" + run_dir.file("weir.sock") + "\"");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  const std::vector<std::string> names = {"backend-A", "backend-B"};
  auto weirctl = [&](const std::string& command) {
    return run(kWeirctlBin, {"-c", weir.configPath(), command, "back", a.endpoint()},
               seconds(30));
  };
  const std::string labels = "{pool=\"back\",backend=\"" + a.endpoint() + "\"}";
  const auto remaining = [&] {
    return metric(metrics, "weir_backend_slow_start_remaining_seconds" + labels);
  };

  const RunResult disabled = weirctl("disable");
  ASSERT_EQ(disabled.exitCode(), 0) << disabled.out << disabled.err;
  const Tally off = tally(weir.addr(), names, Clock::now() + seconds(5), 20);
  EXPECT_EQ(off.count("backend-A"), 0) << describe(off);
  EXPECT_EQ(remaining().value_or(-1), 0.0);

  const RunResult enabled = weirctl("enable");
  ASSERT_EQ(enabled.exitCode(), 0) << enabled.out << enabled.err;
  expectRamp(weir.addr(), metrics, a.endpoint(), Clock::now(), kRamp, "weirctl enable");
}

TEST(SlowStart, ABackendAddedByAReloadRampsTheKeptOnesDoNot) {
  constexpr auto kRamp = milliseconds(3000);
  TestServer a = startTestServer(kTestsrvBin, "http", {"--name", "backend-A"});
  TestServer b = startTestServer(kTestsrvBin, "http", {"--name", "backend-B"});
  TestServer c = startTestServer(kTestsrvBin, "http", {"--name", "backend-C"});
  WeirConfig cfg = WeirConfig::simple({a.endpoint(), b.endpoint()}, 2);
  cfg.pools.front().lines.push_back("slow_start = \"3s\"");
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  cfg = weir.config();  // with the port it picked
  const std::vector<std::string> names = {"backend-A", "backend-B", "backend-C"};

  cfg.pools.front().backends.push_back({c.endpoint(), 1});
  ASSERT_TRUE(reload(weir, cfg, 1));
  const auto reloaded = Clock::now();
  // The old generation accepts until the new one has been up a moment (the hand-over).
  ASSERT_TRUE(weir.waitForLogLines("generation 1 draining", 1, seconds(5)));

  // C ramps from the reload. Had A and B restarted their ramps too (or had nothing ramped),
  // all three would share equally.
  const auto handed_over = Clock::now();
  const Tally early = tally(weir.addr(), names, handed_over + milliseconds(400), 1000);
  std::printf("slow start: from %lld to %lld ms after the reload: %s\n",
              static_cast<long long>(msSince(reloaded) - msSince(handed_over)),
              static_cast<long long>(msSince(reloaded)), describe(early).c_str());
  ASSERT_GE(early.requests, 10) << "too few requests to measure a share";
  EXPECT_EQ(early.count(""), 0) << describe(early);
  EXPECT_LT(early.share("backend-C"), 0.2) << describe(early);
  EXPECT_GT(early.share("backend-A"), 0.35) << describe(early);
  EXPECT_GT(early.share("backend-B"), 0.35) << describe(early);

  std::this_thread::sleep_until(reloaded + kRamp + milliseconds(100));
  const Tally late = tally(weir.addr(), names, Clock::now() + seconds(5), 150);
  std::printf("slow start: after the ramp: %s\n", describe(late).c_str());
  EXPECT_EQ(late.count(""), 0) << describe(late);
  EXPECT_NEAR(late.share("backend-C"), 1.0 / 3, 0.12) << describe(late);
}

}  // namespace
}  // namespace weir::test
