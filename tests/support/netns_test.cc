// Self-tests of netns.h: a client and a server namespace joined through a router namespace,
// reached with sockets made inside them and with a weir-testsrv started inside one, and
// nothing left behind, in the host namespace or in /run/netns. Root only.
#include "support/netns.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/identify_line.h"
#include "support/net_io.h"
#include "support/test_server.h"
#include "support/temp_dir.h"

namespace weir::test {
namespace {

#define SKIP_UNLESS_NETNS()          \
  do {                               \
    std::string why;                 \
    if (!canUseNetns(&why)) {        \
      GTEST_SKIP() << why;           \
    }                                \
  } while (false)

bool exists(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0;
}

// The inode of a namespace file: two paths name the same namespace iff the inodes match.
ino_t nsInode(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// client (10.92.1.2, fd00:92:1::2) -- router (.1 on both sides, forwarding) -- server
// (10.92.2.2, fd00:92:2::2); client and server route everything via the router.
struct Routed {
  NetnsTopology topo;
  std::string client = topo.addNamespace("client");
  std::string router = topo.addNamespace("router");
  std::string server = topo.addNamespace("server");

  Routed() {
    topo.addLink(client, "eth0", router, "c0");
    topo.addLink(server, "eth0", router, "s0");
    topo.addAddress(client, "eth0", "10.92.1.2/24");
    topo.addAddress(client, "eth0", "fd00:92:1::2/64");
    topo.addAddress(router, "c0", "10.92.1.1/24");
    topo.addAddress(router, "c0", "fd00:92:1::1/64");
    topo.addAddress(router, "s0", "10.92.2.1/24");
    topo.addAddress(router, "s0", "fd00:92:2::1/64");
    topo.addAddress(server, "eth0", "10.92.2.2/24");
    topo.addAddress(server, "eth0", "fd00:92:2::2/64");
    topo.addRoute(client, "default", "10.92.1.1");
    topo.addRoute(client, "default", "fd00:92:1::1");
    topo.addRoute(server, "default", "10.92.2.1");
    topo.addRoute(server, "default", "fd00:92:2::1");
    topo.enableForwarding(router);
  }
};

// Accepts one connection on a listening socket before `deadline`.
Fd acceptOne(int listener, Deadline deadline) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, msLeft(deadline)) != 1) {
    return Fd();
  }
  return Fd(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

std::string hostLinks() { return run(ipBinary(), {"-o", "link", "show"}, seconds(5)).out; }

TEST(Netns, ConnectsAcrossARouterAndLeavesNothingBehind) {
  SKIP_UNLESS_NETNS();
  const std::string links_before = hostLinks();
  const std::string forward_before = readTextFile("/proc/sys/net/ipv4/ip_forward");
  std::vector<std::string> names;
  {
    Routed net;
    names = net.topo.namespaces();
    ASSERT_EQ(names.size(), 3u);
    for (const std::string& n : names) {
      EXPECT_TRUE(exists("/run/netns/" + n)) << n;
      EXPECT_EQ(n.rfind("weirtest-" + std::to_string(getpid()) + "-", 0), 0u) << n;
    }
    // The router forwards; the host's own setting is untouched.
    const RunResult fwd =
        runInNetns(net.router, "/bin/cat",
                   {"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"},
                   seconds(5));
    EXPECT_EQ(fwd.out, "1\n1\n") << fwd.err;
    EXPECT_EQ(readTextFile("/proc/sys/net/ipv4/ip_forward"), forward_before);
    EXPECT_EQ(hostLinks(), links_before) << "a veth end appeared in the host namespace";

    for (const auto& [server_ip, client_ip] :
         std::vector<std::pair<std::string, std::string>>{{"10.92.2.2", "10.92.1.2"},
                                                          {"fd00:92:2::2", "fd00:92:1::2"}}) {
      SCOPED_TRACE(server_ip);
      // A plain listening socket made inside the server namespace, used from here.
      auto bind_addr = *SockAddr::from(server_ip, 0);
      std::string err;
      Fd listener = socketInNetns(net.server, bind_addr.family(), SOCK_STREAM, 0, &err);
      ASSERT_TRUE(listener) << err;
      ASSERT_EQ(bind(listener.get(), bind_addr.get(), bind_addr.len), 0) << errnoText(errno);
      ASSERT_EQ(listen(listener.get(), 8), 0) << errnoText(errno);
      const SockAddr server_addr = *SockAddr::local(listener.get());

      Fd client = connectTcpInNetns(net.client, server_addr, seconds(5), &err);
      ASSERT_TRUE(client) << err;
      Fd accepted = acceptOne(listener.get(), deadlineIn(seconds(5)));
      ASSERT_TRUE(accepted);
      // Routed, not translated: each end sees the other's own address.
      EXPECT_EQ(SockAddr::peer(accepted.get())->host(), client_ip);
      EXPECT_EQ(SockAddr::local(client.get())->host(), client_ip);
      ASSERT_EQ(writeAll(client.get(), "ping", deadlineIn(seconds(5))), IoStatus::Ok);
      char buf[4];
      ASSERT_EQ(readExact(accepted.get(), buf, 4, deadlineIn(seconds(5))), IoStatus::Ok);
      EXPECT_EQ(std::string(buf, 4), "ping");

      // Only the server namespace owns the address: it cannot be bound here.
      EXPECT_EQ(pickFreePort(server_ip), 0);
      EXPECT_NE(pickFreePortInNetns(net.server, server_ip), 0);
    }
  }
  for (const std::string& n : names) {
    EXPECT_FALSE(exists("/run/netns/" + n)) << n << " outlived its topology";
  }
  EXPECT_EQ(hostLinks(), links_before);
}

TEST(Netns, ProgramStartedInANamespaceKeepsItsPidAndSignals) {
  SKIP_UNLESS_NETNS();
  Routed net;
  TestServer srv =
      startTestServer(TESTSRV_BIN, "identify", {"--name", "inside"}, "10.92.2.2", 0, net.server);
  const pid_t pid = srv.process.pid();
  // The child enters the namespace and execs the program: the pid we hold is weir-testsrv
  // itself, in the server namespace.
  char exe[4096] = {};
  ASSERT_GT(readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1), 0);
  EXPECT_NE(std::string(exe).find("weir-testsrv"), std::string::npos) << exe;
  EXPECT_EQ(nsInode("/proc/" + std::to_string(pid) + "/ns/net"),
            nsInode("/run/netns/" + net.server));

  std::string err;
  Fd c = connectTcpInNetns(net.client, srv.addr(), seconds(5), &err);
  ASSERT_TRUE(c) << err;
  std::string line;
  char ch = 0;
  const Deadline deadline = deadlineIn(seconds(5));
  while (readExact(c.get(), &ch, 1, deadline) == IoStatus::Ok && ch != '\n') {
    line.push_back(ch);
  }
  const auto id = parseIdentifyLine(line);
  ASSERT_TRUE(id) << line;
  EXPECT_EQ(id->name(), "inside");
  EXPECT_EQ(SockAddr::parse(id->peer())->host(), "10.92.1.2");

  // SIGTERM reaches weir-testsrv, which exits 0 (ip would have died of the signal).
  ASSERT_TRUE(srv.process.signal(SIGTERM));
  const auto st = srv.process.wait(seconds(5));
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describeStatus(*st);

  const RunResult r = runInNetns(net.server, ipBinary(), {"-br", "addr", "show", "eth0"},
                                 seconds(5));
  EXPECT_EQ(r.exitCode(), 0) << r.err;
  EXPECT_NE(r.out.find("10.92.2.2/24"), std::string::npos) << r.out;
}

TEST(Netns, InNetnsReturnsTheThreadAndReportsAMissingNamespace) {
  SKIP_UNLESS_NETNS();
  const ino_t home = nsInode("/proc/thread-self/ns/net");
  NetnsTopology topo;
  const std::string ns = topo.addNamespace("solo");
  ino_t inside = 0;
  ASSERT_TRUE(inNetns(ns, [&] { inside = nsInode("/proc/thread-self/ns/net"); }));
  EXPECT_EQ(inside, nsInode("/run/netns/" + ns));
  EXPECT_EQ(nsInode("/proc/thread-self/ns/net"), home);

  std::string err;
  EXPECT_FALSE(socketInNetns(ns + "-missing", AF_INET, SOCK_STREAM, 0, &err));
  EXPECT_NE(err.find(ns + "-missing"), std::string::npos) << err;
  EXPECT_EQ(nsInode("/proc/thread-self/ns/net"), home);
  EXPECT_THROW(topo.addAddress(ns, "nosuchif0", "10.92.9.9/24"), std::runtime_error);
}

TEST(Netns, NamesOfDeadTestProcessesAreDeletedOthersKept) {
  SKIP_UNLESS_NETNS();
  // A pid that certainly ran and is gone: a child we reaped.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  const std::string stale = "weirtest-" + std::to_string(child) + "-0-stale";
  // A name of a live process (our parent) that another test run could own.
  const std::string live = "weirtest-" + std::to_string(getppid()) + "-0-live";
  ASSERT_EQ(run(ipBinary(), {"netns", "add", stale}, seconds(5)).exitCode(), 0);
  ASSERT_EQ(run(ipBinary(), {"netns", "add", live}, seconds(5)).exitCode(), 0);
  {
    NetnsTopology topo;
    EXPECT_FALSE(exists("/run/netns/" + stale));
    EXPECT_TRUE(exists("/run/netns/" + live));
  }
  run(ipBinary(), {"netns", "del", live}, seconds(5));
  run(ipBinary(), {"netns", "del", stale}, seconds(5));  // in case the check above failed
}

}  // namespace
}  // namespace weir::test
