#pragma once

#include <cstddef>
#include <vector>

#include "net/unique_fd.h"

namespace weir::net {

// A kernel pipe used as the splice() buffer for one direction of one connection.
struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

// A bounded free-list of pipes (as HAProxy's pipe.c). Sessions take a pipe only while bytes
// are in flight and give it back once it is empty, so an idle connection holds no pipe.
// Pipe memory is charged to the process owner's pipe-user-pages budget; past the soft limit
// new pipes shrink to a page or two and splice throughput collapses, hence the bound.
class PipePool {
public:
  // max_idle: pipes kept for reuse; size_bytes: F_SETPIPE_SZ request (0 = kernel default).
  PipePool(size_t max_idle, int size_bytes);

  // A pipe (reused or new), or an empty Pipe (invalid fds) when pipe2 fails (EMFILE, ENFILE).
  Pipe take();
  // Returns an EMPTY pipe to the pool (or closes it when the pool is full).
  void give(Pipe&& pipe);
  size_t idle() const { return free_.size(); }
  size_t created() const { return created_; }

private:
  std::vector<Pipe> free_;
  size_t max_idle_;
  int size_bytes_;
  size_t created_ = 0;
};

}  // namespace weir::net
