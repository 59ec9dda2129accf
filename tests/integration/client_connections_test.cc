// listeners.NAME.max_connections_per_client against the real weir: a client at its limit is
// refused in the kernel while others are not, a closed connection makes room, the counts hold
// across a reload, a dead worker's connections are given back at once, and the workers
// enforce the limit alone where the steering program is not loaded.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "client_attempt.h"
#include "http_client.h"
#include "support/net_io.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// A connection from `source` that echoed once and stays open, or an invalid Fd with the
// outcome in *outcome ("refused", "reset", ...).
Fd holdFrom(const std::string& source, const SockAddr& target, std::string* outcome) {
  Fd fd = connectFrom(source, target, outcome);
  if (!fd) {
    return fd;
  }
  const IoStatus st = echoRoundTrip(fd.get(), "held\n", deadlineIn(seconds(3)));
  if (st != IoStatus::Ok) {
    *outcome = st == IoStatus::Reset ? "reset" : toString(st);
    return Fd();
  }
  *outcome = "held";
  return fd;
}

// Opens connections from `source` until one is not held (at most `max`); returns the held ones
// and the first outcome that was not "held".
std::vector<Fd> holdUpTo(const std::string& source, const SockAddr& target, size_t max,
                         std::string* stopped_by) {
  std::vector<Fd> held;
  *stopped_by = "";
  while (held.size() < max) {
    std::string outcome;
    Fd fd = holdFrom(source, target, &outcome);
    if (!fd) {
      *stopped_by = outcome;
      break;
    }
    held.push_back(std::move(fd));
  }
  return held;
}

// Retries holdFrom for up to 5 s: a connection the client just closed is taken off the count
// once weir's worker sees the close.
Fd holdOnceThereIsRoom(const std::string& source, const SockAddr& target, std::string* outcome) {
  Fd fd;
  (void)waitFor(
      [&] {
        fd = holdFrom(source, target, outcome);
        return fd.valid();
      },
      seconds(5), milliseconds(20));
  return fd;
}

const std::string kLimited = "weir_listener_client_limited_total{listener=\"front\"}";

struct Rig {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  uint16_t metrics = pickFreePort();

  WeirConfig config(unsigned max) const {
    WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
    cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
    cfg.listeners.front().lines = {"max_connections_per_client = " + std::to_string(max)};
    return cfg;
  }
};

TEST(ClientConnections, AClientAtItsLimitIsRefusedInTheKernelAndOthersAreNot) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirProcess weir(rig.config(5));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  std::string stopped;
  std::vector<Fd> a = holdUpTo("127.0.0.2", weir.addr(), 20, &stopped);
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(stopped, "refused") << "the kernel answers a client at its limit with a RST";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused");
  }
  std::vector<Fd> b = holdUpTo("127.0.0.3", weir.addr(), 5, &stopped);
  EXPECT_EQ(b.size(), 5u) << "another client is not limited by the first: " << stopped;
  // A closed connection makes room for exactly one more.
  a.pop_back();
  std::string outcome;
  Fd again = holdOnceThereIsRoom("127.0.0.2", weir.addr(), &outcome);
  ASSERT_TRUE(again.valid()) << outcome;
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused");
  const double limited = sample(scrape(rig.metrics), kLimited).value_or(-1);
  EXPECT_GE(limited, 6) << "refusals counted";
}

// The counts live in the steering state: connections of the generation a reload replaced
// still count, and closing one of them makes room in the new one.
TEST(ClientConnections, CountsHoldAcrossAReload) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirProcess weir(rig.config(3));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  std::string stopped;
  std::vector<Fd> a = holdUpTo("127.0.0.2", weir.addr(), 3, &stopped);
  ASSERT_EQ(a.size(), 3u) << stopped;
  WeirConfig next = weir.config();
  next.global_lines.push_back("drain_timeout = \"30s\"");
  ASSERT_TRUE(reload(weir, next, 1));
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused")
      << "the reload forgot the old generation's connections";
  a.pop_back();
  std::string outcome;
  Fd again = holdOnceThereIsRoom("127.0.0.2", weir.addr(), &outcome);
  ASSERT_TRUE(again.valid()) << outcome;
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused");
}

// A worker killed with connections open: the master gives its connections back, so the client
// may open exactly as many again, and no more.
TEST(ClientConnections, ADeadWorkersConnectionsAreGivenBack) {
  Rig rig;
  WeirProcess weir(rig.config(6));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);
  std::string stopped;
  std::vector<Fd> a = holdUpTo("127.0.0.2", weir.addr(), 6, &stopped);
  ASSERT_EQ(a.size(), 6u) << stopped;
  std::vector<pid_t> owners;
  ASSERT_TRUE(waitFor(
      [&] {
        owners = connectionOwners(weir.port(), workers, a);
        return std::count(owners.begin(), owners.end(), 0) == 0;
      },
      seconds(5), milliseconds(20)));
  const pid_t victim = owners.front();
  const auto lost = static_cast<size_t>(std::count(owners.begin(), owners.end(), victim));
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(weir.waitForLogLines("given back", 1, seconds(5))) << weir.logTail();
  const auto line = weir.logLine("given back");
  EXPECT_NE(line->find("held " + std::to_string(lost) + " connections"), std::string::npos)
      << *line;
  std::vector<Fd> more = holdUpTo("127.0.0.2", weir.addr(), 20, &stopped);
  EXPECT_EQ(more.size(), lost) << "the dead worker held " << lost << "; then: " << stopped;
}

// Without the steering program the workers count and enforce the same limit after accept:
// the client over it is accepted, then reset.
TEST(ClientConnections, WithoutBpfTheWorkersEnforceTheLimit) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to drop CAP_BPF from a capability set it has";
  }
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to drop capabilities";
  }
  Rig rig;
  WeirProcess weir(rig.config(4));
  weir.setWrapper({"/usr/bin/setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon", "--"});
  weir.allowSteeringOff();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  std::string stopped;
  std::vector<Fd> a = holdUpTo("127.0.0.2", weir.addr(), 10, &stopped);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(stopped, "reset");
  std::vector<Fd> b = holdUpTo("127.0.0.3", weir.addr(), 4, &stopped);
  EXPECT_EQ(b.size(), 4u) << stopped;
}

}  // namespace
}  // namespace weir::test
