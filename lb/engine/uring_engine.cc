#include "engine/uring_engine.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace weir::engine {

namespace {

constexpr unsigned kSqEntries = 1024;
constexpr unsigned kCqEntries = 16384;  // a CQE per readiness change of every watched socket
// user_data of requests whose completion means nothing to us (poll cancel, close): they
// are submitted with IOSQE_CQE_SKIP_SUCCESS, and a failure of either is harmless.
constexpr uint64_t kIgnored = 0;

std::string disabledSetting() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = -1;
  if (in >> value) {
    return " (kernel.io_uring_disabled = " + std::to_string(value) + ")";
  }
  return "";
}

uint64_t tag(int fd, uint32_t generation) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

std::unique_ptr<UringEngine> UringEngine::create(std::string& why_not) {
  std::unique_ptr<UringEngine> engine(new UringEngine());
  // DEFER_TASKRUN runs completion work only inside our own io_uring_enter, never as task work
  // that interrupts the loop, and needs SINGLE_ISSUER (the worker is one thread). Kernels
  // before 6.1 lack it: COOP_TASKRUN, then no flags.
  const unsigned tries[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, 0};
  int ret = -EINVAL;
  io_uring_params params{};
  for (const unsigned flags : tries) {
    params = io_uring_params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = kCqEntries;
    ret = io_uring_queue_init_params(kSqEntries, &engine->ring_, &params);
    if (ret == 0) {
      break;
    }
    if (ret != -EINVAL) {
      break;  // not a flag this kernel lacks: io_uring itself is unavailable
    }
  }
  if (ret != 0) {
    why_not = std::string("io_uring_setup: ") + std::strerror(-ret);
    if (ret == -EPERM || ret == -ENOSYS) {
      why_not += disabledSetting();
      if (why_not.find("disabled") == std::string::npos) {
        why_not += " (no io_uring in this kernel, or a seccomp filter refuses it)";
      }
    }
    return nullptr;
  }
  engine->ring_ready_ = true;
  // No dropped completions (a full CQ ring holds them back), a wait with a timeout in the
  // same call as the submission, and completions that successful closes may skip: Linux 5.17.
  const unsigned needed = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_CQE_SKIP;
  if ((params.features & needed) != needed) {
    why_not = "this kernel's io_uring lacks NODROP, EXT_ARG or CQE_SKIP (Linux 5.17 has them)";
    return nullptr;
  }
  return engine;
}

UringEngine::~UringEngine() {
  if (ring_ready_) {
    io_uring_queue_exit(&ring_);  // cancels the polls, drops their file references
  }
}

io_uring_sqe* UringEngine::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    io_uring_submit(&ring_);  // the submission ring is full: hand this part over now
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void UringEngine::arm(int fd, const Watched& w) {
  io_uring_sqe* s = sqe();
  // Edge-triggered (no IORING_POLL_ADD_LEVEL): a completion per wake-up of the socket.
  io_uring_prep_poll_multishot(s, fd, w.events);
  io_uring_sqe_set_data64(s, tag(fd, w.generation));
}

bool UringEngine::watch(int fd, uint32_t events, void* ptr) {
  if (fd < 0) {
    errno = EBADF;
    return false;
  }
  const auto index = static_cast<size_t>(fd);
  if (index >= fds_.size()) {
    fds_.resize(std::max(index + 1, fds_.size() * 2));
  }
  Watched& w = fds_[index];
  w.ptr = ptr;
  w.events = (events & ~static_cast<uint32_t>(EPOLLET)) | EPOLLERR | EPOLLHUP;
  ++w.generation;
  w.live = true;
  arm(fd, w);
  return true;
}

void UringEngine::close(int fd) {
  const auto index = static_cast<size_t>(fd);
  if (index < fds_.size() && fds_[index].live) {
    Watched& w = fds_[index];
    w.live = false;
    io_uring_sqe* remove = sqe();
    // A cancel, not IORING_OP_POLL_REMOVE: on Linux 6.18 a poll removal submitted in the same
    // io_uring_enter as its poll (a connection closed in the batch that accepted it) does not
    // find the poll, and the socket stays open.
    io_uring_prep_cancel64(remove, tag(fd, w.generation), 0);
    io_uring_sqe_set_data64(remove, kIgnored);
    remove->flags |= IOSQE_CQE_SKIP_SUCCESS;
  }
  // After the cancel (requests are issued in order): the poll's reference to the file goes
  // first, so this close is the last one and the socket ends now.
  io_uring_sqe* close = sqe();
  io_uring_prep_close(close, fd);
  io_uring_sqe_set_data64(close, kIgnored);
  close->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

int UringEngine::wait(Event* out, int max, int timeout_ms) {
  int ret;
  if (timeout_ms <= 0) {
    ret = io_uring_submit_and_get_events(&ring_);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    io_uring_cqe* first = nullptr;
    ret = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &ts, nullptr);
  }
  if (ret < 0 && ret != -ETIME && ret != -EBUSY) {
    if (ret == -EINTR && io_uring_cq_ready(&ring_) == 0) {
      errno = EINTR;
      return -1;
    }
    if (ret != -EINTR) {
      errno = -ret;
      return -1;
    }
  }
  int n = 0;
  unsigned seen = 0;
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (n == max) {
      break;  // the rest stay in the ring for the next call
    }
    ++seen;
    if (cqe->user_data == kIgnored) {
      continue;  // a failed poll cancel or close: nothing to do about either
    }
    const auto fd = static_cast<uint32_t>(cqe->user_data);
    const auto generation = static_cast<uint32_t>(cqe->user_data >> 32);
    if (fd >= fds_.size()) {
      continue;
    }
    const Watched& w = fds_[fd];
    if (!w.live || w.generation != generation) {
      continue;  // the fd was closed (and its number maybe watched again) since
    }
    if (cqe->res > 0) {
      out[n++] = {w.ptr, static_cast<uint32_t>(cqe->res)};
    }
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
      // The kernel ended the multishot request (a CQ overflow, say): poll again, which also
      // reports what is ready right now, so no edge is lost.
      arm(static_cast<int>(fd), w);
    }
  }
  io_uring_cq_advance(&ring_, seen);
  return n;
}

}  // namespace weir::engine
