// Many connections open at once through weir, each carrying its own data.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "support/net_io.h"
#include "support/proc_fs.h"
#include "support/prng_stream.h"
#include "support/test_server.h"
#include "weir_process.h"

namespace weir::test {
namespace {

constexpr size_t kConns = 1000;

// Per-connection state of the exchange below.
struct Client {
  Fd fd;
  std::string message;
  std::string received;
  bool failed = false;
};

TEST(Concurrent, ThousandConnectionsOpenAtOnceAllEcho) {
  TestServer echo1 = startTestServer(kTestsrvBin, "echo");
  TestServer echo2 = startTestServer(kTestsrvBin, "echo");
  WeirProcess weir(WeirConfig::simple({echo1.endpoint(), echo2.endpoint()}, 2));
  ASSERT_TRUE(weir.start(Readiness::EchoRoundTrip));

  // 1. Open all connections before any data flows.
  std::string err;
  std::vector<Fd> fds = connectMany(weir.addr(), kConns, 100, deadlineIn(seconds(30)), &err);
  ASSERT_EQ(fds.size(), kConns) << err;
  // All of them are accepted by weir's workers and held at the same time.
  const std::vector<pid_t> workers = weir.workerPids();
  std::vector<size_t> per_worker;
  EXPECT_TRUE(waitFor(
      [&] {
        per_worker = connectionsPerProcess(weir.port(), workers);
        size_t sum = 0;
        for (size_t n : per_worker) {
          sum += n;
        }
        return sum == kConns;
      },
      seconds(20)))
      << "weir's workers do not hold all " << kConns << " connections at once";
  std::printf("per-worker connections:");
  for (size_t n : per_worker) {
    std::printf(" %zu", n);
  }
  std::printf("\n");

  // 2. Each connection sends a distinct message (distinct index, distinct random tail).
  std::vector<Client> clients(kConns);
  for (size_t i = 0; i < kConns; ++i) {
    clients[i].fd = std::move(fds[i]);
    std::ostringstream m;
    m << "connection " << i << " says " << std::hex << PrngStream::word(1000, i) << "\n";
    clients[i].message = m.str();
    if (writeAll(clients[i].fd.get(), clients[i].message, deadlineIn(seconds(5))) !=
        IoStatus::Ok) {
      clients[i].failed = true;
    }
  }

  // 3. Collect every echo with one poll loop over all sockets, bounded by a deadline.
  const Deadline deadline = deadlineIn(seconds(60));
  size_t outstanding = 0;
  for (const Client& c : clients) {
    outstanding += c.failed ? 0 : 1;
  }
  std::vector<pollfd> pfds;
  std::vector<size_t> index;
  while (outstanding > 0 && Clock::now() < deadline) {
    pfds.clear();
    index.clear();
    for (size_t i = 0; i < kConns; ++i) {
      const Client& c = clients[i];
      if (!c.failed && c.received.size() < c.message.size()) {
        pfds.push_back({c.fd.get(), POLLIN, 0});
        index.push_back(i);
      }
    }
    const int rc = poll(pfds.data(), pfds.size(), msLeft(deadline));
    if (rc <= 0) {
      continue;  // timeout (loop ends at the deadline) or EINTR
    }
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) {
        continue;
      }
      Client& c = clients[index[k]];
      char buf[256];
      const ssize_t n = recv(c.fd.get(), buf, c.message.size() - c.received.size(), 0);
      if (n > 0) {
        c.received.append(buf, static_cast<size_t>(n));
        if (c.received.size() == c.message.size()) {
          --outstanding;
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        c.failed = true;
        --outstanding;
      }
    }
  }

  size_t served = 0;
  std::vector<std::string> problems;
  for (size_t i = 0; i < kConns; ++i) {
    const Client& c = clients[i];
    if (!c.failed && c.received == c.message) {
      ++served;
    } else if (problems.size() < 10) {
      problems.push_back("#" + std::to_string(i) + (c.failed ? " closed/failed" : " incomplete") +
                         " after " + std::to_string(c.received.size()) + " bytes");
    }
  }
  std::string sample;
  for (const std::string& p : problems) {
    sample += "\n  " + p;
  }
  EXPECT_EQ(served, kConns) << "connections not served correctly, first ones:" << sample;
  RecordProperty("served", static_cast<int>(served));
}

}  // namespace
}  // namespace weir::test
