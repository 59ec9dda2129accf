#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/address.h"
#include "net/unique_fd.h"
#include "steer/steering.h"
#include "worker/worker.h"

namespace weir::master {

// One listen address: a reuseport group of listening sockets, one per worker slot ever used.
struct ListenGroup {
  net::SockAddr addr;
  int backlog = 0;
  std::vector<net::UniqueFd> slots;  // slots[i]: the socket the program selects for slot i
  uint32_t steer_id = 0;             // the group's id in the steering maps
  bool attached = false;             // handed to the steering (program attached, or not loaded)
  bool inherited = false;            // taken over from an old master (binary upgrade)
  bool known_id = false;             // steer_id is the group's id in the steering maps
  bool retiring = false;             // no longer configured: SYN filter on, closed when quiet
  bool transparent = false;          // IP_TRANSPARENT on every socket (listeners.NAME.transparent)
  bool defer_accept = false;         // TCP_DEFER_ACCEPT on every socket (listeners.NAME.defer_accept)
  // The access list of the listener that binds the address (nullptr: none), and whether the
  // steering program enforces it; where it does not, the workers do, after accept.
  std::shared_ptr<const net::AccessList> access;
  bool access_in_kernel = false;
};

// Every listening socket of the service, owned by the master for the life of the address.
//
// Sockets are never closed while their address is configured, whatever happens to the
// worker count: the kernel drops the accept queue of a closed listener. With n workers,
// worker i accepts from slots {i, i+n, i+2n, ...} of every group, so every open socket always
// has a worker, and the program steers only to slots < n. Growing past the sockets a group
// has opens new ones into the same group (they inherit its program) and fills the socket
// array before the steering counts them. An address a reload removes is retired (see
// quiesce.h) rather than closed outright.
class ListenSockets {
public:
  explicit ListenSockets(steer::Steering& steering) : steering_(steering) {}

  // Takes over the sockets an old master passed (WEIR_INHERIT, see inheritSpec): each fd
  // must be a listening TCP socket bound to the address named for it. Throws
  // std::runtime_error naming the first entry that does not check out.
  void adopt(const std::string& spec);

  // Gives every bind of `cfg` a group of at least `n` sockets with cfg's backlog, then
  // attaches new groups to the steering program and adds grown slots to its maps. All or
  // nothing for the sockets: if one cannot be opened, the ones this call opened are closed
  // again and std::runtime_error says which bind failed. Steering problems only warn (the
  // kernel's hash spreads that group's connections).
  void open(const config::Config& cfg, unsigned n);

  // Starts retiring every group whose address `cfg` does not bind (all of them with
  // nullptr, for a graceful stop). Returns how many groups are retiring now.
  size_t retire(const config::Config* cfg);
  bool anyRetiring() const;
  // Connections queued or half-open on retiring groups (-1 if it could not be read).
  int64_t retiringBacklog() const;
  // Closes the retiring groups (every worker that held them has stopped accepting).
  void closeRetiring();
  // Closes this master's copies of everything (it is exiting). `forget` also deletes the
  // groups from the steering maps, which a master handing over to a new one (sharing the
  // maps) must not do.
  void closeAll(bool forget);

  // The sockets worker `index` of `n` accepts from, with their listener index in `cfg`.
  // Groups cfg does not bind are left out.
  std::vector<worker::ListenSocket> socketsFor(const config::Config& cfg, unsigned index,
                                               unsigned n) const;
  // In a freshly forked child: closes the child's copies of every socket not in `keep`.
  void closeAllExcept(const std::vector<worker::ListenSocket>& keep);

  // For a binary upgrade: "ID@ADDR=FD,FD,...;..." naming every open socket ("-" for the id
  // of a group without steering), and those fds.
  std::string inheritSpec() const;
  std::vector<int> fds() const;
  // After a failed upgrade: attaches this master's program again (the new master may have
  // replaced it) and puts every socket back into the socket array.
  void reattach();

  const std::vector<ListenGroup>& groups() const { return groups_; }

private:
  ListenGroup* find(const net::SockAddr& addr);
  void attach(ListenGroup& g);
  // Hands group g its listener's access list (already attached groups: swapped in place).
  void applyAccess(ListenGroup& g, const config::Listener& listener);
  // Says where `listener`'s access list is enforced (the kernel or the workers).
  void logAccess(const config::Listener& listener) const;

  steer::Steering& steering_;
  std::vector<ListenGroup> groups_;
};

}  // namespace weir::master
