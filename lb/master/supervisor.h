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
#include "master/listen_sockets.h"
#include "master/upgrade.h"
#include "net/unique_fd.h"
#include "shm/backend_map.h"
#include "shm/region.h"
#include "steer/steering.h"

namespace weir::master {

// At most this many generations of workers run at once (the serving one and those still
// draining after reloads). A reload that would start one more first stops the oldest
// draining generation at once (SIGTERM: its connections are closed).
inline constexpr size_t kMaxGenerations = 4;

// One supervised child process: a worker or a health checker.
struct Child {
  pid_t pid = 0;
  int64_t started_ms = 0;
  int64_t respawn_at = -1;  // >= 0: respawn due then
  unsigned crash_streak = 0;
};

// The workers and health checker started for one configuration. Each generation has its own
// shared-memory region (backend state carried over from the one before), so the counters of
// a draining generation's workers never mix with the serving one's.
struct Generation {
  uint64_t number = 0;
  std::shared_ptr<const config::Config> cfg;
  unsigned nworkers = 0;
  std::unique_ptr<shm::ShmRegion> region;
  std::unique_ptr<shm::BackendMap> backends;
  std::vector<Child> workers;  // index = worker slot
  Child checker;
  std::optional<unsigned> lane;  // the steering lane its workers count in (bpf/steer.h)
  bool draining = false;   // told to stop accepting (SIGQUIT); never respawned
  int64_t term_at = -1;    // drain_timeout reached: SIGTERM (closes what is left)
  int64_t kill_at = -1;    // then SIGKILL

  bool alive() const;
};

// The master process: owns the listening sockets, the steering program and the generations,
// and turns signals (read from a signalfd) into reloads, stops and upgrades.
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
  void tick(int64_t now);
  int64_t nextTimeoutMs(int64_t now) const;
  bool finished() const;
  void reopenLogs();
  void beginGracefulStop();
  void beginFastStop();
  std::string status() const;

  // children (children.cc)
  std::unique_ptr<Generation> makeGeneration(std::shared_ptr<const config::Config> cfg);
  void launch(Generation& gen);
  void spawnWorker(Generation& gen, unsigned slot);
  void spawnChecker(Generation& gen);
  [[noreturn]] void runWorker(Generation& gen, unsigned slot);
  [[noreturn]] void runChecker(Generation& gen);
  void enterChild(const Generation& gen, const std::string& title, bool pin, unsigned cpu);
  void reap();
  void onWorkerExit(Generation& gen, unsigned slot);
  void publishLive();
  void drain(Generation& gen, int64_t now);
  void signalAll(Generation& gen, int worker_sig, int checker_sig);
  Generation* serving() const;

  // reload and retiring addresses (reload.cc)
  void reload();
  void startGeneration(std::shared_ptr<const config::Config> next);
  void applyGlobal(const config::Config& next);
  void pollHandover(int64_t now);
  void finishHandover(int64_t now, bool fresh_up);
  bool generationUp(const Generation& gen, int64_t now) const;

  // binary upgrade (upgrade_flow.cc)
  void beginUpgrade();
  void pollUpgrade(int64_t now);
  void upgradeFailed(const std::string& why);
  void upgradeSucceeded(pid_t new_master);
  void confirmStarted(int64_t now);

  std::shared_ptr<const config::Config> cfg_;  // the configuration last applied
  std::vector<std::string> args_;              // the command line, for a binary upgrade
  std::unique_ptr<steer::Steering> steering_;
  std::unique_ptr<ListenSockets> sockets_;
  std::vector<std::unique_ptr<Generation>> gens_;  // oldest first; the last one serves
  uint64_t next_generation_ = 1;
  net::UniqueFd signal_fd_;
  sigset_t mask_{};
  pid_t pid_ = 0;

  Stop stop_ = Stop::None;
  int64_t stop_kill_at_ = -1;  // fast stop: SIGKILL what is left then

  // Between a reload and the old generation's drain: `old` keeps accepting until `fresh`
  // (the new generation) has stayed up for a moment and nothing is queued any more on the
  // listen addresses being retired. Also used by a graceful stop (old and fresh null) to
  // empty the queues before the workers stop accepting.
  struct Handover {
    int64_t started_ms = 0;
    unsigned quiet_polls = 0;
    Generation* old = nullptr;
    Generation* fresh = nullptr;
    int64_t next_poll_ms = 0;
  };
  std::optional<Handover> handover_;
  bool reload_pending_ = false;

  // Old master: the new binary started by SIGUSR2, until it reports.
  struct Upgrade {
    UpgradeChild child;
    std::string received;
    int64_t deadline_ms = 0;
  };
  std::optional<Upgrade> upgrade_;
  pid_t successor_ = 0;  // the new master we handed over to
  bool upgrade_requested_ = false;  // SIGUSR2 while starting or retiring addresses

  // Start-up confirmation: READY once every child has run kConfirmMs without dying.
  bool confirmed_ = false;
  int64_t confirm_at_ = -1;
  int report_fd_ = -1;  // new master: the old master's pipe, told READY on confirmation
  std::string pid_file_;  // the pid file this master wrote
};

}  // namespace weir::master
