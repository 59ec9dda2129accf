#include "worker/session.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "net/socket.h"
#include "proxy/header.h"
#include "shm/worker_stats.h"
#include "tls/client_hello.h"
#include "tls/errors.h"
#include "tls/server_context.h"
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
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP;  // edge-triggered

bool isResourceErrno(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

// What an SSL call that returned `ret` wants. Empties the thread's error queue (a stale entry
// would make the next SSL_get_error lie) and keeps OpenSSL's reason in `why` on failure.
enum class SslWant { Done, Read, Write, Eof, Error };
SslWant sslWant(SSL* ssl, int ret, std::string& why) {
  const int err = SSL_get_error(ssl, ret);
  switch (err) {
    case SSL_ERROR_NONE:
      return SslWant::Done;
    case SSL_ERROR_WANT_READ:
      return SslWant::Read;
    case SSL_ERROR_WANT_WRITE:
      return SslWant::Write;
    case SSL_ERROR_ZERO_RETURN:
      return SslWant::Eof;  // close_notify, or a bare FIN (SSL_OP_IGNORE_UNEXPECTED_EOF)
    case SSL_ERROR_SYSCALL:
      why = errno != 0 ? std::strerror(errno) : "connection closed";
      ERR_clear_error();
      return SslWant::Error;
    default:
      why = tls::takeErrors("tls");
      return SslWant::Error;
  }
}

// " tls=TLSv1.3 alpn=h2 resumed=1 ktls=0" for an access-log line.
std::string tlsSummary(SSL* ssl, const char* key) {
  if (SSL_is_init_finished(ssl) != 1) {
    return std::string(" ") + key + "=handshaking";
  }
  std::string out = std::string(" ") + key + "=" + SSL_get_version(ssl);
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn_len > 0) {
    out += " alpn=" + std::string(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  out += SSL_session_reused(ssl) == 1 ? " resumed=1" : " resumed=0";
  // kTLS: the kernel encrypts (send) / decrypts (receive) for this socket.
  const int ktls = (BIO_get_ktls_send(SSL_get_wbio(ssl)) ? 1 : 0) +
                   (BIO_get_ktls_recv(SSL_get_rbio(ssl)) ? 2 : 0);
  out += " ktls=" + std::string(ktls == 0 ? "off" : ktls == 1 ? "send" : ktls == 2 ? "recv" : "on");
  return out;
}

// What a v2 PROXY header tells the backend about the client's TLS (weir terminated it).
proxy::SslInfo tlsInfo(SSL* ssl) {
  proxy::SslInfo info;
  info.version = SSL_get_version(ssl);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl)) {
    info.cipher = SSL_CIPHER_get_name(cipher);
  }
  if (X509* cert = SSL_get_certificate(ssl)) {
    if (const char* sig = OBJ_nid2sn(X509_get_signature_nid(cert))) {
      info.sig_alg = sig;
    }
    if (EVP_PKEY* key = X509_get0_pubkey(cert)) {
      const char* type = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
      info.key_alg = std::string(type != nullptr ? type : "?") + std::to_string(EVP_PKEY_get_bits(key));
    }
  }
  // weir asks clients for no certificate: none on this connection or its session.
  X509* peer = SSL_get0_peer_certificate(ssl);
  info.client_cert_conn = peer != nullptr;
  info.client_cert_sess = peer != nullptr;
  info.verify = peer != nullptr ? static_cast<uint32_t>(SSL_get_verify_result(ssl)) : 0;
  return info;
}

}  // namespace

static_assert(kCloseReasons <= shm::kCloseReasonSlots, "shm counts every CloseReason");

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
    case CloseReason::BadHello:
      return "bad-client-hello";
    case CloseReason::HelloTimeout:
      return "client-hello-timeout";
    case CloseReason::TlsFailed:
      return "tls-handshake-failed";
    case CloseReason::TlsTimeout:
      return "tls-handshake-timeout";
    case CloseReason::ProxyUntrusted:
      return "proxy-untrusted";
    case CloseReason::BadProxyHeader:
      return "bad-proxy-header";
    case CloseReason::ProxyTimeout:
      return "proxy-header-timeout";
  }
  return "?";
}

