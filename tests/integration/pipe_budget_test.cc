// Pipe memory of 4 workers running as daemon. Without CAP_SYS_RESOURCE the kernel charges every
// pipe to daemon's pipe-user-pages-soft budget (16384 pages by default); past it, daemon's new
// pipes get 2 slots and growing one (F_SETPIPE_SZ) is refused, so bulk flows crawl. weir must
// keep its idle pipes within its share of that budget, free the ones it stops using, and so
// always leave room for the large pipes of bulk flows, in this generation and the next.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/fnv.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/prng_stream.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr size_t kWorkers = 4;
// Connections per worker whose client reads nothing at first, so that each one holds a pipe:
// more than the 256 idle pipes a worker used to keep, so that 4 such pools held more than the
// whole default budget of the user.
constexpr size_t kHeldPerWorker = 280;
// What each of them downloads: more than the kernel buffers between weir and a client that
// does not read, so some of it waits in weir's pipe.
constexpr const char* kSourceBytes = "256k";
constexpr uint64_t kBulkBytes = 16ULL << 20;
constexpr int kDefaultPipeBytes = 64 * 1024;
// weir's promise (lb/net/pipe_pool.h): the idle pipes of one generation hold at most a quarter
// of pipe-user-pages-soft, and a worker whose pipes stay unused frees all but kIdleFloor
// default pipes (and every large one) within two trim periods.
constexpr size_t kIdleFloor = 4;
constexpr auto kTrimWait = seconds(30);

long readProcLong(const char* path) {
  std::ifstream in(path);
  long v = -1;
  in >> v;
  return v;
}

struct PipeUse {
  size_t pipes = 0;
  long pages = 0;
  int largest = 0;
  std::string why;  // set when /proc would not show the pipes
};

// Pipes the test process holds: inherited by weir's processes, not theirs.
const std::map<std::string, int>& inheritedPipes() {
  static const std::map<std::string, int> mine = [] {
    std::string why;
    return pipesOf(::getpid(), &why);
  }();
  return mine;
}

// The pipes of weir worker `pid` (those it inherited from the test excepted).
PipeUse pipeUse(pid_t pid) {
  PipeUse u;
  static const long page = ::sysconf(_SC_PAGESIZE);
  for (const auto& [name, bytes] : pipesOf(pid, &u.why)) {
    if (inheritedPipes().count(name) != 0) {
      continue;
    }
    ++u.pipes;
    u.pages += bytes / page;
    u.largest = std::max(u.largest, bytes);
  }
  return u;
}

std::string describe(const std::vector<pid_t>& pids) {
  std::ostringstream out;
  for (pid_t p : pids) {
    const PipeUse u = pipeUse(p);
    out << "  pid " << p << ": " << u.pipes << " pipes, " << u.pages << " pages, largest "
        << u.largest << u.why << "\n";
  }
  return out.str();
}

long totalPages(const std::vector<pid_t>& pids) {
  long pages = 0;
  for (pid_t p : pids) {
    pages += pipeUse(p).pages;
  }
  return pages;
}

// A client that reads nothing stalls weir's writes early: a tiny receive buffer, and small
// segments, which also keep the send buffer of weir's side of the connection small.
void slowReader(int fd) {
  const int rcvbuf = 4096;
  const int mss = 536;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
}

// Reads every socket until EOF or reset. Returns how many got there before `deadline`.
size_t drainAll(const std::vector<Fd>& fds, Deadline deadline) {
  std::vector<bool> done(fds.size(), false);
  size_t finished = 0;
  char buf[65536];
  std::vector<pollfd> pfds;
  std::vector<size_t> index;
  while (finished < fds.size() && Clock::now() < deadline) {
    pfds.clear();
    index.clear();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!done[i]) {
        pfds.push_back({fds[i].get(), POLLIN, 0});
        index.push_back(i);
      }
    }
    if (::poll(pfds.data(), pfds.size(), std::min(msLeft(deadline), 1000)) < 0) {
      break;
    }
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) {
        continue;
      }
      for (;;) {
        const ssize_t n = ::recv(pfds[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          break;
        }
        done[index[k]] = true;  // EOF or an error
        ++finished;
        break;
      }
    }
  }
  return finished;
}

