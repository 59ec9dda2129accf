#include "config/readers.h"

#include <cstdio>

namespace weir::config::detail {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// `\q` for a printable byte; `\ followed by byte 0x0a` for any other, which must not go into
// the one-line error as it is (a newline, or one byte of a UTF-8 sequence).
std::string describeEscape(char c) {
  auto byte = static_cast<unsigned char>(c);
  if (byte > 0x20 && byte < 0x7f) {
    return std::string("\\") + c;
  }
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%02x", byte);
  return std::string("\\ followed by byte ") + hex;
}

}  // namespace

// TOML basic strings ("...") already turn \r \n \t into bytes, but TOML 1.0 has no \xHH, and a
// literal string ('...') keeps every backslash. Decoding here lets both spellings work; a real
// backslash is written \\ (or \\\\ inside a basic string, where TOML takes one level first).
std::optional<std::string> decodeEscapes(std::string_view text, std::string& error) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (i + 1 == text.size()) {
      error = "a lone \\ at the end (write \\\\ for a backslash)";
      return std::nullopt;
    }
    char c = text[++i];
    switch (c) {
      case 'r':
        out += '\r';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '0':
        out += '\0';
        break;
      case '\\':
        out += '\\';
        break;
      case 'x': {
        int hi = i + 1 < text.size() ? hexValue(text[i + 1]) : -1;
        int lo = i + 2 < text.size() ? hexValue(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          error = "\\x at byte " + std::to_string(i - 1) + " needs two hex digits, as in \\x0d";
          return std::nullopt;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        error = "unknown escape " + describeEscape(c) + " at byte " + std::to_string(i - 1) +
                " (known: \\r \\n \\t \\0 \\\\ \\xHH)";
        return std::nullopt;
    }
  }
  return out;
}

}  // namespace weir::config::detail
