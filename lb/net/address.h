#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir::net {

// An IPv4 or IPv6 socket address.
class SockAddr {
public:
  SockAddr() = default;
  SockAddr(const sockaddr* sa, socklen_t len);

  // Parses "A.B.C.D:PORT" or "[V6]:PORT" (numeric only, port 0-65535). nullopt if malformed.
  static std::optional<SockAddr> parse(std::string_view text);

  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t len() const { return len_; }
  socklen_t* lenPtr() { return &len_; }
  socklen_t capacity() const { return sizeof(storage_); }

  // "1.2.3.4:80" or "[::1]:80".
  std::string toString() const;
  bool operator==(const SockAddr& o) const;

private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace weir::net
