#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "support/deadline.h"
#include "support/fd.h"
#include "support/process.h"
#include "support/sock_addr.h"
#include "support/temp_dir.h"

namespace weir::test {

// Paths of the binaries under test, baked in by CMake.
inline const std::string kWeirBin = WEIR_BIN;
inline const std::string kTestsrvBin = TESTSRV_BIN;

struct BackendSpec {
  std::string address;  // "127.0.0.1:PORT", or "NAME:PORT"
  unsigned weight = 1;
  unsigned max_connections = 0;  // 0: not written (unlimited)
  unsigned max_addresses = 0;    // 0: not written (a named backend's default)
};

struct PoolSpec {
  std::string name;
  std::vector<BackendSpec> backends;
  unsigned retries = 2;
  std::string connect_timeout = "2s";
  // Longer than any test deadline, so an idle timeout can never stand in for a missing
  // half-close or EOF that a test waits for.
  std::string idle_timeout = "10m";
  std::string balance = "round-robin";
  // TOML lines of [pools.NAME.health] ("kind = \"tcp\"\ninterval = ..."); empty: no table.
  std::string health;
  // Extra [pools.NAME] lines, e.g. "passive_fall = 0".
  std::vector<std::string> lines;
};

struct ListenerSpec {
  std::string name;
  std::string pool;
  uint16_t port = 0;  // 0: WeirProcess picks a free port on `host`
  int backlog = 4096;
  // Numeric IPv4 or IPv6 address (no brackets) the listener binds.
  std::string host = "127.0.0.1";
  // Extra [listeners.NAME] lines; dotted keys reach its subtables, e.g.
  // "mode = \"tls-terminate\"", "tls.certificates = [...]", "sni.\"a.test\" = \"api\"".
  std::vector<std::string> lines;
};

// $WEIR_TEST_EVENT_ENGINE ("epoll" or "io_uring"), or "" when unset.
std::string engineFromEnvironment();

// A weir configuration, written out as TOML by WeirProcess.
struct WeirConfig {
  std::string workers = "2";  // "auto" or a number
  std::string steering;       // "" leaves weir's default
  // global.event_engine; "" leaves weir's default. Starts as $WEIR_TEST_EVENT_ENGINE, which
  // ctest sets from the build's WEIR_TEST_EVENT_ENGINE (tests/integration/CMakeLists.txt).
  std::string event_engine = engineFromEnvironment();
  std::string log_level = "info";
  std::optional<unsigned> max_connections;
  std::string access_log = "off";  // "off", "stderr" or a path
  std::vector<ListenerSpec> listeners;
  std::vector<PoolSpec> pools;
  std::string pid_file;              // "" = none
  std::string error_log = "stderr";  // "stderr" lands in WeirProcess::logPath()
  // Extra [global] lines, e.g. "drain_timeout = \"5s\"" or "user = \"nobody\"".
  std::vector<std::string> global_lines;

  // One listener "front" on a free port feeding pool "back" with `backends` (weight 1).
  static WeirConfig simple(const std::vector<std::string>& backends, unsigned workers = 2);
  // The TOML text. error_log goes to stderr (which WeirProcess sends to a log file).
  std::string toToml() const;
};

// True if this process may load weir's sk_reuseport program: CAP_BPF and CAP_PERFMON (or
// CAP_SYS_ADMIN) in its effective set, as root has. weir started from here inherits them, so
// then BPF steering must load: a test that finds it off fails instead of skipping.
bool canLoadBpf();

// How WeirProcess::start decides weir is ready.
enum class Readiness {
  Accepts,        // every listener port accepts a TCP connection
  EchoRoundTrip,  // and a message sent through the first listener comes back (echo pools)
  WorkersOnly,    // only the workers are up, no connection is made: for tests that count
                  // every connection a backend gets (the master binds every listener
                  // before it forks the workers; needs a numeric worker count)
};

// Where WeirProcess runs weir and where its readiness checks connect from (netns.h).
struct WeirNetns {
  std::string weir;    // weir runs inside this network namespace; "" for the test's own
  std::string client;  // readiness connects come from here; "" for the same as `weir`
};

// The real weir binary in the foreground (`weir -c FILE`) with a temporary config, its
// stderr going to weir.log in a temporary directory.
//
// The destructor stops weir with SIGTERM and checks what weir promises on SIGTERM: the
// master exits 0 and every worker it had is gone (failures are added to the running test;
// stragglers are SIGKILLed). When the test has failed, it prints weir's log.
//
// When canLoadBpf() and the config asks for BPF steering (anything but "hash"), a "steering
// off" line in weir's log fails start() and the test (see allowSteeringOff).
class WeirProcess {
public:
  // Picks ports for listeners with port 0 (inside netns.weir when set) and writes weir.toml.
  // Does not start weir. With netns.weir, weir's process enters that namespace before its
  // exec (Process::Options::netns): pid() is still the master's, and signals and the worker checks work as without.
  explicit WeirProcess(WeirConfig config, WeirNetns netns = {});
  WeirProcess(const WeirProcess&) = delete;
  WeirProcess& operator=(const WeirProcess&) = delete;
  ~WeirProcess();

