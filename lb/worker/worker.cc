#include "worker/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "proxy/header.h"
#include "shm/worker_stats.h"
#include "util/log.h"
#include "util/time.h"

namespace weir::worker {
namespace {

constexpr int kMaxEvents = 512;
constexpr size_t kListedOnStop = 100;  // connections named one by one when a stop cuts them
constexpr int kAcceptBatch = 64;
constexpr int64_t kAcceptPauseMs = 100;  // after EMFILE/ENFILE: retry later, never spin
// How long a listener whose pool has a backend name with no address yet (a first start, a
// name a reload added) waits for the checker's first answers before it accepts anyway, and
// how often it looks.
constexpr int64_t kNamesHoldMs = 5000;
constexpr int64_t kNamesPollMs = 10;
constexpr int64_t kReconcileMs = 1000;
// Idle pipes unused for a whole period are freed at its end (so after 5 to 10 s).
constexpr int64_t kPipeTrimMs = 5000;
// Idle CopyBuffers kept for reuse (16 KiB each); more are freed when given back.
constexpr size_t kFreeBuffers = 256;

}  // namespace

int64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Worker::Worker(const config::Config& cfg, unsigned slot, std::vector<ListenSocket> sockets,
               steer::SlotLoad load, const shm::BackendMap& backends, shm::WorkerSlot& stats,
               std::shared_ptr<const tls::Contexts> tls, steer::ClientHolds* holds)
    : cfg_(cfg),
      slot_(slot),
      sockets_(std::move(sockets)),
      load_(load),
      holds_(holds),
      backends_(backends),
      stats_(stats),
      tls_(std::move(tls)) {
  for (const auto& listener : cfg_.listeners) {
    client_limits_.push_back(steer::clientLimitOf(listener));
  }
}

Worker::~Worker() = default;

TimerList* Worker::timerList(int64_t duration_ms) {
  for (auto& t : timer_lists_) {
    if (t->durationMs() == duration_ms) {
      return t.get();
    }
  }
  timer_lists_.push_back(std::make_unique<TimerList>(duration_ms));
  return timer_lists_.back().get();
}

void Worker::setup() {
  // Sized here, after the privilege drop: the pipe budget is the final owner's.
  const net::PipeBudget budget = net::pipeBudgetFor(cfg_.global.workers);
  pipes_ = net::PipePool(budget);
  spdlog::debug("worker {}: pipe budget {} pages, large pipes of {} bytes", slot_, budget.pages,
                budget.large_bytes);
  const engine::Kind wanted = cfg_.global.event_engine == config::EventEngine::IoUring
                                 ? engine::Kind::IoUring
                                 : engine::Kind::Epoll;
  std::string fallback;
  engine_ = engine::make(wanted, fallback);
  if (!fallback.empty()) {
    spdlog::warn("worker {}: event_engine \"{}\" is unavailable, using epoll: {}", slot_,
                 engine::toString(wanted), fallback);
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGQUIT);
  sigaddset(&mask, SIGUSR1);
  signal_fd_ = net::UniqueFd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) {
    throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
  }
  if (!engine_->watch(signal_fd_.get(), EPOLLIN, &signal_ep_)) {
    throw std::runtime_error(std::string("watching the signalfd: ") + std::strerror(errno));
  }

