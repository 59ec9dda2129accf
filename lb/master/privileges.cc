#include "master/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include "net/unique_fd.h"

namespace weir::master {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// The v3 (64-bit) capability sets of the calling process, as capget(2)/capset(2) see them.
struct CapSets {
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
};

uint64_t maskOf(std::initializer_list<int> caps) {
  uint64_t mask = 0;
  for (int cap : caps) {
    mask |= uint64_t{1} << cap;
  }
  return mask;
}

// capget(2) without libcap: the raw syscall with the v3 structures.
CapSets getCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    fail("capget");
  }
  auto join = [](uint32_t low, uint32_t high) { return uint64_t{high} << 32 | low; };
  return {join(data[0].effective, data[1].effective), join(data[0].permitted, data[1].permitted),
          join(data[0].inheritable, data[1].inheritable)};
}

// capset(2): `keep` permitted and effective, nothing inheritable. Lowering inheritable (or
// permitted) also lowers the ambient set, which may only hold caps that are both.
void setCapabilities(uint64_t keep) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (int half = 0; half < 2; ++half) {
    data[half].permitted = static_cast<uint32_t>(keep >> (32 * half));
    data[half].effective = data[half].permitted;
  }
  if (::syscall(SYS_capset, &header, data) != 0) {
    fail("capset");
  }
}

// The highest capability number this kernel knows: PR_CAPBSET_READ fails with EINVAL past it.
int lastCapability() {
  int cap = 0;
  while (cap < 63 && ::prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0) {
    ++cap;
  }
  return cap;
}

// Drops every capability outside `keep` from the bounding set, which caps what any exec can
// give back (file capabilities, a setuid-root binary). Needs CAP_SETPCAP: a master started
// without it (a non-root user with a few ambient caps) cannot, and its children's exec is
// held by PR_SET_NO_NEW_PRIVS instead.
void dropBoundingSet(uint64_t keep, int last_cap) {
  if ((getCapabilities().effective & (uint64_t{1} << CAP_SETPCAP)) == 0) {
    return;
  }
  for (int cap = 0; cap <= last_cap; ++cap) {
    if ((keep & (uint64_t{1} << cap)) == 0 && ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
        ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      fail("prctl(PR_CAPBSET_DROP, " + std::to_string(cap) + ")");
    }
  }
}

// Supplementary groups, gid and uid as configured; keeps the permitted set across the uid
// change when there are caps to keep (the kernel clears it when root becomes non-root).
void changeIds(const config::Global& global, bool keep_caps) {
  if (global.gid) {
    const gid_t gid = *global.gid;
    // The user's supplementary groups, as a login would have them; just the group otherwise.
    if (global.uid && !global.user.empty() &&
        ::initgroups(global.user.c_str(), gid) == 0) {
      // done
    } else if (::setgroups(1, &gid) != 0) {
      fail("setgroups(" + std::to_string(gid) + ")");
    }
    if (::setresgid(gid, gid, gid) != 0) {
      fail("setgid(" + std::to_string(gid) + ")");
    }
  } else if (global.uid && ::setgroups(0, nullptr) != 0) {
    // A uid with no group known: at least shed root's supplementary groups.
    fail("setgroups(0)");
  }
  if (global.uid) {
    const uid_t uid = *global.uid;
    const bool keep = keep_caps && uid != 0;
    if (keep && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      fail("prctl(PR_SET_KEEPCAPS)");
    }
    if (::setresuid(uid, uid, uid) != 0) {
      fail("setuid(" + std::to_string(uid) + ")");
    }
    if (keep) {
      (void)::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    if (uid != 0 && ::setuid(0) == 0) {
      errno = EPERM;
      fail("dropped to uid " + std::to_string(uid) + " but could regain root");
    }
  }
}

std::string userName(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string groupName(gid_t gid) {
  std::vector<char> buf(16384);
  group gr{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->gr_name;
  }
  return std::to_string(gid);
}

}  // namespace

void applyFileLimit(std::optional<uint64_t> limit) {
  if (!limit) {
    return;
  }
  rlimit rl{};
  rl.rlim_cur = *limit;
  rl.rlim_max = *limit;
  rlimit old{};
  if (::getrlimit(RLIMIT_NOFILE, &old) == 0 && old.rlim_max > *limit) {
    rl.rlim_max = old.rlim_max;  // never lower the hard limit
  }
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    fail("setrlimit(RLIMIT_NOFILE, " + std::to_string(*limit) + ")");
  }
}

