#include "support/testsrv/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tls/errors.h"
#include "support/testsrv/protocols.h"
#include "support/testsrv/tls_stream.h"

namespace weir::testsrv {

namespace {

// Output beyond this stops reading from the client (an echo client that never reads must
// not grow our memory without bound).
constexpr uint64_t kHighWater = 1 << 20;
// PRNG payload is generated in chunks of this size as the socket drains.
constexpr size_t kStreamChunk = 256 * 1024;
// Reads per connection per wake-up, for fairness between connections.
constexpr int kReadsPerEvent = 8;
// Accepts per wake-up of the listener.
constexpr int kAcceptsPerEvent = 512;
// How long a closing connection waits for the client's EOF before closing anyway.
constexpr auto kLinger = test::seconds(10);
// Pause of the listener after EMFILE/ENFILE, so the loop does not spin on a full table.
constexpr auto kAcceptBackoff = test::milliseconds(100);

void logErrno(const char* what) {
  std::fprintf(stderr, "weir-testsrv: %s: %s\n", what, std::strerror(errno));
}

// How many bytes can be read without reading past a PROXY header, whatever it turns out to
// be, given the `have` bytes of it so far (parse said NeedMore): no header is shorter than
// "PROXY UNKNOWN\r\n" (15 bytes); a v2 header says its length in its first 16; a v1 line ends
// at its first CRLF, which takes two more bytes unless the last one is a CR. A v1 line thus
// takes up to 93 small reads; a test backend can afford that.
size_t proxyBytesWanted(const std::string& have) {
  constexpr size_t kShortest = 15;
  if (!have.empty() && have[0] == '\r') {
    if (have.size() < proxy::kV2FixedLength) {
      return proxy::kV2FixedLength - have.size();
    }
    const size_t length = size_t{static_cast<uint8_t>(have[14])} << 8 |
                          static_cast<uint8_t>(have[15]);
    return proxy::kV2FixedLength + length - have.size();
  }
  if (have.size() < kShortest) {
    return kShortest - have.size();
  }
  return have.back() == '\r' ? 1 : 2;
}

}  // namespace

Server::Server(Options options) : options_(std::move(options)), read_buf_(64 * 1024) {}

bool Server::start() {
  if (!options_.tls_cert.empty()) {
    std::string error;
    tls_ = TlsContext::create(options_, &error);
    if (!tls_) {
      std::fprintf(stderr, "weir-testsrv: %s\n", error.c_str());
      return false;
    }
  }
  epoll_ = test::Fd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) {
    logErrno("epoll_create1");
    return false;
  }
  listener_ = test::Fd(socket(options_.listen.family(),
                              SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener_) {
    logErrno("socket");
    return false;
  }
  const int one = 1;
  setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener_.get(), options_.listen.get(), options_.listen.len) != 0) {
    std::fprintf(stderr, "weir-testsrv: bind %s: %s\n", options_.listen.str().c_str(),
                 std::strerror(errno));
    return false;
  }
  if (listen(listener_.get(), 4096) != 0) {
    logErrno("listen");
    return false;
  }
  const auto local = test::SockAddr::local(listener_.get());
  if (!local) {
    logErrno("getsockname");
    return false;
  }
  name_ = options_.name.empty() ? local->str() : options_.name;

  // SIGTERM/SIGINT arrive as events; SIGPIPE is irrelevant (MSG_NOSIGNAL) but ignored so a
  // stray write to a closed stdout cannot kill us.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signals_ = test::Fd(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals_) {
    logErrno("signalfd");
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerId;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &ev) != 0) {
    logErrno("epoll_ctl(listener)");
    return false;
  }
  ev.data.u64 = kSignalId;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signals_.get(), &ev) != 0) {
    logErrno("epoll_ctl(signalfd)");
    return false;
  }
  std::printf("PORT %u\n", static_cast<unsigned>(local->port()));
  std::fflush(stdout);
  return true;
}

