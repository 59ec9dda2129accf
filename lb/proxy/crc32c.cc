#include <array>

#include "proxy/header.h"

namespace weir::proxy {
namespace {

// CRC32c (Castagnoli, RFC 4960 appendix B): the polynomial 0x1EDC6F41 bit-reversed, because
// the CRC is computed least significant bit first. One table lookup per byte: headers are a
// few hundred bytes, so a faster (slicing or SSE4.2) variant would not show.
constexpr uint32_t kPolynomial = 0x82F63B78;

constexpr std::array<uint32_t, 256> makeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) {
      c = (c & 1) != 0 ? (c >> 1) ^ kPolynomial : c >> 1;
    }
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = makeTable();

}  // namespace

uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc) {
  // The register starts as all ones and is inverted at the end; inverting on entry too makes
  // crc32c(b, crc32c(a)) == crc32c(a + b).
  crc = ~crc;
  for (uint8_t byte : data) {
    crc = kTable[(crc ^ byte) & 0xff] ^ (crc >> 8);
  }
  return ~crc;
}

}  // namespace weir::proxy
