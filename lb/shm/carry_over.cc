#include "shm/carry_over.h"

#include "shm/error_text.h"
#include "shm/resolved_address.h"

namespace weir::shm {
namespace {

template <typename T>
void copy(const std::atomic<T>& from, std::atomic<T>& to) {
  to.store(from.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

// Why the slot's values cannot be right, or "" if they can.
std::string implausible(const BackendSlot& s, int64_t now_ms) {
  const uint32_t state = s.state.load(std::memory_order_relaxed);
  if (state > static_cast<uint32_t>(BackendState::Empty)) {
    return "state " + std::to_string(state) + " is no state";
  }
  const uint32_t admin = s.admin.load(std::memory_order_relaxed);
  if (admin > static_cast<uint32_t>(AdminState::Maint)) {
    return "admin state " + std::to_string(admin) + " is no admin state";
  }
  for (const auto* t : {&s.last_check_ms, &s.changed_ms}) {
    const int64_t ms = t->load(std::memory_order_relaxed);
    if (ms < 0 || ms > now_ms) {
      return "time " + std::to_string(ms) + " is outside [0, now]";
    }
  }
  return "";
}

// Whether a slot key is a named backend's (see slotKey): "IP:PORT" has neither '#' nor '~'.
bool namedKey(std::string_view key) {
  return key.find('#') != std::string_view::npos || (!key.empty() && key.front() == '~');
}

}  // namespace

CarryReport carryOver(const ShmRegion& from, ShmRegion& to, int64_t now_ms) {
  CarryReport report;
  if (!from.intact()) {
    report.header_problem = "the old region's header was overwritten";
    return report;
  }
  const uint32_t count = to.backendCount();
  for (uint32_t i = 0; i < count; ++i) {
    const int old = from.find(to.poolOf(i), to.addressOf(i));
    if (old < 0) {
      // A new backend starts up, with clean counters, and up since now: a pool with
      // slow_start ramps it (a backend there at the very start does not ramp: changed_ms 0).
      to.backend(i).changed_ms.store(now_ms, std::memory_order_relaxed);
      continue;
    }
    const auto o = static_cast<uint32_t>(old);
    const BackendSlot& src = from.backend(o);
    if (std::string why = implausible(src, now_ms); !why.empty()) {
      report.rejected.push_back(std::string(to.poolOf(i)) + "/" + std::string(to.addressOf(i)) +
                                ": " + why);
      continue;
    }
    BackendSlot& dst = to.backend(i);
    // Read once: implausible() saw a value in range, but the slot may have changed since.
    const uint32_t admin = src.admin.load(std::memory_order_relaxed);
    if (admin != 0 && admin <= static_cast<uint32_t>(AdminState::Maint)) {
      report.admin.push_back({std::string(to.poolOf(i)), std::string(to.addressOf(i)),
                              static_cast<AdminState>(admin)});
    }
    // A backend that was draining and is back in the config is a new backend again (up since
    // now, so that slow start ramps it).
    copy(src.changed_ms, dst.changed_ms);
    if (src.state.load(std::memory_order_relaxed) !=
        static_cast<uint32_t>(BackendState::Draining)) {
      copy(src.state, dst.state);
    } else {
      dst.changed_ms.store(now_ms, std::memory_order_relaxed);
    }
    copy(src.successes, dst.successes);
    copy(src.failures, dst.failures);
    copy(src.passive_failures, dst.passive_failures);
    copy(src.last_check_ms, dst.last_check_ms);
    copy(src.check_duration_us, dst.check_duration_us);
    // A named backend's address comes along with its state (checked: a slot whose address
    // cannot be read starts empty, and the checker fills it again).
    if (auto address = readResolved(src)) {
      writeResolved(dst, address);
    } else if (dst.state.load(std::memory_order_relaxed) !=
               static_cast<uint32_t>(BackendState::Empty) && namedKey(to.addressOf(i))) {
      dst.state.store(static_cast<uint32_t>(BackendState::Empty), std::memory_order_relaxed);
    }
    (void)writeErrorText(dst, readErrorText(src));  // nobody else writes `to` yet
    Traffic& sums = to.traffic(0, i);
    for (uint32_t row = 0; row < from.trafficRows(); ++row) {
      const Traffic& t = from.traffic(row, o);
      sums.total.fetch_add(t.total.load(std::memory_order_relaxed), std::memory_order_relaxed);
      sums.failed_connects.fetch_add(t.failed_connects.load(std::memory_order_relaxed),
                                     std::memory_order_relaxed);
      sums.bytes_in.fetch_add(t.bytes_in.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
      sums.bytes_out.fetch_add(t.bytes_out.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
    }
    ++report.carried;
  }
  if (report.carried > 0) {
    to.header().health_generation.fetch_add(1, std::memory_order_release);
  }
  return report;
}

}  // namespace weir::shm
