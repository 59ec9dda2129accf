#include "master/master.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "master/notify.h"
#include "master/pid_file.h"
#include "master/privileges.h"
#include "master/proc_title.h"
#include "master/supervisor.h"
#include "master/transparent_setup.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int64_t kFastStopGraceMs = 10000;
constexpr int64_t kConfirmMs = 300;  // children alive this long after start: ready

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
  const uint64_t limit = cfg.global.worker_rlimit_nofile.value_or(rl.rlim_cur);
  // Two sockets per connection (pipes, held only while bytes are in flight, come on top).
  const uint64_t need = uint64_t{cfg.global.max_connections} * 2;
  if (limit != RLIM_INFINITY && need > limit) {
    spdlog::warn("max_connections = {} needs about {} file descriptors per worker but the limit "
                 "is {}: accepts will pause when it is reached",
                 cfg.global.max_connections, need, limit);
  }
}

}  // namespace

Supervisor::Supervisor(std::shared_ptr<const config::Config> cfg, std::vector<std::string> args)
    : cfg_(std::move(cfg)), args_(std::move(args)), pid_(::getpid()) {}

Supervisor::~Supervisor() = default;

void Supervisor::start() {
  raiseFileLimit();
  checkFileBudget(*cfg_);
  setProcessTitle("weir: master");
  Inheritance in = takeInheritance();
  report_fd_ = in.report_fd;
  std::string why;
  steering_ = steer::Steering::create(cfg_->global.steering, cfg_->global.workers, &why,
                                      in.maps.valid() ? &in.maps : nullptr);
  for (int fd : {in.maps.socks, in.maps.groups, in.maps.state}) {
    if (fd >= 0) {
      net::UniqueFd closing(fd);  // libbpf holds its own duplicates
    }
  }
  if (!why.empty() && !steering_->active()) {
    spdlog::warn("BPF steering off: {}. Falling back to the kernel's SO_REUSEPORT hash.", why);
  } else if (!why.empty()) {
    spdlog::warn("{}", why);
  } else if (steering_->active()) {
    spdlog::info("BPF steering on{}", in.maps.valid() ? " (maps taken over from the old master)"
                                                      : "");
  }
  sockets_ = std::make_unique<ListenSockets>(*steering_);
  if (!in.sockets.empty()) {
    sockets_->adopt(in.sockets);
  }
  gens_ = std::make_unique<Generations>(*sockets_, *steering_, in.next_generation);
  // A fresh child holds nothing of the master's own: not its signalfd, not an upgrade's pipe.
  gens_->setChildCleanup([this] {
    signal_fd_.reset();
    http_.reset();
    if (upgrade_) {
      upgrade_->closeReportFd();
    }
  });
  // Before any fork: every child maps the same region (MAP_SHARED survives fork).
  std::unique_ptr<Generation> gen = gens_->make(cfg_);
  if (in.shm_fd >= 0) {
    // A binary upgrade: the old master's serving generation knows which backends are down.
    net::UniqueFd shm_fd(in.shm_fd);
    if (auto old = shm::ShmRegion::attach(shm_fd.get())) {
      // And which backends an operator drained or disabled (validated by carryOver).
      admin_.adopt(carryHealth(*old, *gen->region, "the old master").admin);
      for (const auto& [key, state] : admin_.all()) {
        spdlog::info("pool {}: backend {} stays {} (set on the old master)", key.first,
                     key.second, shm::toString(state));
      }
      admin_.applyTo(*gen->region);
      holdAcceptsForNames(*gen);
    } else {
      spdlog::error("{}; health state starts fresh", old.error().message());
    }
  }
  sockets_->open(*cfg_, gen->nworkers);
  if (sockets_->retire(cfg_.get()) > 0) {
    // Inherited addresses this configuration no longer binds: the old master's workers
    // accept what is queued there until they stop.
    handover_.emplace(worker::monotonicMs(), nullptr, nullptr);
  }
  logChildCredentials(*cfg_);
  logTransparentSetup(*cfg_);
  handOverFile(cfg_->global.error_log, cfg_->global);
  handOverFile(cfg_->global.access_log, cfg_->global);
  // Before the pid file, which a failure here would leave behind. A new master of a binary
  // upgrade takes the path over from the old one, which still runs.
  syncControlSocket(report_fd_ >= 0);
  pid_file_ = cfg_->global.pid_file;
  writePidFile(pid_file_, pid_);

  sigemptyset(&mask_);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH}) {
    sigaddset(&mask_, sig);
  }
  ::sigprocmask(SIG_BLOCK, &mask_, nullptr);
  signal_fd_ = net::UniqueFd(::signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) {
    throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  }

  const Generation& first = gens_->launch(std::move(gen), worker::monotonicMs());
  steering_->setWorkers(first.nworkers);
  (void)steering_->setMode(cfg_->global.steering);
  gens_->publishLive();
  openMetrics(cfg_->global, true);
  confirm_at_ = worker::monotonicMs() + kConfirmMs;
}