void applyPriority(std::optional<int> nice) {
  if (!nice) {
    return;
  }
  if (::setpriority(PRIO_PROCESS, 0, *nice) != 0) {
    spdlog::error("setpriority({}) for worker_priority: {}; running at nice {}", *nice,
                  std::strerror(errno), ::getpriority(PRIO_PROCESS, 0));
  }
}

void applyCoreLimit(std::optional<uint64_t> limit) {
  if (!limit) {
    return;
  }
  rlimit rl{};
  rl.rlim_cur = *limit == config::kUnlimitedCore ? RLIM_INFINITY : *limit;
  rl.rlim_max = rl.rlim_cur;
  if (::setrlimit(RLIMIT_CORE, &rl) != 0) {
    spdlog::error("setrlimit(RLIMIT_CORE) for worker_rlimit_core: {}; the core limit stays the "
                  "master's", std::strerror(errno));
  }
}

void prepareForCores(const config::Global& global) {
  if (!global.working_directory.empty() && ::chdir(global.working_directory.c_str()) != 0) {
    spdlog::error("chdir({}) for working_directory: {}; staying in the master's directory",
                  global.working_directory, std::strerror(errno));
  }
  if (!global.worker_rlimit_core || *global.worker_rlimit_core == 0) {
    return;
  }
  // The uid change cleared the dumpable flag (fs.suid_dumpable is 0 on Debian): no core, and
  // /proc/PID owned by root. Setting it back is a trade-off, made only because the operator
  // asked for cores: a dumpable child may be ptraced, and its memory read through /proc, by
  // any process of the children's user (Yama's ptrace_scope permitting), and its core holds
  // what its memory holds: TLS private keys, session ticket keys, client data in flight.
  if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1 && ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
    spdlog::error("prctl(PR_SET_DUMPABLE) for worker_rlimit_core: {}; a crash leaves no core",
                  std::strerror(errno));
  }
}

void pinToCpu(unsigned index) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    fail("sched_getaffinity");
  }
  const int count = CPU_COUNT(&allowed);
  if (count <= 0) {
    return;
  }
  int want = static_cast<int>(index % static_cast<unsigned>(count));
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed) && want-- == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (::sched_setaffinity(0, sizeof(one), &one) != 0) {
        fail("sched_setaffinity(CPU " + std::to_string(cpu) + ")");
      }
      return;
    }
  }
}

void dropPrivileges(const config::Global& global, std::initializer_list<int> keep_caps) {
  const uint64_t keep = maskOf(keep_caps);
  const int last_cap = lastCapability();
  dropBoundingSet(keep, last_cap);
  changeIds(global, keep != 0);
  setCapabilities(keep);
  // Already empty now that nothing is inheritable; cleared anyway, in case of a kernel that
  // would not lower it. EINVAL: a kernel before 4.3, which has no ambient set.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  // Nothing this process execs may gain privileges back (workers exec nothing anyway).
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail("prctl(PR_SET_NO_NEW_PRIVS)");
  }
  // Check the end state rather than trust each step: a child with a capability too many is
  // worse than a child that does not start.
  const CapSets now = getCapabilities();
  if (now.effective != keep || now.permitted != keep || now.inheritable != 0) {
    errno = EPERM;
    fail("capabilities left after dropping them (effective " + std::to_string(now.effective) +
         ", permitted " + std::to_string(now.permitted) + ", inheritable " +
         std::to_string(now.inheritable) + ")");
  }
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) {
      errno = EPERM;
      fail("ambient capability " + std::to_string(cap) + " left after clearing them");
    }
  }
}

