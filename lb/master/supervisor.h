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
#include "control/reply.h"
#include "control/request.h"
#include "master/admin_states.h"
#include "master/announce.h"
#include "master/control_socket.h"
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
//   master.cc   start-up, the loop, signals, stops (and SIGWINCH), start-up confirmation
//   reload.cc   SIGHUP (or weirctl reload): a new generation, then the hand-over
//   handoff.cc  SIGUSR2: starting an UpgradeFlow and acting on how it ends
//   commands.cc the control socket's requests (weirctl), admin states
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
  void stopWorkers();
  // SIGWINCH stopped the workers and no SIGHUP has started new ones: no generation serves,
  // yet the master is not stopping.
  bool parked() const;
  void confirmStarted(int64_t now);
  std::string status() const;
  // A graceful stop's first step when VIP routes are announced: withdraw them, keep serving
  // for withdraw_delay, then drain (drainForStop).
  void drainForStop();

  // announced VIP routes (announce_routes.cc)
  // Whether this master has routes to look after: the config announces a listener, or routes
  // are still in the table from an earlier config.
  bool announcing() const;
  // The routes this master wants now; `why_not` says why the others of the config are not.
  Announcer::Routes wantedRoutes(std::string* why_not) const;
  // Makes the table match wantedRoutes(), at most every kRouteSyncMs unless `now_too`.
  void syncRoutes(int64_t now, bool now_too = false);

  // reload and the hand-over (reload.cc)
  // What a reload did, for weirctl: ok (a new generation started, or a SIGHUP queued), or
  // why not: the config's problems (FILE:LINE:COL: ...), one per line, then a summary.
  struct ReloadResult {
    bool ok = false;
    std::string message;
  };
  enum class ReloadBy { Signal, Control };
  // A SIGHUP that comes while the previous reload still retires addresses is queued; a
  // weirctl reload is refused then.
  ReloadResult reload(ReloadBy by);
  ReloadResult reloadFrom(std::string path);
  // What serves after a failed reload: "still serving the previous configuration (generation
  // N)", or, parked, that the workers stay stopped.
  std::string keptServing() const;
  const Generation& startGeneration(std::shared_ptr<const config::Config> next);
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

  // the control socket (commands.cc)
  control::Reply onRequest(const control::Request& request);
  control::Reply setAdmin(const control::Request& request);
  // status and backends: rendered from a View (view.h), as text or JSON.
  control::Reply showView(const control::Request& request);
  // Opens, moves or closes the control socket to match cfg_: at start (failing throws), and
  // after a reload that changed it (a failure is logged and the old socket kept), from the
  // loop rather than from inside a request, which runs within the socket's own onPoll.
  // `take_over`: see ControlSocket (the path of this master's own socket is always taken).
  void syncControlSocket(bool take_over);

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
  bool winch_pending_ = false;   // SIGWINCH before ready, or while a reload retires addresses

  AdminStates admin_;  // weirctl drain/disable, applied to every generation's region
  MasterCounters counters_;  // what only the master counts (view.h)
  std::unique_ptr<ControlSocket> control_;
  bool control_moved_ = false;  // a reload changed control_socket (or the children's group)

  std::unique_ptr<UpgradeFlow> upgrade_;
  pid_t successor_ = 0;             // the new master we handed over to
  bool upgrade_requested_ = false;  // SIGUSR2 while starting or retiring addresses

  // Start-up confirmation: READY once every child has run kConfirmMs without dying.
  bool confirmed_ = false;
  int64_t confirm_at_ = -1;
  int report_fd_ = -1;  // new master: the old master's pipe, told READY on confirmation
  std::string pid_file_;  // the pid file this master wrote

  std::unique_ptr<HttpServer> http_;  // global.metrics; null when off

  Announcer announcer_;
  int64_t next_route_sync_ = -1;
  // A graceful stop waiting for the routers to converge on the withdrawal: the drain begins
  // then; until then the workers serve as before.
  int64_t withdraw_until_ = -1;
};

}  // namespace weir::master
