#pragma once

#include <cstddef>
#include <vector>

#include "net/unique_fd.h"

namespace weir::net {

// A kernel pipe used as the splice() buffer for one direction of one connection.
struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
  bool large = false;  // grown with F_SETPIPE_SZ; counted in PipePool's budget while alive
  int bytes = 0;       // capacity (F_GETPIPE_SZ) when it was created or grown
};

// How much pipe memory one worker may keep, out of the budget the kernel gives its owner.
//
// Pipe memory is charged to the process owner (the user) whether or not a pipe holds bytes.
// Past /proc/sys/fs/pipe-user-pages-soft (16384 pages by default), an owner without
// CAP_SYS_RESOURCE or CAP_SYS_ADMIN gets new pipes of 2 slots only, and F_SETPIPE_SZ growing a
// pipe is refused with EPERM (fs/pipe.c checks the soft limit there too, not just the hard
// one): every flow then splices in 8 KiB steps. So weir takes a share of that budget and stays
// in it: half of the soft limit for the appliance, the other half left to the pipes of flows
// with bytes in flight (which weir cannot bound) and to other processes of the same user. A
// reload runs two generations side by side (the old one draining), so a generation gets half
// of that, a quarter of the soft limit, split evenly over its workers. A draining generation
// frees its idle pipes at once (PipePool::shrink), so the two together stay within half.
struct PipeBudget {
  size_t pages = 0;         // idle default pipes + large pipes alive (idle or busy), in pages
  int large_bytes = 0;      // the F_SETPIPE_SZ request for a bulk flow; 0: no large pipes
  int default_bytes = 0;    // capacity of a new pipe while the owner is within its budget
  size_t floor = 0;         // idle default pipes kept however long they stay unused
  size_t max_idle = 0;      // idle default pipes kept at most, whatever the budget says
};

// The budget of one of `nworkers` workers of this process's owner (call it after dropping
// privileges): a quarter of pipe-user-pages-soft split over the workers, with large pipes of
// min(1 MiB, pipe-max-size), halved until two of them fit in the share (none when they would
// be no larger than a default pipe). An owner the kernel exempts (CAP_SYS_RESOURCE or
// CAP_SYS_ADMIN), or a soft limit of 0, gets 256 idle default pipes and 64 large ones.
// Never fails: an unreadable /proc file counts as the kernel's default value.
PipeBudget pipeBudgetFor(unsigned nworkers);

// Bounded free-lists of pipes (as HAProxy's pipe.c). Sessions take a pipe only while bytes
// are in flight and give it back once it is empty, so an idle connection holds no pipe.
//
// Two sizes. Every flow starts on the kernel's default pipe (16 slots, 64 KiB), which fits a
// request or a response. A flow that shows it is bulk asks for a large pipe: one splice then
// moves up to large_bytes, so a stream takes far fewer splice calls and wake-ups per GB.
//
// The pool keeps what it holds (idle default pipes, and large pipes whether idle or in use)
// within PipeBudget::pages: a default pipe given back when the budget is full is closed, and a
// bulk flow that needs room for a large pipe gets it by closing idle default pipes. A pipe
// that came out smaller than the default (created while the owner was over its budget) is
// used once and closed, never pooled. trim(), called on a timer, frees what stayed unused.
class PipePool {
public:
  PipePool() = default;  // no budget: pipes are created on demand and closed when given back
  explicit PipePool(const PipeBudget& budget);

  // A pipe (reused or new), or an empty Pipe (invalid fds) when pipe2 fails (EMFILE, ENFILE).
  // With want_large, a large pipe when the budget allows and the kernel grants the size;
  // otherwise a default one (a smaller pipe still works, only with more calls per byte).
  Pipe take(bool want_large = false);
  // Returns an EMPTY pipe to the pool (or closes it when the pool has no room for it).
  void give(Pipe&& pipe);
  // Closes a pipe: one that still holds bytes nobody will read, or one the pool has no room
  // for. Frees its share of the budget.
  void discard(Pipe&& pipe);

  // Periodic (every few seconds, from the worker's loop): closes the idle pipes that stayed
  // unused since the previous call, keeping `floor` default ones.
  void trim();
  // Closes every idle pipe above the floor now (a draining worker needs few pipes).
  void shrink();

  size_t idle() const { return free_.size() + free_large_.size(); }
  size_t created() const { return created_; }
  size_t liveLarge() const { return live_large_; }
  // Pages held against the budget: idle default pipes and every large pipe alive.
  size_t pages() const { return pages_; }
  const PipeBudget& budget() const { return budget_; }

private:
  Pipe takeDefault();
  // Closes the `defaults` oldest idle default pipes and the `large` oldest idle large ones.
  void closeOldestIdle(size_t defaults, size_t large);
  size_t pagesOf(const Pipe& pipe) const;

  PipeBudget budget_;
  size_t page_size_ = 4096;
  size_t large_pages_ = 0;
  std::vector<Pipe> free_;  // taken from the back, trimmed from the front (the oldest)
  std::vector<Pipe> free_large_;
  // The fewest idle pipes since the last trim(): that many at the front went unused.
  size_t low_water_ = 0;
  size_t low_water_large_ = 0;
  size_t pages_ = 0;
  size_t live_large_ = 0;
  size_t created_ = 0;
};

}  // namespace weir::net
