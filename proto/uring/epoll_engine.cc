// The epoll engine: the calls weir's worker makes today on a plain session's copy path
// (lb/worker/worker.cc, lb/worker/session.cc copy()), without weir's timers, logs and pools
// of backends, so that its cost per connection compares with the io_uring engine's.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "proxy.h"

namespace proto {
namespace {

constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

struct Side {
  int fd = -1;
  bool readable = false, writable = false, eof = false, shut_wr = false, hup = false;
};

struct Flow {
  std::unique_ptr<char[]> buf;  // held only while it has bytes to deliver, as weir's
  size_t off = 0, len = 0;
  bool done = false;
};

struct Conn {
  Side client, upstream;
  Flow c2u, u2c;
  bool connecting = true, closed = false;
};

enum class Pump { Blocked, Done, Failed };

class EpollWorker {
 public:
  EpollWorker(const Options& opts, int listen_fd) : opts_(opts), listen_fd_(listen_fd) {}

  int run() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.ptr = nullptr;  // the listener
    if (epfd_ < 0 || ::epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) < 0) {
      std::perror("uring-proto: epoll");
      return 1;
    }
    const int64_t deadline = nowMs() + opts_.max_seconds * 1000LL;
    epoll_event events[256];
    for (int64_t now = nowMs(); now < deadline; now = nowMs()) {
      const int n = ::epoll_wait(epfd_, events, 256, static_cast<int>(deadline - now));
      for (int i = 0; i < n; ++i) {
        dispatch(events[i]);
      }
      // Deferred frees: a later event of the same batch may still name a closed connection.
      graveyard_.clear();
    }
    return 0;
  }

