#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/sock_addr.h"

namespace weir::test {

// A running weir-testsrv child and the port it listens on.
struct TestServer {
  Process process;
  uint16_t port = 0;
  std::string host = "127.0.0.1";
  std::string netns;  // the network namespace it runs in; "" for the test's own

  SockAddr addr() const { return *SockAddr::from(host, port); }
  // "127.0.0.1:PORT", as written into a weir config.
  std::string endpoint() const { return addr().str(); }
};

// Starts `binary --listen HOST:PORT --mode MODE extra...` (PORT 0: any free port) and waits
// (up to 10 s) for its "PORT n" line. With `netns`, the server runs inside that network
// namespace (Process::Options::netns). Throws std::runtime_error if it cannot start or never
// reports a port.
TestServer startTestServer(const std::string& binary, const std::string& mode,
                           const std::vector<std::string>& extra = {},
                           const std::string& host = "127.0.0.1", uint16_t port = 0,
                           const std::string& netns = "");

}  // namespace weir::test
