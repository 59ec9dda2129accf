#include "support/ecmp_lab.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "support/net_io.h"

namespace weir::test {

namespace {

constexpr int kRouterAs = 65000;
constexpr int kNodeAs = 65001;
constexpr const char* kCutTable = "weir_lab_power_cut";
constexpr auto kCommandTimeout = seconds(10);

// The same timers on both ends of every session: a dead peer is noticed after 3 s; the
// first connect is tried 1 s after start (BIRD's default is 5 s) and, after a failed
// session, again after 1-2 s (default 60-300 s), so a restored node is back at once.
constexpr const char* kBgpTimers =
    "  hold time 3;\n"
    "  keepalive time 1;\n"
    "  connect delay time 1;\n"
    "  connect retry time 1;\n"
    "  error wait time 1, 2;\n";

std::string str(int n) { return std::to_string(n); }

// Writes `value` to a /proc/sys file from inside `ns` (net.* sysctls belong to the network
// namespace of the thread that opens them). Throws naming the file on failure.
void writeSysctl(const std::string& ns, const std::string& path, const std::string& value) {
  std::string error;
  bool written = false;
  const bool entered = inNetns(
      ns,
      [&] {
        Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd) {
          error = path + ": " + errnoText(errno);
          return;
        }
        written = write(fd.get(), value.data(), value.size()) ==
                  static_cast<ssize_t>(value.size());
        if (!written) {
          error = path + ": " + errnoText(errno);
        }
      },
      &error);
  if (!entered || !written) {
    throw std::runtime_error("sysctl in " + ns + ": " + error);
  }
}

std::string lastLines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') {
    --pos;
  }
  for (size_t n = 0; n < lines && pos > 0; ++n) {
    const size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      return text;
    }
    pos = nl;
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

}  // namespace

bool EcmpLab::available(std::string* why) {
  if (!canUseNetns(why)) {
    return false;
  }
  for (const char* program : {"bird", "birdc", "nft"}) {
    if (findProgram(program).empty()) {
      *why = std::string("needs ") + program +
             " (Debian: apt-get install bird2 nftables) for the ECMP lab";
      return false;
    }
  }
  return true;
}

EcmpLab::EcmpLab(const Options& options) : options_(options), dir_("weir-ecmp-lab") {
  if (options_.nodes < 1 || options_.nodes > 9) {
    throw std::runtime_error("EcmpLab: 1 to 9 nodes, not " + str(options_.nodes));
  }
  const std::string weir_conf = options_.source_dir + "/packaging/bird/weir.conf";
  if (access(weir_conf.c_str(), R_OK) != 0) {
    throw std::runtime_error("EcmpLab: cannot read " + weir_conf);
  }

  router_ns_ = topo_.addNamespace("router");
  client_ns_ = topo_.addNamespace("client");
  backend_ns_ = topo_.addNamespace("backends");
  topo_.enableForwarding(router_ns_);
  // Hash on the 5-tuple (policy 1, "L4"), so one client address spreads over the nodes by
  // port. The default (0) hashes addresses only: one client would always reach one node.
  writeSysctl(router_ns_, "/proc/sys/net/ipv4/fib_multipath_hash_policy", "1\n");
  writeSysctl(router_ns_, "/proc/sys/net/ipv6/fib_multipath_hash_policy", "1\n");

  topo_.addLink(router_ns_, "rc", client_ns_, "cl");
  topo_.addAddress(router_ns_, "rc", "10.1.0.1/24");
  topo_.addAddress(router_ns_, "rc", "fd00:1::1/64");
  for (const bool v6 : {false, true}) {
    for (const std::string& a : clientAddresses(v6)) {
      topo_.addAddress(client_ns_, "cl", a + (v6 ? "/64" : "/24"));
    }
  }
  topo_.addRoute(client_ns_, "default", "10.1.0.1");
  topo_.addRoute(client_ns_, "default", "fd00:1::1");

  topo_.addLink(router_ns_, "rb", backend_ns_, "bk");
  topo_.addAddress(router_ns_, "rb", "10.2.0.1/24");
  topo_.addAddress(router_ns_, "rb", "fd00:2::1/64");
  for (const bool v6 : {false, true}) {
    for (const std::string& a : backendAddresses(v6)) {
      topo_.addAddress(backend_ns_, "bk", a + (v6 ? "/64" : "/24"));
    }
  }
  topo_.addRoute(backend_ns_, "default", "10.2.0.1");
  topo_.addRoute(backend_ns_, "default", "fd00:2::1");

  for (int i = 0; i < options_.nodes; ++i) {
    const std::string n = str(i + 1);
    const std::string ns = topo_.addNamespace("node" + n);
    node_ns_.push_back(ns);
    // Not "up": `ip link set up up` would read the name as the keyword.
    topo_.addLink(router_ns_, "n" + n, ns, "uplink");
    topo_.addAddress(router_ns_, "n" + n, "10.0." + n + ".1/24");
    topo_.addAddress(router_ns_, "n" + n, "fd00:0:" + n + "::1/64");
    topo_.addAddress(ns, "uplink", nodeAddress(i) + "/24");
    topo_.addAddress(ns, "uplink", nodeAddress(i, true) + "/64");
    topo_.addAddress(ns, "lo", std::string(kVip4) + "/32");
    topo_.addAddress(ns, "lo", std::string(kVip6) + "/128");
    topo_.addRoute(ns, "default", "10.0." + n + ".1");
    topo_.addRoute(ns, "default", "fd00:0:" + n + "::1");
  }

  router_.ns = router_ns_;
  router_.socket = dir_.file("router.ctl");
  router_.log = dir_.file("router.log");
  router_.config = dir_.write("router.conf", routerConfig());  // names router_.log
  startBird(router_);
  for (int i = 0; i < options_.nodes; ++i) {
    const std::string name = "node" + str(i + 1);
    auto b = std::make_unique<Bird>();
    b->ns = node_ns_[i];
    b->socket = dir_.file(name + ".ctl");
    b->log = dir_.file(name + ".log");
    b->config = dir_.write(name + ".conf", nodeConfig(i));
    startBird(*b);
    nodes_.push_back(std::move(b));
  }
  if (!waitForSessions(seconds(15))) {
    throw std::runtime_error("EcmpLab: BGP sessions not established within 15 s:\n" +
                             birdc(-1, "show protocols").out + logTails());
  }
}

