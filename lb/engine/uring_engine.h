#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace weir::engine {

// Readiness from io_uring. Each watched fd has one multishot poll request (edge-triggered,
// as EPOLLET); stopping a watch queues a cancel of that poll and a close request. Requests queue up
// in the submission ring while the worker handles a batch and go to the kernel, with the
// wait for the next batch, in one io_uring_enter. The socket calls themselves (accept4,
// connect, recv, send, splice, shutdown) stay plain system calls, made by the same Session
// code as on epoll.
//
// A poll request holds a reference to its file, so a socket is only really closed (its FIN
// or RST sent) once its poll is removed: every close of a watched fd goes through close().
// A request names its fd and that fd's watch generation (user_data = generation << 32 | fd):
// a completion that arrives after close(), when the fd number may already serve another
// connection, carries an old generation and is dropped.
class UringEngine final : public Engine {
public:
  // Null, with `why_not` set, where this kernel (or its settings) gives no usable ring.
  static std::unique_ptr<UringEngine> create(std::string& why_not);
  ~UringEngine() override;
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  Kind kind() const override { return Kind::IoUring; }
  bool watch(int fd, uint32_t events, void* ptr) override;
  void close(int fd) override;
  void forget(int fd) override { close(fd); }
  int wait(Event* out, int max, int timeout_ms) override;

private:
  struct Watched {
    void* ptr = nullptr;
    uint32_t events = 0;
    uint32_t generation = 0;  // bumped by every watch() of this fd number
    bool live = false;        // between watch() and close()
  };

  UringEngine() = default;
  io_uring_sqe* sqe();
  void arm(int fd, const Watched& w);

  io_uring ring_{};
  bool ring_ready_ = false;
  std::vector<Watched> fds_;  // indexed by fd number
};

}  // namespace weir::engine
