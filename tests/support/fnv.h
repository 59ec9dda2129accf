#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace weir::test {

// FNV-1a, 64-bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3, one byte at a time.
// Fast enough for the 64 MiB transfers of the integration suite (~0.1 s) and trivially
// reproducible from a shell or another language when a test fails.
class Fnv1a64 {
public:
  static constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr uint64_t kPrime = 0x100000001b3ULL;

  void update(const void* data, size_t len) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = hash_;
    for (size_t i = 0; i < len; ++i) {
      h ^= p[i];
      h *= kPrime;
    }
    hash_ = h;
    count_ += len;
  }
  void update(std::string_view s) { update(s.data(), s.size()); }

  uint64_t value() const { return hash_; }
  uint64_t count() const { return count_; }
  // 16 lowercase hex digits, zero padded: the form weir-testsrv prints.
  std::string hex() const { return toHex(hash_); }

  static std::string toHex(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
  }

private:
  uint64_t hash_ = kOffsetBasis;
  uint64_t count_ = 0;
};

}  // namespace weir::test
