#pragma once

#include "config/config.h"

namespace weir::master {

// Runs the appliance in the foreground: binds every listen address (one SO_REUSEPORT socket
// per worker slot), loads the steering program, forks the workers and supervises them until
// SIGTERM/SIGINT (fast stop) or SIGQUIT (graceful stop). Returns the process exit code;
// throws std::runtime_error for start-up failures (bind, pid file, logging).
int run(const config::Config& cfg);

}  // namespace weir::master
