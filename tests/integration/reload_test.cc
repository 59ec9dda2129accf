// SIGHUP reloads: a new generation of workers on the same listening sockets, the old one
// drained. Under load no connection may fail; a long-lived stream survives; a bad config
// changes nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/load_client.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/prng_stream.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// The config with `workers` workers and weights `w0`/`w1` on the two backends.
WeirConfig variant(const WeirConfig& base, unsigned workers, unsigned w0, unsigned w1) {
  WeirConfig c = base;
  c.workers = std::to_string(workers);
  c.pools[0].backends[0].weight = w0;
  c.pools[0].backends[1].weight = w1;
  return c;
}

size_t openFdCount(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

// With BPF steering only slots below the worker count get connections; with the kernel's
// hash ("hash", or no BPF) every socket of a group does, so after a shrink the sockets
// beyond the worker count must still have a worker accepting from them.
class ReloadUnderLoad : public ::testing::TestWithParam<const char*> {};

TEST_P(ReloadUnderLoad, TwentyReloadsFailNoConnection) {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo0.endpoint(), echo1.endpoint()}, 2);
  base.steering = GetParam();
  base.global_lines.push_back("drain_timeout = \"30s\"");
  WeirProcess weir(base);
  base = weir.config();  // with the ports it picked
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  LoadClient::Options opts;
  opts.target = weir.addr();
  opts.concurrency = 32;
  opts.max_rate = 2500;
  LoadClient load(opts);
  load.start();
  const Deadline began = Clock::now();
  // 20 reloads, 0.5 s apart, alternating worker count (2 <-> 3) and backend weights.
  size_t master_fds = 0;
  for (size_t i = 1; i <= 20; ++i) {
    std::this_thread::sleep_until(began + milliseconds(500) * i);
    const bool odd = i % 2 == 1;
    ASSERT_TRUE(reload(weir, variant(base, odd ? 3 : 2, odd ? 3 : 1, odd ? 1 : 3), i));
    if (i == 2) {
      master_fds = openFdCount(weir.pid());  // the groups have grown to 3 sockets by now
    }
  }
  EXPECT_EQ(openFdCount(weir.pid()), master_fds) << "the master leaks descriptors on reload";
  std::this_thread::sleep_until(began + milliseconds(10500));
  const LoadStats stats = load.stop();
  const double secs = std::chrono::duration<double>(Clock::now() - began).count();
  std::printf("reload under load (steering %s): %.1f s, 20 reloads, %.0f connections/s; %s\n",
              GetParam(), secs, stats.completed / secs, stats.summary().c_str());
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();
  EXPECT_GE(stats.completed, 10000u) << "the load was too light to prove anything";

  // Every old generation exits once its connections are done: 2 workers remain.
  const std::vector<pid_t> last = weir.waitForWorkers(2, seconds(10));
  ASSERT_EQ(last.size(), 2u) << "old generations still running: " << weir.workerPids().size()
                             << " workers";
  // And the steering still spreads new connections over both of them.
  std::vector<Fd> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(connectTcp(weir.addr(), seconds(5)));
    ASSERT_TRUE(held.back().valid());
    ASSERT_EQ(echoRoundTrip(held.back().get(), "spread\n", deadlineIn(seconds(5))),
              IoStatus::Ok);
  }
  const std::vector<pid_t> owners = connectionOwners(weir.port(), last, held);
  for (pid_t w : last) {
    const auto n = std::count(owners.begin(), owners.end(), w);
    EXPECT_GE(n, std::string(GetParam()) == "hash" ? 4 : 16)
        << "worker " << w << " holds " << n << " of 40 connections";
  }
  EXPECT_EQ(weir.countLogLines("reload failed"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Steering, ReloadUnderLoad,
                         ::testing::Values("least-loaded", "hash"), [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(Reload, LongStreamSurvivesTenReloadsAndItsGenerationThenExits) {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo0.endpoint(), echo1.endpoint()}, 2);
  base.global_lines.push_back("drain_timeout = \"60s\"");
  WeirProcess weir(base);
  base = weir.config();  // with the ports it picked
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> first = weir.waitForWorkers(2);
  ASSERT_EQ(first.size(), 2u);

  std::string err;
  Fd stream = connectTcp(weir.addr(), seconds(5), &err);
  ASSERT_TRUE(stream.valid()) << err;
  ASSERT_EQ(echoRoundTrip(stream.get(), "hello\n", deadlineIn(seconds(5))), IoStatus::Ok);
  std::vector<Fd> one;
  one.push_back(std::move(stream));
  const pid_t owner = connectionOwners(weir.port(), first, one).front();
  ASSERT_NE(owner, 0) << "no first-generation worker holds the stream";

  // Stream PRNG bytes through the echo path in 16 KiB chunks while reloading ten times; every
  // byte must come back, in order.
  PrngStream out(7);
  PrngStream expect(7);
  uint64_t bytes = 0;
  std::vector<char> chunk(16384);
  std::vector<char> back(16384);
  std::vector<char> want(16384);
  auto exchange = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      out.fill(chunk.data(), chunk.size());
      if (writeAll(one[0].get(), chunk.data(), chunk.size(), deadlineIn(seconds(5))) !=
          IoStatus::Ok) {
        return false;
      }
      if (readExact(one[0].get(), back.data(), back.size(), deadlineIn(seconds(5))) !=
          IoStatus::Ok) {
        return false;
      }
      expect.fill(want.data(), want.size());
      if (back != want) {
        return false;
      }
      bytes += chunk.size();
    }
    return true;
  };
  for (size_t i = 1; i <= 10; ++i) {
    ASSERT_TRUE(exchange(8)) << "stream broke before reload " << i << " after " << bytes
                             << " bytes";
    weir.writeConfig(variant(base, i % 2 == 1 ? 3 : 2, 1, 1));
    ASSERT_TRUE(weir.signal(SIGHUP));
    ASSERT_TRUE(exchange(8)) << "stream broke during reload " << i << " after " << bytes
                             << " bytes";
    ASSERT_TRUE(weir.waitForLogLines("master: reloaded: generation", i, seconds(10)));
  }
  ASSERT_TRUE(exchange(8)) << "stream broke after the reloads, " << bytes << " bytes";
  std::printf("stream: %llu bytes echoed intact across 10 reloads\n",
              static_cast<unsigned long long>(bytes));
  EXPECT_TRUE(processAlive(owner)) << "the first generation's worker left while it held the "
                                      "stream";
  EXPECT_NE(processCmdline(owner).find("(gen 1)"), std::string::npos) << processCmdline(owner);

  // Closing the stream lets the first generation finish.
  ASSERT_EQ(::shutdown(one[0].get(), SHUT_WR), 0);
  EXPECT_EQ(readUntilClosed(one[0].get(), deadlineIn(seconds(5))), IoStatus::Eof);
  one.clear();
  EXPECT_TRUE(waitFor([&] { return !processAlive(owner); }, seconds(5)))
      << "the first generation's worker did not exit after its last connection closed";
  EXPECT_FALSE(weir.waitForWorkers(2, seconds(5)).empty())
      << "workers now: " << weir.workerPids().size();
}

