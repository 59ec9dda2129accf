#pragma once

#include <cstddef>
#include <vector>

#include "net/unique_fd.h"

namespace weir::net {

// A kernel pipe used as the splice() buffer for one direction of one connection.
struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
  bool large = false;  // grown with F_SETPIPE_SZ; counted in PipePool's large budget
};

// Bounded free-lists of pipes (as HAProxy's pipe.c). Sessions take a pipe only while bytes
// are in flight and give it back once it is empty, so an idle connection holds no pipe.
//
// Two sizes. Every flow starts on the kernel's default pipe (16 slots, 64 KiB), which fits a
// request or a response. A flow that shows it is bulk asks for a large pipe: one splice then
// moves up to large_bytes, so a stream takes far fewer splice calls and wake-ups per GB.
//
// Pipe memory is charged to the process owner's pipe-user-pages budget whether or not the pipe
// holds bytes (/proc/sys/fs/pipe-user-pages-soft, 16384 pages by default); past the soft
// limit an unprivileged owner's new pipes shrink to two slots and splice throughput collapses
// for every flow. Hence the bounds: a fixed number of idle pipes of each size, and a cap on
// live large pipes, which the worker sizes to a share of that budget.
class PipePool {
public:
  // max_idle: default-size pipes kept for reuse. large_bytes: the F_SETPIPE_SZ request for a
  // large pipe (0: never grow). max_large: large pipes alive at once (idle ones included).
  PipePool(size_t max_idle, int large_bytes = 0, size_t max_large = 0);

  // A pipe (reused or new), or an empty Pipe (invalid fds) when pipe2 fails (EMFILE, ENFILE).
  // With want_large, a large pipe when the budget allows and the kernel grants the size;
  // otherwise a default one (a smaller pipe still works, only with more calls per byte).
  Pipe take(bool want_large = false);
  // Returns an EMPTY pipe to the pool (or closes it when its free-list is full).
  void give(Pipe&& pipe);
  // Closes a pipe: one that still holds bytes nobody will read, or one the pool has no room
  // for. Frees its share of the large budget.
  void discard(Pipe&& pipe);

  size_t idle() const { return free_.size() + free_large_.size(); }
  size_t created() const { return created_; }
  size_t liveLarge() const { return live_large_; }

private:
  Pipe takeDefault();

  std::vector<Pipe> free_;
  std::vector<Pipe> free_large_;
  size_t max_idle_;
  int large_bytes_;
  size_t max_large_;
  size_t live_large_ = 0;
  // After the kernel refused to grow a pipe (EPERM past the user's pipe budget), this many
  // large requests are served default pipes without asking again.
  unsigned grow_backoff_ = 0;
  size_t created_ = 0;
};

// The large-pipe settings for one of `nworkers` workers of this process's owner: large pipes
// of min(1 MiB, /proc/sys/fs/pipe-max-size); as many as a quarter of pipe-user-pages-soft
// allows when split over the workers (none when that is too small), or 64 when the process
// has CAP_SYS_RESOURCE or CAP_SYS_ADMIN, which the kernel exempts from the budget.
struct LargePipes {
  int bytes = 0;
  size_t max = 0;
};
LargePipes largePipesFor(unsigned nworkers);

}  // namespace weir::net