// One connection to `listener` held by each of `workers` (more are opened until each worker
// holds one; the extra ones are closed). Empty on failure.
std::map<pid_t, Fd> onePerWorker(WeirProcess& weir, const std::string& listener,
                                 const std::vector<pid_t>& workers) {
  std::map<pid_t, Fd> out;
  std::vector<Fd> open;
  for (int i = 0; i < 64 && out.size() < workers.size(); ++i) {
    Fd fd = connectTcp(weir.addr(listener), seconds(5));
    if (!fd || echoRoundTrip(fd.get(), "whose?\n", deadlineIn(seconds(5))) != IoStatus::Ok) {
      return {};
    }
    open.push_back(std::move(fd));
    std::vector<pid_t> owners;
    waitFor(
        [&] {
          owners = connectionOwners(weir.port(listener), workers, open);
          return owners.back() != 0;
        },
        seconds(2));
    const pid_t owner = owners.back();
    if (owner != 0 && out.count(owner) == 0) {
      out.emplace(owner, std::move(open.back()));
      open.pop_back();
    }
  }
  return out.size() == workers.size() ? std::move(out) : std::map<pid_t, Fd>{};
}

// Echoes kBulkBytes through `fd` and checks them; returns MiB/s (both directions added).
double bulkEcho(int fd, uint64_t seed) {
  PrngStream source(seed);
  Fnv1a64 got;
  uint64_t received = 0;
  const auto t0 = Clock::now();
  // pump() half-closes when done; the flow is over after that, which is what we want.
  const PumpResult r = pump(
      fd, source, kBulkBytes,
      [&](const char* d, size_t n) {
        got.update(d, n);
        received += n;
      },
      deadlineIn(seconds(120)));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(r.status, IoStatus::Ok) << r.detail;
  EXPECT_EQ(received, kBulkBytes);
  EXPECT_EQ(Fnv1a64::toHex(got.value()), Fnv1a64::toHex(prngStreamHash(seed, kBulkBytes)));
  return s > 0 ? 2.0 * static_cast<double>(kBulkBytes) / (1 << 20) / s : 0;
}

// For each worker: a bulk flow through it, after which it holds a large pipe.
void checkBulkFlowsGetLargePipes(WeirProcess& weir, const std::vector<pid_t>& workers,
                                 int large, const char* what) {
  std::map<pid_t, Fd> conns = onePerWorker(weir, "front", workers);
  ASSERT_EQ(conns.size(), workers.size()) << what << ": could not reach every worker";
  uint64_t seed = 1;
  for (auto& [pid, fd] : conns) {
    const double rate = bulkEcho(fd.get(), seed++);
    std::printf("%s: worker %d: 16 MiB echo at %.0f MiB/s\n", what, pid, rate);
    const PipeUse u = pipeUse(pid);
    EXPECT_GE(u.largest, large) << what << ": worker " << pid
                                << " has no large pipe after a bulk flow\n"
                                << describe(workers);
  }
}