TEST(Reload, BadConfigChangesNothingAndIsReportedWithItsLocation) {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo0.endpoint(), echo1.endpoint()}, 2);
  WeirProcess weir(base);
  base = weir.config();  // with the ports it picked
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> before = weir.waitForWorkers(2);
  ASSERT_EQ(before.size(), 2u);

  // An unknown key; the message names its line.
  WeirConfig bad = base;
  bad.global_lines.push_back("worker = 3");
  weir.writeConfig(bad);
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("reload failed", 1, seconds(10)));
  auto located = weir.logLine("weir.toml:");
  ASSERT_TRUE(located.has_value()) << weir.logTail();
  EXPECT_NE(located->find("[error]"), std::string::npos) << *located;
  EXPECT_NE(located->find("global.worker"), std::string::npos) << *located;
  // FILE:LINE:COL: the line number of "worker = 3" in the written file.
  const std::string toml = readTextFile(weir.configPath());
  size_t line = 1 + std::count(toml.begin(), toml.begin() + toml.find("worker = 3"), '\n');
  EXPECT_NE(located->find("weir.toml:" + std::to_string(line) + ":"), std::string::npos)
      << *located << " (expected line " << line << ")";

  // Nothing changed: same workers, still serving.
  EXPECT_EQ(weir.workerPids(), before);
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "still here\n", deadlineIn(seconds(5))), IoStatus::Ok);

  // A good config then reloads normally.
  ASSERT_TRUE(reload(weir, variant(base, 3, 1, 1), 1));
  EXPECT_TRUE(waitFor([&] { return weir.generationWorkers(2).size() == 3; }, seconds(10)))
      << "generation 2 should run 3 workers";
  Fd again = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(again.valid());
  EXPECT_EQ(echoRoundTrip(again.get(), "reloaded\n", deadlineIn(seconds(5))), IoStatus::Ok);
  // The connection opened before the reload still works (its worker is draining).
  EXPECT_EQ(echoRoundTrip(fd.get(), "old one\n", deadlineIn(seconds(5))), IoStatus::Ok);
}

