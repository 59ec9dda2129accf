#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace weir::master {

// The master's pid file, as nginx keeps it: written when the master is serving, renamed to
// PATH.oldbin by a master that starts a binary upgrade (the new master then writes PATH), and
// removed by the master that owns it when it exits. An empty path means no pid file.

// Writes `pid` atomically (a temporary file renamed over PATH). Throws std::runtime_error.
void writePidFile(const std::string& path, pid_t pid);
// The pid in PATH; nullopt if the file is missing or does not hold a positive number.
std::optional<pid_t> readPidFile(const std::string& path);
// Removes PATH if it still holds `pid` (a newer master may have written its own).
void removePidFile(const std::string& path, pid_t pid);
// PATH + ".oldbin".
std::string oldBinPath(const std::string& path);

}  // namespace weir::master
