#include "support/ecmp_lab.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
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
constexpr int kWeirTable = 4747;  // packaging/bird/weir.conf's `kernel table`
constexpr int kWeirProtocol = 87;
constexpr const char* kFrrDir = "/usr/lib/frr";
constexpr const char* kFrrUser = "frr";
// The example values in packaging/frr/weir.frr.conf that the lab replaces.
constexpr const char* kFrrExampleNodeAs = "65001";
constexpr const char* kFrrExampleRouterAs = "65000";
constexpr const char* kFrrExampleRouterId = "192.0.2.11";
constexpr const char* kFrrExampleNeighbor = "192.0.2.254";

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

// True once something accepts connections on the unix socket `path`.
bool unixSocketAccepts(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd && connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

bool EcmpLab::frrAvailable(std::string* why) {
  for (const char* daemon : {"zebra", "bgpd"}) {
    const std::string path = std::string(kFrrDir) + "/" + daemon;
    if (access(path.c_str(), X_OK) != 0) {
      *why = "needs " + path + " (Debian: apt-get install frr) for the lab's FRR nodes";
      return false;
    }
  }
  if (findProgram("vtysh").empty()) {
    *why = "needs vtysh (Debian: apt-get install frr) for the lab's FRR nodes";
    return false;
  }
  if (getpwnam(kFrrUser) == nullptr) {
    *why = "needs the frr user (Debian's frr package makes it) for the lab's FRR nodes";
    return false;
  }
  return true;
}

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
  if (!options_.frr_nodes.empty()) {
    for (const int i : options_.frr_nodes) {
      if (i < 0 || i >= options_.nodes) {
        throw std::runtime_error("EcmpLab: no node " + str(i) + " to run FRR");
      }
    }
    const std::string snippet = options_.source_dir + "/packaging/frr/weir.frr.conf";
    frr_snippet_ = readTextFile(snippet);
    std::istringstream in(frr_snippet_);
    for (std::string line; std::getline(in, line);) {
      const std::vector<std::string> w = words(line);
      if (w.size() == 3 && w[0] == "ip" && w[1] == "import-table") {
        frr_table_ = std::stoi(w[2]);
      }
    }
    if (frr_table_ <= 0) {
      throw std::runtime_error("EcmpLab: no `ip import-table N` in " + snippet);
    }
    // FRR drops root for the frr user, which must reach its directory in ours (0700).
    if (chmod(dir_.path().c_str(), 0711) != 0) {
      throw std::runtime_error("EcmpLab: chmod " + dir_.path() + ": " + errnoText(errno));
    }
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
    if (isFrr(i)) {
      // Not an address: zebra's connected route for it would hide the imported one.
      const RunResult r = run(ns, ipBinary(), {"-4", "route", "add", "local",
                                               std::string(kVip4) + "/32", "dev", "lo",
                                               "table", "local"});
      if (r.exitCode() != 0) {
        throw std::runtime_error("in " + ns + ": ip route add local " + kVip4 + ": " +
                                 describeStatus(r.status) + ": " + r.err);
      }
    } else {
      topo_.addAddress(ns, "lo", std::string(kVip4) + "/32");
    }
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
    if (isFrr(i)) {
      // A directory of the frr user's for FRR's config, log, pid files and sockets.
      b->frr = true;
      b->socket = dir_.file(name + ".frr");
      const passwd* pw = getpwnam(kFrrUser);
      if (pw == nullptr || mkdir(b->socket.c_str(), 0755) != 0 ||
          chown(b->socket.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("EcmpLab: cannot make " + b->socket + " for user frr: " +
                                 errnoText(errno));
      }
      b->log = b->socket + "/frr.log";
      b->config = dir_.write(name + ".frr/frr.conf", frrNodeConfig(i));
    } else {
      b->socket = dir_.file(name + ".ctl");
      b->log = dir_.file(name + ".log");
      b->config = dir_.write(name + ".conf", nodeConfig(i));
    }
    nodes_.push_back(std::move(b));
    startDaemon(*nodes_.back());
  }
  if (!waitForSessions(seconds(15))) {
    throw std::runtime_error("EcmpLab: BGP sessions not established within 15 s:\n" +
                             birdc(-1, "show protocols").out + logTails());
  }
}

EcmpLab::~EcmpLab() {
  // SIGTERM: BIRD closes its sessions and exits. Before the namespaces and the directory
  // with its sockets go (the members declared earlier are destroyed later).
  // FRR: bgpd first, then zebra (which removes the routes it installed).
  for (auto& b : nodes_) {
    b->process.stop(seconds(3));
    b->zebra.stop(seconds(3));
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

std::string EcmpLab::frrNodeConfig(int i) const {
  const std::string n = str(i + 1);
  const std::string as = str(options_.distinct_node_as ? kNodeAs + i + 1 : kNodeAs);
  const std::string neighbor4 = "10.0." + n + ".1";
  const std::string neighbor6 = "fd00:0:" + n + "::1";
  // packaging/frr/weir.frr.conf word for word, with its example values replaced by this
  // node's and the lab's timers. Each must be found, so the file cannot drift from the lab.
  const std::map<std::string, std::string> values = {
      {kFrrExampleNodeAs, as},
      {kFrrExampleRouterAs, str(kRouterAs)},
      {kFrrExampleRouterId, nodeAddress(i)},
      {kFrrExampleNeighbor, neighbor4},
  };
  std::map<std::string, int> found;
  bool timers = false;
  std::string c = "hostname node" + n + "\n"
                  "log file " + dir_.file("node" + n + ".frr/frr.log") + "\n";
  std::istringstream in(frr_snippet_);
  for (std::string line; std::getline(in, line);) {
    const size_t indent = line.find_first_not_of(' ');
    std::vector<std::string> w = words(line);
    if (w.empty() || w[0][0] == '!') {
      c += line + "\n";
      continue;
    }
    for (std::string& word : w) {
      const auto it = values.find(word);
      if (it != values.end()) {
        word = it->second;
        ++found[it->first];
      }
    }
    // neighbor ADDRESS timers KEEPALIVE HOLD: the lab's 1 s and kHoldTimeSeconds.
    if (w.size() == 5 && w[0] == "neighbor" && w[2] == "timers") {
      w[3] = "1";
      w[4] = str(kHoldTimeSeconds);
      timers = true;
    }
    std::string out(indent, ' ');
    for (size_t k = 0; k < w.size(); ++k) {
      out += (k == 0 ? "" : " ") + w[k];
    }
    c += out + "\n";
  }
  for (const auto& [example, value] : values) {
    if (found[example] == 0) {
      throw std::runtime_error("EcmpLab: weir.frr.conf no longer has the example " + example);
    }
  }
  if (!timers) {
    throw std::runtime_error("EcmpLab: weir.frr.conf no longer has `neighbor ... timers`");
  }
  // Lab only: reconnect after 1 s (default 120 s), and an IPv6 session like the BIRD nodes'
  // (the router counts two per node), which has nothing to announce with FRR 8.4.
  c += "router bgp " + as + "\n"
       " neighbor " + neighbor4 + " timers connect 1\n"
       " neighbor " + neighbor6 + " remote-as " + str(kRouterAs) + "\n"
       " neighbor " + neighbor6 + " timers 1 " + str(kHoldTimeSeconds) + "\n"
       " neighbor " + neighbor6 + " timers connect 1\n"
       " address-family ipv4 unicast\n"
       "  no neighbor " + neighbor6 + " activate\n"
       " exit-address-family\n"
       " address-family ipv6 unicast\n"
       "  neighbor " + neighbor6 + " activate\n"
       " exit-address-family\n"
       "exit\n";
  return c;
}

void EcmpLab::startFrr(Bird& node) {
  const std::string& dir = node.socket;
  const std::string zserv = dir + "/zserv.api";
  const auto options = [&](const std::string& daemon) {
    Process::Options opts;
    opts.netns = node.ns;
    opts.out = Process::Output::File;
    opts.out_path = dir + "." + daemon + ".out";
    opts.err = Process::Output::File;
    opts.err_path = dir + "." + daemon + ".err";
    return opts;
  };
  // Every path FRR would take from /etc/frr or /run/frr given here: config, pid file, vty
  // sockets, zebra's API socket. No TCP vty (-P 0).
  const auto args = [&](const std::string& daemon) {
    return std::vector<std::string>{"-f", node.config, "-i", dir + "/" + daemon + ".pid",
                                    "--vty_socket", dir, "-z", zserv, "-P", "0"};
  };
  unlink(zserv.c_str());  // left by a zebra killed in powerCut()
  node.zebra = Process::spawn(std::string(kFrrDir) + "/zebra", args("zebra"), options("zebra"));
  // bgpd started before zebra listens retries only after 10 s: wait for zebra.
  const Deadline deadline = deadlineIn(seconds(10));
  while (!unixSocketAccepts(zserv)) {
    if (!node.zebra.running() || Clock::now() >= deadline) {
      throw std::runtime_error("EcmpLab: zebra in " + node.ns + " not listening on " + zserv +
                               " (" + (node.zebra.running() ? "after 10 s" : "exited") +
                               "):\n" + lastLines(readTextFile(dir + ".zebra.err"), 20) +
                               lastLines(readTextFile(node.log), 20));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  node.process = Process::spawn(std::string(kFrrDir) + "/bgpd", args("bgpd"), options("bgpd"));
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

int EcmpLab::announceTable(int i) const { return isFrr(i) ? frr_table_ : kWeirTable; }

void EcmpLab::route(int i, const std::string& verb, const std::string& route, int table,
                    int proto) {
  const bool v6 = route.find(':') != std::string::npos;
  const RunResult r = run(nodeNs(i), ipBinary(),
                          {v6 ? "-6" : "-4", "route", verb, route, "dev", "lo", "table",
                           str(table), "proto", str(proto)});
  if (r.exitCode() != 0) {
    throw std::runtime_error("in " + nodeNs(i) + ": ip route " + verb + " " + route + ": " +
                             describeStatus(r.status) + ": " + r.err);
  }
}

void EcmpLab::vipRoute(int i, const std::string& verb, const std::string& vip) {
  const bool v6 = vip.find(':') != std::string::npos;
  route(i, verb, vip + (v6 ? "/128" : "/32"), announceTable(i), kWeirProtocol);
}

void EcmpLab::addVipRoute(int i, const std::string& vip) { vipRoute(i, "replace", vip); }

void EcmpLab::delVipRoute(int i, const std::string& vip) { vipRoute(i, "del", vip); }

void EcmpLab::addRoute(int i, const std::string& r, int table, int proto) {
  route(i, "replace", r, table, proto);
}

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

RunResult EcmpLab::vtysh(int i, const std::string& command) {
  const Bird& node = bird(i);
  if (!node.frr) {
    throw std::runtime_error("EcmpLab::vtysh: node " + str(i) + " runs BIRD, not FRR");
  }
  return test::run(findProgram("vtysh"), {"--vty_socket", node.socket, "-c", command},
                   kCommandTimeout);
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
      if (!b->process.running() || (b->frr && !b->zebra.running())) {
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
  if (b.frr) {
    b.zebra.signal(SIGKILL);
    b.zebra.wait(seconds(5));
  }
}

void EcmpLab::powerRestore(int i) {
  Bird& b = bird(i);
  const RunResult r = run(b.ns, findProgram("nft"), {"delete", "table", "inet", kCutTable});
  if (r.exitCode() != 0) {
    throw std::runtime_error("in " + b.ns + ": nft delete table: " + describeStatus(r.status) +
                             ": " + r.err);
  }
  b.process.stop(seconds(1));  // reaped already after powerCut; a no-op then
  b.zebra.stop(seconds(1));
  startDaemon(b);
}

std::string EcmpLab::logTails(size_t lines) const {
  std::string out;
  const auto add = [&](const std::string& name, const Bird& b) {
    out += "--- " + name + " (" + b.log + ")\n" + lastLines(readTextFile(b.log), lines);
    if (b.frr) {
      out += lastLines(readTextFile(b.socket + ".zebra.err"), lines) +
             lastLines(readTextFile(b.socket + ".bgpd.err"), lines) + "\n";
    } else {
      out += lastLines(readTextFile(b.log + ".err"), lines) + "\n";
    }
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

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& a : s) {
    out += (out.empty() ? "" : " ") + a;
  }
  return out.empty() ? "(none)" : out;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace weir::test