TEST(Reload, MissingCertificateFileChangesNothing) {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo0.endpoint(), echo1.endpoint()}, 2);
  WeirProcess weir(base);
  base = weir.config();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> before = weir.waitForWorkers(2);
  ASSERT_EQ(before.size(), 2u);

  // A valid config (3 workers) naming a CA file that does not exist: only reading the file
  // finds the problem, and the reload must fail as for a config error.
  TempDir dir("weir-reload-ca");
  const std::string missing = dir.file("missing-ca.pem");
  WeirConfig bad = variant(base, 3, 1, 1);
  bad.pools[0].lines.push_back("tls = { ca = \"" + missing + "\" }");
  weir.writeConfig(bad);
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("reload failed", 1, seconds(10))) << weir.logTail();
  auto located = weir.logLine(missing);
  ASSERT_TRUE(located.has_value()) << weir.logTail();
  EXPECT_NE(located->find("[error]"), std::string::npos) << *located;
  EXPECT_NE(located->find("pools.back.tls.ca: " + missing +
                          ": cannot read: No such file or directory"),
            std::string::npos)
      << *located;
  EXPECT_EQ(weir.countLogLines("master: reloaded: generation"), 0u) << weir.logTail();

  // Nothing changed: same workers, still serving.
  EXPECT_EQ(weir.workerPids(), before);
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "still here\n", deadlineIn(seconds(5))), IoStatus::Ok);
}

