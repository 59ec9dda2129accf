// The master's metrics listener (global.metrics) against the real weir and real backends:
// Prometheus counters that move with traffic, backend state gauges, /status.json, HTTP errors,
// a reload that moves the listener, the Grafana dashboard's queries, and the status page
// rendered by headless Chromium.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "http_client.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

std::string backendSeries(const char* name, const TestServer& b) {
  return std::string(name) + "{pool=\"back\",backend=\"" + b.endpoint() + "\"}";
}

struct Rig {
  TestServer a = startTestServer(kTestsrvBin, "echo");
  TestServer b = startTestServer(kTestsrvBin, "echo");
  uint16_t metrics = pickFreePort();

  WeirConfig config(std::string health = "") const {
    WeirConfig cfg = WeirConfig::simple({a.endpoint(), b.endpoint()}, 2);
    cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
    cfg.pools.front().health = std::move(health);
    return cfg;
  }
};

constexpr const char* kFastChecks =
    "kind = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n"
    "fall = 1\nrise = 1\n";

// The sum of the samples of `series` (each "name{labels}") in a scrape; absent ones count 0.
double sum(const std::string& text, const std::vector<std::string>& series) {
  double total = 0;
  for (const auto& one : series) {
    total += sample(text, one).value_or(0);
  }
  return total;
}

// The sum of every weir_worker_closed_connections_total series in a scrape: connections
// ended, whatever the reason.
double closedAnyReason(const std::string& text) {
  const std::string prefix = "weir_worker_closed_connections_total{";
  double total = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) {
      total += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return total;
}

TEST(Metrics, CountersMoveWithTraffic) {
  Rig s;
  WeirProcess weir(s.config());
  ASSERT_TRUE(weir.start());
  const std::string listener = "{listener=\"front\"}";
  const auto both = [&](const char* name) {
    return std::vector<std::string>{backendSeries(name, s.a), backendSeries(name, s.b)};
  };
  const std::vector<std::string> accepted = {"weir_worker_accepted_total{slot=\"0\"}",
                                             "weir_worker_accepted_total{slot=\"1\"}"};
  const std::vector<std::string> done = {
      "weir_worker_closed_connections_total{slot=\"0\",reason=\"done\"}",
      "weir_worker_closed_connections_total{slot=\"1\",reason=\"done\"}"};
  // Start's readiness probe (one connection that succeeded) was accepted and has ended; it
  // counts too, so the figures below are differences.
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string now = scrape(s.metrics);
        return sample(now, "weir_listener_connections_total" + listener) >= 1.0 &&
               sample(now, "weir_listener_active_connections" + listener) == 0.0;
      },
      seconds(5), milliseconds(20)));
  const std::string before = scrape(s.metrics);
  ASSERT_TRUE(sample(before, "weir_listener_connections_total" + listener).has_value()) << before;
  const auto delta = [&](const std::string& now, const std::vector<std::string>& series) {
    return sum(now, series) - sum(before, series);
  };

  constexpr int kConnections = 6;
  const std::string message(1000, 'x');
  for (int i = 0; i < kConnections; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(2));
    ASSERT_TRUE(fd);
    ASSERT_EQ(echoRoundTrip(fd.get(), message, deadlineIn(seconds(5))), IoStatus::Ok);
  }
  // Bytes are counted when a connection ends, a moment after the client closed. A scrape is
  // not a snapshot: the master reads the workers' counters one by one while they run, so a
  // connection ending mid-scrape can show in the listener's bytes but not yet in its worker's
  // close reasons (CI once saw 6000 bytes with 5 of 6 closes). Wait for a scrape taken after
  // every connection ended: bytes, closes and active connections all settled.
  const std::vector<std::string> active = {"weir_worker_active_connections{slot=\"0\"}",
                                           "weir_worker_active_connections{slot=\"1\"}"};
  std::string after;
  EXPECT_TRUE(waitFor(
      [&] {
        after = scrape(s.metrics);
        return delta(after, {"weir_listener_received_bytes_total" + listener}) ==
                   kConnections * 1000.0 &&
               closedAnyReason(after) - closedAnyReason(before) == kConnections &&
               sum(after, active) == 0.0;
      },
      seconds(5), milliseconds(50)))
      << after;
  EXPECT_EQ(delta(after, {"weir_listener_connections_total" + listener}), kConnections);
  EXPECT_EQ(delta(after, {"weir_listener_sent_bytes_total" + listener}), kConnections * 1000.0);
  EXPECT_EQ(sample(after, "weir_listener_active_connections" + listener), 0.0);
  EXPECT_EQ(delta(after, both("weir_backend_connections_total")), kConnections) << after;
  EXPECT_GT(delta(after, {backendSeries("weir_backend_connections_total", s.a)}), 0)
      << "round-robin reaches both backends";
  EXPECT_GT(delta(after, {backendSeries("weir_backend_connections_total", s.b)}), 0);
  EXPECT_EQ(delta(after, both("weir_backend_sent_bytes_total")), kConnections * 1000.0);
  EXPECT_EQ(delta(after, both("weir_backend_received_bytes_total")), kConnections * 1000.0);
  EXPECT_EQ(delta(after, accepted), kConnections);
  // Every connection ended once, each for some reason; an echo the client ends is "done".
  EXPECT_EQ(closedAnyReason(after) - closedAnyReason(before), kConnections) << after;
  EXPECT_EQ(delta(after, done), kConnections) << after;
  EXPECT_EQ(sample(after, backendSeries("weir_backend_up", s.a)), 1.0);
  // Every family has HELP and TYPE, every counter ends in _total.
  std::istringstream in(after);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(name.rfind("weir_", 0), 0u) << line;
      EXPECT_NE(after.find("# HELP " + name + " "), std::string::npos) << line;
      if (line.ends_with(" counter")) {
        EXPECT_TRUE(name.ends_with("_total")) << line;
      }
    }
  }
}

