// The master never trusts the shared-memory region, which every worker can write: garbage
// written over a live region (as a compromised worker could) is noticed, logged and dropped on
// the next reload, and the new generation serves.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// The address range of `pid`'s mapping of the shared region ("/memfd:weir-shm (deleted)" in
// /proc/PID/maps), e.g. "7f12a000-7f12b000"; "" if there is none.
std::string regionRange(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find("weir-shm") != std::string::npos) {
      return line.substr(0, line.find(' '));
    }
  }
  return "";
}

// Writes `byte` (or random bytes when byte < 0) over [from, end) of `pid`'s region, through
// /proc/PID/map_files (which needs CAP_SYS_ADMIN: root only). Returns false with a reason.
bool scribble(pid_t pid, size_t from, int byte, std::string* why) {
  const std::string range = regionRange(pid);
  if (range.empty()) {
    *why = "no weir-shm mapping in /proc/" + std::to_string(pid) + "/maps";
    return false;
  }
  const std::string path = "/proc/" + std::to_string(pid) + "/map_files/" + range;
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    *why = "open " + path + ": " + errnoText(errno);
    return false;
  }
  unsigned long start = 0;
  unsigned long end = 0;
  std::sscanf(range.c_str(), "%lx-%lx", &start, &end);
  const size_t size = end - start;
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mem == MAP_FAILED) {
    *why = "mmap: " + errnoText(errno);
    return false;
  }
  auto* bytes = static_cast<unsigned char*>(mem);
  std::mt19937 rng(12345);
  for (size_t i = from; i < size; ++i) {
    bytes[i] = byte >= 0 ? static_cast<unsigned char>(byte) : static_cast<unsigned char>(rng());
  }
  ::munmap(mem, size);
  return true;
}

::testing::AssertionResult serves(const WeirProcess& weir, int n) {
  for (int i = 0; i < n; ++i) {
    std::string err;
    Fd fd = connectTcp(weir.addr(), seconds(5), &err);
    if (!fd) {
      return ::testing::AssertionFailure() << err;
    }
    const IoStatus st = echoRoundTrip(fd.get(), "after\n", deadlineIn(seconds(5)));
    if (st != IoStatus::Ok) {
      return ::testing::AssertionFailure() << "connection " << i << ": " << toString(st);
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(SharedMemory, ScribbledRegionIsDroppedOnReloadAndTheNewGenerationServes) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "writing another process's memory through /proc/PID/map_files needs root";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  const std::string dead = "127.0.0.1:" + std::to_string(pickFreePort());
  WeirConfig cfg = WeirConfig::simple({echo.endpoint(), dead}, 2);
  cfg.pools[0].health = "kind = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"50ms\"\nfall = 1\n";
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_TRUE(weir.waitForLogLines("backend " + dead + " is down", 1, seconds(5)));

  // 1. Everything past the header, in random bytes: keys, health, counters of every worker.
  std::string why;
  ASSERT_TRUE(scribble(workers[0], 64, -1, &why)) << why;
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("master: reloaded: generation 2", 1, seconds(10)))
      << weir.logTail();
  ASSERT_TRUE(weir.waitForLogLines("generation 1 draining", 1, seconds(10))) << weir.logTail();
  EXPECT_TRUE(weir.running());
  EXPECT_GE(weir.countLogLines("shared memory of generation 1: back/"), 1u)
      << "the master should say which backends start fresh\n" << weir.logTail();
  EXPECT_TRUE(serves(weir, 20));

  // 2. The whole region, header included, of the now serving generation.
  const std::vector<pid_t> gen2 = weir.waitForGenerationWorkers(2, 2);
  ASSERT_EQ(gen2.size(), 2u);
  ASSERT_TRUE(scribble(gen2[0], 0, 0xa5, &why)) << why;
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("master: reloaded: generation 3", 1, seconds(10)))
      << weir.logTail();
  ASSERT_TRUE(weir.waitForLogLines("generation 2 draining", 1, seconds(10))) << weir.logTail();
  EXPECT_TRUE(weir.running());
  EXPECT_EQ(weir.countLogLines("shared memory of generation 2: the old region's header was "
                               "overwritten; health state starts fresh"),
            1u)
      << weir.logTail();
  EXPECT_TRUE(serves(weir, 20));
  // The checker of the new generation finds the dead backend again on its own.
  EXPECT_TRUE(weir.waitForLogLines("backend " + dead + " is down", 2, seconds(5)));
}

}  // namespace
}  // namespace weir::test
