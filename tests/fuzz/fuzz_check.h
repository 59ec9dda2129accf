#pragma once

// What the fuzz targets assert beyond "no crash, leak or UB report": properties every result
// must have. A violated property prints what was wrong and aborts, which libFuzzer reports as
// a crash and saves the input.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace weir::fuzz {

// Aborts with `what` and `detail` on stderr unless `ok`.
inline void check(bool ok, std::string_view what, std::string_view detail = {}) {
  if (ok) {
    return;
  }
  std::fprintf(stderr, "fuzz property violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  if (!detail.empty()) {
    std::fprintf(stderr, "  in: %.*s\n", static_cast<int>(detail.size()), detail.data());
  }
  std::abort();
}

// True if `text` holds no ASCII control character (tab included) and no DEL: text that ends
// up in one log line or one line of a config error.
inline bool isOneLine(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return false;
    }
  }
  return true;
}

// True if `text` is printable ASCII only (0x20..0x7e).
inline bool isPrintableAscii(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return false;
    }
  }
  return true;
}

}  // namespace weir::fuzz
