#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/deadline.h"
#include "support/netns.h"
#include "support/process.h"
#include "support/temp_dir.h"

// A lab for weir's scale-out behind ECMP, in network namespaces (netns.h):
//
//                          client ns  10.1.0.10-17/24, fd00:1::10-17/64
//                              | cl
//                              | rc  10.1.0.1, fd00:1::1
//   node ns i (i = 1..N)    router ns (forwarding, L4 multipath hash)     backends ns
//   up  10.0.i.2/24  -----  ni  10.0.i.1/24                   rb ----- bk  10.2.0.10-13/24
//       fd00:0:i::2/64          fd00:0:i::1/64     10.2.0.1, fd00:2::1     fd00:2::10-13/64
//   lo  10.200.0.1/32, fd00:200::1/128 (the VIPs)
//
// Every node runs BIRD 2 with a config that includes the source tree's
// packaging/bird/weir.conf and adds one eBGP session per family to the router (node AS 65001,
// or 65001 + i with distinct_node_as; router AS 65000; hold time 3 s, keepalive 1 s). The
// router's BIRD accepts the VIP routes from every node and its kernel protocols export them
// with `merge paths on`, so the router's main table holds one multipath route per VIP with a
// next hop per announcing node. A node announces a VIP once table 4747 has weir's route for
// it (addVipRoute(), or weir itself); nodes reach the backends and the client through the
// router (default routes).
//
// BIRD runs in the foreground (`bird -f`) as a child Process inside its namespace, with its
// config, control socket and log in a TempDir; the destructor stops every BIRD before the
// namespaces go. Set WEIR_TEST_KEEP_TMP=1 to keep the configs and logs.
//
// Nodes listed in Options::frr_nodes run FRR instead (zebra, then bgpd, in the foreground as
// the frr user, with their pid files, vty sockets and zserv socket in a directory of their
// own in the TempDir, so they clash neither with each other nor with an FRR of the host).
// Their config is the source tree's packaging/frr/weir.frr.conf with the example AS numbers,
// router id, neighbour and timers replaced, plus an IPv6 session that announces nothing. As
// that file explains, FRR 8.4 announces IPv4 only, from a table in 1..252 (frrTable(), not
// 4747; addVipRoute() uses it for FRR nodes), and only if the VIP is not an interface
// address: an FRR node's IPv4 VIP is a local route (`ip route add local VIP/32 dev lo table
// local`), its IPv6 VIP an address on lo as on the BIRD nodes.
namespace weir::test {

// "10.0.1.2 10.0.2.2", or "(none)": a set of next hops for a failure message.
std::string joined(const std::set<std::string>& s);
// A duration in milliseconds, for the figures the tests print.
double ms(Clock::duration d);

class EcmpLab {
public:
  struct Options {
    int nodes = 3;           // 1 to 9
    std::string source_dir;  // weir's source tree (WEIR_SOURCE_DIR): weir.conf is read there
    bool distinct_node_as = false;  // node i in AS 65001 + i instead of all in AS 65001
    std::set<int> frr_nodes;        // 0-based indices of nodes running FRR instead of BIRD
  };

  static constexpr const char* kVip4 = "10.200.0.1";
  static constexpr const char* kVip6 = "fd00:200::1";
  static constexpr int kHoldTimeSeconds = 3;

  // True if the lab can run here: canUseNetns(), and bird, birdc and nft are installed.
  // Otherwise false with the reason in *why, for a GTEST_SKIP message.
  static bool available(std::string* why);
  // True if FRR nodes can run too: zebra and bgpd in /usr/lib/frr, vtysh, the frr user.
  static bool frrAvailable(std::string* why);

  // Builds the namespaces, starts every BIRD and waits (up to 15 s) until every BGP session
  // is established. Throws std::runtime_error naming what failed (with the BIRD log tails);
  // what was made until then is undone.
  explicit EcmpLab(const Options& options);
  EcmpLab(const EcmpLab&) = delete;
  EcmpLab& operator=(const EcmpLab&) = delete;
  ~EcmpLab();

  int nodeCount() const { return static_cast<int>(nodes_.size()); }
  // Node `i` (0-based): its namespace and its address on the router link (10.0.{i+1}.2 or
  // fd00:0:{i+1}::2), which is the next hop the router gets for it.
  const std::string& nodeNs(int i) const;
  std::string nodeAddress(int i, bool ipv6 = false) const;
  // The index of the node whose address is `address`, or -1.
  int nodeByAddress(const std::string& address) const;
  const std::string& routerNs() const { return router_ns_; }
  const std::string& clientNs() const { return client_ns_; }
  const std::string& backendNs() const { return backend_ns_; }
  // Source addresses a client may bind in clientNs() (8 per family).
  std::vector<std::string> clientAddresses(bool ipv6 = false) const;
  // Addresses in backendNs() for backend servers to bind (4 per family).
  std::vector<std::string> backendAddresses(bool ipv6 = false) const;

