// Forking, running and reaping the children of every generation.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "health/checker.h"
#include "master/privileges.h"
#include "master/proc_title.h"
#include "master/supervisor.h"
#include "shm/carry_over.h"
#include "shm/worker_stats.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int64_t kStableMs = 2000;  // a child that lived this long was not crash-looping
constexpr int64_t kMaxBackoffMs = 10000;

std::string describeExit(int status) {
  return WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                             : "exited with status " + std::to_string(WEXITSTATUS(status));
}

// Schedules a respawn with exponential back-off for children that keep dying young.
void scheduleRespawn(Child& c, int64_t now) {
  c.crash_streak = now - c.started_ms < kStableMs ? c.crash_streak + 1 : 0;
  int64_t delay = 0;
  if (c.crash_streak > 0) {
    delay = std::min<int64_t>(kMaxBackoffMs, int64_t{100} << std::min(c.crash_streak - 1, 10u));
  }
  c.respawn_at = now + delay;
}

void carryHealth(const shm::ShmRegion& from, shm::ShmRegion& to, const std::string& source) {
  const shm::CarryReport report = shm::carryOver(from, to, worker::monotonicMs());
  if (!report.header_problem.empty()) {
    spdlog::error("shared memory of {}: {}; health state starts fresh for every backend",
                  source, report.header_problem);
    return;
  }
  for (const std::string& why : report.rejected) {
    spdlog::error("shared memory of {}: {}; that backend starts fresh", source, why);
  }
  spdlog::info("health state of {} backends carried over from {}", report.carried, source);
}

}  // namespace

std::unique_ptr<Generation> Supervisor::makeGeneration(std::shared_ptr<const config::Config> cfg) {
  auto gen = std::make_unique<Generation>();
  gen->cfg = std::move(cfg);
  gen->nworkers = gen->cfg->global.workers;
  auto region = shm::ShmRegion::create(shm::ShmRegion::capacityFor(*gen->cfg), gen->nworkers);
  if (!region) {
    throw std::runtime_error("shared memory: " + region.error().message());
  }
  gen->region = std::make_unique<shm::ShmRegion>(std::move(*region));
  auto backends = shm::BackendMap::create(*gen->region, *gen->cfg);
  if (!backends) {
    throw std::runtime_error("shared memory: " + backends.error().message());
  }
  gen->backends = std::make_unique<shm::BackendMap>(std::move(*backends));
  if (const Generation* current = serving(); current != nullptr) {
    carryHealth(*current->region, *gen->region, "generation " + std::to_string(current->number));
  }
  gen->workers.resize(gen->nworkers);
  return gen;
}

void Supervisor::launch(Generation& gen) {
  gen.number = next_generation_++;
  gen.lane = steering_->claimLane(gen.number);
  if (!gen.lane) {
    spdlog::warn("generation {}: every steering lane is taken; its connections are not counted "
                 "in the steering load", gen.number);
  }
  for (unsigned i = 0; i < gen.workers.size(); ++i) {
    spawnWorker(gen, i);
  }
  spawnChecker(gen);
}

// What every child does first, in this order: let go of the master's signal handling
// (TERM/INT/QUIT/USR1 stay blocked for the child's own signalfd), open its logs (still root,
// so that the paths may be root's), raise its fd limit, pin itself, drop root, and only then
// ask to die with the master (a credential change clears PR_SET_PDEATHSIG).
void Supervisor::enterChild(const Generation& gen, const std::string& title, bool pin,
                            unsigned cpu) {
  signal_fd_.reset();
  if (upgrade_) {
    upgrade_->child.report.reset();
  }
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGUSR2, SIG_IGN);
  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : {SIGCHLD, SIGHUP, SIGUSR2}) {
    sigaddset(&unblock, sig);
  }
  ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  setProcessTitle(title);
  const config::Global& g = gen.cfg->global;
  std::string tag = title.substr(title.find(' ') + 1);  // "worker 2 (gen 5)"
  util::setupLogging(g.error_log, g.access_log, g.log_level, tag);
  applyFileLimit(g.worker_rlimit_nofile);
  if (pin) {
    pinToCpu(cpu);
  }
  dropPrivileges(g);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != pid_) {
    ::_exit(1);  // the master died before PDEATHSIG was set
  }
}

