#pragma once

#include <cstdint>
#include <limits>

namespace weir::util {

// Millisecond arithmetic that cannot overflow. Times are int64 CLOCK_MONOTONIC milliseconds;
// durations come from the config (bounded there) or, worse, from shared memory that any worker
// can scribble on. Signed overflow is undefined behaviour, so every deadline computed from a
// duration and every difference with a time read from shared memory goes through these: a
// result that does not fit becomes INT64_MAX or INT64_MIN ("never", "long ago"), which the
// comparisons around them already handle.

inline constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kMinMs = std::numeric_limits<int64_t>::min();

// a + b, clamped to [INT64_MIN, INT64_MAX].
constexpr int64_t addSaturating(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? kMaxMs : kMinMs;
  }
  return out;
}

// a - b, clamped to [INT64_MIN, INT64_MAX].
constexpr int64_t subSaturating(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_sub_overflow(a, b, &out)) {
    return b < 0 ? kMaxMs : kMinMs;
  }
  return out;
}

// a * b, clamped to [INT64_MIN, INT64_MAX].
constexpr int64_t mulSaturating(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) {
    return (a < 0) == (b < 0) ? kMaxMs : kMinMs;
  }
  return out;
}

}  // namespace weir::util
