#pragma once

#include "engine/engine.h"
#include "net/unique_fd.h"

namespace weir::engine {

// Readiness from epoll: one epoll_ctl(EPOLL_CTL_ADD) per fd, edge-triggered for its whole
// life, one epoll_wait per loop iteration, close(2) at the end.
class EpollEngine final : public Engine {
public:
  EpollEngine();
  Kind kind() const override { return Kind::Epoll; }
  bool watch(int fd, uint32_t events, void* ptr) override;
  void close(int fd) override;
  void forget(int fd) override;
  int wait(Event* out, int max, int timeout_ms) override;

private:
  net::UniqueFd epoll_;
};

}  // namespace weir::engine
