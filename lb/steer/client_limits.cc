#include "steer/client_limits.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace weir::steer {

weir_client_limit clientLimitOf(const config::Listener& listener) {
  weir_client_limit limit{};
  if (!listener.rate_per_client && listener.max_connections_per_client == 0) {
    return limit;
  }
  if (listener.rate_per_client) {
    const config::Rate& rate = *listener.rate_per_client;
    const uint64_t period_ns = static_cast<uint64_t>(rate.period.count()) * 1000000u;
    limit.rate_interval_ns = period_ns / rate.count;  // count >= 1: at least 60 us
    limit.rate_tolerance_ns = limit.rate_interval_ns * (rate.count - 1);
  }
  // The same key in every process and across reloads: FNV-1a of the listener's name.
  uint32_t key = 2166136261u;
  for (char c : listener.name) {
    key = (key ^ static_cast<uint8_t>(c)) * 16777619u;
  }
  limit.listener_key = key;
  limit.max_conns = listener.max_connections_per_client;
  limit.prefix4 = static_cast<__u8>(listener.per_client_ipv4_prefix);
  limit.prefix6 = static_cast<__u8>(listener.per_client_ipv6_prefix);
  return limit;
}

std::optional<uint32_t> clientCells(const weir_steer_state& state, const weir_client_limit& limit,
                                    const net::SockAddr& peer) {
  __u8 addr[16] = {};
  __u8 family = 0;
  if (peer.family() == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(peer.get());
    std::memcpy(addr, &in4->sin_addr.s_addr, 4);
    family = 4;
  } else if (peer.family() == AF_INET6) {
    const in6_addr& in6 = reinterpret_cast<const sockaddr_in6*>(peer.get())->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {  // an IPv4 client of a dual-stack socket
      std::memcpy(addr, in6.s6_addr + 12, 4);
      family = 4;
    } else {
      std::memcpy(addr, in6.s6_addr, 16);
      family = 6;
    }
  } else {
    return std::nullopt;
  }
  return weirClientCells(state.client_seed, &limit, family, addr);
}

bool rateAllows(weir_steer_state& state, const weir_client_limit& limit,
                const net::SockAddr& peer, uint64_t now_ns) {
  if (limit.rate_interval_ns == 0) {
    return true;
  }
  const std::optional<uint32_t> cells = clientCells(state, limit, peer);
  if (!cells) {
    return true;
  }
  const uint32_t b0 = *cells & (WEIR_CLIENT_BUCKETS - 1);
  const uint32_t b1 = (*cells >> 16) & (WEIR_CLIENT_BUCKETS - 1);
  return weirRateAllows(&state.rate_tat[0][b0], &state.rate_tat[1][b1], now_ns,
                        limit.rate_interval_ns, limit.rate_tolerance_ns) != 0;
}

namespace {

std::atomic_ref<__u32> cell(weir_steer_state& state, int row, uint32_t cells) {
  const uint32_t index = (row == 0 ? cells : cells >> 16) & (WEIR_CLIENT_BUCKETS - 1);
  return std::atomic_ref<__u32>(state.conns[row][index]);
}

// Takes one off a cell unless it is zero already.
void decrement(std::atomic_ref<__u32> c) {
  __u32 v = c.load(std::memory_order_relaxed);
  while (v > 0 && !c.compare_exchange_weak(v, v - 1, std::memory_order_relaxed)) {
  }
}

constexpr uint64_t kHeld = uint64_t{1} << 32;  // tags a used entry (cells may be 0)

}  // namespace

bool holdConnection(weir_steer_state& state, uint32_t cells, uint32_t max) {
  const __u32 c0 = cell(state, 0, cells).fetch_add(1, std::memory_order_relaxed) + 1;
  const __u32 c1 = cell(state, 1, cells).fetch_add(1, std::memory_order_relaxed) + 1;
  if (std::min(c0, c1) <= max) {
    return true;
  }
  releaseConnection(state, cells);
  return false;
}

void releaseConnection(weir_steer_state& state, uint32_t cells) {
  decrement(cell(state, 0, cells));
  decrement(cell(state, 1, cells));
}

ClientHolds::ClientHolds(size_t sessions) : size_(sessions) {
  void* p = ::mmap(nullptr, std::max<size_t>(sessions, 1) * sizeof(uint64_t),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw std::runtime_error(std::string("mmap client holds: ") + std::strerror(errno));
  }
  entries_ = static_cast<uint64_t*>(p);
}

ClientHolds::~ClientHolds() {
  ::munmap(entries_, std::max<size_t>(size_, 1) * sizeof(uint64_t));
}

void ClientHolds::set(size_t index, uint32_t cells) {
  if (index < size_) {
    std::atomic_ref<uint64_t>(entries_[index]).store(kHeld | cells, std::memory_order_relaxed);
  }
}

std::optional<uint32_t> ClientHolds::get(size_t index) const {
  if (index >= size_) {
    return std::nullopt;
  }
  const uint64_t e = std::atomic_ref<uint64_t>(entries_[index]).load(std::memory_order_relaxed);
  return (e & kHeld) != 0 ? std::optional<uint32_t>(static_cast<uint32_t>(e)) : std::nullopt;
}

void ClientHolds::clear(size_t index) {
  if (index < size_) {
    std::atomic_ref<uint64_t>(entries_[index]).store(0, std::memory_order_relaxed);
  }
}

size_t ClientHolds::releaseAll(weir_steer_state& state) {
  size_t released = 0;
  for (size_t i = 0; i < size_; ++i) {
    const uint64_t e = std::atomic_ref<uint64_t>(entries_[i]).exchange(0);
    if ((e & kHeld) != 0) {
      releaseConnection(state, static_cast<uint32_t>(e));
      ++released;
    }
  }
  return released;
}

uint64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace weir::steer