int Server::run() {
  std::vector<epoll_event> events(256);
  while (!stopping_) {
    const int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                             nextTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      logErrno("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kListenerId) {
        acceptAll();
      } else if (id == kSignalId) {
        signalfd_siginfo si;
        while (read(signals_.get(), &si, sizeof si) == sizeof si) {
          stopping_ = true;
        }
      } else if (auto it = conns_.find(id); it != conns_.end()) {
        onConnEvent(*it->second, events[i].events);
      }
    }
    expireTimers();
  }
  return 0;
}

void Server::acceptAll() {
  for (int i = 0; i < kAcceptsPerEvent; ++i) {
    test::SockAddr peer;
    peer.len = sizeof peer.storage;
    test::Fd fd(accept4(listener_.get(), peer.get(), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning on a listener
        // that stays readable.
        logErrno("accept4");
        setListenerPaused(true);
      } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        logErrno("accept4");
      }
      return;
    }
    const int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_id_++;
    auto conn = std::make_unique<Conn>(id, std::move(fd), peer);
    conn->protocol_ = makeProtocol(options_, name_);
    Conn& c = *conn;
    conns_.emplace(id, std::move(conn));
    epoll_event ev{};
    ev.events = 0;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd(), &ev) != 0) {
      logErrno("epoll_ctl(add)");
      conns_.erase(id);
      continue;
    }
    if (options_.proxy_protocol) {
      // The header may be here already; if not, settle() waits for it.
      c.awaiting_proxy_ = true;
      readProxyHeader(c);
    } else {
      open(c);
    }
    settle(c);
  }
}

void Server::open(Conn& conn) {
  if (!tls_) {
    conn.protocol_->onOpen(conn);
    writeTo(conn);
    return;
  }
  conn.tls_.reset(new TlsStream(tls_->get(), conn.fd()));
  if (!conn.tls_->valid()) {
    std::fprintf(stderr, "weir-testsrv: %s\n", tls::takeErrors("SSL_new").c_str());
    conn.state_ = Conn::State::Closed;
    return;
  }
  // The ClientHello may be here already; if not, settle() waits for it.
  continueHandshake(conn);
}

void Server::readProxyHeader(Conn& conn) {
  // Bounded: each pass reads at least one byte, and a header has at most kMaxLength.
  for (;;) {
    const ssize_t n = recv(conn.fd(), read_buf_.data(), proxyBytesWanted(conn.proxy_bytes_), 0);
    if (n == 0) {
      conn.state_ = Conn::State::Closed;  // gone before its header: nothing to answer
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        conn.state_ = Conn::State::Closed;  // ECONNRESET and friends
      }
      return;
    }
    conn.proxy_bytes_.append(read_buf_.data(), static_cast<size_t>(n));
    const std::string& have = conn.proxy_bytes_;
    proxy::Header header;
    size_t length = 0;
    const proxy::Status status = proxy::parse(
        {reinterpret_cast<const uint8_t*>(have.data()), have.size()}, header, length);
    if (status == proxy::Status::NeedMore) {
      continue;
    }
    conn.awaiting_proxy_ = false;
    if (status != proxy::Status::Ok) {
      std::fprintf(stderr, "weir-testsrv: [%s] PROXY header: %s\n", conn.peer().str().c_str(),
                   proxy::toString(status));
      conn.finish();  // FIN, then what the client still sends is discarded until it closes
      return;
    }
    // length == have.size(): proxyBytesWanted never reads past the header.
    if (header.source) {
      std::memcpy(&conn.peer_.storage, header.source->get(), header.source->len());
      conn.peer_.len = header.source->len();
    }
    conn.proxy_ = ProxyInfo{.version = have[0] == 'P' ? 1 : 2, .header = std::move(header)};
    conn.proxy_bytes_.clear();
    open(conn);
    return;
  }
}

