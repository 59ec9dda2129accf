#include "master/handover.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace weir::master {
namespace {

constexpr int64_t kPollMs = 20;
constexpr int64_t kMinMs = 60;      // covers handshakes a round trip from completing
constexpr int64_t kMaxMs = 3000;    // queues still not empty: close anyway
constexpr unsigned kQuietPolls = 3;  // empty this many polls in a row: quiet
constexpr int64_t kUpMaxMs = 10000;  // not up by then: the old generation keeps serving

}  // namespace

bool Handover::poll(int64_t now, const ListenSockets& sockets, const Generations& gens,
                    bool* fresh_up) {
  if (now < next_poll_ms_) {
    return false;
  }
  next_poll_ms_ = now + kPollMs;
  const int64_t elapsed = now - started_ms_;
  int64_t backlog = 0;
  bool quiet = true;
  if (sockets.anyRetiring()) {
    backlog = sockets.retiringBacklog();
    quiet_polls_ = backlog == 0 ? quiet_polls_ + 1 : 0;
    quiet = elapsed >= kMinMs && quiet_polls_ >= kQuietPolls;
  }
  const bool up = fresh_ == nullptr || gens.up(*fresh_, now, kUpMs);
  if (!(quiet || elapsed >= kMaxMs) || !(up || elapsed >= kUpMaxMs)) {
    return false;
  }
  if (!quiet) {
    spdlog::warn("retiring listen addresses: {} connections still queued or half-open after "
                 "{} ms; closing anyway (they are reset)", backlog, elapsed);
    abandoned_ = std::max<int64_t>(0, backlog);
  }
  *fresh_up = up;
  return true;
}

}  // namespace weir::master
