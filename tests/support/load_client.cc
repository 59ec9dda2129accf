#include "support/load_client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "support/fd.h"

namespace weir::test {
namespace {

constexpr size_t kMaxSamples = 10;

enum class Outcome { Completed, ConnectError, Reset, Incomplete, Timeout, Other };

struct Conn {
  Fd fd;
  uint64_t id = 0;
  bool connected = false;
  bool sent = false;
  std::string message;
  std::string received;
  Deadline deadline{};
};

std::string messageFor(uint64_t id, size_t bytes) {
  std::string m = "conn " + std::to_string(id) + " ";
  while (m.size() < bytes) {
    m += static_cast<char>('a' + (m.size() + id) % 26);
  }
  m.resize(bytes);
  return m;
}

}  // namespace

std::string LoadStats::summary() const {
  std::string s = "completed " + std::to_string(completed) + ", connect errors " +
                  std::to_string(connect_errors) + ", resets " + std::to_string(resets) +
                  ", incomplete " + std::to_string(incomplete) + ", timeouts " +
                  std::to_string(timeouts) + ", other " + std::to_string(other_errors);
  for (const auto& sample : samples) {
    s += "\n  " + sample;
  }
  return s;
}

LoadClient::LoadClient(Options options) : options_(std::move(options)) {}

LoadClient::~LoadClient() {
  if (thread_.joinable()) {
    stopping_ = true;
    thread_.join();
  }
}

void LoadClient::start() { thread_ = std::thread([this] { run(); }); }

LoadStats LoadClient::stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
  return snapshot();
}

LoadStats LoadClient::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void LoadClient::run() {
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  std::vector<std::unique_ptr<Conn>> slots(options_.concurrency);
  uint64_t next_id = 0;
  uint64_t started = 0;
  const Deadline began = Clock::now();

  auto finish = [&](size_t i, Outcome outcome, const std::string& why) {
    Conn& c = *slots[i];
    std::lock_guard<std::mutex> lock(mutex_);
    switch (outcome) {
      case Outcome::Completed: ++stats_.completed; break;
      case Outcome::ConnectError: ++stats_.connect_errors; break;
      case Outcome::Reset: ++stats_.resets; break;
      case Outcome::Incomplete: ++stats_.incomplete; break;
      case Outcome::Timeout: ++stats_.timeouts; break;
      case Outcome::Other: ++stats_.other_errors; break;
    }
    if (outcome != Outcome::Completed && stats_.samples.size() < kMaxSamples) {
      stats_.samples.push_back("connection " + std::to_string(c.id) + ": " + why);
    }
    slots[i].reset();  // closes the fd, which also removes it from epoll
  };
  auto errnoOutcome = [](int err, bool connected) {
    if (!connected) {
      return Outcome::ConnectError;
    }
    return err == ECONNRESET || err == EPIPE ? Outcome::Reset : Outcome::Other;
  };

  auto open = [&](size_t i) {
    auto c = std::make_unique<Conn>();
    c->id = next_id++;
    c->message = messageFor(c->id, options_.message_bytes);
    c->deadline = Clock::now() + options_.timeout;
    c->fd = Fd(socket(options_.target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    slots[i] = std::move(c);
    Conn& conn = *slots[i];
    if (!conn.fd) {
      finish(i, Outcome::Other, std::string("socket: ") + std::strerror(errno));
      return;
    }
    if (options_.source.len != 0) {
      const int on = 1;
      (void)setsockopt(conn.fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
      if (bind(conn.fd.get(), options_.source.get(), options_.source.len) != 0) {
        finish(i, Outcome::Other, std::string("bind: ") + std::strerror(errno));
        return;
      }
    }
    if (connect(conn.fd.get(), options_.target.get(), options_.target.len) != 0 &&
        errno != EINPROGRESS) {
      finish(i, Outcome::ConnectError, std::string("connect: ") + std::strerror(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u64 = i;
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, conn.fd.get(), &ev);
  };

  auto progress = [&](size_t i, uint32_t ready) {
    Conn& c = *slots[i];
    if (!c.connected) {
      if ((ready & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
        return;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        finish(i, Outcome::ConnectError, std::string("connect: ") + std::strerror(err));
        return;
      }
      c.connected = true;
    }
    if (!c.sent) {
      ssize_t n = send(c.fd.get(), c.message.data(), c.message.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == ENOTCONN) {
          return;
        }
        finish(i, errnoOutcome(errno, true), std::string("send: ") + std::strerror(errno));
        return;
      }
      if (static_cast<size_t>(n) != c.message.size()) {
        finish(i, Outcome::Other, "short send");  // 100 bytes always fit a fresh socket
        return;
      }
      c.sent = true;
      shutdown(c.fd.get(), SHUT_WR);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = i;
      epoll_ctl(ep.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
    }
    for (int reads = 0; reads < 16; ++reads) {
      char buf[4096];
      ssize_t n = recv(c.fd.get(), buf, sizeof(buf), 0);
      if (n > 0) {
        c.received.append(buf, static_cast<size_t>(n));
        if (c.received.size() > c.message.size()) {
          finish(i, Outcome::Incomplete, "more bytes than sent");
          return;
        }
        continue;
      }
      if (n == 0) {
        if (c.received == c.message) {
          finish(i, Outcome::Completed, "");
        } else {
          finish(i, Outcome::Incomplete,
                 "EOF after " + std::to_string(c.received.size()) + " of " +
                     std::to_string(c.message.size()) + " bytes" +
                     (c.received.size() == c.message.size() ? " (content differs)" : ""));
        }
        return;
      }
      if (errno == EAGAIN || errno == EINTR) {
        return;
      }
      finish(i, errnoOutcome(errno, true), std::string("recv: ") + std::strerror(errno));
      return;
    }
  };

  epoll_event events[256];
  for (;;) {
    const Deadline now = Clock::now();
    const bool stopping = stopping_.load();
    // Pacing: connection k may start at began + k / max_rate.
    const auto elapsed_us =
        std::chrono::duration_cast<std::chrono::microseconds>(now - began).count();
    const uint64_t allowed = options_.max_rate * static_cast<uint64_t>(elapsed_us) / 1000000 + 1;
    size_t in_flight = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      if (!slots[i] && !stopping && started < allowed) {
        ++started;
        open(i);
      }
      if (slots[i] && now > slots[i]->deadline) {
        finish(i, Outcome::Timeout,
               slots[i]->connected ? "no complete echo in time" : "connect timed out");
      }
      in_flight += slots[i] ? 1 : 0;
    }
    if (stopping && in_flight == 0) {
      return;
    }
    const int n = epoll_wait(ep.get(), events, 256, 2);
    for (int k = 0; k < n; ++k) {
      const size_t i = events[k].data.u64;
      if (i < slots.size() && slots[i]) {
        progress(i, events[k].events);
      }
    }
  }
}

}  // namespace weir::test
