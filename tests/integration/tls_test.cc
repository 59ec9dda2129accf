// TLS through the real weir binary: tls-terminate (certificates by SNI, versions, ALPN,
// resumption across workers, handshake timeout), tls-passthrough (routing by SNI, hellos cut
// into segments and records, large and bad hellos) and TLS to the backends ([pools.NAME.tls]).
// Clients are our TlsClient (tests/support/tls_client.h); backends are weir-testsrv in
// `identify` mode, which says which backend answered and what it saw of TLS.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/dns_server.h"
#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/process.h"
#include "support/raw_probe.h"
#include "support/test_certs.h"
#include "support/test_server.h"
#include "support/tls_client.h"
#include "weir_process.h"

namespace weir::test {
namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

// Certificates for a test: one CA, leaves for the names the tests use, written to `dir`.
struct Certs {
  TempDir dir;
  TestCa ca{"weir tls test CA"};
  std::string ca_file;
  PemFiles a;        // a.test, ECDSA P-256
  PemFiles b;        // b.test and *.w.test, RSA 2048
  PemFiles backend;  // app.internal and 127.0.0.1, for TLS backends

  Certs() {
    ca_file = writeBundle(dir, "ca.crt", {ca.pem().cert});
    a = writePem(dir, "a", ca.issue({.common_name = "a.test", .dns_names = {"a.test"}}));
    b = writePem(dir, "b",
                 ca.issue({.common_name = "b.test",
                           .dns_names = {"b.test", "*.w.test"},
                           .key_type = KeyType::Rsa2048}));
    backend = writePem(dir, "backend",
                       ca.issue({.common_name = "app.internal",
                                 .dns_names = {"app.internal"},
                                 .ip_addresses = {"127.0.0.1"}}));
  }
};

std::string certEntry(const PemFiles& f) {
  return "{ cert = " + q(f.cert) + ", key = " + q(f.key) + " }";
}

TestServer identifyServer(const std::string& name, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--name", name};
  args.insert(args.end(), extra.begin(), extra.end());
  return startTestServer(kTestsrvBin, "identify", args);
}

TestServer tlsIdentifyServer(const std::string& name, const PemFiles& cert) {
  return identifyServer(name, {"--tls-cert", cert.cert, "--tls-key", cert.key});
}

PoolSpec pool(const std::string& name, const TestServer& backend) {
  PoolSpec p;
  p.name = name;
  p.backends = {{backend.endpoint()}};
  return p;
}

// Readiness for TLS listeners: a plain TCP connect (Accepts), never an echo round trip.
WeirConfig baseConfig(unsigned workers = 2) {
  WeirConfig c;
  c.workers = std::to_string(workers);
  return c;
}

TlsClientOptions opts(const std::string& sni, const Certs* certs = nullptr) {
  TlsClientOptions o;
  o.sni = sni;
  if (certs != nullptr) {
    o.ca_file = certs->ca_file;
    o.verify_host = sni;
  }
  o.timeout = seconds(10);
  return o;
}

// Reads the backend's identify line through an established client connection.
std::optional<IdentifyLine> identify(TlsClient& c) {
  std::string line;
  if (c.readLine(&line, Clock::now() + seconds(10)) != IoStatus::Ok) {
    return std::nullopt;
  }
  return parseIdentifyLine(line);
}

std::optional<IdentifyLine> identifyPlain(const Fd& fd) {
  return readIdentifyLine(fd.get(), Clock::now() + seconds(10));
}

bool hasName(const TlsHandshake& h, const std::string& name) {
  for (const auto& n : h.cert_names) {
    if (n == name) {
      return true;
    }
  }
  return false;
}

// --- tls-terminate ---------------------------------------------------------------------

struct TerminateSetup {
  Certs certs;
  TestServer a = identifyServer("A");
  TestServer b = identifyServer("B");
  std::unique_ptr<WeirProcess> weir;

