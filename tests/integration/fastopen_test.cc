// [pools.NAME] tcp_fastopen end to end, in a network namespace the test makes (netns.h) with
// TCP Fast Open on for clients and servers:
//
//   net.ipv4.tcp_fastopen = 0x403: 0x1 client, 0x2 server, 0x400 every listener (weir-testsrv
//   sets no TCP_FASTOPEN). Cookies stay required (no 0x200): a server that needs none also
//   sends none, and a client without a cookie never puts data in its SYN (it would need 0x4).
//   So weir's first connect to 127.0.0.1 only asks for a cookie (sendto says EINPROGRESS) and
//   the ones after carry the client's bytes in the SYN: both paths run.
//
// weir, weir-testsrv and the client all run in that namespace. The listener has defer_accept,
// so weir sees each connection only once the client's bytes are there: they are ready when
// weir connects, as in production for a client-first protocol. The namespace's
// TcpExtTCPFastOpenActive (SYN data acknowledged: weir's side, the only TFO client here) and
// TcpExtTCPFastOpenPassive (a connection accepted with SYN data: the backend's side) tell
// that the data rode in the SYN.
// Root only: without root the tests skip and say why.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/netns.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/test_server.h"
#include "support/tls_client.h"
#include "weir_process.h"

namespace weir::test {
namespace {

const std::string kWeirctlBin = WEIRCTL_BIN;

// The TcpExt counters of /proc/net/netstat as the calling thread's namespace sees them.
std::map<std::string, int64_t> tcpExt() {
  std::ifstream in("/proc/thread-self/net/netstat");
  std::map<std::string, int64_t> out;
  std::string names;
  std::string values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("TcpExt:", 0) != 0) {
      continue;
    }
    std::istringstream n(names);
    std::istringstream v(values);
    std::string name;
    std::string value;
    n >> name;
    v >> value;
    while (n >> name && v >> value) {
      out[name] = std::stoll(value);
    }
  }
  return out;
}

// `weirctl -s SOCKET --json backends`: the failed_connects of `address`, -1 if not found.
int64_t failedConnects(const std::string& socket, const std::string& address) {
  const RunResult r = run(kWeirctlBin, {"-s", socket, "--json", "backends"}, seconds(30));
  EXPECT_EQ(r.exitCode(), 0) << r.out << r.err;
  const std::string key = "\"failed_connects\":";
  const size_t at = r.out.find("{\"address\":\"" + address + "\"");
  const size_t field = at == std::string::npos ? at : r.out.find(key, at);
  if (field == std::string::npos || r.out.find('}', at) < field) {
    ADD_FAILURE() << "no failed_connects for " << address << " in:\n" << r.out;
    return -1;
  }
  return std::stoll(r.out.substr(field + key.size()));
}

struct FastOpenCounts {
  int64_t active = -1;   // TCPFastOpenActive
  int64_t passive = -1;  // TCPFastOpenPassive
};

class FastOpenTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!canUseNetns(&why)) {
      GTEST_SKIP() << why;
    }
    ns_ = topo_.addNamespace("tfo");
    std::string err;
    bool set = false;
    ASSERT_TRUE(inNetns(
        ns_,
        [&] {
          std::ofstream out("/proc/sys/net/ipv4/tcp_fastopen");
          out << 0x403 << std::endl;
          set = out.good();
        },
        &err))
        << err;
    ASSERT_TRUE(set) << "could not set net.ipv4.tcp_fastopen in " << ns_;
  }

  FastOpenCounts counts() const {
    FastOpenCounts c;
    inNetns(ns_, [&] {
      const auto ext = tcpExt();
      c.active = ext.count("TCPFastOpenActive") ? ext.at("TCPFastOpenActive") : -1;
      c.passive = ext.count("TCPFastOpenPassive") ? ext.at("TCPFastOpenPassive") : -1;
    });
    return c;
  }

  TestServer server(const std::string& mode, const std::vector<std::string>& extra = {}) const {
    return startTestServer(kTestsrvBin, mode, extra, "127.0.0.1", 0, ns_);
  }

  // Listener "front" (defer_accept) -> pool "back" with `backends` and the extra `lines`.
  static WeirConfig config(const std::vector<std::string>& backends,
                           std::vector<std::string> lines) {
    WeirConfig c = WeirConfig::simple(backends, 2);
    c.listeners[0].lines.push_back("defer_accept = true");
    c.pools[0].lines = std::move(lines);
    return c;
  }

  WeirNetns where() const { return {ns_, ns_}; }

  Fd connectClient(const WeirProcess& weir) const {
    std::string err;
    Fd fd = connectTcpInNetns(ns_, weir.addr(), seconds(5), &err);
    EXPECT_TRUE(fd) << err;
    return fd;
  }

  // A message of `size` bytes, different for every `seed`.
  static std::string message(size_t size, unsigned seed) {
    std::string msg;
    msg.reserve(size);
    uint32_t x = seed * 2654435761u + 1;
    while (msg.size() < size) {
      x = x * 1664525u + 1013904223u;
      msg.push_back(static_cast<char>('a' + (x >> 24) % 26));
    }
    return msg;
  }

  // Sends `msg` through weir and checks that the echo is byte-exact.
  ::testing::AssertionResult echoed(const WeirProcess& weir, const std::string& msg) const {
    Fd fd = connectClient(weir);
    if (!fd) {
      return ::testing::AssertionFailure() << "no connection to weir";
    }
    const IoStatus st = echoRoundTrip(fd.get(), msg, deadlineIn(seconds(10)));
    if (st != IoStatus::Ok) {
      return ::testing::AssertionFailure()
             << "echo of " << msg.size() << " bytes: " << toString(st);
    }
    return ::testing::AssertionSuccess();
  }

  NetnsTopology topo_;  // declared first: deleted after everything running inside it
  std::string ns_;
};

