#pragma once

// Client connections from a chosen loopback address through weir to an echo backend, and
// what they got: the tests of access lists and per-client limits tell the kernel's refusal (a
// RST answering the SYN) from a worker's (accepted, then reset).
#include <string>

#include "support/fd.h"
#include "support/sock_addr.h"

namespace weir::test {

// Connects from `source` (an address of the test's own host, port chosen by the kernel) to
// `target`. Returns the connected socket, or an invalid Fd with *outcome "refused" (connect
// failed with ECONNREFUSED), "reset" (the connection was reset before connect's completion was
// read: accepted, then refused by a worker) or the error.
Fd connectFrom(const std::string& source, const SockAddr& target, std::string* outcome);

// connectFrom, then one echo round trip. Returns "echo" (served), "refused", "reset"
// (connected, then reset before the echo came back), or the error.
std::string attemptFrom(const std::string& source, const SockAddr& target);

}  // namespace weir::test