void Server::continueHandshake(Conn& conn) {
  std::string error;
  switch (conn.tls_->handshake(&error)) {
    case TlsStream::Step::Again:
      return;
    case TlsStream::Step::Failed:
      std::fprintf(stderr, "weir-testsrv: [%s] %s\n", conn.peer().str().c_str(), error.c_str());
      conn.state_ = Conn::State::Closed;
      return;
    case TlsStream::Step::Done:
      conn.tls_info_ = conn.tls_->info();
      conn.protocol_->onOpen(conn);
      writeTo(conn);
      return;
  }
}

ssize_t Server::receive(Conn& conn, char* buf, size_t len) {
  return conn.tls_ ? conn.tls_->read(buf, len) : recv(conn.fd(), buf, len, 0);
}

ssize_t Server::transmit(Conn& conn, const char* buf, size_t len) {
  return conn.tls_ ? conn.tls_->write(buf, len) : send(conn.fd(), buf, len, MSG_NOSIGNAL);
}

void Server::onConnEvent(Conn& conn, uint32_t events) {
  if (conn.awaiting_proxy_) {
    readProxyHeader(conn);  // which also sees EOF and errors
    settle(conn);
    return;
  }
  if (conn.tls_ && !conn.tls_info_) {
    if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
      conn.state_ = Conn::State::Closed;  // gone before the handshake finished
    } else {
      continueHandshake(conn);
    }
    settle(conn);
    return;
  }
  // A TLS read can stop on a full socket (OpenSSL had something to send first): retry it
  // once the socket drains.
  const bool read_wants_out = conn.tls_ && conn.tls_->wantsWrite() && conn.pending() == 0 &&
                              (events & EPOLLOUT) != 0;
  if (((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 || read_wants_out) &&
      conn.state_ != Conn::State::Closed) {
    readFrom(conn);
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0 && conn.state_ != Conn::State::Closed) {
    writeTo(conn);
  } else if (conn.state_ != Conn::State::Closed && conn.pending() > 0) {
    // Output queued by the protocol while reading: try it now, most sockets have room.
    writeTo(conn);
  }
  // EPOLLHUP means both directions are shut down (or reset): nothing more can be sent.
  if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
    conn.state_ = Conn::State::Closed;
  }
  settle(conn);
}

void Server::readFrom(Conn& conn) {
  for (int i = 0; i < kReadsPerEvent && !conn.peer_eof_; ++i) {
    if (conn.state_ == Conn::State::Open && conn.pending() > kHighWater) {
      return;  // backpressure: settle() removed EPOLLIN; a spurious wake-up ends here
    }
    const ssize_t n = receive(conn, read_buf_.data(), read_buf_.size());
    if (n > 0) {
      if (conn.state_ == Conn::State::Open) {
        conn.protocol_->onData(conn, std::string_view(read_buf_.data(), static_cast<size_t>(n)));
      }
      continue;  // Finishing/Lingering: discard
    }
    if (n == 0) {
      conn.peer_eof_ = true;
      if (conn.state_ == Conn::State::Open) {
        conn.protocol_->onEof(conn);
      }
      return;
    }
    if (errno == EAGAIN || errno == EINTR) {
      return;
    }
    // ECONNRESET and friends: the client is gone.
    conn.state_ = Conn::State::Closed;
    return;
  }
}

void Server::writeTo(Conn& conn) {
  // Bounded: each pass either sends bytes, or returns on EAGAIN/error.
  while (conn.pending() > 0) {
    if (conn.out_off_ == conn.out_.size()) {
      conn.out_.clear();
      conn.out_off_ = 0;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(conn.stream_left_, kStreamChunk));
      conn.out_.resize(n);
      conn.stream_->fill(conn.out_.data(), n);
      conn.stream_left_ -= n;
    }
    const ssize_t n =
        transmit(conn, conn.out_.data() + conn.out_off_, conn.out_.size() - conn.out_off_);
    if (n > 0) {
      conn.out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      break;
    }
    conn.state_ = Conn::State::Closed;  // EPIPE/ECONNRESET: the client is gone
    return;
  }
  // Reclaim the consumed prefix once it dominates the buffer.
  if (conn.out_off_ > 0 && conn.out_off_ * 2 >= conn.out_.size()) {
    conn.out_.erase(0, conn.out_off_);
    conn.out_off_ = 0;
  }
}

