// Self-tests of the TLS test tools: TlsClient and the raw probe against weir-testsrv with
// --tls-cert, no weir in between.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/identify_line.h"
#include "support/process.h"
#include "support/raw_probe.h"
#include "support/temp_dir.h"
#include "support/test_server.h"
#include "support/tls_client.h"

namespace weir::test {
namespace {

const std::string kTestsrv = TESTSRV_BIN;

// Certificates made with the openssl command-line tool: a CA, a second unrelated CA, a
// server leaf and a client leaf, all P-256. (tests/support/test_certs.* can replace this.)
class CliCerts {
public:
  CliCerts() {
    dir_.write("openssl.cnf",
               "[req]\ndistinguished_name = dn\n[dn]\n"
               "[ca]\nbasicConstraints = critical,CA:TRUE\n"
               "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n");
    makeCa("ca", "weir test CA");
    makeCa("other-ca", "unrelated CA");
    makeLeaf("server", "ca", "backend.test", "DNS:backend.test,DNS:*.alt.test,IP:127.0.0.1");
    makeLeaf("client", "ca", "test-client", "DNS:test-client");
  }
  std::string pem(const std::string& name) const { return dir_.file(name + ".pem"); }
  std::string key(const std::string& name) const { return dir_.file(name + ".key"); }

private:
  void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = run("/usr/bin/env", argv, seconds(30));
    if (r.exitCode() != 0) {
      throw std::runtime_error("openssl " + args[0] + " failed (" + describeStatus(r.status) +
                               "): " + r.err);
    }
  }
  void makeCa(const std::string& name, const std::string& cn) {
    openssl({"req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key(name), "-out", pem(name), "-days", "2", "-subj",
             "/CN=" + cn, "-config", dir_.file("openssl.cnf"), "-extensions", "ca"});
  }
  void makeLeaf(const std::string& name, const std::string& ca, const std::string& cn,
                const std::string& sans) {
    dir_.write(name + ".ext",
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature\n"
               "extendedKeyUsage = serverAuth,clientAuth\n"
               "subjectAltName = " + sans + "\n");
    openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key(name), "-out", dir_.file(name + ".csr"), "-subj", "/CN=" + cn,
             "-config", dir_.file("openssl.cnf")});
    openssl({"x509", "-req", "-in", dir_.file(name + ".csr"), "-CA", pem(ca), "-CAkey",
             key(ca), "-set_serial", std::to_string(++serial_), "-days", "2", "-out",
             pem(name), "-extfile", dir_.file(name + ".ext")});
  }

  TempDir dir_{"weir-tls-certs"};
  int serial_ = 1;
};

