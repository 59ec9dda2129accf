// Access lists (listeners.NAME.allow / deny / allow_file / deny_file) against the real weir:
// refused in the kernel by the steering program, refused by the workers where it is not
// loaded, both families, long lists from files, and reloads that swap the list under load.
// Clients come from 127.0.0.1 (allowed) and from other loopback addresses the lists name.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

constexpr int kDeniedAttempts = 50;

std::string listenerSeries(const char* name) {
  return std::string(name) + "{listener=\"front\"}";
}

struct Rig {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  uint16_t metrics = pickFreePort();

  WeirConfig config(std::vector<std::string> lines) const {
    WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
    cfg.global_lines.push_back("metrics = \"127.0.0.1:" + std::to_string(metrics) + "\"");
    cfg.listeners.front().lines = std::move(lines);
    return cfg;
  }
};

// The steering program refuses a denied client's SYN: this kernel then finds no listening
// socket for it and answers with a RST (connect: ECONNREFUSED), so no worker ever accepts the
// connection. Allowed clients are served as before.
TEST(Access, TheKernelAnswersADeniedSynWithARstAndNoWorkerAcceptsIt) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirProcess weir(rig.config({"deny = [\"127.0.0.2\", \"127.0.1.0/24\"]"}));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  EXPECT_TRUE(weir.logLine("access list of 0 allowed and 2 denied prefixes (any other client "
                           "allowed) enforced in the kernel"))
      << weir.logTail();
  ASSERT_EQ(attemptFrom("127.0.0.1", weir.addr()), "echo");
  // Every client so far has been accepted (an accept is counted before the echo comes back).
  const double accepted =
      sample(scrape(rig.metrics), listenerSeries("weir_listener_connections_total")).value_or(-1);
  ASSERT_GE(accepted, 1);

  for (int i = 0; i < kDeniedAttempts; ++i) {
    const std::string source = i % 2 == 0 ? "127.0.0.2" : "127.0.1." + std::to_string(i);
    ASSERT_EQ(attemptFrom(source, weir.addr()), "refused")
        << "attempt " << i << " from " << source;
  }
  ASSERT_EQ(attemptFrom("127.0.0.3", weir.addr()), "echo");
  // Exactly one more accept (127.0.0.3): none of the denied attempts reached a worker.
  EXPECT_EQ(waitSample(rig.metrics, listenerSeries("weir_listener_connections_total"),
                       accepted + 1, true, seconds(5)),
            accepted + 1);
  EXPECT_EQ(waitSample(rig.metrics, listenerSeries("weir_listener_denied_total"),
                       kDeniedAttempts, true, seconds(5)),
            kDeniedAttempts);
  const std::string status = get(rig.metrics, "/status.json");
  EXPECT_NE(status.find("\"access\":\"kernel\""), std::string::npos) << status;
}

// IPv4 and IPv6 prefixes never match each other's clients, in the kernel.
TEST(Access, IPv4AndIPv6ListsStayApart) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirConfig cfg = rig.config({"deny = [\"::/0\"]"});  // front: 127.0.0.1, IPv4 clients
  cfg.listeners.push_back({"v6v4", "back", 0, 4096, "::1", {"deny = [\"0.0.0.0/0\"]"}});
  cfg.listeners.push_back({"v6one", "back", 0, 4096, "::1", {"allow = [\"::1\"]"}});
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip)) << "front serves IPv4 despite ::/0";
  // A listener that refuses ::1 comes by reload: start() checks that every listener accepts.
  cfg = weir.config();
  cfg.listeners.push_back({"v6all", "back", pickFreePort("::1"), 4096, "::1",
                           {"deny = [\"::/0\"]"}});
  ASSERT_TRUE(reload(weir, cfg, 1));
  EXPECT_EQ(attemptFrom("127.0.0.1", weir.addr("front")), "echo");
  EXPECT_EQ(attemptFrom("::1", weir.addr("v6all")), "refused");
  EXPECT_EQ(attemptFrom("::1", weir.addr("v6v4")), "echo");
  EXPECT_EQ(attemptFrom("::1", weir.addr("v6one")), "echo");
}

// Without the steering program (no CAP_BPF), the workers enforce the same list right after
// accept: the client's connect succeeds, then it is reset before any byte passes.
TEST(Access, WithoutBpfTheWorkersRefuseDeniedClientsAfterAccept) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to drop CAP_BPF from a capability set it has";
  }
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to drop capabilities";
  }
  Rig rig;
  WeirProcess weir(rig.config({"allow = [\"127.0.0.0/8\"]", "deny = [\"127.0.0.2\"]"}));
  weir.setWrapper({"/usr/bin/setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon", "--"});
  weir.allowSteeringOff();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  EXPECT_TRUE(weir.logLine("enforced by the workers after accept: BPF steering is not loaded"))
      << weir.logTail();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(attemptFrom("127.0.0.2", weir.addr()), "reset") << "attempt " << i;
  }
  EXPECT_EQ(attemptFrom("127.0.0.3", weir.addr()), "echo");
  EXPECT_EQ(waitSample(rig.metrics, listenerSeries("weir_listener_denied_total"), 10, true,
                       seconds(5)),
            10);
  const std::string status = get(rig.metrics, "/status.json");
  EXPECT_NE(status.find("\"access\":\"workers\""), std::string::npos) << status;
}

