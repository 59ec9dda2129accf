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
#include <unistd.h>
#include <sys/un.h>

#include <algorithm>
#include <cinttypes>
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

// Root: the children run as nobody, and the socket goes to nobody's group.
class Weirctl : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "runs weir's children as nobody and gives the socket to its group: "
                      "needs root";
    }
  }
};

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

// A connection through `weir` that backend `name` answered, opening at most `tries` (the
// others close); an empty Fd if none landed there.
Fd connectionTo(const WeirProcess& weir, const std::string& name, int tries) {
  for (int i = 0; i < tries; ++i) {
    Fd fd;
    if (backendOfNewConnection(weir, &fd) == name) {
      return fd;
    }
  }
  return Fd();
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

TEST_F(Weirctl, TheSocketIsRootsAndTheChildrensGroupOnly) {
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

// The socket's group is the children's, so a worker could connect to it: the workers' user
// may read, never change anything (SO_PEERCRED), so that a compromised worker cannot drain
// backends or reload.
TEST_F(Weirctl, TheWorkersUserMayOnlyRead) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  // The socket's own mode decides, not its directory's (a private temporary one here).
  ASSERT_EQ(::chmod(rig.run_dir.path().c_str(), 0755), 0);
  auto as_nobody = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"--reuid", std::to_string(nobody->pw_uid), "--regid",
                                     std::to_string(nobody->pw_gid), "--clear-groups", "--",
                                     kWeirctlBin, "-s", rig.socket};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run(findProgram("setpriv"), argv, seconds(30));
    return Ctl{r.exitCode(), r.out, r.err};
  };
  const Ctl status = as_nobody({"status"});
  EXPECT_EQ(status.code, 0) << status;
  const Ctl drain = as_nobody({"drain", "back", rig.a.endpoint()});
  EXPECT_EQ(drain.code, 1) << drain;
  EXPECT_TRUE(contains(drain.err, "drain refused")) << drain;
  const Ctl reload = as_nobody({"reload"});
  EXPECT_EQ(reload.code, 1) << reload;
  // Root may, and the refused drain changed nothing: both backends still answer.
  EXPECT_TRUE(shared(backendsOf(weir, 20), "a"));
  const Ctl root_drain = rig.ctl(weir, {"drain", "back", rig.a.endpoint()});
  EXPECT_EQ(root_drain.code, 0) << root_drain;
}

TEST_F(Weirctl, AStaleSocketFileIsReplaced) {
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

TEST_F(Weirctl, DrainStopsNewConnectionsWhileOpenOnesContinue) {
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
  EXPECT_EQ(c.out, "{\"ok\":true,\"pool\":\"back\",\"address\":\"" + rig.a.endpoint() +
                       "\",\"admin\":\"drain\",\"was\":\"drain\",\"changed\":false}\n");

  c = rig.ctl(weir, {"undrain", "back", rig.a.endpoint()});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_TRUE(contains(c.out, "undrained: admin state none")) << c;
  EXPECT_TRUE(shared(backendsOf(weir, 20), "a"));
  EXPECT_EQ(echoRoundTrip(open.get(), "and still\n", deadlineIn(seconds(5))), IoStatus::Ok);
  EXPECT_EQ(weir.countLogLines("drained by weirctl: admin state drain (was none)"), 1u);
}

TEST_F(Weirctl, DisableAndEnable) {
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
  c = rig.ctl(weir, {"enable", "back", rig.b.endpoint()});
  EXPECT_EQ(c.code, 0) << c;
  EXPECT_EQ(c.out, "pool back: backend " + rig.b.endpoint() +
                       " is not disabled: admin state none (health decides)\n");
  EXPECT_TRUE(shared(backendsOf(weir, 20), "b"));
}

// The backend's "active" in `weirctl backends`, from its --json object ("" if not found).
std::string activeOf(const std::string& json, const std::string& address) {
  const size_t at = json.find("\"address\":\"" + address + "\"");
  if (at == std::string::npos) {
    return "";
  }
  const size_t end = json.find('}', at);
  const size_t key = json.find("\"active\":", at);
  if (key == std::string::npos || key > end) {
    return "";
  }
  const size_t from = key + 9;
  return json.substr(from, json.find_first_of(",}", from) - from);
}

// "Drain, then wait until ACTIVE is 0" must hold across a reload: connections that a draining
// generation still holds to the backend count too.
TEST_F(Weirctl, ActiveCountsConnectionsOfDrainingGenerations) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  Fd held = connectionTo(weir, "a", 20);
  ASSERT_TRUE(held);
  ASSERT_EQ(rig.ctl(weir, {"drain", "back", rig.a.endpoint()}).code, 0);
  Ctl c = rig.ctl(weir, {"reload"});
  ASSERT_EQ(c.code, 0) << c;
  c = rig.ctl(weir, {"--json", "backends", "back"});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_EQ(activeOf(c.out, rig.a.endpoint()), "1") << c;
  held.reset();
  // The old generation's worker ends the connection and releases the backend.
  std::string active;
  waitFor(
      [&] {
        c = rig.ctl(weir, {"--json", "backends", "back"});
        active = activeOf(c.out, rig.a.endpoint());
        return active == "0";
      },
      seconds(10), milliseconds(50));
  EXPECT_EQ(active, "0") << c;
}

