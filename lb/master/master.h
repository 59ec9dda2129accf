#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace weir::master {

// Runs the appliance in the foreground: binds every listen address (one SO_REUSEPORT socket
// per worker slot; or takes them over from an old master in a binary upgrade), loads the
// steering program, forks the workers and the health checker and supervises them:
//   HUP reload, QUIT graceful stop, TERM/INT fast stop, USR1 reopen logs, USR2 binary upgrade,
//   WINCH stop the workers gracefully but keep the master and its sockets (HUP starts new ones).
// `args` is the command line as started (a binary upgrade execs it again). Returns the
// process exit code; throws std::runtime_error for start-up failures (bind, pid file, logging).
int run(const config::Config& cfg, std::vector<std::string> args);

}  // namespace weir::master
