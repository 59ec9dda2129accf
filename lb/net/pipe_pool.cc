#include "net/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

namespace weir::net {

PipePool::PipePool(size_t max_idle, int size_bytes) : max_idle_(max_idle), size_bytes_(size_bytes) {
  free_.reserve(max_idle);
}

Pipe PipePool::take() {
  if (!free_.empty()) {
    Pipe p = std::move(free_.back());
    free_.pop_back();
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
    return {};
  }
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  if (size_bytes_ > 0) {
    // Best effort: a smaller pipe still works, only with more syscalls per byte.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, size_bytes_);
  }
  ++created_;
  return p;
}

void PipePool::give(Pipe&& pipe) {
  if (free_.size() < max_idle_) {
    free_.push_back(std::move(pipe));
  }
  // else: the Pipe's UniqueFds close it.
}

}  // namespace weir::net
