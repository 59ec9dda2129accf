#include "master/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace weir::master {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// capset(2) without libcap: the raw syscall with the v3 (64-bit) structures.
void setCapabilities(std::initializer_list<int> caps) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (int cap : caps) {
    data[cap / 32].permitted |= 1u << (cap % 32);
    data[cap / 32].effective |= 1u << (cap % 32);
  }
  if (::syscall(SYS_capset, &header, data) != 0) {
    fail("capset");
  }
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
  if (!global.uid && !global.gid) {
    return;
  }
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
  } else if (::setgroups(0, nullptr) != 0) {
    // A uid with no group known: at least shed root's supplementary groups.
    fail("setgroups(0)");
  }
  if (global.uid) {
    const uid_t uid = *global.uid;
    const bool keep = keep_caps.size() > 0 && uid != 0;
    if (keep && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      fail("prctl(PR_SET_KEEPCAPS)");
    }
    if (::setresuid(uid, uid, uid) != 0) {
      fail("setuid(" + std::to_string(uid) + ")");
    }
    if (keep) {
      // KEEPCAPS kept the permitted set; trim it to what is needed and make that effective.
      setCapabilities(keep_caps);
      (void)::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    if (uid != 0 && ::setuid(0) == 0) {
      errno = EPERM;
      fail("dropped to uid " + std::to_string(uid) + " but could regain root");
    }
  }
  // Nothing this process execs may gain privileges back (workers exec nothing anyway).
  (void)::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

void handOverFile(const std::string& path, const config::Global& global) {
  if (!global.uid || path.empty() || path == "stderr" || path == "off") {
    return;
  }
  (void)::chown(path.c_str(), *global.uid, global.gid ? *global.gid : static_cast<gid_t>(-1));
}

}  // namespace weir::master