  explicit TerminateSetup(std::vector<std::string> tls_lines = {}, unsigned workers = 2,
                          std::vector<std::string> global = {}) {
    WeirConfig c = baseConfig(workers);
    c.access_log = "";  // set below, into weir's directory
    ListenerSpec l{"secure", "pa"};
    l.lines = {"mode = \"tls-terminate\"",
               "sni.\"b.test\" = \"pb\"",
               "sni.\"*.w.test\" = \"pb\"",
               "tls.certificates = [" + certEntry(certs.a) + ", " + certEntry(certs.b) + "]",
               "tls.alpn = [\"h2\", \"http/1.1\"]"};
    l.lines.insert(l.lines.end(), tls_lines.begin(), tls_lines.end());
    c.listeners = {l};
    c.pools = {pool("pa", a), pool("pb", b)};
    c.global_lines = std::move(global);
    weir = std::make_unique<WeirProcess>(c);
    WeirConfig with_log = weir->config();
    with_log.access_log = weir->dir().file("access.log");
    weir->writeConfig(with_log);
  }
  std::string accessLog() const { return weir->dir().file("access.log"); }
};

TEST(TlsTerminate, PicksTheCertificateAndThePoolBySni) {
  TerminateSetup s;
  ASSERT_TRUE(s.weir->start());
  struct Case {
    std::string sni;
    std::string cert_name;  // a name the certificate served must carry
    std::string backend;
  };
  const std::vector<Case> cases = {
      {"a.test", "a.test", "A"},    // the default certificate, the default pool
      {"b.test", "b.test", "B"},    // exact route, second certificate
      {"x.w.test", "*.w.test", "B"},  // wildcard route and wildcard certificate
      {"", "a.test", "A"},          // no SNI: first certificate, default pool
      {"other.test", "a.test", "A"},  // unknown name: the same
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("sni=" + c.sni);
    TlsClientOptions o = opts(c.sni);
    o.ca_file = s.certs.ca_file;  // chain verified; the name is checked through cert_names
    TlsClient client = TlsClient::connect(s.weir->addr("secure"), o);
    ASSERT_TRUE(client.ok()) << client.handshake().error;
    EXPECT_TRUE(hasName(client.handshake(), c.cert_name));
    auto id = identify(client);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->name(), c.backend);
    EXPECT_EQ(id->tls(), "none");  // the backend gets plaintext
  }
}

TEST(TlsTerminate, SpeaksTls12AndTls13AndNegotiatesAlpn) {
  TerminateSetup s;
  ASSERT_TRUE(s.weir->start());
  {
    TlsClientOptions o = opts("a.test", &s.certs);
    o.max_version = TlsVersion::Tls12;
    o.alpn = {"http/1.1"};
    TlsClient c = TlsClient::connect(s.weir->addr("secure"), o);
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(c.handshake().version, "TLSv1.2");
    EXPECT_EQ(c.handshake().alpn, "http/1.1");
    ASSERT_TRUE(identify(c).has_value());
  }
  {
    TlsClientOptions o = opts("a.test", &s.certs);
    o.alpn = {"http/1.1", "h2"};  // weir prefers h2 (its list's order)
    TlsClient c = TlsClient::connect(s.weir->addr("secure"), o);
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(c.handshake().version, "TLSv1.3");
    EXPECT_EQ(c.handshake().alpn, "h2");
    ASSERT_TRUE(identify(c).has_value());
  }
  {
    TlsClientOptions o = opts("a.test", &s.certs);
    o.alpn = {"imap"};  // nothing in common: no ALPN, the handshake still succeeds
    TlsClient c = TlsClient::connect(s.weir->addr("secure"), o);
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(c.handshake().alpn, "");
  }
}

TEST(TlsTerminate, MinVersionRefusesOlderClients) {
  TerminateSetup s({"tls.min_version = \"1.3\""});
  ASSERT_TRUE(s.weir->start());
  TlsClientOptions o = opts("a.test", &s.certs);
  o.max_version = TlsVersion::Tls12;
  TlsClient old = TlsClient::connect(s.weir->addr("secure"), o);
  EXPECT_FALSE(old.ok());
  o.max_version = TlsVersion::Tls13;
  TlsClient fresh = TlsClient::connect(s.weir->addr("secure"), o);
  EXPECT_TRUE(fresh.ok()) << fresh.handshake().error;
  // (weir's readiness check, a connect and close, is a failed handshake too: look for ours.)
  auto lines = waitAccessLines(s.accessLog(), "unsupported protocol", 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("reason=tls-handshake-failed"), std::string::npos) << lines[0];
}