TEST(Metrics, BackendUpGoesToZeroWhenItDies) {
  Rig s;
  WeirProcess weir(s.config(kFastChecks));
  ASSERT_TRUE(weir.start());
  ASSERT_EQ(waitSample(s.metrics, backendSeries("weir_backend_up", s.a), 1, true, seconds(5)), 1);
  EXPECT_TRUE(waitFor(
      [&] {
        return sample(scrape(s.metrics), backendSeries("weir_backend_check_duration_seconds", s.a))
            .has_value();
      },
      seconds(5), milliseconds(50)))
      << "a check duration once checked";
  s.a.process.signal(SIGKILL);
  s.a.process.wait(seconds(5));
  // fall = 1 at a 200 ms interval: down within about one interval; 3 s is generous.
  EXPECT_EQ(waitSample(s.metrics, backendSeries("weir_backend_up", s.a), 0, true, seconds(3)), 0);
  const std::string after = scrape(s.metrics);
  EXPECT_EQ(sample(after, "weir_backend_state{pool=\"back\",backend=\"" + s.a.endpoint() +
                              "\",state=\"down\"}"),
            1.0);
  EXPECT_EQ(sample(after, backendSeries("weir_backend_up", s.b)), 1.0);
}

TEST(Metrics, StatusJsonAndHttpErrors) {
  Rig s;
  WeirProcess weir(s.config(kFastChecks));
  ASSERT_TRUE(weir.start());
  const std::string json = get(s.metrics, "/status.json");
  EXPECT_EQ(statusOf(json), 200) << json;
  EXPECT_NE(json.find("Content-Type: application/json"), std::string::npos);
  const std::string body = bodyOf(json);
  ASSERT_FALSE(body.empty());
  EXPECT_EQ(body.front(), '{');
  EXPECT_NE(body.find("\"pools\":[{\"name\":\"back\",\"backends\":[{\"address\":\"" +
                      s.a.endpoint() + "\""),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("\"state\":\"serving\""), std::string::npos) << body;
  // A real JSON parser agrees (python3 is in every image that builds weir).
  const std::string file = weir.dir().file("status.json");
  std::ofstream(file) << body;
  EXPECT_EQ(std::system(("python3 -m json.tool " + file + " >/dev/null").c_str()), 0) << body;

  const std::string page = get(s.metrics, "/");
  EXPECT_EQ(statusOf(page), 200);
  EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.find("status.json"), std::string::npos);
  EXPECT_EQ(page.find("src=\"http"), std::string::npos) << "no external assets";

  EXPECT_EQ(statusOf(get(s.metrics, "/nope")), 404);
  EXPECT_EQ(statusOf(rawHttp(s.metrics, "GARBAGE\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(rawHttp(s.metrics, "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(rawHttp(s.metrics, "GET / HTTP/2.0\r\n\r\n")), 505);
  EXPECT_EQ(statusOf(rawHttp(s.metrics, "POST /metrics HTTP/1.1\r\n\r\n")), 405);
  EXPECT_EQ(statusOf(rawHttp(s.metrics, "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n")),
            431);
  const std::string head = rawHttp(s.metrics, "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(statusOf(head), 200);
  EXPECT_EQ(bodyOf(head), "") << "HEAD has no body";
  // The master still serves after all that.
  EXPECT_EQ(statusOf(get(s.metrics, "/metrics")), 200);
}

TEST(Metrics, ReloadMovesTheListener) {
  Rig s;
  WeirProcess weir(s.config());
  ASSERT_TRUE(weir.start());
  ASSERT_EQ(statusOf(get(s.metrics, "/metrics")), 200);
  const uint16_t moved = pickFreePort();
  WeirConfig next = s.config();
  next.global_lines.back() = "metrics = \"127.0.0.1:" + std::to_string(moved) + "\"";
  weir.writeConfig(next);
  ASSERT_TRUE(weir.signal(SIGHUP));
  EXPECT_TRUE(waitFor([&] { return statusOf(get(moved, "/metrics")) == 200; }, seconds(10),
                      milliseconds(50)))
      << weir.logTail();
  EXPECT_TRUE(
      waitFor([&] { return get(s.metrics, "/metrics").empty(); }, seconds(5), milliseconds(50)))
      << "the old address is closed";
  EXPECT_EQ(waitSample(moved, "weir_reloads_total{result=\"ok\"}", 1, true, seconds(5)), 1);
}

// Every metric the Grafana dashboard queries exists in a real scrape.
TEST(Metrics, DashboardQueriesExist) {
  const std::string path = std::string(WEIR_SOURCE_DIR) + "/packaging/grafana/weir-dashboard.json";
  ASSERT_EQ(std::system(("python3 -m json.tool " + path + " >/dev/null").c_str()), 0) << path;
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const std::string dashboard((std::istreambuf_iterator<char>(in)), {});
  Rig s;
  WeirProcess weir(s.config(kFastChecks));
  ASSERT_TRUE(weir.start());
  const std::string metrics = scrape(s.metrics);
  const std::regex name("weir_[a-z0-9_]+");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(dashboard.begin(), dashboard.end(), name);
       it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  ASSERT_GE(names.size(), 8u);
  for (const std::string& n : names) {
    EXPECT_NE(metrics.find("# TYPE " + n + " "), std::string::npos)
        << "the dashboard queries " << n << ", which weir does not export";
  }
}

std::optional<std::string> chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) {
      return p;
    }
  }
  return std::nullopt;
}

