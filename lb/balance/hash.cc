#include "balance/hash.h"

#include <netinet/in.h>

namespace weir::balance {

uint64_t hashBytes(const void* data, size_t len, uint64_t seed) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325 ^ seed;
  for (size_t i = 0; i < len; ++i) {
    h = (h ^ bytes[i]) * 0x100000001b3;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return h;
}

uint64_t hashClientIp(const net::SockAddr* client) {
  if (client == nullptr) {
    return 0;
  }
  if (client->family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(client->get());
    return hashBytes(&in->sin_addr, sizeof(in->sin_addr), 0);
  }
  if (client->family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(client->get());
    return hashBytes(&in6->sin6_addr, sizeof(in6->sin6_addr), 0);
  }
  return 0;
}

}  // namespace weir::balance