// Tickets are encrypted under keys every worker shares: a session from one worker resumes
// on the other. Round-robin steering sends consecutive connections to alternating workers.
TEST(TlsTerminate, ResumesSessionsAcrossWorkers) {
  TerminateSetup s({}, 2, {"steering = \"round-robin\""});
  ASSERT_TRUE(s.weir->start());
  for (TlsVersion v : {TlsVersion::Tls13, TlsVersion::Tls12}) {
    SCOPED_TRACE(v == TlsVersion::Tls13 ? "TLS 1.3" : "TLS 1.2");
    TlsClientOptions o = opts("a.test", &s.certs);
    o.max_version = v;
    TlsSession session;
    {
      TlsClient first = TlsClient::connect(s.weir->addr("secure"), o);
      ASSERT_TRUE(first.ok()) << first.handshake().error;
      ASSERT_TRUE(identify(first).has_value());
      session = first.session(Clock::now() + seconds(5));
      ASSERT_TRUE(session) << "no session ticket from weir";
      // A client forgets a session whose connection ended without close_notify.
      EXPECT_EQ(first.shutdown(Clock::now() + seconds(5)), IoStatus::Ok);
    }
    o.session = session;
    for (int i = 0; i < 6; ++i) {
      TlsClient again = TlsClient::connect(s.weir->addr("secure"), o);
      ASSERT_TRUE(again.ok()) << again.handshake().error;
      EXPECT_TRUE(again.handshake().resumed) << "connection " << i;
      ASSERT_TRUE(identify(again).has_value());
      // Each resumption hands out a fresh ticket (weir renews them); use it next, as a
      // browser would (TLS 1.3 tickets are best used once).
      TlsSession next = again.session(Clock::now() + seconds(5));
      ASSERT_TRUE(next) << "no fresh ticket after resumption " << i;
      o.session = next;
      EXPECT_EQ(again.shutdown(Clock::now() + seconds(5)), IoStatus::Ok);
    }
  }
  // Both workers resumed sessions: access-log lines "conn=<slot>-<id> ... resumed=1".
  auto resumed = waitAccessLines(s.accessLog(), "resumed=1", 12);
  ASSERT_EQ(resumed.size(), 12u);
  std::set<std::string> slots;
  for (const auto& line : resumed) {
    slots.insert(line.substr(line.find("conn=") + 5, 1));
  }
  EXPECT_EQ(slots.size(), 2u) << "resumptions were all on one worker";
}

TEST(TlsTerminate, CarriesBytesBothWaysAndEndsWithCloseNotify) {
  TerminateSetup s;
  ASSERT_TRUE(s.weir->start());
  TlsClient c = TlsClient::connect(s.weir->addr("secure"), opts("a.test", &s.certs));
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  ASSERT_TRUE(identify(c).has_value());
  // identify echoes after its line: 1 MiB in 64 KiB steps, each read back before the next.
  std::string chunk(64 * 1024, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) {
    chunk[i] = static_cast<char>((i * 131) ^ (i >> 7));
  }
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(c.write(chunk, Clock::now() + seconds(10)), IoStatus::Ok);
    std::string back;
    ASSERT_EQ(c.read(chunk.size(), &back, Clock::now() + seconds(10)), IoStatus::Ok);
    ASSERT_EQ(back, chunk) << "round " << i;
  }
  // Our close_notify + FIN reaches the backend as a FIN; its FIN comes back as weir's
  // close_notify.
  ASSERT_EQ(c.shutdown(Clock::now() + seconds(5)), IoStatus::Ok);
  std::string rest;
  EXPECT_EQ(c.readToEof(&rest, Clock::now() + seconds(10)), IoStatus::Ok);
  EXPECT_TRUE(rest.empty());
  EXPECT_TRUE(c.closeNotifyReceived());
  auto lines = waitAccessLines(s.accessLog(), "reason=done", 1);
  ASSERT_EQ(lines.size(), 1u);
  // Which data path ran: kTLS (the kernel encrypts; needs CONFIG_TLS) or OpenSSL in user
  // space with pooled buffers. Both are correct; the log says which, and so does this test.
  const bool ktls = lines[0].find("ktls=off") == std::string::npos;
  std::printf("tls-terminate data path on this kernel: %s\n",
              ktls ? "kTLS" : "user-space OpenSSL, copied through pooled 16 KiB buffers "
                              "(kTLS unavailable)");
  RecordProperty("tls_data_path", ktls ? "ktls" : "copy");
  EXPECT_NE(lines[0].find(" tls=TLSv1.3"), std::string::npos) << lines[0];
}

