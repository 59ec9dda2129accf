#include "net/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace weir::net {
namespace {

// LEN of "ADDR/LEN": 1..3 decimal digits, no leading zero (but "0"), at most `max`.
std::optional<unsigned> parseLength(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 3 || (text.size() > 1 && text.front() == '0')) {
    return std::nullopt;
  }
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > max) {
    return std::nullopt;
  }
  return value;
}

// Whether the first `bits` bits of `a` and `b` are equal.
bool samePrefix(const uint8_t* a, const uint8_t* b, unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) {
    return false;
  }
  const unsigned rest = bits % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

// `bytes` with every bit past the first `bits` cleared.
std::array<uint8_t, 16> masked(std::array<uint8_t, 16> bytes, unsigned bits) {
  for (unsigned i = 0; i < bytes.size(); ++i) {
    if (bits >= 8 * (i + 1)) {
      continue;
    }
    const unsigned keep = bits > 8 * i ? bits - 8 * i : 0;
    bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return bytes;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  std::string ignored;
  return parse(text, ignored);
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string& error) {
  const size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  Cidr out;
  out.family_ = host.find(':') != std::string_view::npos ? AF_INET6 : AF_INET;
  const unsigned max = out.family_ == AF_INET6 ? 128 : 32;
  // inet_pton reads a C string: a NUL inside would end the address early. Nothing it accepts
  // is INET6_ADDRSTRLEN characters or longer.
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN ||
      host.find('\0') != std::string_view::npos ||
      ::inet_pton(out.family_, std::string(host).c_str(), out.bytes_.data()) != 1) {
    error = "expected an IPv4 or IPv6 address, or a prefix such as \"10.0.0.0/8\" or "
            "\"2001:db8::/32\"";
    return std::nullopt;
  }
  out.prefix_ = max;
  if (slash != std::string_view::npos) {
    auto length = parseLength(text.substr(slash + 1), max);
    if (!length) {
      error = "the prefix length must be 0.." + std::to_string(max) +
              ", in decimal without leading zeros";
      return std::nullopt;
    }
    out.prefix_ = *length;
  }
  Cidr network = out;
  network.bytes_ = masked(out.bytes_, out.prefix_);
  if (network.bytes_ != out.bytes_) {
    error = "bits set past the prefix length (did you mean \"" + network.toString() + "\"?)";
    return std::nullopt;
  }
  return out;
}

bool Cidr::contains(const SockAddr& addr) const {
  const uint8_t* ip = nullptr;
  if (addr.family() == AF_INET && family_ == AF_INET) {
    ip = reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(addr.get())->sin_addr.s_addr);
  } else if (addr.family() == AF_INET6) {
    const in6_addr& in6 = reinterpret_cast<const sockaddr_in6*>(addr.get())->sin6_addr;
    if (family_ == AF_INET6) {
      ip = in6.s6_addr;
    } else if (family_ == AF_INET && IN6_IS_ADDR_V4MAPPED(&in6)) {
      ip = in6.s6_addr + 12;  // ::ffff:a.b.c.d, an IPv4 peer of a dual-stack socket
    }
  }
  return ip != nullptr && samePrefix(bytes_.data(), ip, prefix_);
}

std::string Cidr::toString() const {
  if (family_ != AF_INET && family_ != AF_INET6) {
    return "?";
  }
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family_, bytes_.data(), buf, sizeof(buf));
  return std::string(buf) + "/" + std::to_string(prefix_);
}

bool Cidr::operator==(const Cidr& o) const {
  return family_ == o.family_ && prefix_ == o.prefix_ && bytes_ == o.bytes_;
}

}  // namespace weir::net
