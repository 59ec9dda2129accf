// Transparent mode end to end, in network namespaces the test makes (support/netns.h):
//
//   client ns                 weir ns (forwarding)                backend ns
//   10.91.1.2/24    ----  10.91.1.1 | 10.91.2.1   ----  10.91.2.2/24
//   fd00:91:1::2/64       fd00:91:1::1 | fd00:91:2::1    fd00:91:2::2/64
//   default via weir                                     default via weir
//
// weir and `weir-netsetup` run in the weir ns, weir-testsrv in `identify` mode in the backend
// ns; its first line says which peer address it saw. Checked for IPv4 and IPv6:
//   * source = "client": the backend sees the client's own address;
//   * a `transparent = true` listener on a VIP that no namespace owns (10.91.100.10:80,
//     [fd00:91:100::10]:80), reached from the client ns through its default route via weir:
//     the backend sees weir's backend-side address, or with source = "client" the client's;
//   * without weir-netsetup's rules (before `up`, after `down`), `weir -t` warns and names
//     weir-netsetup, and a source = "client" connection does not get through; with them it
//     does.
// Root only: without root the tests skip and say why (packaging/test.sh fails a skip as root).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/process.h"
#include "support/netns.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

const std::string kNetsetupBin = WEIR_NETSETUP_BIN;

// The addresses of one family in the topology above.
struct Family {
  const char* name;
  const char* client;      // the client ns
  const char* weir_front;  // weir's side of the client link
  const char* weir_back;   // weir's side of the backend link
  const char* backend;     // the backend ns
  const char* vip;         // owned by no namespace; intercepted by weir's TPROXY rule
  const char* prefix;      // "/24" or "/64"
};

const Family kIpv4{"IPv4", "10.91.1.2",    "10.91.1.1",    "10.91.2.1",
                   "10.91.2.2", "10.91.100.10", "/24"};
const Family kIpv6{"IPv6",         "fd00:91:1::2",    "fd00:91:1::1", "fd00:91:2::1",
                   "fd00:91:2::2", "fd00:91:100::10", "/64"};

// gtest prints the family's name, not its bytes.
void PrintTo(const Family& f, std::ostream* os) { *os << f.name; }

std::string q(const std::string& s) { return "\"" + s + "\""; }

class TransparentTest : public ::testing::TestWithParam<Family> {
protected:
  void SetUp() override {
    std::string why;
    if (!canUseNetns(&why)) {
      GTEST_SKIP() << why;
    }
    ASSERT_EQ(access(kNetsetupBin.c_str(), X_OK), 0) << kNetsetupBin << " is missing";
    // Both families on every link, whichever the test uses: the topology is the same.
    client_ = topo_.addNamespace("client");
    weir_ = topo_.addNamespace("weir");
    backend_ = topo_.addNamespace("backend");
    topo_.addLink(client_, "eth0", weir_, "front0");
    topo_.addLink(backend_, "eth0", weir_, "back0");
    for (const Family& f : {kIpv4, kIpv6}) {
      topo_.addAddress(client_, "eth0", f.client + std::string(f.prefix));
      topo_.addAddress(weir_, "front0", f.weir_front + std::string(f.prefix));
      topo_.addAddress(weir_, "back0", f.weir_back + std::string(f.prefix));
      topo_.addAddress(backend_, "eth0", f.backend + std::string(f.prefix));
      // The client's default route is also its route to the VIP.
      topo_.addRoute(client_, "default", f.weir_front);
      topo_.addRoute(backend_, "default", f.weir_back);
    }
    topo_.enableForwarding(weir_);
    backend_srv_ = startTestServer(kTestsrvBin, "identify", {"--name", "app"}, fam().backend, 0,
                                   backend_);
  }

  const Family& fam() const { return GetParam(); }

  // A listener on weir's own client-side address (port picked in the weir ns).
  ListenerSpec ownAddressListener() const {
    ListenerSpec l{"front", "back"};
    l.host = fam().weir_front;
    return l;
  }
  // A transparent listener on the VIP, port 80.
  ListenerSpec vipListener() const {
    ListenerSpec l{"vip", "back", 80};
    l.host = fam().vip;
    l.lines = {"transparent = true"};
    return l;
  }
  PoolSpec pool(bool client_source) const {
    PoolSpec p;
    p.name = "back";
    p.backends = {{backend_srv_.endpoint()}};
    if (client_source) {
      p.lines = {"source = " + q("client")};
    }
    return p;
  }
  WeirConfig config(ListenerSpec listener, bool client_source) const {
    WeirConfig c;
    c.listeners = {std::move(listener)};
    c.pools = {pool(client_source)};
    return c;
  }
  WeirNetns where() const { return {weir_, client_}; }

  // `weir-netsetup VERB -c CONFIG` in the weir ns.
  RunResult netsetup(const std::string& verb, const std::string& config) const {
    return runInNetns(weir_, kNetsetupBin, {verb, "-c", config}, seconds(20));
  }
  // `weir -t -c CONFIG` in the weir ns.
  RunResult configCheck(const std::string& config) const {
    return runInNetns(weir_, kWeirBin, {"-t", "-c", config}, seconds(20));
  }

