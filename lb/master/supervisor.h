#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "master/generations.h"
#include "master/handover.h"
#include "master/http_server.h"
#include "master/listen_sockets.h"
#include "master/upgrade_flow.h"
#include "master/view.h"
#include "net/unique_fd.h"
#include "steer/steering.h"

namespace weir::master {

// The master process: owns the listening sockets and the steering program, and turns signals
// (read from a signalfd) into reloads, stops and upgrades. The three state machines it drives
// live apart: Generations (children, lib: generations.h), Handover (between a reload and the
// old generation's drain) and UpgradeFlow (a binary upgrade, the old master's side).
//
//   master.cc   start-up, the loop, signals, stops, start-up confirmation
//   reload.cc   SIGHUP: a new generation, then the hand-over
//   handoff.cc  SIGUSR2: starting an UpgradeFlow and acting on how it ends
//   observe.cc  the metrics listener: /metrics, /status.json and the status page
class Supervisor {
public:
  Supervisor(std::shared_ptr<const config::Config> cfg, std::vector<std::string> args);
  ~Supervisor();
  int run();

private:
  enum class Stop { None, Graceful, Fast, HandOff };

  // start-up and the loop (master.cc)
  void start();
  void onSignal(const signalfd_siginfo& si);
  void reap();
  void tick(int64_t now);
  int64_t nextTimeoutMs(int64_t now) const;
  bool finished() const;
  void reopenLogs();
  void beginGracefulStop();
  void beginFastStop();
  void confirmStarted(int64_t now);
  std::string status() const;

  // reload and the hand-over (reload.cc)
  void reload();
  void startGeneration(std::shared_ptr<const config::Config> next);
  void applyGlobal(const config::Config& next);
  void pollHandover(int64_t now);
  void finishHandover(int64_t now, bool fresh_up);

  // the metrics listener (observe.cc)
  void openMetrics(const config::Global& next, bool at_start);
  HttpResponse serveHttp(const std::string& path) const;
  View view() const;

  // binary upgrade (handoff.cc)
  void beginUpgrade();
  void pollUpgrade(int64_t now);
  void upgradeFailed(const std::string& why);
  void upgradeSucceeded(pid_t new_master);

  std::shared_ptr<const config::Config> cfg_;  // the configuration last applied
  std::vector<std::string> args_;              // the command line, for a binary upgrade
  std::unique_ptr<steer::Steering> steering_;
  std::unique_ptr<ListenSockets> sockets_;
  std::unique_ptr<Generations> gens_;
  net::UniqueFd signal_fd_;
  sigset_t mask_{};
  pid_t pid_ = 0;

  Stop stop_ = Stop::None;
  int64_t stop_kill_at_ = -1;  // fast stop: SIGKILL what is left then

  std::optional<Handover> handover_;
  bool reload_pending_ = false;  // SIGHUP while a reload still retires addresses

  std::unique_ptr<UpgradeFlow> upgrade_;
  pid_t successor_ = 0;             // the new master we handed over to
  bool upgrade_requested_ = false;  // SIGUSR2 while starting or retiring addresses

  // Start-up confirmation: READY once every child has run kConfirmMs without dying.
  bool confirmed_ = false;
  int64_t confirm_at_ = -1;
  int report_fd_ = -1;  // new master: the old master's pipe, told READY on confirmation
  std::string pid_file_;  // the pid file this master wrote

  std::unique_ptr<HttpServer> http_;  // global.metrics; null when off
  MasterCounters counters_;
};

}  // namespace weir::master
