#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/deadline.h"
#include "support/sock_addr.h"

namespace weir::test {

// What a LoadClient saw. Every connection ends in exactly one of the counters.
struct LoadStats {
  uint64_t completed = 0;       // connected, message echoed back in full, then a clean EOF
  uint64_t connect_errors = 0;  // connect() failed (refused, timed out, no port)
  uint64_t resets = 0;          // reset (ECONNRESET/EPIPE) after connecting
  uint64_t incomplete = 0;      // EOF before the whole echo, or the echo did not match
  uint64_t timeouts = 0;        // not finished within the per-connection timeout
  uint64_t other_errors = 0;    // any other errno
  std::vector<std::string> samples;  // descriptions of the first failures

  uint64_t failures() const {
    return connect_errors + resets + incomplete + timeouts + other_errors;
  }
  std::string summary() const;
};

// A closed-loop load generator for echo backends: keeps `concurrency` short connections in
// flight on its own thread (one epoll loop), each: connect, send a message unique to the
// connection, shutdown(SHUT_WR), read until EOF, compare, close. New connections are paced
// to at most `max_rate` per second.
class LoadClient {
public:
  struct Options {
    SockAddr target;
    size_t concurrency = 32;
    size_t message_bytes = 100;
    uint64_t max_rate = 3000;  // connections started per second
    Clock::duration timeout = seconds(10);
    // The client address to connect from (port 0: any); unset (len 0): the kernel's choice.
    SockAddr source;
  };

  explicit LoadClient(Options options);
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;
  ~LoadClient();

  void start();
  // Stops starting connections, lets the ones in flight finish (each bounded by the
  // per-connection timeout) and returns the totals.
  LoadStats stop();
  // Totals so far (connections in flight not included).
  LoadStats snapshot() const;

private:
  void run();

  Options options_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  LoadStats stats_;
};

}  // namespace weir::test