  // Connects from the client ns to `addr`, reads the backend's identify line, then checks
  // that a message is echoed. The peer the backend saw, or a description of the failure.
  ::testing::AssertionResult peerSeenByBackend(const SockAddr& addr, std::string* peer_host) {
    std::string err;
    Fd fd = connectTcpInNetns(client_, addr, seconds(5), &err);
    if (!fd) {
      return ::testing::AssertionFailure() << err;
    }
    const Deadline deadline = deadlineIn(seconds(10));
    std::string line;
    char ch = 0;
    IoStatus st = IoStatus::Ok;
    while ((st = readExact(fd.get(), &ch, 1, deadline)) == IoStatus::Ok && ch != '\n') {
      line.push_back(ch);
    }
    if (st != IoStatus::Ok) {
      return ::testing::AssertionFailure()
             << "no identify line through " << addr.str() << " (" << toString(st)
             << "), read \"" << line << "\"";
    }
    const auto id = parseIdentifyLine(line);
    const auto peer = id ? SockAddr::parse(id->peer()) : std::nullopt;
    if (!peer) {
      return ::testing::AssertionFailure() << "not an identify line: " << line;
    }
    *peer_host = peer->host();
    const IoStatus echo = echoRoundTrip(fd.get(), "both ways through weir\n", deadline);
    if (echo != IoStatus::Ok) {
      return ::testing::AssertionFailure() << "echo after the identify line: " << toString(echo);
    }
    return ::testing::AssertionSuccess();
  }

  NetnsTopology topo_;  // declared first: deleted after everything running inside it
  std::string client_;
  std::string weir_;
  std::string backend_;
  TestServer backend_srv_;
};

::testing::AssertionResult succeeded(const RunResult& r, const std::string& what) {
  if (r.exitCode() == 0) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << what << ": " << (r.timed_out ? "timed out" : describeStatus(r.status))
         << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

TEST_P(TransparentTest, ClientSource) {
  WeirProcess weir(config(ownAddressListener(), true), where());
  ASSERT_TRUE(succeeded(netsetup("up", weir.configPath()), "weir-netsetup up"));
  ASSERT_TRUE(weir.start());
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1));
    std::string peer;
    ASSERT_TRUE(peerSeenByBackend(weir.addr(), &peer));
    EXPECT_EQ(peer, fam().client);
  }
}

TEST_P(TransparentTest, VipInterception) {
  WeirProcess weir(config(vipListener(), false), where());
  ASSERT_TRUE(succeeded(netsetup("up", weir.configPath()), "weir-netsetup up"));
  // Readiness is a connect from the client ns to the VIP: it already needs the TPROXY rule.
  ASSERT_TRUE(weir.start());
  std::string peer;
  ASSERT_TRUE(peerSeenByBackend(*SockAddr::from(fam().vip, 80), &peer));
  EXPECT_EQ(peer, fam().weir_back);
}

TEST_P(TransparentTest, VipInterceptionWithClientSource) {
  WeirProcess weir(config(vipListener(), true), where());
  ASSERT_TRUE(succeeded(netsetup("up", weir.configPath()), "weir-netsetup up"));
  ASSERT_TRUE(weir.start());
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1));
    std::string peer;
    ASSERT_TRUE(peerSeenByBackend(*SockAddr::from(fam().vip, 80), &peer));
    EXPECT_EQ(peer, fam().client);
  }
}

// An access list on an intercepted VIP: the TPROXY rule's socket lookup runs the steering
// program too, which refuses the denied client there (SK_DROP: the lookup finds no socket).
// The rule then does not apply, and the SYN, addressed to a VIP this namespace neither owns
// nor routes, goes nowhere: the client's connect fails (it is not served) rather than getting
// a RST. Each attempt is counted once, though a SYN reaches the program with its IP header
// first on this path.
TEST_P(TransparentTest, AccessListRefusesADeniedClientOfAnInterceptedVip) {
  WeirConfig cfg = config(vipListener(), false);
  cfg.global_lines.push_back("metrics = \"127.0.0.1:9145\"");  // in weir's own namespace
  WeirProcess weir(cfg, where());
  ASSERT_TRUE(succeeded(netsetup("up", weir.configPath()), "weir-netsetup up"));
  ASSERT_TRUE(weir.start());
  std::string peer;
  ASSERT_TRUE(peerSeenByBackend(*SockAddr::from(fam().vip, 80), &peer));
  WeirConfig denied = weir.config();
  denied.listeners.front().lines.push_back("deny = [\"" + std::string(fam().client) + "\"]");
  ASSERT_TRUE(reload(weir, denied, 1));
  constexpr int kAttempts = 2;
  for (int i = 0; i < kAttempts; ++i) {
    std::string err;
    Fd fd = connectTcpInNetns(client_, *SockAddr::from(fam().vip, 80), milliseconds(500), &err);
    EXPECT_FALSE(fd.valid()) << "attempt " << i << " was served";
    std::printf("denied client of the VIP, attempt %d: %s\n", i, err.c_str());
  }
  std::string denied_total;
  const bool counted = waitFor(
      [&] {
        RunResult r = runInNetns(weir_, findProgram("curl"),
                                 {"-sS", "http://127.0.0.1:9145/metrics"}, seconds(5));
        const std::string key = "weir_listener_denied_total{listener=\"vip\"} ";
        const size_t at = r.out.find(key);
        denied_total = at == std::string::npos
                           ? "absent"
                           : r.out.substr(at + key.size(), r.out.find('\n', at) - at - key.size());
        return denied_total == std::to_string(kAttempts);
      },
      seconds(5), milliseconds(100));
  // A connect given up after 0.5 s may leave the kernel retrying its SYN for a moment: those
  // retries are refused and counted too, so the count may be higher; never lower.
  EXPECT_TRUE(counted || std::stoi(denied_total == "absent" ? "0" : denied_total) > kAttempts)
      << "weir_listener_denied_total = " << denied_total;
  std::printf("weir_listener_denied_total = %s\n", denied_total.c_str());
}