TEST(Reload, ListenersAndPoolsComeAndGo) {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo0.endpoint()}, 2);
  WeirProcess weir(base);
  base = weir.config();  // with the ports it picked
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  // Add a listener with a pool of its own.
  WeirConfig more = base;
  more.pools.push_back({"other", {{echo1.endpoint(), 1}}});
  more.listeners.push_back({"second", "other", 0, 4096});
  ASSERT_TRUE(reload(weir, more, 1));
  more = weir.config();  // with the port picked for "second"
  const SockAddr second = weir.addr("second");
  LoadClient::Options opts;
  opts.target = weir.addr("front");
  opts.concurrency = 8;
  opts.max_rate = 1000;
  LoadClient load(opts);
  load.start();
  {
    Fd fd = connectTcp(second, seconds(5));
    ASSERT_TRUE(fd.valid()) << "the added listener does not accept";
    EXPECT_EQ(echoRoundTrip(fd.get(), "second\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  // Load on the address about to go: its connections may be refused once it is retired, but
  // none that got in may be reset (its sockets close only when nothing is queued on them).
  LoadClient::Options on_second = opts;
  on_second.target = second;
  LoadClient doomed(on_second);
  doomed.start();
  std::this_thread::sleep_for(milliseconds(300));
  // Remove it again: the address is refused once retired, the other one never noticed.
  ASSERT_TRUE(reload(weir, base, 2));
  EXPECT_TRUE(waitFor(
      [&] {
        std::string err;
        return !connectTcp(second, milliseconds(500), &err).valid();
      },
      seconds(5)))
      << "the removed listener still accepts";
  EXPECT_TRUE(weir.waitForLogLines("closed the", 1, seconds(5)));
  const LoadStats gone = doomed.stop();
  std::printf("removed listener under load: %s\n", gone.summary().c_str());
  EXPECT_EQ(gone.resets + gone.incomplete + gone.timeouts + gone.other_errors, 0u)
      << gone.summary();
  EXPECT_GT(gone.completed, 0u);
  const LoadStats stats = load.stop();
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();
  EXPECT_GT(stats.completed, 0u);
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST(Reload, AtMostFourGenerationsRunAtOnce) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo.endpoint()}, 1);
  base.global_lines.push_back("drain_timeout = \"60s\"");
  WeirProcess weir(base);
  base = weir.config();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  // One open connection per generation keeps every generation draining.
  std::vector<Fd> held;
  auto hold = [&](size_t gen) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "gen " + std::to_string(gen) + "\n",
                            deadlineIn(seconds(5))),
              IoStatus::Ok);
    held.push_back(std::move(fd));
  };
  hold(1);
  for (size_t i = 1; i <= 5; ++i) {
    ASSERT_TRUE(reload(weir, base, i));
    // Once the previous generation stops accepting, new connections go to the new one.
    ASSERT_TRUE(weir.waitForLogLines("master: generation " + std::to_string(i) + " draining",
                                     1, seconds(5)));
    hold(i + 1);
  }
  // Generations 1 and 2 were stopped to make room: their connections are closed.
  for (size_t g = 0; g < 2; ++g) {
    const IoStatus s = readUntilClosed(held[g].get(), deadlineIn(seconds(10)));
    EXPECT_TRUE(s == IoStatus::Eof || s == IoStatus::Reset)
        << "generation " << g + 1 << "'s connection: " << toString(s);
  }
  // Generations 3 to 6 still serve theirs.
  for (size_t g = 2; g < held.size(); ++g) {
    EXPECT_EQ(echoRoundTrip(held[g].get(), "still\n", deadlineIn(seconds(5))), IoStatus::Ok)
        << "generation " << g + 1;
  }
  EXPECT_TRUE(waitFor([&] { return weir.workerPids().size() == 4; }, seconds(10)))
      << weir.workerPids().size() << " workers";
  EXPECT_EQ(weir.countLogLines("at most 4 generations holding connections run at once"), 2u);
  // The log says what it closed: one connection each, held by worker 0.
  EXPECT_EQ(weir.countLogLines("generation 1 stopped before its connections ended: closing its "
                               "1 connection(s) (worker 0: 1)"),
            1u)
      << weir.logTail();
  EXPECT_EQ(weir.countLogLines("generation 2 stopped before its connections ended"), 1u);
  // And the worker names each connection it cuts.
  for (size_t g = 0; g < 2; ++g) {
    auto local = SockAddr::local(held[g].get());
    ASSERT_TRUE(local.has_value());
    EXPECT_TRUE(weir.waitForLogLines("closed by the stop: client " + local->str() + " -> backend " +
                                         echo.endpoint(),
                                     1, seconds(5)))
        << "generation " << g + 1 << "'s connection from " << local->str() << "\n"
        << weir.logTail();
  }
}