class TlsSupport : public ::testing::Test {
protected:
  static void SetUpTestSuite() { certs_ = new CliCerts(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  // weir-testsrv in `mode` speaking TLS with the server certificate.
  static TestServer startTls(const std::string& mode, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--name", "tls1", "--tls-cert", certs_->pem("server"),
                                     "--tls-key", certs_->key("server")};
    args.insert(args.end(), extra.begin(), extra.end());
    return startTestServer(kTestsrv, mode, args);
  }

  // Options that verify the server certificate against our CA.
  static TlsClientOptions verified() {
    TlsClientOptions o;
    o.sni = "backend.test";
    o.ca_file = certs_->pem("ca");
    o.verify_host = "backend.test";
    return o;
  }

  // The identify line of a connected client.
  static IdentifyLine identify(TlsClient& c) {
    std::string line;
    const IoStatus r = c.readLine(&line, deadlineIn(seconds(5)));
    EXPECT_EQ(r, IoStatus::Ok) << c.lastError();
    const auto id = parseIdentifyLine(line);
    EXPECT_TRUE(id) << "not an identify line: '" << line << "'";
    return id ? *id : IdentifyLine{};
  }

  static CliCerts* certs_;
};

CliCerts* TlsSupport::certs_ = nullptr;

TEST_F(TlsSupport, HandshakeReportsVersionAlpnCertificateAndServerSeesSni) {
  TestServer srv = startTls("identify", {"--tls-alpn", "h2,http/1.1"});
  TlsClientOptions o = verified();
  o.alpn = {"http/1.1", "h2"};
  TlsClient c = TlsClient::connect(srv.endpoint(), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  const TlsHandshake& hs = c.handshake();
  EXPECT_EQ(hs.version, "TLSv1.3");
  EXPECT_EQ(hs.alpn, "h2");  // the server's preference wins
  EXPECT_FALSE(hs.resumed);
  EXPECT_EQ(hs.verify_result, 0);
  EXPECT_EQ(hs.cert_cn, "backend.test");
  EXPECT_EQ(hs.cert_names, (std::vector<std::string>{"backend.test", "*.alt.test", "127.0.0.1"}));
  EXPECT_EQ(hs.hello_records, 1u);
  EXPECT_EQ(hs.hello_writes, 1u);

  const IdentifyLine id = identify(c);
  EXPECT_EQ(id.name(), "tls1");
  EXPECT_EQ(id.peer(), SockAddr::local(c.fd())->str());
  EXPECT_EQ(id.tls(), "TLSv1.3");
  EXPECT_EQ(id.sni(), "backend.test");
  EXPECT_EQ(id.alpn(), "h2");
  EXPECT_EQ(id.alpnOffered(), "http/1.1,h2");
  EXPECT_FALSE(id.resumed());
  EXPECT_EQ(id.clientCert(), "-");

  // Then it echoes, and answers our close_notify with its own.
  const Deadline deadline = deadlineIn(seconds(5));
  ASSERT_EQ(c.write("ping over tls\n", deadline), IoStatus::Ok) << c.lastError();
  std::string echoed;
  ASSERT_EQ(c.read(14, &echoed, deadline), IoStatus::Ok) << c.lastError();
  EXPECT_EQ(echoed, "ping over tls\n");
  ASSERT_EQ(c.shutdown(deadline), IoStatus::Ok) << c.lastError();
  std::string rest;
  EXPECT_EQ(c.readToEof(&rest, deadline), IoStatus::Ok) << c.lastError();
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(c.closeNotifyReceived());
}

TEST_F(TlsSupport, ProxyHeaderBeforeTheHandshake) {
  TestServer srv = startTls("identify", {"--proxy-protocol"});
  TlsClientOptions o = verified();
  o.preamble = "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n";
  TlsClient c = TlsClient::connect(srv.addr(), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  const IdentifyLine id = identify(c);
  EXPECT_EQ(id.tls(), "TLSv1.3");
  EXPECT_EQ(id.sni(), "backend.test");
  EXPECT_EQ(id.proxy(), "v1");
  EXPECT_EQ(id.peer(), "192.0.2.1:51000");
  EXPECT_EQ(id.proxyDestination(), "198.51.100.2:443");
  // Without a header, the handshake never starts: the ClientHello is not a PROXY header.
  o.preamble.clear();
  o.timeout = seconds(5);
  EXPECT_FALSE(TlsClient::connect(srv.addr(), o).ok());
}

TEST_F(TlsSupport, NoSniAndNoCommonAlpnAreReportedAsAbsent) {
  TestServer srv = startTls("identify");  // no --tls-alpn: selects nothing
  TlsClientOptions o;
  o.alpn = {"h2"};
  TlsClient c = TlsClient::connect(srv.addr(), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  EXPECT_EQ(c.handshake().alpn, "");
  EXPECT_EQ(c.handshake().cert_cn, "backend.test");  // received though not verified
  const IdentifyLine id = identify(c);
  EXPECT_EQ(id.sni(), "-");
  EXPECT_EQ(id.alpn(), "-");
  EXPECT_EQ(id.alpnOffered(), "h2");
}

TEST_F(TlsSupport, SpeaksTls12AndTls13AndResumesEach) {
  TestServer srv = startTls("identify");
  for (const TlsVersion v : {TlsVersion::Tls12, TlsVersion::Tls13}) {
    const std::string name = v == TlsVersion::Tls12 ? "TLSv1.2" : "TLSv1.3";
    SCOPED_TRACE(name);
    TlsClientOptions o = verified();
    o.min_version = v;
    o.max_version = v;
    TlsClient first = TlsClient::connect(srv.addr(), o);
    ASSERT_TRUE(first.ok()) << first.handshake().error;
    EXPECT_EQ(first.handshake().version, name);
    EXPECT_EQ(identify(first).tls(), name);
    o.session = first.session(deadlineIn(seconds(5)));
    ASSERT_TRUE(o.session) << "no session ticket: " << first.lastError();

    TlsClient second = TlsClient::connect(srv.addr(), o);
    ASSERT_TRUE(second.ok()) << second.handshake().error;
    EXPECT_TRUE(second.handshake().resumed);
    const IdentifyLine id = identify(second);
    EXPECT_TRUE(id.resumed());
    EXPECT_EQ(id.sni(), "backend.test");
  }
}

TEST_F(TlsSupport, SessionFromAnotherServerIsNotResumed) {
  TestServer a = startTls("identify");
  TestServer b = startTls("identify");  // its own ticket keys
  TlsClient first = TlsClient::connect(a.addr(), verified());
  ASSERT_TRUE(first.ok()) << first.handshake().error;
  TlsClientOptions o = verified();
  o.session = first.session(deadlineIn(seconds(5)));
  ASSERT_TRUE(o.session);
  TlsClient other = TlsClient::connect(b.addr(), o);
  ASSERT_TRUE(other.ok()) << other.handshake().error;
  EXPECT_FALSE(other.handshake().resumed);
  EXPECT_FALSE(identify(other).resumed());
}

TEST_F(TlsSupport, HelloInOneByteSegmentsCompletes) {
  TestServer srv = startTls("identify");
  TlsClientOptions o = verified();
  o.hello.segment_bytes = 1;
  TlsClient c = TlsClient::connect(srv.addr(), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  const TlsHandshake& hs = c.handshake();
  // One write per byte of the record: header (5) + the hello.
  EXPECT_EQ(hs.hello_writes, hs.hello_bytes + 5);
  // testsrv reads every byte as it comes, so the kernel acknowledges each one at once.
  EXPECT_LT(hs.ack_waits_timed_out, hs.hello_writes / 10) << "of " << hs.hello_writes;
  EXPECT_EQ(identify(c).sni(), "backend.test");
}

TEST_F(TlsSupport, HelloInOneByteRecordsCompletes) {
  TestServer srv = startTls("identify");
  for (const TlsVersion v : {TlsVersion::Tls12, TlsVersion::Tls13}) {
    TlsClientOptions o = verified();
    o.max_version = v;
    o.hello.record_bytes = 1;
    o.hello.segment_bytes = 100;  // several records per write, several writes
    TlsClient c = TlsClient::connect(srv.addr(), o);
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(c.handshake().hello_records, c.handshake().hello_bytes);
    EXPECT_EQ(c.handshake().hello_writes, (c.handshake().hello_bytes * 6 + 99) / 100);
    EXPECT_EQ(identify(c).sni(), "backend.test");
  }
}

TEST_F(TlsSupport, PaddedSixteenKibHelloCompletes) {
  TestServer srv = startTls("identify", {"--tls-alpn", "h2"});
  TlsClientOptions o = verified();
  o.alpn = {"h2"};
  o.hello.pad_to = 16 * 1024 + 512;
  TlsClient c = TlsClient::connect(srv.addr(), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  EXPECT_EQ(c.handshake().hello_bytes, 16u * 1024 + 512);
  EXPECT_EQ(c.handshake().hello_records, 2u);  // over the 16 KiB record limit
  const IdentifyLine id = identify(c);
  EXPECT_EQ(id.sni(), "backend.test");
  EXPECT_EQ(id.alpn(), "h2");

  // The same hello, re-cut into 1000-byte records and resumed with a ticket.
  o.session = c.session(deadlineIn(seconds(5)));
  ASSERT_TRUE(o.session);
  o.hello.record_bytes = 1000;
  TlsClient again = TlsClient::connect(srv.addr(), o);
  ASSERT_TRUE(again.ok()) << again.handshake().error;
  EXPECT_EQ(again.handshake().hello_bytes, 16u * 1024 + 512);
  EXPECT_EQ(again.handshake().hello_records, 17u);
  EXPECT_TRUE(again.handshake().resumed);
}

TEST_F(TlsSupport, VerificationNeedsTheRightCaAndName) {
  TestServer srv = startTls("identify");
  {
    TlsClientOptions o = verified();
    o.verify_host = "127.0.0.1";  // an IP SAN
    TlsClient c = TlsClient::connect(srv.addr(), o);
    EXPECT_TRUE(c.ok()) << c.handshake().error;
  }
  {
    TlsClientOptions o = verified();
    o.ca_file = certs_->pem("other-ca");
    TlsClient c = TlsClient::connect(srv.addr(), o);
    EXPECT_FALSE(c.ok());
    EXPECT_NE(c.handshake().error.find("certificate verify"), std::string::npos)
        << c.handshake().error;
    EXPECT_NE(c.handshake().verify_result, 0);
  }
  {
    TlsClientOptions o = verified();
    o.verify_host = "elsewhere.test";
    TlsClient c = TlsClient::connect(srv.addr(), o);
    EXPECT_FALSE(c.ok());
    EXPECT_NE(c.handshake().error.find("hostname mismatch"), std::string::npos)
        << c.handshake().error;
  }
}

TEST_F(TlsSupport, ClientCertificateIsRequiredAndReported) {
  TestServer srv = startTls("identify", {"--tls-client-ca", certs_->pem("ca")});
  {
    TlsClientOptions o = verified();
    o.cert_file = certs_->pem("client");
    o.key_file = certs_->key("client");
    TlsClient c = TlsClient::connect(srv.addr(), o);
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    EXPECT_EQ(identify(c).clientCert(), "test-client");
  }
  {
    // TLS 1.3 (the default maximum): the client's handshake ends before the server checks
    // its (missing) certificate, so the refusal arrives as an alert on the first read.
    TlsClient c = TlsClient::connect(srv.addr(), verified());
    ASSERT_TRUE(c.ok()) << c.handshake().error;
    std::string line;
    EXPECT_EQ(c.readLine(&line, deadlineIn(seconds(5))), IoStatus::Error) << line;
    EXPECT_NE(c.lastError().find("certificate required"), std::string::npos) << c.lastError();
  }
}

TEST_F(TlsSupport, HttpRepliesCarryTlsHeaders) {
  TestServer srv = startTls("http", {"--tls-alpn", "http/1.1"});
  TlsClientOptions o = verified();
  o.alpn = {"http/1.1"};
  TlsClient c = TlsClient::connect(srv.addr(), o);
  ASSERT_TRUE(c.ok()) << c.handshake().error;
  const Deadline deadline = deadlineIn(seconds(5));
  ASSERT_EQ(c.write("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", deadline), IoStatus::Ok);
  std::string reply;
  ASSERT_EQ(c.readToEof(&reply, deadline), IoStatus::Ok) << c.lastError();
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("X-TLS-Version: TLSv1.3\r\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-TLS-SNI: backend.test\r\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-TLS-ALPN: http/1.1\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("hello from tls1 (you are " + SockAddr::local(c.fd())->str() +
                              ")\n"))
      << reply;
}

TEST_F(TlsSupport, ClientHelloBytesAreShapedRecords) {
  TlsClientOptions o;
  o.sni = "backend.test";
  std::string err;
  const std::string plain = TlsClient::clientHelloBytes(o, &err);
  ASSERT_FALSE(plain.empty()) << err;
  EXPECT_EQ(plain.substr(0, 3), std::string("\x16\x03\x01", 3));
  EXPECT_EQ(plain[5], '\x01');  // handshake type client_hello
  EXPECT_NE(plain.find("backend.test"), std::string::npos);

  o.hello.record_bytes = 10;
  o.hello.pad_to = 1000;
  const std::string cut = TlsClient::clientHelloBytes(o, &err);
  ASSERT_FALSE(cut.empty()) << err;
  EXPECT_EQ(cut.size(), 1000 + 100 * 5);  // 100 records of 10 bytes, 5-byte headers
  for (size_t pos = 0; pos < cut.size(); pos += 15) {
    ASSERT_EQ(cut.substr(pos, 5), std::string("\x16\x03\x01\x00\x0a", 5)) << "at " << pos;
  }
}

TEST_F(TlsSupport, RawProbeSeesCloseOrOpen) {
  TestServer srv = startTls("identify");
  const std::string hello = TlsClient::clientHelloBytes(verified());
  ASSERT_GT(hello.size(), 100u);
  {
    // Not TLS at all: the server gives up at once.
    const RawProbeResult r = sendRawAndWatch(srv.addr(), "GET / HTTP/1.1\r\n\r\n");
    EXPECT_TRUE(r.status == IoStatus::Eof || r.status == IoStatus::Reset) << r.detail;
  }
  {
    // Half a hello, then EOF: closed.
    RawProbeOptions po;
    po.shutdown_write = true;
    const RawProbeResult r = sendRawAndWatch(srv.addr(), hello.substr(0, 60), po);
    EXPECT_EQ(r.status, IoStatus::Eof) << r.detail;
  }
  {
    // Half a hello, no EOF: the server waits for the rest.
    RawProbeOptions po;
    po.segment_bytes = 20;
    po.timeout = milliseconds(300);
    const RawProbeResult r = sendRawAndWatch(srv.addr(), hello.substr(0, 60), po);
    EXPECT_EQ(r.status, IoStatus::Timeout) << r.detail;
  }
  {
    // The whole hello by hand: the server answers with its flight (a handshake record).
    RawProbeOptions po;
    po.timeout = milliseconds(300);
    const RawProbeResult r = sendRawAndWatch(srv.addr(), hello, po);
    ASSERT_FALSE(r.received.empty()) << r.detail;
    EXPECT_EQ(r.received[0], '\x16') << r.detail;
  }
}

TEST(TlsAlertCode, ReadsAlertRecords) {
  EXPECT_EQ(tlsAlertCode(std::string("\x15\x03\x03\x00\x02\x02\x28", 7)), 40);
  EXPECT_EQ(tlsAlertCode(std::string("\x16\x03\x03\x00\x02\x02\x28", 7)), std::nullopt);
  EXPECT_EQ(tlsAlertCode("\x15\x03"), std::nullopt);
}

TEST(TlsClient, FailsCleanlyWithoutAServer) {
  const uint16_t port = pickFreePort();
  ASSERT_NE(port, 0);
  TlsClient c = TlsClient::connect(*SockAddr::from("127.0.0.1", port), {});
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.handshake().error.find("refused"), std::string::npos) << c.handshake().error;
  EXPECT_FALSE(TlsClient::connect("not-an-address", {}).ok());
  std::string got;
  EXPECT_EQ(c.read(1, &got, deadlineIn(milliseconds(10))), IoStatus::Error);
}

}  // namespace
}  // namespace weir::test