TEST_F(Weirctl, AdminStatesSurviveReloadsUntilTheBackendIsRemoved) {
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
TEST_F(Weirctl, TheSocketAndAdminStatesPassToTheNewMasterOfABinaryUpgrade) {
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

// The number after "KEY": in the JSON object of backend `address` in `json`; -1 if absent.
int64_t backendNumber(const std::string& json, const std::string& address,
                      const std::string& key) {
  const size_t at = json.find("{\"address\":\"" + address + "\"");
  const size_t field = at == std::string::npos ? at : json.find("\"" + key + "\":", at);
  if (field == std::string::npos || json.find('}', at) < field) {
    return -1;
  }
  return std::stoll(json.substr(field + key.size() + 3));
}

// The lines of `text`.
std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(text.substr(start, nl - start));
  }
  return lines;
}

// The cells of one line of a weirctl table (columns are two or more spaces apart; a cell
// such as "3s ago" holds single spaces), each with the column it starts at.
std::vector<std::pair<size_t, std::string>> cellsOf(const std::string& line) {
  std::vector<std::pair<size_t, std::string>> cells;
  size_t at = 0;
  while (at < line.size()) {
    size_t end = line.find("  ", at);
    end = end == std::string::npos ? line.size() : end;
    cells.emplace_back(at, line.substr(at, end - at));
    at = line.find_first_not_of(' ', end);
    at = at == std::string::npos ? line.size() : at;
  }
  return cells;
}

// The cells of every row of a table whose header is `header`, checked to start in the
// header's columns. Adds a failure (and returns what it has) otherwise.
std::vector<std::vector<std::string>> tableOf(const std::string& text,
                                              const std::vector<std::string>& header) {
  std::vector<std::string> lines = linesOf(text);
  std::vector<std::vector<std::string>> rows;
  if (lines.empty()) {
    ADD_FAILURE() << "no table in:\n" << text;
    return rows;
  }
  const auto head = cellsOf(lines[0]);
  std::vector<std::string> names;
  for (const auto& cell : head) {
    names.push_back(cell.second);
  }
  EXPECT_EQ(names, header) << text;
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto cells = cellsOf(lines[i]);
    std::vector<std::string> row;
    for (size_t k = 0; k < cells.size(); ++k) {
      EXPECT_TRUE(k < head.size() && cells[k].first == head[k].first)
          << "cell " << k << " of line " << i << " is not in its column:\n" << text;
      row.push_back(cells[k].second);
    }
    rows.push_back(row);
  }
  return rows;
}