TEST(TlsTerminate, HandshakeTimeoutClosesSilentClients) {
  TerminateSetup s({"tls.handshake_timeout = \"300ms\""});
  ASSERT_TRUE(s.weir->start());
  const Clock::time_point began = Clock::now();
  Fd fd = connectTcp(s.weir->addr("secure"), seconds(2));
  ASSERT_TRUE(fd.valid());
  RawProbeResult r = watchForClose(fd.get(), Clock::now() + seconds(5));
  EXPECT_TRUE(r.status == IoStatus::Eof || r.status == IoStatus::Reset) << r.detail;
  EXPECT_GE(Clock::now() - began, milliseconds(250));
  EXPECT_EQ(waitAccessLines(s.accessLog(), "reason=tls-handshake-timeout", 1).size(), 1u);
  // The worker is fine: a real client still gets through.
  TlsClient c = TlsClient::connect(s.weir->addr("secure"), opts("a.test", &s.certs));
  EXPECT_TRUE(c.ok()) << c.handshake().error;
}

// An ordinary client: curl over HTTPS (HTTP/1.1, then with HTTP/2 offered, which weir prefers
// and curl then speaks), through tls-terminate to a plain HTTP backend. The HTTP/1.1 backend
// answers the first; for the second, curl's own verbose output shows the h2 negotiation.
TEST(TlsTerminate, CurlGetsAnAnswer) {
  Certs certs;
  TestServer http = startTestServer(kTestsrvBin, "http", {"--name", "web1"});
  WeirConfig c = baseConfig(1);
  ListenerSpec l{"secure", "web"};
  l.lines = {"mode = \"tls-terminate\"", "tls.certificates = [" + certEntry(certs.a) + "]",
             "tls.alpn = [\"h2\", \"http/1.1\"]"};
  c.listeners = {l};
  c.pools = {pool("web", http)};
  WeirProcess weir(c);
  ASSERT_TRUE(weir.start());
  const std::string port = std::to_string(weir.port("secure"));
  const std::vector<std::string> common = {"-sS", "-v", "--max-time", "10", "--cacert",
                                           certs.ca_file, "--resolve",
                                           "a.test:" + port + ":127.0.0.1"};
  std::vector<std::string> h1 = common;
  h1.insert(h1.end(), {"--http1.1", "https://a.test:" + port + "/"});
  RunResult r = run("/usr/bin/curl", h1, seconds(20));
  ASSERT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_NE(r.out.find("hello from web1"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("ALPN: server accepted http/1.1"), std::string::npos) << r.err;
  std::vector<std::string> h2 = common;
  // The backend speaks HTTP/1.1 only, so curl's h2 request goes unanswered: stop it soon.
  h2.insert(h2.end(), {"--max-time", "2", "--http2", "https://a.test:" + port + "/"});
  r = run("/usr/bin/curl", h2, seconds(20));
  EXPECT_NE(r.err.find("ALPN: server accepted h2"), std::string::npos) << r.err;
}

// A reload reads the certificates again; a reload whose key is missing changes nothing.
TEST(TlsTerminate, ReloadReadsCertificatesAgainAndABadOneChangesNothing) {
  TerminateSetup s;
  ASSERT_TRUE(s.weir->start());
  {
    TlsClient c = TlsClient::connect(s.weir->addr("secure"), opts("a.test", &s.certs));
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(c.handshake().cert_cn, "a.test");
  }
  // Same paths, new certificate (another CN), then HUP.
  PemFiles fresh = writePem(s.certs.dir, "a",
                            s.certs.ca.issue({.common_name = "a.test renewed",
                                              .dns_names = {"a.test"}}));
  ASSERT_EQ(fresh.cert, s.certs.a.cert);
  ASSERT_TRUE(s.weir->signal(SIGHUP));
  ASSERT_TRUE(s.weir->waitForLogLines("reloaded: generation 2", 1, seconds(10)));
  // Generation 1 keeps accepting for a moment after the reload (the hand-over): wait until
  // its workers are gone, so the next connection is generation 2's.
  const Deadline gone = Clock::now() + seconds(10);
  while (!s.weir->generationWorkers(1).empty() && Clock::now() < gone) {
    std::this_thread::sleep_for(milliseconds(20));  // polling /proc, bounded by the deadline
  }
  ASSERT_TRUE(s.weir->generationWorkers(1).empty()) << "generation 1 never stopped";
  {
    TlsClient c = TlsClient::connect(s.weir->addr("secure"), opts("a.test", &s.certs));
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(c.handshake().cert_cn, "a.test renewed");
  }
  // The key file disappears: the reload is refused and names the file; generation 2 serves.
  ASSERT_EQ(std::remove(s.certs.a.key.c_str()), 0);
  ASSERT_TRUE(s.weir->signal(SIGHUP));
  ASSERT_TRUE(s.weir->waitForLogLines(s.certs.a.key, 1, seconds(10))) << s.weir->logTail();
  EXPECT_EQ(s.weir->countLogLines("reloaded: generation 3"), 0u);
  TlsClient c = TlsClient::connect(s.weir->addr("secure"), opts("a.test", &s.certs));
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  EXPECT_EQ(c.handshake().cert_cn, "a.test renewed");
  ASSERT_TRUE(identify(c).has_value());
}

// --- tls-passthrough -------------------------------------------------------------------

struct PassthroughSetup {
  Certs certs;
  TestServer api;
  TestServer web;
  TestServer dflt;
  std::unique_ptr<WeirProcess> weir;

  explicit PassthroughSetup(std::string hello_timeout = "5s")
      : api(tlsIdentifyServer("api", certs.backend)),
        web(tlsIdentifyServer("web", certs.backend)),
        dflt(tlsIdentifyServer("default", certs.backend)) {
    WeirConfig c = baseConfig(2);
    ListenerSpec l{"edge", "dflt"};
    l.lines = {"mode = \"tls-passthrough\"", "client_hello_timeout = " + q(hello_timeout),
               "sni.\"api.example.com\" = \"api\"", "sni.\"*.example.com\" = \"web\""};
    c.listeners = {l};
    c.pools = {pool("api", api), pool("web", web), pool("dflt", dflt)};
    weir = std::make_unique<WeirProcess>(c);
    WeirConfig with_log = weir->config();
    with_log.access_log = weir->dir().file("access.log");
    weir->writeConfig(with_log);
  }
  std::string accessLog() const { return weir->dir().file("access.log"); }
};

TEST(TlsPassthrough, RoutesByExactWildcardAndDefault) {
  PassthroughSetup s;
  ASSERT_TRUE(s.weir->start());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"api.example.com", "api"}, {"API.Example.COM", "api"}, {"www.example.com", "web"},
      {"a.b.example.com", "default"}, {"example.com", "default"}, {"", "default"}};
  for (const auto& [sni, backend] : cases) {
    SCOPED_TRACE("sni=" + sni);
    TlsClient c = TlsClient::connect(s.weir->addr("edge"), opts(sni));
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    // The backend terminated TLS itself: it saw the client's own SNI, unchanged bytes.
    EXPECT_TRUE(hasName(c.handshake(), "app.internal"));
    auto id = identify(c);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->name(), backend);
    EXPECT_EQ(id->tls(), "TLSv1.3");
    EXPECT_EQ(id->sni(), sni.empty() ? "-" : sni);
  }
}

