// The checker process against real sockets on 127.0.0.1: runChecker runs in a forked child,
// exactly as the master runs it; the test watches the shared region from the parent.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "canned_server.h"
#include "health/checker.h"
#include "shm/error_text.h"
#include "shm/shm_fixture.h"

namespace weir::health {
namespace {

using shm::BackendState;

constexpr int64_t kIntervalMs = 300;
constexpr int64_t kTimeoutMs = 200;
constexpr int kRise = 2;
constexpr int kFall = 2;
// Scheduling noise allowed on a busy build machine, on top of each bound.
constexpr int64_t kSlackMs = 500;

std::string healthTable(const std::string& pool, const std::string& kind_keys) {
  return "[pools." + pool + ".health]\ninterval = \"" + std::to_string(kIntervalMs) +
         "ms\"\ntimeout = \"" + std::to_string(kTimeoutMs) + "ms\"\nrise = " +
         std::to_string(kRise) + "\nfall = " + std::to_string(kFall) + "\n" + kind_keys;
}

std::string backends(std::initializer_list<uint16_t> ports) {
  std::string out = "backends = [";
  for (uint16_t port : ports) {
    out += "{ address = \"127.0.0.1:" + std::to_string(port) + "\" },";
  }
  return out + "]\n";
}

// Polls `done` every 5 ms until it holds or `ms` pass. Returns the milliseconds it took, or -1.
int64_t waitUntil(const std::function<bool()>& done, int64_t ms) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)
          .count();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done() ? ms : -1;
}

// Waits until a backend's last error is `text`. Under load a check can time out before the
// test server answers; the verdict the test is after still comes with a later check.
::testing::AssertionResult errorBecomes(const shm::BackendSlot& slot, const std::string& text) {
  if (waitUntil([&] { return shm::readErrorText(slot) == text; }, 3000) >= 0) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "last error is \"" << shm::readErrorText(slot)
                                       << "\", not \"" << text << "\"";
}

// Runs runChecker in a child process; stops it with SIGTERM and checks it exits 0.
class CheckerProcess {
public:
  CheckerProcess(const config::Config& cfg, shm::ShmRegion& region) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int rc = 1;
      try {
        rc = runChecker(cfg, region);
      } catch (...) {
      }
      ::_exit(rc);
    }
  }
  ~CheckerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool running() const { return pid_ > 0; }
  // SIGTERM, then the exit status within `ms` (-1 if it did not exit).
  int stop(int64_t ms) {
    ::kill(pid_, SIGTERM);
    int status = -1;
    int64_t took = waitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, ms);
    if (took < 0) {
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

private:
  pid_t pid_ = -1;
};

TEST(Checker, TcpSendExpectAndHttpVerdicts) {
  CannedServer server;
  const uint16_t pong = server.listen("+PONG\r\n");                             // 0
  const uint16_t wrong = server.listen("-ERR wrong\r\n");                       // 1
  const uint16_t http_ok = server.listen("HTTP/1.0 200 OK\r\n\r\n");            // 2
  const uint16_t http_500 = server.listen("HTTP/1.0 500 Oops\r\n\r\n");         // 3
  const uint16_t refused = closedPort();
  uint16_t silent = 0;
  net::UniqueFd silent_fd = silentListener(silent);
  shm::ShmFixture f(
      "[pools.p]\n" + backends({pong, refused}) + healthTable("p", "kind = \"tcp\"\n") +
      "[pools.sx]\n" + backends({pong, wrong, silent}) +
      healthTable("sx", "kind = \"send-expect\"\nsend = 'PING\\r\\n'\nexpect = '+PONG\\r\\n'\n") +
      "[pools.web]\n" + backends({http_ok, http_500}) +
      healthTable("web", "kind = \"http\"\npath = \"/health\"\n"));
  const shm::PoolSlots& tcp = f.pool(0);
  const shm::PoolSlots& sx = f.pool(1);
  const shm::PoolSlots& web = f.pool(2);

  CheckerProcess checker(f.cfg, f.region);
  ASSERT_TRUE(checker.running());
  server.start();

  // From the start: the first check within one interval, then fall - 1 more.
  const int64_t down_bound = kFall * kIntervalMs + kTimeoutMs + kSlackMs;
  auto allDown = [&] {
    return tcp.state(1) == BackendState::Down && sx.state(1) == BackendState::Down &&
           sx.state(2) == BackendState::Down && web.state(1) == BackendState::Down;
  };
  ASSERT_GE(waitUntil(allDown, down_bound), 0)
      << "tcp refused " << toString(tcp.state(1)) << ", sx wrong " << toString(sx.state(1))
      << ", sx silent " << toString(sx.state(2)) << ", http 500 " << toString(web.state(1));
  EXPECT_TRUE(errorBecomes(tcp.slot(1), "connect: Connection refused"));
  EXPECT_TRUE(errorBecomes(sx.slot(1), "expected \"+PONG\\r\\n\", got \"-ERR wrong\\r\\n\""));
  EXPECT_TRUE(
      errorBecomes(sx.slot(2), "timeout after 200ms waiting for \"+PONG\\r\\n\", got \"\""));
  EXPECT_TRUE(errorBecomes(web.slot(1), "status 500, expected 200"));

  // The healthy ones were checked and stayed up.
  auto checked = [&] {
    return tcp.slot(0).successes.load() >= 2 && sx.slot(0).successes.load() >= 2 &&
           web.slot(0).successes.load() >= 2;
  };
  ASSERT_GE(waitUntil(checked, 2 * kIntervalMs + kSlackMs), 0);
  EXPECT_EQ(tcp.state(0), BackendState::Up);
  EXPECT_EQ(sx.state(0), BackendState::Up);
  EXPECT_EQ(web.state(0), BackendState::Up);
  EXPECT_EQ(tcp.slot(0).failures.load(), 0u);

  // The wrong answers turn right: up within rise intervals.
  server.setReply(1, "+PONG\r\n");
  server.setReply(3, "HTTP/1.1 200 OK\r\n\r\n");
  const int64_t up_bound = kRise * kIntervalMs + kTimeoutMs + kSlackMs;
  auto fixed = [&] {
    return sx.state(1) == BackendState::Up && web.state(1) == BackendState::Up;
  };
  EXPECT_GE(waitUntil(fixed, up_bound), 0);

  // And a right answer turns wrong: down within fall intervals.
  server.setReply(2, "HTTP/1.1 503 Busy\r\n\r\n");
  auto broken = [&] { return web.state(0) == BackendState::Down; };
  EXPECT_GE(waitUntil(broken, kFall * kIntervalMs + kTimeoutMs + kSlackMs), 0);
  EXPECT_TRUE(errorBecomes(web.slot(0), "status 503, expected 200"));

  EXPECT_EQ(checker.stop(2000), 0);
}

