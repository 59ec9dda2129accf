#include "steer/slot_load.h"

#include <algorithm>
#include <atomic>

#include <spdlog/spdlog.h>

#include "util/time.h"

namespace weir::steer {
namespace {

std::atomic_ref<__s64> counter(__s64& v) { return std::atomic_ref<__s64>(v); }

}  // namespace

SlotLoad::SlotLoad(weir_steer_state* state, unsigned slot, std::optional<unsigned> lane,
                   bool counts_steered)
    : state_(state),
      slot_(slot % WEIR_MAX_WORKERS),
      lane_(lane && *lane < WEIR_LANES ? lane : std::nullopt),
      counts_steered_(counts_steered) {}

void SlotLoad::accepted() {
  if (lane_) {
    counter(state_->active[*lane_][slot_]).fetch_add(1, std::memory_order_relaxed);
  }
  if (counts_steered_) {
    counter(state_->steered[slot_]).fetch_sub(1, std::memory_order_relaxed);
  }
}

void SlotLoad::closed() {
  if (lane_) {
    counter(state_->active[*lane_][slot_]).fetch_sub(1, std::memory_order_relaxed);
  }
}

// The program counts a connection in `steered` at SYN time and the worker takes it off on
// accept. A handshake that never completes, a syncookie ACK (selection runs again) or a SYN
// that arrived before the program was attached leave `steered` off by a few. The truth is the
// accept queue length: when the counter and the queue disagree in the same direction on two
// ticks in a row, correct by the smaller difference, which leaves handshakes in flight alone.
void SlotLoad::reconcile(int64_t queued) {
  if (!counts_steered_) {
    return;
  }
  auto steered = counter(state_->steered[slot_]);
  // Saturating: the counter lives in a map every worker (and the program) writes.
  const int64_t diff = util::subSaturating(steered.load(std::memory_order_relaxed), queued);
  int64_t fix = 0;
  if (diff > 0 && prev_diff_ > 0) {
    fix = std::min(diff, prev_diff_);
  } else if (diff < 0 && prev_diff_ < 0) {
    fix = std::max(diff, prev_diff_);
  }
  if (fix != 0) {
    steered.fetch_sub(fix, std::memory_order_relaxed);
    spdlog::debug("steering counter of slot {} corrected by {}", slot_, -fix);
  }
  prev_diff_ = diff - fix;
}

}  // namespace weir::steer
