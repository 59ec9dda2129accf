#include "master/generations.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "shm/carry_over.h"
#include "shm/worker_stats.h"
#include "util/time.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int64_t kStableMs = 2000;  // a child that lived this long was not crash-looping
constexpr int64_t kMaxBackoffMs = 10000;
constexpr int64_t kKillGraceMs = 10000;  // SIGTERM not obeyed by then: SIGKILL
constexpr int64_t kEvictGraceMs = 5000;  // a generation stopped to make room: SIGKILL after

// Schedules a respawn with exponential back-off for children that keep dying young.
void scheduleRespawn(Child& c, int64_t now) {
  c.crash_streak = now - c.started_ms < kStableMs ? c.crash_streak + 1 : 0;
  int64_t delay = 0;
  if (c.crash_streak > 0) {
    delay = std::min<int64_t>(kMaxBackoffMs, int64_t{100} << std::min(c.crash_streak - 1, 10u));
  }
  c.respawn_at = now + delay;
}

void stopRespawning(Generation& gen) {
  for (auto& w : gen.workers) {
    w.respawn_at = -1;
  }
  gen.checker.respawn_at = -1;
}

}  // namespace

std::string describeExit(int status) {
  return WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                             : "exited with status " + std::to_string(WEXITSTATUS(status));
}

bool Generation::alive() const { return checker.pid > 0 || workersAlive(); }

bool Generation::workersAlive() const {
  return std::any_of(workers.begin(), workers.end(), [](const Child& c) { return c.pid > 0; });
}

void holdAcceptsForNames(const Generation& gen) {
  bool hold = false;
  for (size_t p = 0; p < gen.cfg->pools.size() && !hold; ++p) {
    hold = shm::hasNameWithoutAddress(gen.cfg->pools[p], gen.backends->pool(p));
  }
  gen.region->header().names_unanswered.store(hold ? 1 : 0, std::memory_order_release);
}

shm::CarryReport carryHealth(const shm::ShmRegion& from, shm::ShmRegion& to,
                             const std::string& source) {
  shm::CarryReport report = shm::carryOver(from, to, worker::monotonicMs());
  if (!report.header_problem.empty()) {
    spdlog::error("shared memory of {}: {}; health state starts fresh for every backend",
                  source, report.header_problem);
    return report;
  }
  for (const std::string& why : report.rejected) {
    spdlog::error("shared memory of {}: {}; that backend starts fresh", source, why);
  }
  spdlog::info("health state of {} backends carried over from {}", report.carried, source);
  return report;
}

Generations::Generations(ListenSockets& sockets, steer::Steering& steering,
                         uint64_t first_number)
    : sockets_(sockets), steering_(steering), next_number_(first_number),
      master_pid_(::getpid()) {}

