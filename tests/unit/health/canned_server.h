#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/unique_fd.h"

namespace weir::health {

// Backends for checker tests: listeners on 127.0.0.1 that each answer every connection with a
// canned reply (after reading what the client sent, or its end of stream), on one thread.
// Listeners are bound at listen() and served from start(), so a test can fork the checker in
// between without a thread running during fork().
class CannedServer {
public:
  CannedServer() = default;
  ~CannedServer();

  // Binds a listener that will answer `reply` ("" = close without a word). Returns its port.
  uint16_t listen(std::string reply);
  void start();
  void setReply(size_t listener, std::string reply);
  // Connections accepted so far on a listener.
  int accepted(size_t listener) const { return listeners_[listener]->accepted.load(); }

private:
  struct Listener {
    net::UniqueFd fd;
    std::string reply;  // guarded by mu_
    std::atomic<int> accepted{0};
  };

  void serve();
  void answer(Listener& l);

  std::vector<std::unique_ptr<Listener>> listeners_;
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A port on 127.0.0.1 that nobody listens on (bound once, then closed).
uint16_t closedPort();
// A listener that never accepts: connects succeed (the kernel completes them), then silence.
net::UniqueFd silentListener(uint16_t& port);

}  // namespace weir::health
