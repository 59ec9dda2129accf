#include "health/probe.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "health/reply.h"
#include "net/socket.h"
#include "util/time.h"

namespace weir::health {
namespace {

std::string errnoText(const char* step, int err) {
  return std::string(step) + ": " + std::strerror(err);
}

}  // namespace

ProbeSpec makeSpec(const config::HealthCheck& check, const net::SockAddr& backend) {
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
    std::string host = check.host.empty() ? spec.address.toString() : check.host;
    spec.request = httpRequest(check.path, host);
    spec.status_min = check.status_min;
    spec.status_max = check.status_max;
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
  return step_ == Step::Reading ? EPOLLIN : EPOLLOUT;
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
  }
  return std::nullopt;
}

std::optional<Outcome> Probe::afterConnect() {
  if (int err = net::socketError(fd_.get()); err != 0) {
    return finish(false, errnoText("connect", err));
  }
  if (spec_->kind == config::HealthKind::Tcp) {
    return finish(true, {});
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

Outcome Probe::onTimeout() {
  std::string error =
      "timeout after " + config::formatDuration(config::Duration(spec_->timeout_ms));
  if (step_ == Step::Connecting) {
    error += " connecting";
  } else if (spec_->kind == config::HealthKind::SendExpect) {
    error += " waiting for " + quoteBytes(spec_->expect) + ", got " + quoteBytes(reply_);
  } else if (spec_->kind == config::HealthKind::Http) {
    error += " waiting for the status line";
  }
  return finish(false, std::move(error));
}

Outcome Probe::finish(bool ok, std::string error) {
  fd_.reset();  // closing also removes it from the epoll set
  return Outcome{ok, std::move(error)};
}

}  // namespace weir::health
