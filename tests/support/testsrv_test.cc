// Self-tests of weir-testsrv, talking to it directly (no weir in between), so a failing
// integration test can be blamed on weir rather than on its test backend.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/drain_reply.h"
#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/process.h"
#include "support/prng_stream.h"
#include "support/test_server.h"

namespace weir::test {
namespace {

const std::string kTestsrv = TESTSRV_BIN;

Fd connectTo(const TestServer& s) {
  std::string err;
  Fd fd = connectTcp(s.addr(), seconds(5), &err);
  EXPECT_TRUE(fd) << err;
  return fd;
}

// Reads from fd until `done(received)` or EOF/deadline; returns what arrived.
template <typename Done>
std::string readUntil(int fd, Done done, Deadline deadline) {
  std::string got;
  char c;
  while (!done(got) && readExact(fd, &c, 1, deadline) == IoStatus::Ok) {
    got.push_back(c);
  }
  return got;
}

std::string readLine(int fd, Deadline deadline) {
  return readUntil(fd, [](const std::string& s) { return s.ends_with("\n"); }, deadline);
}

// "0d 0a ..." (spaces ignored) as bytes.
std::string hexBytes(std::string_view hex) {
  std::string out;
  std::string digits;
  for (char c : hex) {
    if (c != ' ') {
      digits += c;
    }
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out += static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string readHttpResponse(int fd, Deadline deadline) {
  std::string head = readUntil(
      fd, [](const std::string& s) { return s.size() >= 4 && s.ends_with("\r\n\r\n"); }, deadline);
  const size_t cl = head.find("Content-Length: ");
  if (cl == std::string::npos) {
    return head;
  }
  const size_t len = std::stoul(head.substr(cl + 16));
  std::string body(len, '\0');
  if (readExact(fd, body.data(), len, deadline) != IoStatus::Ok) {
    return head;
  }
  return head + body;
}

TEST(TestsrvEcho, EchoesEightMebibytesExactly) {
  TestServer srv = startTestServer(kTestsrv, "echo");
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  constexpr uint64_t kBytes = 8 << 20;
  PrngStream src(7);
  Fnv1a64 got;
  const PumpResult r = pump(
      fd.get(), src, kBytes, [&](const char* d, size_t n) { got.update(d, n); },
      deadlineIn(seconds(30)));
  ASSERT_EQ(r.status, IoStatus::Ok) << r.detail;
  EXPECT_EQ(r.received, kBytes);
  EXPECT_EQ(got.value(), prngStreamHash(7, kBytes));
}

TEST(TestsrvEcho, ClosesAfterClientEof) {
  TestServer srv = startTestServer(kTestsrv, "echo");
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  ASSERT_EQ(echoRoundTrip(fd.get(), "ping\n", deadlineIn(seconds(5))), IoStatus::Ok);
  ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
  EXPECT_EQ(readUntilClosed(fd.get(), deadlineIn(seconds(5))), IoStatus::Eof);
}

TEST(TestsrvHttp, AnswersKeepAliveAndClose) {
  TestServer srv = startTestServer(kTestsrv, "http", {"--name", "web1"});
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  const auto me = SockAddr::local(fd.get());
  const Deadline deadline = deadlineIn(seconds(10));
  // Two pipelined requests, the second asking to close.
  ASSERT_EQ(writeAll(fd.get(),
                     "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     deadline),
            IoStatus::Ok);
  const std::string expected_body = "hello from web1 (you are " + me->str() + ")\n";
  const std::string first = readHttpResponse(fd.get(), deadline);
  EXPECT_EQ(first.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << first;
  EXPECT_NE(first.find("Connection: keep-alive\r\n"), std::string::npos) << first;
  EXPECT_NE(first.find("Content-Type: text/plain"), std::string::npos) << first;
  EXPECT_TRUE(first.ends_with("\r\n\r\n" + expected_body)) << first;
  const std::string second = readHttpResponse(fd.get(), deadline);
  EXPECT_NE(second.find("Connection: close\r\n"), std::string::npos) << second;
  EXPECT_TRUE(second.ends_with(expected_body)) << second;
  EXPECT_EQ(readUntilClosed(fd.get(), deadline), IoStatus::Eof);
}

TEST(TestsrvHttp, Http10ClosesAndBadRequestGets400) {
  TestServer srv = startTestServer(kTestsrv, "http");
  const Deadline deadline = deadlineIn(seconds(10));
  {
    Fd fd = connectTo(srv);
    ASSERT_EQ(writeAll(fd.get(), "HEAD / HTTP/1.0\r\n\r\n", deadline), IoStatus::Ok);
    const std::string r = readUntil(
        fd.get(), [](const std::string& s) { return s.ends_with("\r\n\r\n"); }, deadline);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
    // HEAD: no body follows, just EOF.
    uint64_t extra = 0;
    EXPECT_EQ(readUntilClosed(fd.get(), deadline, &extra), IoStatus::Eof);
    EXPECT_EQ(extra, 0u);
  }
  {
    Fd fd = connectTo(srv);
    ASSERT_EQ(writeAll(fd.get(), "nonsense\r\n\r\n", deadline), IoStatus::Ok);
    const std::string r = readHttpResponse(fd.get(), deadline);
    EXPECT_EQ(r.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << r;
  }
  {
    // A POST body is skipped, and the next request on the connection is answered.
    Fd fd = connectTo(srv);
    ASSERT_EQ(writeAll(fd.get(),
                       "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nHELLO"
                       "GET / HTTP/1.1\r\n\r\n",
                       deadline),
              IoStatus::Ok);
    EXPECT_EQ(readHttpResponse(fd.get(), deadline).rfind("HTTP/1.1 200 OK", 0), 0u);
    EXPECT_EQ(readHttpResponse(fd.get(), deadline).rfind("HTTP/1.1 200 OK", 0), 0u);
  }
}

TEST(TestsrvDrainReply, ReportsWhatItReadThenSendsPayload) {
  constexpr uint64_t kSend = 5 << 20;
  constexpr uint64_t kReply = 3 << 20;
  TestServer srv = startTestServer(kTestsrv, "drain-reply", {"--bytes", "3m", "--seed", "9"});
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  PrngStream src(5);
  DrainReplyReader reader;
  const PumpResult r = pump(
      fd.get(), src, kSend, [&](const char* d, size_t n) { reader.feed(d, n); },
      deadlineIn(seconds(30)));
  ASSERT_EQ(r.status, IoStatus::Ok) << r.detail;
  ASSERT_FALSE(reader.malformed()) << reader.headerLine();
  EXPECT_EQ(reader.reportedBytes(), kSend);
  EXPECT_EQ(reader.reportedFnv(), prngStreamHash(5, kSend));
  EXPECT_EQ(reader.payload().count(), kReply);
  EXPECT_EQ(reader.payload().value(), prngStreamHash(9, kReply));
}

TEST(TestsrvSource, SendsTheSeededStream) {
  constexpr uint64_t kBytes = 16 << 20;
  TestServer srv = startTestServer(kTestsrv, "source", {"--bytes", "16m", "--seed", "77"});
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  PrngStream nothing;
  Fnv1a64 got;
  const PumpResult r = pump(
      fd.get(), nothing, 0, [&](const char* d, size_t n) { got.update(d, n); },
      deadlineIn(seconds(30)));
  ASSERT_EQ(r.status, IoStatus::Ok) << r.detail;
  EXPECT_EQ(got.count(), kBytes);
  EXPECT_EQ(got.value(), prngStreamHash(77, kBytes));
}

TEST(TestsrvHold, HoldsTwoThousandConnections) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  constexpr size_t kConns = 2100;
  TestServer srv = startTestServer(kTestsrv, "hold");
  std::string err;
  std::vector<Fd> conns = connectMany(srv.addr(), kConns, 200, deadlineIn(seconds(30)), &err);
  ASSERT_EQ(conns.size(), kConns) << err;
  // Every connection ends up accepted and held by the server process.
  std::vector<size_t> held;
  EXPECT_TRUE(waitFor(
      [&] {
        held = connectionsPerProcess(srv.port, {srv.process.pid()});
        return held[0] == kConns;
      },
      seconds(20)))
      << "server holds " << held[0] << " of " << kConns;
  // Nothing is ever answered.
  char c;
  EXPECT_EQ(readExact(conns.front().get(), &c, 1, deadlineIn(milliseconds(200))),
            IoStatus::Timeout);
}

TEST(TestsrvIdentify, SaysWhoAnsweredThenEchoes) {
  TestServer srv = startTestServer(kTestsrv, "identify", {"--name", "b2"});
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  const Deadline deadline = deadlineIn(seconds(5));
  const std::string line = readUntil(
      fd.get(), [](const std::string& s) { return s.ends_with("\n"); }, deadline);
  const auto id = parseIdentifyLine(line);
  ASSERT_TRUE(id) << line;
  EXPECT_EQ(id->name(), "b2");
  EXPECT_EQ(id->peer(), SockAddr::local(fd.get())->str());
  EXPECT_EQ(id->tls(), "none");
  EXPECT_EQ(id->sni(), "");  // not even "-": plain TCP has no such field
  EXPECT_EQ(id->proxy(), "none");
  EXPECT_EQ(echoRoundTrip(fd.get(), "after the line\n", deadline), IoStatus::Ok);
}

TEST(TestsrvProxyProtocol, IdentifyReportsAV2Header) {
  TestServer srv = startTestServer(kTestsrv, "identify", {"--name", "b3", "--proxy-protocol"});
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  const Deadline deadline = deadlineIn(seconds(5));
  // Written out from the spec (proxy-protocol.txt 2.2): PROXY over TCP4, 192.0.2.1:51000 ->
  // 198.51.100.2:443; TLVs ALPN "h2", AUTHORITY "example.com", SSL (client 0x01, verify 0,
  // VERSION "TLSv1.3", CIPHER "TLS_AES_128_GCM_SHA256"): 12 + 5 + 14 + 43 = 0x4a bytes.
  const std::string header = hexBytes(
      "0d0a0d0a 000d0a51 5549540a 21 11 004a"
      "c0000201 c6336402 c738 01bb"
      "01 0002 6832"
      "02 000b 6578616d706c652e636f6d"
      "20 0028 01 00000000"
      "21 0007 544c5376312e33"
      "23 0016 544c535f4145535f3132385f47434d5f534841323536");
  ASSERT_EQ(header.size(), 16u + 0x4a);
  // The client's first bytes in the same segment: they are the client's, not the header's.
  ASSERT_EQ(writeAll(fd.get(), header + "first\n", deadline), IoStatus::Ok);
  const std::string line = readLine(fd.get(), deadline);
  const auto id = parseIdentifyLine(line);
  ASSERT_TRUE(id) << line;
  EXPECT_EQ(id->name(), "b3");
  EXPECT_EQ(id->proxy(), "v2");
  EXPECT_EQ(id->peer(), "192.0.2.1:51000");
  EXPECT_EQ(id->proxySource(), "192.0.2.1:51000");
  EXPECT_EQ(id->proxyDestination(), "198.51.100.2:443");
  EXPECT_EQ(id->proxyAuthority(), "example.com");
  EXPECT_EQ(id->proxyAlpn(), "h2");
  EXPECT_EQ(id->proxySsl(), "1");
  EXPECT_EQ(id->proxySslVersion(), "TLSv1.3");
  EXPECT_EQ(id->proxySslCipher(), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(id->tls(), "none");
  EXPECT_EQ(readLine(fd.get(), deadline), "first\n");
  EXPECT_EQ(echoRoundTrip(fd.get(), "then echo\n", deadline), IoStatus::Ok);
}

TEST(TestsrvProxyProtocol, V1LineInPiecesAndLocalHeaders) {
  TestServer srv = startTestServer(kTestsrv, "identify", {"--proxy-protocol"});
  const Deadline deadline = deadlineIn(seconds(10));
  {
    Fd fd = connectTo(srv);
    ASSERT_TRUE(fd);
    ASSERT_EQ(writeAll(fd.get(), "PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r", deadline),
              IoStatus::Ok);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(writeAll(fd.get(), "\nhello\n", deadline), IoStatus::Ok);
    const std::string line = readLine(fd.get(), deadline);
    const auto id = parseIdentifyLine(line);
    ASSERT_TRUE(id) << line;
    EXPECT_EQ(id->proxy(), "v1");
    EXPECT_EQ(id->peer(), "[2001:db8::1]:1234");
    EXPECT_EQ(id->proxySource(), "[2001:db8::1]:1234");
    EXPECT_EQ(id->proxyDestination(), "[2001:db8::2]:443");
    EXPECT_EQ(id->proxySsl(), "");  // v1 carries no TLVs
    EXPECT_EQ(readLine(fd.get(), deadline), "hello\n");
  }
  // Local headers: the connection's own peer, and no addresses.
  for (const std::string& header :
       {std::string("PROXY UNKNOWN\r\n"), hexBytes("0d0a0d0a 000d0a51 5549540a 20 00 0000")}) {
    Fd fd = connectTo(srv);
    ASSERT_TRUE(fd);
    ASSERT_EQ(writeAll(fd.get(), header, deadline), IoStatus::Ok);
    const std::string line = readLine(fd.get(), deadline);
    const auto id = parseIdentifyLine(line);
    ASSERT_TRUE(id) << line;
    EXPECT_EQ(id->proxy(), header[0] == 'P' ? "v1" : "v2");
    EXPECT_EQ(id->peer(), SockAddr::local(fd.get())->str());
    EXPECT_EQ(id->proxySource(), "");
    EXPECT_EQ(id->proxySsl(), header[0] == 'P' ? "" : "0");
  }
}

TEST(TestsrvProxyProtocol, ClosesOnAnythingElse) {
  TestServer srv = startTestServer(kTestsrv, "identify", {"--proxy-protocol"});
  const Deadline deadline = deadlineIn(seconds(10));
  for (const std::string& garbage :
       {std::string("GET / HTTP/1.0\r\n\r\n"), std::string("PROXY TCP4 1.2.3.4 01.2.3.4 1 2\r\n"),
        hexBytes("0d0a0d0a 000d0a51 5549540a 21 12 000c c0000201 c6336402 c738 01bb")}) {
    Fd fd = connectTo(srv);
    ASSERT_TRUE(fd);
    ASSERT_EQ(writeAll(fd.get(), garbage, deadline), IoStatus::Ok);
    uint64_t got = 0;
    EXPECT_EQ(readUntilClosed(fd.get(), deadline, &got), IoStatus::Eof) << garbage;
    EXPECT_EQ(got, 0u) << garbage;  // not even the identify line
  }
}

TEST(Testsrv, RejectsIncompleteTlsOptions) {
  RunResult r = run(kTestsrv, {"--mode", "echo", "--tls-cert", "/nonexistent"}, seconds(5));
  EXPECT_EQ(r.exitCode(), 2);
  EXPECT_NE(r.err.find("--tls-cert and --tls-key go together"), std::string::npos) << r.err;
  r = run(kTestsrv, {"--mode", "echo", "--tls-alpn", "h2"}, seconds(5));
  EXPECT_EQ(r.exitCode(), 2);
  EXPECT_NE(r.err.find("need --tls-cert"), std::string::npos) << r.err;
  r = run(kTestsrv, {"--mode", "echo", "--tls-cert", "/nonexistent", "--tls-key", "/nonexistent"},
          seconds(5));
  EXPECT_EQ(r.exitCode(), 1);
  EXPECT_NE(r.err.find("--tls-cert /nonexistent"), std::string::npos) << r.err;
}

TEST(Testsrv, ExitsZeroOnSigterm) {
  TestServer srv = startTestServer(kTestsrv, "echo");
  ASSERT_TRUE(srv.process.signal(SIGTERM));
  const auto st = srv.process.wait(seconds(5));
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);
}

TEST(Testsrv, RejectsBadArguments) {
  const RunResult r = run(kTestsrv, {"--mode", "teapot"}, seconds(5));
  EXPECT_EQ(r.exitCode(), 2);
  EXPECT_NE(r.err.find("unknown mode 'teapot'"), std::string::npos) << r.err;
}

TEST(Testsrv, ListensOnIpv6Loopback) {
  TestServer srv = startTestServer(kTestsrv, "echo", {}, "::1");
  Fd fd = connectTo(srv);
  ASSERT_TRUE(fd);
  EXPECT_EQ(echoRoundTrip(fd.get(), "six\n", deadlineIn(seconds(5))), IoStatus::Ok);
}

}  // namespace
}  // namespace weir::test
