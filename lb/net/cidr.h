#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/address.h"

namespace weir::net {

// An IPv4 or IPv6 prefix: "10.0.0.0/8", "2001:db8::/32"; a bare address is a full-length
// prefix ("192.0.2.1" = "/32", "::1" = "/128"). Bits past the prefix length must be zero.
class Cidr {
public:
  // nullopt if malformed (bad address, prefix length out of range, host bits set).
  static std::optional<Cidr> parse(std::string_view text);

  int family() const { return family_; }
  unsigned prefixLength() const { return prefix_; }
  // Whether `addr`'s IP lies inside this prefix (port ignored; families must match, except
  // that an IPv4-mapped IPv6 address "::ffff:a.b.c.d" matches an IPv4 prefix).
  bool contains(const SockAddr& addr) const;
  // Canonical text: "10.0.0.0/8", "2001:db8::/32".
  std::string toString() const;
  bool operator==(const Cidr& o) const;

private:
  int family_ = AF_UNSPEC;
  unsigned prefix_ = 0;
  std::array<uint8_t, 16> bytes_{};  // network order; IPv4 uses the first 4
};

}  // namespace weir::net
