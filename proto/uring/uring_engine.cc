// The io_uring engine: every socket operation of a connection is an SQE, and one
// io_uring_submit_and_wait per loop iteration submits the batch and reaps what completed.
// Accept and recv are multishot; recv picks its buffer from a provided-buffer ring, so an
// idle connection holds no buffer and a buffer goes back to the ring once sent.
//
// Variant --engine io_uring-direct keeps every socket in the ring's fixed-file table: accepted
// into a slot the kernel picks, upstream created by IORING_OP_SOCKET into a slot of ours and
// linked to its setsockopt and connect, so no socket call at all leaves the ring. Variant
// io_uring-direct-up does so for the upstream socket only (see passFin() for why).
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "proxy.h"

namespace proto {
namespace {

constexpr unsigned kSqEntries = 1024;
constexpr unsigned kCqEntries = 8192;
constexpr unsigned kBuffers = 1024;  // power of two (ring mask); 16 MiB of 16 KiB buffers
constexpr int kBufferGroup = 0;
constexpr unsigned kFiles = 8192;  // direct: first half for accepts, second for upstreams
constexpr uint32_t kSocketUringOpSetsockopt = 3;  // SOCKET_URING_OP_SETSOCKOPT, linux/io_uring.h

// user_data: a Conn pointer (16-aligned) with the operation in the low bits; 0 for the
// fire-and-forget close/cancel whose only possible CQE is a failure we ignore.
enum Op : uint64_t { kAccept = 1, kTimeout = 2, kConnect = 3, kRecv = 4, kSend = 5, kShutdown = 6 };
constexpr uint64_t kOpMask = 7;
constexpr uint64_t kUpstreamBit = 8;  // which side a recv reads from / a send writes to

constexpr int kClient = 0, kUpstream = 1;

// A received buffer waiting to be (or being) sent on.
struct Chunk {
  uint16_t bid;
  uint32_t len, off;
};

struct Side {
  int fd = -1;  // a descriptor, or a slot of the fixed-file table if `fixed`
  bool fixed = false;
  bool recv_armed = false, eof = false;
};

// flow[i] carries bytes read from side i to the other side.
struct Flow {
  std::deque<Chunk> queue;
  bool sending = false, done = false;
};

struct alignas(16) Conn {
  Side side[2];
  Flow flow[2];
  int inflight = 0;  // operations whose last CQE has not come yet: the Conn lives until 0
  bool connected = false, aborted = false;
};

class UringWorker {
 public:
  UringWorker(const Options& opts, int listen_fd) : opts_(opts), listen_fd_(listen_fd) {}

  int run() {
    if (!setupRing() || !setupBuffers() ||
        (opts_.direct != Options::Direct::None && !setupFiles())) {
      return 1;
    }
    armAccept();
    timeout_.tv_sec = opts_.max_seconds;
    io_uring_prep_timeout(sqe(), &timeout_, 0, 0);
    last_sqe_->user_data = kTimeout;
    while (!stop_) {
      if (returned_ > 0) {
        io_uring_buf_ring_advance(buf_ring_, returned_);
        returned_ = 0;
      }
      const int ret = io_uring_submit_and_wait(&ring_, 1);
      if (ret < 0 && ret != -EINTR && ret != -EBUSY) {
        std::fprintf(stderr, "uring-proto: io_uring_submit_and_wait: %s\n", std::strerror(-ret));
        return 1;
      }
      io_uring_cqe* cqe;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        handle(cqe->user_data, cqe->res, cqe->flags);
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
      // Recvs that ran out of buffers re-arm once this round's sends returned some.
      auto starved = std::move(starved_);
      starved_.clear();
      for (auto [c, side] : starved) {
        --c->inflight;
        if (c->aborted) {
          maybeRelease(c);
        } else {
          armRecv(c, side);
        }
      }
    }
    return 0;
  }

