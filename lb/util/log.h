#pragma once

#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

namespace weir::util {

// Sets up the process-wide loggers: the error log ("weir", default logger) and the access log.
// error_log is "stderr" or a path; access_log is "off", "stderr" or a path. level is a spdlog
// level name; process_tag goes into every error-log line ("worker 2 (gen 5)").
// All or nothing: the new loggers are built first and swapped in only once every file opened.
// Throws std::runtime_error (an unknown level) or spdlog::spdlog_ex (a file that cannot be
// opened, with the path and the errno text); the previous loggers then stay as they were.
void setupLogging(const std::string& error_log, const std::string& access_log,
                  const std::string& level, const std::string& process_tag);

// SIGUSR1 (logrotate moved the files away): opens the files of the last successful
// setupLogging again by name. On failure the process keeps writing to the files it has and
// the result is the reason ("Failed opening file /var/log/weir/error.log for writing: Is a
// directory"), for the caller to log as an error. Never throws.
[[nodiscard]] std::optional<std::string> reopenLogs();

// Closes this process's log files: the error log falls back to stderr (same level), the
// access log is off. A freshly forked child calls it before closing every descriptor it does
// not know, so that no logger of the master's later closes a number the child reuses.
void closeLogFiles();

// The access logger, or nullptr when access_log = "off" (callers skip formatting entirely).
spdlog::logger* accessLog();

}  // namespace weir::util
