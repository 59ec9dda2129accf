// Process hygiene: workers and the health checker drop to global.user/group (by default an
// unprivileged user when the master runs as root) and keep no capabilities whoever started
// the master, hold no fd of the master's, workers are pinned and get their fd limit, titles
// name every role, and handing log files over to the workers never follows a symlink.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "child_fds.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/process.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// "Key:\tvalue" lines of /proc/PID/status.
std::map<std::string, std::string> procStatus(pid_t pid) {
  std::map<std::string, std::string> out;
  std::istringstream in(readTextFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    out[line.substr(0, colon)] = value;
  }
  return out;
}

// The soft "Max open files" limit from /proc/PID/limits.
std::string maxOpenFiles(pid_t pid) {
  std::istringstream in(readTextFile("/proc/" + std::to_string(pid) + "/limits"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream fields(line.substr(14));
      std::string soft;
      fields >> soft;
      return soft;
    }
  }
  return "";
}

// The index-th CPU this process may run on (what "auto" pins worker `index` to).
int allowedCpu(unsigned index) {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof(set), &set);
  int want = static_cast<int>(index % static_cast<unsigned>(CPU_COUNT(&set)));
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set) && want-- == 0) {
      return cpu;
    }
  }
  return -1;
}

constexpr const char* kNoCaps = "0000000000000000";

// Waits until every one of `children` has set no_new_privs, the last step of giving up its
// privileges: a child the test sees just after the master forked it (the health checker
// comes last) still runs with the master's credentials for a moment.
void waitUntilSettled(const std::vector<pid_t>& children) {
  for (pid_t child : children) {
    waitFor([&] { return procStatus(child)["NoNewPrivs"] == "1"; }, seconds(5));
  }
}

// Waits until the master has exactly `count` children, all but one (the health checker, whose
// title names no generation) workers of generation `gen`, and every one has given up its
// privileges (waitUntilSettled). Empty on timeout.
std::vector<pid_t> waitForGeneration(pid_t master, size_t count, unsigned gen) {
  std::vector<pid_t> children;
  const std::string tag = "(gen " + std::to_string(gen) + ")";
  const bool ok = waitFor(
      [&] {
        children = childPids(master);
        if (children.size() != count) {
          return false;
        }
        size_t workers = 0;
        for (pid_t c : children) {
          workers += processCmdline(c).find(tag) != std::string::npos ? 1 : 0;
        }
        return workers == count - 1;
      },
      seconds(10));
  if (!ok) {
    return {};
  }
  waitUntilSettled(children);
  return children;
}

// A uid or gid line of /proc/PID/status with all four ids (real, effective, saved, fs) `id`.
std::string allIds(uint32_t id) {
  const std::string one = std::to_string(id);
  return one + "\t" + one + "\t" + one + "\t" + one;
}

// Every capability set of `pid` empty and no_new_privs set; the bounding set too when the
// master held CAP_SETPCAP (started as root), so that it could drop it.
void expectNoCapabilities(pid_t pid, bool bounding) {
  auto st = procStatus(pid);
  const std::string title = processCmdline(pid);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_EQ(st[set], kNoCaps) << set << " of " << title;
  }
  if (bounding) {
    EXPECT_EQ(st["CapBnd"], kNoCaps) << "CapBnd of " << title;
  }
  EXPECT_EQ(st["NoNewPrivs"], "1") << title;
}

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

std::optional<Account> lookUpUser(const char* name) {
  const passwd* pw = getpwnam(name);
  if (pw == nullptr) {
    return std::nullopt;
  }
  return Account{pw->pw_name, pw->pw_uid, pw->pw_gid};
}

bool isChecker(pid_t pid) {
  return processCmdline(pid).find("health checker") != std::string::npos;
}