void Supervisor::confirmStarted(int64_t now) {
  if (confirmed_ || confirm_at_ < 0 || now < confirm_at_) {
    return;
  }
  const Generation* gen = gens_->serving();
  if (gen == nullptr || stop_ != Stop::None) {
    confirm_at_ = -1;  // stopping before it was ever ready: nothing left to confirm
    return;
  }
  // Every child must have lived kConfirmMs; a respawned one restarts the wait.
  const int64_t youngest = gens_->youngestStart(*gen, now);
  if (now - youngest < kConfirmMs) {
    confirm_at_ = youngest + kConfirmMs;
    return;
  }
  confirmed_ = true;
  spdlog::info("ready: {} workers (generation {}), steering {}", gen->nworkers, gen->number,
               steering_->active() ? "bpf" : "kernel hash");
  if (report_fd_ >= 0) {
    reportReady(report_fd_);
    report_fd_ = -1;
    // Under systemd the old master already told it our pid (it is the main pid until then).
  }
  notifyReady(status());
  syncRoutes(now, true);
  if (winch_pending_) {
    stopWorkers();
  }
  if (upgrade_requested_) {
    beginUpgrade();
  }
}

std::string Supervisor::status() const {
  const Generation* gen = gens_->serving();
  const size_t draining = gens_->drainingAlive();
  if (parked()) {
    return "workers stopped (SIGWINCH; SIGHUP starts them again), " +
           std::to_string(draining) + " generation(s) draining";
  }
  if (gen == nullptr) {
    return "stopping, " + std::to_string(draining) + " generation(s) draining";
  }
  if (withdraw_until_ >= 0) {
    return "stopping: VIP routes withdrawn, serving until withdraw_delay ends, " +
           std::to_string(gen->nworkers) + " workers, generation " + std::to_string(gen->number);
  }
  return std::to_string(gen->nworkers) + " workers, generation " + std::to_string(gen->number) +
         (draining > 0 ? ", " + std::to_string(draining) + " older generation(s) draining" : "");
}

void Supervisor::reopenLogs() {
  spdlog::info("reopening log files");
  bool reopened = true;
  try {
    // All or nothing: on failure the master keeps writing to the files it has.
    util::setupLogging(cfg_->global.error_log, cfg_->global.access_log, cfg_->global.log_level,
                       "master");
  } catch (const std::exception& e) {
    reopened = false;
    spdlog::error("reopening log files failed, still writing to the old ones: {}", e.what());
  }
  // Children reopen by name after dropping root: the files the master just created must be
  // theirs to append to.
  handOverFile(cfg_->global.error_log, cfg_->global);
  handOverFile(cfg_->global.access_log, cfg_->global);
  // The children try on their own even if the master failed: each keeps its old files on
  // failure, and logs why.
  gens_->signalEveryChild(SIGUSR1);
  if (reopened) {
    spdlog::info("log files reopened");
  }
}

