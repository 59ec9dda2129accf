#include "steer/steering.h"

#include <sys/mman.h>
#include <sys/socket.h>

#include <atomic>
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
static_assert(sizeof(weir_slot_load) == 16);
static_assert(offsetof(weir_steer_state, rotor) == 8);
static_assert(offsetof(weir_steer_state, slots) == 32);
static_assert(sizeof(weir_steer_state) == 32 + 16 * WEIR_MAX_WORKERS);
static_assert(std::atomic_ref<__s64>::is_always_lock_free);

namespace {

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

}  // namespace

std::unique_ptr<Steering> Steering::create(config::Steering mode, unsigned nworkers,
                                           std::string* why) {
  std::unique_ptr<Steering> s(new Steering());
  why->clear();
  if (mode != config::Steering::Hash) {
    libbpf_set_print(libbpfPrint);
    g_last_libbpf_error.clear();
    struct steer_bpf* skel = steer_bpf__open();
    int err = skel ? steer_bpf__load(skel) : -errno;
    if (skel != nullptr && err == 0 && skel->bss != nullptr) {
      s->skel_ = skel;
      s->state_ = &skel->bss->state;
    } else {
      if (skel != nullptr) {
        steer_bpf__destroy(skel);
      }
      *why = std::string("cannot load the sk_reuseport program: ") +
             std::strerror(err < 0 ? -err : EINVAL) +
             (g_last_libbpf_error.empty() ? "" : " (" + g_last_libbpf_error + ")") +
             "; it needs CAP_BPF and CAP_NET_ADMIN (or root) and a kernel >= 5.14";
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
  std::memset(static_cast<void*>(s->state_), 0, sizeof(weir_steer_state));
  s->state_->mode = s->skel_ ? modeOf(mode) : __u32{WEIR_STEER_HASH};
  // nworkers last: the program treats 0 as "steering off".
  std::atomic_ref<__u32>(s->state_->nworkers).store(nworkers);
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

util::Result<util::Ok> Steering::attachGroup(const std::vector<int>& fds) {
  if (skel_ == nullptr || fds.empty()) {
    return util::Ok{};
  }
  if (groups_ >= WEIR_MAX_GROUPS) {
    return util::SysError{E2BIG, "more than " + std::to_string(WEIR_MAX_GROUPS) +
                                     " listen addresses with BPF steering"};
  }
  const __u32 group = groups_;
  int socks_fd = bpf_map__fd(skel_->maps.socks);
  int groups_fd = bpf_map__fd(skel_->maps.groups);
  for (size_t slot = 0; slot < fds.size(); ++slot) {
    __u32 key = group * WEIR_MAX_WORKERS + static_cast<__u32>(slot);
    __u64 value = static_cast<__u64>(fds[slot]);
    if (bpf_map_update_elem(socks_fd, &key, &value, BPF_ANY) != 0) {
      return util::lastError("fill reuseport socket array slot " + std::to_string(slot));
    }
    __u64 cookie = 0;
    socklen_t len = sizeof(cookie);
    if (::getsockopt(fds[slot], SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) {
      return util::lastError("getsockopt SO_COOKIE");
    }
    if (bpf_map_update_elem(groups_fd, &cookie, &group, BPF_ANY) != 0) {
      return util::lastError("map socket cookie to group");
    }
  }
  // Attach last: from here on the program decides, and every slot is already in the map.
  int prog_fd = bpf_program__fd(skel_->progs.weir_steer);
  if (::setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd, sizeof(prog_fd)) != 0) {
    return util::lastError("attach sk_reuseport program");
  }
  ++groups_;
  return util::Ok{};
}

}  // namespace weir::steer
