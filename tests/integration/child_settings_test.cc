// nginx's per-child settings: worker_priority (nice value), worker_rlimit_core and
// working_directory (where a crashing child leaves its core, dumpable again after dropping
// root). Checked on the running children through /proc, then with a real crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/proc_fs.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

namespace fs = std::filesystem;

// Field 19 of /proc/PID/stat, the nice value; fields are counted after the ")" that ends the
// command name (which may hold spaces). -100 if unreadable.
int niceOf(pid_t pid) {
  const std::string stat = readTextFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) {
    return -100;
  }
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 19 && fields >> field; ++i) {
    if (i == 19) {
      return std::stoi(field);
    }
  }
  return -100;
}

// The "Max core file size" line of /proc/PID/limits, blanks squeezed: "Max core file size
// 67108864 67108864 bytes".
std::string coreLimitOf(pid_t pid) {
  std::istringstream limits(readTextFile("/proc/" + std::to_string(pid) + "/limits"));
  std::string line;
  while (std::getline(limits, line)) {
    if (line.rfind("Max core file size", 0) == 0) {
      std::istringstream words(line);
      std::string word;
      std::string out;
      while (words >> word) {
        out += (out.empty() ? "" : " ") + word;
      }
      return out;
    }
  }
  return "";
}

std::string cwdOf(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).string();
}

// The kernel gives the files under /proc/PID (not the directory itself) to root while a
// process is not dumpable (proc(5)), and to its euid while it is: for a child that dropped
// root, the owner of /proc/PID/status tells whether it is dumpable.
uid_t procOwner(pid_t pid) {
  struct stat st {};
  return ::stat(("/proc/" + std::to_string(pid) + "/status").c_str(), &st) == 0 ? st.st_uid
                                                                                 : 0;
}

// The real uid of /proc/PID/status's "Uid:" line.
uid_t uidOf(pid_t pid) {
  const std::string status = readTextFile("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("\nUid:");
  return at == std::string::npos ? 0 : static_cast<uid_t>(std::stoul(status.substr(at + 5)));
}

// The master's health checker, or 0.
pid_t checkerOf(pid_t master) {
  for (pid_t p : childPids(master)) {
    if (processComm(p).rfind("weir: health", 0) == 0) {
      return p;
    }
  }
  return 0;
}

// A directory the children (global.user, "weir" or "nobody" under a root test) may enter and
// write: cores are written with the crashing process's credentials.
struct CoreDir {
  TempDir base{"weir-cores"};
  std::string path = base.file("cores");
  CoreDir() {
    fs::create_directory(path);
    fs::permissions(base.path(), fs::perms::owner_all | fs::perms::group_exec |
                                     fs::perms::others_exec);
    fs::permissions(path, fs::perms::all);
  }
};

TEST(ChildSettings, PriorityCoreLimitAndWorkingDirectory) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root: the children drop to another user, and a negative "
                    "worker_priority needs CAP_SYS_NICE";
  }
  CoreDir cores;
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.global_lines = {"worker_priority = -5", "worker_rlimit_core = \"64M\"",
                      "working_directory = \"" + cores.path + "\""};
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  pid_t checker = 0;
  ASSERT_TRUE(waitFor([&] { return (checker = checkerOf(weir.pid())) != 0; }, seconds(5)))
      << "no health checker";
  std::vector<pid_t> children = weir.workerPids();
  ASSERT_EQ(children.size(), 2u);
  children.push_back(checker);
  // A child is named first and enters working_directory, then becomes dumpable, last (after
  // dropping root): wait for those steps before looking at the others.
  EXPECT_TRUE(waitFor(
      [&] {
        return std::all_of(children.begin(), children.end(), [&](pid_t p) {
          return cwdOf(p) == cores.path && procOwner(p) != 0;
        });
      },
      seconds(5)));
  for (pid_t p : children) {
    SCOPED_TRACE(processComm(p));
    ASSERT_NE(uidOf(p), 0u) << "the children should not run as root here";
    EXPECT_EQ(niceOf(p), -5);
    EXPECT_EQ(coreLimitOf(p), "Max core file size 67108864 67108864 bytes");
    EXPECT_EQ(cwdOf(p), cores.path);
    EXPECT_EQ(procOwner(p), uidOf(p)) << "not dumpable: /proc/" << p << "/status is root's";
  }
  EXPECT_EQ(niceOf(weir.pid()), niceOf(::getpid())) << "the master's own priority changed";

  // A crash leaves a core there, when the kernel writes cores to a file of that name in the
  // working directory. Elsewhere (a pipe to systemd-coredump or apport, a fixed directory)
  // the process facts above are what can be checked.
  if (kAddressSanitizer) {
    // ASan's own SIGSEGV handler reports and exits; it writes no core (disable_coredump).
    std::printf("core file not checked: an AddressSanitizer build handles SIGSEGV itself\n");
    return;
  }
  const std::string pattern = readTextFile("/proc/sys/kernel/core_pattern");
  if (pattern.empty() || pattern[0] == '|' || pattern.find('/') != std::string::npos ||
      pattern.find('%') != std::string::npos) {
    std::printf("core file not checked: kernel.core_pattern is %s", pattern.c_str());
    return;
  }
  const pid_t victim = children.front();
  ASSERT_EQ(::kill(victim, SIGSEGV), 0);
  std::string found;
  EXPECT_TRUE(waitFor(
      [&] {
        for (const auto& entry : fs::directory_iterator(cores.path)) {
          if (entry.path().filename().string().rfind("core", 0) == 0 &&
              !processAlive(victim)) {
            found = entry.path();
            return true;
          }
        }
        return false;
      },
      seconds(10)))
      << "no core in " << cores.path << " after SIGSEGV to worker " << victim
      << " (core_pattern " << pattern << ")";
  if (!found.empty()) {
    EXPECT_GT(fs::file_size(found), 0u);
    EXPECT_EQ(fs::status(found).permissions() & fs::perms::others_read, fs::perms::none)
        << "a core holds the worker's memory: it must not be world-readable";
  }
  EXPECT_FALSE(weir.waitForWorkers(2).empty()) << "the crashed worker was not respawned";
}

