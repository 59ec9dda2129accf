#include "engine/epoll_engine.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace weir::engine {
EpollEngine::EpollEngine() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) {
    throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  }
}

bool EpollEngine::watch(int fd, uint32_t events, void* ptr) {
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.ptr = ptr;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void EpollEngine::close(int fd) {
  ::close(fd);  // the last reference to the file: epoll forgets it by itself
}

void EpollEngine::forget(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
}

int EpollEngine::wait(Event* out, int max, int timeout_ms) {
  constexpr int kBatch = 512;
  epoll_event events[kBatch];
  const int n = ::epoll_wait(epoll_.get(), events, std::min(max, kBatch), timeout_ms);
  for (int i = 0; i < n; ++i) {
    out[i] = {events[i].data.ptr, events[i].events};
  }
  return n;
}

}  // namespace weir::engine