Session::Session(Worker* worker) : worker_(worker) {
  client_.ep = {EndpointKind::Client, this};
  upstream_.ep = {EndpointKind::Upstream, this};
  timer.owner = this;
}

void Session::resetSide(Side& side, EndpointKind kind) {
  side.ssl.reset();  // before the fd it uses
  if (side.fd) {
    worker_->engine().close(side.fd.release());  // io_uring: also ends the fd's poll request
  }
  side.readable = side.writable = side.eof = side.shut_wr = side.hup = side.fin = side.ktls_send =
      false;
  side.ep = {kind, this};
}

void Session::start(net::UniqueFd client, const net::SockAddr& peer,
                    const ListenerRuntime& listener, uint64_t id, int64_t now_ms) {
  id_ = id;
  resetSide(client_, EndpointKind::Client);
  resetSide(upstream_, EndpointKind::Upstream);
  c2u_ = Flow{};
  u2c_ = Flow{};
  client_.fd = std::move(client);
  peer_ = peer;
  via_ = net::SockAddr{};
  local_ = net::SockAddr{};
  proxy_in_ = 0;
  listener_ = &listener;
  pool_ = listener.pool;
  sni_.clear();
  tls_error_.clear();
  proxy_error_ = nullptr;
  proxy_error_is_status_ = false;
  backend_ = -1;
  reserved_ = false;
  attempts_ = 0;
  tried_ = 0;
  last_error_ = 0;
  early_ = false;
  early_header_ = 0;
  early_sent_ = 0;
  started_ms_ = now_ms;
  queued = false;
  state_ = State::Connecting;

  const config::Listener& cfg = *listener.listener;
  if (cfg.accept_proxy_protocol &&
      std::none_of(cfg.trusted.begin(), cfg.trusted.end(),
                   [&](const net::Cidr& c) { return c.contains(peer_); })) {
    // Only a balancer in `trusted` may say who the client is: anyone else could claim any
    // address. Closed before a byte is read.
    worker_->onProxyUntrusted();
    finish(CloseReason::ProxyUntrusted);
    return;
  }
  if (!worker_->engine().watch(client_.fd.get(), kSocketEvents, &client_.ep)) {
    finish(CloseReason::ResourceLimit);
    return;
  }
  if (cfg.accept_proxy_protocol) {
    state_ = State::ProxyHeader;
    listener.proxy_timers->arm(timer, now_ms);
    client_.readable = true;  // the header may be there already: look before waiting
    readProxyHeader();
    return;
  }
  begin();
}

void Session::begin() {
  const ListenerRuntime& listener = *listener_;
  switch (listener.listener->mode) {
    case config::ListenerMode::Tcp:
      connectNext();  // client_ has TCP_NODELAY from its listener
      return;
    case config::ListenerMode::TlsPassthrough:
      state_ = State::Hello;
      listener.first_timers->arm(timer, worker_->now());
      client_.readable = true;  // the hello may be there already: look before waiting
      peekHello();
      return;
    case config::ListenerMode::TlsTerminate:
      state_ = State::Handshake;
      client_.ssl.reset(listener.server->newSsl(client_.fd.get()));
      if (!client_.ssl) {
        finish(CloseReason::ResourceLimit);
        return;
      }
      listener.first_timers->arm(timer, worker_->now());
      serverHandshake();
      return;
  }
}

