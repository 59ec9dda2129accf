#include "shm/error_text.h"

#include <sched.h>

#include <algorithm>
#include <cstring>

namespace weir::shm {
namespace {

// Readers are status reporters, never the data path: they may wait for the (single) writer.
// A writer preempted mid-copy holds readers up for a scheduler slice, so after a few quick
// retries they yield the CPU; past the bound they return what they have (maybe torn).
constexpr int kSpinAttempts = 8;
constexpr int kReadAttempts = 10000;

}  // namespace

bool writeErrorText(BackendSlot& slot, std::string_view text) {
  uint32_t seq = slot.error_seq.load(std::memory_order_relaxed);
  if ((seq & 1) != 0 ||
      !slot.error_seq.compare_exchange_strong(seq, seq + 1, std::memory_order_acq_rel)) {
    return false;
  }
  // Readers that see any word below must also see the odd counter (Boehm's seqlock writer).
  std::atomic_thread_fence(std::memory_order_release);
  char bytes[kErrorTextLen] = {};
  std::memcpy(bytes, text.data(), std::min(text.size(), kErrorTextLen - 1));
  for (size_t w = 0; w < kErrorWords; ++w) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + w * sizeof(word), sizeof(word));
    slot.error_text[w].store(word, std::memory_order_relaxed);
  }
  slot.error_seq.store(seq + 2, std::memory_order_release);
  return true;
}

std::string readErrorText(const BackendSlot& slot) {
  char bytes[kErrorTextLen] = {};
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    uint32_t before = slot.error_seq.load(std::memory_order_acquire);
    for (size_t w = 0; w < kErrorWords; ++w) {
      uint64_t word = slot.error_text[w].load(std::memory_order_relaxed);
      std::memcpy(bytes + w * sizeof(word), &word, sizeof(word));
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    uint32_t after = slot.error_seq.load(std::memory_order_relaxed);
    if (before == after && (before & 1) == 0) {
      break;
    }
    if (attempt >= kSpinAttempts) {
      ::sched_yield();
    }
  }
  bytes[kErrorTextLen - 1] = '\0';  // a torn read still ends inside the buffer
  return std::string(bytes);
}

}  // namespace weir::shm
