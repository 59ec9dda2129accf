#include "weir_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "support/net_io.h"
#include "support/netns.h"
#include "support/proc_fs.h"

namespace weir::test {

namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

bool isNumber(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether capability `bit` is in the effective set, from /proc/self/status's CapEff (hex).
bool hasEffectiveCap(unsigned bit) {
  const std::string status = readTextFile("/proc/self/status");
  const size_t at = status.find("CapEff:");
  if (at == std::string::npos) {
    return false;
  }
  const uint64_t caps = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  return (caps >> bit) & 1;
}

constexpr unsigned kCapSysAdmin = 21;  // linux/capability.h
constexpr unsigned kCapPerfmon = 38;
constexpr unsigned kCapBpf = 39;

}  // namespace

bool canLoadBpf() {
  return hasEffectiveCap(kCapSysAdmin) ||
         (hasEffectiveCap(kCapBpf) && hasEffectiveCap(kCapPerfmon));
}

WeirConfig WeirConfig::simple(const std::vector<std::string>& backends, unsigned workers) {
  WeirConfig c;
  c.workers = std::to_string(workers);
  PoolSpec pool;
  pool.name = "back";
  for (const std::string& b : backends) {
    pool.backends.push_back({b, 1});
  }
  c.pools.push_back(pool);
  c.listeners.push_back({"front", "back", 0, 4096});
  return c;
}

std::string engineFromEnvironment() {
  const char* engine = std::getenv("WEIR_TEST_EVENT_ENGINE");
  return engine != nullptr ? engine : "";
}

std::string WeirConfig::toToml() const {
  std::ostringstream t;
  t << "# written by weir_integration_tests\n";
  t << "[global]\n";
  t << "workers = " << (isNumber(workers) ? workers : quoted(workers)) << "\n";
  t << "log_level = " << quoted(log_level) << "\n";
  t << "error_log = " << quoted(error_log) << "\n";
  t << "access_log = " << quoted(access_log) << "\n";
  t << "pid_file = " << quoted(pid_file) << "\n";
  for (const std::string& line : global_lines) {
    t << line << "\n";
  }
  if (!steering.empty()) {
    t << "steering = " << quoted(steering) << "\n";
  }
  if (!event_engine.empty()) {
    t << "event_engine = " << quoted(event_engine) << "\n";
  }
  if (max_connections) {
    t << "max_connections = " << *max_connections << "\n";
  }
  for (const ListenerSpec& l : listeners) {
    t << "\n[listeners." << l.name << "]\n";
    const auto bind = SockAddr::from(l.host, l.port);
    t << "bind = [" << quoted(bind ? bind->str() : l.host + ":" + std::to_string(l.port))
      << "]\n";
    t << "pool = " << quoted(l.pool) << "\n";
    t << "backlog = " << l.backlog << "\n";
    for (const std::string& line : l.lines) {
      t << line << "\n";
    }
  }
  for (const PoolSpec& p : pools) {
    t << "\n[pools." << p.name << "]\n";
    t << "balance = " << quoted(p.balance) << "\n";
    t << "connect_timeout = " << quoted(p.connect_timeout) << "\n";
    t << "idle_timeout = " << quoted(p.idle_timeout) << "\n";
    t << "retries = " << p.retries << "\n";
    for (const std::string& line : p.lines) {
      t << line << "\n";
    }
    t << "backends = [\n";
    for (const BackendSpec& b : p.backends) {
      t << "  { address = " << quoted(b.address) << ", weight = " << b.weight;
      if (b.max_connections != 0) {
        t << ", max_connections = " << b.max_connections;
      }
      if (b.max_addresses != 0) {
        t << ", max_addresses = " << b.max_addresses;
      }
      t << " },\n";
    }
    t << "]\n";
    if (!p.health.empty()) {
      t << "[pools." << p.name << ".health]\n" << p.health << "\n";
    }
  }
  return t.str();
}

WeirProcess::WeirProcess(WeirConfig config, WeirNetns netns)
    : dir_("weir-it"), netns_(std::move(netns)), config_(std::move(config)) {
  pickPorts(config_);
  config_path_ = dir_.write("weir.toml", config_.toToml());
}

void WeirProcess::pickPorts(WeirConfig& config) const {
  for (ListenerSpec& l : config.listeners) {
    if (l.port == 0) {
      l.port = netns_.weir.empty() ? pickFreePort(l.host)
                                   : pickFreePortInNetns(netns_.weir, l.host);
    }
  }
}

Fd WeirProcess::connect(const SockAddr& addr, Clock::duration timeout,
                        std::string* error) const {
  const std::string& from = netns_.client.empty() ? netns_.weir : netns_.client;
  return from.empty() ? connectTcp(addr, timeout, error)
                      : connectTcpInNetns(from, addr, timeout, error);
}

WeirProcess::~WeirProcess() {
  if (process_.valid() && !stopped_) {
    workerPids();  // remember the current workers for the cleanup check
    const bool was_running = process_.running();
    const int st = stop();
    if (!was_running) {
      ADD_FAILURE() << "weir master exited before the test ended: " << describeStatus(st);
    } else if (expect_clean_exit_ && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      ADD_FAILURE() << "weir master did not exit 0 on SIGTERM: " << describeStatus(st);
    }
  }
  checkWorkersGone();
  if (auto line = unexpectedSteeringOff(); line && !steering_off_reported_) {
    ADD_FAILURE() << "BPF steering did not load although this test can load BPF: " << *line;
  }
  if (::testing::Test::HasFailure()) {
    std::fprintf(stderr, "----- weir config %s -----\n%s----- weir log %s (last lines) -----\n%s"
                 "----- end of weir log -----\n",
                 config_path_.c_str(), readTextFile(config_path_).c_str(), logPath().c_str(),
                 logTail(200).c_str());
  }
}

::testing::AssertionResult WeirProcess::start(Readiness readiness, Clock::duration timeout) {
  Process::Options opts;
  opts.out = Process::Output::File;
  opts.out_path = dir_.file("weir.stdout");
  opts.err = Process::Output::File;
  opts.err_path = logPath();
  opts.netns = netns_.weir;
  try {
    if (wrapper_.empty()) {
      process_ = Process::spawn(binary_, {"-c", config_path_}, opts);
    } else {
      // The wrapper execs weir in the same process, so pid() is still weir's master.
      std::vector<std::string> args(wrapper_.begin() + 1, wrapper_.end());
      args.insert(args.end(), {binary_, "-c", config_path_});
      process_ = Process::spawn(wrapper_.front(), args, opts);
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "cannot start weir: " << e.what();
  }
  const Deadline deadline = deadlineIn(timeout);
  // Bounded by the deadline; each step is a real condition, retried while weir comes up.
  if (readiness == Readiness::WorkersOnly && !isNumber(config_.workers)) {
    return failStart("Readiness::WorkersOnly needs a numeric worker count, not \"" +
                     config_.workers + "\"");
  }
  for (const ListenerSpec& l : config_.listeners) {
    if (readiness == Readiness::WorkersOnly) {
      break;
    }
    std::string err;
    const bool ok = waitFor(
        [&] {
          if (!process_.running()) {
            return true;  // reported below
          }
          return static_cast<bool>(connect(addr(l.name), milliseconds(500), &err));
        },
        deadline - Clock::now());
    if (!process_.running()) {
      return failStart("weir exited during start-up: " +
                       describeStatus(process_.status().value_or(-1)));
    }
    if (!ok) {
      return failStart("listener " + l.name + " never accepted: " + err);
    }
  }
  if (readiness == Readiness::EchoRoundTrip && !config_.listeners.empty()) {
    IoStatus last = IoStatus::Error;
    const bool ok = waitFor(
        [&] {
          Fd fd = connect(addr(config_.listeners.front().name), milliseconds(500), nullptr);
          last = fd ? echoRoundTrip(fd.get(), "weir-ready\n", deadlineIn(seconds(1)))
                    : IoStatus::Error;
          return last == IoStatus::Ok || !process_.running();
        },
        deadline - Clock::now(), milliseconds(50));
    if (!ok || !process_.running()) {
      return failStart(std::string("no echo round trip through weir (last: ") +
                       toString(last) + ")");
    }
  }
  if (isNumber(config_.workers)) {
    const size_t want = std::stoul(config_.workers);
    if (waitForWorkers(want, std::max<Clock::duration>(deadline - Clock::now(), seconds(1)))
            .empty()) {
      return failStart("expected " + config_.workers + " workers, found " +
                       std::to_string(workerPids().size()));
    }
  }
  // The master loads BPF before it binds, so the line is in the log once the listeners accept.
  if (auto line = unexpectedSteeringOff()) {
    steering_off_reported_ = true;
    return failStart("BPF steering did not load although this test can load BPF: " + *line);
  }
  return ::testing::AssertionSuccess();
}

std::optional<std::string> WeirProcess::unexpectedSteeringOff() const {
  if (steering_off_allowed_ || config_.steering == "hash" || !canLoadBpf()) {
    return std::nullopt;
  }
  return logLine("steering off");
}

::testing::AssertionResult WeirProcess::failStart(const std::string& why) {
  return ::testing::AssertionFailure() << why << "\n--- weir log tail ---\n" << logTail();
}

int WeirProcess::stop(Clock::duration grace) {
  if (stopped_ || !process_.valid()) {
    return process_.status().value_or(-1);
  }
  stopped_ = true;
  return process_.stop(grace);
}

void WeirProcess::checkWorkersGone() {
  // After the master exits its workers must follow; give them a moment to finish.
  for (pid_t w : seen_workers_) {
    if (!waitFor([&] { return !processAlive(w); }, seconds(5))) {
      ADD_FAILURE() << "weir worker " << w << " still alive after the master exited; killing it";
      kill(w, SIGKILL);
    }
  }
  seen_workers_.clear();
}

void WeirProcess::writeConfig(WeirConfig config) {
  pickPorts(config);
  config_ = std::move(config);
  dir_.write("weir.toml.tmp", config_.toToml());
  // Renamed into place, so that weir never reads a half-written file.
  std::rename(dir_.file("weir.toml.tmp").c_str(), config_path_.c_str());
}

std::optional<int> WeirProcess::waitExit(Clock::duration timeout) {
  workerPids();  // remember the workers for the cleanup check
  auto st = process_.wait(timeout);
  if (st) {
    stopped_ = true;
  }
  return st;
}

size_t WeirProcess::countLogLines(std::string_view needle) const {
  std::istringstream in(log());
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    n += line.find(needle) != std::string::npos ? 1 : 0;
  }
  return n;
}

bool WeirProcess::waitForLogLines(std::string_view needle, size_t count,
                                  Clock::duration timeout) const {
  return waitFor([&] { return countLogLines(needle) >= count; }, timeout, milliseconds(10));
}

std::vector<pid_t> WeirProcess::workerPids() {
  if (!process_.valid()) {
    return {};
  }
  std::vector<pid_t> kids = childPids(process_.pid());
  // Besides its workers, the master supervises a health checker ("weir: health checker") and,
  // during a binary upgrade, a new master. Workers name themselves "weir: worker N (gen G)"
  // (/proc/PID/comm holds the first 15 bytes) right after fork; until then a child still
  // carries the master's name and is not counted yet.
  std::erase_if(kids, [](pid_t p) {
    return processComm(p).rfind("weir: worker", 0) != 0 || !processAlive(p);
  });
  seen_workers_.insert(kids.begin(), kids.end());
  return kids;
}

std::vector<pid_t> WeirProcess::waitForWorkers(size_t count, Clock::duration timeout) {
  std::vector<pid_t> kids;
  const bool ok = waitFor(
      [&] {
        kids = workerPids();
        return kids.size() == count;
      },
      timeout);
  return ok ? kids : std::vector<pid_t>{};
}

std::vector<pid_t> WeirProcess::generationWorkers(unsigned gen) {
  std::vector<pid_t> out = workerPids();
  std::erase_if(out, [gen](pid_t p) {
    return processCmdline(p).find("(gen " + std::to_string(gen) + ")") == std::string::npos;
  });
  return out;
}

std::vector<pid_t> WeirProcess::waitForGenerationWorkers(unsigned gen, size_t count,
                                                         Clock::duration timeout) {
  std::vector<pid_t> kids;
  const bool ok = waitFor(
      [&] {
        kids = generationWorkers(gen);
        return kids.size() == count;
      },
      timeout);
  return ok ? kids : std::vector<pid_t>{};
}

uint16_t WeirProcess::port(const std::string& listener) const {
  for (const ListenerSpec& l : config_.listeners) {
    if (listener.empty() || l.name == listener) {
      return l.port;
    }
  }
  return 0;
}

SockAddr WeirProcess::addr(const std::string& listener) const {
  for (const ListenerSpec& l : config_.listeners) {
    if (listener.empty() || l.name == listener) {
      return *SockAddr::from(l.host, l.port);
    }
  }
  return *SockAddr::from("127.0.0.1", 0);
}

std::string WeirProcess::log() const { return readTextFile(logPath()); }

std::optional<std::string> WeirProcess::logLine(std::string_view needle) const {
  std::istringstream in(log());
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) {
      return line;
    }
  }
  return std::nullopt;
}