void Supervisor::beginGracefulStop() {
  if (withdraw_until_ >= 0) {
    spdlog::info("graceful stop: already waiting for the routers to converge on the withdrawal");
    return;
  }
  if (stop_ != Stop::None) {
    return;
  }
  if (upgrade_) {
    upgradeFailed("a graceful stop was requested");
  }
  const int64_t now = worker::monotonicMs();
  if (announcer_.announced() > 0 && cfg_->global.withdraw_delay.count() > 0) {
    // Routers still send new connections here until they hear of the withdrawal: serve them
    // as before for withdraw_delay, then drain.
    withdraw_until_ = now + cfg_->global.withdraw_delay.count();
    notifyStopping();
    announcer_.withdrawAll("graceful stop", now);
    spdlog::info("graceful stop: VIP routes withdrawn; still accepting new connections for {} "
                 "(withdraw_delay) while the routers converge, then draining",
                 config::formatDuration(cfg_->global.withdraw_delay));
    return;
  }
  announcer_.withdrawAll("graceful stop", now);
  drainForStop();
}

void Supervisor::drainForStop() {
  stop_ = Stop::Graceful;
  confirm_at_ = -1;
  notifyStopping();
  spdlog::info("graceful stop: no new connections; waiting up to {} for open ones to end",
               config::formatDuration(cfg_->global.drain_timeout));
  // New handshakes are dropped; what is queued is still accepted. The serving generation is
  // told to stop once the queues are empty (finishHandover).
  sockets_->retire(nullptr);
  if (!handover_) {
    handover_.emplace(worker::monotonicMs(), nullptr, nullptr);
  }
}

void Supervisor::beginFastStop() {
  if (stop_ == Stop::Fast) {
    return;
  }
  if (upgrade_) {
    upgradeFailed("a fast stop was requested");
  }
  stop_ = Stop::Fast;
  withdraw_until_ = -1;
  confirm_at_ = -1;
  notifyStopping();
  announcer_.withdrawAll("fast stop", worker::monotonicMs());
  spdlog::info("fast stop: closing every connection");
  handover_.reset();
  gens_->terminateAll();
  stop_kill_at_ = worker::monotonicMs() + kFastStopGraceMs;
}

// SIGWINCH, as nginx has it: the workers stop gracefully (the serving generation drains and
// nothing replaces it) but the master stays, holding the listening sockets: new connections
// wait in their queues, up to the backlog. SIGHUP starts workers again (a reload, which
// re-reads the configuration); SIGQUIT stops the master; SIGUSR2 still upgrades it.
void Supervisor::stopWorkers() {
  if (stop_ != Stop::None || withdraw_until_ >= 0 || upgrade_) {
    spdlog::warn("SIGWINCH ignored: {}", upgrade_ ? "a binary upgrade is in progress" : "stopping");
    return;
  }
  if (!confirmed_ || (handover_ && sockets_->anyRetiring())) {
    winch_pending_ = true;
    spdlog::info("SIGWINCH: the workers stop once {}",
                 confirmed_ ? "the reload has closed its old addresses" : "this master is ready");
    return;
  }
  if (parked()) {
    spdlog::info("SIGWINCH: the workers are already stopped");
    return;
  }
  if (handover_) {
    // A reload waiting for its workers to prove themselves: settled as a new SIGHUP would.
    const Generation* fresh = handover_->fresh();
    finishHandover(worker::monotonicMs(), fresh == nullptr || !gens_->failing(*fresh));
  }
  winch_pending_ = false;
  spdlog::info("SIGWINCH: stopping the workers gracefully; the master keeps the listening "
               "sockets (SIGHUP starts workers again, SIGQUIT stops the master)");
  gens_->drainAllBut(nullptr, worker::monotonicMs(), cfg_->global.drain_timeout);
  notifyReady(status());
}

bool Supervisor::parked() const { return stop_ == Stop::None && gens_->serving() == nullptr; }

void Supervisor::onSignal(const signalfd_siginfo& si) {
  switch (si.ssi_signo) {
    case SIGCHLD:
      reap();
      break;
    case SIGHUP:
      (void)reload(ReloadBy::Signal);
      break;
    case SIGQUIT:
      spdlog::info("SIGQUIT received");
      beginGracefulStop();
      break;
    case SIGTERM:
    case SIGINT:
      spdlog::info("{} received", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
      beginFastStop();
      break;
    case SIGUSR1:
      reopenLogs();
      break;
    case SIGUSR2:
      beginUpgrade();
      break;
    case SIGWINCH:
      stopWorkers();
      break;
    default:
      break;
  }
}

// Reaps every child that exited: the new master of an upgrade, a master we handed over to, or
// a child of some generation.
void Supervisor::reap() {
  for (int i = 0; i < 4096; ++i) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      return;
    }
    if (upgrade_ && pid == upgrade_->pid()) {
      upgrade_->onExit(describeExit(status));
      continue;
    }
    if (pid == successor_) {
      spdlog::warn("new master pid {} {}", pid, describeExit(status));
      continue;
    }
    (void)gens_->onExit(pid, status, worker::monotonicMs(), stop_ == Stop::None);
  }
}

