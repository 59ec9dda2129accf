#pragma once

#include <netinet/in.h>
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

  int family() const { return storage_.sa.sa_family; }
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
  // Only the two families weir speaks: 28 bytes, not sockaddr_storage's 128. Every session
  // holds three of these, so this is most of its size.
  union Storage {
    sockaddr_in6 in6;  // first and largest: `{}` zeroes all of it
    sockaddr_in in4;
    sockaddr sa;
  };
  Storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace weir::net