  // Starts weir and waits up to `timeout` until it is ready (see Readiness) and, when the
  // config names a number of workers, until that many workers run. On failure the message
  // carries the reason and the tail of weir's log.
  ::testing::AssertionResult start(Readiness readiness = Readiness::Accepts,
                                   Clock::duration timeout = seconds(20));
  // SIGTERM, then waits up to `grace` (SIGKILL after). Returns the raw wait status.
  int stop(Clock::duration grace = seconds(10));
  // Whether the destructor should treat an exit status other than 0 as a failure.
  void expectCleanExit(bool expect) { expect_clean_exit_ = expect; }

  // Runs weir through a program that execs it (e.g. setpriv to drop capabilities).
  void setWrapper(std::vector<std::string> argv) { wrapper_ = std::move(argv); }
  // For a test that takes BPF away from weir on purpose: "steering off" is then no failure.
  void allowSteeringOff() { steering_off_allowed_ = true; }
  // Runs this binary instead of the weir under test (a copy, for binary upgrades).
  void setBinary(std::string path) { binary_ = std::move(path); }
  // Replaces weir.toml (for a reload); listeners with port 0 get a free port.
  void writeConfig(WeirConfig config);
  // Sends `sig` to the master; false if it is not running.
  bool signal(int sig) { return process_.signal(sig); }
  // Waits up to `timeout` for the master to exit by itself (after SIGQUIT, or once it handed
  // over to a new binary). Returns the raw wait status, or nullopt if it still runs. After an
  // exit the destructor no longer expects a running master.
  std::optional<int> waitExit(Clock::duration timeout);
  // How many log lines contain `needle`.
  size_t countLogLines(std::string_view needle) const;
  // Waits until the log has at least `count` lines containing `needle`.
  bool waitForLogLines(std::string_view needle, size_t count, Clock::duration timeout) const;
  // The temporary directory holding weir.toml and the log.
  const TempDir& dir() const { return dir_; }
  pid_t pid() const { return process_.pid(); }
  bool running() { return process_.running(); }
  // The master's direct children (weir's workers), sorted. Remembered for the cleanup check.
  std::vector<pid_t> workerPids();
  // Waits until exactly `count` workers run; returns them (empty on timeout).
  std::vector<pid_t> waitForWorkers(size_t count, Clock::duration timeout = seconds(10));
  // The workers of generation `gen` (their process titles say "(gen N)"), sorted.
  std::vector<pid_t> generationWorkers(unsigned gen);
  // Waits until exactly `count` workers of generation `gen` run; returns them (empty on
  // timeout).
  std::vector<pid_t> waitForGenerationWorkers(unsigned gen, size_t count,
                                              Clock::duration timeout = seconds(10));

  const WeirConfig& config() const { return config_; }
  const WeirNetns& netns() const { return netns_; }
  uint16_t port(const std::string& listener = "") const;
  SockAddr addr(const std::string& listener = "") const;
  const std::string& configPath() const { return config_path_; }
  std::string logPath() const { return dir_.file("weir.log"); }
  std::string log() const;
  // The first log line containing `needle`.
  std::optional<std::string> logLine(std::string_view needle) const;
  // The last `lines` lines of the log, for failure messages.
  std::string logTail(size_t lines = 60) const;

private:
  ::testing::AssertionResult failStart(const std::string& why);
  // Gives listeners with port 0 a free port on their host, in netns_.weir when set.
  void pickPorts(WeirConfig& config) const;
  // A TCP connection to `addr` from netns_.client (or netns_.weir, or here).
  Fd connect(const SockAddr& addr, Clock::duration timeout, std::string* error) const;
  void checkWorkersGone();
  // The log's "steering off" line if BPF steering should have loaded but did not.
  std::optional<std::string> unexpectedSteeringOff() const;

  TempDir dir_;
  WeirNetns netns_;
  WeirConfig config_;
  std::string config_path_;
  std::vector<std::string> wrapper_;
  std::string binary_ = kWeirBin;
  Process process_;
  std::set<pid_t> seen_workers_;
  bool expect_clean_exit_ = true;
  bool stopped_ = false;
  bool steering_off_allowed_ = false;
  bool steering_off_reported_ = false;  // by start(), so not again by the destructor
};

// Lines of an access log file that contain `needle`.
std::vector<std::string> accessLines(const std::string& path, const std::string& needle);
// Waits until the access log has `count` lines containing `needle` (a worker writes a line
// when a connection ends, a moment after the client saw the close); returns what it has then.
std::vector<std::string> waitAccessLines(const std::string& path, const std::string& needle,
                                         size_t count, Clock::duration timeout = seconds(10));

// For each client socket, the pid of the worker (one of `workers`) holding the accepted end
// of that connection on `listen_port`, or 0 if none does (not yet accepted, or closed). Reads
// /proc/net/tcp{,6} of the test's own network namespace.
std::vector<pid_t> connectionOwners(uint16_t listen_port, const std::vector<pid_t>& workers,
                                    const std::vector<Fd>& clients);

// Writes `config`, sends SIGHUP and waits for the master to log the outcome (the
// `reloads`-th "reloaded:" line).
::testing::AssertionResult reload(WeirProcess& weir, const WeirConfig& config, size_t reloads);

}  // namespace weir::test