TEST_F(FastOpenTest, ClientBytesRideInTheSyn) {
  TestServer echo = server("echo");
  TempDir logs("weir-log");
  WeirConfig c = config({echo.endpoint()}, {"tcp_fastopen = true"});
  c.access_log = logs.file("access.log");
  WeirProcess weir(c, where());
  ASSERT_TRUE(weir.start());
  const FastOpenCounts before = counts();
  ASSERT_GE(before.active, 0) << "no TCPFastOpenActive in /proc/net/netstat";
  // The first connect fetches the cookie; the others send their bytes with the SYN. Sizes
  // from one byte to more than the copy buffer (16 KiB: the rest follows the SYN's share).
  const size_t sizes[] = {1, 100, 1400, 5000, 16384, 70000, 7};
  for (unsigned i = 0; i < std::size(sizes); ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1));
    ASSERT_TRUE(echoed(weir, message(sizes[i], i)));
  }
  const FastOpenCounts after = counts();
  EXPECT_GE(after.active - before.active, 1) << "weir sent no data in a SYN";
  EXPECT_GE(after.passive - before.passive, 1) << "the backend accepted no SYN data";
  // Bytes up count what the SYN carried once, like any other byte.
  // (The sizes differ, so each names one connection; weir's readiness probe made another.)
  for (const size_t size : sizes) {
    const std::string both = " up=" + std::to_string(size) + " down=" + std::to_string(size) + " ";
    EXPECT_EQ(waitAccessLines(c.access_log, both, 1).size(), 1u) << "no line with" << both;
  }
}

TEST_F(FastOpenTest, OffByDefault) {
  TestServer echo = server("echo");
  WeirProcess weir(config({echo.endpoint()}, {}), where());
  ASSERT_TRUE(weir.start());
  const FastOpenCounts before = counts();
  for (unsigned i = 0; i < 5; ++i) {
    ASSERT_TRUE(echoed(weir, message(300, i)));
  }
  const FastOpenCounts after = counts();
  EXPECT_EQ(after.active, before.active);
  EXPECT_EQ(after.passive, before.passive);
}

// The first backend refuses (nothing listens on its port), the second echoes. Round-robin with
// passive_fall = 0 keeps sending connections to the refused one first: each of those retries
// on the echo backend with the held bytes from the start, which must arrive exactly once.
TEST_F(FastOpenTest, RetryResendsTheHeldBytes) {
  TestServer echo = server("echo");
  const std::string refused = "127.0.0.1:" + std::to_string(pickFreePortInNetns(ns_, "127.0.0.1"));
  TempDir run_dir("weir-run");
  const std::string socket = run_dir.file("weir.sock");
  WeirConfig c = config({refused, echo.endpoint()}, {"tcp_fastopen = true", "passive_fall = 0"});
  c.pools[0].retries = 1;
  c.global_lines.push_back("control_socket = \"" + socket + "\"");
  WeirProcess weir(c, where());
  ASSERT_TRUE(weir.start());
  const FastOpenCounts before = counts();
  constexpr unsigned kConnections = 20;
  for (unsigned i = 0; i < kConnections; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1));
    ASSERT_TRUE(echoed(weir, message(200 + 97 * i, i)));
  }
  EXPECT_GE(counts().active - before.active, 1) << "weir sent no data in a SYN";

  // Two workers, each alternating: at least one connection per worker went there first.
  EXPECT_GE(failedConnects(socket, refused), 1);
}

