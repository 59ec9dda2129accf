#pragma once

#include <cstdint>

namespace weir::balance {

// Slow start (pools.NAME.slow_start): a backend that came up, or that a reload added, takes
// traffic by an effective weight that grows linearly from near 0 to its full weight over the
// ramp. Weights of a pool with slow_start are kept scaled by kRampScale (a constant factor
// changes no algorithm's result), so that even a backend of weight 1 starts at 1/1000 of its
// share rather than at all of it.
inline constexpr uint32_t kRampScale = 1000;

// The effective weight `elapsed_ms` into a ramp of `slow_start_ms`: full * elapsed /
// slow_start, at least 1; `full` once the ramp is over (elapsed >= slow_start, or no ramp:
// elapsed < 0 or slow_start <= 0). full <= 1000 * kRampScale and slow_start <= 1d (the config's
// bounds) keep the product far from overflow.
constexpr uint32_t rampedWeight(uint32_t full, int64_t elapsed_ms, int64_t slow_start_ms) {
  if (elapsed_ms < 0 || slow_start_ms <= 0 || elapsed_ms >= slow_start_ms) {
    return full;
  }
  const int64_t w = static_cast<int64_t>(full) * elapsed_ms / slow_start_ms;
  return w < 1 ? 1 : static_cast<uint32_t>(w);
}

// How often a balancer recomputes effective weights while a backend ramps: about 100 steps
// per ramp, but no more often than every 100 ms and no less often than every second.
constexpr int64_t rampStepMs(int64_t slow_start_ms) {
  const int64_t step = slow_start_ms / 100;
  return step < 100 ? 100 : step > 1000 ? 1000 : step;
}

}  // namespace weir::balance
