#pragma once

#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "net/address.h"
#include "net/unique_fd.h"
#include "util/result.h"

namespace weir::net {

// An IPv4 or IPv6 address without a port: the destination of a host route.
struct HostAddr {
  int family = 0;                  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // 4 used for IPv4

  static HostAddr of(const SockAddr& addr);  // the address of an AF_INET/AF_INET6 SockAddr
  size_t size() const { return family == AF_INET ? 4 : 16; }
  unsigned prefixLength() const { return static_cast<unsigned>(size() * 8); }
  // "192.0.2.1/32", "2001:db8::1/128"
  std::string toString() const;
  auto operator<=>(const HostAddr&) const = default;
};

// The host routes of one routing table that carry one route protocol number: what
// `ip route replace ADDR/32 dev lo table T proto P` adds and `ip route del` removes, over
// rtnetlink. A route through lo in a table of its own changes nothing in how this host
// forwards (no policy rule points at the table); it is there for a routing daemon (BIRD, FRR)
// that learns the table and announces its routes to the routers.
//
// Every call waits for the kernel's answer. Needs CAP_NET_ADMIN in the network namespace.
class RouteTable {
public:
  // A netlink socket for table `table` (1..2^31-1) and protocol `protocol` (>= 5: 0..4 are
  // the kernel's own: unspec, redirect, kernel, boot, static).
  static util::Result<RouteTable> open(uint32_t table, uint8_t protocol);

  // Adds or replaces the host route to `addr`.
  util::Result<util::Ok> add(const HostAddr& addr);
  // Removes the host route to `addr`; a route that is not there is not an error.
  util::Result<util::Ok> remove(const HostAddr& addr);
  // Every host route of the table that carries the protocol, both families.
  util::Result<std::vector<HostAddr>> list();

  uint32_t table() const { return table_; }
  uint8_t protocol() const { return protocol_; }

private:
  RouteTable(UniqueFd fd, uint32_t table, uint8_t protocol, int lo)
      : fd_(std::move(fd)), table_(table), protocol_(protocol), lo_(lo) {}
  util::Result<util::Ok> change(int type, uint16_t flags, const HostAddr& addr,
                                const char* what);
  // Sends `len` bytes of request and reads until its acknowledgement (or, for a dump, until
  // NLMSG_DONE, calling `on_route` for each route message). Returns the kernel's error.
  int exchange(const void* req, size_t len, uint32_t seq,
               const std::function<void(const void* msg, size_t len)>* on_route);

  UniqueFd fd_;
  uint32_t table_ = 0;
  uint8_t protocol_ = 0;
  int lo_ = 0;  // ifindex of lo
  uint32_t seq_ = 0;
};

}  // namespace weir::net
