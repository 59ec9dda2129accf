// The PROXY protocol through the real weir binary, on 127.0.0.1:
// - sending: pools with proxy_protocol = "v1" / "v2" put a header before the client's bytes,
//   which a backend that parses it (weir-testsrv --proxy-protocol, HAProxy with accept-proxy,
//   nginx with `listen ... proxy_protocol`) reads as the client's address; over TLS the v2
//   header carries the SNI, the ALPN and the TLS version and cipher; health checks of such a
//   pool send a v2 LOCAL header first;
// - accepting: listeners with accept_proxy_protocol take the client's address from a trusted
//   balancer's header (also cut into segments), and close untrusted peers, malformed, partial
//   or missing headers without affecting anything else;
// - source = "client" on loopback (root): the backend sees the client's own 127.0.0.x address.
// Transparent mode across network namespaces is in transparent_test.cc.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/process.h"
#include "support/test_certs.h"
#include "support/test_server.h"
#include "support/tls_client.h"
#include "weir_process.h"

namespace weir::test {
namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

TestServer proxyIdentifyServer(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--name", name, "--proxy-protocol"};
  args.insert(args.end(), extra.begin(), extra.end());
  return startTestServer(kTestsrvBin, "identify", args);
}

PoolSpec pool(const std::string& name, const TestServer& backend,
              std::vector<std::string> lines = {}) {
  PoolSpec p;
  p.name = name;
  p.backends = {{backend.endpoint()}};
  p.lines = std::move(lines);
  return p;
}

// A config whose access log is in weir's own directory.
struct ProxySetup {
  std::unique_ptr<WeirProcess> weir;
  ProxySetup(std::vector<ListenerSpec> listeners, std::vector<PoolSpec> pools,
        unsigned workers = 2) {
    WeirConfig c;
    c.workers = std::to_string(workers);
    c.listeners = std::move(listeners);
    c.pools = std::move(pools);
    weir = std::make_unique<WeirProcess>(c);
    WeirConfig with_log = weir->config();
    with_log.access_log = weir->dir().file("access.log");
    weir->writeConfig(with_log);
  }
  std::string accessLog() const { return weir->dir().file("access.log"); }
};

std::optional<IdentifyLine> identifyPlain(const Fd& fd) {
  return readIdentifyLine(fd.get(), Clock::now() + seconds(10));
}

// A TCP connection to `to` from the local address `from` (port chosen by the kernel).
Fd connectFrom(const std::string& from, const SockAddr& to) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
    return Fd();
  }
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), to.get(), to.len) != 0) {
    return Fd();
  }
  return fd;
}

// "IP:PORT" of a connected socket's own end.
std::string localEnd(const Fd& fd) {
  auto addr = SockAddr::local(fd.get());
  return addr ? addr->str() : "?";
}

// Whether the peer closes `fd` (EOF or reset) before `timeout`, having sent nothing.
bool closedWithoutData(const Fd& fd, Clock::duration timeout = seconds(10)) {
  char buf[64];
  const Deadline deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
      continue;
    }
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      return true;
    }
    if (n > 0) {
      return false;
    }
  }
}

// Whether `fd` stays open and silent for `quiet` (the other end is waiting for more bytes).
bool staysOpenFor(const Fd& fd, Clock::duration quiet) {
  pollfd p{fd.get(), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<milliseconds>(quiet).count())) ==
         0;
}

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) {
    out.push_back(static_cast<char>(b));
  }
  return out;
}

const std::string kV2Sig = bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                                  0x54, 0x0A});

// A v2 PROXY TCP4 header for src -> dst, written out by hand from the spec's layout.
std::string v2Tcp4(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  std::string h = kV2Sig + bytes({0x21, 0x11, 0x00, 12});
  in_addr a{};
  ::inet_pton(AF_INET, src, &a);
  h.append(reinterpret_cast<const char*>(&a), 4);
  ::inet_pton(AF_INET, dst, &a);
  h.append(reinterpret_cast<const char*>(&a), 4);
  h += bytes({sport >> 8, sport & 0xff, dport >> 8, dport & 0xff});
  return h;
}

// --- sending -----------------------------------------------------------------------------