// How a source = "client" connection ends without weir-netsetup's return path: weir's SYN
// leaves with the client's address, the backend answers to that address via its default
// route, and the weir ns, having no fwmark rule, forwards the SYN-ACK to the client instead
// of delivering it to weir's socket. So the connect to the backend can never complete; with
// connect_timeout 1s and no retries weir closes the client's connection without a byte.
::testing::AssertionResult closedWithoutReply(const std::string& client_ns,
                                             const SockAddr& addr) {
  std::string err;
  Fd fd = connectTcpInNetns(client_ns, addr, seconds(5), &err);
  if (!fd) {
    return ::testing::AssertionFailure() << "weir's own address did not accept: " << err;
  }
  char ch = 0;
  const IoStatus st = readExact(fd.get(), &ch, 1, deadlineIn(seconds(10)));
  if (st == IoStatus::Eof || st == IoStatus::Reset) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "expected the connection closed within 10 s, got " << toString(st)
         << (st == IoStatus::Ok ? " (a byte from the backend)" : "");
}

TEST_P(TransparentTest, WarningWithoutRules) {
  // `checked`: both kinds, a transparent listener on the VIP and a source = "client" pool;
  // weir -t reads it and weir-netsetup installs and removes its rules. Never started: its VIP
  // is unreachable without the rules, so it could not become ready. `served`: the
  // source = "client" half, running throughout; the rules are the namespace's, whichever
  // config installed them.
  WeirConfig both = config(ownAddressListener(), true);
  both.listeners.push_back(vipListener());
  WeirProcess checked(both, where());
  WeirConfig half = config(ownAddressListener(), true);
  half.pools[0].connect_timeout = "1s";
  half.pools[0].retries = 0;
  WeirProcess served(half, where());

  // A warning line that tells what to run ("weir: warning: transparent mode: no nftables
  // table inet weir, run: weir-netsetup up -c FILE").
  const auto warns = [](const RunResult& r) {
    std::istringstream lines(r.out + r.err);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find("warning") != std::string::npos &&
          line.find("weir-netsetup") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  const RunResult before = configCheck(checked.configPath());
  EXPECT_TRUE(succeeded(before, "weir -t before weir-netsetup up"));
  EXPECT_TRUE(warns(before)) << "no warning naming weir-netsetup without its rules:\n"
                             << before.out << before.err;
  // weir starts and accepts on its own address without the rules (readiness is a TCP
  // connect), but what it sends from the client's address never comes back to it.
  ASSERT_TRUE(served.start());
  EXPECT_TRUE(closedWithoutReply(client_, served.addr()));

  ASSERT_TRUE(succeeded(netsetup("up", checked.configPath()), "weir-netsetup up"));
  const RunResult after_up = configCheck(checked.configPath());
  EXPECT_TRUE(succeeded(after_up, "weir -t after weir-netsetup up"));
  EXPECT_FALSE(warns(after_up)) << "still warns with the rules installed:\n"
                                << after_up.out << after_up.err;
  // The same running weir now gets through.
  std::string peer;
  ASSERT_TRUE(peerSeenByBackend(served.addr(), &peer));
  EXPECT_EQ(peer, fam().client);

  ASSERT_TRUE(succeeded(netsetup("down", checked.configPath()), "weir-netsetup down"));
  const RunResult after_down = configCheck(checked.configPath());
  EXPECT_TRUE(succeeded(after_down, "weir -t after weir-netsetup down"));
  EXPECT_TRUE(warns(after_down)) << "no warning after weir-netsetup down:\n"
                                 << after_down.out << after_down.err;
  EXPECT_TRUE(closedWithoutReply(client_, served.addr()));
}

INSTANTIATE_TEST_SUITE_P(Families, TransparentTest, ::testing::Values(kIpv4, kIpv6),
                         [](const ::testing::TestParamInfo<Family>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace weir::test