TEST(TlsPassthrough, RoutesHellosCutIntoSegmentsAndRecordsAndLargeOnes) {
  PassthroughSetup s;
  ASSERT_TRUE(s.weir->start());
  struct Case {
    const char* what;
    HelloShaping shaping;
  };
  std::vector<Case> cases;
  {
    HelloShaping h;
    h.segment_bytes = 1;
    h.wait_acked = false;  // weir peeks; waiting for each ACK would cost 40 ms a byte
    cases.push_back({"1-byte TCP segments", h});
  }
  {
    HelloShaping h;
    h.record_bytes = 1;
    cases.push_back({"1-byte TLS records", h});
  }
  {
    HelloShaping h;
    h.record_bytes = 100;
    h.segment_bytes = 7;
    h.wait_acked = false;
    cases.push_back({"100-byte records in 7-byte segments", h});
  }
  {
    HelloShaping h;
    h.pad_to = 16000;  // post-quantum key shares make hellos this large
    cases.push_back({"a 16000-byte hello", h});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TlsClientOptions o = opts("api.example.com");
    o.hello = c.shaping;
    TlsClient client = TlsClient::connect(s.weir->addr("edge"), o);
    ASSERT_TRUE(client.ok()) << client.handshake().error;
    auto id = identify(client);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->name(), "api");
    EXPECT_EQ(id->sni(), "api.example.com");
  }
}