TEST(PipeBudget, FourUnprivilegedWorkersKeepIdlePipesInBudgetAndStillGetLargePipes) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "running the workers as daemon needs root";
  }
  const long soft = readProcLong("/proc/sys/fs/pipe-user-pages-soft");
  if (soft <= 0) {
    GTEST_SKIP() << "pipe-user-pages-soft is " << soft << ": no pipe budget to run out of";
  }
  const int large = static_cast<int>(
      std::min<long>(1 << 20, readProcLong("/proc/sys/fs/pipe-max-size")));
  ASSERT_GT(large, kDefaultPipeBytes) << "pipe-max-size leaves no room for large pipes here";

  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TestServer src = startTestServer(kTestsrvBin, "source", {"--bytes", kSourceBytes});
  WeirConfig cfg;
  cfg.workers = std::to_string(kWorkers);
  // daemon, a user of every Debian system that nothing else here runs as: the budget is per
  // user, and the other tests' weir workers and nginx run as nobody, in parallel with this one.
  cfg.global_lines = {"user = \"daemon\"", "group = \"daemon\"", "drain_timeout = \"60s\""};
  cfg.pools.push_back({"echo", {{echo.endpoint(), 1}}});
  cfg.pools.push_back({"src", {{src.endpoint(), 1}}});
  cfg.listeners.push_back({"front", "echo", 0, 4096});
  cfg.listeners.push_back({"fill", "src", 0, 4096});
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> gen1 = weir.generationWorkers(1);
  ASSERT_EQ(gen1.size(), kWorkers);
  if (const std::string why = pipeUse(gen1[0]).why; !why.empty()) {
    GTEST_SKIP() << "cannot inspect the workers' pipes: " << why;
  }

  // 1. Many connections at once, each with bytes stuck in a pipe while its client does not
  // read; then they all finish, and every worker has had a few hundred pipes to give back.
  std::string err;
  std::vector<Fd> held = connectMany(weir.addr("fill"), kWorkers * kHeldPerWorker, 64,
                                     deadlineIn(seconds(30)), &err, slowReader);
  ASSERT_EQ(held.size(), kWorkers * kHeldPerWorker) << err;
  size_t busy = 0;
  EXPECT_TRUE(waitFor(
      [&] {
        busy = 0;
        for (pid_t w : gen1) {
          busy += pipeUse(w).pipes;
        }
        return busy >= held.size();
      },
      seconds(30)))
      << busy << " pipes held for " << held.size() << " stalled downloads\n"
      << describe(gen1);
  std::printf("pipes held by stalled downloads:\n%s", describe(gen1).c_str());
  ASSERT_EQ(drainAll(held, deadlineIn(seconds(60))), held.size());
  held.clear();
  EXPECT_TRUE(waitFor(
      [&] {
        const std::vector<size_t> n = connectionsPerProcess(weir.port("fill"), gen1);
        return std::all_of(n.begin(), n.end(), [](size_t c) { return c == 0; });
      },
      seconds(10)));

  // 2. What the workers keep idle fits the generation's share of the budget.
  std::printf("idle after the downloads:\n%s", describe(gen1).c_str());
  EXPECT_LE(totalPages(gen1), soft / 4)
      << "idle pipes of one generation must fit in a quarter of pipe-user-pages-soft ("
      << soft / 4 << " pages)\n"
      << describe(gen1);

  // 3. A bulk flow through each worker gets a large pipe.
  checkBulkFlowsGetLargePipes(weir, gen1, large, "generation 1");

  // 4. A reload while every old worker still holds a connection (an idle one): the old
  // generation drains with its pipes, the new one must still get large pipes.
  std::map<pid_t, Fd> gen1_conns = onePerWorker(weir, "front", gen1);
  ASSERT_EQ(gen1_conns.size(), kWorkers);
  ASSERT_TRUE(weir.signal(SIGHUP));
  std::vector<pid_t> gen2;
  ASSERT_TRUE(waitFor(
      [&] {
        gen2 = weir.generationWorkers(2);
        return gen2.size() == kWorkers;
      },
      seconds(20)))
      << weir.logTail();
  ASSERT_TRUE(weir.waitForLogLines("reloaded: generation 2", 1, seconds(20))) << weir.logTail();
  checkBulkFlowsGetLargePipes(weir, gen2, large, "generation 2");

  // 5. Pipes nobody uses are freed: at once in the draining generation, after a while in the
  // serving one.
  const auto trimmed = [&](const std::vector<pid_t>& workers) {
    return std::all_of(workers.begin(), workers.end(), [](pid_t w) {
      const PipeUse u = pipeUse(w);
      return u.pipes <= kIdleFloor && u.largest <= kDefaultPipeBytes;
    });
  };
  EXPECT_TRUE(trimmed(gen1)) << "the draining generation kept its idle pipes\n"
                             << describe(gen1);
  EXPECT_TRUE(waitFor([&] { return trimmed(gen2); }, kTrimWait))
      << "idle pipes were not freed\n"
      << describe(gen2);
  for (auto& [pid, fd] : gen1_conns) {
    EXPECT_EQ(echoRoundTrip(fd.get(), "still there\n", deadlineIn(seconds(5))), IoStatus::Ok)
        << "a connection of the draining generation";
  }
}

}  // namespace
}  // namespace weir::test
