#include "net/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace weir::net {
namespace {

constexpr long kLargePipeBytes = 1 << 20;
constexpr long kDefaultSlots = 16;  // PIPE_DEF_BUFFERS
// Owners the kernel does not charge: the bounds that applied before there was a budget.
constexpr size_t kExemptIdle = 256;
constexpr size_t kExemptLarge = 64;
constexpr size_t kMaxIdle = 256;
constexpr size_t kIdleFloor = 4;

// The start of a small /proc file ("" if unreadable). Plain read(): iostreams would pull
// libstdc++'s locale machinery into every worker's resident set for two tiny files.
std::string readSmallFile(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return {};
  }
  char buf[4096];
  const ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

long readProcLong(const char* path, long fallback) {
  const std::string text = readSmallFile(path);
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  return end != text.c_str() ? v : fallback;
}

// CapEff of this process has CAP_SYS_ADMIN (21) or CAP_SYS_RESOURCE (24).
bool exemptFromPipeBudget() {
  const std::string status = readSmallFile("/proc/self/status");
  const size_t at = status.find("CapEff:");
  if (at == std::string::npos) {
    return false;
  }
  const unsigned long long caps = std::strtoull(status.c_str() + at + 7, nullptr, 16);
  return (caps & ((1ULL << 21) | (1ULL << 24))) != 0;
}

long pageSize() {
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? page : 4096;
}

}  // namespace

PipeBudget pipeBudgetFor(unsigned nworkers) {
  const long page = pageSize();
  const long max_size = std::max(page, readProcLong("/proc/sys/fs/pipe-max-size", kLargePipeBytes));
  PipeBudget b;
  // alloc_pipe_info: an unprivileged owner's new pipe is at most pipe-max-size.
  b.default_bytes = static_cast<int>(std::min(kDefaultSlots * page, max_size));
  const long default_pages = b.default_bytes / page;
  b.max_idle = kMaxIdle;
  // Pipe sizes are whole pages, a power of two of them (round_pipe_size).
  long large_pages = 1;
  while (large_pages * 2 * page <= std::min(kLargePipeBytes, max_size)) {
    large_pages *= 2;
  }
  const long soft_pages = readProcLong("/proc/sys/fs/pipe-user-pages-soft", 16384);
  if (exemptFromPipeBudget() || soft_pages <= 0) {
    b.pages = kExemptIdle * default_pages + kExemptLarge * large_pages;
    b.floor = kIdleFloor;
  } else {
    b.pages = static_cast<size_t>(soft_pages / 4 / std::max(1U, nworkers));
    while (large_pages > default_pages && large_pages * 2 > static_cast<long>(b.pages)) {
      large_pages /= 2;
    }
    b.floor = std::min<size_t>(kIdleFloor, b.pages / default_pages / 4);
  }
  b.large_bytes = large_pages > default_pages ? static_cast<int>(large_pages * page) : 0;
  return b;
}

PipePool::PipePool(const PipeBudget& budget)
    : budget_(budget),
      page_size_(static_cast<size_t>(pageSize())),
      large_pages_(static_cast<size_t>(budget.large_bytes) / page_size_) {
  free_.reserve(std::min(budget.max_idle, budget.pages * page_size_ /
                                              std::max<size_t>(1, budget.default_bytes)));
}

size_t PipePool::pagesOf(const Pipe& pipe) const {
  return static_cast<size_t>(pipe.bytes) / page_size_;
}

Pipe PipePool::takeDefault() {
  if (!free_.empty()) {
    Pipe p = std::move(free_.back());
    free_.pop_back();
    pages_ -= pagesOf(p);
    low_water_ = std::min(low_water_, free_.size());
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
    return {};
  }
  ++created_;
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  // Smaller than the default when the owner was over its budget already (see give()).
  p.bytes = std::max(0, ::fcntl(p.write_end.get(), F_GETPIPE_SZ));
  return p;
}

Pipe PipePool::take(bool want_large) {
  if (want_large && large_pages_ > 0) {
    if (!free_large_.empty()) {
      Pipe p = std::move(free_large_.back());
      free_large_.pop_back();
      low_water_large_ = std::min(low_water_large_, free_large_.size());
      return p;
    }
    // Asked again at every bulk flow, even after a refusal: the refusal was the owner's
    // budget, which this process's other workers and other processes free without this
    // pool knowing, and a failed F_SETPIPE_SZ costs one call per bulk flow.
    if ((live_large_ + 1) * large_pages_ <= budget_.pages) {
      // Idle default pipes make way for a large one: a bulk flow gains more from it than an
      // idle pipe is worth.
      while (pages_ + large_pages_ > budget_.pages && !free_.empty()) {
        pages_ -= pagesOf(free_.back());
        free_.pop_back();
        low_water_ = std::min(low_water_, free_.size());
      }
      Pipe p = takeDefault();
      if (!p.read_end) {
        return p;
      }
      const int got = ::fcntl(p.write_end.get(), F_SETPIPE_SZ, budget_.large_bytes);
      if (got >= budget_.large_bytes) {
        p.large = true;
        p.bytes = got;
        ++live_large_;
        pages_ += large_pages_;
      }  // else refused (the owner is over its budget): the flow keeps the default pipe
      return p;
    }
  }
  return takeDefault();
}

void PipePool::give(Pipe&& pipe) {
  if (!pipe.read_end) {
    return;
  }
  if (pipe.large) {
    free_large_.push_back(std::move(pipe));  // counted in pages_ while alive
    return;
  }
  const size_t pages = pagesOf(pipe);
  // A shrunken pipe would slow every flow that draws it; the next one may be full-size again.
  const bool shrunken = pipe.bytes < budget_.default_bytes;
  if (!shrunken && free_.size() < budget_.max_idle && pages_ + pages <= budget_.pages) {
    free_.push_back(std::move(pipe));
    pages_ += pages;
    return;
  }
  discard(std::move(pipe));
}

void PipePool::discard(Pipe&& pipe) {
  if (!pipe.read_end) {
    return;
  }
  if (pipe.large) {
    --live_large_;
    pages_ -= large_pages_;
  }
  Pipe closing = std::move(pipe);  // its UniqueFds close here
}

void PipePool::closeOldestIdle(size_t defaults, size_t large) {
  defaults = std::min(defaults, free_.size());
  for (size_t i = 0; i < defaults; ++i) {
    pages_ -= pagesOf(free_[i]);
  }
  free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(defaults));
  large = std::min(large, free_large_.size());
  live_large_ -= large;
  pages_ -= large * large_pages_;
  free_large_.erase(free_large_.begin(), free_large_.begin() + static_cast<std::ptrdiff_t>(large));
}

void PipePool::trim() {
  // Takes and gives happen at the back, so the first low_water_ entries were not taken since
  // the last trim: free those, down to the floor.
  const size_t unused = std::min(low_water_, free_.size());
  const size_t above_floor = free_.size() > budget_.floor ? free_.size() - budget_.floor : 0;
  closeOldestIdle(std::min(unused, above_floor), std::min(low_water_large_, free_large_.size()));
  low_water_ = free_.size();
  low_water_large_ = free_large_.size();
}

void PipePool::shrink() {
  closeOldestIdle(free_.size() > budget_.floor ? free_.size() - budget_.floor : 0,
                  free_large_.size());
  low_water_ = free_.size();
  low_water_large_ = 0;
}

}  // namespace weir::net