 private:
  static int64_t nowMs() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
  }

  // The side is tagged in the pointer's low bit (Conn is at least 8-aligned).
  static void* tag(Conn* c, bool upstream) {
    return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(c) | (upstream ? 1 : 0));
  }

  void dispatch(const epoll_event& ev) {
    if (ev.data.ptr == nullptr) {
      acceptAll();
      return;
    }
    const auto bits = reinterpret_cast<uintptr_t>(ev.data.ptr);
    Conn* c = reinterpret_cast<Conn*>(bits & ~uintptr_t{1});
    if (c->closed) {
      return;
    }
    Side& side = (bits & 1) ? c->upstream : c->client;
    if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      side.readable = true;
    }
    if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      side.writable = true;
    }
    if (ev.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      side.hup = true;
    }
    if (c->connecting) {
      // Until the upstream connects there is nowhere to send to: the flags above keep the
      // client's edges for the pump that follows the connect, as weir's session does.
      if (!(bits & 1) || !(ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        return;
      }
      // EPOLLOUT alone means connected; only an error report needs SO_ERROR's reason.
      int err = 0;
      socklen_t len = sizeof(err);
      if ((ev.events & (EPOLLERR | EPOLLHUP)) &&
          (::getsockopt(side.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)) {
        close(c);
        return;
      }
      c->connecting = false;
    }
    pumpAll(c);
  }

  void acceptAll() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;
        }
        return;  // EAGAIN: drained; EMFILE and the like: the next edge retries
      }
      open(fd);
    }
  }

  void open(int client_fd) {
    auto* c = new Conn;
    c->client.fd = client_fd;
    c->client.writable = true;  // a fresh socket has an empty send buffer
    c->upstream.fd = upstreamSocket();
    if (c->upstream.fd < 0 ||
        (::connect(c->upstream.fd, reinterpret_cast<const sockaddr*>(&opts_.backend),
                   sizeof(opts_.backend)) < 0 &&
         errno != EINPROGRESS)) {
      close(c);
      return;
    }
    epoll_event ev{};
    ev.events = kSocketEvents;
    ev.data.ptr = tag(c, false);
    epoll_event uev{};
    uev.events = kSocketEvents;
    uev.data.ptr = tag(c, true);
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, client_fd, &ev) < 0 ||
        ::epoll_ctl(epfd_, EPOLL_CTL_ADD, c->upstream.fd, &uev) < 0) {
      close(c);
    }
  }

  void pumpAll(Conn* c) {
    if (!c->c2u.done) {
      const Pump up = copy(c->c2u, c->client, c->upstream);
      if (up == Pump::Failed) {
        close(c);
        return;
      }
      c->c2u.done = up == Pump::Done;
    }
    if (!c->u2c.done) {
      const Pump down = copy(c->u2c, c->upstream, c->client);
      if (down == Pump::Failed) {
        close(c);
        return;
      }
      c->u2c.done = down == Pump::Done;
    }
    if (c->c2u.done && c->u2c.done) {
      close(c);
    }
  }

  // session.cc's copy() for plain sockets: deliver the buffer before reading more; skip the
  // read that would only say EAGAIN after a short one. No budget: flows here are short.
  Pump copy(Flow& flow, Side& from, Side& to) {
    for (;;) {
      while (flow.len > 0) {
        if (!to.writable) {
          return Pump::Blocked;
        }
        const ssize_t n =
            ::send(to.fd, flow.buf.get() + flow.off, flow.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN) {
            to.writable = false;
            return Pump::Blocked;
          }
          if (errno == EINTR) {
            continue;
          }
          return Pump::Failed;
        }
        flow.off += static_cast<size_t>(n);
        flow.len -= static_cast<size_t>(n);
      }
      if (from.eof) {
        releaseBuffer(flow);
        // If the other direction is over too, close() sends this FIN: shutdown() would be a
        // wasted call.
        const bool other_done = to.eof && from.shut_wr;
        if (!to.shut_wr && !other_done) {
          (void)::shutdown(to.fd, SHUT_WR);
          to.shut_wr = true;
        }
        return Pump::Done;
      }
      if (!from.readable) {
        releaseBuffer(flow);
        return Pump::Blocked;
      }
      if (!flow.buf) {
        flow.buf = takeBuffer();
      }
      flow.off = 0;
      const ssize_t n = ::recv(from.fd, flow.buf.get(), kBufferSize, MSG_DONTWAIT);
      if (n == 0) {
        from.eof = true;
        continue;
      }
      if (n < 0) {
        if (errno == EAGAIN) {
          from.readable = false;
        } else if (errno != EINTR) {
          return Pump::Failed;
        }
        continue;
      }
      if (static_cast<size_t>(n) < kBufferSize && !from.hup) {
        from.readable = false;  // a short read emptied the socket; later bytes raise an edge
      }
      flow.len = static_cast<size_t>(n);
    }
  }

  // Buffers are pooled, as weir's worker pools them, so a connection costs no allocation.
  std::unique_ptr<char[]> takeBuffer() {
    if (free_buffers_.empty()) {
      return std::make_unique<char[]>(kBufferSize);
    }
    auto buf = std::move(free_buffers_.back());
    free_buffers_.pop_back();
    return buf;
  }

  void releaseBuffer(Flow& flow) {
    if (flow.buf) {
      free_buffers_.push_back(std::move(flow.buf));
    }
    flow.off = flow.len = 0;
  }

  // close() also drops both fds from the epoll set: no EPOLL_CTL_DEL.
  void close(Conn* c) {
    c->closed = true;
    releaseBuffer(c->c2u);
    releaseBuffer(c->u2c);
    if (c->client.fd >= 0) {
      ::close(c->client.fd);
    }
    if (c->upstream.fd >= 0) {
      ::close(c->upstream.fd);
    }
    graveyard_.emplace_back(c);
  }

  const Options& opts_;
  const int listen_fd_;
  int epfd_ = -1;
  std::vector<std::unique_ptr<char[]>> free_buffers_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
};

}  // namespace

int runEpoll(const Options& opts, int listen_fd) { return EpollWorker(opts, listen_fd).run(); }

}  // namespace proto
