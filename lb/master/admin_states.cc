#include "master/admin_states.h"

#include "shm/backend_map.h"
#include "shm/pool_slots.h"

namespace weir::master {

shm::AdminState AdminStates::set(const std::string& pool, const std::string& address,
                                 shm::AdminState state) {
  const shm::AdminState before = get(pool, address);
  if (state == shm::AdminState::None) {
    states_.erase({pool, address});
  } else {
    states_[{pool, address}] = state;
  }
  return before;
}

shm::AdminState AdminStates::get(const std::string& pool, const std::string& address) const {
  auto it = states_.find({pool, address});
  return it == states_.end() ? shm::AdminState::None : it->second;
}

void AdminStates::applyTo(shm::ShmRegion& region) const {
  for (const auto& [key, state] : states_) {
    (void)region.setAdmin(key.first, key.second, state);
  }
}

std::vector<std::string> AdminStates::prune(const config::Config& cfg) {
  std::vector<std::string> dropped;
  auto configured = [&cfg](const Key& key) {
    for (const auto& pool : cfg.pools) {
      if (pool.name != key.first) {
        continue;
      }
      for (const auto& backend : pool.backends) {
        if (shm::slotKey(backend) == key.second) {
          return true;
        }
      }
    }
    return false;
  };
  for (auto it = states_.begin(); it != states_.end();) {
    if (configured(it->first)) {
      ++it;
      continue;
    }
    dropped.push_back(it->first.first + "/" + it->first.second + " (" + toString(it->second) +
                      ")");
    it = states_.erase(it);
  }
  return dropped;
}

void AdminStates::adopt(const std::vector<shm::CarriedAdmin>& carried) {
  for (const shm::CarriedAdmin& c : carried) {
    if (c.state != shm::AdminState::None) {
      states_[{c.pool, c.address}] = c.state;
    }
  }
}

}  // namespace weir::master