void Supervisor::runWorker(Generation& gen, unsigned slot) {
  int rc = 1;
  try {
    std::vector<worker::ListenSocket> mine = sockets_->socketsFor(*gen.cfg, slot, gen.nworkers);
    sockets_->closeAllExcept(mine);
    enterChild(gen,
               "weir: worker " + std::to_string(slot) + " (gen " + std::to_string(gen.number) +
                   ")",
               gen.cfg->global.worker_cpu_affinity, slot);
    gen.backends->setWorker(slot);
    const bool counted =
        steering_->active() && gen.cfg->global.steering != config::Steering::Hash;
    worker::Worker w(*gen.cfg, slot, std::move(mine),
                     steer::SlotLoad(steering_->state(), slot, gen.lane, counted), *gen.backends,
                     gen.region->worker(slot));
    rc = w.run();
  } catch (const std::exception& e) {
    spdlog::critical("worker {}: {}", slot, e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(rc);
}

void Supervisor::runChecker(Generation& gen) {
  int rc = 1;
  try {
    sockets_->closeAllExcept({});  // the checker accepts nothing
    enterChild(gen, "weir: health checker", false, 0);
    rc = health::runChecker(*gen.cfg, *gen.region);
  } catch (const std::exception& e) {
    spdlog::critical("health checker: {}", e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(rc);
}

void Supervisor::spawnWorker(Generation& gen, unsigned slot) {
  Child& c = gen.workers[slot];
  pid_t pid = ::fork();
  if (pid < 0) {
    spdlog::error("fork worker {}: {}; retrying in 1 s", slot, std::strerror(errno));
    c.respawn_at = worker::monotonicMs() + 1000;
    return;
  }
  if (pid == 0) {
    runWorker(gen, slot);
  }
  c.pid = pid;
  c.started_ms = worker::monotonicMs();
  c.respawn_at = -1;
  shm::workerStarted(gen.region->worker(slot), pid);
  publishLive();
}

void Supervisor::publishLive() {
  const Generation* gen = serving();
  if (gen == nullptr || stop_ == Stop::HandOff) {
    return;  // stopping, or a new master steers now
  }
  uint64_t live = 0;
  for (size_t slot = 0; slot < gen->workers.size() && slot < 64; ++slot) {
    live |= gen->workers[slot].pid > 0 ? uint64_t{1} << slot : 0;
  }
  steering_->setLiveSlots(live);
}

void Supervisor::spawnChecker(Generation& gen) {
  pid_t pid = ::fork();
  if (pid < 0) {
    spdlog::error("fork health checker: {}; retrying in 1 s", std::strerror(errno));
    gen.checker.respawn_at = worker::monotonicMs() + 1000;
    return;
  }
  if (pid == 0) {
    runChecker(gen);
  }
  gen.checker.pid = pid;
  gen.checker.started_ms = worker::monotonicMs();
  gen.checker.respawn_at = -1;
}

void Supervisor::signalAll(Generation& gen, int worker_sig, int checker_sig) {
  for (const Child& w : gen.workers) {
    if (w.pid > 0) {
      ::kill(w.pid, worker_sig);
    }
  }
  if (gen.checker.pid > 0) {
    ::kill(gen.checker.pid, checker_sig);
  }
}

void Supervisor::drain(Generation& gen, int64_t now) {
  if (gen.draining) {
    return;
  }
  gen.draining = true;
  for (auto& w : gen.workers) {
    w.respawn_at = -1;
  }
  gen.checker.respawn_at = -1;
  // Workers stop accepting and exit once their connections end; the checker has nothing to
  // finish (the next generation's checker carries on).
  signalAll(gen, SIGQUIT, SIGTERM);
  gen.term_at = now + cfg_->global.drain_timeout.count();
  spdlog::info("generation {} draining: no new connections, {} to finish", gen.number,
               config::formatDuration(cfg_->global.drain_timeout));
}

// Everything the dead worker counted goes with it: its traffic row (backend active counts,
// what least-conn and max_connections read) and its steering lane counter. Nothing it could
// have written is read to decide what to take away.
void Supervisor::onWorkerExit(Generation& gen, unsigned slot) {
  gen.region->retireWorker(slot);
  if (gen.lane) {
    steering_->retireSlot(*gen.lane, slot);
  }
}

void Supervisor::reap() {
  for (int i = 0; i < 4096; ++i) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      return;
    }
    const int64_t now = worker::monotonicMs();
    if (upgrade_ && pid == upgrade_->child.pid) {
      upgrade_->child.pid = -1;
      upgrade_->received += "EXITED " + describeExit(status) + "\n";
      continue;
    }
    if (pid == successor_) {
      spdlog::warn("new master pid {} {}", pid, describeExit(status));
      continue;
    }
    for (auto& gen : gens_) {
      const bool current = gen.get() == serving() && stop_ == Stop::None;
      Child* found = nullptr;
      std::string who;
      if (gen->checker.pid == pid) {
        found = &gen->checker;
        who = "health checker";
      } else {
        for (unsigned slot = 0; slot < gen->workers.size(); ++slot) {
          if (gen->workers[slot].pid == pid) {
            found = &gen->workers[slot];
            who = "worker " + std::to_string(slot);
            onWorkerExit(*gen, slot);
          }
        }
      }
      if (found == nullptr) {
        continue;
      }
      found->pid = 0;
      if (!current) {
        spdlog::info("{} of generation {} (pid {}) {}", who, gen->number, pid,
                     describeExit(status));
        break;
      }
      publishLive();
      scheduleRespawn(*found, now);
      spdlog::error("{} (pid {}) {}; respawning in {} ms", who, pid, describeExit(status),
                    found->respawn_at - now);
      break;
    }
  }
}

}  // namespace weir::master