TEST(TlsPassthrough, BadHellosCloseOnlyTheirConnection) {
  PassthroughSetup s("400ms");
  ASSERT_TRUE(s.weir->start());
  std::vector<pid_t> workers = s.weir->waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);
  // A good connection stays open through all of it.
  TlsClient good = TlsClient::connect(s.weir->addr("edge"), opts("api.example.com"));
  ASSERT_TRUE(good.ok()) << good.handshake().error;
  ASSERT_TRUE(identify(good).has_value());

  std::string hello = TlsClient::clientHelloBytes(opts("api.example.com"));
  ASSERT_GT(hello.size(), 100u);
  TlsClientOptions huge = opts("api.example.com");
  huge.hello.pad_to = 17000;
  std::string too_large = TlsClient::clientHelloBytes(huge);
  std::string wrong_type = hello;
  wrong_type[0] = 0x17;  // application data before any handshake
  std::string bad_length = hello;
  bad_length[3] = static_cast<char>(0xff);  // record longer than what follows, then FIN
  struct Case {
    const char* what;
    std::string bytes;
    bool fin;  // half-close after sending
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"plain HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, "reason=bad-client-hello"},
      {"garbage", std::string(64, '\x16') + std::string(64, '\xff'), false,
       "reason=bad-client-hello"},
      {"truncated, then FIN", hello.substr(0, hello.size() / 2), true, "reason=bad-client-hello"},
      {"record type 23", wrong_type, false, "reason=bad-client-hello"},
      {"over 16 KiB", too_large, false, "reason=bad-client-hello"},
      {"truncated, then silence", hello.substr(0, 50), false, "reason=client-hello-timeout"},
      {"nothing at all", "", false, "reason=client-hello-timeout"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    RawProbeOptions o;
    o.shutdown_write = c.fin;
    o.timeout = seconds(5);
    RawProbeResult r = sendRawAndWatch(s.weir->addr("edge"), c.bytes, o);
    EXPECT_TRUE(r.status == IoStatus::Eof || r.status == IoStatus::Reset)
        << toString(r.status) << " " << r.detail;
    EXPECT_TRUE(r.received.empty()) << "weir must not answer for a backend it never chose";
  }
  // Plus one "closed before a ClientHello": weir's readiness check (connect, close).
  EXPECT_EQ(waitAccessLines(s.accessLog(), "reason=bad-client-hello", 6).size(), 6u);
  EXPECT_EQ(accessLines(s.accessLog(), "closed in the middle of its ClientHello").size(), 1u);
  EXPECT_EQ(waitAccessLines(s.accessLog(), "reason=client-hello-timeout", 2).size(), 2u);
  // Same workers, and the good connection still echoes.
  EXPECT_EQ(s.weir->workerPids(), workers);
  ASSERT_EQ(good.write("still here", Clock::now() + seconds(5)), IoStatus::Ok);
  std::string back;
  ASSERT_EQ(good.read(10, &back, Clock::now() + seconds(5)), IoStatus::Ok);
  EXPECT_EQ(back, "still here");
}

// --- TLS to the backends ---------------------------------------------------------------

struct UpstreamSetup {
  Certs certs;
  TestServer backend = tlsIdentifyServer("tlsbackend", certs.backend);
  std::unique_ptr<WeirProcess> weir;

  // pool_lines: the [pools.app] lines, made from this setup's certificates.
  explicit UpstreamSetup(const std::function<std::vector<std::string>(const Certs&)>& pool_lines,
                         bool terminate = false) {
    WeirConfig c = baseConfig(1);
    ListenerSpec l{"front", "app"};
    if (terminate) {
      l.lines = {"mode = \"tls-terminate\"",
                 "tls.certificates = [" + certEntry(certs.a) + "]"};
    }
    c.listeners = {l};
    PoolSpec p = pool("app", backend);
    p.retries = 0;
    p.lines = pool_lines(certs);
    c.pools = {p};
    weir = std::make_unique<WeirProcess>(c);
    WeirConfig with_log = weir->config();
    with_log.access_log = weir->dir().file("access.log");
    weir->writeConfig(with_log);
  }
  std::string accessLog() const { return weir->dir().file("access.log"); }
};

