#include "shm/resolved_address.h"

#include <netinet/in.h>

#include <cstring>

namespace weir::shm {
namespace {

constexpr int kReadAttempts = 8;

}  // namespace

void writeResolved(BackendSlot& slot, const std::optional<net::SockAddr>& address) {
  uint64_t words[3] = {0, 0, 0};
  if (address && (address->family() == AF_INET || address->family() == AF_INET6)) {
    words[0] = static_cast<uint64_t>(address->family()) |
               static_cast<uint64_t>(address->port()) << 16;
    if (address->family() == AF_INET) {
      const auto* in4 = reinterpret_cast<const sockaddr_in*>(address->get());
      std::memcpy(&words[1], &in4->sin_addr, sizeof(in4->sin_addr));
    } else {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address->get());
      std::memcpy(&words[1], &in6->sin6_addr, sizeof(in6->sin6_addr));
    }
  }
  // One writer: odd while the words change, even again after.
  const uint32_t seq = slot.resolved_seq.load(std::memory_order_relaxed);
  slot.resolved_seq.store(seq | 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < 3; ++i) {
    slot.resolved[i].store(words[i], std::memory_order_relaxed);
  }
  slot.resolved_seq.store((seq | 1) + 1, std::memory_order_release);
}

std::optional<net::SockAddr> readResolved(const BackendSlot& slot) {
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    const uint32_t before = slot.resolved_seq.load(std::memory_order_acquire);
    if ((before & 1) != 0) {
      continue;
    }
    uint64_t words[3];
    for (size_t i = 0; i < 3; ++i) {
      words[i] = slot.resolved[i].load(std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.resolved_seq.load(std::memory_order_relaxed) != before) {
      continue;
    }
    const auto family = static_cast<int>(words[0] & 0xffff);
    const auto port = static_cast<uint16_t>(words[0] >> 16);
    if (family == AF_INET) {
      sockaddr_in in4{};
      in4.sin_family = AF_INET;
      in4.sin_port = htons(port);
      std::memcpy(&in4.sin_addr, &words[1], sizeof(in4.sin_addr));
      return net::SockAddr(reinterpret_cast<const sockaddr*>(&in4), sizeof(in4));
    }
    if (family == AF_INET6) {
      sockaddr_in6 in6{};
      in6.sin6_family = AF_INET6;
      in6.sin6_port = htons(port);
      std::memcpy(&in6.sin6_addr, &words[1], sizeof(in6.sin6_addr));
      return net::SockAddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
    }
    return std::nullopt;  // no address (or not one weir wrote)
  }
  return std::nullopt;
}

}  // namespace weir::shm