  for (size_t p = 0; p < cfg_.pools.size(); ++p) {
    const config::Pool& pool = cfg_.pools[p];
    const shm::PoolSlots& slots = backends_.pool(p);
    auto rt = std::make_unique<PoolRuntime>();
    rt->pool = &pool;
    rt->balancer = balance::makeBalancer(pool, slots, static_cast<uint64_t>(::getpid()));
    rt->slots = &slots;
    rt->connect_timers = timerList(pool.connect_timeout.count());
    rt->idle_timers = timerList(pool.idle_timeout.count());
    if (tls_ && p < tls_->clients.size() && tls_->clients[p]) {
      rt->tls = tls_->clients[p].get();
    }
    pools_.push_back(std::move(rt));
  }
  for (size_t i = 0; i < cfg_.listeners.size(); ++i) {
    const config::Listener& l = cfg_.listeners[i];
    auto rt = std::make_unique<ListenerRuntime>();
    rt->index = static_cast<uint32_t>(i);
    rt->listener = &l;
    rt->pool = pools_[l.pool_index].get();
    for (const config::SniRoute& r : l.sni) {
      rt->routes.push_back(pools_[r.pool_index].get());
    }
    if (!l.sni.empty()) {
      rt->sni = std::make_unique<tls::SniTable>(l.sni);
    }
    if (l.mode == config::ListenerMode::TlsTerminate) {
      if (!tls_ || i >= tls_->servers.size() || !tls_->servers[i]) {
        throw std::runtime_error("listener " + l.name + ": no TLS context");
      }
      rt->server = tls_->servers[i].get();
      rt->first_timers = timerList(l.tls->handshake_timeout.count());
    } else if (l.mode == config::ListenerMode::TlsPassthrough) {
      rt->first_timers = timerList(l.client_hello_timeout.count());
    }
    if (l.accept_proxy_protocol) {
      rt->proxy_timers = timerList(l.proxy_protocol_timeout.count());
    }
    if ((l.mode == config::ListenerMode::TlsPassthrough || l.accept_proxy_protocol) &&
        !hello_scratch_) {
      static_assert(tls::kMaxClientHello >= proxy::kMaxLength);
      hello_scratch_ = std::make_unique<char[]>(tls::kMaxClientHello);
    }
    listeners_.push_back(std::move(rt));
  }

  listen_eps_.resize(sockets_.size());
  accept_pending_.assign(sockets_.size(), false);
  names_hold_.assign(sockets_.size(), false);
  // Listeners with a pool (default or SNI route) that has a backend name with no address in
  // any slot: a first start, or a name that a reload added. Names carried over with their
  // addresses serve at once, and so do their listeners.
  auto unanswered = [](const PoolRuntime* p) {
    return shm::hasNameWithoutAddress(*p->pool, *p->slots);
  };
  for (size_t i = 0; i < sockets_.size(); ++i) {
    const ListenerRuntime& l = *listeners_[sockets_[i].listener];
    names_hold_[i] =
        unanswered(l.pool) || std::any_of(l.routes.begin(), l.routes.end(), unanswered);
  }
  for (size_t i = 0; i < sockets_.size(); ++i) {
    listen_eps_[i] = {EndpointKind::Listener, reinterpret_cast<void*>(i)};
    if (!engine_->watch(sockets_[i].fd, EPOLLIN, &listen_eps_[i])) {
      throw std::runtime_error(std::string("watching a listener: ") + std::strerror(errno));
    }
  }
}

void Worker::enqueue(Session* s) {
  if (!s->queued) {
    s->queued = true;
    ready_.push_back(s);
  }
}

bool Worker::holdClient(Session* s, uint32_t listener, const net::SockAddr& peer) {
  const weir_client_limit& limit = client_limits_[listener];
  if (limit.max_conns == 0 || holds_ == nullptr || s->index >= holds_->size()) {
    return true;  // (an index past the record, briefly possible while closed sessions wait
                  // to be reused, goes uncounted rather than unreleasable)
  }
  const std::optional<uint32_t> cells = steer::clientCells(*load_.state(), limit, peer);
  if (!cells) {
    return true;
  }
  // Recorded first: if this worker dies from here on, the master takes back what it added.
  holds_->set(s->index, *cells);
  if (!steer::holdConnection(*load_.state(), *cells, limit.max_conns)) {
    holds_->clear(s->index);
    return false;
  }
  return true;
}

void Worker::onClosed(Session* s) {
  if (holds_ != nullptr) {
    if (const std::optional<uint32_t> cells = holds_->get(s->index)) {
      steer::releaseConnection(*load_.state(), *cells);
      holds_->clear(s->index);  // after: a death in between gives back at most one too many
    }
  }
  --active_;
  load_.closed();
  shm::onClientClosed(stats_);
  dead_.push_back(s);
}