void Session::readProxyHeader() {
  if (!client_.readable) {
    return;
  }
  const auto buf = worker_->helloScratch();
  const size_t want = std::min(buf.size(), proxy::kMaxLength);
  const ssize_t n = ::recv(client_.fd.get(), buf.data(), want, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      client_.readable = false;
      return;
    }
    last_error_ = errno;
    proxy_error_ = "reset before a complete PROXY header";
    worker_->onBadProxyHeader();
    finish(CloseReason::ClientReset);
    return;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(buf.data());
  proxy::Header header;
  size_t length = 0;
  const proxy::Status status =
      n == 0 ? proxy::Status::NeedMore
             : proxy::parse({bytes, static_cast<size_t>(n)}, header, length);
  if (status == proxy::Status::NeedMore) {
    // As with a ClientHello: the bytes stay in the socket and the next segment raises a new
    // edge; a client that closed before completing the header never will.
    client_.readable = false;
    if (n == 0 || client_.hup) {
      proxy_error_ = n == 0 ? "closed before a PROXY header" : "closed in the middle of its PROXY header";
      worker_->onBadProxyHeader();
      finish(CloseReason::BadProxyHeader);
    }
    return;
  }
  if (status != proxy::Status::Ok) {
    proxy_error_ = proxy::toString(status);
    proxy_error_is_status_ = true;
    worker_->onBadProxyHeader();
    finish(CloseReason::BadProxyHeader);
    return;
  }
  // Take exactly the header out of the socket; what follows is the client's own stream.
  const uint8_t version = bytes[0] == 'P' ? 1 : 2;
  if (::recv(client_.fd.get(), buf.data(), length, MSG_DONTWAIT) != static_cast<ssize_t>(length)) {
    last_error_ = errno;
    finish(CloseReason::ClientReset);
    return;
  }
  proxy_in_ = version;
  if (!header.local && header.source && header.destination) {
    via_ = peer_;
    peer_ = *header.source;
    local_ = *header.destination;
  }
  TimerList::disarm(timer);
  state_ = State::Connecting;
  begin();
}

void Session::peekHello() {
  if (!client_.readable) {
    return;
  }
  const auto buf = worker_->helloScratch();
  const ssize_t n = ::recv(client_.fd.get(), buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      client_.readable = false;
      return;
    }
    last_error_ = errno;
    finish(CloseReason::ClientReset);
    return;
  }
  tls::ClientHello hello;
  const tls::HelloStatus status =
      n == 0 ? tls::HelloStatus::NeedMore
             : tls::parseClientHello({reinterpret_cast<const uint8_t*>(buf.data()),
                                      static_cast<size_t>(n)},
                                     hello);
  if (status == tls::HelloStatus::NeedMore) {
    // Everything the client sent is still in the socket (peeked, not read): the next segment
    // raises a new edge. A client that closed or reset before finishing never will.
    client_.readable = false;
    if (n == 0 || client_.hup) {
      tls_error_ = n == 0 ? "closed before a ClientHello" : "closed in the middle of its ClientHello";
      worker_->onBadHello();
      finish(CloseReason::BadHello);
    }
    return;
  }
  if (status != tls::HelloStatus::Ok) {
    tls_error_ = std::string("ClientHello: ") + tls::toString(status);
    worker_->onBadHello();
    finish(CloseReason::BadHello);
    return;
  }
  TimerList::disarm(timer);
  sni_ = std::move(hello.sni);
  route(sni_);
  state_ = State::Connecting;
  connectNext();
}

void Session::route(const std::string& name) {
  pool_ = listener_->pool;
  if (!name.empty()) {
    if (PoolRuntime* p = worker_->routeFor(*listener_, name)) {
      pool_ = p;
    }
  }
}

// One step of the TLS handshake on `side`: Done, Wait (for the edge OpenSSL asked for) or
// Failed (tls_error_ says why).
Session::Handshake Session::handshakeStep(Side& side) {
  SSL* ssl = side.ssl.get();
  const int ret = SSL_do_handshake(ssl);
  switch (ret == 1 ? SslWant::Done : sslWant(ssl, ret, tls_error_)) {
    case SslWant::Done:
      side.ktls_send = BIO_get_ktls_send(SSL_get_wbio(ssl)) != 0;
      return Handshake::Done;
    case SslWant::Read:
      side.readable = false;
      return Handshake::Wait;
    case SslWant::Write:
      side.writable = false;
      return Handshake::Wait;
    case SslWant::Eof:
    case SslWant::Error:
      break;
  }
  if (tls_error_.empty()) {
    tls_error_ = "closed during the handshake";
  }
  return Handshake::Failed;
}

