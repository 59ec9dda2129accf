#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "tls/contexts.h"
#include "master/listen_sockets.h"
#include "shm/backend_map.h"
#include "shm/carry_over.h"
#include "shm/region.h"
#include "steer/client_limits.h"
#include "steer/steering.h"

namespace weir::master {

// At most this many generations holding connections run at once (the serving one and those
// still draining after reloads). A reload that would start one more first stops the oldest
// draining generation that holds connections (SIGTERM: its connections are closed).
// Generations whose workers hold nothing are not counted: they are on their way out.
inline constexpr size_t kMaxGenerations = 4;

// One supervised child process: a worker or a health checker.
struct Child {
  pid_t pid = 0;
  int64_t started_ms = 0;
  int64_t respawn_at = -1;  // >= 0: respawn due then
  unsigned crash_streak = 0;
  // A worker's record of the connections it holds against max_connections_per_client (only
  // when a listener has one), handed back to the steering state when it dies.
  std::shared_ptr<steer::ClientHolds> holds;
};

// The workers and health checker started for one configuration. Each generation has its own
// shared-memory region (backend state carried over from the one before), so the counters of
// a draining generation's workers never mix with the serving one's, and its own steering
// lane.
struct Generation {
  uint64_t number = 0;
  std::shared_ptr<const config::Config> cfg;
  unsigned nworkers = 0;
  std::unique_ptr<shm::ShmRegion> region;
  std::unique_ptr<shm::BackendMap> backends;
  // OpenSSL contexts (certificates and keys read by the master, before any fork), null when
  // the config has no TLS.
  std::shared_ptr<const tls::Contexts> tls;
  std::vector<Child> workers;  // index = worker slot
  Child checker;
  std::optional<unsigned> lane;  // the steering lane its workers count in (bpf/steer.h)
  bool draining = false;   // told to stop accepting (SIGQUIT); never respawned
  int64_t term_at = -1;    // drain_timeout reached: SIGTERM (closes what is left)
  int64_t kill_at = -1;    // then SIGKILL
  int64_t checker_kill_at = -1;  // a draining generation's checker that ignores SIGTERM

  bool alive() const;
  bool workersAlive() const;
};

// "exited with status 1", "killed by signal 9": a waitpid status for the log.
std::string describeExit(int status);

// Carries health state from `from` into `to` (shm::carryOver) and logs what it did, naming
// `source` ("generation 3", "the old master"). Returns the report (its admin states).
// Sets Header::names_unanswered of gen's region when a backend name of its config has no
// address in any of its slots (a first start, a name a reload adds, or an upgrade from a
// master that had none), so that its workers hold back accepting on the listeners that serve
// such a name until the checker's first answers; clears it otherwise.
// Before gen's children are forked.
void holdAcceptsForNames(const Generation& gen);

shm::CarryReport carryHealth(const shm::ShmRegion& from, shm::ShmRegion& to,
                             const std::string& source);

// Client connections closed by force because a generation was stopped before they ended
// (what its workers reported open at that moment).
struct CutConnections {
  uint64_t drain_timeout = 0;     // a draining generation reached drain_timeout
  uint64_t generation_limit = 0;  // stopped to keep at most kMaxGenerations holding connections
};

// The generations of one master and their children: making a generation (shm region, carried
// health state), forking and respawning its children, reaping them (and retiring what a dead
// worker counted), draining generations and bounding how many run. Single-threaded, in the
// master's loop.
class Generations {
public:
  // first_number: the number the next generation gets (a binary upgrade keeps counting).
  Generations(ListenSockets& sockets, steer::Steering& steering, uint64_t first_number);

  // Runs first in every freshly forked child, before anything else: closes what only the
  // master may hold (its signalfd, an upgrade's pipe).
  void setChildCleanup(std::function<void()> cleanup) { child_cleanup_ = std::move(cleanup); }

