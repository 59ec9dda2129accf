// SIGUSR2, the old master's side: start the new binary on our sockets, wait for it to report,
// then drain and exit, or carry on serving if it fails.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "master/notify.h"
#include "master/pid_file.h"
#include "master/supervisor.h"
#include "worker/worker.h"

namespace weir::master {

void Supervisor::beginUpgrade() {
  if (stop_ != Stop::None || withdraw_until_ >= 0) {
    spdlog::warn("SIGUSR2 ignored: stopping");
    return;
  }
  if (upgrade_) {
    spdlog::warn("SIGUSR2 ignored: a binary upgrade is already in progress");
    return;
  }
  if (handover_ || !confirmed_) {
    // Started once the workers are confirmed up / the old addresses are closed.
    upgrade_requested_ = true;
    spdlog::info("SIGUSR2: the upgrade starts once {}",
                 handover_ ? "the reload has closed its old addresses" : "this master is ready");
    return;
  }
  upgrade_requested_ = false;
  spdlog::info("SIGUSR2: starting {} with the listening sockets", args_.front());
  if (!pid_file_.empty() && std::rename(pid_file_.c_str(), oldBinPath(pid_file_).c_str()) != 0) {
    spdlog::warn("rename {} to {}: {}", pid_file_, oldBinPath(pid_file_), std::strerror(errno));
  }
  // The serving generation's region goes along: the new master carries its health state over.
  const Generation* serving = gens_->serving();
  const int shm_fd = serving != nullptr ? serving->region->fd() : -1;
  try {
    upgrade_ = std::make_unique<UpgradeFlow>(args_, sockets_->inheritSpec(), sockets_->fds(),
                                             steering_->mapFds(), shm_fd, gens_->nextNumber(),
                                             worker::monotonicMs());
    spdlog::info("new master pid {} started; waiting for it to report ready", upgrade_->pid());
  } catch (const std::exception& e) {
    upgrade_.reset();
    if (!pid_file_.empty()) {
      (void)std::rename(oldBinPath(pid_file_).c_str(), pid_file_.c_str());
    }
    spdlog::error("binary upgrade failed: {}; this master keeps serving", e.what());
  }
}

void Supervisor::pollUpgrade(int64_t now) {
  if (!upgrade_) {
    return;
  }
  pid_t new_master = 0;
  std::string why;
  switch (upgrade_->poll(now, &new_master, &why)) {
    case UpgradeFlow::State::Waiting:
      return;
    case UpgradeFlow::State::Ready:
      upgradeSucceeded(new_master);
      return;
    case UpgradeFlow::State::Failed:
      upgradeFailed(why);
      return;
  }
}

void Supervisor::upgradeFailed(const std::string& why) {
  spdlog::error("binary upgrade failed: {}; this master (pid {}) keeps serving", why, pid_);
  upgrade_->abandon();  // reaped (and ignored) later
  upgrade_.reset();
  if (!pid_file_.empty()) {
    (void)std::rename(oldBinPath(pid_file_).c_str(), pid_file_.c_str());
  }
  // The new master may have attached its program, grown the groups, changed the worker count
  // and the live slots before it failed: put this master's view back.
  sockets_->reattach();
  if (const Generation* gen = gens_->serving()) {
    steering_->setWorkers(gen->nworkers);
  }
  (void)steering_->setMode(cfg_->global.steering);
  gens_->publishLive();
  // The new master may have renamed its own socket over the path before it failed.
  if (control_) {
    if (std::string why = control_->rebind(); !why.empty()) {
      spdlog::error("{}; weirctl cannot reach this master", why);
    }
  }
}

void Supervisor::upgradeSucceeded(pid_t new_master) {
  successor_ = upgrade_->pid() > 0 ? upgrade_->pid() : new_master;
  upgrade_.reset();
  spdlog::info("new master pid {} is serving; draining this master's workers, then exiting",
               new_master);
  // We are still systemd's main process: name the new one before we go.
  notifySystemd("MAINPID=" + std::to_string(new_master));
  stop_ = Stop::HandOff;
  announcer_.forget();  // the VIP routes are the new master's now (it took them over as ready)
  gens_->setHandedOff();
  if (control_) {
    control_->handOff();  // the new master answers at the path now; it is not ours to remove
  }
  gens_->drainAllBut(nullptr, worker::monotonicMs(), cfg_->global.drain_timeout);
}

}  // namespace weir::master