TEST(Privileges, ChildrenRunAsTheConfiguredUserWithoutCapabilities) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "dropping to another user needs root";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  // A log directory the workers can reach after dropping root (TempDir makes 0700 ones).
  TempDir logs("weir-logs");
  ASSERT_EQ(chmod(logs.path().c_str(), 0755), 0);
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.access_log = logs.file("access.log");
  cfg.global_lines = {"user = \"nobody\"", "group = \"nogroup\"",
                      "worker_cpu_affinity = \"auto\"", "worker_rlimit_nofile = 12345"};
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> workers = weir.waitForWorkers(2);
  ASSERT_EQ(workers.size(), 2u);

  // The master stays root: it owns the sockets and reloads.
  EXPECT_EQ(procStatus(weir.pid())["Uid"].substr(0, 2), "0\t");
  EXPECT_EQ(processCmdline(weir.pid()).substr(0, 12), "weir: master");

  std::vector<pid_t> children = waitForGeneration(weir.pid(), 3, 1);
  ASSERT_EQ(children.size(), 3u) << "two workers and the health checker";
  size_t checkers = 0;
  for (pid_t child : children) {
    auto st = procStatus(child);
    const std::string title = processCmdline(child);
    EXPECT_EQ(st["Uid"], "65534\t65534\t65534\t65534") << title;
    EXPECT_EQ(st["Gid"], "65534\t65534\t65534\t65534") << title;
    EXPECT_EQ(st["Groups"], "65534") << title;
    EXPECT_EQ(st["CapEff"], "0000000000000000") << title;
    EXPECT_EQ(st["CapPrm"], "0000000000000000") << title;
    EXPECT_EQ(st["NoNewPrivs"], "1") << title;
    if (title.find("health checker") != std::string::npos) {
      ++checkers;
      EXPECT_EQ(title.rfind("weir: health checker", 0), 0u) << title;
      continue;
    }
    // "weir: worker I (gen 1)", pinned to the I-th allowed CPU, with its own fd limit.
    unsigned index = 99;
    ASSERT_EQ(std::sscanf(title.c_str(), "weir: worker %u (gen 1)", &index), 1) << title;
    EXPECT_EQ(st["Cpus_allowed_list"], std::to_string(allowedCpu(index))) << title;
    EXPECT_EQ(maxOpenFiles(child), "12345") << title;
  }
  EXPECT_EQ(checkers, 1u);

  // Unprivileged workers still proxy, and reopen their logs after a rotation: the master
  // creates the new file and hands it to them.
  for (int i = 0; i < 4; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "as nobody\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  std::filesystem::rename(cfg.access_log, cfg.access_log + ".1");
  ASSERT_TRUE(weir.signal(SIGUSR1));
  ASSERT_TRUE(weir.waitForLogLines("log files reopened", 3, seconds(5))) << weir.logTail();
  EXPECT_EQ(weir.countLogLines("[error]"), 0u) << weir.logTail();
  for (int i = 0; i < 4; ++i) {
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(echoRoundTrip(fd.get(), "rotated\n", deadlineIn(seconds(5))), IoStatus::Ok);
  }
  EXPECT_TRUE(waitFor([&] { return !readTextFile(cfg.access_log).empty(); }, seconds(5)))
      << "no access line in the reopened file";
  struct stat info {};
  ASSERT_EQ(stat(cfg.access_log.c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 65534u) << "the new access log should belong to the workers' user";

  // A reload keeps dropping: the new generation runs as nobody too.
  weir.writeConfig(weir.config());
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("master: reloaded", 1, seconds(10)));
  const std::vector<pid_t> gen2 = weir.waitForGenerationWorkers(2, 2);
  ASSERT_EQ(gen2.size(), 2u);
  // A worker shows its title a moment before it drops root: wait for the drop.
  for (pid_t w : gen2) {
    EXPECT_TRUE(waitFor([&] { return procStatus(w)["Uid"] == "65534\t65534\t65534\t65534"; },
                        seconds(5)))
        << procStatus(w)["Uid"];
  }
}

