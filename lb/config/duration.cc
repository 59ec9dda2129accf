#include <cstdint>
#include <limits>

#include "config/config.h"

namespace weir::config {
namespace {

struct Unit {
  std::string_view name;
  int64_t ms;
};

// Largest first: in "1h30m" each unit must be smaller than the one before it, so "30s1m" and
// "1s1s" are rejected as the typos they most likely are.
constexpr Unit kUnits[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool isLetter(char c) {
  return c >= 'a' && c <= 'z';
}

}  // namespace

std::optional<Duration> parseDuration(std::string_view text) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t total = 0;
  size_t next_unit = 0;  // index into kUnits of the largest unit still allowed
  size_t i = 0;
  if (text.empty()) {
    return std::nullopt;
  }
  while (i < text.size()) {
    int64_t number = 0;
    size_t digits_start = i;
    for (; i < text.size() && isDigit(text[i]); ++i) {
      int digit = text[i] - '0';
      if (number > (kMax - digit) / 10) {
        return std::nullopt;
      }
      number = number * 10 + digit;
    }
    size_t unit_start = i;
    for (; i < text.size() && isLetter(text[i]); ++i) {
    }
    std::string_view unit_name = text.substr(unit_start, i - unit_start);
    if (unit_start == digits_start || unit_name.empty()) {
      return std::nullopt;  // no number, or a number without a unit
    }
    size_t u = next_unit;
    while (u < std::size(kUnits) && kUnits[u].name != unit_name) {
      ++u;
    }
    if (u == std::size(kUnits)) {
      return std::nullopt;  // unknown unit, or one out of order
    }
    if (number > (kMax - total) / kUnits[u].ms) {
      return std::nullopt;
    }
    total += number * kUnits[u].ms;
    next_unit = u + 1;
  }
  return Duration(total);
}

std::string formatDuration(Duration d) {
  int64_t left = d.count();
  if (left <= 0) {
    return std::to_string(left) + "ms";
  }
  std::string out;
  for (const Unit& unit : kUnits) {
    if (left >= unit.ms) {
      out += std::to_string(left / unit.ms);
      out += unit.name;
      left %= unit.ms;
    }
  }
  return out;
}

}  // namespace weir::config

namespace weir::config {

std::optional<Rate> parseRate(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash > 7) {
    return std::nullopt;
  }
  const std::string_view number = text.substr(0, slash);
  const std::string_view unit = text.substr(slash + 1);
  if (number.front() == '0') {
    return std::nullopt;  // no leading zeros, and 0 is no rate
  }
  uint32_t count = 0;
  for (char c : number) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    count = count * 10 + static_cast<uint32_t>(c - '0');  // at most 7 digits: no overflow
  }
  if (count > kMaxRateCount) {
    return std::nullopt;
  }
  if (unit == "s") {
    return Rate{count, Duration(1000)};
  }
  if (unit == "m") {
    return Rate{count, Duration(60000)};
  }
  return std::nullopt;
}

std::string formatRate(const Rate& rate) {
  return std::to_string(rate.count) + (rate.period == Duration(60000) ? "/m" : "/s");
}

}  // namespace weir::config