EcmpLab::~EcmpLab() {
  // SIGTERM: BIRD closes its sessions and exits. Before the namespaces and the directory
  // with its sockets go (the members declared earlier are destroyed later).
  for (auto& b : nodes_) {
    b->process.stop(seconds(3));
  }
  router_.process.stop(seconds(3));
}

std::string EcmpLab::routerConfig() const {
  std::string c = "log \"" + router_.log + "\" all;\n"
                  "router id 10.1.0.1;\n"
                  "protocol device { }\n"
                  // One kernel route per VIP with a next hop per node: BIRD merges the best
                  // route with every other one that BGP's decision process finds equal
                  // (same local preference, AS path length, origin, MED; all external).
                  "protocol kernel kernel4 {\n"
                  "  merge paths on;\n"
                  "  ipv4 { import none; export all; };\n"
                  "}\n"
                  "protocol kernel kernel6 {\n"
                  "  merge paths on;\n"
                  "  ipv6 { import none; export all; };\n"
                  "}\n"
                  "template bgp lab_node {\n"
                  "  local as " + str(kRouterAs) + ";\n" +
                  kBgpTimers + "}\n";
  for (int i = 0; i < options_.nodes; ++i) {
    const std::string n = str(i + 1);
    const std::string as = str(options_.distinct_node_as ? kNodeAs + i + 1 : kNodeAs);
    // eBGP in BIRD 2 needs explicit filters (RFC 8212): accept all from the node, send none.
    c += "protocol bgp node" + n + "_4 from lab_node {\n"
         "  source address 10.0." + n + ".1;\n"
         "  neighbor " + nodeAddress(i) + " as " + as + ";\n"
         "  ipv4 { import all; export none; };\n"
         "}\n"
         "protocol bgp node" + n + "_6 from lab_node {\n"
         "  source address fd00:0:" + n + "::1;\n"
         "  neighbor " + nodeAddress(i, true) + " as " + as + ";\n"
         "  ipv6 { import all; export none; };\n"
         "}\n";
  }
  return c;
}

