#pragma once

#include <cstdint>

#include "config/config.h"
#include "shm/region.h"
#include "tls/contexts.h"

namespace weir::health {

// The health checker process's body. The master forks one checker (and respawns it if it
// dies) after creating the shm region and its BackendMap; the child calls this.
//
// Checks every backend of every pool that has a [health] table once per interval (see
// schedule.h), whatever the number of workers, and records each result in shm, where a
// transition is logged once; a backend in maintenance (shm::AdminState::Maint) is skipped.
// It also ends passive hold-downs in pools without [health], so it must run even if no pool
// has a [health] table.
//
// Single-threaded epoll loop; every check is a non-blocking Probe bounded by its timeout.
// Blocks and then waits on SIGTERM, SIGINT, SIGQUIT (exit 0) and SIGUSR1 (reopens the error
// log, with process tag "health") through a signalfd. Returns the exit code: 0 after a stop
// signal, 1 if it could not start (region missing a backend, no epoll/signalfd).
// `tls`: the generation's contexts, built by the master (which could still read root-only CA
// and client-key files); kind tls checks of a pool with [tls] use its context from there.
int runChecker(const config::Config& cfg, shm::ShmRegion& region,
               const tls::Contexts* tls = nullptr);

// CLOCK_MONOTONIC in milliseconds (the clock of every time stored in shm).
int64_t monotonicMs();

}  // namespace weir::health