 private:
  // DEFER_TASKRUN runs completions only inside our io_uring_enter (no interrupting task work)
  // and needs SINGLE_ISSUER; older kernels fall back to COOP_TASKRUN, then to no flags.
  bool setupRing() {
    const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, 0};
    const char* names[] = {"SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL", "COOP_TASKRUN|SUBMIT_ALL",
                           "no flags"};
    int ret = -EINVAL;
    for (int i = 0; i < 3; ++i) {
      const unsigned flags = tries[i];
      io_uring_params p{};
      p.flags = flags | IORING_SETUP_CQSIZE;
      p.cq_entries = kCqEntries;
      ret = io_uring_queue_init_params(kSqEntries, &ring_, &p);
      if (ret == 0) {
        if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_CQE_SKIP)) {
          std::fprintf(stderr, "uring-proto: kernel lacks NODROP or CQE_SKIP\n");
          return false;
        }
        std::fprintf(stderr, "uring-proto: io_uring set up with %s\n", names[i]);
        return true;
      }
    }
    std::fprintf(stderr, "uring-proto: io_uring_queue_init: %s\n", std::strerror(-ret));
    return false;
  }

  // liburing 2.3 has no io_uring_setup_buf_ring (2.4 does): map and register the ring here.
  bool setupBuffers() {
    const size_t ring_bytes = kBuffers * sizeof(io_uring_buf);
    void* mem =
        ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    buffers_.resize(static_cast<size_t>(kBuffers) * kBufferSize);
    if (mem == MAP_FAILED) {
      std::perror("uring-proto: mmap");
      return false;
    }
    buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(buf_ring_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
    reg.ring_entries = kBuffers;
    reg.bgid = kBufferGroup;
    const int ret = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (ret < 0) {
      std::fprintf(stderr, "uring-proto: register_buf_ring: %s\n", std::strerror(-ret));
      return false;
    }
    for (unsigned i = 0; i < kBuffers; ++i) {
      io_uring_buf_ring_add(buf_ring_, bufferAt(static_cast<uint16_t>(i)), kBufferSize,
                            static_cast<uint16_t>(i), io_uring_buf_ring_mask(kBuffers),
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, kBuffers);
    return true;
  }

  // The kernel allocates accepted sockets' slots in the first half of the table; upstream
  // sockets take slots of the second half from our own free list, so that the slot is known
  // when the socket SQE is prepared and a connect SQE can be linked to it.
  bool setupFiles() {
    int ret = io_uring_register_files_sparse(&ring_, kFiles);
    if (ret == 0) {
      ret = io_uring_register_file_alloc_range(&ring_, 0, kFiles / 2);
    }
    if (ret < 0) {
      std::fprintf(stderr, "uring-proto: fixed files: %s\n", std::strerror(-ret));
      return false;
    }
    for (unsigned slot = kFiles - 1; slot >= kFiles / 2; --slot) {
      free_slots_.push_back(static_cast<int>(slot));
    }
    return true;
  }

  char* bufferAt(uint16_t bid) { return buffers_.data() + static_cast<size_t>(bid) * kBufferSize; }

  // The SQ is sized for a busy round; if handling one round's CQEs fills it anyway, submit
  // what is there and go on.
  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    while (s == nullptr) {
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    last_sqe_ = s;
    return s;
  }

  // Marks an SQE as operating on a side's socket, which may be a fixed-file slot.
  static void onSocket(io_uring_sqe* s, const Side& side) {
    if (side.fixed) {
      s->flags |= IOSQE_FIXED_FILE;
    }
  }

  // For SQEs whose success needs no handling: no CQE unless they fail.
  static void fireAndForget(io_uring_sqe* s) {
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    s->user_data = 0;
  }

  static uint64_t tag(Conn* c, uint64_t op, int side = kClient) {
    return reinterpret_cast<uint64_t>(c) | op | (side == kUpstream ? kUpstreamBit : 0);
  }

  void armAccept() {
    io_uring_sqe* s = sqe();
    if (opts_.direct == Options::Direct::All) {
      io_uring_prep_multishot_accept_direct(s, listen_fd_, nullptr, nullptr, 0);
    } else {
      io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    s->user_data = kAccept;
  }

  void handle(uint64_t data, int res, uint32_t flags) {
    if (data == 0) {
      return;  // a failed close/cancel: the connection's own CQEs tell what matters
    }
    const uint64_t op = data & kOpMask;
    if (op == kTimeout) {
      stop_ = true;
      return;
    }
    if (op == kAccept) {
      if (!(flags & IORING_CQE_F_MORE)) {
        armAccept();  // multishot ended (e.g. on EMFILE): re-arm
      }
      if (res >= 0) {
        open(res);
      }
      return;
    }
    Conn* c = reinterpret_cast<Conn*>(data & ~(kOpMask | kUpstreamBit));
    const int side = (data & kUpstreamBit) ? kUpstream : kClient;
    switch (op) {
      case kConnect:
        onConnect(c, res);
        break;
      case kRecv:
        onRecv(c, side, res, flags);
        break;
      case kSend:
        onSend(c, side, res);
        break;
      case kShutdown:
        --c->inflight;
        break;
    }
    maybeRelease(c);
  }

  // A connection is freed when nothing in the ring refers to it any more.
  void maybeRelease(Conn* c) {
    if (c->inflight == 0 && (c->aborted || (c->flow[0].done && c->flow[1].done))) {
      release(c);
    }
  }

  // A recv that will not come back by itself (ENOBUFS, or a multishot the kernel ended) is
  // re-armed after this round, once its sends gave buffers back; it counts as in flight.
  void starve(Conn* c, int side) {
    starved_.push_back({c, side});
    ++c->inflight;
  }

  void open(int client) {
    auto* c = new Conn;
    c->side[kClient].fd = client;
    c->side[kClient].fixed = opts_.direct == Options::Direct::All;
    if (opts_.direct != Options::Direct::None) {
      if (free_slots_.empty()) {
        c->side[kUpstream].fd = -1;
        c->aborted = true;
        release(c);
        return;
      }
      const int slot = free_slots_.back();
      free_slots_.pop_back();
      c->side[kUpstream].fd = slot;
      c->side[kUpstream].fixed = true;
      // socket -> TCP_NODELAY -> connect, linked: if one fails, the connect completes with
      // -ECANCELED.
      io_uring_sqe* s = sqe();
      io_uring_prep_socket_direct(s, AF_INET, SOCK_STREAM, 0, static_cast<unsigned>(slot), 0);
      fireAndForget(s);
      s->flags |= IOSQE_IO_LINK;
      prepNoDelay(sqe(), slot);
      fireAndForget(last_sqe_);
      last_sqe_->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
    } else {
      c->side[kUpstream].fd = upstreamSocket();
      if (c->side[kUpstream].fd < 0) {
        c->aborted = true;
        release(c);
        return;
      }
    }
    io_uring_sqe* s = sqe();
    io_uring_prep_connect(s, c->side[kUpstream].fd,
                          reinterpret_cast<const sockaddr*>(&opts_.backend), sizeof(opts_.backend));
    onSocket(s, c->side[kUpstream]);
    s->user_data = tag(c, kConnect);
    ++c->inflight;
    armRecv(c, kClient);  // the request may arrive before the backend answers the connect
  }

  // setsockopt as an io_uring command (kernel 6.7): the only way to reach a socket that has no
  // descriptor. liburing 2.3 neither has io_uring_prep_cmd_sock nor names the SQE fields, so
  // they are filled by their offsets: level and optname share addr, optlen is file_index's
  // slot, optval is addr3.
  static void prepNoDelay(io_uring_sqe* s, int slot) {
    static const int kOne = 1;
    io_uring_prep_rw(IORING_OP_URING_CMD, s, slot, nullptr, 0, 0);
    s->cmd_op = kSocketUringOpSetsockopt;
    s->addr = IPPROTO_TCP | (static_cast<uint64_t>(TCP_NODELAY) << 32);
    s->file_index = sizeof(kOne);
    s->addr3 = reinterpret_cast<uint64_t>(&kOne);
  }

  void armRecv(Conn* c, int side) {
    if (c->aborted) {
      return;
    }
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, c->side[side].fd, nullptr, 0, 0);
    onSocket(s, c->side[side]);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufferGroup;
    s->user_data = tag(c, kRecv, side);
    c->side[side].recv_armed = true;
    ++c->inflight;
  }

  void onConnect(Conn* c, int res) {
    --c->inflight;
    if (res < 0) {
      abort(c);
      return;
    }
    c->connected = true;
    armRecv(c, kUpstream);
    trySend(c, kClient);
    checkDone(c, kClient);
  }

  void onRecv(Conn* c, int side, int res, uint32_t flags) {
    if (!(flags & IORING_CQE_F_MORE)) {
      c->side[side].recv_armed = false;
      --c->inflight;
    }
    if (res > 0) {
      // Even on an aborted connection the buffer is queued: release() gives it back.
      c->flow[side].queue.push_back(Chunk{static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT),
                                          static_cast<uint32_t>(res), 0});
      if (!c->side[side].recv_armed && !c->aborted) {
        starve(c, side);  // the kernel ended the multishot without an EOF
      }
      trySend(c, side);
    } else if (res == 0) {
      c->side[side].eof = true;
      checkDone(c, side);
    } else if (res == -ENOBUFS && !c->aborted) {
      starve(c, side);
    } else if (!c->aborted) {
      abort(c);
    }
  }

  // A send completes for the flow whose destination is `to`.
  void onSend(Conn* c, int to, int res) {
    --c->inflight;
    const int from = 1 - to;
    Flow& flow = c->flow[from];
    flow.sending = false;
    if (res < 0) {
      abort(c);
      return;
    }
    Chunk& head = flow.queue.front();
    head.off += static_cast<uint32_t>(res);
    if (head.off == head.len) {
      giveBack(head.bid);
      flow.queue.pop_front();
    }
    trySend(c, from);
    checkDone(c, from);
  }

  // One send in flight per flow keeps the bytes in order.
  void trySend(Conn* c, int from) {
    Flow& flow = c->flow[from];
    const int to = 1 - from;
    if (c->aborted || flow.sending || flow.queue.empty() || !c->connected) {
      return;
    }
    const Chunk& head = flow.queue.front();
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c->side[to].fd, bufferAt(head.bid) + head.off, head.len - head.off,
                       MSG_NOSIGNAL);
    onSocket(s, c->side[to]);
    s->user_data = tag(c, kSend, to);
    flow.sending = true;
    ++c->inflight;
  }

  // A flow is done once its source ended and everything before the end was delivered; then
  // its FIN passes on, unless the other flow is done too and the closes will send it.
  void checkDone(Conn* c, int from) {
    Flow& flow = c->flow[from];
    // Before the connect completes, a shutdown of the upstream would fail: wait for it.
    if (c->aborted || flow.done || !c->side[from].eof || flow.sending || !flow.queue.empty() ||
        !c->connected) {
      return;
    }
    flow.done = true;
    const int to = 1 - from;
    if (!c->flow[to].done) {
      passFin(c, to);
    }
    // Both flows done: maybeRelease() closes the sockets (both recvs ended on their EOF).
  }

  // IORING_OP_SHUTDOWN never runs inline: the kernel hands it to an io-wq worker thread (a
  // thread wake-up per call), which looks the descriptor up only when it runs. Left untracked,
  // it could run after our close and shut down whatever socket reused the number. So a plain
  // socket takes the (inline) syscall, and a fixed one, which has no descriptor, waits for its
  // shutdown's CQE before its close. Short connections mostly pass the backend's FIN to the
  // client: io_uring-direct-up keeps the client a plain socket for this.
  void passFin(Conn* c, int to) {
    if (!c->side[to].fixed) {
      (void)::shutdown(c->side[to].fd, SHUT_WR);
      return;
    }
    io_uring_sqe* s = sqe();
    io_uring_prep_shutdown(s, c->side[to].fd, SHUT_WR);
    onSocket(s, c->side[to]);
    s->user_data = tag(c, kShutdown);
    ++c->inflight;
  }

  // An error on either side ends both: cancel what is still pending and free the connection
  // when the last cancelled operation has reported (handle() checks inflight).
  void abort(Conn* c) {
    c->aborted = true;
    for (const Side& side : c->side) {
      if (side.fd < 0 || c->inflight == 0) {
        continue;
      }
      io_uring_sqe* s = sqe();
      io_uring_prep_cancel_fd(
          s, side.fd, IORING_ASYNC_CANCEL_ALL | (side.fixed ? IORING_ASYNC_CANCEL_FD_FIXED : 0));
      fireAndForget(s);
    }
  }

  void release(Conn* c) {
    for (Flow& flow : c->flow) {
      for (const Chunk& chunk : flow.queue) {
        giveBack(chunk.bid);
      }
    }
    closeSockets(c);
    delete c;
  }

  void closeSockets(Conn* c) {
    for (const Side& side : c->side) {
      if (side.fd < 0) {
        continue;
      }
      io_uring_sqe* s = sqe();
      if (side.fixed) {
        io_uring_prep_close_direct(s, static_cast<unsigned>(side.fd));
      } else {
        io_uring_prep_close(s, side.fd);
      }
      fireAndForget(s);
    }
    // The close SQE precedes any later socket SQE for this slot in the ring, and runs first.
    if (c->side[kUpstream].fixed) {
      free_slots_.push_back(c->side[kUpstream].fd);
    }
  }

  // Buffers go back to the kernel in one ring-tail update per loop iteration (run()).
  void giveBack(uint16_t bid) {
    io_uring_buf_ring_add(buf_ring_, bufferAt(bid), kBufferSize, bid,
                          io_uring_buf_ring_mask(kBuffers), returned_++);
  }

  const Options& opts_;
  const int listen_fd_;
  io_uring ring_{};
  io_uring_sqe* last_sqe_ = nullptr;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::vector<char> buffers_;
  int returned_ = 0;
  std::vector<int> free_slots_;
  std::vector<std::pair<Conn*, int>> starved_;
  __kernel_timespec timeout_{};
  bool stop_ = false;
};

}  // namespace

int runUring(const Options& opts, int listen_fd) { return UringWorker(opts, listen_fd).run(); }

}  // namespace proto
