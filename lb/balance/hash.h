#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/address.h"

namespace weir::balance {

// A 64-bit hash of `len` bytes: FNV-1a, then MurmurHash3's finalizer so that inputs differing
// in one bit (consecutive client addresses) land far apart. Same result in every process and
// on every run, which consistent hashing needs.
uint64_t hashBytes(const void* data, size_t len, uint64_t seed);

inline uint64_t hashString(std::string_view text, uint64_t seed) {
  return hashBytes(text.data(), text.size(), seed);
}

// The hash of a client's IP address (port ignored, so one client keeps its backend across
// connections). 0 for nullptr.
uint64_t hashClientIp(const net::SockAddr* client);

}  // namespace weir::balance
