#include "master/supervisor.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

// How often the master compares the announced pools' health (in the shared region, which the
// checker updates) with the routes: a pool that goes down is withdrawn within this.
constexpr int64_t kRouteSyncMs = 200;

}  // namespace

bool Supervisor::announcing() const {
  if (announcer_.active()) {
    return true;
  }
  for (const auto& l : cfg_->listeners) {
    if (l.announce) {
      return true;
    }
  }
  return false;
}

Announcer::Routes Supervisor::wantedRoutes(std::string* why_not) const {
  if (stop_ != Stop::None || withdraw_until_ >= 0) {
    *why_not = "stopping";
    return {};
  }
  if (!confirmed_) {
    *why_not = "the workers are not serving yet";
    return {};
  }
  const Generation* gen = gens_->serving();
  if (gen == nullptr || !gen->backends) {
    *why_not = "no workers serve (SIGWINCH)";
    return {};
  }
  // The health the master reads here is in memory every child can write: it only ever
  // decides whether the config's own bind addresses are announced, nothing else.
  Announcer::Routes want;
  std::string down;
  for (const config::Listener& l : gen->cfg->listeners) {
    if (!l.announce || l.pool_index >= gen->backends->poolCount()) {
      continue;
    }
    const shm::PoolSlots& slots = gen->backends->pool(l.pool_index);
    bool up = false;
    for (size_t i = 0; i < slots.size() && !up; ++i) {
      up = slots.eligible(i);
    }
    if (!up) {
      down += (down.empty() ? "" : ", ") + l.pool;
      continue;
    }
    for (const net::SockAddr& bind : l.binds) {
      std::string& why = want[net::HostAddr::of(bind)];
      why += (why.empty() ? "listener " : ", ") + l.name;
    }
  }
  *why_not = down.empty() ? "no listener announces it any more"
                          : "no backend up in pool " + down;
  return want;
}

void Supervisor::syncRoutes(int64_t now, bool now_too) {
  if (stop_ == Stop::HandOff) {
    return;  // a binary upgrade's new master owns the routes: this one only drains
  }
  if (!now_too && next_route_sync_ >= 0 && now < next_route_sync_) {
    return;
  }
  next_route_sync_ = -1;
  if (!announcing()) {
    return;
  }
  next_route_sync_ = now + kRouteSyncMs;
  if (!confirmed_ && stop_ == Stop::None) {
    // Not serving yet: leave the table alone. A new master of a binary upgrade must not
    // withdraw what the old one announces before it serves itself.
    return;
  }
  std::string why_not;
  const Announcer::Routes want = wantedRoutes(&why_not);
  announcer_.sync(cfg_->global.announce_table,
                  static_cast<uint8_t>(cfg_->global.announce_protocol), want, why_not, now);
}

}  // namespace weir::master
