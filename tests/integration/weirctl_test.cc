// weirctl against a running weir: the control socket (where, who may use it), drain / undrain
// / disable / enable taking effect at once and surviving reloads, weirctl reload reporting a
// bad config's errors, the exit codes.
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/un.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/process.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

const std::string kWeirctlBin = WEIRCTL_BIN;

struct Ctl {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs weirctl with `args` to completion.
Ctl weirctl(const std::vector<std::string>& args) {
  RunResult r = run(kWeirctlBin, args, seconds(30));
  return {r.exitCode(), r.out, r.err};
}

std::ostream& operator<<(std::ostream& os, const Ctl& c) {
  return os << "exit " << c.code << "\n--- stdout:\n" << c.out << "--- stderr:\n" << c.err;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Two identify backends "a" and "b" behind listener "front" (pool "back", round-robin), the
// control socket in a directory of its own, the children running as nobody.
struct Rig {
  TestServer a = startTestServer(kTestsrvBin, "identify", {"--name", "a"});
  TestServer b = startTestServer(kTestsrvBin, "identify", {"--name", "b"});
  TempDir run_dir{"weir-run"};
  std::string socket = run_dir.file("weir.sock");

  WeirConfig config() const {
    WeirConfig c = WeirConfig::simple({a.endpoint(), b.endpoint()}, 2);
    c.global_lines.push_back("control_socket = \"" + socket + "\"");
    c.global_lines.push_back("user = \"nobody\"");
    return c;
  }
  // weirctl -c CONFIG ARGS...: the socket found through the config, as operators run it.
  Ctl ctl(const WeirProcess& weir, std::vector<std::string> args) const {
    args.insert(args.begin(), {"-c", weir.configPath()});
    return weirctl(args);
  }
};

// The name of the backend that answers a new connection through `weir` (the identify line),
// or "" if none does. With `keep`, the connection stays open there.
std::string backendOfNewConnection(const WeirProcess& weir, Fd* keep = nullptr) {
  Fd fd = connectTcp(weir.addr(), seconds(5));
  if (!fd) {
    return "";
  }
  auto id = readIdentifyLine(fd.get(), deadlineIn(seconds(5)));
  if (keep != nullptr) {
    *keep = std::move(fd);
  }
  return id ? id->name() : "";
}

// `n` times `name`.
std::multiset<std::string> only(const std::string& name, int n) {
  std::multiset<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.insert(name);
  }
  return names;
}

// Whether `name` took a fair share of `names` (round-robin per worker: not exactly half).
::testing::AssertionResult shared(const std::multiset<std::string>& names,
                                  const std::string& name) {
  const size_t n = names.count(name);
  if (n * 4 >= names.size() && n * 4 <= names.size() * 3) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << name << " answered " << n << " of " << names.size();
}

// The backends that answer `n` new connections.
std::multiset<std::string> backendsOf(const WeirProcess& weir, int n) {
  std::multiset<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.insert(backendOfNewConnection(weir));
  }
  return names;
}

TEST(Weirctl, TheSocketIsRootsAndTheChildrensGroupOnly) {
  Rig rig;
  {
    WeirProcess weir(rig.config());
    ASSERT_TRUE(weir.start());
    struct stat st {};
    ASSERT_EQ(::lstat(rig.socket.c_str(), &st), 0) << weir.logTail();
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_uid, 0u);
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    EXPECT_EQ(st.st_gid, nobody->pw_gid) << "the group of the children (nobody's)";
  }
  struct stat st {};
  EXPECT_NE(::lstat(rig.socket.c_str(), &st), 0) << "the socket outlived its master";
}

TEST(Weirctl, AStaleSocketFileIsReplaced) {
  Rig rig;
  {
    // What a master killed with SIGKILL leaves: a socket file nobody listens on.
    Fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", rig.socket.c_str());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0);
  }
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  const Ctl c = rig.ctl(weir, {"drain", "back", rig.a.endpoint()});
  EXPECT_EQ(c.code, 0) << c;
}

