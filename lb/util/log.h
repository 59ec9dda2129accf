#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace weir::util {

// Sets up the process-wide loggers: the error log ("weir", default logger) and the access log.
// error_log is "stderr" or a path; access_log is "off", "stderr" or a path. level is a spdlog
// level name. Throws std::runtime_error if a log file cannot be opened or the level is unknown.
void setupLogging(const std::string& error_log, const std::string& access_log,
                  const std::string& level, const std::string& process_tag);

// Closes this process's log files: the error log falls back to stderr (same level), the
// access log is off. A freshly forked child calls it before closing every descriptor it does
// not know, so that no logger of the master's later closes a number the child reuses.
void closeLogFiles();

// The access logger, or nullptr when access_log = "off" (callers skip formatting entirely).
spdlog::logger* accessLog();

}  // namespace weir::util