// Reloads back to back, with no wait between them, must not cut a long connection: the cap
// counts only generations that hold connections (not those whose workers are gone and whose
// checker has not exited yet, nor those whose workers hold nothing), and reaps before it
// counts. Checkers are frozen (SIGSTOP) here so that they exit as slowly as possible.
TEST(Reload, BackToBackReloadsNeverCutALongConnection) {
  TestServer echo0 = startTestServer(kTestsrvBin, "echo");
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo0.endpoint(), echo1.endpoint()}, 2);
  base.global_lines.push_back("drain_timeout = \"60s\"");
  WeirProcess weir(base);
  base = weir.config();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> first = weir.waitForWorkers(2);
  ASSERT_EQ(first.size(), 2u);
  Fd stream = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(stream.valid());
  ASSERT_EQ(echoRoundTrip(stream.get(), "long\n", deadlineIn(seconds(5))), IoStatus::Ok);

  std::vector<pid_t> frozen;
  auto freezeCheckers = [&] {
    for (pid_t p : childPids(weir.pid())) {
      if (processComm(p).find("health") != std::string::npos &&
          std::find(frozen.begin(), frozen.end(), p) == frozen.end() && kill(p, SIGSTOP) == 0) {
        frozen.push_back(p);
      }
    }
  };
  // Bursts of reloads, as fast as signals go (the kernel merges some of each burst); every
  // burst is waited for until it has reloaded at least once, so that a slow master (under a
  // sanitizer, say) still goes through enough of them.
  size_t sent = 0;
  size_t reloads = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 8; ++i) {
      weir.writeConfig(variant(base, i % 2 == 0 ? 3 : 2, 1, 1));
      ASSERT_TRUE(weir.signal(SIGHUP));
      ++sent;
      freezeCheckers();
    }
    ASSERT_EQ(echoRoundTrip(stream.get(), "round " + std::to_string(round) + "\n",
                            deadlineIn(seconds(5))),
              IoStatus::Ok)
        << "the long connection broke in round " << round << "\n" << weir.logTail();
    ASSERT_TRUE(weir.waitForLogLines("master: reloaded: generation", reloads + 1, seconds(10)));
    reloads = weir.countLogLines("master: reloaded: generation");
    freezeCheckers();
  }
  std::printf("back-to-back: %zu SIGHUPs sent, %zu reloads, %zu checkers frozen\n", sent,
              reloads, frozen.size());
  EXPECT_GE(reloads, 10u);
  EXPECT_EQ(weir.countLogLines("stopped before its connections ended"), 0u) << weir.logTail();
  EXPECT_TRUE(processAlive(first[0]) || processAlive(first[1]))
      << "the first generation's workers are gone";
  for (pid_t p : frozen) {
    kill(p, SIGCONT);
  }
  // Once the stream ends its generation exits, and the frozen checkers have been stopped.
  ASSERT_EQ(::shutdown(stream.get(), SHUT_WR), 0);
  EXPECT_EQ(readUntilClosed(stream.get(), deadlineIn(seconds(5))), IoStatus::Eof);
  stream.reset();
  EXPECT_FALSE(weir.waitForWorkers(2, seconds(10)).empty())
      << "workers now: " << weir.workerPids().size();
  // Only the serving generation's checker (possibly frozen too) may remain.
  EXPECT_TRUE(waitFor(
      [&] {
        return std::count_if(frozen.begin(), frozen.end(),
                             [](pid_t p) { return processAlive(p); }) <= 1;
      },
      seconds(15)))
      << "old checkers still run";
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