// The other two ways a connect fails, each retried with the held bytes: a backend without a
// route (sendto itself fails, EHOSTUNREACH) and one that never answers (its SYNs go nowhere:
// connect_timeout). The echo backend gets every client's bytes exactly once; both failures
// count against their backends.
TEST_F(FastOpenTest, UnreachableAndSilentBackendsAreRetried) {
  // 10.99.0.0/24 via lo: the SYN comes back in on lo, is not for this host and is dropped.
  const std::vector<std::vector<std::string>> routes = {
      {"route", "add", "unreachable", "10.98.0.0/24"},
      {"route", "add", "10.99.0.0/24", "dev", "lo"}};
  for (const auto& route : routes) {
    const RunResult r = runInNetns(ns_, ipBinary(), route, seconds(10));
    ASSERT_EQ(r.exitCode(), 0) << r.err;
  }
  const std::string unreachable = "10.98.0.1:80";
  const std::string silent = "10.99.0.1:80";
  TestServer echo = server("echo");
  TempDir run_dir("weir-run");
  const std::string socket = run_dir.file("weir.sock");
  WeirConfig c =
      config({unreachable, silent, echo.endpoint()}, {"tcp_fastopen = true", "passive_fall = 0"});
  c.pools[0].connect_timeout = "200ms";
  c.global_lines.push_back("control_socket = \"" + socket + "\"");
  WeirProcess weir(c, where());
  ASSERT_TRUE(weir.start());
  for (unsigned i = 0; i < 8; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1));
    ASSERT_TRUE(echoed(weir, message(300 + 11 * i, i)));
  }
  EXPECT_GE(failedConnects(socket, unreachable), 1);
  EXPECT_GE(failedConnects(socket, silent), 1);
}

// A client that sends and at once half-closes: its bytes (held across the retry after the
// refused backend) and then its FIN reach the echo backend, which answers and closes.
TEST_F(FastOpenTest, HalfCloseAfterEarlyData) {
  TestServer echo = server("echo");
  const std::string refused = "127.0.0.1:" + std::to_string(pickFreePortInNetns(ns_, "127.0.0.1"));
  WeirConfig c = config({refused, echo.endpoint()}, {"tcp_fastopen = true", "passive_fall = 0"});
  c.pools[0].retries = 1;
  WeirProcess weir(c, where());
  ASSERT_TRUE(weir.start());
  for (unsigned i = 0; i < 10; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1));
    Fd fd = connectClient(weir);
    ASSERT_TRUE(fd);
    const std::string msg = message(100 + 1000 * i, i);
    const Deadline deadline = deadlineIn(seconds(10));
    ASSERT_EQ(writeAll(fd.get(), msg, deadline), IoStatus::Ok);
    ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
    EXPECT_EQ(readAllUntilClosed(fd.get(), deadline), msg);
  }
}

// With proxy_protocol, the header goes first in the SYN, once: the backend parses one header,
// and what follows it, echoed, is exactly the client's bytes.
TEST_F(FastOpenTest, ProxyHeaderPrecedesTheDataOnce) {
  for (const char* version : {"v1", "v2"}) {
    SCOPED_TRACE(version);
    TestServer backend = server("identify", {"--name", "app", "--proxy-protocol"});
    WeirProcess weir(config({backend.endpoint()},
                            {"tcp_fastopen = true", std::string("proxy_protocol = \"") + version +
                                                        "\""}),
                     where());
    ASSERT_TRUE(weir.start());
    const FastOpenCounts before = counts();
    for (unsigned i = 0; i < 4; ++i) {
      SCOPED_TRACE("connection " + std::to_string(i + 1));
      Fd fd = connectClient(weir);
      ASSERT_TRUE(fd);
      const auto local = SockAddr::local(fd.get());
      ASSERT_TRUE(local);
      const std::string msg = message(500 + i, i);
      const Deadline deadline = deadlineIn(seconds(10));
      // Sent before the identify line is read: the bytes are there when weir connects.
      ASSERT_EQ(writeAll(fd.get(), msg, deadline), IoStatus::Ok);
      auto id = readIdentifyLine(fd.get(), deadline);
      ASSERT_TRUE(id);
      EXPECT_EQ(id->proxy(), version);
      EXPECT_EQ(id->proxySource(), local->str());
      std::string back(msg.size(), '\0');
      ASSERT_EQ(readExact(fd.get(), back.data(), back.size(), deadline), IoStatus::Ok);
      EXPECT_EQ(back, msg) << "a second header, or the data mangled";
    }
    const FastOpenCounts after = counts();
    EXPECT_GE(after.active - before.active, 1) << "weir sent no data in a SYN";
    EXPECT_GE(after.passive - before.passive, 1) << "the backend accepted no SYN data";
  }
}