bool hasCapability(int cap) {
  return (getCapabilities().effective & (uint64_t{1} << cap)) != 0;
}

void handOverFile(const std::string& path, const config::Global& global) {
  if (!global.uid || path.empty() || path == "stderr" || path == "off") {
    return;
  }
  const uid_t uid = *global.uid;
  const gid_t gid = global.gid ? *global.gid : static_cast<gid_t>(-1);
  auto refuse = [&](const std::string& why) {
    spdlog::warn("not handing {} over to {}: {}; the workers may not be able to reopen it",
                 path, global.user.empty() ? std::to_string(uid) : global.user, why);
  };
  // lstat first, so that a device or FIFO at the path is never even opened; the fstat below,
  // on what was really opened, is the check that counts.
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    refuse(std::strerror(errno));
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    refuse("it is a symbolic link");
    return;
  }
  // O_NOFOLLOW: a symbolic link swapped in meanwhile (by the workers' user, who may write the
  // directory) fails with ELOOP instead of making root chown its target. O_NONBLOCK: a FIFO
  // swapped in cannot block the master.
  net::UniqueFd fd(
      ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    refuse(errno == ELOOP ? "it is a symbolic link" : std::strerror(errno));
    return;
  }
  if (::fstat(fd.get(), &st) != 0) {
    refuse(std::string("fstat: ") + std::strerror(errno));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    refuse("it is not a regular file");
    return;
  }
  // A second name for the file may be a hard link to a file of someone else's (an
  // unprivileged user can make one where fs.protected_hardlinks is off).
  if (st.st_nlink != 1) {
    refuse("it has " + std::to_string(st.st_nlink) + " hard links");
    return;
  }
  if (st.st_uid == uid && (gid == static_cast<gid_t>(-1) || st.st_gid == gid)) {
    return;
  }
  if (::fchown(fd.get(), uid, gid) != 0) {
    refuse(std::string("fchown: ") + std::strerror(errno));
  }
}

bool workersKeepNetAdmin(const config::Config& cfg) {
  return std::any_of(cfg.pools.begin(), cfg.pools.end(), [](const config::Pool& p) {
    return p.source == config::SourceMode::Client;
  });
}

std::string describeChildCredentials(const config::Config& cfg) {
  const config::Global& global = cfg.global;
  std::string out;
  if (global.uid) {
    out = "user " + (global.user.empty() ? userName(*global.uid) : global.user) + " (uid " +
          std::to_string(*global.uid) + ")";
  } else {
    out = "the master's user " + userName(::geteuid()) + " (uid " +
          std::to_string(::geteuid()) + ")";
  }
  if (global.gid) {
    out += ", group " + (global.group.empty() ? groupName(*global.gid) : global.group) +
           " (gid " + std::to_string(*global.gid) + ")";
  } else {
    out += ", the master's group " + groupName(::getegid()) + " (gid " +
           std::to_string(::getegid()) + ")";
  }
  if (global.user_default) {
    out += ", the default for a master started as root";
  }
  return out + (workersKeepNetAdmin(cfg) ? ", the workers keeping only CAP_NET_ADMIN (a pool "
                                          "has source = \"client\"), the checker none"
                                        : ", without capabilities");
}

bool childrenRunAsRoot(const config::Global& global) {
  return global.uid ? *global.uid == 0 : ::geteuid() == 0;
}

void logChildCredentials(const config::Config& cfg) {
  if (childrenRunAsRoot(cfg.global)) {
    spdlog::warn("workers and the health checker run as root ({}): a flaw in them is a "
                 "flaw in root; set global.user to an unprivileged user",
                 describeChildCredentials(cfg));
  } else {
    spdlog::info("workers and the health checker run as {}", describeChildCredentials(cfg));
  }
}

}  // namespace weir::master
