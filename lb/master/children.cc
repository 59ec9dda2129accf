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
#include "master/child_fds.h"
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

}  // namespace

std::unique_ptr<Generation> Supervisor::makeGeneration(std::shared_ptr<const config::Config> cfg) {
  auto gen = std::make_unique<Generation>();
  gen->cfg = std::move(cfg);
  gen->nworkers = gen->cfg->global.workers;
  auto region = shm::ShmRegion::create(shm::ShmRegion::capacityFor(*gen->cfg));
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
    const uint32_t carried = shm::carryOver(*current->region, *gen->region);
    spdlog::info("health state of {} backends carried over", carried);
  }
  gen->workers.resize(gen->nworkers);
  return gen;
}

void Supervisor::launch(Generation& gen) {
  gen.number = next_generation_++;
  for (unsigned i = 0; i < gen.workers.size(); ++i) {
    spawnWorker(gen, i);
  }
  spawnChecker(gen);
}

// What every child does first, in this order: close every fd of the master's but its own
// listening sockets (the caller's closeAllExcept left only those in sockets_), let go of the
// master's signal handling (TERM/INT/QUIT/USR1 stay blocked for the child's own signalfd),
// open its logs (still root, so that the paths may be root's), raise its fd limit, pin
// itself, drop root and every capability, and only then ask to die with the master (a
// credential change clears PR_SET_PDEATHSIG).
void Supervisor::enterChild(const Generation& gen, const std::string& title, bool pin,
                            unsigned cpu) {
  signal_fd_.reset();
  if (upgrade_) {
    upgrade_->child.report.reset();
  }
  closeInheritedFds(sockets_->fds());
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
    const bool counted =
        steering_->active() && gen.cfg->global.steering != config::Steering::Hash;
    worker::Worker w(*gen.cfg, slot, std::move(mine), steering_->state(), counted,
                     *gen.backends, gen.region->worker(slot));
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

// The load counters of steering slot `slot` are shared by the worker of that slot in every
// generation. A dead worker's connections died with it: take exactly its own count (from its
// generation's shm entry) off the slot, or zero the slot if no other worker shares it.
void Supervisor::onWorkerExit(Generation& gen, unsigned slot) {
  shm::WorkerSlot& stats = gen.region->worker(slot);
  const int64_t held = stats.active.load(std::memory_order_relaxed);
  shm::workerExited(stats);
  std::atomic_ref<__s64> active(steering_->state()->slots[slot].active);
  bool shared = false;
  for (const auto& other : gens_) {
    if (other.get() != &gen && slot < other->workers.size() && other->workers[slot].pid > 0) {
      shared = true;
    }
  }
  if (!shared) {
    active.store(0);
    return;
  }
  __s64 left = active.fetch_sub(held) - held;
  // Never below zero (the dead worker may have died between its two counter updates); if
  // another worker changed the count meanwhile, its value stands.
  if (left < 0) {
    active.compare_exchange_strong(left, 0);
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
      scheduleRespawn(*found, now);
      spdlog::error("{} (pid {}) {}; respawning in {} ms", who, pid, describeExit(status),
                    found->respawn_at - now);
      break;
    }
  }
}

}  // namespace weir::master
