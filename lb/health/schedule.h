#pragma once

#include <cstdint>

#include "config/config.h"

namespace weir::health {

// When each backend is checked. Check k of a backend is due at
//   anchor + k * interval + jitter_k,   |jitter_k| <= jitterFor(check)
// where the anchor is a random point in the checker's first interval, so that backends are
// not checked in step, and jitter_k is drawn afresh for every check. The jitter does not add
// up: over any n checks the average spacing stays exactly `interval`.
//
// The bound jitterFor = min(interval/20, timeout/4, (interval - timeout)/4) keeps two checks of
// one backend from overlapping (spacing >= interval - 2 jitter > timeout) and bounds detection:
// a backend that stops answering is down within fall x interval + 2 jitter + timeout
// (<= fall x interval + 1.5 timeout); one that answers again is up within
// rise x interval + 2 jitter + one check's duration.
int64_t jitterFor(const config::HealthCheck& check);

class Schedule {
public:
  // start_ms: when the checker started; r1 and r2: random numbers (anchor, jitter seed).
  Schedule(const config::HealthCheck& check, int64_t start_ms, uint64_t r1, uint64_t r2);

  int64_t due() const { return due_ms_; }
  // Moves on to the first check due after now_ms (skipping any the checker was too late for).
  void advance(int64_t now_ms);

private:
  int64_t dueOf(uint64_t round);

  int64_t interval_ms_;
  int64_t jitter_ms_;
  int64_t anchor_ms_;
  uint64_t rng_;
  uint64_t round_ = 0;
  int64_t due_ms_;
};

}  // namespace weir::health
