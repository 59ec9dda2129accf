#pragma once

#include <cstdint>

#include "master/generations.h"
#include "master/listen_sockets.h"

namespace weir::master {

// The hand-over between two generations after a reload: `old` keeps accepting until `fresh`
// has stayed up for a moment (kUpMs; a generation whose workers keep dying never takes over)
// and nothing is queued or half-open any more on the listen addresses the reload retired
// (closing a listener resets what waits in its queue). Also used without generations (both
// null): by a graceful stop, and by a new master whose inherited addresses are no longer
// configured, to let the queues of retiring addresses empty before anything stops accepting.
//
// A plain state machine polled from the master's loop; what to do when it ends is the
// Supervisor's (drain the old generation, close the retired sockets).
class Handover {
public:
  Handover(int64_t now, Generation* old, Generation* fresh)
      : started_ms_(now), next_poll_ms_(now), old_(old), fresh_(fresh) {}

  // Checks, at most every kPollMs, whether the hand-over is over: the retiring queues have
  // been empty for a few polls in a row (or kMaxMs passed: what is left is reset) and `fresh`
  // is up (or kUpMaxMs passed). Returns true when over; then *fresh_up says whether `fresh`
  // came up (true without a fresh generation).
  bool poll(int64_t now, const ListenSockets& sockets, const Generations& gens, bool* fresh_up);
  // When poll() next has something to look at.
  int64_t nextPollMs() const { return next_poll_ms_; }
  // Connections still queued or half-open in the retiring listen queues when poll() gave up
  // waiting for them (they are reset when the addresses close); 0 if they emptied.
  int64_t abandoned() const { return abandoned_; }

  Generation* old() const { return old_; }
  Generation* fresh() const { return fresh_; }

  static constexpr int64_t kUpMs = 300;  // a generation whose workers lived this long is up

private:
  int64_t started_ms_;
  int64_t next_poll_ms_;
  unsigned quiet_polls_ = 0;
  int64_t abandoned_ = 0;
  Generation* old_;
  Generation* fresh_;
};

}  // namespace weir::master