TEST_F(Weirctl, StatusShowsGenerationsWorkersAndEvenness) {
  Rig rig;
  WeirProcess weir(rig.config());
  ASSERT_TRUE(weir.start());
  (void)backendsOf(weir, 40);
  const std::vector<pid_t> workers = weir.workerPids();
  ASSERT_EQ(workers.size(), 2u);

  // A worker counts a connection until it has seen it close, a moment after the client did.
  Ctl c;
  auto idle = [&] {
    c = rig.ctl(weir, {"status"});
    const std::vector<std::string> rows = linesOf(c.out);
    return c.code == 0 && rows.size() == 5 && cellsOf(rows[2]).size() == 6 &&
           cellsOf(rows[2])[4].second == "0" && cellsOf(rows[3]).size() == 6 &&
           cellsOf(rows[3])[4].second == "0";
  };
  ASSERT_TRUE(waitFor(idle, seconds(5))) << c;
  std::vector<std::string> lines = linesOf(c.out);
  EXPECT_EQ(lines[0], "master pid " + std::to_string(weir.pid()) +
                          ", steering least-loaded (bpf), 0 reloads");
  const std::string table = c.out.substr(lines[0].size() + 1,
                                         lines[1].size() + lines[2].size() + lines[3].size() + 3);
  const auto rows = tableOf(table, {"GEN", "STATE", "SLOT", "PID", "ACTIVE", "ACCEPTED"});
  ASSERT_EQ(rows.size(), 2u);
  uint64_t accepted = 0;
  std::vector<uint64_t> per_worker;
  for (size_t slot = 0; slot < 2; ++slot) {
    ASSERT_EQ(rows[slot].size(), 6u) << c.out;
    EXPECT_EQ(rows[slot][0], "1");
    EXPECT_EQ(rows[slot][1], "serving");
    EXPECT_EQ(rows[slot][2], std::to_string(slot));
    const pid_t pid = std::stoi(rows[slot][3]);
    EXPECT_TRUE(pid == workers[0] || pid == workers[1]) << c.out;
    EXPECT_EQ(rows[slot][4], "0");
    per_worker.push_back(std::stoull(rows[slot][5]));
    accepted += per_worker.back();
  }
  // Ours, and the readiness check's connection.
  EXPECT_GE(accepted, 40u) << c.out;
  EXPECT_LE(accepted, 41u) << c.out;
  // How even it is depends on the steering and the machine's load; what it says must add up.
  const uint64_t most = std::max(per_worker[0], per_worker[1]);
  const uint64_t fewest = std::min(per_worker[0], per_worker[1]);
  ASSERT_GT(fewest, 0u) << c.out;
  char expected[128];
  std::snprintf(expected, sizeof(expected),
                "evenness (generation 1): accepted max/min = %.2f (%" PRIu64 " / %" PRIu64 ")",
                static_cast<double>(most) / static_cast<double>(fewest), most, fewest);
  EXPECT_EQ(lines[4], expected);

  // After a reload: generation 2 serves, 1 drains (or is gone already).
  ASSERT_EQ(rig.ctl(weir, {"reload"}).code, 0);
  c = rig.ctl(weir, {"--json", "status"});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_EQ(c.out.substr(0, 14 + std::to_string(weir.pid()).size()),
            "{\"master_pid\":" + std::to_string(weir.pid()));
  EXPECT_TRUE(contains(c.out, "\"steering\":\"least-loaded\",\"steering_bpf\":true,"
                              "\"reloads\":1,"))
      << c.out;
  EXPECT_TRUE(contains(c.out, "{\"number\":2,\"state\":\"serving\",\"workers\":[{\"slot\":0,"))
      << c.out;
  EXPECT_EQ(c.out.back(), '\n');
}