void Session::serverHandshake() {
  const Handshake step = handshakeStep(client_);
  if (step == Handshake::Wait) {
    return;
  }
  if (step == Handshake::Failed) {
    worker_->onTlsHandshake(false, false);
    finish(CloseReason::TlsFailed);
    return;
  }
  SSL* ssl = client_.ssl.get();
  TimerList::disarm(timer);
  worker_->onTlsHandshake(true, SSL_session_reused(ssl) == 1);
  if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
    sni_ = name;
  }
  route(sni_);
  state_ = State::Connecting;
  connectNext();
}

void Session::connectNext() {
  const config::Pool& pool = *pool_->pool;
  for (;;) {
    if (attempts_ > pool.retries) {
      finish(CloseReason::ConnectFailed);
      return;
    }
    const balance::Pick pick = pool_->balancer->pick({&peer_, tried_, worker_->now()});
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
    const bool from_client = pool.source == config::SourceMode::Client;
    if (pool.tcp_fastopen && !early_) {
      takeEarlyData();
      if (state_ == State::Closed) {
        return;
      }
    }
    std::string_view early;
    if (early_) {
      early = {c2u_.buf.data.get(), c2u_.buf.len};  // from the start again on every attempt
    }
    const std::optional<net::SockAddr> address = backendAddress();
    if (!address) {
      // A named backend's slot emptied between the pick and now (its name stopped returning
      // that address): not the backend's fault, and another slot may do.
      pool_->slots->release(backend_);
      reserved_ = false;
      continue;
    }
    size_t sent = 0;
    auto fd = net::connectNonBlocking(*address, from_client ? &peer_ : nullptr, early, &sent);
    early_sent_ = static_cast<uint32_t>(sent);  // at most CopyBuffer::kSize
    if (!fd) {
      last_error_ = fd.error().code;
      if (isResourceErrno(last_error_)) {
        finish(CloseReason::ResourceLimit);  // our shortage, not the backend's fault
        return;
      }
      if (from_client && (last_error_ == EAFNOSUPPORT || last_error_ == EPERM ||
                          last_error_ == EADDRNOTAVAIL)) {
        // Not the backend's fault: a client of the other family (an IPv6 client, an IPv4
        // backend), no CAP_NET_ADMIN for IP_TRANSPARENT, or a client address that cannot be
        // bound. Another backend (of the client's family) may do; this one stays up.
        pool_->slots->release(backend_);
        reserved_ = false;
        logConnectFailure();
        continue;
      }
      // e.g. EADDRNOTAVAIL, ENETUNREACH: counts against the backend; the next may work.
      pool_->slots->onConnectFailed(backend_, last_error_, worker_->now());
      reserved_ = false;
      logConnectFailure();
      continue;
    }
    resetSide(upstream_, EndpointKind::Upstream);
    upstream_.fd = std::move(*fd);
    if (!worker_->engine().watch(upstream_.fd.get(), kSocketEvents, &upstream_.ep)) {
      finish(CloseReason::ResourceLimit);
      return;
    }
    state_ = State::Connecting;
    pool_->connect_timers->arm(timer, worker_->now());
    return;
  }
}

