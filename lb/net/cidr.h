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
//
// parse accepts exactly ADDR or ADDR/LEN, with no spaces anywhere:
//   ADDR  what inet_pton(3) accepts: IPv4 as four decimal octets ("10.0.0.0"; no shortened
//         "10/8", no octal or leading zeros "010.0.0.0"), IPv6 in any RFC 4291 text form,
//         dotted tail included ("::ffff:10.0.0.0"); no brackets, no "%zone". A text with a
//         ':' is IPv6, any other IPv4.
//   LEN   decimal 0..32 (IPv4) or 0..128 (IPv6), without sign or leading zeros ("/08").
// Set host bits are an error ("10.1.0.0/8"), as the kernel rejects such a route ("Invalid
// prefix for given prefix length"): a prefix that does not mean what it says is a typo more
// often than a shorthand. An IPv4-mapped IPv6 prefix ("::ffff:10.0.0.0/104") stays an
// IPv6 prefix; write IPv4 prefixes in IPv4.
class Cidr {
public:
  // nullopt if malformed (bad address, prefix length out of range, host bits set).
  static std::optional<Cidr> parse(std::string_view text);
  // Same; on failure also sets `error` to why, one line that does not repeat `text` (the
  // caller quotes it): "not an IPv4 or IPv6 address", "host bits set past /8 (the prefix
  // is 10.0.0.0/8)".
  static std::optional<Cidr> parse(std::string_view text, std::string& error);

  int family() const { return family_; }
  unsigned prefixLength() const { return prefix_; }
  // The network's address, network order; IPv4 uses the first 4 bytes (the rest are 0).
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  // Whether `addr`'s IP lies inside this prefix (port ignored; families must match, except
  // that an IPv4-mapped IPv6 address "::ffff:a.b.c.d" matches an IPv4 prefix). A default-
  // constructed Cidr contains nothing.
  bool contains(const SockAddr& addr) const;
  // Canonical text, always with the length: "10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32".
  // parse(toString()) gives back an equal Cidr.
  std::string toString() const;
  bool operator==(const Cidr& o) const;

private:
  int family_ = AF_UNSPEC;
  unsigned prefix_ = 0;
  std::array<uint8_t, 16> bytes_{};  // network order; IPv4 uses the first 4
};

}  // namespace weir::net