TEST(UpstreamTls, VerifiesTheBackendAndSendsTheConfiguredSni) {
  UpstreamSetup s([](const Certs& certs) {
    return std::vector<std::string>{"tls.ca = " + q(certs.ca_file), "tls.sni = \"app.internal\"",
                                    "tls.alpn = [\"h2\"]"};
  });
  ASSERT_TRUE(s.weir->start());
  Fd fd = connectTcp(s.weir->addr("front"), seconds(2));
  ASSERT_TRUE(fd.valid());
  auto id = identifyPlain(fd);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name(), "tlsbackend");
  EXPECT_EQ(id->tls(), "TLSv1.3");
  EXPECT_EQ(id->sni(), "app.internal");
  EXPECT_EQ(id->alpnOffered(), "h2");
  // Plaintext in, TLS to the backend, echoed back.
  ASSERT_EQ(writeAll(fd.get(), "ping", Clock::now() + seconds(5)), IoStatus::Ok);
  char back[4];
  ASSERT_EQ(readExact(fd.get(), back, 4, Clock::now() + seconds(5)), IoStatus::Ok);
  EXPECT_EQ(std::string(back, 4), "ping");
}

TEST(UpstreamTls, AWrongCaFailsTheConnectUnlessVerifyIsOff) {
  TempDir other;
  TestCa stranger("another CA");
  const std::string wrong_ca = writeBundle(other, "wrong.crt", {stranger.pem().cert});
  {
    UpstreamSetup s([&](const Certs&) {
      return std::vector<std::string>{"tls.ca = " + q(wrong_ca), "tls.sni = \"app.internal\""};
    });
    ASSERT_TRUE(s.weir->start());
    Fd fd = connectTcp(s.weir->addr("front"), seconds(2));
    ASSERT_TRUE(fd.valid());
    RawProbeResult r = watchForClose(fd.get(), Clock::now() + seconds(10));
    EXPECT_TRUE(r.status == IoStatus::Eof || r.status == IoStatus::Reset) << r.detail;
    EXPECT_TRUE(r.received.empty());
    // Ours and weir's readiness check (a connect, then close) both failed that way.
    auto lines = waitAccessLines(s.accessLog(), "reason=connect-failed", 2);
    ASSERT_GE(lines.size(), 1u);
    for (const auto& line : lines) {
      EXPECT_NE(line.find("certificate verify failed"), std::string::npos) << line;
    }
  }
  {
    UpstreamSetup s([&](const Certs&) {
      return std::vector<std::string>{"tls.verify = false"};  // (a ca with it is an error)
    });
    ASSERT_TRUE(s.weir->start());
    Fd fd = connectTcp(s.weir->addr("front"), seconds(2));
    ASSERT_TRUE(fd.valid());
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->tls(), "TLSv1.3");
  }
}

TEST(UpstreamTls, TerminatesAndReEncrypts) {
  UpstreamSetup s(
      [](const Certs& certs) {
        return std::vector<std::string>{"tls.ca = " + q(certs.ca_file),
                                        "tls.sni = \"app.internal\""};
      },
      true);
  ASSERT_TRUE(s.weir->start());
  TlsClient client = TlsClient::connect(s.weir->addr("front"), opts("a.test", &s.certs));
  ASSERT_TRUE(client.ok()) << client.handshake().error;
  auto id = identify(client);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->tls(), "TLSv1.3");
  EXPECT_EQ(id->sni(), "app.internal");
  ASSERT_EQ(client.write("round trip", Clock::now() + seconds(5)), IoStatus::Ok);
  std::string back;
  ASSERT_EQ(client.read(10, &back, Clock::now() + seconds(5)), IoStatus::Ok);
  EXPECT_EQ(back, "round trip");
}