TEST_F(Weirctl, BackendsShowStateAdminChecksAndConnections) {
  Rig rig;
  WeirConfig config = rig.config();
  config.pools[0].health = "kind = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"100ms\"";
  WeirProcess weir(config);
  ASSERT_TRUE(weir.start());
  Fd open = connectionTo(weir, "a", 4);
  ASSERT_TRUE(open);
  // Both checked once at least (a backend disabled before its first check is never checked).
  auto checked = [&](const TestServer& backend) {
    const Ctl j = rig.ctl(weir, {"--json", "backends"});
    return backendNumber(j.out, backend.endpoint(), "last_check_age_ms") >= 0;
  };
  ASSERT_TRUE(waitFor([&] { return checked(rig.a) && checked(rig.b); }, seconds(5)));
  ASSERT_EQ(rig.ctl(weir, {"drain", "back", rig.a.endpoint()}).code, 0);
  ASSERT_EQ(rig.ctl(weir, {"disable", "back", rig.b.endpoint()}).code, 0);

  Ctl c = rig.ctl(weir, {"backends"});
  ASSERT_EQ(c.code, 0) << c;
  auto rows = tableOf(c.out, {"POOL", "BACKEND", "STATE", "ADMIN", "WEIGHT", "ACTIVE", "TOTAL",
                              "FAILED", "CHECKED", "ERROR"});
  ASSERT_EQ(rows.size(), 2u) << c.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"back", rig.a.endpoint(), "up", "drain", "1", "1",
                                               rows[0][6], "0", rows[0][8], "-"}))
      << c.out;
  EXPECT_GE(std::stoi(rows[0][6]), 1) << c.out;
  EXPECT_EQ(rows[1][3], "maint") << c.out;
  EXPECT_EQ(rows[1][5], "0") << c.out;
  EXPECT_TRUE(rows[0][8].ends_with("s ago")) << c.out;

  // Maintenance pauses b's checks, a's go on; enable resumes them.
  auto age = [&](const TestServer& backend) {
    const Ctl j = rig.ctl(weir, {"--json", "backends", "back"});
    return backendNumber(j.out, backend.endpoint(), "last_check_age_ms");
  };
  ASSERT_TRUE(waitFor([&] { return age(rig.b) >= 1500; }, seconds(10))) << age(rig.b);
  EXPECT_LT(age(rig.a), 1000);
  ASSERT_EQ(rig.ctl(weir, {"enable", "back", rig.b.endpoint()}).code, 0);
  EXPECT_TRUE(waitFor([&] { return age(rig.b) < 1000; }, seconds(5))) << age(rig.b);

  c = rig.ctl(weir, {"--json", "backends", "back"});
  ASSERT_EQ(c.code, 0) << c;
  EXPECT_TRUE(contains(c.out, "{\"address\":\"" + rig.a.endpoint() +
                                  "\",\"state\":\"up\",\"admin\":\"drain\","))
      << c.out;
  EXPECT_EQ(backendNumber(c.out, rig.a.endpoint(), "active"), 1);
  EXPECT_EQ(backendNumber(c.out, rig.b.endpoint(), "failed_connects"), 0);
  c = rig.ctl(weir, {"backends", "nope"});
  EXPECT_EQ(c.code, 1) << c;
  EXPECT_EQ(c.err, "no pool \"nope\" (pools: back)\n");
}

TEST_F(Weirctl, ReloadPrintsTheErrorsOfABadConfigAndChangesNothing) {
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
  EXPECT_EQ(c.out, "{\"ok\":true,\"message\":\"reloaded " + weir.configPath() +
                       ": generation 2 with 2 workers started\"}\n");
}

TEST_F(Weirctl, UnknownPoolOrAddressIsAnError) {
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
  EXPECT_EQ(c.err.substr(0, 32), "{\"ok\":false,\"message\":\"pool back") << c;
  EXPECT_TRUE(shared(backendsOf(weir, 10), "a")) << "nothing changed";
}

TEST_F(Weirctl, ExitCodesForUsageAndNoMaster) {
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
