#pragma once

#include <string>

#include "config/config.h"

namespace weir::master {

// `weir -s reload|quit|stop|reopen`: sends HUP, QUIT, TERM or USR1 to the master whose pid is
// in cfg's pid file, as nginx -s does. Returns the exit code (0 sent; 1 no pid file / no such
// process; 2 unknown action) after printing any problem to stderr.
int sendControlSignal(const config::Config& cfg, const std::string& action);

// The signal for an action name, or 0.
int controlSignal(const std::string& action);

}  // namespace weir::master
