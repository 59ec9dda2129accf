#pragma once

#include <cstdint>

#include "net/address.h"

namespace weir::master {

// Closing a listening socket resets every connection in its accept queue and every handshake
// in progress on it. To retire a listening address without resetting anyone, weir first stops
// new handshakes from starting on its sockets, keeps accepting until nothing is queued or
// half-open, and only then closes them.
//
// New handshakes are stopped with a classic socket filter that drops TCP segments carrying
// SYN without ACK: the kernel runs a listener's filter (tcp_filter) before it handles a SYN,
// so a dropped SYN creates no request socket, and the client, seeing no answer, retries a
// second later and is refused once the socket is closed. Segments of handshakes already
// under way (ACK set) pass, so those complete and are queued for the workers to accept. The
// filter is unprivileged and independent of the sk_reuseport program.

// Attaches the SYN-dropping filter to listening socket `fd`. Returns 0 or errno.
int dropNewHandshakes(int fd);
// Removes it again (the address was added back by a reload). Returns 0 or errno.
int allowNewHandshakes(int fd);

// Connections waiting in `fd`'s accept queue (TCP_INFO reports it as tcpi_unacked on a
// listener); 0 if it cannot be read.
uint32_t acceptQueueLength(int fd);

// Handshakes in progress (SYN_RECV, request sockets included) whose local address is
// `addr` (the wildcard address matches any local address with that port), read with a
// sock_diag netlink dump filtered to SYN_RECV. Returns -1 if the dump fails.
int64_t halfOpenCount(const net::SockAddr& addr);

}  // namespace weir::master
