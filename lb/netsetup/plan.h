#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace weir::netsetup {

// One transparent listener's bind address, intercepted with TPROXY. `address` is the numeric
// IP as inet_ntop writes it ("192.0.2.10", "2001:db8::10"), empty for a wildcard bind
// (0.0.0.0 or ::), which intercepts the port whatever the destination.
struct Intercept {
  int family = 0;  // AF_INET or AF_INET6
  std::string address;
  uint16_t port = 0;

  // "192.0.2.10:80", "[2001:db8::10]:80", "0.0.0.0:80", "[::]:80".
  std::string describe() const;
  auto operator<=>(const Intercept&) const = default;
};

// What the kernel of this host needs for a config's transparent mode. Nothing is needed (both
// families false, no intercepts) unless a listener has `transparent = true` or a pool has
// `source = "client"`.
struct Plan {
  uint32_t mark = 0;   // Global::transparent_mark
  uint32_t table = 0;  // Global::transparent_table
  // The families that need the policy rule and the local route: those of the transparent
  // listeners' bind addresses and of the backends of source = "client" pools.
  bool ipv4 = false;
  bool ipv6 = false;
  std::vector<Intercept> intercepts;  // sorted, no duplicates

  bool empty() const { return !ipv4 && !ipv6; }
};

// The plan for `cfg`. Never fails: a Config is already validated.
Plan makePlan(const config::Config& cfg);

// "0x7765": how the commands and messages write a mark.
std::string formatMark(uint32_t mark);

}  // namespace weir::netsetup