// A master started as root without global.user runs its children as "weir" if that user
// exists, else as "nobody" (nginx's rule), hands its log files to that user, and `weir -t`
// says so beforehand.
TEST(Privileges, RootMasterRunsChildrenAsAnUnprivilegedUserByDefault) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "the default user applies to a master started as root";
  }
  std::optional<Account> expected = lookUpUser("weir");
  if (!expected) {
    expected = lookUpUser("nobody");
  }
  ASSERT_TRUE(expected.has_value()) << "neither weir nor nobody is in the user database";
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir logs("weir-logs");
  ASSERT_EQ(chmod(logs.path().c_str(), 0755), 0);
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.access_log = logs.file("access.log");
  WeirProcess weir(cfg);

  const std::string who =
      "user " + expected->name + " (uid " + std::to_string(expected->uid) + ")";
  const RunResult check = run(kWeirBin, {"-t", "-c", weir.configPath()}, seconds(10));
  EXPECT_EQ(check.exitCode(), 0) << check.err;
  EXPECT_NE(check.err.find("will run as " + who), std::string::npos) << check.err;

  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> children = waitForGeneration(weir.pid(), 3, 1);
  ASSERT_EQ(children.size(), 3u) << "two workers and the health checker";
  for (pid_t child : children) {
    auto st = procStatus(child);
    EXPECT_EQ(st["Uid"], allIds(expected->uid)) << processCmdline(child);
    EXPECT_EQ(st["Gid"], allIds(expected->gid)) << processCmdline(child);
    expectNoCapabilities(child, true);
  }
  EXPECT_TRUE(weir.logLine("run as " + who).has_value()) << weir.logTail();
  struct stat info {};
  ASSERT_EQ(stat(cfg.access_log.c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, expected->uid) << "the access log should belong to the workers' user";
  Fd fd = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(echoRoundTrip(fd.get(), "default user\n", deadlineIn(seconds(5))), IoStatus::Ok);
}

// The other branch of the default: where a "weir" user exists, the children run as it. The
// user exists only in weir's own view of the user database (nss_wrapper), so the machine's is
// never touched.
TEST(Privileges, WeirUserIsTheDefaultWhereItExists) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "the default user applies to a master started as root";
  }
  // weir gets a user database of its own through nss_wrapper (LD_PRELOAD), holding a "weir"
  // user: nothing on this machine changes, whether or not it has such a user, and it works in
  // a chroot too (a private mount namespace does not).
  std::string wrapper;
  for (const char* lib : {"/usr/lib/x86_64-linux-gnu/libnss_wrapper.so",
                          "/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
                          "/usr/lib64/libnss_wrapper.so", "/usr/lib/libnss_wrapper.so"}) {
    if (access(lib, R_OK) == 0) {
      wrapper = lib;
      break;
    }
  }
  ASSERT_FALSE(wrapper.empty()) << "needs libnss_wrapper (Debian: libnss-wrapper, which "
                                   "packaging/deps.sh installs)";
  std::string passwd_text = readTextFile("/etc/passwd");
  uid_t uid = 64000;
  while (uid < 65000 && (getpwuid(uid) != nullptr ||
                         passwd_text.find(":" + std::to_string(uid) + ":") != std::string::npos)) {
    ++uid;
  }
  ASSERT_LT(uid, 65000u) << "no free uid in 64000..64999";
  std::string without_weir;
  for (size_t at = 0; at < passwd_text.size();) {
    const size_t eol = passwd_text.find('\n', at);
    const std::string line = passwd_text.substr(at, eol == std::string::npos ? eol : eol - at + 1);
    if (line.rfind("weir:", 0) != 0) {
      without_weir += line;
    }
    at = eol == std::string::npos ? passwd_text.size() : eol + 1;
  }
  TempDir etc("weir-etc");
  ASSERT_EQ(chmod(etc.path().c_str(), 0755), 0);
  const std::string passwd =
      etc.write("passwd", without_weir + "weir:x:" + std::to_string(uid) +
                              ":65534:weir test user:/nonexistent:/usr/sbin/nologin\n");
  const std::string group = etc.write("group", readTextFile("/etc/group"));
  ASSERT_EQ(chmod(passwd.c_str(), 0644), 0);
  ASSERT_EQ(chmod(group.c_str(), 0644), 0);

  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}, 2));
  weir.setWrapper({"/usr/bin/env", "LD_PRELOAD=" + wrapper, "NSS_WRAPPER_PASSWD=" + passwd,
                   "NSS_WRAPPER_GROUP=" + group});
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> children = waitForGeneration(weir.pid(), 3, 1);
  ASSERT_EQ(children.size(), 3u) << "two workers and the health checker";
  for (pid_t child : children) {
    auto st = procStatus(child);
    EXPECT_EQ(st["Uid"], allIds(uid)) << processCmdline(child);
    EXPECT_EQ(st["Gid"], allIds(65534)) << "weir's primary group; " << processCmdline(child);
    expectNoCapabilities(child, true);
  }
  EXPECT_TRUE(weir.logLine("run as user weir (uid " + std::to_string(uid) + ")").has_value())
      << weir.logTail();
}

