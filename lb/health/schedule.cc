#include "health/schedule.h"

#include <algorithm>

#include "util/time.h"

namespace weir::health {
namespace {

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

}  // namespace

int64_t jitterFor(const config::HealthCheck& check) {
  int64_t interval = check.interval.count();
  int64_t timeout = check.timeout.count();
  return std::max<int64_t>(0, std::min({interval / 20, timeout / 4, (interval - timeout) / 4}));
}

Schedule::Schedule(const config::HealthCheck& check, int64_t start_ms, uint64_t r1, uint64_t r2)
    : interval_ms_(check.interval.count()),
      jitter_ms_(jitterFor(check)),
      anchor_ms_(util::addSaturating(
          start_ms, static_cast<int64_t>(r1 % static_cast<uint64_t>(interval_ms_)))),
      rng_(r2) {
  due_ms_ = std::max(start_ms, dueOf(0));
}

int64_t Schedule::dueOf(uint64_t round) {
  int64_t jitter = 0;
  if (jitter_ms_ > 0) {
    jitter = static_cast<int64_t>(splitmix(rng_) % static_cast<uint64_t>(2 * jitter_ms_ + 1)) -
             jitter_ms_;
  }
  // Saturating: a checker that ran for ages (or a huge start time) gets "never", not UB.
  const int64_t offset = util::mulSaturating(static_cast<int64_t>(round), interval_ms_);
  return util::addSaturating(util::addSaturating(anchor_ms_, offset), jitter);
}

void Schedule::advance(int64_t now_ms) {
  // The first round whose earliest possible time is after now (so no burst of catch-up checks
  // after the checker was stopped or starved), computed, not looped.
  uint64_t next = round_ + 1;
  const int64_t offset = util::mulSaturating(static_cast<int64_t>(next), interval_ms_);
  const int64_t earliest =
      util::subSaturating(util::addSaturating(anchor_ms_, offset), jitter_ms_);
  if (earliest <= now_ms) {
    next += static_cast<uint64_t>(util::subSaturating(now_ms, earliest) / interval_ms_ + 1);
  }
  round_ = next;
  due_ms_ = dueOf(round_);
}

}  // namespace weir::health
