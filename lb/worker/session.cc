#include "worker/session.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "net/socket.h"
#include "util/log.h"
#include "worker/worker.h"

namespace weir::worker {
namespace {

// Most bytes one direction may move per dispatch before yielding to other connections.
constexpr size_t kBudget = 512 * 1024;
// Bytes requested per splice() call; the pipe's free space bounds the real amount.
constexpr size_t kSpliceChunk = 1 << 20;
// A single read at least this large marks a flow as bulk (a default pipe holds 64 KiB).
constexpr size_t kBulkRead = 32 * 1024;
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

bool isResourceErrno(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

}  // namespace

const char* toString(CloseReason reason) {
  switch (reason) {
    case CloseReason::Done:
      return "done";
    case CloseReason::ClientReset:
      return "client-error";
    case CloseReason::UpstreamReset:
      return "upstream-error";
    case CloseReason::IdleTimeout:
      return "idle-timeout";
    case CloseReason::ConnectFailed:
      return "connect-failed";
    case CloseReason::NoBackend:
      return "no-backend";
    case CloseReason::BackendsFull:
      return "backends-full";
    case CloseReason::ResourceLimit:
      return "resource-limit";
    case CloseReason::Shutdown:
      return "shutdown";
  }
  return "?";
}

Session::Session(Worker* worker) : worker_(worker) {
  client_.ep = {EndpointKind::Client, this};
  upstream_.ep = {EndpointKind::Upstream, this};
  timer.owner = this;
}

void Session::resetSide(Side& side, EndpointKind kind) {
  side.fd.reset();
  side.readable = side.writable = side.eof = side.shut_wr = false;
  side.ep = {kind, this};
}

void Session::start(net::UniqueFd client, const net::SockAddr& peer, uint32_t listener,
                    PoolRuntime* pool, uint64_t id, int64_t now_ms) {
  id_ = id;
  resetSide(client_, EndpointKind::Client);
  resetSide(upstream_, EndpointKind::Upstream);
  c2u_ = Flow{};
  u2c_ = Flow{};
  client_.fd = std::move(client);
  peer_ = peer;
  listener_ = listener;
  pool_ = pool;
  backend_ = -1;
  reserved_ = false;
  attempts_ = 0;
  tried_ = 0;
  last_error_ = 0;
  started_ms_ = now_ms;
  queued = false;
  state_ = State::Connecting;

  epoll_event ev{};
  ev.events = kSocketEvents;
  ev.data.ptr = &client_.ep;
  if (::epoll_ctl(worker_->epollFd(), EPOLL_CTL_ADD, client_.fd.get(), &ev) < 0) {
    finish(CloseReason::ResourceLimit);
    return;
  }
  connectNext();  // client_ has TCP_NODELAY from its listener
}

void Session::connectNext() {
  const config::Pool& pool = *pool_->pool;
  for (;;) {
    if (attempts_ > pool.retries) {
      finish(CloseReason::ConnectFailed);
      return;
    }
    const balance::Pick pick = pool_->balancer->pick({&peer_, tried_});
    if (pick.status == balance::PickStatus::AllFull) {
      worker_->onRejectedFull();
      finish(CloseReason::BackendsFull);
      return;
    }
    if (pick.status != balance::PickStatus::Ok) {
      finish(attempts_ == 0 ? CloseReason::NoBackend : CloseReason::ConnectFailed);
      return;
    }
    ++attempts_;
    backend_ = pick.backend;
    reserved_ = true;
    if (backend_ < 64) {
      tried_ |= uint64_t{1} << backend_;
    }
    auto fd = net::connectNonBlocking(pool.backends[backend_].address);
    if (!fd) {
      last_error_ = fd.error().code;
      if (isResourceErrno(last_error_)) {
        finish(CloseReason::ResourceLimit);  // our shortage, not the backend's fault
        return;
      }
      // e.g. EADDRNOTAVAIL, ENETUNREACH: counts against the backend; the next may work.
      pool_->slots->onConnectFailed(backend_, last_error_, worker_->now());
      reserved_ = false;
      logConnectFailure();
      continue;
    }
    resetSide(upstream_, EndpointKind::Upstream);
    upstream_.fd = std::move(*fd);
    epoll_event ev{};
    ev.events = kSocketEvents;
    ev.data.ptr = &upstream_.ep;
    if (::epoll_ctl(worker_->epollFd(), EPOLL_CTL_ADD, upstream_.fd.get(), &ev) < 0) {
      finish(CloseReason::ResourceLimit);
      return;
    }
    state_ = State::Connecting;
    pool_->connect_timers->arm(timer, worker_->now());
    return;
  }
}

void Session::endReservation(bool connected) {
  if (!reserved_) {
    return;
  }
  reserved_ = false;
  if (connected) {
    pool_->slots->onClose(backend_, u2c_.bytes, c2u_.bytes);
  } else {
    pool_->slots->release(backend_);
  }
}

void Session::connectFailed(int err) {
  last_error_ = err;
  // Passive health: counts toward taking the backend down; ends the reservation.
  pool_->slots->onConnectFailed(backend_, err, worker_->now());
  reserved_ = false;
  logConnectFailure();
  // Close now, connect again from the deferred phase: events for the old socket may still be
  // in this epoll batch and must not be mistaken for the new socket's.
  TimerList::disarm(timer);
  resetSide(upstream_, EndpointKind::Upstream);
  state_ = State::Retrying;
  worker_->enqueue(this);
}

void Session::logConnectFailure() const {
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("[C{}] connect to {} failed: {}", id_,
                  pool_->pool->backends[backend_].address.toString(), std::strerror(last_error_));
  }
}

void Session::onEvent(bool upstream, uint32_t events) {
  Side& side = upstream ? upstream_ : client_;
  if (state_ == State::Closed || !side.fd) {
    return;  // stale event for a socket closed earlier in this batch
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    side.readable = true;
  }
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    side.writable = true;
  }
  if (state_ == State::Connecting) {
    if (upstream && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      // EPOLLOUT alone means connected; only an error report needs SO_ERROR's reason.
      int err = (events & (EPOLLERR | EPOLLHUP)) ? net::socketError(upstream_.fd.get()) : 0;
      if (err == 0 && (events & (EPOLLERR | EPOLLHUP))) {
        err = ECONNRESET;  // hung up with no pending error: treat as a failed connect
      }
      if (err != 0) {
        connectFailed(err);
        return;
      }
      state_ = State::Streaming;
      last_error_ = 0;
      pool_->slots->onConnectOk(backend_);
      pool_->idle_timers->arm(timer, worker_->now());
      pumpAll();
    }
    return;  // client bytes wait in the socket until the backend is connected
  }
  if (state_ == State::Streaming) {
    pumpAll();
  }
}

