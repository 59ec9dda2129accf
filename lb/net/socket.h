#pragma once

#include "net/address.h"
#include "net/unique_fd.h"
#include "util/result.h"

namespace weir::net {

// A listening TCP socket with SO_REUSEPORT (and IPV6_V6ONLY for IPv6), non-blocking, CLOEXEC,
// TCP_NODELAY (which the sockets it accepts inherit).
// Several of these on one address form a reuseport group. Fails with the errno of the step.
util::Result<UniqueFd> listenReuseport(const SockAddr& addr, int backlog);

// Starts a non-blocking connect to `addr`. On success the fd is connecting (EINPROGRESS) or
// already connected; completion is signalled by EPOLLOUT and checked with socketError().
util::Result<UniqueFd> connectNonBlocking(const SockAddr& addr);

// The pending error of a socket (SO_ERROR), 0 if none.
int socketError(int fd);

// Sets TCP_NODELAY; failures are ignored (it is an optimisation).
void setNoDelay(int fd);

}  // namespace weir::net
