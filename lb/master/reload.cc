// SIGHUP: a new generation on the same sockets, the old one drained; retiring listen
// addresses a reload removed.
#include <algorithm>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "master/notify.h"
#include "master/pid_file.h"
#include "master/privileges.h"
#include "master/supervisor.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int64_t kHandoverPollMs = 20;
constexpr int64_t kHandoverMinMs = 60;    // covers handshakes a round trip from completing
constexpr int64_t kHandoverMaxMs = 3000;  // queues still not empty: close anyway
constexpr unsigned kQuietPolls = 3;       // empty this many polls in a row: quiet
constexpr int64_t kUpMs = 300;            // a new generation whose workers lived this long is up
constexpr int64_t kUpMaxMs = 10000;       // not up by then: the old generation keeps serving

}  // namespace

void Supervisor::reload() {
  if (stop_ != Stop::None) {
    spdlog::warn("SIGHUP ignored: stopping");
    return;
  }
  if (upgrade_) {
    spdlog::warn("SIGHUP ignored: a binary upgrade is in progress");
    return;
  }
  if (handover_ && sockets_->anyRetiring()) {
    // One reload at a time: the previous one is still retiring listen addresses.
    reload_pending_ = true;
    spdlog::info("SIGHUP: reload queued until the previous one has closed its old addresses");
    return;
  }
  if (handover_) {
    // The previous reload is only waiting for its workers to prove themselves: settle it now
    // (drain the old generation unless they have already failed) and go on.
    const Generation* fresh = handover_->fresh;
    const bool failing = fresh != nullptr &&
                         std::any_of(fresh->workers.begin(), fresh->workers.end(),
                                     [](const Child& w) { return w.pid <= 0 || w.crash_streak; });
    finishHandover(worker::monotonicMs(), !failing);
  }
  notifyReloading();
  spdlog::info("SIGHUP: reloading {}", cfg_->path);
  std::shared_ptr<const config::Config> next;
  try {
    next = std::make_shared<const config::Config>(config::load(cfg_->path));
  } catch (const config::ConfigError& e) {
    for (const auto& message : e.messages()) {
      spdlog::error("{}", message);
    }
    spdlog::error("reload failed: {} has {} problem(s); still serving the previous "
                  "configuration (generation {})",
                  cfg_->path, e.messages().size(), serving() ? serving()->number : 0);
    notifyReady(status());
    return;
  }
  try {
    startGeneration(std::move(next));
  } catch (const std::exception& e) {
    spdlog::error("reload failed: {}; still serving the previous configuration (generation {})",
                  e.what(), serving() ? serving()->number : 0);
  }
  notifyReady(status());
}

// Settings the master itself uses. Log files are switched last and only warn on failure:
// the new generation is already running by then.
void Supervisor::applyGlobal(const config::Config& next) {
  const config::Global& old = cfg_->global;
  const config::Global& now = next.global;
  if (now.error_log != old.error_log || now.access_log != old.access_log ||
      now.log_level != old.log_level) {
    try {
      util::setupLogging(now.error_log, now.access_log, now.log_level, "master");
    } catch (const std::exception& e) {
      spdlog::error("log settings of the new configuration: {}", e.what());
    }
  }
  if (now.pid_file != pid_file_) {
    try {
      writePidFile(now.pid_file, pid_);
      removePidFile(pid_file_, pid_);
      pid_file_ = now.pid_file;
    } catch (const std::exception& e) {
      spdlog::error("{}; the pid file stays {}", e.what(), pid_file_);
    }
  }
  if (!steering_->setMode(now.steering)) {
    spdlog::warn("steering = \"{}\" needs the BPF program, which this master has not loaded; "
                 "the kernel's hash spreads connections until a restart or binary upgrade",
                 now.steering == config::Steering::LeastLoaded ? "least-loaded" : "round-robin");
  }
}

