#include "steer/client_limits.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

namespace weir::steer {

weir_client_limit clientLimitOf(const config::Listener& listener) {
  weir_client_limit limit{};
  if (!listener.rate_per_client) {
    return limit;
  }
  const config::Rate& rate = *listener.rate_per_client;
  const uint64_t period_ns = static_cast<uint64_t>(rate.period.count()) * 1000000u;
  limit.rate_interval_ns = period_ns / rate.count;  // count >= 1: at least 60 us
  limit.rate_tolerance_ns = limit.rate_interval_ns * (rate.count - 1);
  // The same key in every process and across reloads: FNV-1a of the listener's name.
  uint32_t key = 2166136261u;
  for (char c : listener.name) {
    key = (key ^ static_cast<uint8_t>(c)) * 16777619u;
  }
  limit.listener_key = key;
  limit.prefix4 = static_cast<__u8>(listener.per_client_ipv4_prefix);
  limit.prefix6 = static_cast<__u8>(listener.per_client_ipv6_prefix);
  return limit;
}

bool rateAllows(weir_steer_state& state, const weir_client_limit& limit,
                const net::SockAddr& peer, uint64_t now_ns) {
  if (limit.rate_interval_ns == 0) {
    return true;
  }
  __u8 addr[16] = {};
  __u8 family = 0;
  __u32 bits = 0;
  if (peer.family() == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(peer.get());
    std::memcpy(addr, &in4->sin_addr.s_addr, 4);
    family = 4;
    bits = limit.prefix4;
  } else if (peer.family() == AF_INET6) {
    const in6_addr& in6 = reinterpret_cast<const sockaddr_in6*>(peer.get())->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {  // an IPv4 client of a dual-stack socket
      std::memcpy(addr, in6.s6_addr + 12, 4);
      family = 4;
      bits = limit.prefix4;
    } else {
      std::memcpy(addr, in6.s6_addr, 16);
      family = 6;
      bits = limit.prefix6;
    }
  } else {
    return true;
  }
  weirCutToPrefix(addr, bits);
  const __u64 h = weirClientHash(state.client_seed, limit.listener_key, family, addr);
  const __u32 b0 = static_cast<__u32>(h) & (WEIR_CLIENT_BUCKETS - 1);
  const __u32 b1 = static_cast<__u32>(h >> 32) & (WEIR_CLIENT_BUCKETS - 1);
  return weirRateAllows(&state.rate_tat[0][b0], &state.rate_tat[1][b1], now_ns,
                        limit.rate_interval_ns, limit.rate_tolerance_ns) != 0;
}

uint64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace weir::steer
