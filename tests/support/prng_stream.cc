#include "support/prng_stream.h"

#include <algorithm>
#include <vector>

#include "support/fnv.h"

namespace weir::test {

uint64_t PrngStream::word(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void PrngStream::fill(void* out, size_t len) {
  auto* p = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < len) {
    const uint64_t w = word(seed_, pos_ / 8);
    // Start inside the word when a previous fill stopped mid-word; stop at the word's end.
    unsigned byte = static_cast<unsigned>(pos_ % 8);
    const size_t n = std::min<size_t>(8 - byte, len - done);
    for (size_t i = 0; i < n; ++i, ++byte) {
      p[done + i] = static_cast<unsigned char>(w >> (8 * byte));
    }
    done += n;
    pos_ += n;
  }
}

std::string PrngStream::take(size_t len) {
  std::string s(len, '\0');
  fill(s.data(), len);
  return s;
}

uint64_t prngStreamHash(uint64_t seed, uint64_t len) {
  PrngStream stream(seed);
  Fnv1a64 fnv;
  std::vector<char> buf(1 << 16);
  while (len > 0) {
    const size_t n = std::min<uint64_t>(len, buf.size());
    stream.fill(buf.data(), n);
    fnv.update(buf.data(), n);
    len -= n;
  }
  return fnv.value();
}

}  // namespace weir::test
