// weir as systemd/weir.service runs it, as far as that can be had without systemd as PID 1
// (CI runs in a chroot): a root master whose capability bounding set is exactly the unit's
// CapabilityBoundingSet (read from the unit, so the two cannot drift), with no_new_privs, its
// logs in a root-owned 0755 directory as LogsDirectory= makes it and its pid file in another
// as RuntimeDirectory= does. What must work there: BPF steering, children as an unprivileged
// user, log files handed to that user, logrotate's `weir -s reopen`, a stop (signalling
// children of another uid), a restart that opens the log files now owned by that user, and
// worker_priority, worker_rlimit_core and working_directory.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/process.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

// The unit's CapabilityBoundingSet as setpriv's --bounding-set list: "-all,+net_admin,...".
std::string unitBoundingSet() {
  std::istringstream in(readTextFile(WEIR_UNIT_TEMPLATE));
  std::string line;
  const std::string key = "CapabilityBoundingSet=";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) {
      continue;
    }
    std::istringstream caps(line.substr(key.size()));
    std::string out = "-all";
    std::string cap;
    while (caps >> cap) {
      std::transform(cap.begin(), cap.end(), cap.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      out += ",+" + cap.substr(cap.rfind("cap_", 0) == 0 ? 4 : 0);
    }
    return out;
  }
  return "";
}

uid_t uidOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

// "CapBnd" of /proc/PID/status.
std::string boundingSetOf(pid_t pid) {
  std::istringstream in(readTextFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapBnd:", 0) == 0) {
      return line.substr(line.find_first_not_of(" \t", 7));
    }
  }
  return "";
}

TEST(Service, RunsWithTheUnitsCapabilitiesOnly) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "the unit starts the master as root";
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to limit the bounding set";
  }
  const std::string bounding = unitBoundingSet();
  ASSERT_NE(bounding, "") << "no CapabilityBoundingSet= in " << WEIR_UNIT_TEMPLATE;
  const passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const uid_t nobody_uid = nobody->pw_uid;

  TestServer echo = startTestServer(kTestsrvBin, "echo");
  TempDir logs("weir-logs");  // /var/log/weir: root, 0755
  TempDir run_dir("weir-run");  // /run/weir: root, 0755
  ASSERT_EQ(chmod(logs.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(run_dir.path().c_str(), 0755), 0);
  WeirConfig cfg = WeirConfig::simple({echo.endpoint()}, 2);
  cfg.error_log = logs.file("error.log");
  cfg.access_log = logs.file("access.log");
  cfg.pid_file = run_dir.file("weir.pid");
  // The nginx child settings (worker_priority below the master's needs CAP_SYS_NICE): a
  // capability missing from the unit shows as an [error] line.
  TempDir cores("weir-cores");
  ASSERT_EQ(chmod(cores.path().c_str(), 0755), 0);
  cfg.global_lines = {"user = \"nobody\"", "worker_priority = -1",
                      "worker_rlimit_core = \"16M\"",
                      "working_directory = \"" + cores.path() + "\""};
  const std::vector<std::string> wrapper = {"/usr/bin/setpriv", "--bounding-set=" + bounding,
                                            "--no-new-privs", "--"};
  {
    WeirProcess weir(cfg);
    weir.setWrapper(wrapper);
    ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip)) << readTextFile(cfg.error_log);
    EXPECT_NE(boundingSetOf(weir.pid()), boundingSetOf(getpid()))
        << "setpriv did not limit the master's bounding set";
    const std::string log = readTextFile(cfg.error_log);
    EXPECT_NE(log.find("BPF steering on"), std::string::npos) << log;
    EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
    EXPECT_EQ(log.find("not handing"), std::string::npos) << log;
    EXPECT_EQ(uidOf(cfg.error_log), nobody_uid) << "error.log not handed to the workers' user";
    EXPECT_EQ(uidOf(cfg.access_log), nobody_uid) << "access.log not handed to the workers' user";

    // logrotate: rename, then `weir -s reopen` (through the pid file).
    std::filesystem::rename(cfg.access_log, cfg.access_log + ".1");
    std::filesystem::rename(cfg.error_log, cfg.error_log + ".1");
    RunResult r = run(kWeirBin, {"-c", weir.configPath(), "-s", "reopen"}, seconds(10));
    ASSERT_EQ(r.exitCode(), 0) << r.err;
    EXPECT_TRUE(waitFor([&] { return readTextFile(cfg.error_log).find("reopened") !=
                                     std::string::npos; },
                        seconds(5)))
        << readTextFile(cfg.error_log + ".1");
    Fd fd = connectTcp(weir.addr(), seconds(5));
    ASSERT_TRUE(fd.valid());
    EXPECT_EQ(echoRoundTrip(fd.get(), "rotated\n", deadlineIn(seconds(5))), IoStatus::Ok);
    fd = Fd();
    EXPECT_TRUE(waitFor([&] { return readTextFile(cfg.access_log).size() > 0; }, seconds(5)))
        << "no access line in the new access.log";
    EXPECT_EQ(uidOf(cfg.access_log), nobody_uid);
    // The destructor stops weir with SIGTERM: the master must signal its children, which run
    // as nobody, and exit 0 once they are gone.
  }
  // A restart: the master opens log files that now belong to nobody.
  WeirProcess again(cfg);
  again.setWrapper(wrapper);
  ASSERT_TRUE(again.start(Readiness::EchoRoundTrip)) << readTextFile(cfg.error_log);
  const std::string log = readTextFile(cfg.error_log);
  EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
}

}  // namespace
}  // namespace weir::test
