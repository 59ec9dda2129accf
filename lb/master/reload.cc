// SIGHUP or weirctl reload: a new generation on the same sockets, the old one drained;
// retiring listen addresses a reload removed.
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
namespace {

std::string joinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace

Supervisor::ReloadResult Supervisor::reload(ReloadBy by) {
  const char* const who = by == ReloadBy::Signal ? "SIGHUP" : "weirctl reload";
  auto refuse = [who](const std::string& why) {
    spdlog::warn("{} ignored: {}", who, why);
    return ReloadResult{false, why};
  };
  if (stop_ != Stop::None) {
    return refuse("stopping");
  }
  if (upgrade_) {
    return refuse("a binary upgrade is in progress");
  }
  winch_pending_ = false;  // a SIGHUP after a SIGWINCH means workers again
  if (handover_ && sockets_->anyRetiring()) {
    // One reload at a time: the previous one is still retiring listen addresses. A signal
    // is queued; weirctl is refused, as it could not report a reload that runs later.
    if (by == ReloadBy::Control) {
      return refuse(reload_pending_
                        ? "a reload (SIGHUP) is already queued until the previous one has "
                          "closed its old addresses"
                        : "the previous reload is still closing the listen addresses it "
                          "removed; try again in a moment");
    }
    reload_pending_ = true;
    spdlog::info("SIGHUP: reload queued until the previous one has closed its old addresses");
    return {true, "queued"};
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
  spdlog::info("{}: reloading {}", who, cfg_->path);
  ReloadResult result = reloadFrom(cfg_->path);
  notifyReady(status());
  return result;
}

// Reads, checks and applies the config at `path`: a copy, as the caller's is often
// cfg_->path, and applying the config replaces cfg_, which may free the old one (when no
// draining generation holds it, as after SIGWINCH). Every failure leaves the old
// configuration serving untouched, and is logged and returned with the problems, one per
// line.
Supervisor::ReloadResult Supervisor::reloadFrom(std::string path) {
  auto failed = [this](std::vector<std::string> problems, const std::string& summary) {
    for (const auto& problem : problems) {
      spdlog::error("{}", problem);
    }
    const std::string line = "reload failed: " + summary + "; " + keptServing();
    spdlog::error("{}", line);
    problems.push_back(line);
    ++counters_.reloads_failed;
    return ReloadResult{false, joinLines(problems)};
  };
  std::shared_ptr<const config::Config> next;
  try {
    next = std::make_shared<const config::Config>(config::load(path));
  } catch (const config::ConfigError& e) {
    return failed(e.messages(),
                  path + " has " + std::to_string(e.messages().size()) + " problem(s)");
  } catch (const std::exception& e) {
    // Anything else reading the file can throw (out of memory): the old config still serves.
    return failed({}, path + ": " + e.what());
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
    return failed(files.errors, "the files " + path + " names have " +
                                    std::to_string(files.errors.size()) + " problem(s)");
  }
  try {
    const Generation& fresh = startGeneration(std::move(next));
    return {true, "reloaded " + path + ": generation " + std::to_string(fresh.number) +
                      " with " + std::to_string(fresh.nworkers) + " workers started"};
  } catch (const std::exception& e) {
    return failed({}, e.what());
  }
}

std::string Supervisor::keptServing() const {
  if (const Generation* gen = gens_->serving()) {
    return "still serving the previous configuration (generation " + std::to_string(gen->number) +
           ")";
  }
  return "the workers stay stopped (SIGWINCH)";
}

// Settings the master itself uses. Log files are switched last and only warn on failure:
// the new generation is already running by then.
void Supervisor::applyGlobal(const config::Config& next) {
  const config::Global& old = cfg_->global;
  const config::Global& now = next.global;
  control_moved_ = now.control_socket != old.control_socket || now.gid != old.gid;
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

const Generation& Supervisor::startGeneration(std::shared_ptr<const config::Config> next) {
  Generation* old = gens_->serving();
  // Everything that can fail comes first, and changes nothing the old generation uses if it
  // does: the new shm region, then any new listening sockets.
  std::unique_ptr<Generation> gen = gens_->make(next);
  // Before any child maps it: what the operator set with weirctl holds in the new generation.
  admin_.applyTo(*gen->region);
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
  // while listen addresses retire, and retries of connections already under way. Their
  // admin states go: a backend that comes back later is a new backend.
  for (const std::string& dropped : admin_.prune(*next)) {
    spdlog::info("admin state of {} dropped: the backend is no longer configured", dropped);
  }
  cfg_ = next;
  // Addresses `next` no longer binds stop taking handshakes now; they are closed when the
  // hand-over ends.
  sockets_->retire(next.get());
  spdlog::info("reloaded: generation {} with {} workers ({} before), {} listeners, {} pools",
               fresh.number, fresh.nworkers, old ? old->nworkers : 0, next->listeners.size(),
               next->pools.size());
  ++counters_.reloads;
  if (old != nullptr) {
    handover_.emplace(now, old, &fresh);
  }
  return fresh;
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
    (void)reload(ReloadBy::Signal);
  }
  if (winch_pending_ && stop_ == Stop::None && !handover_) {
    stopWorkers();
  }
  if (upgrade_requested_ && stop_ == Stop::None && !handover_) {
    beginUpgrade();
  }
}

}  // namespace weir::master