  // A generation for `cfg`, not started: its TLS contexts, its region with health state
  // carried over from the serving generation. Throws std::runtime_error if a certificate or
  // key cannot be used or the region cannot be made.
  std::unique_ptr<Generation> make(std::shared_ptr<const config::Config> cfg) const;
  // Makes room (kMaxGenerations), numbers `gen`, gives it a steering lane, forks its children;
  // it is the serving generation from now on. Returns it.
  Generation& launch(std::unique_ptr<Generation> gen, int64_t now);

  // The newest generation unless it is draining.
  Generation* serving() const;
  uint64_t nextNumber() const { return next_number_; }
  bool empty() const { return gens_.empty(); }
  const CutConnections& cut() const { return cut_; }
  // Every generation still known, oldest first (for reporting: view.h).
  const std::vector<std::unique_ptr<Generation>>& all() const { return gens_; }
  bool anyAlive() const;
  // Draining generations with children still running.
  size_t drainingAlive() const;
  // Every worker of `gen` has run `ms` without dying.
  bool up(const Generation& gen, int64_t now, int64_t ms) const;
  // Some worker of `gen` is dead or has been crashing.
  bool failing(const Generation& gen) const;
  // The youngest start time among `gen`'s children (now for one not running).
  int64_t youngestStart(const Generation& gen, int64_t now) const;

  // Tells `gen`'s workers to stop accepting and exit when their connections end (after
  // `timeout` what is left is closed); its checker stops now. Idempotent.
  void drain(Generation& gen, int64_t now, config::Duration timeout);
  // drain() for every generation but `keep` (nullptr: all).
  void drainAllBut(const Generation* keep, int64_t now, config::Duration timeout);
  // Fast stop: SIGTERM to every child, nothing respawns.
  void terminateAll();
  // SIGKILL to every child still running; returns how many generations had some.
  size_t killAll();
  // `sig` to every child of every generation (SIGUSR1: reopen logs).
  void signalEveryChild(int sig);
  // Writes an admin state into the region of every generation that has the backend: the
  // serving one, and older ones, which may still accept during a hand-over.
  void setAdmin(std::string_view pool, std::string_view address, shm::AdminState state);
  // In every generation's region: an up backend of that key ramps from now_ms on (slow
  // start), as on `weirctl enable` (shm::ShmRegion::restartRamp).
  void restartRamp(std::string_view pool, std::string_view address, int64_t now_ms);

  // A child exited (status from waitpid). `respawn`: the serving generation's children are
  // respawned (not while stopping). Returns false when `pid` is none of ours.
  bool onExit(pid_t pid, int status, int64_t now, bool respawn);
  // Due respawns (when `respawn`), drain deadlines, and generations that have finished
  // draining are forgotten (their lanes freed), except `keep`.
  void tick(int64_t now, bool respawn, const Generation* keep);
  // The earliest deadline of tick(), or -1.
  int64_t nextDeadline() const;

  // The steering program sends new connections only to slots whose serving worker runs.
  // Stops doing so once `handed_off` (a new master steers).
  void publishLive();
  void setHandedOff() { handed_off_ = true; }

private:
  void spawnWorker(Generation& gen, unsigned slot);
  void spawnChecker(Generation& gen);
  void signalAll(Generation& gen, int worker_sig, int checker_sig);
  void makeRoom(int64_t now);
  int64_t connectionsOf(const Generation& gen, std::string* detail) const;
  [[noreturn]] void runWorker(Generation& gen, unsigned slot);
  [[noreturn]] void runChecker(Generation& gen);

  ListenSockets& sockets_;
  steer::Steering& steering_;
  std::vector<std::unique_ptr<Generation>> gens_;  // oldest first; the last one serves
  uint64_t next_number_;
  pid_t master_pid_;
  std::function<void()> child_cleanup_;
  bool handed_off_ = false;
  CutConnections cut_;
  // Session ticket key chains, kept across generations (make() is logically const: the
  // chains only move forward in time).
  mutable tls::TicketStore tickets_;
};

}  // namespace weir::master