void Session::takeEarlyData() {
  // A tls-terminate client's bytes are TLS records for OpenSSL, not for the backend: those
  // sessions connect without early data. (A pool with [tls] cannot have tcp_fastopen.)
  if (client_.ssl) {
    return;
  }
  size_t header = 0;
  if (pool_->pool->proxy_protocol != config::ProxyProtocol::Off) {
    if (!encodeProxyHeader()) {
      return;
    }
    header = worker_->headerScratch().size();  // a few hundred bytes at most
  }
  c2u_.buf.data = worker_->takeBuffer();
  char* data = c2u_.buf.data.get();
  const size_t room = CopyBuffer::kSize - header;
  const ssize_t n = ::recv(client_.fd.get(), data + header, room, MSG_DONTWAIT);
  if (n <= 0) {
    // Nothing yet (EAGAIN): a plain connect. An end or error is left for the flow's own read
    // to find once connected, as without TFO.
    client_.readable = !(n < 0 && errno == EAGAIN);
    releaseBuffer(c2u_);
    return;
  }
  if (static_cast<size_t>(n) == room) {
    client_.readable = true;  // more may wait, with its edge already reported
  }
  noteRead(c2u_, client_, splices(client_, upstream_), static_cast<size_t>(n), room);
  std::memcpy(data, worker_->headerScratch().data(), header);
  c2u_.buf.off = 0;
  c2u_.buf.len = static_cast<uint32_t>(header + static_cast<size_t>(n));
  early_ = true;
  early_header_ = static_cast<uint16_t>(header);
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

std::optional<net::SockAddr> Session::backendAddress() const {
  const config::Backend& backend = pool_->pool->backends[backend_];
  if (!backend.named()) {
    return backend.address;
  }
  return pool_->slots->resolved(backend_);
}

std::string Session::backendText() const {
  auto address = backendAddress();
  return address ? address->toString() : config::backendName(pool_->pool->backends[backend_]);
}

void Session::logConnectFailure() const {
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("[C{}] connect to {} failed: {}", id_, backendText(),
                  last_error_ == EPROTO && !tls_error_.empty() ? tls_error_
                                                               : std::strerror(last_error_));
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
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    side.hup = true;
  }
  if ((events & (EPOLLRDHUP | EPOLLERR)) == EPOLLRDHUP) {
    side.fin = true;
  }
  switch (state_) {
    case State::ProxyHeader:
      if (!upstream) {
        readProxyHeader();
      }
      return;
    case State::Hello:
      if (!upstream) {
        peekHello();
      }
      return;
    case State::Handshake:
      if (!upstream) {
        serverHandshake();
      }
      return;
    case State::Connecting:
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
        connected();
      }
      return;  // client bytes wait in the socket until the backend is connected
    case State::UpHandshake:
      if (upstream) {
        upstreamHandshake();
      }
      return;
    case State::Streaming:
      pumpAll();
      return;
    default:
      return;
  }
}

void Session::connected() {
  last_error_ = 0;
  if (early_) {
    if (!skipEarlyData()) {
      return;
    }
  } else if (pool_->pool->proxy_protocol != config::ProxyProtocol::Off && !sendProxyHeader()) {
    return;
  }
  if (pool_->tls != nullptr) {
    upstream_.ssl = pool_->tls->newResumableSsl(upstream_.fd.get(), static_cast<size_t>(backend_),
                                                pool_->pool->backends[backend_].host);
    if (!upstream_.ssl) {
      finish(CloseReason::ResourceLimit);
      return;
    }
    state_ = State::UpHandshake;
    pool_->connect_timers->arm(timer, worker_->now());  // connect_timeout bounds the handshake
    upstreamHandshake();
    return;
  }
  startStreaming();
}

bool Session::skipEarlyData() {
  CopyBuffer& buf = c2u_.buf;
  if (early_sent_ < early_header_) {
    // No cookie yet (nothing rode in the SYN): the header goes now, as without TFO, and in one
    // send for the same reason (an empty send buffer).
    const size_t rest = early_header_ - early_sent_;
    const ssize_t n = ::send(upstream_.fd.get(), buf.data.get() + early_sent_, rest,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(rest)) {
      connectFailed(n < 0 ? errno : EIO);  // the held bytes stay for the next attempt
      return false;
    }
    early_sent_ = early_header_;
  }
  // The client's bytes in the SYN were delivered as far as this flow is concerned: the kernel
  // owns them now (and resends them if the SYN-ACK did not acknowledge them).
  c2u_.bytes += early_sent_ - early_header_;
  buf.off = early_sent_;
  buf.len -= early_sent_;
  if (buf.len == 0) {
    releaseBuffer(c2u_);  // the SYN carried it all
  }
  early_ = false;
  return true;
}

bool Session::encodeProxyHeader() {
  if (local_.family() == AF_UNSPEC) {
    // The address the client connected to (a wildcard listener's real one, or a VIP).
    *local_.lenPtr() = local_.capacity();
    if (::getsockname(client_.fd.get(), local_.get(), local_.lenPtr()) < 0) {
      last_error_ = errno;
      finish(CloseReason::ClientReset);
      return false;
    }
  }
  proxy::Header header;
  header.source = peer_;
  header.destination = local_;
  std::string& out = worker_->headerScratch();
  out.clear();
  if (pool_->pool->proxy_protocol == config::ProxyProtocol::V1) {
    proxy::encodeV1(header, out);
  } else {
    header.authority = sni_;
    if (SSL* ssl = client_.ssl.get()) {
      const unsigned char* alpn = nullptr;
      unsigned alpn_len = 0;
      SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
      header.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
      header.ssl = tlsInfo(ssl);
    }
    proxy::encodeV2(header, true, out);
  }
  return true;
}