namespace {

bool needsTls(const config::Config& cfg) {
  for (const auto& l : cfg.listeners) {
    if (l.mode == config::ListenerMode::TlsTerminate) {
      return true;
    }
  }
  for (const auto& p : cfg.pools) {
    if (p.tls) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::unique_ptr<Generation> Generations::make(std::shared_ptr<const config::Config> cfg) const {
  auto gen = std::make_unique<Generation>();
  gen->cfg = std::move(cfg);
  gen->nworkers = gen->cfg->global.workers;
  if (needsTls(*gen->cfg)) {
    gen->tls = tls::buildContexts(*gen->cfg, tickets_, ::time(nullptr));
  }
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
    // Its admin states are not taken from there: the master applies its own (AdminStates).
    (void)carryHealth(*current->region, *gen->region,
                      "generation " + std::to_string(current->number));
  }
  // After the carry: on a reload only the names it adds are without an address (a binary
  // upgrade decides again once it has carried over from the old master).
  holdAcceptsForNames(*gen);
  gen->workers.resize(gen->nworkers);
  return gen;
}

Generation& Generations::launch(std::unique_ptr<Generation> gen, int64_t now) {
  makeRoom(now);
  gen->number = next_number_++;
  gen->lane = steering_.claimLane(gen->number);
  if (!gen->lane) {
    spdlog::warn("generation {}: every steering lane is taken; its connections are not counted "
                 "in the steering load", gen->number);
  }
  gens_.push_back(std::move(gen));
  Generation& fresh = *gens_.back();
  for (unsigned i = 0; i < fresh.workers.size(); ++i) {
    spawnWorker(fresh, i);
  }
  spawnChecker(fresh);
  return fresh;
}

Generation* Generations::serving() const {
  if (gens_.empty() || gens_.back()->draining) {
    return nullptr;
  }
  return gens_.back().get();
}

bool Generations::anyAlive() const {
  return std::any_of(gens_.begin(), gens_.end(),
                     [](const std::unique_ptr<Generation>& g) { return g->alive(); });
}

size_t Generations::drainingAlive() const {
  return static_cast<size_t>(
      std::count_if(gens_.begin(), gens_.end(), [](const std::unique_ptr<Generation>& g) {
        return g->draining && g->alive();
      }));
}

bool Generations::up(const Generation& gen, int64_t now, int64_t ms) const {
  return std::all_of(gen.workers.begin(), gen.workers.end(), [&](const Child& w) {
    return w.pid > 0 && now - w.started_ms >= ms;
  });
}

bool Generations::failing(const Generation& gen) const {
  return std::any_of(gen.workers.begin(), gen.workers.end(),
                     [](const Child& w) { return w.pid <= 0 || w.crash_streak > 0; });
}

int64_t Generations::youngestStart(const Generation& gen, int64_t now) const {
  int64_t youngest = gen.checker.pid > 0 ? gen.checker.started_ms : now;
  for (const Child& c : gen.workers) {
    youngest = std::max(youngest, c.pid > 0 ? c.started_ms : now);
  }
  return youngest;
}

void Generations::spawnWorker(Generation& gen, unsigned slot) {
  Child& c = gen.workers[slot];
  const bool limits = std::any_of(gen.cfg->listeners.begin(), gen.cfg->listeners.end(),
                                  [](const config::Listener& l) {
                                    return l.max_connections_per_client > 0;
                                  });
  if (limits && !c.holds) {
    try {
      // Twice max_connections: closed sessions wait a moment before they are reused.
      c.holds = std::make_shared<steer::ClientHolds>(2 * size_t{gen.cfg->global.max_connections});
    } catch (const std::exception& e) {
      spdlog::error("worker {}: {}; max_connections_per_client is not counted by it", slot,
                    e.what());
    }
  }
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
  if (&gen == serving()) {
    publishLive();
  }
}

void Generations::spawnChecker(Generation& gen) {
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

void Generations::signalAll(Generation& gen, int worker_sig, int checker_sig) {
  for (const Child& w : gen.workers) {
    if (w.pid > 0) {
      ::kill(w.pid, worker_sig);
    }
  }
  if (gen.checker.pid > 0) {
    ::kill(gen.checker.pid, checker_sig);
  }
}

void Generations::drain(Generation& gen, int64_t now, config::Duration timeout) {
  if (gen.draining) {
    return;
  }
  gen.draining = true;
  stopRespawning(gen);
  // Workers stop accepting and exit once their connections end; the checker has nothing to
  // finish (the next generation's checker carries on).
  signalAll(gen, SIGQUIT, SIGTERM);
  gen.term_at = util::addSaturating(now, timeout.count());
  gen.checker_kill_at = gen.checker.pid > 0 ? now + kKillGraceMs : -1;
  spdlog::info("generation {} draining: no new connections, {} to finish", gen.number,
               config::formatDuration(timeout));
}

void Generations::drainAllBut(const Generation* keep, int64_t now, config::Duration timeout) {
  for (auto& gen : gens_) {
    if (gen.get() != keep) {
      drain(*gen, now, timeout);
    }
  }
}

void Generations::terminateAll() {
  for (auto& gen : gens_) {
    gen->draining = true;
    stopRespawning(*gen);
    signalAll(*gen, SIGTERM, SIGTERM);
  }
}

size_t Generations::killAll() {
  size_t killed = 0;
  for (auto& gen : gens_) {
    if (gen->alive()) {
      spdlog::warn("generation {}: children did not stop in time; killing them", gen->number);
      signalAll(*gen, SIGKILL, SIGKILL);
      ++killed;
    }
  }
  return killed;
}

void Generations::signalEveryChild(int sig) {
  for (auto& gen : gens_) {
    signalAll(*gen, sig, sig);
  }
}

void Generations::setAdmin(std::string_view pool, std::string_view address,
                           shm::AdminState state) {
  for (auto& gen : gens_) {
    (void)gen->region->setAdmin(pool, address, state);
  }
}

void Generations::restartRamp(std::string_view pool, std::string_view address, int64_t now_ms) {
  for (auto& gen : gens_) {
    (void)gen->region->restartRamp(pool, address, now_ms);
  }
}

// Connections held by the generation's running workers, as they report them in shm, with a
// "worker 0: 3, worker 1: 1" account. Workers can write anything there: each figure is only
// compared and logged, and clamped so that the sum cannot overflow.
int64_t Generations::connectionsOf(const Generation& gen, std::string* detail) const {
  int64_t total = 0;
  for (unsigned slot = 0; slot < gen.workers.size(); ++slot) {
    if (gen.workers[slot].pid <= 0) {
      continue;
    }
    const int64_t held = std::clamp<int64_t>(
        gen.region->worker(slot).active.load(std::memory_order_relaxed), 0, int64_t{1} << 32);
    total += held;
    if (detail != nullptr && held > 0) {
      *detail += (detail->empty() ? "" : ", ") + std::string("worker ") + std::to_string(slot) +
                 ": " + std::to_string(held);
    }
  }
  return total;
}

// Bounds the generations that hold connections, counting the one about to start. Draining
// generations whose workers hold nothing do not count: they exit by themselves, and stopping
// one would close nothing; neither do generations whose workers are all gone and whose checker
// has not exited yet. The serving generation is never stopped here (it serves until the new
// one is up).
void Generations::makeRoom(int64_t now) {
  size_t holding = 1;
  for (const auto& g : gens_) {
    holding += g->workersAlive() && connectionsOf(*g, nullptr) > 0 ? 1 : 0;
  }
  for (auto& g : gens_) {
    if (holding <= kMaxGenerations) {
      break;
    }
    std::string detail;
    const int64_t held = g.get() == serving() ? 0 : connectionsOf(*g, &detail);
    if (held == 0) {
      continue;
    }
    spdlog::warn("generation {} stopped before its connections ended: closing its {} "
                 "connection(s) ({}); at most {} generations holding connections run at once",
                 g->number, held, detail, kMaxGenerations);
    cut_.generation_limit += static_cast<uint64_t>(held);
    g->draining = true;
    stopRespawning(*g);
    signalAll(*g, SIGTERM, SIGTERM);
    g->term_at = -1;
    g->kill_at = now + kEvictGraceMs;
    --holding;
  }
}

bool Generations::onExit(pid_t pid, int status, int64_t now, bool respawn) {
  for (auto& gen : gens_) {
    const bool current = gen.get() == serving() && respawn;
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
          // Everything the dead worker counted goes with it: its traffic row (what least-conn
          // and max_connections read) and its steering lane counter. Nothing it could have
          // written is read to decide what to take away.
          gen->region->retireWorker(slot);
          if (gen->lane) {
            steering_.retireSlot(*gen->lane, slot);
          }
          if (const auto& holds = gen->workers[slot].holds) {
            if (size_t n = holds->releaseAll(*steering_.state()); n > 0) {
              spdlog::info("worker {} held {} connections counted against "
                           "max_connections_per_client: given back", slot, n);
            }
          }
        }
      }
    }
    if (found == nullptr) {
      continue;
    }
    found->pid = 0;
    if (gen.get() == serving()) {
      publishLive();
    }
    if (!current) {
      spdlog::info("{} of generation {} (pid {}) {}", who, gen->number, pid, describeExit(status));
      return true;
    }
    scheduleRespawn(*found, now);
    spdlog::error("{} (pid {}) {}; respawning in {} ms", who, pid, describeExit(status),
                  found->respawn_at - now);
    return true;
  }
  return false;
}

