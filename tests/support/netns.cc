#include "support/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "support/net_io.h"
#include "support/proc_fs.h"

namespace weir::test {

namespace {

constexpr const char* kPrefix = "weirtest-";
constexpr const char* kNetnsDir = "/run/netns/";

std::string joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) {
    s += (s.empty() ? "" : " ") + a;
  }
  return s;
}

// Runs `ip args...` inside `ns`, or for "" in the caller's namespace (only ever netns add/del
// there, so the host namespace itself is never changed). Throws with the command and its
// output on failure. Not `ip -n NS`: like `ip netns exec` it remounts / and /sys, which fails
// where / is not a mount point (a chroot).
void runIp(const std::vector<std::string>& args, const std::string& ns = "") {
  if (ipBinary().empty()) {
    throw std::runtime_error("iproute2's ip is not installed");
  }
  const RunResult r = run(ipBinary(), args, seconds(10), ns);
  if (r.exitCode() != 0) {
    throw std::runtime_error((ns.empty() ? "" : "in " + ns + ": ") + "ip " + joined(args) + ": " +
                             (r.timed_out ? "timed out" : describeStatus(r.status)) + ": " +
                             r.err + r.out);
  }
}

// The pid in a name "weirtest-PID-N-ROLE", or 0 if the name is not of that form.
pid_t ownerPid(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) {
    return 0;
  }
  const char* digits = name.c_str() + std::strlen(kPrefix);
  char* end = nullptr;
  const long pid = std::strtol(digits, &end, 10);
  return end != digits && *end == '-' && pid > 0 ? static_cast<pid_t>(pid) : 0;
}

// Deletes names left by test processes that died before their destructors ran. Names of
// running processes (other tests in parallel) and names of any other form stay.
void deleteStaleNames() {
  DIR* dir = opendir(kNetnsDir);
  if (dir == nullptr) {
    return;  // no namespace was ever named on this host
  }
  std::vector<std::string> stale;
  while (const dirent* e = readdir(dir)) {
    const pid_t pid = ownerPid(e->d_name);
    if (pid > 0 && pid != getpid() && !processAlive(pid)) {
      stale.emplace_back(e->d_name);
    }
  }
  closedir(dir);
  for (const std::string& name : stale) {
    try {
      runIp({"netns", "del", name});
      std::fprintf(stderr, "netns: deleted %s, left behind by a test process that is gone\n",
                   name.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "netns: cannot delete stale %s: %s\n", name.c_str(), e.what());
    }
  }
}

// Writes `value` to a /proc/sys file. The sysctls under /proc/sys/net belong to the network
// namespace of the thread that opens them, so this is called inside the target namespace.
bool writeSysctl(const std::string& path, const std::string& value, std::string* error) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    *error = path + ": " + errnoText(errno);
    return false;
  }
  return true;
}

// Writes each {path, value} inside `ns`; throws naming what failed.
void writeSysctls(const std::string& ns,
                  const std::vector<std::pair<std::string, std::string>>& settings) {
  std::string error;
  bool ok = true;
  const bool entered = inNetns(
      ns,
      [&] {
        for (const auto& [path, value] : settings) {
          ok = ok && writeSysctl(path, value, &error);
        }
      },
      &error);
  if (!entered || !ok) {
    throw std::runtime_error("sysctl in " + ns + ": " + error);
  }
}

}  // namespace

const std::string& ipBinary() {
  static const std::string path = [] {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
      if (access(p, X_OK) == 0) {
        return std::string(p);
      }
    }
    return std::string();
  }();
  return path;
}

bool canUseNetns(std::string* why) {
  if (geteuid() != 0) {
    *why = "making network namespaces, veths and firewall rules needs root";
    return false;
  }
  if (ipBinary().empty()) {
    *why = "needs iproute2's ip to make network namespaces";
    return false;
  }
  return true;
}

NetnsTopology::NetnsTopology() { deleteStaleNames(); }

NetnsTopology::~NetnsTopology() {
  for (auto it = names_.rbegin(); it != names_.rend(); ++it) {
    try {
      runIp({"netns", "del", *it});
    } catch (const std::exception& e) {
      // A destructor cannot fail the test from here reliably (it may run after it ended);
      // say so loudly, the next topology's constructor cleans up what it can.
      std::fprintf(stderr, "netns: cannot delete %s: %s\n", it->c_str(), e.what());
    }
  }
}