bool Session::sendProxyHeader() {
  if (!encodeProxyHeader()) {
    return false;
  }
  const std::string& out = worker_->headerScratch();
  // The socket has just connected: its send buffer (at least 4.5 KiB) is empty and the header
  // is at most a few hundred bytes, so one send takes it all. Anything else is a failure.
  const ssize_t n = ::send(upstream_.fd.get(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(out.size())) {
    connectFailed(n < 0 ? errno : EIO);
    return false;
  }
  return true;
}

void Session::upstreamHandshake() {
  const Handshake step = handshakeStep(upstream_);
  if (step == Handshake::Failed) {
    // A backend we cannot speak TLS with counts against it like a refused connect.
    connectFailed(EPROTO);
  } else if (step == Handshake::Done) {
    startStreaming();
  }
}

void Session::startStreaming() {
  state_ = State::Streaming;
  pool_->slots->onConnectOk(backend_);
  pool_->idle_timers->arm(timer, worker_->now());
  pumpAll();
}

void Session::onTimeout() {
  switch (state_) {
    case State::ProxyHeader:
      proxy_error_ = "no complete PROXY header in time";
      worker_->onBadProxyHeader();
      finish(CloseReason::ProxyTimeout);
      return;
    case State::Hello:
      tls_error_ = "no complete ClientHello in time";
      worker_->onBadHello();
      finish(CloseReason::HelloTimeout);
      return;
    case State::Handshake:
      worker_->onTlsHandshake(false, false);
      finish(CloseReason::TlsTimeout);
      return;
    case State::Connecting:
      connectFailed(ETIMEDOUT);
      return;
    case State::UpHandshake:
      tls_error_ = "tls handshake timed out";
      connectFailed(ETIMEDOUT);
      return;
    case State::Streaming:
      finish(CloseReason::IdleTimeout);
      return;
    default:
      return;
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
  Pump up = move(c2u_, client_, upstream_, CloseReason::ClientReset, CloseReason::UpstreamReset);
  if (up == Pump::Failed) {
    return;
  }
  Pump down = move(u2c_, upstream_, client_, CloseReason::UpstreamReset, CloseReason::ClientReset);
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

bool Session::splices(const Side& from, const Side& to) {
  // Reading a TLS socket always goes through SSL_read (kTLS or not), which handles records
  // that are not data; writing into a kTLS socket may splice (the kernel encrypts).
  return !from.ssl && (!to.ssl || to.ktls_send);
}

Session::Pump Session::move(Flow& flow, Side& from, Side& to, CloseReason from_err,
                            CloseReason to_err) {
  // A flow that could splice starts by copying through a pooled buffer, as HAProxy's
  // splice-auto does: a small message costs one recv and one send, against splice in, splice
  // out and the splice that says EAGAIN, and needs no pipe. A read that fills the buffer makes
  // the flow a splicing one, and copy() hands it over to pump() for good once the buffer is
  // out (the destination may have blocked with part of it still to send).
  if (flow.splicing && flow.buf.len == 0) {
    return pump(flow, from, to, from_err, to_err);
  }
  return copy(flow, from, to, from_err, to_err);
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
      if (!to.shut_wr && (!other_done || to.ssl)) {
        // Half-close: pass the FIN on only now that every byte before it was delivered (a
        // kTLS destination gets its close_notify first).
        passFin(to);
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

void Session::releaseBuffer(Flow& flow) {
  if (flow.buf.data) {
    worker_->giveBuffer(std::move(flow.buf.data));
  }
  flow.buf = CopyBuffer{};
}

void Session::passFin(Side& to) {
  if (to.ssl) {
    // close_notify, so the peer can tell an end from a truncation. Best effort: if the socket
    // is full it is dropped, and the FIN below still ends the stream.
    if (SSL_shutdown(to.ssl.get()) < 0) {
      ERR_clear_error();
    }
  }
  (void)::shutdown(to.fd.get(), SHUT_WR);
  to.shut_wr = true;
}

// The flow of a session with a TLS end: bytes go source -> buffer -> destination, through
// SSL_read/SSL_write on the TLS end and recv/send on a plain one. Same shape as pump():
// deliver what the buffer holds before reading more, so memory stays one buffer per flow.
Session::Pump Session::copy(Flow& flow, Side& from, Side& to, CloseReason from_err,
                            CloseReason to_err) {
  size_t budget = kBudget;
  for (;;) {
    while (flow.buf.len > 0) {
      if (!to.writable) {
        return Pump::Blocked;
      }
      const char* data = flow.buf.data.get() + flow.buf.off;
      ssize_t n;
      if (to.ssl) {
        size_t written = 0;
        const int ret = SSL_write_ex(to.ssl.get(), data, flow.buf.len, &written);
        if (ret == 1) {
          n = static_cast<ssize_t>(written);
        } else {
          switch (sslWant(to.ssl.get(), ret, tls_error_)) {
            case SslWant::Write:
              to.writable = false;
              return Pump::Blocked;
            case SslWant::Read:
              to.readable = false;  // renegotiation is off; a TLS 1.3 key update at most
              return Pump::Blocked;
            default:
              last_error_ = EPIPE;
              finish(to_err);
              return Pump::Failed;
          }
        }
      } else {
        n = ::send(to.fd.get(), data, flow.buf.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN) {
            to.writable = false;
            return Pump::Blocked;
          }
          if (errno == EINTR) {
            continue;
          }
          last_error_ = errno;
          finish(to_err);
          return Pump::Failed;
        }
      }
      flow.buf.off += static_cast<uint32_t>(n);
      flow.buf.len -= static_cast<uint32_t>(n);
      flow.bytes += static_cast<uint64_t>(n);
      moved_ = true;
    }
    if (flow.splicing) {
      releaseBuffer(flow);  // delivered: from here on the bytes go through a pipe
      return pump(flow, from, to, from_err, to_err);
    }
    if (from.eof) {
      releaseBuffer(flow);
      // As in pump(), a FIN that close() is about to send needs no shutdown(); a TLS peer
      // still gets its close_notify, or it could not tell the end from a cut.
      const bool other_done = to.eof && from.shut_wr;
      if (!to.shut_wr && (!other_done || to.ssl)) {
        passFin(to);
      }
      return Pump::Done;
    }
    // OpenSSL may hold decrypted bytes the socket no longer shows.
    if (!from.readable && !(from.ssl && SSL_has_pending(from.ssl.get()))) {
      releaseBuffer(flow);
      return Pump::Blocked;
    }
    if (budget == 0) {
      return Pump::Yield;
    }
    if (!flow.buf.data) {
      flow.buf.data = worker_->takeBuffer();
    }
    flow.buf.off = 0;
    ssize_t n;
    if (from.ssl) {
      size_t got = 0;
      const int ret = SSL_read_ex(from.ssl.get(), flow.buf.data.get(), CopyBuffer::kSize, &got);
      if (ret == 1) {
        // SSL_read returns one record at a time. Records read ahead into OpenSSL's buffer
        // (small HTTP/2 frames often come several to a segment) join this one, so they leave
        // in one send() instead of one each.
        while (got < CopyBuffer::kSize && SSL_has_pending(from.ssl.get()) == 1) {
          size_t more = 0;
          if (SSL_read_ex(from.ssl.get(), flow.buf.data.get() + got, CopyBuffer::kSize - got,
                          &more) != 1) {
            // A partial record (WANT_READ: the socket is empty), or an end or error that the
            // next SSL_read reports again: deliver what we have first.
            if (SSL_get_error(from.ssl.get(), 0) == SSL_ERROR_WANT_READ) {
              from.readable = false;
            }
            ERR_clear_error();
            break;
          }
          got += more;
        }
        n = static_cast<ssize_t>(got);
      } else {
        switch (sslWant(from.ssl.get(), ret, tls_error_)) {
          case SslWant::Read:
            // The socket is empty; with read-ahead OpenSSL may still hold part of a record
            // (SSL_has_pending), which only more bytes complete: wait for the next edge.
            from.readable = false;
            releaseBuffer(flow);
            return Pump::Blocked;
          case SslWant::Write:
            from.writable = false;  // a TLS 1.3 key update to answer
            releaseBuffer(flow);
            return Pump::Blocked;
          case SslWant::Eof:
            from.eof = true;
            continue;
          default:
            last_error_ = EPROTO;
            finish(from_err);
            return Pump::Failed;
        }
      }
    } else {
      n = ::recv(from.fd.get(), flow.buf.data.get(), CopyBuffer::kSize, MSG_DONTWAIT);
      if (n == 0) {
        from.eof = true;
        continue;
      }
      if (n < 0) {
        if (errno == EAGAIN) {
          from.readable = false;
        } else if (errno != EINTR) {
          last_error_ = errno;
          finish(from_err);
          return Pump::Failed;
        }
        continue;
      }
      noteRead(flow, from, splices(from, to), static_cast<size_t>(n), CopyBuffer::kSize);
    }
    flow.buf.len = static_cast<uint32_t>(n);
    budget -= std::min(budget, static_cast<size_t>(n));
  }
}

void Session::noteRead(Flow& flow, Side& from, bool may_splice, size_t n, size_t asked) {
  if (n == asked) {
    if (may_splice) {
      flow.splicing = true;  // more than small messages: splice once this buffer is out
    }
    return;
  }
  if (from.fin) {
    // The peer's FIN had arrived before this read, so every byte it sent was queued ahead of
    // it: a short read reached the end, and the recv() that would only return 0 is saved (a
    // backend answering and closing costs one read, not two).
    from.eof = true;
  } else if (!from.hup) {
    // A short read emptied the socket: bytes that come later raise a new edge, so the read
    // that would only say EAGAIN is saved. (After HUP/ERR keep reading: the error or EOF is
    // there and no edge will come for it.)
    from.readable = false;
  }
}

std::string Session::describe() const {
  const std::string backend =
      backend_ >= 0 && state_ == State::Streaming ? backendText() : "(none yet)";
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
    std::string backend = backend_ >= 0 && connected ? backendText() : "-";
    std::string tls;
    if (!sni_.empty()) {
      tls += " sni=" + sni_;
    }
    if (client_.ssl) {
      tls += tlsSummary(client_.ssl.get(), "tls");
    }
    if (upstream_.ssl) {
      tls += tlsSummary(upstream_.ssl.get(), "upstream_tls");
    }
    if (!tls_error_.empty()) {
      tls += " tls_error=\"" + tls_error_ + "\"";
    }
    if (proxy_in_ != 0) {
      tls += " proxy=v" + std::to_string(proxy_in_);
      if (via_.family() != AF_UNSPEC) {
        tls += " via=" + via_.toString();
      }
    }
    if (proxy_error_ != nullptr) {
      tls += " proxy_error=\"";
      tls += proxy_error_is_status_ ? "PROXY header: " : "";
      tls += proxy_error_;
      tls += '"';
    }
    log->info("conn={}-{} listener={} client={} backend={} up={} down={} duration={}ms "
              "reason={}{}{}{}",
              worker_->slot(), id_, cfg.listeners[listener_->index].name, peer_.toString(),
              backend, c2u_.bytes, u2c_.bytes, worker_->now() - started_ms_, toString(reason),
              last_error_ ? " error=" : "", last_error_ ? std::strerror(last_error_) : "", tls);
  }
  endReservation(connected);
  releasePipe(c2u_);
  releasePipe(u2c_);
  releaseBuffer(c2u_);
  releaseBuffer(u2c_);
  resetSide(client_, EndpointKind::Client);
  resetSide(upstream_, EndpointKind::Upstream);
  worker_->onSessionEnd(listener_ != nullptr ? listener_->index : shm::kMaxListenerSlots, reason,
                        c2u_.bytes, u2c_.bytes);
  worker_->onClosed(this);
}

}  // namespace weir::worker
