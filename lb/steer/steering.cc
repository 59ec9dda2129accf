#include "steer/steering.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include "steer.skel.h"

namespace weir::steer {

static_assert(WEIR_MAX_WORKERS == config::kMaxWorkers);
static_assert((WEIR_MAX_WORKERS & (WEIR_MAX_WORKERS - 1)) == 0);
static_assert(offsetof(weir_steer_state, rotor) == 8);
static_assert(offsetof(weir_steer_state, live) == 32);
static_assert(offsetof(weir_steer_state, lane_owner) == 40);
static_assert(offsetof(weir_steer_state, steered) == 40 + 8 * WEIR_LANES);
static_assert(offsetof(weir_steer_state, active) == 40 + 8 * WEIR_LANES + 8 * WEIR_MAX_WORKERS);
static_assert(sizeof(weir_steer_state) ==
              40 + 8 * WEIR_LANES + 8 * WEIR_MAX_WORKERS * (1 + WEIR_LANES));
static_assert(WEIR_ACL_MAX_PREFIXES == config::kMaxAccessPrefixes);
static_assert(sizeof(weir_acl_key) == 24);
static_assert(std::atomic_ref<__s64>::is_always_lock_free);
static_assert(std::atomic_ref<__u64>::is_always_lock_free);

namespace {

std::atomic_ref<__s64> counter(__s64& v) { return std::atomic_ref<__s64>(v); }

// libbpf's messages go to our log at debug level; the last warning is kept so that a failed
// load can say why in one line.
thread_local std::string g_last_libbpf_error;

int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[512];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  std::string line(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
  while (!line.empty() && line.back() == '\n') {
    line.pop_back();
  }
  if (level == LIBBPF_WARN && !line.empty()) {
    g_last_libbpf_error = line;
  }
  spdlog::debug("libbpf: {}", line);
  return 0;
}

__u32 modeOf(config::Steering mode) {
  switch (mode) {
    case config::Steering::LeastLoaded:
      return WEIR_STEER_LEAST_LOADED;
    case config::Steering::RoundRobin:
      return WEIR_STEER_ROUND_ROBIN;
    case config::Steering::Hash:
      return WEIR_STEER_HASH;
  }
  return WEIR_STEER_HASH;
}

// Points the skeleton's maps at a running master's (binary upgrade). Returns 0 or -errno.
int reuseMaps(struct steer_bpf* skel, const MapFds& fds) {
  int err = bpf_map__reuse_fd(skel->maps.socks, fds.socks);
  if (err == 0) {
    err = bpf_map__reuse_fd(skel->maps.groups, fds.groups);
  }
  if (err == 0) {
    err = bpf_map__reuse_fd(skel->maps.bss, fds.state);
  }
  return err;
}

std::string loadError(int err) {
  return std::string("cannot load the sk_reuseport program: ") +
         std::strerror(err < 0 ? -err : EINVAL) +
         (g_last_libbpf_error.empty() ? "" : " (" + g_last_libbpf_error + ")") +
         "; it needs CAP_BPF and CAP_PERFMON (or root) and a kernel >= 5.14";
}

}  // namespace

std::unique_ptr<Steering> Steering::create(config::Steering mode, unsigned nworkers,
                                           std::string* why, const MapFds* inherit) {
  std::unique_ptr<Steering> s(new Steering());
  why->clear();
  bool reused = false;
  {  // In every mode: even "hash" needs the program to keep connections off a dead worker.
    libbpf_set_print(libbpfPrint);
    g_last_libbpf_error.clear();
    struct steer_bpf* skel = steer_bpf__open();
    int err = skel ? 0 : -errno;
    if (skel != nullptr && inherit != nullptr && inherit->valid()) {
      err = reuseMaps(skel, *inherit);
      if (err == 0) {
        err = steer_bpf__load(skel);
        reused = err == 0;
      }
      if (err != 0) {
        // Maps of an incompatible build: start fresh; fill() then takes each socket out of
        // the old array first.
        *why = "cannot reuse the old master's steering maps (" +
               std::string(std::strerror(-err)) + "); steering starts with fresh counters";
        steer_bpf__destroy(skel);
        skel = steer_bpf__open();
        err = skel ? 0 : -errno;
        s->old_socks_ = net::UniqueFd(::fcntl(inherit->socks, F_DUPFD_CLOEXEC, 0));
      }
    }
    if (skel != nullptr && err == 0 && !reused) {
      err = steer_bpf__load(skel);
    }
    if (skel != nullptr && err == 0 && skel->bss != nullptr) {
      s->skel_ = skel;
      s->state_ = &skel->bss->state;
    } else {
      if (skel != nullptr) {
        steer_bpf__destroy(skel);
      }
      *why = loadError(err);
      reused = false;
    }
  }
  if (s->state_ == nullptr) {
    s->anon_ = ::mmap(nullptr, sizeof(weir_steer_state), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->anon_ == MAP_FAILED) {
      throw std::runtime_error(std::string("mmap shared steering state: ") +
                               std::strerror(errno));
    }
    s->state_ = static_cast<weir_steer_state*>(s->anon_);
  }
  if (reused) {
    // The old master's workers still count in these slots; its nworkers, mode and live slots
    // stay until this master's workers run (setWorkers, setMode, setLiveSlots). Its worker
    // count is read once, bounded, to know which counts a shrink must move.
    s->nworkers_ = std::min<unsigned>(std::atomic_ref<__u32>(s->state_->nworkers).load(),
                                      WEIR_MAX_WORKERS);
    return s;
  }
  std::memset(static_cast<void*>(s->state_), 0, sizeof(weir_steer_state));
  s->state_->mode = s->skel_ ? modeOf(mode) : __u32{WEIR_STEER_HASH};
  // nworkers last: the program treats 0 as "steering off".
  s->nworkers_ = std::clamp(nworkers, 1u, unsigned{WEIR_MAX_WORKERS});
  std::atomic_ref<__u32>(s->state_->nworkers).store(s->nworkers_);
  return s;
}

Steering::~Steering() {
  if (skel_ != nullptr) {
    steer_bpf__destroy(skel_);
  }
  if (anon_ != nullptr) {
    ::munmap(anon_, sizeof(weir_steer_state));
  }
}

void Steering::setWorkers(unsigned n) {
  n = std::clamp(n, 1u, unsigned{WEIR_MAX_WORKERS});
  const unsigned old = nworkers_;  // this process's own number, never the shared one
  // `steered` counts connections sent to a slot and not yet accepted. After a shrink, what
  // waits in the sockets of slots >= n is accepted by worker (slot mod n), which takes it
  // off its own slot's count: move the counts there. Slots coming back after a grow were
  // not steered to meanwhile, so whatever they still count was moved away then.
  for (unsigned s = n; s < old; ++s) {
    const __s64 left = counter(state_->steered[s]).exchange(0);
    counter(state_->steered[s % n]).fetch_add(left);
  }
  for (unsigned s = old; s < n && old > 0; ++s) {
    counter(state_->steered[s]).store(0);
  }
  nworkers_ = n;
  std::atomic_ref<__u32>(state_->nworkers).store(n);
}

void Steering::setLiveSlots(uint64_t slots) {
  std::atomic_ref<__u64>(state_->live).store(slots);
}

std::optional<unsigned> Steering::claimLane(uint64_t generation) {
  const uint64_t tag = (uint64_t{static_cast<uint32_t>(::getpid())} << 32) |
                       (generation & 0xffffffffu);
  for (int pass = 0; pass < 2; ++pass) {
    for (unsigned lane = 0; lane < WEIR_LANES; ++lane) {
      std::atomic_ref<__u64> owner(state_->lane_owner[lane]);
      __u64 free = 0;
      if (owner.compare_exchange_strong(free, tag)) {
        zeroLane(lane);  // free lanes count zero; this makes sure of it
        return lane;
      }
      // Second pass: a lane whose master is gone (killed during an upgrade) is taken back.
      const auto pid = static_cast<pid_t>(free >> 32);
      if (pass == 1 && pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH &&
          owner.compare_exchange_strong(free, tag)) {
        spdlog::warn("steering lane {} of master pid {} (gone) taken back", lane, pid);
        zeroLane(lane);
        return lane;
      }
    }
  }
  return std::nullopt;
}

void Steering::releaseLane(unsigned lane) {
  if (lane >= WEIR_LANES) {
    return;
  }
  zeroLane(lane);
  std::atomic_ref<__u64>(state_->lane_owner[lane]).store(0);
}

void Steering::retireSlot(unsigned lane, unsigned slot) {
  if (lane < WEIR_LANES && slot < WEIR_MAX_WORKERS) {
    counter(state_->active[lane][slot]).store(0);
  }
}

void Steering::zeroLane(unsigned lane) {
  for (unsigned s = 0; s < WEIR_MAX_WORKERS; ++s) {
    counter(state_->active[lane][s]).store(0);
  }
}

bool Steering::setMode(config::Steering mode) {
  if (skel_ == nullptr) {
    return mode == config::Steering::Hash;
  }
  std::atomic_ref<__u32>(state_->mode).store(modeOf(mode));
  return true;
}

MapFds Steering::mapFds() const {
  if (skel_ == nullptr) {
    return {};
  }
  return {bpf_map__fd(skel_->maps.socks), bpf_map__fd(skel_->maps.groups),
          bpf_map__fd(skel_->maps.bss)};
}

util::Result<util::Ok> Steering::fill(uint32_t id, size_t first_slot,
                                      const std::vector<int>& fds) {
  int socks_fd = bpf_map__fd(skel_->maps.socks);
  int groups_fd = bpf_map__fd(skel_->maps.groups);
  for (size_t i = 0; i < fds.size(); ++i) {
    const size_t slot = first_slot + i;
    if (slot >= WEIR_MAX_WORKERS) {
      return util::SysError{E2BIG, "more than " + std::to_string(WEIR_MAX_WORKERS) +
                                       " sockets in one reuseport group"};
    }
    __u32 key = id * WEIR_MAX_WORKERS + static_cast<__u32>(slot);
    __u64 cookie = 0;
    socklen_t len = sizeof(cookie);
    if (::getsockopt(fds[i], SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) {
      return util::lastError("getsockopt SO_COOKIE");
    }
    // A socket can sit in one socket array, at one index, only (EBUSY otherwise). Reading an
    // entry returns the socket's cookie, so a socket already in place (inherited maps, or
    // filled again after a failed upgrade) is left alone.
    __u64 present = 0;
    if (bpf_map_lookup_elem(socks_fd, &key, &present) != 0 || present != cookie) {
      if (old_socks_) {
        (void)bpf_map_delete_elem(old_socks_.get(), &key);
      }
      __u64 value = static_cast<__u64>(fds[i]);
      if (bpf_map_update_elem(socks_fd, &key, &value, BPF_ANY) != 0) {
        return util::lastError("fill reuseport socket array slot " + std::to_string(slot));
      }
    }
    if (bpf_map_update_elem(groups_fd, &cookie, &id, BPF_ANY) != 0) {
      return util::lastError("map socket cookie to group");
    }
  }
  return util::Ok{};
}

util::Result<util::Ok> Steering::setAccess(uint32_t id, const net::AccessList* access) {
  if (skel_ == nullptr) {
    return util::SysError{ENOTSUP, "BPF steering is not loaded"};
  }
  if (id >= WEIR_MAX_GROUPS) {
    return util::SysError{EINVAL, "steering group id " + std::to_string(id) + " out of range"};
  }
  const int outer = bpf_map__fd(skel_->maps.acls);
  if (access == nullptr) {
    if (bpf_map_delete_elem(outer, &id) != 0 && errno != ENOENT) {
      return util::lastError("remove the access list of steering group " + std::to_string(id));
    }
    return util::Ok{};
  }
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
  net::UniqueFd trie(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "weir_acl", sizeof(weir_acl_key),
                                    sizeof(__u32), WEIR_ACL_MAX_PREFIXES, &opts));
  if (!trie) {
    return util::lastError("create an access list trie");
  }
  auto put = [&](const net::AccessList::Key& k, __u32 action) {
    weir_acl_key key{};
    key.prefixlen = k.bits;
    key.family = k.bytes[0];
    std::memcpy(key.addr, &k.bytes[1], sizeof(key.addr));
    return bpf_map_update_elem(trie.get(), &key, &action, BPF_ANY);
  };
  // The default first: the entry of length 0 covers every address of both families.
  if (put(net::AccessList::Key{}, access->defaultAllow() ? WEIR_ACL_ALLOW : WEIR_ACL_DENY) != 0) {
    return util::lastError("fill an access list trie");
  }
  for (const auto& rule : access->rules()) {
    if (put(net::AccessList::keyOf(rule.prefix), rule.allow ? WEIR_ACL_ALLOW : WEIR_ACL_DENY) !=
        0) {
      return util::lastError("fill an access list trie with " + rule.prefix.toString());
    }
  }
  // The swap: from this update on, the program looks clients up in the new trie. The map
  // holds its own reference, so ours can go.
  const int inner = trie.get();
  if (bpf_map_update_elem(outer, &id, &inner, BPF_ANY) != 0) {
    return util::lastError("install the access list of steering group " + std::to_string(id));
  }
  return util::Ok{};
}

uint64_t Steering::denied(uint32_t id) const {
  if (skel_ == nullptr || id >= WEIR_MAX_GROUPS) {
    return 0;
  }
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) {
    return 0;
  }
  std::vector<__u64> per_cpu(static_cast<size_t>(ncpus));
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.denied), &id, per_cpu.data()) != 0) {
    return 0;
  }
  uint64_t total = 0;
  for (__u64 v : per_cpu) {
    total += v;
  }
  return total;
}

