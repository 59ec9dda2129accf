// Byte-exact bulk transfer through weir, in both directions.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "support/fnv.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/prng_stream.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr uint64_t kBytes = 64ULL << 20;
constexpr auto kTransferDeadline = seconds(120);
// Once the data is through, the closing FIN has no reason to take long.
constexpr auto kPromptEof = seconds(5);

long long asMs(Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

double mibPerSecond(uint64_t bytes, Clock::duration d) {
  const double s = std::chrono::duration<double>(d).count();
  return s > 0 ? static_cast<double>(bytes) / (1 << 20) / s : 0;
}

// 64 MiB up and the same 64 MiB echoed back, concurrently, on one connection; then the
// client's half-close must come back as EOF once the echo is complete.
TEST(Transfer, EchoesSixtyFourMebibytesEachWay) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  std::string err;
  Fd fd = connectTcp(weir.addr(), seconds(5), &err);
  ASSERT_TRUE(fd) << err;
  constexpr uint64_t kSeed = 0x7472616e73666572;  // "transfer"
  PrngStream source(kSeed);
  Fnv1a64 got;
  const auto t0 = Clock::now();
  const PumpResult r = pump(
      fd.get(), source, kBytes, [&](const char* d, size_t n) { got.update(d, n); },
      deadlineIn(kTransferDeadline));
  const auto took = Clock::now() - t0;
  ASSERT_EQ(r.status, IoStatus::Ok) << r.detail;
  EXPECT_EQ(r.sent, kBytes);
  EXPECT_EQ(r.received, kBytes);
  EXPECT_LT(r.eof_lag, kPromptEof) << "EOF came " << asMs(r.eof_lag)
                                   << " ms after the echo ended: half-close not passed on?";
  EXPECT_EQ(Fnv1a64::toHex(got.value()), Fnv1a64::toHex(prngStreamHash(kSeed, kBytes)))
      << "echoed bytes differ from the bytes sent";
  const double rate = mibPerSecond(2 * kBytes, took);
  std::printf("echo 64 MiB each way: %.1f MiB/s (both directions)\n", rate);
  RecordProperty("echo_mib_per_s", static_cast<int>(rate));
}

// 64 MiB from a `source` backend, checked against the stream the backend was seeded with.
TEST(Transfer, DownloadsSixtyFourMebibytesFromSource) {
  constexpr uint64_t kSeed = 4242;
  TestServer src = startTestServer(kTestsrvBin, "source",
                                   {"--bytes", std::to_string(kBytes), "--seed",
                                    std::to_string(kSeed)});
  WeirProcess weir(WeirConfig::simple({src.endpoint()}));
  ASSERT_TRUE(weir.start());

  std::string err;
  Fd fd = connectTcp(weir.addr(), seconds(5), &err);
  ASSERT_TRUE(fd) << err;
  PrngStream nothing;
  Fnv1a64 got;
  const auto t0 = Clock::now();
  // Send nothing but half-close at once: the download must still arrive in full.
  const PumpResult r = pump(
      fd.get(), nothing, 0, [&](const char* d, size_t n) { got.update(d, n); },
      deadlineIn(kTransferDeadline));
  const auto took = Clock::now() - t0;
  ASSERT_EQ(r.status, IoStatus::Ok) << r.detail;
  EXPECT_EQ(r.received, kBytes);
  EXPECT_LT(r.eof_lag, kPromptEof) << "EOF came " << asMs(r.eof_lag)
                                   << " ms after the last byte: backend close not passed on?";
  EXPECT_EQ(Fnv1a64::toHex(got.value()), Fnv1a64::toHex(prngStreamHash(kSeed, kBytes)));
  const double rate = mibPerSecond(kBytes, took);
  std::printf("source download 64 MiB: %.1f MiB/s\n", rate);
  RecordProperty("download_mib_per_s", static_cast<int>(rate));
}