TEST(Weirctl, DrainStopsNewConnectionsWhileOpenOnesContinue) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  EXPECT_TRUE(shared(backendsOf(weir, 20), "a"));

  // A connection through a, open before the drain.
  Fd open;
  std::string first;
  for (int i = 0; i < 4 && first != "a"; ++i) {
    first = backendOfNewConnection(weir, &open);
  }
  ASSERT_EQ(first, "a");

  Ctl c = rig.ctl(weir, {"drain", "back", rig.a.endpoint()});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_EQ(c.out, "pool back: backend " + rig.a.endpoint() +
                       " drained: admin state drain (no new connections; open ones continue; "
                       "health checks continue)\n");
  EXPECT_EQ(c.err, "");
  EXPECT_EQ(backendsOf(weir, 20), only("b", 20)) << "at once: no reload";
  EXPECT_EQ(echoRoundTrip(open.get(), "still there\n", deadlineIn(seconds(5))), IoStatus::Ok)
      << "the open connection through the drained backend goes on";

  // Twice is no error; the JSON form says what it was.
  c = rig.ctl(weir, {"--json", "drain", "back", rig.a.endpoint()});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_EQ(c.out, "{\"ok\": true, \"pool\": \"back\", \"address\": \"" + rig.a.endpoint() +
                       "\", \"admin\": \"drain\", \"was\": \"drain\", \"changed\": false}\n");

  c = rig.ctl(weir, {"undrain", "back", rig.a.endpoint()});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_TRUE(contains(c.out, "undrained: admin state none")) << c;
  EXPECT_TRUE(shared(backendsOf(weir, 20), "a"));
  EXPECT_EQ(echoRoundTrip(open.get(), "and still\n", deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_EQ(weir.countLogLines("drained by weirctl: admin state drain (was none)"), 1u);
}

TEST(Weirctl, DisableAndEnable) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  Ctl c = rig.ctl(weir, {"disable", "back", rig.b.endpoint()});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_TRUE(contains(c.out, "disabled: admin state maint (no new connections; open ones "
                              "continue; health checks paused)"))
      << c;
  EXPECT_EQ(backendsOf(weir, 20), only("a", 20));
  // undrain does not undo a disable, and says what does.
  c = rig.ctl(weir, {"undrain", "back", rig.b.endpoint()});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_EQ(c.err, "pool back: backend " + rig.b.endpoint() +
                       " is disabled, not drained; use weirctl enable\n");
  EXPECT_EQ(backendsOf(weir, 10), only("a", 10));
  c = rig.ctl(weir, {"enable", "back", rig.b.endpoint()});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_TRUE(shared(backendsOf(weir, 20), "b"));
}

TEST(Weirctl, AdminStatesSurviveReloadsUntilTheBackendIsRemoved) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  WeirConfig config = weir.config();
  ASSERT_EQ(rig.ctl(weir, {"drain", "back", rig.a.endpoint()}).code, 0);

  // A reload (SIGHUP) that keeps the backend keeps its admin state.
  config.pools[0].backends[1].weight = 2;
  weir.writeConfig(config);
  ASSERT_TRUE(weir.signal(SIGHUP));
  ASSERT_TRUE(weir.waitForLogLines("master: reloaded: generation 2", 1, seconds(10)));
  EXPECT_EQ(backendsOf(weir, 20), only("b", 20));

  // One that removes it drops the state: when it comes back it is a new backend.
  WeirConfig without = config;
  without.pools[0].backends.erase(without.pools[0].backends.begin());
  weir.writeConfig(without);
  Ctl c = rig.ctl(weir, {"reload"});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_EQ(weir.countLogLines("admin state of back/" + rig.a.endpoint() +
                               " (drain) dropped: the backend is no longer configured"),
            1u)
      << weir.logTail();
  c = rig.ctl(weir, {"undrain", "back", rig.a.endpoint()});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_TRUE(contains(c.err, "pool back has no backend " + rig.a.endpoint())) << c;
  weir.writeConfig(config);
  c = rig.ctl(weir, {"reload"});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_GT(backendsOf(weir, 30).count("a"), 0u);
}

// A binary upgrade (SIGUSR2): the new master takes the path over while the old one still
// runs, so weirctl reaches one of them all along, and the new master keeps the old one's
// admin states; the old master does not remove the path when it exits.
TEST(Weirctl, TheSocketAndAdminStatesPassToTheNewMasterOfABinaryUpgrade) {
  Rig rig;
  WeirConfig config = rig.config();
  config.pid_file = rig.run_dir.file("weir.pid");
  WeirProcess weir(config);
  ASSERT_TRUE(weir.start());
  const pid_t old_master = weir.pid();
  ASSERT_EQ(rig.ctl(weir, {"drain", "back", rig.a.endpoint()}).code, 0);

  ASSERT_TRUE(weir.signal(SIGUSR2));
  // Asked all through the upgrade: every answer, from either master, knows the drain.
  std::optional<int> old_exit;
  size_t asked = 0;
  while (!(old_exit = weir.waitExit(milliseconds(50))) && asked < 400) {
    const Ctl c = rig.ctl(weir, {"drain", "back", rig.a.endpoint()});
    ASSERT_EQ(c.code, 0) << "during the upgrade, after " << asked << " answers: " << c;
    ASSERT_TRUE(contains(c.out, "already drained")) << c;
    ++asked;
  }
  ASSERT_TRUE(old_exit.has_value()) << "the old master did not hand over\n" << weir.logTail();
  std::printf("binary upgrade: %zu weirctl answers while it ran\n", asked);
  EXPECT_TRUE(WIFEXITED(*old_exit) && WEXITSTATUS(*old_exit) == 0);
  const pid_t new_master = static_cast<pid_t>(std::stol(readTextFile(config.pid_file)));
  ASSERT_NE(new_master, old_master);
  EXPECT_EQ(weir.countLogLines("stays drain (set on the old master)"), 1u) << weir.logTail();

  struct stat st {};
  ASSERT_EQ(::lstat(rig.socket.c_str(), &st), 0) << "the old master removed the new one's socket";
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(backendsOf(weir, 20), only("b", 20));
  Ctl c = rig.ctl(weir, {"undrain", "back", rig.a.endpoint()});
  EXPECT_EQ(c.code, 0) << c;
  EXPECT_TRUE(shared(backendsOf(weir, 20), "a"));

  // The new master is nobody's child here: stop it by its pid, and it removes its socket.
  ASSERT_EQ(::kill(new_master, SIGTERM), 0);
  EXPECT_TRUE(waitFor([&] { return ::lstat(rig.socket.c_str(), &st) != 0; }, seconds(10)));
  EXPECT_TRUE(waitFor([&] { return ::kill(new_master, 0) != 0; }, seconds(10)));
}

