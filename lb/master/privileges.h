#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "config/config.h"

namespace weir::master {

// What a child (worker or health checker) does to itself right after fork, in this order:
// raise its descriptor limit, pin itself to a CPU, then give up root. Each throws
// std::runtime_error naming the step and the errno.

// setrlimit(RLIMIT_NOFILE) to `limit` (soft and hard: the master, still root, may raise the
// hard limit). nullopt: unchanged.
void applyFileLimit(std::optional<uint64_t> limit);

// Pins the calling process to the index-th CPU (modulo their number) of the CPUs it is
// allowed to run on.
void pinToCpu(unsigned index);

// Drops to global.uid/gid (each optional): supplementary groups (the user's, from the group
// database, or just gid), then the gid, then the uid, and checks that root cannot be regained.
// `keep_caps` (CAP_* numbers) stay permitted and effective across the uid change; empty keeps
// none. This is where transparent mode will keep CAP_NET_ADMIN in the workers.
// Does nothing when neither user nor group is set.
void dropPrivileges(const config::Global& global, std::initializer_list<int> keep_caps = {});

// The master: makes `path` (a log file it created as root) writable by the children after
// they drop to global.uid. No-op without a user or for "stderr"/"off"/"".
void handOverFile(const std::string& path, const config::Global& global);

}  // namespace weir::master
