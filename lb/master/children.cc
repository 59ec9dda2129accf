// What a forked child runs: a worker or the health checker of one generation.
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "health/checker.h"
#include "master/child_fds.h"
#include "master/generations.h"
#include "master/privileges.h"
#include "master/proc_title.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

// What every child does first, in this order: take its title, close every fd of the master's
// but its own listening sockets `keep` (the caller's closeAllExcept left only those open), let
// go of the master's signal handling (TERM/INT/QUIT/USR1 stay blocked for the child's own
// signalfd), open its logs (still root, so that the paths may be root's), raise its fd limit,
// set its core limit and nice value (worker_rlimit_core, worker_priority: as nginx does, for
// every child; root may raise both), pin itself, drop root and every capability (workers of a
// source = "client" pool keep CAP_NET_ADMIN), enter working_directory as its own user (and
// become dumpable if cores were asked for), and only then ask to die with the master (a
// credential change clears PR_SET_PDEATHSIG).
void enterChild(const config::Global& g, const std::vector<int>& keep, const std::string& title,
                bool pin, unsigned cpu, pid_t master, bool keep_net_admin = false) {
  setProcessTitle(title);  // first: ps (and the tests) tell the role at once
  closeInheritedFds(keep);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGUSR2, SIG_IGN);
  ::signal(SIGWINCH, SIG_IGN);
  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : {SIGCHLD, SIGHUP, SIGUSR2, SIGWINCH}) {
    sigaddset(&unblock, sig);
  }
  ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  std::string tag = title.substr(title.find(' ') + 1);  // "worker 2 (gen 5)"
  util::setupLogging(g.error_log, g.access_log, g.log_level, tag);
  applyFileLimit(g.worker_rlimit_nofile);
  applyCoreLimit(g.worker_rlimit_core);
  applyPriority(g.worker_priority);
  if (pin) {
    pinToCpu(cpu);
  }
  if (keep_net_admin && hasCapability(CAP_NET_ADMIN)) {
    dropPrivileges(g, {CAP_NET_ADMIN});
  } else {
    if (keep_net_admin) {
      spdlog::error("a pool has source = \"client\", which needs CAP_NET_ADMIN, and the master "
                    "does not have it: connections to its backends will fail");
    }
    dropPrivileges(g);
  }
  prepareForCores(g);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != master) {
    ::_exit(1);  // the master died before PDEATHSIG was set
  }
}

}  // namespace

void Generations::runWorker(Generation& gen, unsigned slot) {
  int rc = 1;
  try {
    if (child_cleanup_) {
      child_cleanup_();
    }
    std::vector<worker::ListenSocket> mine = sockets_.socketsFor(*gen.cfg, slot, gen.nworkers);
    sockets_.closeAllExcept(mine);
    enterChild(gen.cfg->global, sockets_.fds(),
               "weir: worker " + std::to_string(slot) + " (gen " + std::to_string(gen.number) +
                   ")",
               gen.cfg->global.worker_cpu_affinity, slot, master_pid_, workersKeepNetAdmin(*gen.cfg));
    gen.backends->setWorker(slot);
    const bool counted = steering_.active() && gen.cfg->global.steering != config::Steering::Hash;
    worker::Worker w(*gen.cfg, slot, std::move(mine),
                     steer::SlotLoad(steering_.state(), slot, gen.lane, counted), *gen.backends,
                     gen.region->worker(slot), gen.tls, gen.workers[slot].holds.get());
    rc = w.run();
  } catch (const std::exception& e) {
    spdlog::critical("worker {}: {}", slot, e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(rc);
}

void Generations::runChecker(Generation& gen) {
  int rc = 1;
  try {
    if (child_cleanup_) {
      child_cleanup_();
    }
    sockets_.closeAllExcept({});  // the checker accepts nothing
    enterChild(gen.cfg->global, {}, "weir: health checker", false, 0, master_pid_);
    rc = health::runChecker(*gen.cfg, *gen.region, gen.tls.get());
  } catch (const std::exception& e) {
    spdlog::critical("health checker: {}", e.what());
  }
  spdlog::default_logger()->flush();
  ::_exit(rc);
}

}  // namespace weir::master
