#include "health/probe.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "health/reply.h"
#include "net/socket.h"
#include "tls/errors.h"
#include "util/time.h"

namespace weir::health {
namespace {

std::string errnoText(const char* step, int err) {
  return std::string(step) + ": " + std::strerror(err);
}

}  // namespace

ProbeSpec makeSpec(const config::HealthCheck& check, const net::SockAddr& backend,
                   const tls::ClientContext* tls, std::string_view name) {
  ProbeSpec spec;
  spec.kind = check.kind;
  spec.address = backend;
  if (check.port != 0) {
    spec.address.setPort(check.port);
  }
  spec.timeout_ms = check.timeout.count();
  if (check.kind == config::HealthKind::SendExpect) {
    spec.request = check.send;
    spec.expect = check.expect;
  } else if (check.kind == config::HealthKind::Http) {
    std::string host = check.host;
    if (host.empty()) {
      host = name.empty() ? spec.address.toString()
                          : std::string(name) + ":" + std::to_string(spec.address.port());
    }
    spec.request = httpRequest(check.path, host);
    spec.status_min = check.status_min;
    spec.status_max = check.status_max;
  } else if (check.kind == config::HealthKind::Tls) {
    spec.tls = tls;
    spec.server_name = name;
  }
  return spec;
}

std::optional<Outcome> Probe::start(const ProbeSpec& spec, int64_t now_ms) {
  spec_ = &spec;
  step_ = Step::Connecting;
  sent_ = 0;
  reply_.clear();
  reply_.reserve(kMaxReply);
  deadline_ms_ = util::addSaturating(now_ms, spec.timeout_ms);
  auto fd = net::connectNonBlocking(spec.address);
  if (!fd) {
    return Outcome{false, errnoText("connect", fd.error().code)};
  }
  fd_ = std::move(*fd);
  return std::nullopt;
}

uint32_t Probe::events() const {
  switch (step_) {
    case Step::Reading:
      return EPOLLIN;
    case Step::Handshaking:
      return tls_wants_;
    default:
      return EPOLLOUT;
  }
}

std::optional<Outcome> Probe::onReady(uint32_t events) {
  if (!fd_) {
    return std::nullopt;  // stale event: decided earlier in this batch
  }
  switch (step_) {
    case Step::Connecting:
      return afterConnect();
    case Step::Sending:
      return sendMore();
    case Step::Reading:
      (void)events;  // errors and hang-ups surface through read()
      return readMore();
    case Step::Handshaking:
      return handshake();  // likewise, through SSL_connect
  }
  return std::nullopt;
}

std::optional<Outcome> Probe::afterConnect() {
  if (int err = net::socketError(fd_.get()); err != 0) {
    return finish(false, errnoText("connect", err));
  }
  if (const std::string& pre = spec_->preamble; !pre.empty()) {
    // A few bytes into a socket that has just connected: its send buffer is empty, so one
    // send takes them all (a short send would be a broken socket, not a slow one).
    const ssize_t n = ::send(fd_.get(), pre.data(), pre.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(pre.size())) {
      return finish(false, errnoText("send PROXY header", n < 0 ? errno : EIO));
    }
  }
  if (spec_->kind == config::HealthKind::Tcp) {
    return finish(true, {});
  }
  if (spec_->kind == config::HealthKind::Tls) {
    if (spec_->tls == nullptr) {
      return finish(false, "tls: no client context for this pool (see the checker's log)");
    }
    tls::clearErrors();  // SSL_get_error reads the queue: nothing stale may be in it
    ssl_ = spec_->tls->newSsl(fd_.get(), spec_->server_name);
    if (!ssl_) {
      return finish(false, tls::takeErrors("tls: cannot create a connection"));
    }
    step_ = Step::Handshaking;
    return handshake();
  }
  step_ = Step::Sending;
  return sendMore();
}

std::optional<Outcome> Probe::sendMore() {
  const std::string& request = spec_->request;
  // Bounded: each successful send() moves at least one byte of a request of at most a few KiB.
  while (sent_ < request.size()) {
    ssize_t n = ::send(fd_.get(), request.data() + sent_, request.size() - sent_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return std::nullopt;  // socket buffer full: wait for EPOLLOUT
    }
    if (n < 0) {
      return finish(false, errnoText("send", errno));
    }
    sent_ += static_cast<size_t>(n);
  }
  step_ = Step::Reading;
  return readMore();
}

std::optional<Outcome> Probe::readMore() {
  char buf[1024];
  bool closed = false;
  // Bounded: stops at EAGAIN, end of stream, or kMaxReply bytes.
  while (!closed && reply_.size() < kMaxReply) {
    size_t room = std::min(sizeof(buf), kMaxReply - reply_.size());
    ssize_t n = ::recv(fd_.get(), buf, room, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (n < 0) {
      return finish(false, errnoText("read", errno));
    }
    if (n == 0) {
      closed = true;
    }
    reply_.append(buf, static_cast<size_t>(n));
  }
  bool full = reply_.size() >= kMaxReply;
  Judgement j = spec_->kind == config::HealthKind::Http
                    ? judgeHttp(reply_, spec_->status_min, spec_->status_max, closed, full)
                    : judgeExpect(reply_, spec_->expect, closed, full);
  if (j.verdict == Verdict::NeedMore) {
    return std::nullopt;
  }
  return finish(j.verdict == Verdict::Pass, std::move(j.error));
}

// Every handshake is a full one (newSsl, no resumption), so each check also sees the
// backend's certificate chain as a new client would. The check passes when our side of the
// handshake is done; in TLS 1.3 that is before the backend has judged a client certificate,
// so a backend that refuses ours still passes (traffic to it will not).
std::optional<Outcome> Probe::handshake() {
  const int r = SSL_connect(ssl_.get());
  if (r == 1) {
    // close_notify, best effort: one non-blocking try, so that the backend logs an orderly
    // close rather than an EOF; whether it left does not change the outcome.
    (void)SSL_shutdown(ssl_.get());
    tls::clearErrors();
    return finish(true, {});
  }
  const int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_WANT_READ) {
    tls_wants_ = EPOLLIN;
    return std::nullopt;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    tls_wants_ = EPOLLOUT;
    return std::nullopt;
  }
  return finish(false, tls::failureText(ssl_.get(), err));
}

Outcome Probe::onTimeout() {
  std::string error =
      "timeout after " + config::formatDuration(config::Duration(spec_->timeout_ms));
  if (step_ == Step::Connecting) {
    error += " connecting";
  } else if (spec_->kind == config::HealthKind::SendExpect) {
    error += " waiting for " + quoteBytes(spec_->expect) + ", got " + quoteBytes(reply_);
  } else if (spec_->kind == config::HealthKind::Http) {
    error += " waiting for the status line";
  } else if (spec_->kind == config::HealthKind::Tls) {
    error += " during the TLS handshake";
  }
  return finish(false, std::move(error));
}

Outcome Probe::finish(bool ok, std::string error) {
  ssl_.reset();  // no close_notify here (see handshake); the SSL must go before its socket
  fd_.reset();   // closing also removes it from the epoll set
  return Outcome{ok, std::move(error)};
}

}  // namespace weir::health
