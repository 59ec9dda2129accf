#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir::test {

// An IPv4 or IPv6 socket address with its length, parsed from "1.2.3.4:80" or "[::1]:80".
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  uint16_t port() const;
  void setPort(uint16_t port);
  // "1.2.3.4:80" or "[::1]:80".
  std::string str() const;
  // Host part only, without brackets: "1.2.3.4" or "::1".
  std::string host() const;

  // Parses "HOST:PORT" with a numeric IPv4 host or a bracketed numeric IPv6 host.
  // Returns nullopt on any syntax error or a port outside 0..65535.
  static std::optional<SockAddr> parse(std::string_view text);
  // Numeric host (no brackets) and port.
  static std::optional<SockAddr> from(std::string_view host, uint16_t port);
  // The local (getsockname) or peer (getpeername) address of a socket; nullopt on error.
  static std::optional<SockAddr> local(int fd);
  static std::optional<SockAddr> peer(int fd);
};

}  // namespace weir::test
