#pragma once

#include <cstdint>

#include "util/time.h"

namespace weir::worker {

class TimerList;

// An intrusive timer entry embedded in its owner (a Session). Armed on at most one list.
struct TimerHook {
  TimerHook* prev = nullptr;
  TimerHook* next = nullptr;
  TimerList* list = nullptr;
  int64_t deadline_ms = 0;
  void* owner = nullptr;

  bool armed() const { return list != nullptr; }
};

// All timers of one fixed duration, in deadline order. Because every entry of a list has the
// same duration, (re)arming appends at the tail and the list stays sorted: arm, disarm and
// "earliest" are O(1), with no heap (nginx uses a tree; one list per duration is enough for a
// proxy whose timeouts come from a handful of pool settings).
class TimerList {
public:
  explicit TimerList(int64_t duration_ms) : duration_ms_(duration_ms) {
    head_.prev = head_.next = &head_;
  }
  TimerList(const TimerList&) = delete;
  TimerList& operator=(const TimerList&) = delete;

  int64_t durationMs() const { return duration_ms_; }

  // (Re)arms `t` to fire duration after now_ms (saturating: never overflows), moving it off
  // any other list.
  void arm(TimerHook& t, int64_t now_ms) {
    if (t.armed()) {
      unlink(t);
    }
    t.deadline_ms = util::addSaturating(now_ms, duration_ms_);
    t.list = this;
    t.prev = head_.prev;
    t.next = &head_;
    head_.prev->next = &t;
    head_.prev = &t;
  }

  static void disarm(TimerHook& t) {
    if (t.armed()) {
      unlink(t);
    }
  }

  // The earliest entry, or nullptr when empty.
  TimerHook* first() { return head_.next == &head_ ? nullptr : head_.next; }

private:
  static void unlink(TimerHook& t) {
    t.prev->next = t.next;
    t.next->prev = t.prev;
    t.prev = t.next = nullptr;
    t.list = nullptr;
  }

  TimerHook head_;
  int64_t duration_ms_;
};

}  // namespace weir::worker