// Runs headless Chromium (as root in a container: no sandbox, no GPU, no display) on `url`
// with `args`; returns its stdout.
std::string runChromium(const std::string& bin, const TempDir& dir, const std::string& args,
                        const std::string& url) {
  const std::string cmd = "timeout 60 " + bin +
                          " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage"
                          " --no-first-run --user-data-dir=" +
                          dir.file("chromium-profile") + " " + args + " '" + url + "' 2>" +
                          dir.file("chromium.log");
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[8192];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) {
      out.append(buf, n);
    }
    ::pclose(p);
  }
  return out;
}

TEST(StatusPage, ChromiumSeesABackendGoDown) {
  const auto bin = chromium();
  if (!bin) {
    GTEST_SKIP() << "chromium is not installed (packaging/deps.sh installs it)";
  }
  Rig s;
  WeirProcess weir(s.config(kFastChecks));
  ASSERT_TRUE(weir.start());
  const std::string url = "http://127.0.0.1:" + std::to_string(s.metrics) + "/";
  ASSERT_EQ(waitSample(s.metrics, backendSeries("weir_backend_up", s.a), 1, true, seconds(5)), 1);
  const std::string row_a = "data-backend=\"" + s.a.endpoint() + "\" data-state=\"";

  // The page as rendered after its script ran for 5 s of virtual time: two refreshes or more,
  // both backends up.
  const std::string up =
      runChromium(*bin, weir.dir(), "--virtual-time-budget=5000 --dump-dom", url);
  ASSERT_NE(up.find(row_a + "up\""), std::string::npos) << up << weir.logTail();
  EXPECT_NE(up.find("data-backend=\"" + s.b.endpoint() + "\" data-state=\"up\""),
            std::string::npos);
  EXPECT_NE(up.find("data-fetch-ok=\"1\""), std::string::npos) << up;
  EXPECT_EQ(up.find("data-refreshes=\"1\""), std::string::npos) << "refreshed in place: " << up;

  s.a.process.signal(SIGKILL);
  s.a.process.wait(seconds(5));
  // Down in the page within one refresh (2 s) of the checker marking it down (fall = 1 at a
  // 200 ms interval), polled with fresh dumps up to a deadline.
  std::string down;
  const bool shown = waitFor(
      [&] {
        down = runChromium(*bin, weir.dir(), "--virtual-time-budget=2500 --dump-dom", url);
        return down.find(row_a + "down\"") != std::string::npos;
      },
      seconds(20), milliseconds(100));
  EXPECT_TRUE(shown) << down;

  const std::filesystem::path artifacts = WEIR_TEST_ARTIFACTS;
  std::filesystem::create_directories(artifacts);
  const std::string png = (artifacts / "status-page.png").string();
  std::filesystem::remove(png);
  (void)runChromium(*bin, weir.dir(),
                    "--virtual-time-budget=2500 --window-size=1280,900 --screenshot=" + png, url);
  EXPECT_TRUE(std::filesystem::exists(png)) << "no screenshot at " << png;
  std::printf("status page screenshot: %s\n", png.c_str());
}

}  // namespace
}  // namespace weir::test