// Children run as root only when asked for by name, and then weir warns, at start and at
// every reload. Even then they hold no capability.
TEST(Privileges, ExplicitRootKeepsChildrenRootWithoutCapabilitiesAndWarns) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "children run as root only under a root master";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.global_lines = {"user = \"root\""};
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  const std::vector<pid_t> children = waitForGeneration(weir.pid(), 3, 1);
  ASSERT_EQ(children.size(), 3u) << "two workers and the health checker";
  for (pid_t child : children) {
    EXPECT_EQ(procStatus(child)["Uid"], allIds(0)) << processCmdline(child);
    expectNoCapabilities(child, true);
  }
  const auto warning = weir.logLine("run as root");
  ASSERT_TRUE(warning.has_value()) << weir.logTail();
  EXPECT_NE(warning->find("[warning] master:"), std::string::npos) << *warning;

  weir.writeConfig(weir.config());
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("master: reloaded", 1, seconds(10))) << weir.logTail();
  EXPECT_EQ(weir.countLogLines("run as root"), 2u) << "a reload should warn again";
}

// A master started as a non-root user that holds capabilities (here ambient ones, as a
// service manager grants them) keeps its uid for the children, but not its capabilities.
// Without CAP_SETPCAP it cannot empty their bounding set; no_new_privs holds exec instead.
TEST(Privileges, ChildrenOfACapableNonRootMasterHoldNoCapabilities) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to start weir as nobody with capabilities";
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to start weir with capabilities";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}, 2));
  ASSERT_EQ(chmod(weir.dir().path().c_str(), 0755), 0) << "nobody must read weir.toml";
  const std::string caps = "+net_bind_service,+net_admin,+bpf";
  weir.setWrapper({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "--inh-caps=" + caps, "--ambient-caps=" + caps, "--"});
  // What this test looks at is the children's credentials, not the steering, which a master
  // without root may or may not load.
  weir.allowSteeringOff();
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  auto master = procStatus(weir.pid());
  ASSERT_EQ(master["Uid"], allIds(65534)) << "setpriv did not start the master as nobody";
  ASSERT_NE(master["CapAmb"], kNoCaps) << "setpriv gave the master no ambient capabilities";
  ASSERT_NE(master["CapEff"], kNoCaps);

  const std::vector<pid_t> children = waitForGeneration(weir.pid(), 3, 1);
  ASSERT_EQ(children.size(), 3u) << "two workers and the health checker";
  for (pid_t child : children) {
    EXPECT_EQ(procStatus(child)["Uid"], allIds(65534)) << processCmdline(child);
    expectNoCapabilities(child, false);
    const std::vector<uint16_t> ports =
        isChecker(child) ? std::vector<uint16_t>{} : std::vector<uint16_t>{weir.port()};
    waitFor([&] { return static_cast<bool>(holdsOnlyItsOwnFds(child, ports)); }, seconds(3));
    EXPECT_TRUE(holdsOnlyItsOwnFds(child, ports));
  }
}