TEST(ProxyProtocolSend, V1HeaderCarriesTheClientAndTheAddressItConnectedTo) {
  TestServer backend = proxyIdentifyServer("A");
  ProxySetup s({{"front", "p"}}, {pool("p", backend, {"proxy_protocol = \"v1\""})});
  ASSERT_TRUE(s.weir->start());
  for (int i = 0; i < 3; ++i) {
    Fd fd = connectTcp(s.weir->addr("front"), seconds(5));
    ASSERT_TRUE(fd);
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->get("proxy"), "v1");
    EXPECT_EQ(id->get("src"), localEnd(fd));  // the client's own address and port
    EXPECT_EQ(id->get("dst"), s.weir->addr("front").str());
    EXPECT_EQ(id->peer(), localEnd(fd));  // the backend takes the header's source as the peer
  }
}

TEST(ProxyProtocolSend, V2HeaderCarriesTheClient) {
  TestServer backend = proxyIdentifyServer("A");
  ProxySetup s({{"front", "p"}}, {pool("p", backend, {"proxy_protocol = \"v2\""})});
  ASSERT_TRUE(s.weir->start());
  Fd fd = connectTcp(s.weir->addr("front"), seconds(5));
  ASSERT_TRUE(fd);
  auto id = identifyPlain(fd);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->get("proxy"), "v2");
  EXPECT_EQ(id->get("src"), localEnd(fd));
  EXPECT_EQ(id->get("dst"), s.weir->addr("front").str());
  // The connection still carries bytes both ways after the header.
  ASSERT_EQ(writeAll(fd.get(), "ping\n", Clock::now() + seconds(5)), IoStatus::Ok);
}

TEST(ProxyProtocolSend, IPv6ClientsGetTcp6Headers) {
  TestServer backend = proxyIdentifyServer("A");
  for (const char* version : {"v1", "v2"}) {
    SCOPED_TRACE(version);
    ListenerSpec l{"front6", "p"};
    l.host = "::1";
    ProxySetup s({l}, {pool("p", backend, {std::string("proxy_protocol = \"") + version + "\""})});
    ASSERT_TRUE(s.weir->start());
    Fd fd = connectTcp(s.weir->addr("front6"), seconds(5));
    ASSERT_TRUE(fd);
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->get("proxy"), version);
    EXPECT_EQ(id->get("src"), localEnd(fd));  // "[::1]:PORT"
    EXPECT_EQ(id->get("src").rfind("[::1]:", 0), 0u) << id->get("src");
    EXPECT_EQ(id->get("dst"), s.weir->addr("front6").str());
  }
}

