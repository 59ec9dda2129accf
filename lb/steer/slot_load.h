#pragma once

#include <cstdint>
#include <optional>

extern "C" {
#include "steer.h"
}

namespace weir::steer {

// One worker's part of the steering load (see bpf/steer.h): it takes the connections the
// program counted as steered to its slot off that count when it accepts them, and counts the
// connections it holds in its generation's lane, a counter nobody else writes (the master
// zeroes it if the worker dies). Lives in the worker process; not thread-safe.
class SlotLoad {
public:
  // state: the shared steering state. slot: the worker's slot (< WEIR_MAX_WORKERS). lane: its
  // generation's lane, nullopt when none was free (then its connections are not counted).
  // counts_steered: the program counts SYNs for this slot (BPF loaded, mode not "hash").
  SlotLoad(weir_steer_state* state, unsigned slot, std::optional<unsigned> lane,
           bool counts_steered);

  void accepted();
  void closed();

  // About once a second, with the number of connections waiting in the accept queues of the
  // slot's sockets: corrects drift of the slot's steered count (see slot_load.cc). Does
  // nothing when the program does not count for this slot.
  void reconcile(int64_t queued);
  bool countsSteered() const { return counts_steered_; }
  // The shared steering state (the program's .bss, or its stand-in without BPF).
  weir_steer_state* state() const { return state_; }

private:
  weir_steer_state* state_;
  unsigned slot_;
  std::optional<unsigned> lane_;
  bool counts_steered_;
  int64_t prev_diff_ = 0;
};

}  // namespace weir::steer
