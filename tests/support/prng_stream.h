#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace weir::test {

// A deterministic, seekable byte stream used as test payload by weir-testsrv (modes `source`
// and `drain-reply`) and by the test clients, so both ends can produce or verify the same
// bytes without shipping them around.
//
// Definition (stable; other tools may reimplement it): the stream is the sequence of
// splitmix64 outputs for state `seed`, each 64-bit word written little-endian. Word k
// (k = 0, 1, ...) is mix(seed + (k + 1) * 0x9E3779B97F4A7C15) with
//   mix(z): z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
//           z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//           return z ^ (z >> 31);
// and byte i of the stream is byte (i % 8) of word (i / 8).
class PrngStream {
public:
  static constexpr uint64_t kDefaultSeed = 1;

  explicit PrngStream(uint64_t seed = kDefaultSeed) : seed_(seed) {}

  // Writes the next `len` bytes of the stream into `out` and advances.
  void fill(void* out, size_t len);
  // Returns the next `len` bytes as a string and advances.
  std::string take(size_t len);
  // Bytes produced so far.
  uint64_t position() const { return pos_; }
  // Word k of the stream (see the class comment).
  static uint64_t word(uint64_t seed, uint64_t k);

private:
  uint64_t seed_;
  uint64_t pos_ = 0;
};

// FNV-1a 64 of the first `len` bytes of the stream with `seed`.
uint64_t prngStreamHash(uint64_t seed, uint64_t len);

}  // namespace weir::test