TEST(ProxyProtocolSend, V2OverTerminatedTlsCarriesSniAlpnAndTlsDetails) {
  TempDir dir;
  TestCa ca{"weir proxy test CA"};
  PemFiles leaf = writePem(dir, "a", ca.issue({.common_name = "a.test", .dns_names = {"a.test"}}));
  TestServer backend = proxyIdentifyServer("A");
  ListenerSpec l{"secure", "p"};
  l.lines = {"mode = \"tls-terminate\"",
             "tls.certificates = [{ cert = " + q(leaf.cert) + ", key = " + q(leaf.key) + " }]",
             "tls.alpn = [\"h2\", \"http/1.1\"]"};
  ProxySetup s({l}, {pool("p", backend, {"proxy_protocol = \"v2\""})});
  ASSERT_TRUE(s.weir->start());
  TlsClientOptions o;
  o.sni = "a.test";
  o.alpn = {"http/1.1"};
  o.min_version = TlsVersion::Tls13;
  o.timeout = seconds(10);
  TlsClient c = TlsClient::connect(s.weir->addr("secure"), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  std::string line;
  ASSERT_EQ(c.readLine(&line, Clock::now() + seconds(10)), IoStatus::Ok);
  auto id = parseIdentifyLine(line);
  ASSERT_TRUE(id.has_value()) << line;
  EXPECT_EQ(id->get("proxy"), "v2");
  EXPECT_EQ(id->get("authority"), "a.test");
  EXPECT_EQ(id->get("proxy_alpn"), "http/1.1");
  EXPECT_EQ(id->get("ssl"), "1");
  EXPECT_EQ(id->get("ssl_version"), "TLSv1.3");
  EXPECT_FALSE(id->get("ssl_cipher").empty());
  EXPECT_EQ(id->tls(), "none");  // the backend gets plaintext after the header
}

TEST(ProxyProtocolSend, V2OverPassthroughCarriesTheSniAsAuthority) {
  TempDir dir;
  TestCa ca{"weir proxy test CA"};
  PemFiles leaf = writePem(dir, "a", ca.issue({.common_name = "a.test", .dns_names = {"a.test"}}));
  // The backend reads weir's header, then does the TLS handshake with the client.
  TestServer backend =
      proxyIdentifyServer("A", {"--tls-cert", leaf.cert, "--tls-key", leaf.key});
  ListenerSpec l{"pass", "p"};
  l.lines = {"mode = \"tls-passthrough\""};
  ProxySetup s({l}, {pool("p", backend, {"proxy_protocol = \"v2\""})});
  ASSERT_TRUE(s.weir->start());
  TlsClientOptions o;
  o.sni = "a.test";
  o.timeout = seconds(10);
  TlsClient c = TlsClient::connect(s.weir->addr("pass"), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  std::string line;
  ASSERT_EQ(c.readLine(&line, Clock::now() + seconds(10)), IoStatus::Ok);
  auto id = parseIdentifyLine(line);
  ASSERT_TRUE(id.has_value()) << line;
  EXPECT_EQ(id->get("proxy"), "v2");
  EXPECT_EQ(id->get("authority"), "a.test");
  EXPECT_EQ(id->get("ssl"), "0");  // weir did not terminate this TLS: no SSL TLV
  EXPECT_EQ(id->sni(), "a.test");   // and the backend saw the client's own handshake
}

TEST(ProxyProtocolSend, HealthChecksSendALocalHeaderFirst) {
  // An HTTP backend that requires a PROXY header on every connection, in two pools: the one
  // that speaks PROXY keeps it up (its checks send a LOCAL header first); the control pool,
  // which does not, sees its checks fail at once (fall = 1), which shows checks have run.
  TestServer backend = startTestServer(kTestsrvBin, "http", {"--proxy-protocol"});
  const std::string health =
      "kind = \"http\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1";
  PoolSpec with = pool("with", backend, {"proxy_protocol = \"v2\""});
  with.health = health;
  PoolSpec without = pool("without", backend);
  without.health = health;
  ProxySetup s({{"front", "with"}, {"control", "without"}}, {with, without});
  ASSERT_TRUE(s.weir->start());
  ASSERT_TRUE(s.weir->waitForLogLines("pool without: backend " + backend.endpoint() + " is down",
                                      1, seconds(10)))
      << s.weir->logTail();
  // Three more intervals: a failed check of the PROXY pool would have taken it down.
  EXPECT_FALSE(s.weir->waitForLogLines("pool with: backend", 1, milliseconds(600)))
      << s.weir->logTail();
  Fd fd = connectTcp(s.weir->addr("front"), seconds(5));
  ASSERT_TRUE(fd);
  ASSERT_EQ(writeAll(fd.get(), "GET / HTTP/1.0\r\n\r\n", Clock::now() + seconds(5)), IoStatus::Ok);
  char buf[9] = {};
  ASSERT_EQ(readExact(fd.get(), buf, 9, Clock::now() + seconds(5)), IoStatus::Ok);
  EXPECT_EQ(std::string(buf, 9), "HTTP/1.1 ");
}

// --- accepting ---------------------------------------------------------------------------

ListenerSpec accepting(const std::string& trusted = "127.0.0.0/8",
                       std::vector<std::string> more = {}) {
  ListenerSpec l{"front", "p"};
  l.lines = {"accept_proxy_protocol = true", "trusted = [" + q(trusted) + "]"};
  l.lines.insert(l.lines.end(), more.begin(), more.end());
  return l;
}

TEST(ProxyProtocolAccept, TheHeadersSourceStandsForTheClient) {
  TestServer backend = proxyIdentifyServer("A");
  ProxySetup s({accepting()}, {pool("p", backend, {"proxy_protocol = \"v2\""})});
  ASSERT_TRUE(s.weir->start());
  struct Case {
    std::string header;
    std::string src;
    std::string dst;
  };
  const std::vector<Case> cases = {
      {"PROXY TCP4 198.51.100.7 203.0.113.9 5555 443\r\n", "198.51.100.7:5555",
       "203.0.113.9:443"},
      {"PROXY TCP6 2001:db8::7 2001:db8::9 6666 443\r\n", "[2001:db8::7]:6666",
       "[2001:db8::9]:443"},
      {v2Tcp4("192.0.2.33", 4444, "192.0.2.1", 80), "192.0.2.33:4444", "192.0.2.1:80"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.src);
    Fd fd = connectTcp(s.weir->addr("front"), seconds(5));
    ASSERT_TRUE(fd);
    ASSERT_EQ(writeAll(fd.get(), c.header + "hello\n", Clock::now() + seconds(5)), IoStatus::Ok);
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->get("src"), c.src);
    EXPECT_EQ(id->get("dst"), c.dst);
  }
  // The access log names the header's client and the balancer it came through.
  auto lines = waitAccessLines(s.accessLog(), "client=198.51.100.7:5555", 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" proxy=v1 via=127.0.0.1:"), std::string::npos) << lines[0];
}