void Session::onTimeout() {
  if (state_ == State::Connecting) {
    connectFailed(ETIMEDOUT);
  } else if (state_ == State::Streaming) {
    finish(CloseReason::IdleTimeout);
  }
}

void Session::onReady() {
  if (state_ == State::Retrying) {
    connectNext();
  } else if (state_ == State::Streaming) {
    pumpAll();
  }
}

void Session::pumpAll() {
  moved_ = false;
  Pump up = pump(c2u_, client_, upstream_, CloseReason::ClientReset, CloseReason::UpstreamReset);
  if (up == Pump::Failed) {
    return;
  }
  Pump down = pump(u2c_, upstream_, client_, CloseReason::UpstreamReset, CloseReason::ClientReset);
  if (down == Pump::Failed) {
    return;
  }
  if (up == Pump::Done && down == Pump::Done) {
    finish(CloseReason::Done);
    return;
  }
  if (up == Pump::Yield || down == Pump::Yield) {
    worker_->enqueue(this);
  }
  if (moved_) {
    pool_->idle_timers->arm(timer, worker_->now());
  }
}

void Session::releasePipe(Flow& flow) {
  if (flow.pipe.read_end) {
    if (flow.in_pipe == 0) {
      worker_->pipes().give(std::move(flow.pipe));
    } else {
      worker_->pipes().discard(std::move(flow.pipe));  // bytes nobody will read: no reuse
    }
    flow.pipe = net::Pipe{};
  }
  flow.in_pipe = 0;
}