TEST(Weirctl, ReloadPrintsTheErrorsOfABadConfigAndChangesNothing) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  const WeirConfig good = weir.config();

  // Line 4 of the file: workers, then log_level, error_log, access_log (see toToml).
  WeirConfig bad = good;
  bad.workers = "many";
  weir.writeConfig(bad);
  Ctl c = rig.ctl(weir, {"reload"});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_EQ(c.out, "");
  EXPECT_TRUE(contains(c.err, weir.configPath() + ":3:11: global.workers: expected \"auto\" "
                                                  "or an integer 1..64, got \"many\"\n"))
      << c;
  EXPECT_TRUE(contains(c.err, "reload failed: " + weir.configPath() +
                                  " has 1 problem(s); still serving the previous configuration "
                                  "(generation 1)\n"))
      << c;
  EXPECT_NE(backendOfNewConnection(weir), "") << "still serving";

  // Not even TOML: weirctl cannot read the socket's path there, -s names it.
  weir.writeConfig(good);
  {
    std::FILE* f = std::fopen(weir.configPath().c_str(), "a");
    std::fputs("[pools.broken\n", f);
    std::fclose(f);
  }
  c = weirctl({"-c", weir.configPath(), "reload"});
  EXPECT_EQ(c.code, 3) << c;
  EXPECT_TRUE(contains(c.err, "use -s SOCKET")) << c;
  c = weirctl({"-s", rig.socket, "reload"});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_TRUE(contains(c.err, weir.configPath() + ":")) << c;
  EXPECT_TRUE(contains(c.err, "syntax error")) << c;
  EXPECT_NE(backendOfNewConnection(weir), "") << "still serving";
  EXPECT_EQ(weir.countLogLines("master: reloaded: generation"), 0u);

  weir.writeConfig(good);
  c = rig.ctl(weir, {"--json", "reload"});
  EXPECT_EQ(c.code, 0) << c;
  EXPECT_EQ(c.out, "{\"ok\": true, \"message\": \"reloaded " + weir.configPath() +
                       ": generation 2 with 2 workers started\"}\n");
}

TEST(Weirctl, UnknownPoolOrAddressIsAnError) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  Ctl c = rig.ctl(weir, {"drain", "nope", rig.a.endpoint()});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_EQ(c.err, "no pool \"nope\" (pools: back)\n");
  c = rig.ctl(weir, {"disable", "back", "127.0.0.1:1"});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_EQ(c.err, "pool back has no backend 127.0.0.1:1 (backends: " + rig.a.endpoint() +
                       ", " + rig.b.endpoint() + ")\n");
  c = rig.ctl(weir, {"--json", "enable", "back", "backend-a"});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_EQ(c.err.substr(0, 35), "{\"ok\": false, \"message\": \"pool back") << c;
  EXPECT_TRUE(shared(backendsOf(weir, 10), "a")) << "nothing changed";
}

TEST(Weirctl, ExitCodesForUsageAndNoMaster) {
  Rig rig;
  Ctl c = weirctl({"-s", rig.socket, "status"});
  EXPECT_EQ(c.code, 3) << c;
  EXPECT_TRUE(contains(c.err, "weirctl: cannot reach the master: " + rig.socket +
                                  ": No such file or directory"))
      << c;
  // A config without control_socket.
  const std::string plain = rig.run_dir.write("plain.toml", "[pools.p]\nbackends = []\n");
  c = weirctl({"-c", plain, "status"});
  EXPECT_EQ(c.code, 3) << c;
  EXPECT_EQ(c.err, "weirctl: " + plain + " sets no global.control_socket; use -s SOCKET\n");
  EXPECT_EQ(weirctl({"-s", rig.socket, "frobnicate"}).code, 2);
  EXPECT_EQ(weirctl({"-s", rig.socket, "drain", "back"}).code, 2);
  EXPECT_EQ(weirctl({"-s", rig.socket}).code, 2);
  EXPECT_EQ(weirctl({"--bogus", "status"}).code, 2);
  c = weirctl({"--help"});
  EXPECT_EQ(c.code, 0);
  EXPECT_TRUE(contains(c.out, "usage: weirctl")) << c;
}

}  // namespace
}  // namespace weir::test