TEST(ProxyProtocolAccept, AHeaderCutIntoSegmentsIsReassembled) {
  TestServer backend = proxyIdentifyServer("A");
  ProxySetup s({accepting()}, {pool("p", backend, {"proxy_protocol = \"v1\""})});
  ASSERT_TRUE(s.weir->start());
  for (const std::string& header :
       {std::string("PROXY TCP4 198.51.100.8 203.0.113.9 5556 443\r\n"),
        v2Tcp4("198.51.100.9", 5557, "203.0.113.9", 443)}) {
    Fd fd = connectTcp(s.weir->addr("front"), seconds(5));
    ASSERT_TRUE(fd);
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Three pieces, each cut mid-field; weir must wait (and say nothing) between them.
    const size_t cuts[] = {0, 5, 14, header.size()};
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(writeAll(fd.get(), header.substr(cuts[i], cuts[i + 1] - cuts[i]),
                         Clock::now() + seconds(5)),
                IoStatus::Ok);
      if (i < 2) {
        EXPECT_TRUE(staysOpenFor(fd, milliseconds(100)));
      }
    }
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->get("proxy"), "v1");
    EXPECT_NE(id->get("src").find("198.51.100."), std::string::npos) << id->get("src");
  }
}

TEST(ProxyProtocolAccept, UntrustedMalformedPartialAndMissingHeadersCloseOnlyThatConnection) {
  TestServer backend = proxyIdentifyServer("A");
  ProxySetup trusting({accepting("127.0.0.0/8", {"proxy_protocol_timeout = \"300ms\""})},
                 {pool("p", backend, {"proxy_protocol = \"v1\""})}, 1);
  ASSERT_TRUE(trusting.weir->start());
  const std::vector<pid_t> workers = trusting.weir->waitForWorkers(1);
  ASSERT_EQ(workers.size(), 1u);

  struct Case {
    std::string name;
    std::string sent;
    std::string reason;
  };
  std::string v2_too_long = kV2Sig + bytes({0x21, 0x11, 0x20, 0x00});  // 8192 bytes claimed
  std::string v2_overrun = kV2Sig + bytes({0x21, 0x11, 0x00, 12 + 3}) +
                           std::string(12, '\x01') + bytes({0x02, 0x00, 0x09});  // TLV overruns
  std::string v2_bad_version = kV2Sig + bytes({0x31, 0x11, 0x00, 12}) + std::string(12, '\x01');
  const std::vector<Case> cases = {
      {"plain client", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "reason=bad-proxy-header"},
      {"wrong signature", "PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "reason=bad-proxy-header"},
      {"v1 without CRLF in 107 bytes", "PROXY TCP4 " + std::string(120, '1'),
       "reason=bad-proxy-header"},
      {"v1 bad address", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "reason=bad-proxy-header"},
      {"v2 over the size limit", v2_too_long, "reason=bad-proxy-header"},
      {"v2 TLV overruns the length", v2_overrun, "reason=bad-proxy-header"},
      {"v2 bad version", v2_bad_version, "reason=bad-proxy-header"},
      {"partial header, then silence", "PROXY TCP4 198.51", "reason=proxy-header-timeout"},
      {"partial header, then close", "PROXY TCP4 198.51", "reason=bad-proxy-header"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Fd fd = connectTcp(trusting.weir->addr("front"), seconds(5));
    ASSERT_TRUE(fd);
    const std::string me = "client=" + localEnd(fd) + " ";
    ASSERT_EQ(writeAll(fd.get(), c.sent, Clock::now() + seconds(5)), IoStatus::Ok);
    if (c.name == "partial header, then close") {
      ::shutdown(fd.get(), SHUT_WR);
    }
    EXPECT_TRUE(closedWithoutData(fd));
    // Counted in the access log, with the reason and no backend.
    const auto lines = waitAccessLines(trusting.accessLog(), me, 1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(c.reason), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" backend=- "), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" proxy_error=\""), std::string::npos) << lines[0];
  }
  // Nothing reached the backend, the worker is the same process, and it still serves.
  EXPECT_EQ(trusting.weir->workerPids(), workers);
  Fd ok = connectTcp(trusting.weir->addr("front"), seconds(5));
  ASSERT_TRUE(ok);
  ASSERT_EQ(writeAll(ok.get(), "PROXY TCP4 198.51.100.1 203.0.113.1 1 2\r\n",
                     Clock::now() + seconds(5)),
            IoStatus::Ok);
  auto id = identifyPlain(ok);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->get("src"), "198.51.100.1:1");

  // A listener that trusts another network closes 127.0.0.1 before reading anything.
  ProxySetup strict({accepting("10.0.0.0/8")}, {pool("p", backend, {"proxy_protocol = \"v1\""})});
  ASSERT_TRUE(strict.weir->start());
  Fd fd = connectTcp(strict.weir->addr("front"), seconds(5));
  ASSERT_TRUE(fd);
  const std::string me = "client=" + localEnd(fd) + " ";
  (void)writeAll(fd.get(), "PROXY TCP4 198.51.100.1 203.0.113.1 1 2\r\n", Clock::now() + seconds(5));
  EXPECT_TRUE(closedWithoutData(fd));
  const auto lines = waitAccessLines(strict.accessLog(), me, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("reason=proxy-untrusted"), std::string::npos) << lines[0];
}

