// A refused backend is skipped; a pool of refused backends closes the client quickly and
// hurts nobody else.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// Listener "mixed" -> pool [refused, echo] with one retry; listener "dead" -> pool of two
// refused backends. A refused port is one we bound and released: nothing listens there.
WeirConfig failoverConfig(const TestServer& echo) {
  const std::string refused1 = "127.0.0.1:" + std::to_string(pickFreePort());
  const std::string refused2 = "127.0.0.1:" + std::to_string(pickFreePort());
  WeirConfig c;
  c.workers = "2";
  c.pools.push_back({"mixed", {{refused1, 1}, {echo.endpoint(), 1}}, 1, "2s", "10m"});
  c.pools.push_back({"dead", {{refused1, 1}, {refused2, 1}}, 1, "2s", "10m"});
  c.listeners.push_back({"mixed", "mixed", 0, 4096});
  c.listeners.push_back({"dead", "dead", 0, 4096});
  return c;
}

IoStatus echoOnce(const WeirProcess& weir, const std::string& listener, const std::string& msg,
                  std::string* err) {
  Fd fd = connectTcp(weir.addr(listener), seconds(5), err);
  if (!fd) {
    return IoStatus::Error;
  }
  return echoRoundTrip(fd.get(), msg, deadlineIn(seconds(5)));
}

TEST(BackendFailover, RefusedBackendIsSkipped) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(failoverConfig(echo));
  ASSERT_TRUE(weir.start());

  // Round-robin alternates the refused and the good backend; with one retry every
  // connection must end up on the good one.
  for (int i = 0; i < 50; ++i) {
    std::string err;
    const std::string msg = "failover " + std::to_string(i) + "\n";
    const IoStatus s = echoOnce(weir, "mixed", msg, &err);
    ASSERT_EQ(s, IoStatus::Ok) << "connection " << i << " was not served: " << toString(s) << " "
                               << err;
  }
}

TEST(BackendFailover, AllBackendsRefusedClosesClientFast) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(failoverConfig(echo));
  ASSERT_TRUE(weir.start());
  const std::vector<pid_t> workers_before = weir.workerPids();
  ASSERT_EQ(workers_before.size(), 2u);

  for (int i = 0; i < 10; ++i) {
    std::string err;
    Fd fd = connectTcp(weir.addr("dead"), seconds(5), &err);
    ASSERT_TRUE(fd) << "weir should accept even when its pool is down: " << err;
    // A request the client would send; weir has nowhere to forward it.
    ASSERT_EQ(writeAll(fd.get(), "hello?\n", deadlineIn(seconds(1))), IoStatus::Ok);
    const auto t0 = Clock::now();
    uint64_t got = 0;
    const IoStatus s = readUntilClosed(fd.get(), deadlineIn(seconds(2)), &got);
    const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
    EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset)
        << "connection " << i << ": expected EOF or RST within 2 s, got " << toString(s)
        << " after " << ms << " ms";
    EXPECT_LT(ms, 2000);
    EXPECT_EQ(got, 0u) << "no backend exists, so no byte should come back";
  }

  // Nobody crashed or was replaced, and the other listener still serves.
  EXPECT_TRUE(weir.running());
  EXPECT_EQ(weir.workerPids(), workers_before) << "a worker died or was respawned";
  std::string err;
  const IoStatus s = echoOnce(weir, "mixed", "still here\n", &err);
  EXPECT_EQ(s, IoStatus::Ok) << toString(s) << " " << err;
}

}  // namespace
}  // namespace weir::test
