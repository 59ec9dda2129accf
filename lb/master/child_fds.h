#pragma once

#include <vector>

namespace weir::master {

// In a freshly forked child (worker or health checker), before it opens anything of its own:
// closes every file descriptor except 0, 1, 2 and `keep` (negative entries are ignored), so
// that nothing the master holds reaches the child: the steering program and its maps (a
// worker reaches the load counters through the .bss mapping, which holds the map by itself),
// the master's signalfd, a binary upgrade's report pipe (either end) and whatever an old
// master passed on. A sweep rather than a list, so that an fd added to the master later is
// covered too.
//
// The loggers' files are closed first (util::closeLogFiles; the child reopens its logs after
// this), since a logger would otherwise fclose its number later, when it may belong to
// something else. The caller must likewise not close any other fd it owned before the sweep:
// UniqueFds of the master's state are left as they are and never destroyed (children leave
// with _exit).
//
// Uses close_range(2) over the gaps (Linux >= 5.9); on older kernels closes what
// /proc/self/fd lists. Throws std::runtime_error if neither works.
void closeInheritedFds(std::vector<int> keep);

}  // namespace weir::master
