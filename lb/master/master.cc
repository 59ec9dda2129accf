#include "master/master.h"

#include <signal.h>
#include <sys/poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "health/checker.h"
#include "net/socket.h"
#include "shm/backend_map.h"
#include "shm/region.h"
#include "shm/worker_stats.h"
#include "steer/steering.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int64_t kStableMs = 2000;      // a worker that lived this long was not crash-looping
constexpr int64_t kMaxBackoffMs = 10000;
constexpr int64_t kFastStopGraceMs = 10000;

// One listen address: the reuseport group of one listening socket per worker slot.
struct Group {
  uint32_t listener;
  net::SockAddr addr;
  std::vector<net::UniqueFd> slots;
};

struct Slot {
  pid_t pid = 0;
  int64_t started_ms = 0;
  int64_t respawn_at = -1;  // >= 0: respawn due at this time
  unsigned crash_streak = 0;
};

class Master {
public:
  explicit Master(const config::Config& cfg) : cfg_(cfg) {}
  int run();

private:
  void bindAll();
  void spawn(unsigned slot);
  void runChild(unsigned slot);
  void spawnChecker();
  void runChecker();
  void enterChild();
  void reap();
  void onSignal(const signalfd_siginfo& si);
  void beginStop(int sig);
  int64_t nextTimeoutMs() const;
  bool anyAlive() const;
  std::vector<Slot*> allChildren() {
    std::vector<Slot*> all{&checker_};
    for (auto& s : slots_) {
      all.push_back(&s);
    }
    return all;
  }

  const config::Config& cfg_;
  std::unique_ptr<steer::Steering> steering_;
  std::unique_ptr<shm::ShmRegion> region_;
  std::unique_ptr<shm::BackendMap> backends_;
  std::vector<Group> groups_;
  std::vector<Slot> slots_;
  Slot checker_;  // the health checker, supervised like a worker
  net::UniqueFd signal_fd_;
  sigset_t mask_{};
  bool stopping_ = false;
  int stop_signal_ = 0;
  int64_t kill_at_ = -1;
};

void raiseFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void checkFileBudget(const config::Config& cfg) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return;
  }
  // Two sockets per connection (pipes, held only while bytes are in flight, come on top).
  const uint64_t need = uint64_t{cfg.global.max_connections} * 2;
  if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
    spdlog::warn("max_connections = {} needs about {} file descriptors per worker but the limit "
                 "is {}: accepts will pause when it is reached",
                 cfg.global.max_connections, need, rl.rlim_cur);
  }
}

void writePidFile(const std::string& path) {
  if (path.empty()) {
    return;
  }
  std::ofstream out(path, std::ios::trunc);
  out << ::getpid() << '\n';
  if (!out) {
    throw std::runtime_error("cannot write pid file " + path + ": " + std::strerror(errno));
  }
}

void Master::bindAll() {
  const unsigned n = cfg_.global.workers;
  for (uint32_t li = 0; li < cfg_.listeners.size(); ++li) {
    const auto& listener = cfg_.listeners[li];
    for (const auto& addr : listener.binds) {
      Group g{li, addr, {}};
      for (unsigned s = 0; s < n; ++s) {
        auto fd = net::listenReuseport(addr, listener.backlog);
        if (!fd) {
          throw std::runtime_error("listeners." + listener.name + ": " + fd.error().message());
        }
        g.slots.push_back(std::move(*fd));
      }
      std::vector<int> fds;
      for (const auto& fd : g.slots) {
        fds.push_back(fd.get());
      }
      auto attached = steering_->attachGroup(fds);
      if (!attached) {
        spdlog::warn("steering off for {}: {}; the kernel's reuseport hash spreads its "
                     "connections", addr.toString(), attached.error().message());
      }
      spdlog::info("listening on {} (listener {}, {} sockets)", addr.toString(), listener.name, n);
      groups_.push_back(std::move(g));
    }
  }
}

// What every child does first: die with the master rather than run on unsupervised, and let
// go of the master's signal handling. TERM/INT/QUIT/USR1 stay blocked for the child's own
// signalfd; the master's other signals are not the child's business.
void Master::enterChild() {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  signal_fd_.reset();
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGUSR2, SIG_IGN);
  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : {SIGCHLD, SIGHUP, SIGUSR2}) {
    sigaddset(&unblock, sig);
  }
  ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
}

