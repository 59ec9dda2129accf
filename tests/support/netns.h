#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "support/deadline.h"
#include "support/fd.h"
#include "support/process.h"
#include "support/sock_addr.h"

// Network namespaces for tests that need more than 127.0.0.1: routed addresses, a router
// between a client and a backend, firewall rules. Everything a test builds lives in namespaces
// the test created; the host's own addresses, routes and rules are never touched.
//
// A named namespace is a bind mount of /proc/PID/ns/net on /run/netns/NAME (what `ip netns
// add` makes). Deleting the name unmounts it; the namespace itself, with its veths, goes away
// once no process and no socket uses it any more. So a test stops the processes it started
// in a namespace before the topology that made it is destroyed (declare the topology first).
namespace weir::test {

// The `ip` binary of iproute2 (/usr/sbin/ip or /sbin/ip ...), or "" if none is installed.
const std::string& ipBinary();

// True if this process can make namespaces: it runs as root and `ip` is installed. Otherwise
// false with the reason in *why, for a GTEST_SKIP message.
bool canUseNetns(std::string* why);

// Namespaces, veth pairs between them, addresses and routes, owned together: the destructor
// deletes every namespace this object made (deleting a namespace removes its veths too).
//
// Names are "weirtest-PID-N-ROLE", unique per process and object. A test process killed
// before its destructors ran leaves its names behind; the constructor deletes names of this
// form whose PID no longer runs (and nothing else).
//
// Builder calls run `ip ...` inside the namespace and throw std::runtime_error naming the
// command and its stderr when it fails; what was made until then is still deleted by the destructor.
class NetnsTopology {
public:
  NetnsTopology();
  NetnsTopology(const NetnsTopology&) = delete;
  NetnsTopology& operator=(const NetnsTopology&) = delete;
  ~NetnsTopology();

  // Creates a namespace for `role` (a short word: "client", "weir") with lo up and IPv6
  // duplicate address detection off (links come up usable at once); returns its full name.
  std::string addNamespace(const std::string& role);
  // A veth pair: `if_a` in `ns_a`, its peer `if_b` in `ns_b`, both up. Interface names are
  // at most 15 bytes (IFNAMSIZ); they need only be unique inside their namespace.
  void addLink(const std::string& ns_a, const std::string& if_a, const std::string& ns_b,
               const std::string& if_b);
  // Adds "10.1.2.3/24" or "fd00::3/64" to `ifname`. IPv6 addresses are added `nodad`, so they
  // are usable at once instead of tentative for a second of duplicate detection.
  void addAddress(const std::string& ns, const std::string& ifname, const std::string& cidr);
  // A route to `dest` ("default" or a prefix) via the gateway `via`, whose family (IPv4 or
  // IPv6) picks the table family.
  void addRoute(const std::string& ns, const std::string& dest, const std::string& via);
  // Makes `ns` a router: net.ipv4.ip_forward and net.ipv6.conf.all.forwarding set to 1.
  void enableForwarding(const std::string& ns);

  const std::vector<std::string>& namespaces() const { return names_; }

private:
  // Runs `ip args...` inside `ns` and throws unless it exits 0.
  void ip(const std::string& ns, const std::vector<std::string>& args);

  std::vector<std::string> names_;
  unsigned next_ = 0;
};

// Runs `path args...` inside `ns` (entered with setns(2), see Process::Options::netns) to completion, capturing stdout
// and stderr, killed after `timeout` (see run() in process.h). Throws std::runtime_error if
// it cannot be started.
RunResult runInNetns(const std::string& ns, const std::string& path,
                     const std::vector<std::string>& args, Clock::duration timeout);

// Calls `fn` with the calling thread inside `ns`, then moves the thread back to the network
// namespace it was in. Sockets made by `fn` stay in `ns` for their whole life, whichever
// namespace later uses them. Returns false with *error set if `ns` cannot be entered (then
// `fn` did not run). A thread that cannot get back aborts the process: it would go on in the
// wrong namespace.
bool inNetns(const std::string& ns, const std::function<void()>& fn,
             std::string* error = nullptr);

// socket(domain, type | SOCK_CLOEXEC, protocol) inside `ns`; an invalid Fd with *error set on
// failure.
Fd socketInNetns(const std::string& ns, int domain, int type, int protocol = 0,
                 std::string* error = nullptr);

// connectTcp() (net_io.h) from a socket inside `ns`.
Fd connectTcpInNetns(const std::string& ns, const SockAddr& addr, Clock::duration timeout,
                     std::string* error = nullptr);

// A TCP port free right now on `host` inside `ns` (see pickFreePort); 0 on failure.
uint16_t pickFreePortInNetns(const std::string& ns, const std::string& host);

}  // namespace weir::test
