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

// setpriority(2) of the calling process to the nice value `nice` (global.worker_priority),
// while still root: a value below the master's needs CAP_SYS_NICE. Logs a failure and carries
// on: a child at the wrong priority still serves. nullopt: unchanged.
void applyPriority(std::optional<int> nice);

// setrlimit(RLIMIT_CORE) to `limit` bytes, soft and hard (config::kUnlimitedCore: no limit),
// while still root (raising the hard limit needs it). Logs a failure and carries on.
// nullopt: unchanged.
void applyCoreLimit(std::optional<uint64_t> limit);

// After dropping privileges: chdir to global.working_directory (as the children's user, so
// that a directory they may not enter fails here, logged, and the child stays where it was),
// and, when global.worker_rlimit_core allows cores, makes the process dumpable again (a uid
// change cleared it), so that a crash leaves a core there (kernel.core_pattern permitting).
void prepareForCores(const config::Global& global);

// Pins the calling process to the index-th CPU (modulo their number) of the CPUs it is
// allowed to run on.
void pinToCpu(unsigned index);

// Leaves the calling process with exactly `keep_caps` (CAP_* numbers) permitted and effective,
// nothing inheritable or ambient, and PR_SET_NO_NEW_PRIVS set, whoever started the master:
// - with CAP_SETPCAP, first drops every capability but `keep_caps` from the bounding set, so
//   that nothing can come back through an exec;
// - then, if global.uid/gid are set: supplementary groups (the user's, from the group
//   database, or just gid), the gid, the uid (checking that root cannot be regained);
// - then sets the capability sets (a master started as a non-root user with capabilities,
//   e.g. ambient ones, keeps its uid but its children still lose every capability).
// Empty `keep_caps` keeps none; the workers of a config with a `source = "client"` pool keep
// CAP_NET_ADMIN (IP_TRANSPARENT on their backend sockets), when the master has it.
// Verifies the result with capget and PR_CAP_AMBIENT_IS_SET. Throws std::runtime_error naming
// the step and errno (e.g. EPERM: a cap to keep that the process does not have).
void dropPrivileges(const config::Global& global, std::initializer_list<int> keep_caps = {});

// Whether the calling process holds `cap` (a CAP_* number) in its effective set.
bool hasCapability(int cap);

// The master: makes `path` (a log file it created as root) writable by the children after
// they drop to global.uid. Only a regular file with one link is handed over, opened with
// O_NOFOLLOW and changed with fchown, so a symbolic link (or hard link) put in its place
// cannot make root give away another file; anything else is logged as a warning and left
// alone. No-op without a user or for "stderr"/"off"/"".
void handOverFile(const std::string& path, const config::Global& global);

// "user nobody (uid 65534), group nogroup (gid 65534)", or "uid 1000 and gid 1000 of the
// master" when global.uid/gid are not set: who the children of a master running now with
// `global` will be, and their capabilities ("without capabilities", or the workers keeping
// CAP_NET_ADMIN). For `weir -t` and the master's log.
std::string describeChildCredentials(const config::Config& cfg);

// Whether the workers of `cfg` keep CAP_NET_ADMIN: a pool connects from the client's address
// (source = "client": IP_TRANSPARENT on its backend sockets).
bool workersKeepNetAdmin(const config::Config& cfg);

// Whether the children of a master running now with `global` run as root: global.uid is 0,
// or unset while this process runs as root.
bool childrenRunAsRoot(const config::Global& global);

// The master, at start and after each reload: logs who the children run as, as a warning
// when that is root (global.user = "root" or "0").
void logChildCredentials(const config::Config& cfg);

}  // namespace weir::master
