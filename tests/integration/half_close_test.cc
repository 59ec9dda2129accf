// Half-close: the client's shutdown(SHUT_WR) must reach the backend as EOF while the other
// direction stays open for the whole reply.
#include <gtest/gtest.h>

#include "support/drain_reply.h"
#include "support/fnv.h"
#include "support/net_io.h"
#include "support/prng_stream.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

struct Exchange {
  PumpResult pump;
  DrainReplyReader reply;
};

// Sends `upload` bytes of PRNG stream `seed` through weir to a drain-reply backend, half-
// closes, and reads the reply to EOF.
Exchange uploadThenRead(const WeirProcess& weir, uint64_t seed, uint64_t upload) {
  Exchange x;
  std::string err;
  Fd fd = connectTcp(weir.addr(), seconds(5), &err);
  if (!fd) {
    x.pump.detail = err;
    return x;
  }
  PrngStream source(seed);
  x.pump = pump(
      fd.get(), source, upload, [&](const char* d, size_t n) { x.reply.feed(d, n); },
      deadlineIn(seconds(30)));
  return x;
}

constexpr uint64_t kReplyBytes = 3ULL << 20;
constexpr uint64_t kReplySeed = 99;
constexpr auto kPromptEof = seconds(5);

TEST(HalfClose, UploadThenShutdownThenFullReply) {
  TestServer backend = startTestServer(
      kTestsrvBin, "drain-reply", {"--bytes", std::to_string(kReplyBytes), "--seed",
                                   std::to_string(kReplySeed)});
  WeirProcess weir(WeirConfig::simple({backend.endpoint()}));
  ASSERT_TRUE(weir.start());

  constexpr uint64_t kUpload = 5ULL << 20;
  const Exchange x = uploadThenRead(weir, 5, kUpload);
  // Ok means: all 5 MiB sent, SHUT_WR done, and the reply ended with EOF (no reset).
  ASSERT_EQ(x.pump.status, IoStatus::Ok) << x.pump.detail;
  EXPECT_LT(x.pump.eof_lag, kPromptEof) << "EOF came late: the backend's close not passed on?";
  ASSERT_FALSE(x.reply.malformed()) << "header: '" << x.reply.headerLine() << "'";
  ASSERT_TRUE(x.reply.reportedBytes()) << "no header line; got '" << x.reply.headerLine() << "'";
  EXPECT_EQ(*x.reply.reportedBytes(), kUpload) << "backend saw a different byte count";
  EXPECT_EQ(Fnv1a64::toHex(*x.reply.reportedFnv()), Fnv1a64::toHex(prngStreamHash(5, kUpload)))
      << "backend saw different bytes";
  EXPECT_EQ(x.reply.payload().count(), kReplyBytes) << "reply payload truncated or padded";
  EXPECT_EQ(Fnv1a64::toHex(x.reply.payload().value()),
            Fnv1a64::toHex(prngStreamHash(kReplySeed, kReplyBytes)));
}

// The edge case: half-close before sending anything. The backend must see a clean EOF
// (zero bytes) rather than the connection being torn down.
TEST(HalfClose, ImmediateShutdownStillGetsReply) {
  TestServer backend = startTestServer(
      kTestsrvBin, "drain-reply", {"--bytes", std::to_string(kReplyBytes), "--seed",
                                   std::to_string(kReplySeed)});
  WeirProcess weir(WeirConfig::simple({backend.endpoint()}));
  ASSERT_TRUE(weir.start());

  const Exchange x = uploadThenRead(weir, 1, 0);
  ASSERT_EQ(x.pump.status, IoStatus::Ok) << x.pump.detail;
  EXPECT_LT(x.pump.eof_lag, kPromptEof) << "EOF came late: the backend's close not passed on?";
  ASSERT_FALSE(x.reply.malformed()) << "header: '" << x.reply.headerLine() << "'";
  EXPECT_EQ(x.reply.headerLine(), "BYTES 0 FNV " + Fnv1a64().hex());
  EXPECT_EQ(x.reply.payload().count(), kReplyBytes);
  EXPECT_EQ(x.reply.payload().value(), prngStreamHash(kReplySeed, kReplyBytes));
}

}  // namespace
}  // namespace weir::test