void Supervisor::tick(int64_t now) {
  gens_->tick(now, stop_ == Stop::None, handover_ ? handover_->old() : nullptr);
  if (stop_kill_at_ >= 0 && now >= stop_kill_at_) {
    (void)gens_->killAll();
    stop_kill_at_ = -1;
  }
  pollHandover(now);
  pollUpgrade(now);
  confirmStarted(now);
  if (withdraw_until_ >= 0 && now >= withdraw_until_ && stop_ == Stop::None) {
    withdraw_until_ = -1;
    drainForStop();
  }
  syncRoutes(now);
}

int64_t Supervisor::nextTimeoutMs(int64_t now) const {
  int64_t next = -1;
  auto consider = [&next](int64_t at) {
    if (at >= 0 && (next < 0 || at < next)) {
      next = at;
    }
  };
  consider(gens_->nextDeadline());
  consider(stop_kill_at_);
  consider(withdraw_until_);
  consider(next_route_sync_);
  if (control_) {
    consider(control_->nextDeadline());
  }
  if (handover_) {
    consider(handover_->nextPollMs());
  }
  if (upgrade_) {
    consider(upgrade_->deadline());
  }
  if (!confirmed_) {
    consider(confirm_at_);
  }
  if (http_) {
    consider(http_->nextDeadline());
  }
  if (next < 0) {
    return -1;
  }
  return std::max<int64_t>(0, next - now);
}

bool Supervisor::finished() const {
  if (stop_ == Stop::None || handover_ || upgrade_) {
    return false;
  }
  return !gens_->anyAlive();
}

int Supervisor::run() {
  start();
  std::vector<pollfd> pfds;
  while (!finished()) {
    pfds.assign({{signal_fd_.get(), POLLIN, 0}, {-1, POLLIN, 0}});
    if (upgrade_) {
      pfds[1].fd = upgrade_->reportFd();
    }
    const size_t control_at = pfds.size();
    if (control_) {
      control_->addPollFds(pfds);
    }
    if (http_) {
      http_->addPollFds(pfds);
    }
    const int64_t timeout = nextTimeoutMs(worker::monotonicMs());
    int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::min<int64_t>(timeout, 60000)));
    if (n < 0 && errno != EINTR) {
      spdlog::critical("poll: {}", std::strerror(errno));
      break;
    }
    signalfd_siginfo si{};
    for (int i = 0; i < 64 && ::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si); ++i) {
      onSignal(si);
    }
    if (control_) {
      control_->onPoll(pfds.data() + control_at, worker::monotonicMs());
    }
    if (control_moved_) {
      control_moved_ = false;
      syncControlSocket(false);
    }
    tick(worker::monotonicMs());
    if (http_) {
      http_->service(worker::monotonicMs());
    }
  }
  control_.reset();  // removes the path, unless a new master has taken it over
  http_.reset();
  sockets_->closeAll(stop_ != Stop::HandOff);
  // Either name may hold our pid (PATH.oldbin once a new master took over).
  removePidFile(pid_file_, pid_);
  removePidFile(oldBinPath(pid_file_), pid_);
  if (stop_ != Stop::HandOff) {
    announcer_.withdrawAll("stopped", worker::monotonicMs());
  }
  if (stop_ == Stop::HandOff) {
    spdlog::info("stopped; new master pid {} serves", successor_);
  } else {
    spdlog::info("stopped");
  }
  return 0;
}

int run(const config::Config& cfg, std::vector<std::string> args) {
  util::setupLogging(cfg.global.error_log, cfg.global.access_log, cfg.global.log_level, "master");
  Supervisor s(std::make_shared<const config::Config>(cfg), std::move(args));
  return s.run();
}

}  // namespace weir::master
