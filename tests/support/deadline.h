#pragma once

#include <chrono>
#include <thread>

namespace weir::test {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline Deadline deadlineIn(Clock::duration d) { return Clock::now() + d; }

// Milliseconds left until `deadline`, clamped to [0, INT_MAX] for poll()/epoll_wait().
inline int msLeft(Deadline deadline) {
  const auto left =
      std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) {
    return 0;
  }
  return left > 0x7fffffff ? 0x7fffffff : static_cast<int>(left);
}

// Polls `cond` until it returns true or `timeout` passes; sleeps `interval` between checks.
// Returns the last value of `cond`, which is checked once more at the deadline so a
// condition that became true during the last sleep is not reported as a timeout.
// Use it only for conditions that have no event to wait on (e.g. /proc contents).
template <typename Cond>
bool waitFor(Cond&& cond, Clock::duration timeout, Clock::duration interval = milliseconds(20)) {
  const Deadline deadline = deadlineIn(timeout);
  while (Clock::now() < deadline) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(interval);
  }
  return cond();
}

}  // namespace weir::test