  // What weir does to announce / withdraw `vip` on node `i`:
  //   ip route replace VIP/32 dev lo table 4747 proto 87   (/128 for IPv6)
  //   ip route del VIP/32 dev lo table 4747 proto 87
  // Throws std::runtime_error if `ip` fails.
  // (On an FRR node the table is frrTable(), not 4747.)
  void addVipRoute(int i, const std::string& vip);
  void delVipRoute(int i, const std::string& vip);
  // `ip route replace ROUTE dev lo table TABLE proto PROTO` in node i's namespace, for routes
  // that are not weir's (another protocol number, a shorter prefix). Throws like addVipRoute.
  void addRoute(int i, const std::string& route, int table, int proto);

  bool isFrr(int i) const { return options_.frr_nodes.count(i) > 0; }
  // The kernel table node i's routing daemon announces: 4747 (packaging/bird/weir.conf), or
  // on an FRR node the `ip import-table` number of packaging/frr/weir.frr.conf.
  int announceTable(int i) const;
  int frrTable() const { return frr_table_; }

  // The gateways of the router's main-table route to exactly `vip` (/32 or /128): every
  // next hop of a multipath route, the one of a plain route, none if there is no route.
  // Throws std::runtime_error if `ip` fails.
  std::set<std::string> routerNexthops(const std::string& vip);

  struct WaitResult {
    bool ok = false;                 // routerNexthops(vip) == expected before the timeout
    Clock::duration took{};          // from the call until it was seen (or the timeout)
    std::set<std::string> last;      // the next hops seen last
  };
  // Polls routerNexthops(vip) every 5 ms until it equals `expected` or `timeout` passes.
  WaitResult waitForNexthops(const std::string& vip, const std::set<std::string>& expected,
                             Clock::duration timeout);
  // The addresses of the given nodes, as routerNexthops() reports them.
  std::set<std::string> nodeAddresses(const std::vector<int>& nodes, bool ipv6 = false) const;

  // `birdc -s SOCKET command...` against node `i`'s BIRD, or the router's for i = -1 (each
  // word of `command` is one argument, as birdc joins them). Returns its output.
  RunResult birdc(int i, const std::string& command);
  // `vtysh --vty_socket DIR -c command` against FRR node i (command as one argument).
  RunResult vtysh(int i, const std::string& command);
  // True once the router's BIRD shows every node's BGP sessions (both families) established.
  bool sessionsEstablished();
  // Polls sessionsEstablished() every 50 ms; false at the timeout, or at once when a BIRD
  // has exited (a config error; a node after powerCut()).
  bool waitForSessions(Clock::duration timeout);

  // Runs `path args...` in `ns` to completion (runInNetns with a 10 s limit).
  RunResult run(const std::string& ns, const std::string& path,
                const std::vector<std::string>& args);

  // Node `i` fails like a power loss: first an nftables ruleset in its namespace drops every
  // packet in and out (so no FIN, RST or BGP NOTIFICATION reaches the router, and nothing
  // the router sends is answered), then its BIRD (or FRR's bgpd and zebra) is SIGKILLed. The router notices only when
  // its hold timer (kHoldTimeSeconds) expires. Processes the test started in that namespace
  // are the test's to stop; they are cut off all the same.
  void powerCut(int i);
  // Undoes powerCut(i): removes the drop ruleset and starts node i's BIRD (or FRR) again,
  // which relearns its table and reconnects (the router retries within 1-2 s).
  void powerRestore(int i);

  // The last `lines` lines of each BIRD's (or FRR node's) log, for failure messages.
  std::string logTails(size_t lines = 20) const;
  // The router's BIRD routes and protocols, then logTails(): what a failed test prints.
  std::string describe();

private:
  struct Bird {
    std::string ns;
    std::string config;
    std::string socket;  // BIRD's control socket; an FRR node's directory (vty sockets)
    std::string log;
    bool frr = false;
    Process process;     // BIRD, or FRR's bgpd
    Process zebra;       // FRR only
  };

  std::string routerConfig() const;
  std::string nodeConfig(int i) const;
  std::string frrNodeConfig(int i) const;
  void startBird(Bird& bird);
  void startFrr(Bird& node);
  void startDaemon(Bird& node) { node.frr ? startFrr(node) : startBird(node); }
  void vipRoute(int i, const std::string& verb, const std::string& vip);
  void route(int i, const std::string& verb, const std::string& route, int table, int proto);
  Bird& bird(int i);

  Options options_;
  std::string frr_snippet_;  // packaging/frr/weir.frr.conf, when there are FRR nodes
  int frr_table_ = 0;        // its `ip import-table` number
  // Declared before the BIRDs: members are destroyed in reverse order, so every BIRD has
  // stopped before its directory and namespace go.
  TempDir dir_;
  NetnsTopology topo_;
  std::string router_ns_;
  std::string client_ns_;
  std::string backend_ns_;
  std::vector<std::string> node_ns_;
  Bird router_;
  std::vector<std::unique_ptr<Bird>> nodes_;
};

}  // namespace weir::test