// Without worker_rlimit_core the children stay undumpable: /proc/PID/status is root's.
TEST(ChildSettings, NoCoresAskedForMeansNotDumpable) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root: the children drop to another user";
  }
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo.endpoint()}, 1));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  std::vector<pid_t> workers = weir.workerPids();
  ASSERT_EQ(workers.size(), 1u);
  // Root's either way until the child has dropped root: wait for that first.
  ASSERT_TRUE(waitFor([&] { return uidOf(workers.front()) != 0; }, seconds(5)));
  EXPECT_EQ(procOwner(workers.front()), 0u);
  EXPECT_EQ(cwdOf(workers.front()), cwdOf(weir.pid()));
}

// A reload applies the new values to the new generation's children.
TEST(ChildSettings, ReloadAppliesToNewWorkers) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  const int base = niceOf(::getpid());
  if (base > 17) {
    GTEST_SKIP() << "the test runs at nice " << base << ": no room to raise it";
  }
  cfg.global_lines = {"worker_priority = " + std::to_string(base + 1)};
  WeirProcess weir(cfg);
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  // A worker is named right after fork, before it sets its priority: wait for the value.
  for (pid_t p : weir.generationWorkers(1)) {
    EXPECT_TRUE(waitFor([&] { return niceOf(p) == base + 1; }, seconds(5)))
        << "worker " << p << " at nice " << niceOf(p);
  }
  cfg.global_lines = {"worker_priority = " + std::to_string(base + 2)};
  weir.writeConfig(cfg);
  ASSERT_TRUE(weir.signal(SIGHUP));
  std::vector<pid_t> fresh = weir.waitForGenerationWorkers(2, 2);
  ASSERT_EQ(fresh.size(), 2u) << "no generation 2";
  for (pid_t p : fresh) {
    EXPECT_TRUE(waitFor([&] { return niceOf(p) == base + 2; }, seconds(5)))
        << "worker " << p << " at nice " << niceOf(p);
  }
}

}  // namespace
}  // namespace weir::test