// Connections already queued on an address a reload removes are still served: the address
// is closed only once the old generation has accepted everything queued there.
TEST(Reload, QueuedConnectionsOnARemovedListenerAreServed) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo.endpoint()}, 1);
  base.max_connections = 1;  // the worker stops accepting while it holds one connection
  base.global_lines.push_back("drain_timeout = \"60s\"");
  base.listeners.push_back({"second", "back", 0, 4096});
  WeirProcess weir(base);
  base = weir.config();
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  const SockAddr second = weir.addr("second");

  Fd busy = connectTcp(second, seconds(5));
  ASSERT_TRUE(busy.valid());
  ASSERT_EQ(echoRoundTrip(busy.get(), "busy\n", deadlineIn(seconds(5))), IoStatus::Ok);
  // These complete their handshakes in the kernel and wait in the accept queue.
  std::vector<Fd> queued;
  for (int i = 0; i < 5; ++i) {
    Fd fd = connectTcp(second, seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(writeAll(fd.get(), "queued " + std::to_string(i) + "\n", deadlineIn(seconds(5))),
              IoStatus::Ok);
    queued.push_back(std::move(fd));
  }

  WeirConfig without = base;
  without.listeners.pop_back();
  ASSERT_TRUE(reload(weir, without, 1));
  std::this_thread::sleep_for(milliseconds(300));  // the old generation cannot accept yet
  EXPECT_EQ(weir.countLogLines("closed the"), 0u) << "closed with connections queued";
  busy.reset();  // frees the old worker, which then accepts the queued ones in turn
  for (size_t i = 0; i < queued.size(); ++i) {
    const std::string want = "queued " + std::to_string(i) + "\n";
    std::string got(want.size(), '\0');
    EXPECT_EQ(readExact(queued[i].get(), got.data(), got.size(), deadlineIn(seconds(5))),
              IoStatus::Ok)
        << "queued connection " << i;
    EXPECT_EQ(got, want);
    queued[i].reset();  // one at a time: the worker holds at most one connection
  }
  EXPECT_TRUE(weir.waitForLogLines("closed the", 1, seconds(5)));
  EXPECT_TRUE(waitFor([&] { return !connectTcp(second, milliseconds(500)).valid(); },
                      seconds(5)));
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

// A reload whose workers cannot start (here: their error log cannot be opened) does not take
// the service down: the old generation keeps accepting until a reload brings up workers that
// stay up.
TEST(Reload, NewWorkersThatDoNotStayUpLeaveTheOldGenerationServing) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig base = WeirConfig::simple({echo.endpoint()}, 2);
  WeirProcess weir(base);
  base = weir.config();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  WeirConfig broken = base;
  broken.error_log = "/proc/weir-no-such-dir/error.log";  // cannot be created
  LoadClient::Options opts;
  opts.target = weir.addr();
  opts.concurrency = 8;
  opts.max_rate = 1000;
  LoadClient load(opts);
  load.start();
  ASSERT_TRUE(reload(weir, broken, 1));
  ASSERT_TRUE(weir.waitForLogLines("respawning in", 2, seconds(5)))
      << "the broken generation's workers should fail";
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(weir.countLogLines("generation 1 draining"), 0u)
      << "the working generation was drained for one whose workers do not stay up";
  LoadStats stats = load.snapshot();
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();

  // A good config: its workers come up, and both older generations are drained.
  ASSERT_TRUE(reload(weir, base, 2));
  EXPECT_TRUE(weir.waitForLogLines("generation 1 draining", 1, seconds(5)));
  EXPECT_TRUE(weir.waitForLogLines("generation 2 draining", 1, seconds(5)));
  std::this_thread::sleep_for(milliseconds(300));
  stats = load.stop();
  EXPECT_EQ(stats.failures(), 0u) << stats.summary();
  EXPECT_GT(stats.completed, 1000u);
  EXPECT_FALSE(weir.waitForWorkers(2, seconds(5)).empty());
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

// Health state carries over: a backend the checker took down stays down through a reload (a
// fresh start would mark it up, and the first client to try it would take it down again).
TEST(Reload, HealthStateCarriesOverForBackendsThatStay) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  const uint16_t dead_port = pickFreePort();  // nothing listens there
  const std::string dead = "127.0.0.1:" + std::to_string(dead_port);
  WeirConfig base = WeirConfig::simple({echo.endpoint(), dead}, 2);
  base.pools[0].health = "kind = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nfall = 2\n";
  WeirProcess weir(base);
  base = weir.config();
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  const std::string down_line = "backend " + dead + " is down";
  ASSERT_TRUE(weir.waitForLogLines(down_line, 1, seconds(5))) << weir.logTail();

  // A reload that changes the weights (the dead backend is the same backend).
  WeirConfig heavier = base;
  heavier.pools[0].backends[1].weight = 5;
  ASSERT_TRUE(reload(weir, heavier, 1));
  for (int i = 0; i < 50; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "carried\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  std::this_thread::sleep_for(milliseconds(500));  // a few check intervals
  EXPECT_EQ(weir.countLogLines(down_line), 1u)
      << "the backend went down again after the reload: its state was not carried over\n"
      << weir.logTail();
  EXPECT_EQ(weir.countLogLines("backend " + dead + " is up"), 0u);
}

}  // namespace
}  // namespace weir::test
