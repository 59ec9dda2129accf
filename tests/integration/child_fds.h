#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace weir::test {

// Whether a weir child (worker or health checker) holds only what it needs. Beyond fds 0-2
// (whatever weir was started with) it may hold one epoll instance or io_uring ring (what its
// event engine waits on), one signalfd (its own),
// pipes of its own pipe pool (it holds both ends of each), and exactly one listening socket
// on each port of `listen_ports` (empty for the checker). Anything else fails, listing the
// whole fd table: a BPF program, map or link of the master's, one end of a pipe (the
// upgrade's report pipe), a memfd, any other socket or file. Call it on an idle child,
// through waitFor: a connection that has just closed may still be held for a moment.
::testing::AssertionResult holdsOnlyItsOwnFds(pid_t child,
                                              const std::vector<uint16_t>& listen_ports);

}  // namespace weir::test