// TLS listeners: tls-passthrough peeks at the ClientHello and leaves it in the socket, so it is
// what rides in the SYN. A tls-terminate client's bytes are TLS records for weir itself: those
// sessions connect without early data and still work. (The connect follows the handshake in
// the same call, after OpenSSL read what the socket held, so a record that would be read raw
// if weir did not skip them only arrives in a window this test cannot force.)
TEST_F(FastOpenTest, TlsListeners) {
  TempDir dir;
  TestCa ca{"weir tfo test CA"};
  PemFiles leaf = writePem(dir, "a", ca.issue({.common_name = "a.test", .dns_names = {"a.test"}}));
  TestServer tls_backend =
      server("identify", {"--name", "app", "--tls-cert", leaf.cert, "--tls-key", leaf.key});
  TestServer echo = server("echo");
  WeirConfig c;
  c.listeners = {{"pass", "tls_app"}, {"term", "plain"}};
  c.listeners[0].lines = {"mode = \"tls-passthrough\""};
  c.listeners[1].lines = {"mode = \"tls-terminate\"",
                          "tls.certificates = [{ cert = \"" + leaf.cert + "\", key = \"" +
                              leaf.key + "\" }]"};
  c.pools = {{"tls_app", {{tls_backend.endpoint()}}}, {"plain", {{echo.endpoint()}}}};
  for (PoolSpec& p : c.pools) {
    p.lines = {"tcp_fastopen = true"};
  }
  WeirProcess weir(c, where());
  ASSERT_TRUE(weir.start());
  TlsClientOptions o;
  o.sni = "a.test";
  // A TLS client made inside the namespace (its socket stays there).
  auto connect = [&](const std::string& listener) {
    std::optional<TlsClient> client;
    inNetns(ns_, [&] { client.emplace(TlsClient::connect(weir.addr(listener), o)); });
    return client;
  };

  FastOpenCounts before = counts();
  for (unsigned i = 0; i < 3; ++i) {
    SCOPED_TRACE("passthrough connection " + std::to_string(i + 1));
    auto client = connect("pass");
    ASSERT_TRUE(client && client->ok()) << (client ? client->handshake().error : "no client");
    const Deadline deadline = deadlineIn(seconds(10));
    std::string line;
    ASSERT_EQ(client->readLine(&line, deadline), IoStatus::Ok);
    auto id = parseIdentifyLine(line);
    ASSERT_TRUE(id) << line;
    EXPECT_EQ(id->sni(), "a.test");  // the backend did the client's own handshake
    const std::string msg = message(300, i);
    ASSERT_EQ(client->write(msg, deadline), IoStatus::Ok);
    std::string back;
    ASSERT_EQ(client->read(msg.size(), &back, deadline), IoStatus::Ok);
    EXPECT_EQ(back, msg);
  }
  FastOpenCounts after = counts();
  EXPECT_GE(after.active - before.active, 1) << "no ClientHello rode in a SYN";

  before = after;
  for (unsigned i = 0; i < 3; ++i) {
    SCOPED_TRACE("terminate connection " + std::to_string(i + 1));
    auto client = connect("term");
    ASSERT_TRUE(client && client->ok()) << (client ? client->handshake().error : "no client");
    const Deadline deadline = deadlineIn(seconds(10));
    const std::string msg = message(300, i);
    ASSERT_EQ(client->write(msg, deadline), IoStatus::Ok);
    std::string back;
    ASSERT_EQ(client->read(msg.size(), &back, deadline), IoStatus::Ok);
    EXPECT_EQ(back, msg);
  }
  after = counts();
  EXPECT_EQ(after.active, before.active) << "a tls-terminate session sent early data";
}

}  // namespace
}  // namespace weir::test