// Workers and the checker hold nothing of the master's: no BPF program or map (a worker
// updates the load counters through the .bss mapping alone), no signalfd but their own, no
// pipe, and each worker exactly its own listening socket of each address. Checked for the
// first generation and for one a reload starts.
TEST(Privileges, ChildrenHoldNoFdOfTheMasters) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "the master holds BPF fds only when it can load the program (root)";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.steering = "least-loaded";
  cfg.listeners.push_back(ListenerSpec{"second", cfg.listeners.front().pool});
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  EXPECT_TRUE(weir.logLine("BPF steering on").has_value())
      << "the program did not load as root:\n" << weir.logTail();
  const std::vector<uint16_t> both = {weir.port("front"), weir.port("second")};

  for (unsigned gen = 1; gen <= 2; ++gen) {
    if (gen == 2) {
      weir.writeConfig(weir.config());
      ASSERT_TRUE(weir.signal(SIGHUP));
      ASSERT_TRUE(weir.waitForLogLines("master: reloaded", 1, seconds(10))) << weir.logTail();
    }
    const std::vector<pid_t> children = waitForGeneration(weir.pid(), 3, gen);
    ASSERT_EQ(children.size(), 3u) << "generation " << gen << ": two workers and the checker";
    for (pid_t child : children) {
      const std::vector<uint16_t> ports = isChecker(child) ? std::vector<uint16_t>{} : both;
      waitFor([&] { return static_cast<bool>(holdsOnlyItsOwnFds(child, ports)); }, seconds(3));
      EXPECT_TRUE(holdsOnlyItsOwnFds(child, ports)) << "generation " << gen;
    }
  }
  // Still serving on both addresses, steered by the program whose fds the workers closed.
  for (const char* listener : {"front", "second"}) {
    for (int i = 0; i < 4; ++i) {
      Fd fd = connectTcp(weir.addr(listener), seconds(5));
      ASSERT_TRUE(fd.valid());
      EXPECT_EQ(echoRoundTrip(fd.get(), "fds\n", deadlineIn(seconds(5))), IoStatus::Ok);
    }
  }
}

// The master hands the log files it creates to the workers' user, but never through a
// symbolic link: a log path swapped for a link to a root-owned file must not give that
// file away. The master says why it did not hand it over.
TEST(Privileges, LogHandOverDoesNotFollowASymlink) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "only a root master hands files over";
  }
  TempDir elsewhere("weir-precious");
  const std::string target = elsewhere.write("precious", "root's own file\n");
  ASSERT_EQ(chmod(target.c_str(), 0644), 0);
  ASSERT_EQ(chown(target.c_str(), 0, 0), 0);
  TempDir logs("weir-logs");
  ASSERT_EQ(chmod(logs.path().c_str(), 0755), 0);
  const std::string link = logs.file("access.log");
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);

  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.access_log = link;
  cfg.global_lines = {"user = \"nobody\"", "group = \"nogroup\""};
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::Accepts));
  auto ownerOf = [&] {
    struct stat info {};
    EXPECT_EQ(stat(target.c_str(), &info), 0);
    return std::to_string(info.st_uid) + ":" + std::to_string(info.st_gid);
  };
  EXPECT_EQ(ownerOf(), "0:0") << "the master chowned the symlink's target at start";
  const auto why = weir.logLine("not handing " + link + " over");
  ASSERT_TRUE(why.has_value()) << weir.logTail();
  EXPECT_NE(why->find("symbolic link"), std::string::npos) << *why;

  ASSERT_TRUE(weir.signal(SIGUSR1));
  ASSERT_TRUE(weir.waitForLogLines("master: log files reopened", 1, seconds(5)))
      << weir.logTail();
  EXPECT_EQ(ownerOf(), "0:0") << "the master chowned the symlink's target on USR1";
  EXPECT_EQ(weir.countLogLines("not handing " + link + " over"), 2u) << weir.logTail();
}

}  // namespace
}  // namespace weir::test
