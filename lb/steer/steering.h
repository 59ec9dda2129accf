#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/result.h"

extern "C" {
#include "steer.h"
}

struct steer_bpf;  // the generated skeleton (build tree)

namespace weir::steer {

// The userspace half of bpf/steer.bpf.c: loads the sk_reuseport program, attaches it to each
// listen address's reuseport group and owns the shared per-slot load counters.
//
// The counters (weir_steer_state) live in the program's .bss map, which libbpf maps with
// MAP_SHARED, so the master and every forked worker see the program's view directly. When the
// program cannot be loaded (no CAP_BPF, old kernel) or steering = "hash", the same struct lives
// in anonymous shared memory and the kernel's reuseport hash spreads connections.
class Steering {
public:
  // Never fails: when BPF is unavailable, returns a hash-mode instance and fills *why with the
  // reason (empty when BPF loaded or hash mode was asked for).
  static std::unique_ptr<Steering> create(config::Steering mode, unsigned nworkers,
                                          std::string* why);
  ~Steering();
  Steering(const Steering&) = delete;
  Steering& operator=(const Steering&) = delete;

  // Attaches the program to the reuseport group made of `fds` (fds[i] = slot i's listening
  // socket) and fills the socket array. No-op without BPF. Fails with the failing step's errno.
  util::Result<util::Ok> attachGroup(const std::vector<int>& fds);

  // True when the BPF program steers connections.
  bool active() const { return skel_ != nullptr; }
  weir_steer_state* state() const { return state_; }

private:
  Steering() = default;

  ::steer_bpf* skel_ = nullptr;
  weir_steer_state* state_ = nullptr;
  void* anon_ = nullptr;  // anonymous shared mapping when BPF is off
  unsigned groups_ = 0;
};

}  // namespace weir::steer