void Generations::tick(int64_t now, bool respawn, const Generation* keep) {
  if (Generation* gen = serving(); gen != nullptr && respawn) {
    for (unsigned i = 0; i < gen->workers.size(); ++i) {
      if (gen->workers[i].respawn_at >= 0 && gen->workers[i].respawn_at <= now) {
        spawnWorker(*gen, i);
      }
    }
    if (gen->checker.respawn_at >= 0 && gen->checker.respawn_at <= now) {
      spawnChecker(*gen);
    }
  }
  for (auto& gen : gens_) {
    if (gen->term_at >= 0 && now >= gen->term_at) {
      spdlog::warn("generation {}: drain_timeout over; closing its remaining connections",
                   gen->number);
      cut_.drain_timeout += static_cast<uint64_t>(connectionsOf(*gen, nullptr));
      signalAll(*gen, SIGTERM, SIGTERM);
      gen->term_at = -1;
      gen->kill_at = now + kKillGraceMs;
    }
    if (gen->kill_at >= 0 && now >= gen->kill_at) {
      if (gen->alive()) {
        spdlog::warn("generation {}: children did not stop in time; killing them", gen->number);
        signalAll(*gen, SIGKILL, SIGKILL);
      }
      gen->kill_at = -1;
    }
    if (gen->checker_kill_at >= 0 && now >= gen->checker_kill_at) {
      if (gen->checker.pid > 0) {
        spdlog::warn("generation {}: health checker (pid {}) did not stop; killing it",
                     gen->number, gen->checker.pid);
        ::kill(gen->checker.pid, SIGKILL);
      }
      gen->checker_kill_at = -1;
    }
  }
  std::erase_if(gens_, [&](const std::unique_ptr<Generation>& g) {
    const bool done = g->draining && !g->alive() && g.get() != keep;
    if (!done) {
      return false;
    }
    if (respawn) {
      spdlog::info("generation {} has finished draining", g->number);
    }
    if (g->lane) {
      steering_.releaseLane(*g->lane);
    }
    return true;
  });
}

int64_t Generations::nextDeadline() const {
  int64_t next = -1;
  auto consider = [&next](int64_t at) {
    if (at >= 0 && (next < 0 || at < next)) {
      next = at;
    }
  };
  for (const auto& gen : gens_) {
    for (const auto& w : gen->workers) {
      consider(w.respawn_at);
    }
    consider(gen->checker.respawn_at);
    consider(gen->term_at);
    consider(gen->kill_at);
    consider(gen->checker_kill_at);
  }
  return next;
}

void Generations::publishLive() {
  const Generation* gen = serving();
  if (gen == nullptr || handed_off_) {
    return;  // stopping, or a new master steers now
  }
  uint64_t live = 0;
  for (size_t slot = 0; slot < gen->workers.size() && slot < 64; ++slot) {
    live |= gen->workers[slot].pid > 0 ? uint64_t{1} << slot : 0;
  }
  steering_.setLiveSlots(live);
}

}  // namespace weir::master