std::string WeirProcess::logTail(size_t lines) const {
  std::vector<std::string> all;
  std::istringstream in(log());
  std::string line;
  while (std::getline(in, line)) {
    all.push_back(line);
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += all[i] + "\n";
  }
  return out;
}

std::vector<pid_t> connectionOwners(uint16_t listen_port, const std::vector<pid_t>& workers,
                                    const std::vector<Fd>& clients) {
  const auto accepted = acceptedByClientPort(listen_port);
  std::map<uint64_t, pid_t> inode_owner;
  for (pid_t w : workers) {
    for (uint64_t inode : socketInodes(w)) {
      inode_owner[inode] = w;
    }
  }
  std::vector<pid_t> owners;
  for (const Fd& c : clients) {
    pid_t owner = 0;
    const auto local = SockAddr::local(c.get());
    if (local) {
      if (auto a = accepted.find(local->port()); a != accepted.end()) {
        if (auto o = inode_owner.find(a->second); o != inode_owner.end()) {
          owner = o->second;
        }
      }
    }
    owners.push_back(owner);
  }
  return owners;
}

std::vector<std::string> accessLines(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

std::vector<std::string> waitAccessLines(const std::string& path, const std::string& needle,
                                         size_t count, Clock::duration timeout) {
  const Deadline deadline = Clock::now() + timeout;
  for (;;) {
    auto lines = accessLines(path, needle);
    if (lines.size() >= count || Clock::now() >= deadline) {
      return lines;
    }
    std::this_thread::sleep_for(milliseconds(10));  // polling a file; bounded by the deadline
  }
}

::testing::AssertionResult reload(WeirProcess& weir, const WeirConfig& config, size_t reloads) {
  weir.writeConfig(config);
  if (!weir.signal(SIGHUP)) {
    return ::testing::AssertionFailure() << "weir is not running";
  }
  if (!weir.waitForLogLines("master: reloaded: generation", reloads, seconds(10))) {
    return ::testing::AssertionFailure() << "reload " << reloads << " not logged within 10 s";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace weir::test
