// listeners.NAME.defer_accept: the kernel keeps a connection that has sent nothing out of the
// accept queue (TCP_DEFER_ACCEPT), so no worker wakes for it; its first bytes release it. A
// reload turns the option on and off on the listening sockets it keeps.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "support/deadline.h"
#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/sock_addr.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr int kTcpSynRecv = 3;

// The kernel state of the server side of the connection from `client_port` to `listen_port`
// (0 if /proc/net/tcp has no such row). A connection deferred by TCP_DEFER_ACCEPT is still a
// request socket, shown as SYN_RECV; once it reaches the accept queue it is ESTABLISHED.
int serverState(uint16_t listen_port, uint16_t client_port) {
  for (const TcpEntry& e : readTcpTables()) {
    if (e.local_port == listen_port && e.remote_port == client_port) {
      return e.state;
    }
  }
  return 0;
}

WeirConfig withDefer(WeirConfig c, bool defer) {
  c.listeners[0].lines = {std::string("defer_accept = ") + (defer ? "true" : "false")};
  return c;
}

uint16_t localPort(const Fd& fd) {
  auto addr = SockAddr::local(fd.get());
  return addr ? addr->port() : 0;
}

// A connection that sent nothing: with defer_accept its server side is still SYN_RECV after
// the client's connect() returned (on loopback, without the option, the final ACK has made
// it ESTABLISHED by then). Its first bytes then travel through weir as usual.
void expectDeferred(WeirProcess& weir, const std::string& what) {
  Fd c = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(c.valid()) << what;
  const uint16_t port = localPort(c);
  EXPECT_EQ(serverState(weir.port(), port), kTcpSynRecv)
      << what << ": a connection that sent nothing left the SYN queue";
  EXPECT_EQ(acceptedByClientPort(weir.port()).count(port), 0u)
      << what << ": a worker accepted a connection that sent nothing";
  EXPECT_EQ(echoRoundTrip(c.get(), "first bytes\n", deadlineIn(seconds(5))), IoStatus::Ok)
      << what << ": the deferred connection was not proxied once it sent";
}

// Without the option a silent connection is accepted at once.
void expectAccepted(WeirProcess& weir, const std::string& what) {
  Fd c = connectTcp(weir.addr(), seconds(5));
  ASSERT_TRUE(c.valid()) << what;
  const uint16_t port = localPort(c);
  EXPECT_TRUE(waitFor([&] { return acceptedByClientPort(weir.port()).count(port) == 1; },
                      seconds(5)))
      << what << ": a silent connection was not accepted (server side in state "
      << serverState(weir.port(), port) << ")";
  EXPECT_EQ(echoRoundTrip(c.get(), "hello\n", deadlineIn(seconds(5))), IoStatus::Ok) << what;
}

TEST(DeferAccept, WorkersGetAConnectionOnlyOnceItsFirstBytesArriveAndReloadsToggleIt) {
  TestServer echo = startTestServer(kTestsrvBin, "echo");
  const WeirConfig base = WeirConfig::simple({echo.endpoint()}, 2);
  WeirProcess weir(withDefer(base, true));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));
  expectDeferred(weir, "at start");

  ASSERT_TRUE(reload(weir, withDefer(base, false), 1));
  expectAccepted(weir, "after a reload turned defer_accept off");

  ASSERT_TRUE(reload(weir, withDefer(base, true), 2));
  expectDeferred(weir, "after a reload turned it on again");
}

}  // namespace
}  // namespace weir::test