void Master::runChecker() {
  enterChild();
  ::prctl(PR_SET_NAME, "weir health");  // /proc/PID/comm, what ps and top show
  for (auto& g : groups_) {
    for (auto& fd : g.slots) {
      fd.reset();  // the checker accepts nothing
    }
  }
  int rc = 1;
  try {
    util::setupLogging(cfg_.global.error_log, cfg_.global.access_log, cfg_.global.log_level,
                       "health");
    rc = health::runChecker(cfg_, *region_);
  } catch (const std::exception& e) {
    spdlog::critical("health checker: {}", e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(rc);
}

void Master::spawnChecker() {
  pid_t pid = ::fork();
  if (pid < 0) {
    spdlog::error("fork health checker: {}; retrying in 1 s", std::strerror(errno));
    checker_.respawn_at = worker::monotonicMs() + 1000;
    return;
  }
  if (pid == 0) {
    runChecker();
  }
  checker_.pid = pid;
  checker_.started_ms = worker::monotonicMs();
  checker_.respawn_at = -1;
}

void Master::runChild(unsigned slot) {
  enterChild();
  const std::string comm = "weir worker " + std::to_string(slot);
  ::prctl(PR_SET_NAME, comm.c_str());
  std::vector<worker::ListenSocket> mine;
  for (auto& g : groups_) {
    for (unsigned s = 0; s < g.slots.size(); ++s) {
      if (s == slot) {
        mine.push_back({g.slots[s].get(), g.listener});
      } else {
        g.slots[s].reset();  // only the master and the slot's worker hold a slot's socket
      }
    }
  }
  int rc = 1;
  try {
    util::setupLogging(cfg_.global.error_log, cfg_.global.access_log, cfg_.global.log_level,
                       "worker " + std::to_string(slot));
    const bool counted = steering_->active() && cfg_.global.steering != config::Steering::Hash;
    worker::Worker w(cfg_, slot, std::move(mine), steering_->state(), counted, *backends_,
                     region_->worker(slot));
    rc = w.run();
  } catch (const std::exception& e) {
    spdlog::critical("worker {}: {}", slot, e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(rc);
}

void Master::spawn(unsigned slot) {
  Slot& s = slots_[slot];
  // A fresh worker owns no connections yet; the dead one's are gone with it.
  std::atomic_ref<__s64>(steering_->state()->slots[slot].active).store(0);
  pid_t pid = ::fork();
  if (pid < 0) {
    spdlog::error("fork worker {}: {}; retrying in 1 s", slot, std::strerror(errno));
    s.respawn_at = worker::monotonicMs() + 1000;
    return;
  }
  if (pid == 0) {
    runChild(slot);
  }
  s.pid = pid;
  s.started_ms = worker::monotonicMs();
  s.respawn_at = -1;
  shm::workerStarted(region_->worker(slot), pid);
}

void Master::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      return;
    }
    std::string how = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                          : "exited with status " +
                                                std::to_string(WEXITSTATUS(status));
    std::string who;
    Slot* found = nullptr;
    if (checker_.pid == pid) {
      found = &checker_;
      who = "health checker";
    } else {
      auto it = std::find_if(slots_.begin(), slots_.end(),
                             [&](const Slot& s) { return s.pid == pid; });
      if (it == slots_.end()) {
        continue;
      }
      const unsigned slot = static_cast<unsigned>(it - slots_.begin());
      found = &*it;
      who = "worker " + std::to_string(slot);
      std::atomic_ref<__s64>(steering_->state()->slots[slot].active).store(0);
      shm::workerExited(region_->worker(slot));
    }
    Slot& s = *found;
    s.pid = 0;
    if (stopping_) {
      spdlog::info("{} (pid {}) {}", who, pid, how);
      continue;
    }
    const int64_t now = worker::monotonicMs();
    s.crash_streak = now - s.started_ms < kStableMs ? s.crash_streak + 1 : 0;
    int64_t delay = 0;
    if (s.crash_streak > 0) {
      delay = std::min<int64_t>(kMaxBackoffMs, int64_t{100} << std::min(s.crash_streak - 1, 10u));
    }
    spdlog::error("{} (pid {}) {}; respawning in {} ms", who, pid, how, delay);
    s.respawn_at = now + delay;
  }
}

void Master::beginStop(int sig) {
  if (stopping_ && sig == stop_signal_) {
    return;
  }
  stopping_ = true;
  stop_signal_ = sig;
  const bool graceful = sig == SIGQUIT;
  spdlog::info("{} stop requested by signal {}", graceful ? "graceful" : "fast", sig);
  kill_at_ = graceful ? -1 : worker::monotonicMs() + kFastStopGraceMs;
  for (auto& s : slots_) {
    s.respawn_at = -1;
    if (s.pid > 0) {
      ::kill(s.pid, graceful ? SIGQUIT : SIGTERM);
    }
  }
  checker_.respawn_at = -1;
  if (checker_.pid > 0) {
    ::kill(checker_.pid, SIGTERM);  // nothing to drain: it holds no connections
  }
}

void Master::onSignal(const signalfd_siginfo& si) {
  switch (si.ssi_signo) {
    case SIGCHLD:
      reap();
      break;
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
      beginStop(static_cast<int>(si.ssi_signo));
      break;
    case SIGUSR1:
      spdlog::info("reopening log files");
      util::setupLogging(cfg_.global.error_log, cfg_.global.access_log, cfg_.global.log_level,
                         "master");
      for (Slot* s : allChildren()) {
        if (s->pid > 0) {
          ::kill(s->pid, SIGUSR1);
        }
      }
      break;
    default:
      spdlog::warn("signal {} is not handled yet in this version; ignored", si.ssi_signo);
      break;
  }
}

bool Master::anyAlive() const {
  return checker_.pid > 0 ||
         std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.pid > 0; });
}