// Health checks of kind "tls": a backend that does not complete a verified handshake (here, a
// plain TCP one) goes down; traffic then only reaches the one that does. The master built the
// pool's context (it read the CA file) and the checker uses it.
TEST(UpstreamTls, TlsHealthChecksTakeDownABackendWithoutTls) {
  Certs certs;
  TestServer good = tlsIdentifyServer("good", certs.backend);
  TestServer plain = identifyServer("plain");
  WeirConfig c = baseConfig(2);
  c.listeners = {{"front", "app"}};
  PoolSpec p;
  p.name = "app";
  p.backends = {{good.endpoint()}, {plain.endpoint()}};
  p.lines = {"tls.ca = " + q(certs.ca_file), "tls.sni = \"app.internal\""};
  p.health = "kind = \"tls\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfall = 2\nrise = 2\n";
  c.pools = {p};
  WeirProcess weir(c);
  ASSERT_TRUE(weir.start());
  ASSERT_TRUE(weir.waitForLogLines("backend " + plain.endpoint() + " is down", 1, seconds(10)))
      << weir.logTail();
  EXPECT_EQ(weir.countLogLines("backend " + good.endpoint() + " is down"), 0u);
  for (int i = 0; i < 10; ++i) {
    Fd fd = connectTcp(weir.addr("front"), seconds(2));
    ASSERT_TRUE(fd.valid());
    auto id = identifyPlain(fd);
    ASSERT_TRUE(id.has_value()) << "connection " << i;
    EXPECT_EQ(id->name(), "good");
    EXPECT_EQ(id->tls(), "TLSv1.3");
  }
}

// A backend given by name, over TLS without `sni`: weir sends the name and verifies the
// certificate against it, as a client that dialled the name would. The same backend under a
// name its certificate does not carry fails the connect and its kind tls checks (verifying
// the chain alone, both would pass).
TEST(UpstreamTls, ABackendGivenByNameIsVerifiedAsThatName) {
  Certs certs;
  TestServer backend = tlsIdentifyServer("tlsbackend", certs.backend);
  std::string error;
  auto dns =
      DnsServer::start("127.0.0.1 app.internal\n127.0.0.1 other.internal\n", 60, &error);
  ASSERT_TRUE(dns) << "cannot run dnsmasq (packaging/deps.sh installs dnsmasq-base): " << error;
  for (const std::string name : {"app.internal", "other.internal"}) {
    SCOPED_TRACE(name);
    const std::string slot = name + ":" + std::to_string(backend.port) + "#1";
    WeirConfig c = baseConfig(1);
    c.listeners = {{"front", "app"}};
    c.global_lines = {"resolvers = [" + q(dns->address().toString()) + "]"};
    PoolSpec p;
    p.name = "app";
    p.retries = 0;
    p.backends = {{name + ":" + std::to_string(backend.port), 1, 0, 1}};
    p.lines = {"tls.ca = " + q(certs.ca_file)};
    p.health = "kind = \"tls\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfall = 2\n";
    c.pools = {p};
    WeirProcess weir(c);
    WeirConfig with_log = weir.config();
    with_log.access_log = weir.dir().file("access.log");
    weir.writeConfig(with_log);
    ASSERT_TRUE(weir.start());
    Fd fd = connectTcp(weir.addr("front"), seconds(2));
    ASSERT_TRUE(fd.valid());
    if (name == "app.internal") {
      auto id = identifyPlain(fd);
      ASSERT_TRUE(id.has_value()) << weir.logTail();
      EXPECT_EQ(id->tls(), "TLSv1.3");
      EXPECT_EQ(id->sni(), "app.internal");
    } else {
      RawProbeResult r = watchForClose(fd.get(), Clock::now() + seconds(10));
      EXPECT_TRUE(r.status == IoStatus::Eof || r.status == IoStatus::Reset) << r.detail;
      EXPECT_TRUE(r.received.empty());
      auto lines = waitAccessLines(weir.dir().file("access.log"), "reason=connect-failed", 1);
      ASSERT_GE(lines.size(), 1u);
      EXPECT_NE(lines.front().find("certificate verify failed"), std::string::npos)
          << lines.front();
      EXPECT_TRUE(weir.waitForLogLines("backend " + slot + " is down", 1, seconds(10)))
          << weir.logTail();
    }
  }
}

}  // namespace
}  // namespace weir::test