std::string EcmpLab::nodeConfig(int i) const {
  const std::string n = str(i + 1);
  const std::string log = dir_.file("node" + n + ".log");
  const std::string as = str(options_.distinct_node_as ? kNodeAs + i + 1 : kNodeAs);
  // What an operator writes: router id, a device protocol, the include, and a session per
  // family whose channel reads weir4/weir6 and exports through weir_export.
  return "log \"" + log + "\" all;\n"
         "router id " + nodeAddress(i) + ";\n"
         "protocol device { }\n"
         "include \"" + options_.source_dir + "/packaging/bird/weir.conf\";\n"
         "template bgp lab_router {\n" + kBgpTimers + "}\n"
         "protocol bgp router4 from lab_router {\n"
         "  local " + nodeAddress(i) + " as " + as + ";\n"
         "  neighbor 10.0." + n + ".1 as " + str(kRouterAs) + ";\n"
         "  ipv4 { table weir4; import none; export filter weir_export; next hop self; };\n"
         "}\n"
         "protocol bgp router6 from lab_router {\n"
         "  local " + nodeAddress(i, true) + " as " + as + ";\n"
         "  neighbor fd00:0:" + n + "::1 as " + str(kRouterAs) + ";\n"
         "  ipv6 { table weir6; import none; export filter weir_export; next hop self; };\n"
         "}\n";
}

void EcmpLab::startBird(Bird& bird) {
  Process::Options opts;
  opts.netns = bird.ns;
  opts.out = Process::Output::File;
  opts.out_path = bird.log + ".out";
  opts.err = Process::Output::File;
  opts.err_path = bird.log + ".err";
  bird.process = Process::spawn(findProgram("bird"), {"-f", "-c", bird.config, "-s", bird.socket},
                                opts);
}

const std::string& EcmpLab::nodeNs(int i) const { return node_ns_.at(i); }

std::string EcmpLab::nodeAddress(int i, bool ipv6) const {
  const std::string n = str(i + 1);
  return ipv6 ? "fd00:0:" + n + "::2" : "10.0." + n + ".2";
}

int EcmpLab::nodeByAddress(const std::string& address) const {
  for (int i = 0; i < options_.nodes; ++i) {
    if (address == nodeAddress(i) || address == nodeAddress(i, true)) {
      return i;
    }
  }
  return -1;
}

std::set<std::string> EcmpLab::nodeAddresses(const std::vector<int>& nodes, bool ipv6) const {
  std::set<std::string> out;
  for (const int i : nodes) {
    out.insert(nodeAddress(i, ipv6));
  }
  return out;
}

std::vector<std::string> EcmpLab::clientAddresses(bool ipv6) const {
  std::vector<std::string> out;
  for (int i = 10; i < 18; ++i) {
    out.push_back((ipv6 ? "fd00:1::" : "10.1.0.") + str(i));
  }
  return out;
}

std::vector<std::string> EcmpLab::backendAddresses(bool ipv6) const {
  std::vector<std::string> out;
  for (int i = 10; i < 14; ++i) {
    out.push_back((ipv6 ? "fd00:2::" : "10.2.0.") + str(i));
  }
  return out;
}

void EcmpLab::vipRoute(int i, const std::string& verb, const std::string& vip) {
  const bool v6 = vip.find(':') != std::string::npos;
  const RunResult r = run(nodeNs(i), ipBinary(),
                          {v6 ? "-6" : "-4", "route", verb, vip + (v6 ? "/128" : "/32"), "dev",
                           "lo", "table", "4747", "proto", "87"});
  if (r.exitCode() != 0) {
    throw std::runtime_error("in " + nodeNs(i) + ": ip route " + verb + " " + vip + ": " +
                             describeStatus(r.status) + ": " + r.err);
  }
}

void EcmpLab::addVipRoute(int i, const std::string& vip) { vipRoute(i, "replace", vip); }

void EcmpLab::delVipRoute(int i, const std::string& vip) { vipRoute(i, "del", vip); }

std::set<std::string> EcmpLab::routerNexthops(const std::string& vip) {
  const bool v6 = vip.find(':') != std::string::npos;
  const RunResult r = run(router_ns_, ipBinary(),
                          {"-j", v6 ? "-6" : "-4", "route", "show", "table", "main", "exact",
                           vip + (v6 ? "/128" : "/32")});
  if (r.exitCode() != 0) {
    throw std::runtime_error("in " + router_ns_ + ": ip route show " + vip + ": " +
                             describeStatus(r.status) + ": " + r.err);
  }
  // The JSON holds at most the one route to exactly `vip`: a plain route has one "gateway"
  // key, a multipath one a "nexthops" array with one per next hop. No other key is
  // "gateway", and addresses contain no quote, so collecting the values is enough.
  std::set<std::string> out;
  const std::string key = "\"gateway\":\"";
  for (size_t pos = r.out.find(key); pos != std::string::npos; pos = r.out.find(key, pos)) {
    pos += key.size();
    const size_t end = r.out.find('"', pos);
    if (end == std::string::npos) {
      break;
    }
    out.insert(r.out.substr(pos, end - pos));
  }
  return out;
}

