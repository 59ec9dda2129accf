// SIGHUP: a new generation on the same sockets, the old one drained; retiring listen
// addresses a reload removed.
#include <ctime>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "master/notify.h"
#include "master/pid_file.h"
#include "master/privileges.h"
#include "master/supervisor.h"
#include "master/transparent_setup.h"
#include "tls/cert_check.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::master {

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
    const Generation* fresh = handover_->fresh();
    finishHandover(worker::monotonicMs(), fresh == nullptr || !gens_->failing(*fresh));
  }
  // Children that exited since the last signal are reaped before the new generation counts
  // how many hold connections.
  reap();
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
                  cfg_->path, e.messages().size(),
                  gens_->serving() ? gens_->serving()->number : 0);
    ++counters_.reloads_failed;
    notifyReady(status());
    return;
  } catch (const std::exception& e) {
    // Anything else reading the file can throw (out of memory): the old config still serves.
    spdlog::error("reload failed: {}: {}; still serving the previous configuration", cfg_->path,
                  e.what());
    ++counters_.reloads_failed;
    notifyReady(status());
    return;
  }
  // Parsing only recorded the paths of certificates and keys: a missing or mismatched file
  // fails the reload here, like a config error, before anything changes.
  const tls::CertReport files = tls::checkCertificates(*next, std::time(nullptr));
  for (const auto& warning : files.warnings) {
    spdlog::warn("{}", warning);
  }
  for (const auto& info : files.info) {
    spdlog::debug("{}", info);
  }
  if (!files.ok()) {
    for (const auto& error : files.errors) {
      spdlog::error("{}", error);
    }
    spdlog::error("reload failed: the files {} names have {} problem(s); still serving the "
                  "previous configuration (generation {})",
                  cfg_->path, files.errors.size(),
                  gens_->serving() ? gens_->serving()->number : 0);
    ++counters_.reloads_failed;
    notifyReady(status());
    return;
  }
  try {
    startGeneration(std::move(next));
    ++counters_.reloads;
  } catch (const std::exception& e) {
    spdlog::error("reload failed: {}; still serving the previous configuration (generation {})",
                  e.what(), gens_->serving() ? gens_->serving()->number : 0);
    ++counters_.reloads_failed;
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
  if (now.metrics != old.metrics) {
    openMetrics(now, false);
  }
  if (!steering_->setMode(now.steering)) {
    spdlog::warn("steering = \"{}\" needs the BPF program, which this master has not loaded; "
                 "the kernel's hash spreads connections until a restart or binary upgrade",
                 now.steering == config::Steering::LeastLoaded ? "least-loaded" : "round-robin");
  }
}

void Supervisor::startGeneration(std::shared_ptr<const config::Config> next) {
  Generation* old = gens_->serving();
  // Everything that can fail comes first, and changes nothing the old generation uses if it
  // does: the new shm region, then any new listening sockets.
  std::unique_ptr<Generation> gen = gens_->make(next);
  logChildCredentials(*next);
  logTransparentSetup(*next);
  handOverFile(next->global.error_log, next->global);
  handOverFile(next->global.access_log, next->global);
  sockets_->open(*next, gen->nworkers);

  const int64_t now = worker::monotonicMs();
  Generation& fresh = gens_->launch(std::move(gen), now);
  // The new workers exist (or are queued for respawn), so the program may send them
  // connections: every group has at least nworkers sockets by now.
  steering_->setWorkers(fresh.nworkers);
  applyGlobal(*next);

  // Backends the new configuration dropped are simply not in the new generation's region.
  // The old generation keeps using them for what it still serves: connections it accepts
  // while listen addresses retire, and retries of connections already under way.
  cfg_ = next;
  // Addresses `next` no longer binds stop taking handshakes now; they are closed when the
  // hand-over ends.
  sockets_->retire(next.get());
  spdlog::info("reloaded: generation {} with {} workers ({} before), {} listeners, {} pools",
               fresh.number, fresh.nworkers, old ? old->nworkers : 0, next->listeners.size(),
               next->pools.size());
  if (old == nullptr) {
    return;
  }
  handover_.emplace(now, old, &fresh);
}

void Supervisor::pollHandover(int64_t now) {
  bool fresh_up = false;
  if (handover_ && handover_->poll(now, *sockets_, *gens_, &fresh_up)) {
    counters_.retired_queue_reset += static_cast<uint64_t>(handover_->abandoned());
    finishHandover(now, fresh_up);
  }
}

void Supervisor::finishHandover(int64_t now, bool fresh_up) {
  Generation* old = handover_->old();
  Generation* fresh = handover_->fresh();
  handover_.reset();
  const config::Duration timeout = cfg_->global.drain_timeout;
  if (old != nullptr && fresh_up) {
    // Every generation but the new one: also any left serving by a reload whose workers
    // did not come up.
    gens_->drainAllBut(fresh, now, timeout);
  } else if (old != nullptr) {
    spdlog::error("generation {}'s workers are not staying up (see above); generation {} keeps "
                  "serving alongside it until a reload succeeds", fresh->number, old->number);
  }
  if (stop_ == Stop::Graceful) {
    gens_->drainAllBut(nullptr, now, timeout);
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