Session::Pump Session::pump(Flow& flow, Side& from, Side& to, CloseReason from_err,
                            CloseReason to_err) {
  size_t budget = kBudget;
  for (;;) {
    // Drain the pipe first: reading resumes only once the destination took everything, so
    // a read's EAGAIN always means "socket empty", never "pipe full".
    while (flow.in_pipe > 0) {
      if (!to.writable) {
        return Pump::Blocked;
      }
      ssize_t n = ::splice(flow.pipe.read_end.get(), nullptr, to.fd.get(), nullptr, flow.in_pipe,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        flow.in_pipe -= static_cast<size_t>(n);
        flow.bytes += static_cast<uint64_t>(n);
        moved_ = true;
      } else if (n < 0 && errno == EAGAIN) {
        to.writable = false;  // socket buffer full: EPOLLOUT will tell us when it drains
        return Pump::Blocked;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        last_error_ = n < 0 ? errno : EPIPE;  // EPIPE/ECONNRESET: the destination went away
        finish(to_err);
        return Pump::Failed;
      }
    }
    if (from.eof) {
      releasePipe(flow);
      // If the other direction is over too (its source ended, its FIN passed on), the session
      // closes both sockets now and close() sends this FIN: shutdown() would be a wasted call.
      const bool other_done = to.eof && from.shut_wr;
      if (!to.shut_wr && !other_done) {
        // Half-close: pass the FIN on only now that every byte before it was delivered.
        (void)::shutdown(to.fd.get(), SHUT_WR);
        to.shut_wr = true;
      }
      return Pump::Done;
    }
    if (!from.readable) {
      releasePipe(flow);
      return Pump::Blocked;
    }
    if (budget == 0) {
      return Pump::Yield;
    }
    if (flow.bulk && !flow.pipe.large && flow.pipe.read_end) {
      // Turned bulk while holding a default pipe, empty here: trade it in for a large one, or
      // the flow would keep the small one for as long as its source never runs dry.
      worker_->pipes().give(std::move(flow.pipe));
      flow.pipe = net::Pipe{};
    }
    if (!flow.pipe.read_end) {
      flow.pipe = worker_->pipes().take(flow.bulk);
      if (!flow.pipe.read_end) {
        last_error_ = errno;
        finish(CloseReason::ResourceLimit);
        return Pump::Failed;
      }
    }
    ssize_t n = ::splice(from.fd.get(), nullptr, flow.pipe.write_end.get(), nullptr,
                         kSpliceChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      flow.in_pipe = static_cast<size_t>(n);
      flow.bulk = flow.bulk || flow.in_pipe >= kBulkRead;
      budget -= std::min(budget, static_cast<size_t>(n));
    } else if (n == 0) {
      from.eof = true;
    } else if (errno == EAGAIN) {
      from.readable = false;
    } else if (errno != EINTR) {
      last_error_ = errno;
      finish(from_err);
      return Pump::Failed;
    }
  }
}

std::string Session::describe() const {
  const std::string backend = backend_ >= 0 && state_ == State::Streaming
                                  ? pool_->pool->backends[backend_].address.toString()
                                  : "(none yet)";
  return "client " + peer_.toString() + " -> backend " + backend + ", " +
         std::to_string(c2u_.bytes) + " bytes up, " + std::to_string(u2c_.bytes) + " down, open " +
         std::to_string(worker_->now() - started_ms_) + " ms";
}

void Session::finish(CloseReason reason) {
  if (state_ == State::Closed || state_ == State::Idle) {
    return;
  }
  const bool connected = state_ == State::Streaming;
  state_ = State::Closed;
  TimerList::disarm(timer);
  if (auto* log = util::accessLog()) {
    const auto& cfg = worker_->config();
    std::string backend =
        backend_ >= 0 && connected ? pool_->pool->backends[backend_].address.toString() : "-";
    log->info("conn={}-{} listener={} client={} backend={} up={} down={} duration={}ms "
              "reason={}{}{}",
              worker_->slot(), id_, cfg.listeners[listener_].name, peer_.toString(), backend,
              c2u_.bytes, u2c_.bytes, worker_->now() - started_ms_, toString(reason),
              last_error_ ? " error=" : "", last_error_ ? std::strerror(last_error_) : "");
  }
  endReservation(connected);
  releasePipe(c2u_);
  releasePipe(u2c_);
  client_.fd.reset();
  upstream_.fd.reset();
  worker_->onClosed(this);
}

}  // namespace weir::worker
