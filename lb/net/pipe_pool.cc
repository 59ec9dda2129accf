#include "net/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace weir::net {
namespace {

// Large requests served default pipes after a refused F_SETPIPE_SZ before asking again.
constexpr unsigned kGrowBackoff = 1024;
constexpr long kLargePipeBytes = 1 << 20;
constexpr size_t kMaxLargePerWorker = 64;
constexpr long kPageSize = 4096;  // pipe budgets count 4 KiB slots whatever the page size

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

}  // namespace

PipePool::PipePool(size_t max_idle, int large_bytes, size_t max_large)
    : max_idle_(max_idle), large_bytes_(large_bytes), max_large_(max_large) {
  free_.reserve(max_idle);
  free_large_.reserve(max_large);
}

Pipe PipePool::takeDefault() {
  if (!free_.empty()) {
    Pipe p = std::move(free_.back());
    free_.pop_back();
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
    return {};
  }
  ++created_;
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Pipe PipePool::take(bool want_large) {
  if (want_large && large_bytes_ > 0) {
    if (!free_large_.empty()) {
      Pipe p = std::move(free_large_.back());
      free_large_.pop_back();
      return p;
    }
    if (live_large_ < max_large_ && grow_backoff_ == 0) {
      Pipe p = takeDefault();
      if (!p.read_end) {
        return p;
      }
      if (::fcntl(p.write_end.get(), F_SETPIPE_SZ, large_bytes_) >= large_bytes_) {
        p.large = true;
        ++live_large_;
      } else {
        grow_backoff_ = kGrowBackoff;  // keeps the default-size pipe it has
      }
      return p;
    }
    if (grow_backoff_ > 0) {
      --grow_backoff_;
    }
  }
  return takeDefault();
}

void PipePool::give(Pipe&& pipe) {
  if (pipe.large) {
    if (free_large_.size() < max_large_) {
      free_large_.push_back(std::move(pipe));
      return;
    }
  } else if (free_.size() < max_idle_) {
    free_.push_back(std::move(pipe));
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
    grow_backoff_ = 0;  // budget freed: growing may succeed again
  }
  Pipe closing = std::move(pipe);  // its UniqueFds close here
}

LargePipes largePipesFor(unsigned nworkers) {
  LargePipes out;
  out.bytes = static_cast<int>(
      std::min(kLargePipeBytes, readProcLong("/proc/sys/fs/pipe-max-size", kLargePipeBytes)));
  if (exemptFromPipeBudget()) {
    out.max = kMaxLargePerWorker;
    return out;
  }
  const long soft_pages = readProcLong("/proc/sys/fs/pipe-user-pages-soft", 16384);
  if (soft_pages == 0) {  // 0: no soft limit
    out.max = kMaxLargePerWorker;
    return out;
  }
  const long pages_each = std::max(1L, out.bytes / kPageSize);
  const long share = soft_pages / 4 / std::max(1U, nworkers) / pages_each;
  out.max = static_cast<size_t>(std::clamp(share, 0L, static_cast<long>(kMaxLargePerWorker)));
  return out;
}

}  // namespace weir::net