void Worker::onSessionEnd(uint32_t listener, CloseReason reason, uint64_t from_client,
                          uint64_t to_client) {
  shm::onListenerClosed(stats_, listener, static_cast<size_t>(reason), from_client, to_client);
}

void Worker::onRejectedFull() { shm::onRejectedFull(stats_); }

void Worker::onBadHello() { shm::onBadHello(stats_); }
void Worker::onProxyUntrusted() { shm::onProxyUntrusted(stats_); }
void Worker::onBadProxyHeader() { shm::onBadProxyHeader(stats_); }

void Worker::onTlsHandshake(bool ok, bool resumed) { shm::onTlsHandshake(stats_, ok, resumed); }

PoolRuntime* Worker::routeFor(const ListenerRuntime& listener, const std::string& name) const {
  if (!listener.sni) {
    return nullptr;
  }
  const std::optional<size_t> i = listener.sni->lookup(name);
  return i ? listener.routes[*i] : nullptr;
}

std::unique_ptr<char[]> Worker::takeBuffer() {
  if (free_buffers_.empty()) {
    return std::make_unique<char[]>(CopyBuffer::kSize);
  }
  auto buf = std::move(free_buffers_.back());
  free_buffers_.pop_back();
  return buf;
}

void Worker::giveBuffer(std::unique_ptr<char[]> buf) {
  if (free_buffers_.size() < kFreeBuffers) {
    free_buffers_.push_back(std::move(buf));
  }
}

Session* Worker::newSession() {
  if (free_sessions_.empty()) {
    all_sessions_.push_back(std::make_unique<Session>(this));
    all_sessions_.back()->index = static_cast<uint32_t>(all_sessions_.size() - 1);
    return all_sessions_.back().get();
  }
  Session* s = free_sessions_.back();
  free_sessions_.pop_back();
  return s;
}

void Worker::pauseAccepting(int64_t until_ms) { accept_paused_until_ = until_ms; }

void Worker::acceptFrom(size_t index) {
  const ListenSocket& ls = sockets_[index];
  accept_pending_[index] = true;
  if (stopping_ || now_ms_ < accept_paused_until_ ||
      (names_hold_[index] && holdingForNames())) {
    return;
  }
  for (int n = 0; n < kAcceptBatch; ++n) {
    if (active_ >= cfg_.global.max_connections) {
      return;  // resumes when a session closes (runDeferred)
    }
    net::SockAddr peer;
    *peer.lenPtr() = peer.capacity();
    int fd = ::accept4(ls.fd, peer.get(), peer.lenPtr(), SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN) {
        accept_pending_[index] = false;
        return;
      }
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM) {
        continue;  // that one connection is gone; the queue may hold more
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays queued in the kernel; spinning on accept would burn the CPU.
        if (now_ms_ - last_emfile_log_ms_ >= 1000) {
          spdlog::warn("accept: {} ({} active connections); pausing accepts for {} ms",
                       std::strerror(errno), active_, kAcceptPauseMs);
          last_emfile_log_ms_ = now_ms_;
        }
        pauseAccepting(now_ms_ + kAcceptPauseMs);
        return;
      }
      spdlog::error("accept on listener {}: {}", cfg_.listeners[ls.listener].name,
                    std::strerror(errno));
      pauseAccepting(now_ms_ + kAcceptPauseMs);
      return;
    }
    if (ls.check_access && !cfg_.listeners[ls.listener].access->allows(peer)) {
      refuse(fd);
      shm::onListenerDenied(stats_, ls.listener);
      continue;
    }
    if (ls.check_rate && !steer::rateAllows(*load_.state(), client_limits_[ls.listener], peer,
                                            steer::monotonicNs())) {
      refuse(fd);
      shm::onListenerLimited(stats_, ls.listener);
      continue;
    }
    Session* s = newSession();
    if (!holdClient(s, ls.listener, peer)) {
      free_sessions_.push_back(s);
      refuse(fd);
      shm::onListenerLimited(stats_, ls.listener);
      continue;
    }
    ++active_;
    ++accepted_;
    shm::onAccept(stats_);
    shm::onListenerAccept(stats_, ls.listener);
    load_.accepted();
    s->start(net::UniqueFd(fd), peer, *listeners_[ls.listener], accepted_, now_ms_);
  }
  // Batch used up with the queue maybe non-empty: continue after other events.
}

