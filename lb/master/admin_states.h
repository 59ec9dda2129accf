#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "shm/carry_over.h"
#include "shm/layout.h"
#include "shm/region.h"

namespace weir::master {

// The admin states an operator set with weirctl (drain, maint), held by the master in its own
// memory, keyed by (pool name, "IP:PORT" as net::SockAddr::toString writes it). This is what
// counts: the copies in shared memory (shm::BackendSlot::admin) are written from here, into
// every region before its children fork, so a state survives reloads; workers could
// overwrite those copies, and nothing is ever read back from them (except, validated, from
// an old master's region in a binary upgrade: adopt()).
class AdminStates {
public:
  using Key = std::pair<std::string, std::string>;  // pool, address

  // Sets the state of (pool, address); None forgets it. Returns the state it had.
  shm::AdminState set(const std::string& pool, const std::string& address,
                      shm::AdminState state);
  shm::AdminState get(const std::string& pool, const std::string& address) const;
  const std::map<Key, shm::AdminState>& all() const { return states_; }

  // Writes every state into `region` (backends it does not have are skipped). The master
  // calls it for a new generation's region before forking its children.
  void applyTo(shm::ShmRegion& region) const;
  // Forgets the states of backends `cfg` no longer has (a reload removed them); returns
  // "pool/address (state)" for each, for the log.
  std::vector<std::string> prune(const config::Config& cfg);
  // Takes the states an old master's region held (binary upgrade): shm::carryOver checked
  // each is a state and reports only backends of the new region, so of this config.
  void adopt(const std::vector<shm::CarriedAdmin>& carried);

private:
  std::map<Key, shm::AdminState> states_;
};

}  // namespace weir::master
