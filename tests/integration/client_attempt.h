#pragma once

// One client connection from a chosen loopback address through weir to an echo backend, and
// what it got: the tests of access lists and per-client rates tell the kernel's refusal (a RST
// answering the SYN) from a worker's (accepted, then reset).
#include <string>

#include "support/sock_addr.h"

namespace weir::test {

// Connects from `source` (an address of the test's own host, port chosen by the kernel) to
// `target`, then round-trips a message. Returns "echo" (served), "refused" (connect failed
// with ECONNREFUSED), "reset" (connected, then reset before the echo came back), or the error.
std::string attemptFrom(const std::string& source, const SockAddr& target);

}  // namespace weir::test