// --- source = "client" on loopback ---------------------------------------------------------

TEST(ClientSource, TheBackendSeesTheClientsOwnAddress) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "IP_TRANSPARENT needs CAP_NET_ADMIN: run as root";
  }
  TestServer backend = startTestServer(kTestsrvBin, "identify", {"--name", "A"});
  // A trusted balancer may also name the client: weir then connects from that address.
  ListenerSpec direct{"direct", "p"};
  ListenerSpec via = accepting();
  via.name = "via";
  ProxySetup s({direct, via}, {pool("p", backend, {"source = \"client\""})});
  ASSERT_TRUE(s.weir->start());
  for (const char* from : {"127.0.0.5", "127.0.0.6"}) {
    Fd fd = connectFrom(from, s.weir->addr("direct"));
    ASSERT_TRUE(fd) << from;
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->peer().substr(0, id->peer().find(':')), from);
  }
  Fd fd = connectTcp(s.weir->addr("via"), seconds(5));
  ASSERT_TRUE(fd);
  ASSERT_EQ(writeAll(fd.get(), "PROXY TCP4 127.0.0.77 127.0.0.1 40000 80\r\n",
                     Clock::now() + seconds(5)),
            IoStatus::Ok);
  auto id = identifyPlain(fd);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->peer().substr(0, id->peer().find(':')), "127.0.0.77");
  // The workers kept exactly CAP_NET_ADMIN (and nothing else) for this.
  for (pid_t w : s.weir->workerPids()) {
    std::ifstream status("/proc/" + std::to_string(w) + "/status");
    std::string line;
    std::string eff;
    while (std::getline(status, line)) {
      if (line.rfind("CapEff:", 0) == 0) {
        eff = line.substr(line.find_first_not_of(" \t", 7));
      }
    }
    EXPECT_EQ(eff, "0000000000001000") << "worker " << w;  // 1 << CAP_NET_ADMIN (12)
  }
}

}  // namespace
}  // namespace weir::test