void Supervisor::startGeneration(std::shared_ptr<const config::Config> next) {
  Generation* old = serving();
  // Everything that can fail comes first, and changes nothing the old generation uses if it
  // does: the new shm region, then any new listening sockets.
  std::unique_ptr<Generation> gen = makeGeneration(next);
  logChildCredentials(next->global);
  handOverFile(next->global.error_log, next->global);
  handOverFile(next->global.access_log, next->global);
  sockets_->open(*next, gen->nworkers);

  // Bound the generations alive at once: the oldest draining ones go first, now.
  const int64_t now = worker::monotonicMs();
  size_t alive = 1;  // the one about to start
  for (const auto& g : gens_) {
    alive += g->alive() ? 1 : 0;
  }
  for (auto& g : gens_) {
    if (alive <= kMaxGenerations) {
      break;
    }
    // Draining ones, or one left serving beside workers that did not come up.
    if (g->alive() && (g->draining || g.get() != old)) {
      spdlog::warn("generation {} stopped before its connections ended: at most {} "
                   "generations run at once", g->number, kMaxGenerations);
      g->draining = true;
      for (auto& w : g->workers) {
        w.respawn_at = -1;
      }
      g->checker.respawn_at = -1;
      signalAll(*g, SIGTERM, SIGTERM);
      g->term_at = -1;
      g->kill_at = now + 5000;
      --alive;
    }
  }

  gens_.push_back(std::move(gen));
  Generation& fresh = *gens_.back();
  launch(fresh);
  // The new workers exist (or are queued for respawn), so the program may send them
  // connections: every group has at least nworkers sockets by now.
  steering_->setWorkers(fresh.nworkers);
  applyGlobal(*next);

  // Backends the new configuration dropped are simply not in the new generation's region.
  // The old generation keeps using them for what it still serves: connections it accepts
  // while listen addresses retire, and retries of connections already under way.
  cfg_ = next;
  // Addresses `next` no longer binds stop taking handshakes now; they are closed when the
  // handover ends.
  sockets_->retire(next.get());
  spdlog::info("reloaded: generation {} with {} workers ({} before), {} listeners, {} pools",
               fresh.number, fresh.nworkers, old ? old->nworkers : 0, next->listeners.size(),
               next->pools.size());
  if (old == nullptr) {
    return;
  }
  handover_ = Handover{now, 0, old, &fresh, now};
}

bool Supervisor::generationUp(const Generation& gen, int64_t now) const {
  return std::all_of(gen.workers.begin(), gen.workers.end(), [now](const Child& w) {
    return w.pid > 0 && now - w.started_ms >= kUpMs;
  });
}

void Supervisor::pollHandover(int64_t now) {
  if (!handover_ || now < handover_->next_poll_ms) {
    return;
  }
  handover_->next_poll_ms = now + kHandoverPollMs;
  const int64_t elapsed = now - handover_->started_ms;
  int64_t backlog = 0;
  bool quiet = true;
  if (sockets_->anyRetiring()) {
    backlog = sockets_->retiringBacklog();
    handover_->quiet_polls = backlog == 0 ? handover_->quiet_polls + 1 : 0;
    quiet = elapsed >= kHandoverMinMs && handover_->quiet_polls >= kQuietPolls;
  }
  const bool up = handover_->fresh == nullptr || generationUp(*handover_->fresh, now);
  if ((quiet || elapsed >= kHandoverMaxMs) && (up || elapsed >= kUpMaxMs)) {
    if (!quiet) {
      spdlog::warn("retiring listen addresses: {} connections still queued or half-open after "
                   "{} ms; closing anyway (they are reset)", backlog, elapsed);
    }
    finishHandover(now, up);
  }
}

void Supervisor::finishHandover(int64_t now, bool fresh_up) {
  Generation* old = handover_->old;
  Generation* fresh = handover_->fresh;
  handover_.reset();
  if (old != nullptr && fresh_up) {
    // Every generation but the new one: also any left serving by a reload whose workers
    // did not come up.
    for (auto& gen : gens_) {
      if (gen.get() != fresh) {
        drain(*gen, now);
      }
    }
  } else if (old != nullptr) {
    spdlog::error("generation {}'s workers are not staying up (see above); generation {} keeps "
                  "serving alongside it until a reload succeeds", fresh->number, old->number);
  }
  if (stop_ == Stop::Graceful) {
    for (auto& gen : gens_) {
      drain(*gen, now);
    }
  }
  // Every worker still holding these sockets has been told to stop accepting (and closes
  // them); the master's copies go now.
  sockets_->closeRetiring();
  if (reload_pending_ && stop_ == Stop::None) {
    reload_pending_ = false;
    reload();
  }
  if (upgrade_requested_ && stop_ == Stop::None && !handover_) {
    beginUpgrade();
  }
}

}  // namespace weir::master
