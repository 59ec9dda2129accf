#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir::config::detail {

// toml++ 3.3.0 (Debian 12's) reaches __builtin_unreachable, undefined behaviour, when it asks
// whether certain non-ASCII characters are whitespace (U+00A1..U+0499 among others; upstream
// issues marzer/tomlplusplus#190 and #295). It asks that of every character outside strings and
// comments, and after a backslash in a multi-line basic string ("""..."""). weir's fuzzing
// found it with a stray "é" in a table name. So weir looks first and never hands toml++ such
// text.

// Where and why `text` cannot be handed to toml++.
struct TomlHazard {
  uint32_t line;    // 1-based
  uint32_t column;  // 1-based, in characters as toml++ counts them
  std::string what;
};

// Finds the first non-ASCII character outside strings and comments (never valid TOML 1.0; a
// quote inside a bare value such as 2"x" starts no string, as toml++ reads the value on), or
// after a backslash in a multi-line basic string, possibly past the whitespace and line breaks
// a line-ending backslash skips (valid TOML, but write it as \uXXXX there). nullopt if none.
std::optional<TomlHazard> findTomlHazard(std::string_view text);

}  // namespace weir::config::detail