EcmpLab::WaitResult EcmpLab::waitForNexthops(const std::string& vip,
                                             const std::set<std::string>& expected,
                                             Clock::duration timeout) {
  const auto start = Clock::now();
  const Deadline deadline = start + timeout;
  WaitResult w;
  for (;;) {
    w.last = routerNexthops(vip);
    w.took = Clock::now() - start;
    if (w.last == expected) {
      w.ok = true;
      return w;
    }
    if (Clock::now() >= deadline) {
      return w;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

EcmpLab::Bird& EcmpLab::bird(int i) { return i < 0 ? router_ : *nodes_.at(i); }

RunResult EcmpLab::birdc(int i, const std::string& command) {
  std::vector<std::string> args = {"-s", bird(i).socket};
  for (std::string& w : words(command)) {
    args.push_back(std::move(w));
  }
  return test::run(findProgram("birdc"), args, kCommandTimeout);
}

bool EcmpLab::sessionsEstablished() {
  const RunResult r = birdc(-1, "show protocols");
  if (r.exitCode() != 0) {
    return false;  // BIRD not up yet: no control socket
  }
  int established = 0;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" BGP ") != std::string::npos &&
        line.find("Established") != std::string::npos) {
      ++established;
    }
  }
  return established == 2 * options_.nodes;
}

bool EcmpLab::waitForSessions(Clock::duration timeout) {
  const Deadline deadline = deadlineIn(timeout);
  for (;;) {
    if (sessionsEstablished()) {
      return true;
    }
    // A BIRD that exited (a config error) will not come: say so now, not at the deadline.
    if (!router_.process.running()) {
      return false;
    }
    for (auto& b : nodes_) {
      if (!b->process.running()) {
        return false;
      }
    }
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
}

RunResult EcmpLab::run(const std::string& ns, const std::string& path,
                       const std::vector<std::string>& args) {
  return runInNetns(ns, path, args, kCommandTimeout);
}

void EcmpLab::powerCut(int i) {
  Bird& b = bird(i);
  // Priorities below every other hook (conntrack, NAT): nothing gets past, in or out.
  const std::string rules = dir_.write(
      "power-cut.nft",
      std::string("table inet ") + kCutTable + " {\n"
      "  chain in { type filter hook prerouting priority -500; policy drop; }\n"
      "  chain out { type filter hook output priority -500; policy drop; }\n"
      "}\n");
  const RunResult r = run(b.ns, findProgram("nft"), {"-f", rules});
  if (r.exitCode() != 0) {
    throw std::runtime_error("in " + b.ns + ": nft -f power-cut.nft: " +
                             describeStatus(r.status) + ": " + r.err);
  }
  // Only now: the FIN its kernel sends for the killed BIRD's sockets is dropped.
  b.process.signal(SIGKILL);
  b.process.wait(seconds(5));
}

void EcmpLab::powerRestore(int i) {
  Bird& b = bird(i);
  const RunResult r = run(b.ns, findProgram("nft"), {"delete", "table", "inet", kCutTable});
  if (r.exitCode() != 0) {
    throw std::runtime_error("in " + b.ns + ": nft delete table: " + describeStatus(r.status) +
                             ": " + r.err);
  }
  b.process.stop(seconds(1));  // reaped already after powerCut; a no-op then
  startBird(b);
}

std::string EcmpLab::logTails(size_t lines) const {
  std::string out;
  const auto add = [&](const std::string& name, const Bird& b) {
    out += "--- " + name + " (" + b.log + ")\n" + lastLines(readTextFile(b.log), lines) +
           lastLines(readTextFile(b.log + ".err"), lines) + "\n";
  };
  add("router", router_);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    add("node" + str(static_cast<int>(i) + 1), *nodes_[i]);
  }
  return out;
}

std::string EcmpLab::describe() {
  return "router:\n" + birdc(-1, "show route").out + birdc(-1, "show protocols").out + "\n" +
         logTails();
}

}  // namespace weir::test
