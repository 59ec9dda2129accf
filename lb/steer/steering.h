#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/access_list.h"
#include "net/unique_fd.h"
#include "util/result.h"

extern "C" {
#include "steer.h"
}

struct steer_bpf;  // the generated skeleton (build tree)

namespace weir::steer {

// The file descriptors of a running master's steering maps, handed to a new binary on a
// binary upgrade (SIGUSR2) so that both masters steer with one set of maps: the socket
// array (a listening socket can sit in one reuseport array only, so the new master could not
// fill an array of its own while the old one runs), the cookie -> group map and the
// counters (.bss), which the old generation's workers keep updating while they drain.
struct MapFds {
  int socks = -1;
  int groups = -1;
  int state = -1;
  bool valid() const { return socks >= 0 && groups >= 0 && state >= 0; }
};

// The userspace half of bpf/steer.bpf.c: loads the sk_reuseport program, attaches it to each
// listen address's reuseport group and owns the shared per-slot load counters.
//
// The counters (weir_steer_state) live in the program's .bss map, which libbpf maps with
// MAP_SHARED, so the master and every forked worker see the program's view directly. When the
// program cannot be loaded (no CAP_BPF, old kernel) or steering = "hash", the same struct lives
// in anonymous shared memory and the kernel's reuseport hash spreads connections.
//
// A group (listen address) has an id 0..WEIR_MAX_GROUPS-1; its socket for slot i sits at
// socks[id * WEIR_MAX_WORKERS + i]. Ids of closed groups are reused.
class Steering {
public:
  // Never fails: when BPF is unavailable, returns a hash-mode instance and fills *why with the
  // reason (empty when BPF loaded). The program is loaded in every mode: with "hash" it leaves
  // the choice to the kernel while every worker runs and steps in while one is down. With `inherit` (a binary
  // upgrade), reuses the old master's maps and counters instead of creating fresh ones; if
  // they cannot be reused, starts fresh and says why in *why.
  static std::unique_ptr<Steering> create(config::Steering mode, unsigned nworkers,
                                          std::string* why, const MapFds* inherit = nullptr);
  ~Steering();
  Steering(const Steering&) = delete;
  Steering& operator=(const Steering&) = delete;

  // Attaches the program to the reuseport group made of `fds` (fds[i] = slot i's listening
  // socket), fills the socket array (entries already in place are kept) and returns the
  // group's id (`id` if given: a group inherited from an old master with that id; else a
  // free id).
  // Without BPF returns 0 and does nothing. Fails with the failing step's errno.
  // `access`, when given, becomes the group's access list before the program is attached
  // (see setAccess); a list that cannot be loaded fails the attach.
  util::Result<uint32_t> attachGroup(const std::vector<int>& fds,
                                     std::optional<uint32_t> id = std::nullopt,
                                     const net::AccessList* access = nullptr);
  // Adds the sockets of slots first_slot.. of group `id` (already attached) to the maps.
  util::Result<util::Ok> addSlots(uint32_t id, size_t first_slot, const std::vector<int>& fds);
  // Forgets group `id` before its sockets are closed (the kernel drops a closed socket from
  // the socket array by itself; the cookie entries are ours to delete). Frees the id.
  void releaseGroup(uint32_t id, const std::vector<int>& fds);

  // Gives group `id` the access list `access` (nullptr: none, everyone may connect). The
  // list is built in a trie of its own and swapped in with one map update, so that every
  // SYN sees either the old list or the new one. Fails (leaving the old list) when the kernel
  // refuses the trie; without BPF it fails with ENOTSUP.
  util::Result<util::Ok> setAccess(uint32_t id, const net::AccessList* access);
  // SYNs the program refused for group `id` since the group was attached (0 without BPF).
  uint64_t denied(uint32_t id) const;

  // Slots the program chooses from (1..WEIR_MAX_WORKERS); moves the not-yet-accepted counts
  // of slots a shrink leaves to the slots whose workers now accept from their sockets.
  void setWorkers(unsigned n);
  // Bit s set: slot s has a running worker. The program steers new connections to these slots
  // only (with none set, the kernel's hash queues them anywhere until workers run).
  void setLiveSlots(uint64_t slots);

  // Lanes (see bpf/steer.h): each generation's workers count their connections in a lane of
  // their own, so that the master can take exactly a dead worker's count away.
  // A free lane for `generation` of this master (nullopt when all WEIR_LANES are taken; lanes
  // of a master that no longer exists are taken back). The lane starts at zero.
  std::optional<unsigned> claimLane(uint64_t generation);
  // The generation's workers are all gone: zero the lane and free it.
  void releaseLane(unsigned lane);
  // Worker `slot` of the generation holding `lane` died: what it counted is gone with it.
  void retireSlot(unsigned lane, unsigned slot);
  // Least-loaded <-> round-robin <-> hash while loaded. Returns false if `mode` needs the
  // program but it is not loaded (started in hash mode or without privileges).
  bool setMode(config::Steering mode);

  // True when the BPF program steers connections.
  bool active() const { return skel_ != nullptr; }
  weir_steer_state* state() const { return state_; }
  // The maps' fds for a binary upgrade (all -1 without BPF).
  MapFds mapFds() const;

private:
  Steering() = default;
  util::Result<util::Ok> fill(uint32_t id, size_t first_slot, const std::vector<int>& fds);
  void zeroLane(unsigned lane);

  ::steer_bpf* skel_ = nullptr;
  weir_steer_state* state_ = nullptr;
  void* anon_ = nullptr;  // anonymous shared mapping when BPF is off
  unsigned nworkers_ = 1;  // what this process last set (the shared copy is never read back)
  // The old master's socket array when its maps could not be reused.
  net::UniqueFd old_socks_;
  std::vector<bool> used_ids_ = std::vector<bool>(WEIR_MAX_GROUPS, false);
};

}  // namespace weir::steer
