#pragma once

#include <cstddef>
#include <string_view>

#include "net/address.h"
#include "net/unique_fd.h"
#include "util/result.h"

namespace weir::net {

// A listening TCP socket with SO_REUSEPORT (and IPV6_V6ONLY for IPv6), non-blocking, CLOEXEC,
// TCP_NODELAY (which the sockets it accepts inherit).
// Several of these on one address form a reuseport group. Fails with the errno of the step.
// `transparent`: IP_TRANSPARENT (IPV6_TRANSPARENT), set before bind, so that `addr` may be an
// address this host does not own and TPROXY may hand the socket connections addressed to it.
// Needs CAP_NET_ADMIN (or CAP_NET_RAW).
util::Result<UniqueFd> listenReuseport(const SockAddr& addr, int backlog,
                                       bool transparent = false);
// TCP_DEFER_ACCEPT on a listening socket: the kernel hands a connection to accept() only once
// its first data arrived (or after about `seconds` and the SYN-ACK retransmissions that follow
// it, for a client that never sends first). 0 turns it off.
util::Result<util::Ok> setDeferAccept(int fd, int seconds);
// Whether TCP_DEFER_ACCEPT is on (any timeout) on a listening socket.
bool deferAccept(int fd);
// Sets or clears IP_TRANSPARENT (IPV6_TRANSPARENT) on a socket of `family`.
util::Result<util::Ok> setTransparent(int fd, int family, bool on);

// Starts a non-blocking connect to `addr`. On success the fd is connecting (EINPROGRESS) or
// already connected; completion is signalled by EPOLLOUT and checked with socketError().
// `source`, if given, is the address to connect from (its port is ignored: the kernel picks
// one at connect time, IP_BIND_ADDRESS_NO_PORT); the socket gets IP_TRANSPARENT first, so it
// may be an address of another host, such as the client's (needs CAP_NET_ADMIN). A source of
// another family than `addr` fails with EAFNOSUPPORT before any socket is made.
//
// `early` non-empty: TCP Fast Open, sendto(MSG_FASTOPEN) instead of connect(). `*sent` is how
// many of its bytes the kernel took (they ride in the SYN when it holds a cookie for `addr`,
// and are retransmitted after the handshake if the server did not take them); 0 when it only
// asked for a cookie (EINPROGRESS) or TFO is off for clients here (net.ipv4.tcp_fastopen & 1
// unset: a plain connect() then). The caller sends the rest once connected.
util::Result<UniqueFd> connectNonBlocking(const SockAddr& addr, const SockAddr* source = nullptr,
                                          std::string_view early = {}, size_t* sent = nullptr);

// The pending error of a socket (SO_ERROR), 0 if none.
int socketError(int fd);

// Sets TCP_NODELAY; failures are ignored (it is an optimisation).
void setNoDelay(int fd);

}  // namespace weir::net