TEST(Checker, ChecksEachBackendOncePerInterval) {
  CannedServer server;
  server.listen("");
  const uint16_t port = server.listen("");  // listener 1: counted
  (void)port;
  shm::ShmFixture f("[pools.p]\n" + backends({port}) + healthTable("p", ""));
  CheckerProcess checker(f.cfg, f.region);
  server.start();
  ASSERT_GE(waitUntil([&] { return server.accepted(1) >= 1; }, kIntervalMs + kSlackMs), 0);
  const int before = server.accepted(1);
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(10 * kIntervalMs));
  const int after = server.accepted(1);
  const double intervals =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
          .count() /
      kIntervalMs;
  // One check per interval, give or take the jitter at both ends of the window and the test
  // server's own lag in accepting.
  EXPECT_NEAR(after - before, intervals, 2);
  EXPECT_EQ(checker.stop(2000), 0);
}

TEST(Checker, EndsPassiveHoldDowns) {
  shm::ShmFixture f("[pools.p]\npassive_holddown = \"300ms\"\n" + backends({closedPort()}));
  const shm::PoolSlots& p = f.pool(0);
  CheckerProcess checker(f.cfg, f.region);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.reserve(0, 0));
    (void)p.onConnectFailed(0, ECONNREFUSED, monotonicMs());
  }
  ASSERT_EQ(p.state(0), BackendState::Down);
  int64_t took = waitUntil([&] { return p.state(0) == BackendState::Up; }, 300 + kSlackMs);
  EXPECT_GE(took, 250);  // not before the hold-down is over (minus the polling step)
  EXPECT_EQ(p.slot(0).last_check_ms.load(), 0);  // passive-only: never probed
  EXPECT_EQ(checker.stop(2000), 0);
}

TEST(Checker, ProbesTheHealthPortInsteadOfTheTrafficPort) {
  CannedServer server;
  const uint16_t health_port = server.listen("");
  shm::ShmFixture f("[pools.p]\n" + backends({closedPort()}) +
                    healthTable("p", "port = " + std::to_string(health_port) + "\n"));
  CheckerProcess checker(f.cfg, f.region);
  server.start();
  ASSERT_GE(waitUntil([&] { return f.pool(0).slot(0).successes.load() >= 2; },
                      3 * kIntervalMs + kSlackMs),
            0);
  EXPECT_EQ(f.pool(0).state(0), BackendState::Up);
  EXPECT_EQ(checker.stop(2000), 0);
}

TEST(Checker, SkipsBackendsInMaintenance) {
  CannedServer server;
  const uint16_t paused = server.listen("");   // 0
  const uint16_t checked = server.listen("");  // 1
  shm::ShmFixture f("[pools.p]\n" + backends({paused, checked}) + healthTable("p", ""));
  ASSERT_TRUE(f.region.setAdmin("p", "127.0.0.1:" + std::to_string(paused),
                                shm::AdminState::Maint));
  CheckerProcess checker(f.cfg, f.region);
  server.start();
  ASSERT_GE(waitUntil([&] { return server.accepted(1) >= 3; }, 3 * kIntervalMs + kSlackMs), 0);
  EXPECT_EQ(server.accepted(0), 0);
  EXPECT_EQ(f.pool(0).slot(0).last_check_ms.load(), 0);
  // Enabled again: checked from the next interval on.
  ASSERT_TRUE(f.region.setAdmin("p", "127.0.0.1:" + std::to_string(paused),
                                shm::AdminState::None));
  EXPECT_GE(waitUntil([&] { return server.accepted(0) >= 1; }, 2 * kIntervalMs + kSlackMs), 0);
  EXPECT_EQ(checker.stop(2000), 0);
}

TEST(Checker, FailsToStartWithoutItsBackendsInTheRegion) {
  shm::ShmFixture f("[pools.p]\n" + backends({1}) + healthTable("p", ""));
  config::Config other = shm::ShmFixture::parseConfig("[pools.p]\n" + backends({2}));
  EXPECT_EQ(runChecker(other, f.region), 1);
}

}  // namespace
}  // namespace weir::health
