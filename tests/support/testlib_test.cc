// Self-tests of weir_testlib: the helpers the integration suite trusts.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <string>

#include "support/drain_reply.h"
#include "support/fnv.h"
#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/process.h"
#include "support/prng_stream.h"
#include "support/sock_addr.h"
#include "support/temp_dir.h"

namespace weir::test {
namespace {

TEST(Fnv1a64, MatchesPublishedVectors) {
  EXPECT_EQ(Fnv1a64().value(), 0xcbf29ce484222325ULL);
  Fnv1a64 a;
  a.update("a");
  EXPECT_EQ(a.value(), 0xaf63dc4c8601ec8cULL);
  Fnv1a64 foobar;
  foobar.update("foo");
  foobar.update("bar");
  EXPECT_EQ(foobar.value(), 0x85944171f73967e8ULL);
  EXPECT_EQ(foobar.count(), 6u);
  EXPECT_EQ(foobar.hex(), "85944171f73967e8");
}

TEST(PrngStream, IsSplitmix64LittleEndian) {
  // splitmix64 with state 0: first output 0xe220a8397b1dcdaf.
  EXPECT_EQ(PrngStream::word(0, 0), 0xe220a8397b1dcdafULL);
  PrngStream s(0);
  const std::string b = s.take(8);
  EXPECT_EQ(static_cast<unsigned char>(b[0]), 0xafu);
  EXPECT_EQ(static_cast<unsigned char>(b[7]), 0xe2u);
}

TEST(PrngStream, ChunkingDoesNotChangeTheStream) {
  PrngStream whole(42);
  const std::string all = whole.take(1000);
  PrngStream pieces(42);
  std::string joined;
  for (size_t n : {1, 3, 8, 13, 100, 875}) {
    joined += pieces.take(n);
  }
  EXPECT_EQ(joined, all);
  EXPECT_EQ(pieces.position(), 1000u);
  Fnv1a64 h;
  h.update(all);
  EXPECT_EQ(prngStreamHash(42, 1000), h.value());
  EXPECT_NE(PrngStream(43).take(16), all.substr(0, 16));
}

TEST(SockAddr, ParsesAndFormats) {
  auto v4 = SockAddr::parse("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->port(), 8080);
  EXPECT_EQ(v4->str(), "127.0.0.1:8080");
  auto v6 = SockAddr::parse("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->str(), "[::1]:0");
  EXPECT_FALSE(SockAddr::parse("::1:80"));
  EXPECT_FALSE(SockAddr::parse("127.0.0.1:65536"));
  EXPECT_FALSE(SockAddr::parse("127.0.0.1"));
  EXPECT_FALSE(SockAddr::parse("localhost:80"));
}

TEST(DrainReplyReader, SplitsHeaderAndPayload) {
  DrainReplyReader r;
  const std::string msg = "BYTES 12 FNV 00000000000000ff\nhello";
  for (char c : msg) {
    r.feed(&c, 1);
  }
  ASSERT_FALSE(r.malformed());
  EXPECT_EQ(r.reportedBytes(), 12u);
  EXPECT_EQ(r.reportedFnv(), 0xffu);
  EXPECT_EQ(r.payload().count(), 5u);
  DrainReplyReader bad;
  const std::string junk = "BYTES x\n";
  bad.feed(junk.data(), junk.size());
  EXPECT_TRUE(bad.malformed());
}

TEST(IdentifyLine, FormatsAndParsesWithEncoding) {
  const std::string line = formatIdentifyLine(
      {{"name", "web 1"}, {"sni", ""}, {"alpn-offered", "h2,http/1.1"}, {"x", "50%\n"}});
  EXPECT_EQ(line, "ID name=web%201 sni=- alpn-offered=h2,http/1.1 x=50%25%0A\n");
  const auto id = parseIdentifyLine(line);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name(), "web 1");
  EXPECT_EQ(id->sni(), "-");
  EXPECT_EQ(id->alpnOffered(), "h2,http/1.1");
  EXPECT_EQ(id->get("x"), "50%\n");
  EXPECT_EQ(id->get("missing"), "");
  EXPECT_FALSE(parseIdentifyLine("HELLO name=x"));
  EXPECT_FALSE(parseIdentifyLine("ID name"));
}

TEST(Process, RunCapturesOutputAndExitCode) {
  const RunResult r = run("/bin/sh", {"-c", "echo out; echo err >&2; exit 3"}, seconds(10));
  EXPECT_EQ(r.exitCode(), 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(Process, ExecFailureThrows) {
  EXPECT_THROW(Process::spawn("/nonexistent/binary", {}, {}), std::runtime_error);
}

TEST(Process, StopEscalatesToSigkill) {
  // The child ignores SIGTERM, so stop() has to escalate after the grace period.
  Process::Options opts;
  opts.out = Process::Output::Pipe;
  Process p = Process::spawn(
      "/bin/sh", {"-c", "trap '' TERM; echo ready; exec sleep 30"}, opts);
  ASSERT_EQ(p.readLine(deadlineIn(seconds(5))), "ready");
  const int st = p.stop(milliseconds(200));
  ASSERT_TRUE(WIFSIGNALED(st)) << describeStatus(st);
  EXPECT_EQ(WTERMSIG(st), SIGKILL);
}

TEST(ProcFs, FindsChildren) {
  Process a = Process::spawn("/bin/sleep", {"30"}, {});
  Process b = Process::spawn("/bin/sleep", {"30"}, {});
  const auto kids = childPids(getpid());
  EXPECT_NE(std::find(kids.begin(), kids.end(), a.pid()), kids.end());
  EXPECT_NE(std::find(kids.begin(), kids.end(), b.pid()), kids.end());
  EXPECT_TRUE(processAlive(a.pid()));
  a.stop();
  EXPECT_FALSE(processAlive(a.pid()));
}

TEST(TempDir, WritesAndCleansUp) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    const std::string f = dir.write("x.txt", "hi");
    EXPECT_EQ(readTextFile(f), "hi");
  }
  EXPECT_TRUE(readTextFile(path + "/x.txt").empty());
}

TEST(NetIo, FreePortIsFreeAndConnectIsRefused) {
  const uint16_t port = pickFreePort();
  ASSERT_NE(port, 0);
  EXPECT_TRUE(portIsFree("127.0.0.1", port));
  std::string err;
  Fd fd = connectTcp(*SockAddr::from("127.0.0.1", port), seconds(2), &err);
  EXPECT_FALSE(fd);
  EXPECT_NE(err.find("refused"), std::string::npos) << err;
}

}  // namespace
}  // namespace weir::test