void Worker::refuse(int fd) {
  // A RST, as the kernel answers a SYN the steering program refused: the client learns at
  // once, and no TIME_WAIT is left behind.
  const linger reset{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(fd);
}

bool Worker::holdingForNames() {
  if (names_hold_until_ms_ == 0) {
    return false;
  }
  if (!backends_.namesUnanswered()) {
    names_hold_until_ms_ = 0;
    return false;
  }
  if (now_ms_ >= names_hold_until_ms_) {
    spdlog::warn("worker {}: backend names still unanswered after {} ms; accepting anyway",
                 slot_, kNamesHoldMs);
    names_hold_until_ms_ = 0;
    return false;
  }
  return true;
}

void Worker::acceptPending() {
  for (size_t i = 0; i < sockets_.size(); ++i) {
    if (accept_pending_[i]) {
      acceptFrom(i);
    }
  }
}

void Worker::dispatch(const engine::Event& ev) {
  auto* ep = static_cast<Endpoint*>(ev.ptr);
  switch (ep->kind) {
    case EndpointKind::Listener:
      acceptFrom(reinterpret_cast<size_t>(ep->owner));
      break;
    case EndpointKind::Client:
      static_cast<Session*>(ep->owner)->onEvent(false, ev.events);
      break;
    case EndpointKind::Upstream:
      static_cast<Session*>(ep->owner)->onEvent(true, ev.events);
      break;
    case EndpointKind::Signal:
      onSignal();
      break;
  }
}

void Worker::onSignal() {
  signalfd_siginfo si{};
  while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
    if (si.ssi_signo == SIGUSR1) {
      // logrotate moved the files away: open them again by name. A file that cannot be opened
      // costs this worker nothing but the rotation: it keeps the files it has.
      if (auto error = util::reopenLogs()) {
        spdlog::error("reopening log files failed, still writing to the old ones: {}", *error);
      } else {
        spdlog::info("log files reopened");
      }
    } else if (si.ssi_signo == SIGQUIT) {
      if (!stopping_) {
        spdlog::info("graceful stop: no new connections, {} active", active_);
        stopping_ = true;
        // The next generation needs the pipe budget more than the connections left here do.
        pipes_.shrink();
        for (const auto& ls : sockets_) {
          // This process's copy only: the master keeps the socket (and its accept queue) for
          // the next generation, or closes it once nothing is queued on an address a reload
          // removed; a copy held here until the last connection ends would keep that
          // address half-alive. The fd is never used again (no accepts, no reconcile).
          engine_->forget(ls.fd);
        }
      }
    } else {
      exit_now_ = true;
    }
  }
}

void Worker::expireTimers() {
  for (auto& list : timer_lists_) {
    while (TimerHook* t = list->first()) {
      if (t->deadline_ms > now_ms_) {
        break;
      }
      TimerList::disarm(*t);
      static_cast<Session*>(t->owner)->onTimeout();
    }
  }
}

void Worker::runDeferred() {
  // Sessions may enqueue themselves again while we run them; take the current batch only.
  std::vector<Session*> batch;
  batch.swap(ready_);
  for (Session* s : batch) {
    s->queued = false;
    s->onReady();
  }
  if (ready_.empty() && !batch.empty()) {
    batch.clear();
    ready_.swap(batch);  // keep the capacity
  }
  acceptPending();
  for (Session* s : dead_) {
    free_sessions_.push_back(s);
  }
  dead_.clear();
}