std::string NetnsTopology::addNamespace(const std::string& role) {
  const std::string name =
      kPrefix + std::to_string(getpid()) + "-" + std::to_string(next_++) + "-" + role;
  runIp({"netns", "add", name});
  names_.push_back(name);  // from here on the destructor deletes it
  // No duplicate address detection on the links made later, for their link-local addresses
  // too: while a router's link-local address is tentative, it cannot resolve neighbours for
  // the packets it forwards, and the first forwarded IPv6 connections stall for 1-2 s.
  writeSysctls(name, {{"/proc/sys/net/ipv6/conf/all/accept_dad", "0\n"},
                      {"/proc/sys/net/ipv6/conf/default/accept_dad", "0\n"}});
  ip(name, {"link", "set", "lo", "up"});
  return name;
}

void NetnsTopology::addLink(const std::string& ns_a, const std::string& if_a,
                            const std::string& ns_b, const std::string& if_b) {
  // Made inside ns_a with its peer moved straight into ns_b: neither end ever exists in the
  // host namespace.
  ip(ns_a, {"link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b});
  ip(ns_a, {"link", "set", if_a, "up"});
  ip(ns_b, {"link", "set", if_b, "up"});
}

void NetnsTopology::addAddress(const std::string& ns, const std::string& ifname,
                               const std::string& cidr) {
  if (cidr.find(':') != std::string::npos) {
    ip(ns, {"-6", "addr", "add", cidr, "dev", ifname, "nodad"});
  } else {
    ip(ns, {"-4", "addr", "add", cidr, "dev", ifname});
  }
}

void NetnsTopology::addRoute(const std::string& ns, const std::string& dest,
                             const std::string& via) {
  ip(ns, {via.find(':') != std::string::npos ? "-6" : "-4", "route", "add", dest, "via", via});
}

void NetnsTopology::enableForwarding(const std::string& ns) {
  writeSysctls(ns, {{"/proc/sys/net/ipv4/ip_forward", "1\n"},
                    {"/proc/sys/net/ipv6/conf/all/forwarding", "1\n"}});
}

void NetnsTopology::ip(const std::string& ns, const std::vector<std::string>& args) {
  runIp(args, ns);
}

RunResult runInNetns(const std::string& ns, const std::string& path,
                     const std::vector<std::string>& args, Clock::duration timeout) {
  return run(path, args, timeout, ns);
}

bool inNetns(const std::string& ns, const std::function<void()>& fn, std::string* error) {
  const auto fail = [&](const std::string& why) {
    if (error != nullptr) {
      *error = why;
    }
    return false;
  };
  // The thread's own namespace, to come back to (not the process's: another test helper may
  // have moved this thread, though none keeps it moved).
  Fd home(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) {
    return fail("open /proc/thread-self/ns/net: " + errnoText(errno));
  }
  Fd target(open((std::string(kNetnsDir) + ns).c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) {
    return fail("open " + std::string(kNetnsDir) + ns + ": " + errnoText(errno));
  }
  // setns(CLONE_NEWNET) moves only the calling thread; sockets it makes belong to the
  // namespace current at socket() time, for good.
  if (setns(target.get(), CLONE_NEWNET) != 0) {
    return fail("setns " + ns + ": " + errnoText(errno));
  }
  fn();
  if (setns(home.get(), CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "netns: cannot return from %s: %s\n", ns.c_str(),
                 std::strerror(errno));
    std::abort();
  }
  return true;
}

Fd socketInNetns(const std::string& ns, int domain, int type, int protocol,
                 std::string* error) {
  Fd fd;
  int err = 0;
  if (!inNetns(
          ns,
          [&] {
            fd = Fd(socket(domain, type | SOCK_CLOEXEC, protocol));
            err = errno;
          },
          error)) {
    return Fd();
  }
  if (!fd && error != nullptr) {
    *error = "socket in " + ns + ": " + errnoText(err);
  }
  return fd;
}

Fd connectTcpInNetns(const std::string& ns, const SockAddr& addr, Clock::duration timeout,
                     std::string* error) {
  Fd fd = socketInNetns(ns, addr.family(), SOCK_STREAM | SOCK_NONBLOCK, 0, error);
  if (!fd) {
    return Fd();
  }
  return connectTcp(std::move(fd), addr, timeout, error);
}

uint16_t pickFreePortInNetns(const std::string& ns, const std::string& host) {
  return pickFreePortWith(host,
                          [&ns](int family) { return socketInNetns(ns, family, SOCK_STREAM); });
}

}  // namespace weir::test
