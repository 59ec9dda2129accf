// Active and passive health checks against real backends, through the real weir: detection
// time, one probe per interval for the whole appliance, least-conn across workers, and
// checks that notice a wrong answer.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

using SysTime = std::chrono::system_clock::time_point;

// The time stamp weir's error log puts first on a line ("2026-11-22T16:09:14.118", local).
std::optional<SysTime> logTime(const std::string& line) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(line.c_str(), "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  return std::chrono::system_clock::from_time_t(std::mktime(&tm)) + milliseconds(ms);
}

// Waits for a log line containing `needle`; returns the time weir logged it.
std::optional<SysTime> waitForLog(const WeirProcess& weir, const std::string& needle,
                                  Clock::duration timeout) {
  std::optional<std::string> line;
  if (!waitFor([&] { return (line = weir.logLine(needle)).has_value(); }, timeout,
               milliseconds(10))) {
    return std::nullopt;
  }
  return logTime(*line);
}

// A backend that only counts the connections made to it (the checker's probes), with times.
class CountingListener {
public:
  CountingListener() {
    fd_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    SockAddr a = *SockAddr::from("127.0.0.1", 0);
    if (!fd_ || ::bind(fd_.get(), a.get(), a.len) != 0 || ::listen(fd_.get(), 128) != 0) {
      throw std::runtime_error("counting listener: " + errnoText(errno));
    }
    port_ = SockAddr::local(fd_.get())->port();
    thread_ = std::thread([this] { run(); });
  }
  ~CountingListener() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  // Connections accepted in [from, to).
  size_t countBetween(Clock::time_point from, Clock::time_point to) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::count_if(times_.begin(), times_.end(),
                         [&](Clock::time_point t) { return t >= from && t < to; });
  }

private:
  void run() {
    // Bounded: stops with the test, at the latest after 60 s.
    const Deadline deadline = deadlineIn(seconds(60));
    while (!stop_ && Clock::now() < deadline) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      for (int i = 0; i < 64; ++i) {
        int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          break;
        }
        ::close(c);
        std::lock_guard<std::mutex> lock(mu_);
        times_.push_back(Clock::now());
      }
    }
  }

  Fd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Clock::time_point> times_;
  std::thread thread_;
};

TEST(Health, KilledBackendIsDownInTimeGetsNothingAndComesBack) {
  constexpr auto kInterval = milliseconds(200);
  constexpr auto kTimeout = milliseconds(100);
  constexpr int kFall = 2;
  constexpr int kRise = 2;
  // The checker's jitter: min(interval/20, timeout/4, (interval-timeout)/4) each way.
  constexpr auto kJitter = milliseconds(10);
  TestServer a = startTestServer(kTestsrvBin, "http", {"--name", "backend-A"});
  TestServer b = startTestServer(kTestsrvBin, "http", {"--name", "backend-B"});
  WeirConfig cfg = WeirConfig::simple({a.endpoint(), b.endpoint()}, 2);
  cfg.pools.front().health = "kind = \"http\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n"
                             "fall = 2\nrise = 2\npath = \"/\"\n";
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  // Both answer while up.
  bool saw_a = false;
  bool saw_b = false;
  for (int i = 0; i < 20 && !(saw_a && saw_b); ++i) {
    const std::string r = httpGet(weir.addr());
    saw_a |= r.find("backend-A") != std::string::npos;
    saw_b |= r.find("backend-B") != std::string::npos;
  }
  ASSERT_TRUE(saw_a && saw_b) << "both backends should serve while up";

  const uint16_t port_a = a.port;
  const SysTime killed = std::chrono::system_clock::now();
  a.process.signal(SIGKILL);
  a.process.wait(seconds(5));
  const auto down = waitForLog(weir, "backend " + a.endpoint() + " is down", seconds(5));
  ASSERT_TRUE(down.has_value()) << "backend A never marked down";
  const auto detect = std::chrono::duration_cast<milliseconds>(*down - killed);
  std::printf("health: killed backend marked down after %lld ms (bound %lld ms)\n",
              static_cast<long long>(detect.count()),
              static_cast<long long>((kFall * kInterval + kTimeout + 2 * kJitter).count()));
  RecordProperty("detect_down_ms", std::to_string(detect.count()));
  EXPECT_LE(detect, kFall * kInterval + kTimeout + 2 * kJitter);

  // From now on every new connection goes to B, none fails.
  for (int i = 0; i < 40; ++i) {
    const std::string r = httpGet(weir.addr());
    ASSERT_NE(r.find("backend-B"), std::string::npos) << "request " << i << " got: " << r;
  }

  TestServer again = startTestServer(kTestsrvBin, "http", {"--name", "backend-A"}, "127.0.0.1",
                                     port_a);
  const SysTime restarted = std::chrono::system_clock::now();
  const auto up = waitForLog(weir, "backend " + a.endpoint() + " is up", seconds(5));
  ASSERT_TRUE(up.has_value()) << "backend A never came back";
  const auto back = std::chrono::duration_cast<milliseconds>(*up - restarted);
  std::printf("health: restarted backend up again after %lld ms (bound %lld ms)\n",
              static_cast<long long>(back.count()),
              static_cast<long long>((kRise * kInterval + 2 * kJitter).count()));
  RecordProperty("detect_up_ms", std::to_string(back.count()));
  EXPECT_LE(back, kRise * kInterval + 2 * kJitter);
  bool a_again = false;
  for (int i = 0; i < 20 && !a_again; ++i) {
    a_again = httpGet(weir.addr()).find("backend-A") != std::string::npos;
  }
  EXPECT_TRUE(a_again) << "backend A up again but receives nothing";
}

