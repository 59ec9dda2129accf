#include "shm/carry_over.h"

#include "shm/error_text.h"

namespace weir::shm {
namespace {

template <typename T>
void copy(const std::atomic<T>& from, std::atomic<T>& to) {
  to.store(from.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace

uint32_t carryOver(const ShmRegion& from, ShmRegion& to) {
  uint32_t carried = 0;
  uint32_t count = to.backendCount();
  for (uint32_t i = 0; i < count; ++i) {
    BackendSlot& dst = to.backend(i);
    int old = from.find(dst.pool, dst.address);
    if (old < 0) {
      continue;  // a new backend starts up, with clean counters
    }
    const BackendSlot& src = from.backend(static_cast<uint32_t>(old));
    // A backend that was draining and is back in the config is a new backend again.
    if (src.state.load(std::memory_order_relaxed) !=
        static_cast<uint32_t>(BackendState::Draining)) {
      copy(src.state, dst.state);
    }
    copy(src.successes, dst.successes);
    copy(src.failures, dst.failures);
    copy(src.passive_failures, dst.passive_failures);
    copy(src.last_check_ms, dst.last_check_ms);
    copy(src.changed_ms, dst.changed_ms);
    (void)writeErrorText(dst, readErrorText(src));  // nobody else writes `to` yet
    copy(src.total, dst.total);
    copy(src.failed_connects, dst.failed_connects);
    copy(src.bytes_in, dst.bytes_in);
    copy(src.bytes_out, dst.bytes_out);
    ++carried;
  }
  if (carried > 0) {
    to.header().health_generation.fetch_add(1, std::memory_order_release);
  }
  return carried;
}

}  // namespace weir::shm