int64_t Master::nextTimeoutMs() const {
  int64_t next = checker_.respawn_at;
  for (const auto& s : slots_) {
    if (s.respawn_at >= 0 && (next < 0 || s.respawn_at < next)) {
      next = s.respawn_at;
    }
  }
  if (kill_at_ >= 0 && (next < 0 || kill_at_ < next)) {
    next = kill_at_;
  }
  if (next < 0) {
    return -1;
  }
  return std::max<int64_t>(0, next - worker::monotonicMs());
}

int Master::run() {
  raiseFileLimit();
  checkFileBudget(cfg_);
  std::string why;
  steering_ = steer::Steering::create(cfg_.global.steering, cfg_.global.workers, &why);
  if (!why.empty()) {
    spdlog::warn("BPF steering off: {}. Falling back to the kernel's SO_REUSEPORT hash.", why);
  } else if (steering_->active()) {
    spdlog::info("BPF steering on");
  }
  // Before any fork: every child maps the same region (MAP_SHARED survives fork).
  auto region = shm::ShmRegion::create(shm::ShmRegion::capacityFor(cfg_));
  if (!region) {
    throw std::runtime_error("shared memory: " + region.error().message());
  }
  region_ = std::make_unique<shm::ShmRegion>(std::move(*region));
  auto backends = shm::BackendMap::create(*region_, cfg_);
  if (!backends) {
    throw std::runtime_error("shared memory: " + backends.error().message());
  }
  backends_ = std::make_unique<shm::BackendMap>(std::move(*backends));
  bindAll();
  writePidFile(cfg_.global.pid_file);

  sigemptyset(&mask_);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&mask_, sig);
  }
  ::sigprocmask(SIG_BLOCK, &mask_, nullptr);
  signal_fd_ = net::UniqueFd(::signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) {
    throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  }

  slots_.resize(cfg_.global.workers);
  for (unsigned i = 0; i < slots_.size(); ++i) {
    spawn(i);
  }
  spawnChecker();
  spdlog::info("ready: {} workers, steering {}", slots_.size(),
               steering_->active() ? "bpf" : "kernel hash");

  while (!stopping_ || anyAlive()) {
    pollfd pfd{signal_fd_.get(), POLLIN, 0};
    int64_t timeout = nextTimeoutMs();
    int n = ::poll(&pfd, 1, static_cast<int>(timeout));
    if (n < 0 && errno != EINTR) {
      spdlog::critical("poll: {}", std::strerror(errno));
      break;
    }
    signalfd_siginfo si{};
    while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
      onSignal(si);
    }
    const int64_t now = worker::monotonicMs();
    for (unsigned i = 0; i < slots_.size(); ++i) {
      if (!stopping_ && slots_[i].respawn_at >= 0 && slots_[i].respawn_at <= now) {
        spawn(i);
      }
    }
    if (!stopping_ && checker_.respawn_at >= 0 && checker_.respawn_at <= now) {
      spawnChecker();
    }
    if (kill_at_ >= 0 && now >= kill_at_) {
      for (Slot* s : allChildren()) {
        if (s->pid > 0) {
          spdlog::warn("child pid {} did not stop in time; killing it", s->pid);
          ::kill(s->pid, SIGKILL);
        }
      }
      kill_at_ = -1;
    }
  }
  if (!cfg_.global.pid_file.empty()) {
    ::unlink(cfg_.global.pid_file.c_str());
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int run(const config::Config& cfg) {
  util::setupLogging(cfg.global.error_log, cfg.global.access_log, cfg.global.log_level, "master");
  Master m(cfg);
  return m.run();
}

}  // namespace weir::master