util::Result<uint32_t> Steering::attachGroup(const std::vector<int>& fds,
                                             std::optional<uint32_t> id,
                                             const net::AccessList* access) {
  if (fds.empty()) {
    return uint32_t{0};
  }
  if (skel_ == nullptr) {
    // A group inherited from a master that steered keeps that program attached (with maps
    // nobody updates any more): hand the group back to the kernel's hash. ENOENT: none.
    (void)::setsockopt(fds[0], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, nullptr, 0);
    return uint32_t{0};
  }
  if (!id) {
    auto free = std::find(used_ids_.begin(), used_ids_.end(), false);
    if (free == used_ids_.end()) {
      return util::SysError{E2BIG, "more than " + std::to_string(WEIR_MAX_GROUPS) +
                                       " listen addresses with BPF steering"};
    }
    id = static_cast<uint32_t>(free - used_ids_.begin());
  }
  if (*id >= WEIR_MAX_GROUPS || used_ids_[*id]) {
    return util::SysError{EINVAL, "steering group id " + std::to_string(*id) + " in use"};
  }
  if (auto filled = fill(*id, 0, fds); !filled) {
    return filled.error();
  }
  // A fresh id starts counting refusals from zero; an inherited group keeps its list until
  // this one is in (the program attached below reads this master's map).
  {
    const int ncpus = std::max(libbpf_num_possible_cpus(), 1);
    std::vector<__u64> zeros(static_cast<size_t>(ncpus), 0);
    (void)bpf_map_update_elem(bpf_map__fd(skel_->maps.denied), &*id, zeros.data(), BPF_ANY);
  }
  if (auto set = setAccess(*id, access); !set) {
    return set.error();
  }
  // Attach last: from here on the program decides, and every slot is already in the map. On
  // a group that already has a program (an inherited one), this replaces it atomically.
  int prog_fd = bpf_program__fd(skel_->progs.weir_steer);
  if (::setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd, sizeof(prog_fd)) != 0) {
    return util::lastError("attach sk_reuseport program");
  }
  used_ids_[*id] = true;
  return *id;
}

util::Result<util::Ok> Steering::addSlots(uint32_t id, size_t first_slot,
                                          const std::vector<int>& fds) {
  if (skel_ == nullptr || fds.empty()) {
    return util::Ok{};
  }
  return fill(id, first_slot, fds);
}

void Steering::releaseGroup(uint32_t id, const std::vector<int>& fds) {
  if (skel_ == nullptr || id >= WEIR_MAX_GROUPS) {
    return;
  }
  (void)setAccess(id, nullptr);
  int groups_fd = bpf_map__fd(skel_->maps.groups);
  for (int fd : fds) {
    __u64 cookie = 0;
    socklen_t len = sizeof(cookie);
    if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) == 0) {
      (void)bpf_map_delete_elem(groups_fd, &cookie);
    }
  }
  used_ids_[id] = false;
}

}  // namespace weir::steer