TEST(Health, OneProbePerIntervalWhateverTheWorkerCount) {
  CountingListener backend;
  WeirConfig cfg =
      WeirConfig::simple({"127.0.0.1:" + std::to_string(backend.port())}, 4);
  cfg.pools.front().health = "kind = \"tcp\"\ninterval = \"250ms\"\ntimeout = \"100ms\"\n";
  WeirProcess weir(cfg);
  // No readiness connection: weir would forward it to this backend, and under load it could
  // land inside the window and be counted as a probe.
  ASSERT_TRUE(weir.start(Readiness::WorkersOnly));
  ASSERT_EQ(weir.waitForWorkers(4).size(), 4u);
  // Count over a 3 s window, after start-up: 12 probes at one per 250 ms; 48 if each of the
  // four workers probed. Nothing but the checker connects to this backend.
  const auto from = Clock::now();
  const auto to = from + seconds(3);
  ASSERT_TRUE(waitFor([&] { return Clock::now() >= to + milliseconds(50); }, seconds(5)));
  const size_t probes = backend.countBetween(from, to);
  std::printf("health: %zu probes in 3 s at interval 250 ms with 4 workers\n", probes);
  RecordProperty("probes_in_3s", std::to_string(probes));
  EXPECT_GE(probes, 11u);
  EXPECT_LE(probes, 13u);
}

TEST(Health, LeastConnKeepsBackendsWithinOneAcrossWorkers) {
  std::vector<TestServer> backends;
  std::vector<std::string> endpoints;
  for (int i = 0; i < 3; ++i) {
    backends.push_back(startTestServer(kTestsrvBin, "hold"));
    endpoints.push_back(backends.back().endpoint());
  }
  WeirConfig cfg = WeirConfig::simple(endpoints, 4);
  cfg.pools.front().balance = "least-conn";
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start());
  ASSERT_EQ(weir.waitForWorkers(4).size(), 4u);
  std::string err;
  constexpr size_t kConns = 301;
  std::vector<Fd> conns = connectMany(weir.addr(), kConns, 50, deadlineIn(seconds(30)), &err);
  ASSERT_EQ(conns.size(), kConns) << err;
  std::vector<size_t> per_backend;
  ASSERT_TRUE(waitFor(
      [&] {
        per_backend.clear();
        for (const TestServer& b : backends) {
          per_backend.push_back(acceptedByClientPort(b.port).size());
        }
        return std::accumulate(per_backend.begin(), per_backend.end(), size_t{0}) == kConns;
      },
      seconds(20), milliseconds(50)));
  const auto [lo, hi] = std::minmax_element(per_backend.begin(), per_backend.end());
  std::printf("health: least-conn with 4 workers, %zu connections -> [%zu,%zu,%zu]\n", kConns,
              per_backend[0], per_backend[1], per_backend[2]);
  EXPECT_LE(*hi - *lo, 1u);
}