void Server::settle(Conn& conn) {
  if (conn.state_ == Conn::State::Finishing && conn.pending() == 0) {
    if (conn.tls_) {
      conn.tls_->sendCloseNotify();
    }
    if (shutdown(conn.fd(), SHUT_WR) != 0 || conn.peer_eof_) {
      conn.state_ = Conn::State::Closed;
    } else {
      conn.state_ = Conn::State::Lingering;
      conn.linger_until_ = test::deadlineIn(kLinger);
      linger_timers_.emplace(conn.linger_until_, conn.id_);
    }
  }
  if (conn.state_ == Conn::State::Lingering && conn.peer_eof_) {
    conn.state_ = Conn::State::Closed;
  }
  if (conn.state_ == Conn::State::Open && conn.peer_eof_ && conn.pending() == 0) {
    // The protocol saw EOF and neither finished nor queued anything: nothing left to do.
    conn.state_ = Conn::State::Closed;
  }
  if (conn.state_ == Conn::State::Closed) {
    close(conn);
    return;
  }
  uint32_t want = 0;
  const bool backpressured = conn.state_ == Conn::State::Open && conn.pending() > kHighWater;
  if (!conn.peer_eof_ && !backpressured) {
    want |= EPOLLIN;
  }
  if (conn.pending() > 0 || (conn.tls_ && conn.tls_->wantsWrite())) {
    want |= EPOLLOUT;
  }
  if (want != conn.events_) {
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = conn.id_;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, conn.fd(), &ev) != 0) {
      logErrno("epoll_ctl(mod)");
      close(conn);
      return;
    }
    conn.events_ = want;
  }
}

void Server::close(Conn& conn) {
  if (conn.state_ == Conn::State::Lingering || conn.linger_until_ != test::Deadline{}) {
    linger_timers_.erase({conn.linger_until_, conn.id_});
  }
  // The fd leaves the epoll set when it is closed (we hold no duplicates of it).
  conns_.erase(conn.id_);
}

void Server::expireTimers() {
  const auto now = test::Clock::now();
  if (listener_paused_ && now >= listener_resume_) {
    setListenerPaused(false);
  }
  // Bounded: every iteration removes one timer.
  while (!linger_timers_.empty() && linger_timers_.begin()->first <= now) {
    const uint64_t id = linger_timers_.begin()->second;
    linger_timers_.erase(linger_timers_.begin());
    if (auto it = conns_.find(id); it != conns_.end()) {
      it->second->linger_until_ = test::Deadline{};
      conns_.erase(it);
    }
  }
}

int Server::nextTimeoutMs() const {
  test::Deadline next = test::deadlineIn(test::seconds(1));
  if (!linger_timers_.empty() && linger_timers_.begin()->first < next) {
    next = linger_timers_.begin()->first;
  }
  if (listener_paused_ && listener_resume_ < next) {
    next = listener_resume_;
  }
  // Round up so a timer is not polled for repeatedly in the millisecond before it is due.
  return test::msLeft(next) + 1;
}

void Server::setListenerPaused(bool paused) {
  epoll_event ev{};
  ev.events = paused ? 0u : static_cast<uint32_t>(EPOLLIN);
  ev.data.u64 = kListenerId;
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &ev);
  listener_paused_ = paused;
  if (paused) {
    listener_resume_ = test::deadlineIn(kAcceptBackoff);
  }
}

}  // namespace weir::testsrv