// The steering counter of this slot is checked against the accept queues of its sockets
// (TCP_INFO on a listener reports the queue length in tcpi_unacked).
void Worker::reconcileSteered() {
  int64_t queued = 0;
  for (const auto& ls : sockets_) {
    tcp_info info{};
    socklen_t len = sizeof(info);
    if (::getsockopt(ls.fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
      queued += info.tcpi_unacked;
    }
  }
  load_.reconcile(queued);
}

int Worker::waitTimeout() const {
  if (!ready_.empty()) {
    return 0;
  }
  int64_t deadline = std::min(next_reconcile_ms_, next_pipe_trim_ms_);
  bool pending = std::find(accept_pending_.begin(), accept_pending_.end(), true) !=
                 accept_pending_.end();
  if (pending && !stopping_ && active_ < cfg_.global.max_connections) {
    int64_t accept_at = std::max(accept_paused_until_, now_ms_);
    if (names_hold_until_ms_ != 0) {
      accept_at = std::max(accept_at, now_ms_ + kNamesPollMs);  // no busy loop meanwhile
    }
    deadline = std::min(deadline, accept_at);
  }
  for (const auto& list : timer_lists_) {
    auto* first = const_cast<TimerList&>(*list).first();
    if (first != nullptr) {
      deadline = std::min(deadline, first->deadline_ms);
    }
  }
  return static_cast<int>(std::clamp<int64_t>(util::subSaturating(deadline, now_ms_), 0, 60000));
}

int Worker::run() {
  ::signal(SIGPIPE, SIG_IGN);  // splice() to a reset socket raises SIGPIPE; we want EPIPE
  setup();
  now_ms_ = monotonicMs();
  if (backends_.namesUnanswered() &&
      std::find(names_hold_.begin(), names_hold_.end(), true) != names_hold_.end()) {
    names_hold_until_ms_ = now_ms_ + kNamesHoldMs;
  }
  next_reconcile_ms_ = now_ms_ + kReconcileMs;
  next_pipe_trim_ms_ = now_ms_ + kPipeTrimMs;
  spdlog::info("worker {} started, {} listening sockets, event engine {}", slot_,
               sockets_.size(), engine::toString(engine_->kind()));
  engine::Event events[kMaxEvents];
  while (!exit_now_ && !(stopping_ && active_ == 0)) {
    int n = engine_->wait(events, kMaxEvents, waitTimeout());
    if (n < 0 && errno != EINTR) {
      spdlog::critical("waiting for events ({}): {}", engine::toString(engine_->kind()),
                       std::strerror(errno));
      return 1;
    }
    now_ms_ = monotonicMs();
    for (int i = 0; i < n; ++i) {
      dispatch(events[i]);
    }
    expireTimers();
    runDeferred();
    if (now_ms_ >= next_reconcile_ms_) {
      next_reconcile_ms_ = now_ms_ + kReconcileMs;
      // A draining worker shares its slot's counter with the next generation's worker,
      // which reconciles it; two reconcilers would correct the same drift twice.
      if (load_.countsSteered() && !stopping_) {
        reconcileSteered();
      }
    }
    if (now_ms_ >= next_pipe_trim_ms_) {
      next_pipe_trim_ms_ = now_ms_ + kPipeTrimMs;
      pipes_.trim();
    }
  }
  // Only a stop that does not wait (TERM: a fast stop, drain_timeout over, or a generation
  // stopped to make room for a reload) gets here with connections open: say which it cuts.
  if (active_ > 0) {
    spdlog::warn("worker {}: closing {} open connection(s)", slot_, active_);
  }
  size_t listed = 0;
  for (auto& s : all_sessions_) {
    if (s->state() != Session::State::Closed && s->state() != Session::State::Idle &&
        listed++ < kListedOnStop) {
      spdlog::warn("[C{}] closed by the stop: {}", s->id(), s->describe());
    }
    s->finish(CloseReason::Shutdown);
  }
  if (listed > kListedOnStop) {
    spdlog::warn("worker {}: {} more connections closed by the stop", slot_,
                 listed - kListedOnStop);
  }
  spdlog::info("worker {} exiting: {} connections accepted in its life", slot_, accepted_);
  return 0;
}

}  // namespace weir::worker