// A client that writes in small pieces and reads slower than it writes: weir's sends to it
// block with part of a buffer still to go, over and over, while the echoed flow turns from
// small copies to splicing. Every byte must still come back, in order.
TEST(Transfer, SlowReaderGetsEveryByteWhileItsFlowTurnsBulk) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  const auto small_window = [](int fd) {
    const int small = 4096;  // a small window keeps weir's sends to us blocking
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  };
  std::vector<Fd> fds =
      connectMany(weir.addr(), 1, 1, deadlineIn(seconds(5)), nullptr, small_window);
  ASSERT_EQ(fds.size(), 1U);
  const int fd = fds[0].get();
  constexpr uint64_t kTotal = 8ULL << 20;
  constexpr size_t kWritePiece = 1000;  // requests
  constexpr size_t kReadPiece = 512;    // half of what goes out per turn
  constexpr uint64_t kSeed = 0x736c6f77;  // "slow"
  PrngStream source(kSeed);
  Fnv1a64 got;
  uint64_t sent = 0;
  uint64_t received = 0;
  std::vector<char> out;
  size_t out_off = 0;
  char in[kReadPiece];
  const Deadline deadline = deadlineIn(kTransferDeadline);
  while (received < kTotal && Clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (sent < kTotal ? POLLOUT : 0)), 0};
    ASSERT_GE(::poll(&p, 1, 1000), 0) << std::strerror(errno);
    if ((p.revents & POLLOUT) != 0 && sent < kTotal) {
      if (out_off == out.size()) {
        out.resize(std::min<uint64_t>(kWritePiece, kTotal - sent));
        source.fill(out.data(), out.size());
        out_off = 0;
      }
      const ssize_t n =
          ::send(fd, out.data() + out_off, out.size() - out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out_off += static_cast<size_t>(n);
        sent += static_cast<uint64_t>(n);
      } else {
        ASSERT_TRUE(n < 0 && errno == EAGAIN) << "send: " << std::strerror(errno);
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(fd, in, sizeof in, MSG_DONTWAIT);
      ASSERT_NE(n, 0) << "EOF after " << received << " of " << kTotal << " bytes";
      if (n > 0) {
        got.update(in, static_cast<size_t>(n));
        received += static_cast<uint64_t>(n);
      } else {
        ASSERT_EQ(errno, EAGAIN) << "recv: " << std::strerror(errno);
      }
    }
  }
  ASSERT_EQ(received, kTotal) << "timed out with " << sent << " sent";
  EXPECT_EQ(Fnv1a64::toHex(got.value()), Fnv1a64::toHex(prngStreamHash(kSeed, kTotal)))
      << "the echo differs from what was sent: bytes lost or reordered";
}

int readProcInt(const char* path) {
  std::ifstream in(path);
  int v = 0;
  in >> v;
  return v;
}

// A request/response flow keeps the kernel's default 64 KiB pipes; a bulk flow gets a large
// one (min(1 MiB, pipe-max-size)), which the worker keeps pooled afterwards.
// `global_lines` go into the config's [global] table.
void checkOnlyBulkFlowsGetLargePipes(std::vector<std::string> global_lines) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 1);
  cfg.global_lines = std::move(global_lines);
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.workerPids();
  ASSERT_EQ(workers.size(), 1U);
  const int large = std::min(1 << 20, readProcInt("/proc/sys/fs/pipe-max-size"));
  ASSERT_GT(large, 64 * 1024) << "pipe-max-size leaves no room for large pipes here";

  auto largest = [&](std::string* why) {
    int most = 0;
    for (const auto& [name, size] : pipesOf(workers[0], why)) {
      most = std::max(most, size);
    }
    return most;
  };
  auto echoThrough = [&](uint64_t bytes, uint64_t seed) {
    std::string err;
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    ASSERT_TRUE(fd) << err;
    PrngStream source(seed);
    Fnv1a64 got;
    const PumpResult r = pump(
        fd.get(), source, bytes, [&](const char* d, size_t n) { got.update(d, n); },
        deadlineIn(kTransferDeadline));
    ASSERT_EQ(r.status, IoStatus::Ok) << r.detail;
    ASSERT_EQ(r.received, bytes);
    EXPECT_EQ(Fnv1a64::toHex(got.value()), Fnv1a64::toHex(prngStreamHash(seed, bytes)));
  };

  for (uint64_t i = 0; i < 20; ++i) {
    echoThrough(200, i);  // 200 bytes each way: requests and responses
  }
  std::string why;
  const int after_small = largest(&why);
  if (!why.empty()) {
    GTEST_SKIP() << "cannot inspect the worker's pipes: " << why;
  }
  EXPECT_LE(after_small, 64 * 1024) << "a 200-byte flow was given a large pipe";

  echoThrough(16ULL << 20, 99);  // 16 MiB each way
  EXPECT_GE(largest(&why), large) << "no large pipe after a 16 MiB flow" << why;
}

TEST(Transfer, OnlyBulkFlowsGetLargePipes) { checkOnlyBulkFlowsGetLargePipes({}); }

// Without CAP_SYS_RESOURCE the worker's large pipes come out of the user's pipe budget (a
// share of pipe-user-pages-soft); a bulk flow must still get one.
TEST(Transfer, OnlyBulkFlowsGetLargePipesAsUnprivilegedUser) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "dropping to another user needs root";
  }
  checkOnlyBulkFlowsGetLargePipes({"user = \"nobody\"", "group = \"nogroup\""});
}

}  // namespace
}  // namespace weir::test