// Tens of thousands of prefixes from files reach the kernel, and a reload with a broken file
// leaves the running list as it was.
TEST(Access, LongListsFromFilesAndABrokenFileOnReload) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  WeirProcess weir(rig.config({"allow_file = \"allow.txt\"", "deny_file = \"deny.txt\""}));
  std::string allow = "# the loopback /8, and 30000 hosts of 10/8\n127.0.0.0/8\n";
  for (int i = 0; i < 30000; ++i) {
    allow += "10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
             std::to_string(i & 255) + "\n";
  }
  weir.dir().write("allow.txt", allow);
  weir.dir().write("deny.txt", "127.0.0.2\n127.0.2.0/24\n");
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  EXPECT_TRUE(weir.logLine("access list of 30001 allowed and 2 denied prefixes (any other "
                           "client refused) enforced in the kernel"))
      << weir.logTail();
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused");
  EXPECT_EQ(attemptFrom("127.0.2.9", weir.addr()), "refused");
  EXPECT_EQ(attemptFrom("127.0.3.9", weir.addr()), "echo");

  // A typo in the deny file: the reload fails, naming the list file's line and column.
  weir.dir().write("deny.txt", "127.0.0.3\n127.0.2.0/16\n");
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("reload failed", 1, seconds(10))) << weir.logTail();
  const auto line = weir.logLine("deny.txt:2:1:");
  ASSERT_TRUE(line.has_value()) << weir.logTail();
  EXPECT_NE(line->find("listeners.front.deny_file"), std::string::npos) << *line;
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused") << "the old list stays";
  EXPECT_EQ(attemptFrom("127.0.0.3", weir.addr()), "echo") << "the old list stays";
}

// A reload swaps the list in the kernel with one map update: under steady load, an allowed
// client never fails and a client denied by both lists never gets through, across reloads.
TEST(Access, ReloadsSwapTheListUnderLoadWithoutAGap) {
  if (!canLoadBpf()) {
    GTEST_SKIP() << "needs CAP_BPF and CAP_PERFMON (root) to load the steering program";
  }
  Rig rig;
  const WeirConfig first = rig.config({"deny = [\"127.0.0.4\", \"127.0.0.2\"]"});
  WeirProcess weir(first);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const WeirConfig second = [&] {
    WeirConfig c = weir.config();
    c.listeners.front().lines = {"deny = [\"127.0.0.3\", \"127.0.0.4\"]"};
    return c;
  }();
  const WeirConfig again = [&] {
    WeirConfig c = weir.config();
    c.listeners.front().lines = first.listeners.front().lines;
    return c;
  }();

  LoadClient::Options allowed_opts{weir.addr(), 8, 100, 400, seconds(5)};
  allowed_opts.source = *SockAddr::from("127.0.0.1", 0);
  LoadClient::Options denied_opts{weir.addr(), 8, 100, 400, seconds(5)};
  denied_opts.source = *SockAddr::from("127.0.0.4", 0);
  LoadClient allowed(allowed_opts);
  LoadClient denied(denied_opts);
  allowed.start();
  denied.start();
  for (size_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(reload(weir, i % 2 == 1 ? second : again, i));
  }
  ASSERT_TRUE(waitFor([&] { return allowed.snapshot().completed >= 200; }, seconds(10),
                      milliseconds(20)));
  const LoadStats served = allowed.stop();
  const LoadStats refused = denied.stop();
  std::printf("allowed client: %s\ndenied client: %s\n", served.summary().c_str(),
              refused.summary().c_str());
  EXPECT_EQ(served.failures(), 0u) << served.summary();
  EXPECT_GT(refused.connect_errors, 100u) << refused.summary();
  EXPECT_EQ(refused.completed + refused.resets + refused.incomplete + refused.timeouts, 0u)
      << "a client both lists deny got through: " << refused.summary();
  // The last reload went back to the first list.
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "refused");
  EXPECT_EQ(attemptFrom("127.0.0.3", weir.addr()), "echo");
  ASSERT_TRUE(reload(weir, second, 5));
  EXPECT_EQ(attemptFrom("127.0.0.2", weir.addr()), "echo");
  EXPECT_EQ(attemptFrom("127.0.0.3", weir.addr()), "refused");
}

}  // namespace
}  // namespace weir::test