// Two pools behind their own listeners ("g" -> good, "b" -> bad), one backend each, checked
// every 100 ms with `check` plus each pool's own `good_lines` / `bad_lines`.
WeirConfig goodAndBadPools(const std::string& good_backend, const std::string& bad_backend,
                           const std::string& check, const std::string& good_lines,
                           const std::string& bad_lines) {
  WeirConfig cfg;
  cfg.workers = "2";
  const std::string common = check + "interval = \"100ms\"\ntimeout = \"50ms\"\nfall = 2\n";
  PoolSpec good{"good", {{good_backend, 1}}};
  good.health = common + good_lines;
  PoolSpec bad{"bad", {{bad_backend, 1}}};
  bad.health = common + bad_lines;
  cfg.pools = {good, bad};
  cfg.listeners = {{"g", "good", 0, 128}, {"b", "bad", 0, 128}};
  return cfg;
}

// The bad pool's backend goes down with a reason naming `reason`; for ten more intervals the
// good pool's backend does not.
void expectOnlyTheBadBackendDown(const WeirProcess& weir, const std::string& bad_backend,
                                 const std::string& reason) {
  const auto down = waitForLog(weir, "pool bad: backend " + bad_backend + " is down",
                               seconds(5));
  ASSERT_TRUE(down.has_value()) << "a backend giving the wrong answer stayed up";
  EXPECT_NE(weir.logLine("is down")->find(reason), std::string::npos)
      << "the reason should name " << reason << ": " << *weir.logLine("is down");
  const auto t = Clock::now() + seconds(1);
  ASSERT_TRUE(waitFor([&] { return Clock::now() >= t; }, seconds(2)));
  EXPECT_FALSE(weir.logLine("pool good: backend").has_value()) << *weir.logLine("pool good");
}

TEST(Health, SendExpectCheckNoticesAWrongAnswer) {
  TestServer right = startTestServer(kTestsrvBin, "echo");
  TestServer wrong = startTestServer(kTestsrvBin, "echo");
  // An echo server answers "PING": right for the pool expecting PING, wrong for PONG.
  WeirProcess weir(goodAndBadPools(right.endpoint(), wrong.endpoint(),
                                   "kind = \"send-expect\"\nsend = \"PING\\r\\n\"\n",
                                   "expect = \"PING\"\n", "expect = \"PONG\"\n"));
  ASSERT_TRUE(weir.start());
  ASSERT_NO_FATAL_FAILURE(expectOnlyTheBadBackendDown(weir, wrong.endpoint(), "PONG"));
  std::string err;
  Fd fd = connectTcp(weir.addr("g"), seconds(2), &err);
  ASSERT_TRUE(fd.valid()) << err;
  EXPECT_EQ(echoRoundTrip(fd.get(), "through good", deadlineIn(seconds(2))), IoStatus::Ok);
}

TEST(Health, HttpCheckNoticesAWrongStatus) {
  TestServer ok = startTestServer(kTestsrvBin, "http");
  TestServer other = startTestServer(kTestsrvBin, "http");
  WeirProcess weir(goodAndBadPools(ok.endpoint(), other.endpoint(),
                                   "kind = \"http\"\npath = \"/health\"\n",
                                   "expect_status = 200\n", "expect_status = 204\n"));
  ASSERT_TRUE(weir.start());
  ASSERT_NO_FATAL_FAILURE(expectOnlyTheBadBackendDown(weir, other.endpoint(), "200"));
  // The pool whose only backend is down closes clients at once instead of trying it.
  std::string err;
  Fd fd = connectTcp(weir.addr("b"), seconds(2), &err);
  ASSERT_TRUE(fd.valid()) << err;
  const auto t0 = Clock::now();
  const IoStatus s = readUntilClosed(fd.get(), deadlineIn(seconds(3)));
  EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset) << toString(s);
  EXPECT_LT(Clock::now() - t0, milliseconds(500));
}

}  // namespace
}  // namespace weir::test
