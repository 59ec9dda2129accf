// SIGUSR2, the old master's side: start the new binary on our sockets, wait for it to report,
// then drain and exit, or carry on serving if it fails.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "master/notify.h"
#include "master/pid_file.h"
#include "master/supervisor.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int64_t kUpgradeTimeoutMs = 20000;  // the new master must be ready by then
constexpr int64_t kExitStatusWaitMs = 1000;   // after EOF: wait this long for its exit status

}  // namespace

void Supervisor::beginUpgrade() {
  if (stop_ != Stop::None) {
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
  try {
    UpgradeChild child =
        startUpgrade(args_, sockets_->inheritSpec(), sockets_->fds(), steering_->mapFds(),
                     next_generation_);
    spdlog::info("new master pid {} started; waiting for it to report ready", child.pid);
    upgrade_ = Upgrade{std::move(child), "", worker::monotonicMs() + kUpgradeTimeoutMs};
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
  bool eof = !upgrade_->child.report;
  for (int i = 0; i < 8 && upgrade_->child.report; ++i) {
    char buf[256];
    ssize_t n = ::read(upgrade_->child.report.get(), buf, sizeof(buf));
    if (n > 0) {
      upgrade_->received.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      upgrade_->child.report.reset();  // every copy of the write end is closed
      eof = true;
    }
    break;
  }
  const std::string& got = upgrade_->received;
  int value = 0;
  if (size_t at = got.find("READY "); at != std::string::npos &&
                                      std::sscanf(got.c_str() + at, "READY %d", &value) == 1) {
    upgradeSucceeded(static_cast<pid_t>(value));
    return;
  }
  if (size_t at = got.find("EXEC "); at != std::string::npos &&
                                     std::sscanf(got.c_str() + at, "EXEC %d", &value) == 1) {
    upgradeFailed("cannot exec " + args_.front() + ": " + std::strerror(value));
    return;
  }
  if (size_t at = got.find("EXITED "); at != std::string::npos) {
    upgradeFailed("the new master " + got.substr(at + 7, got.find('\n', at) - at - 7) +
                  " before it was ready (its own messages say why)");
    return;
  }
  if (eof && upgrade_->deadline_ms > now + kExitStatusWaitMs) {
    upgrade_->deadline_ms = now + kExitStatusWaitMs;  // closed the pipe: exiting, most likely
  }
  if (now >= upgrade_->deadline_ms) {
    upgradeFailed(eof ? "the new master closed its report pipe without being ready"
                      : "the new master was not ready within " +
                            std::to_string(kUpgradeTimeoutMs / 1000) + " s");
  }
}

void Supervisor::upgradeFailed(const std::string& why) {
  spdlog::error("binary upgrade failed: {}; this master (pid {}) keeps serving", why, pid_);
  if (upgrade_->child.pid > 0) {
    ::kill(upgrade_->child.pid, SIGTERM);  // reaped (and ignored) later
  }
  upgrade_.reset();
  if (!pid_file_.empty()) {
    (void)std::rename(oldBinPath(pid_file_).c_str(), pid_file_.c_str());
  }
  // The new master may have attached its program, grown the groups and changed the worker
  // count before it failed: put this master's view back.
  sockets_->reattach();
  if (const Generation* gen = serving()) {
    steering_->setWorkers(gen->nworkers);
  }
  publishLive();
  (void)steering_->setMode(cfg_->global.steering);
}

void Supervisor::upgradeSucceeded(pid_t new_master) {
  successor_ = upgrade_->child.pid > 0 ? upgrade_->child.pid : new_master;
  upgrade_.reset();
  spdlog::info("new master pid {} is serving; draining this master's workers, then exiting",
               new_master);
  // We are still systemd's main process: name the new one before we go.
  notifySystemd("MAINPID=" + std::to_string(new_master));
  stop_ = Stop::HandOff;
  const int64_t now = worker::monotonicMs();
  for (auto& gen : gens_) {
    drain(*gen, now);
  }
}

}  // namespace weir::master
