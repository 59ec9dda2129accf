#include "support/sock_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace weir::test {

uint16_t SockAddr::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

void SockAddr::setPort(uint16_t port) {
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
  }
}

std::string SockAddr::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof buf);
  }
  return buf;
}

std::string SockAddr::str() const {
  if (family() == AF_INET6) {
    return "[" + host() + "]:" + std::to_string(port());
  }
  return host() + ":" + std::to_string(port());
}

std::optional<SockAddr> SockAddr::from(std::string_view host, uint16_t port) {
  SockAddr a;
  const std::string h(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

std::optional<SockAddr> SockAddr::parse(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) {
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const char* const last = port_text.data() + port_text.size();
  const auto [end, ec] = std::from_chars(port_text.data(), last, port);
  if (ec != std::errc() || end != last || port > 65535) {
    return std::nullopt;
  }
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return std::nullopt;
    }
    host = host.substr(1, host.size() - 2);
    if (host.find(':') == std::string_view::npos) {
      return std::nullopt;  // brackets are only for IPv6
    }
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 host must be bracketed
  }
  return from(host, static_cast<uint16_t>(port));
}

std::optional<SockAddr> SockAddr::local(int fd) {
  SockAddr a;
  a.len = sizeof a.storage;
  if (getsockname(fd, a.get(), &a.len) != 0) {
    return std::nullopt;
  }
  return a;
}

std::optional<SockAddr> SockAddr::peer(int fd) {
  SockAddr a;
  a.len = sizeof a.storage;
  if (getpeername(fd, a.get(), &a.len) != 0) {
    return std::nullopt;
  }
  return a;
}

}  // namespace weir::test
