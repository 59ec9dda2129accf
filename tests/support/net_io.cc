#include "support/net_io.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

namespace weir::test {

namespace {

bool isResetErrno(int err) {
  return err == ECONNRESET || err == EPIPE || err == ECONNREFUSED || err == ECONNABORTED;
}

IoStatus statusForErrno(int err) { return isResetErrno(err) ? IoStatus::Reset : IoStatus::Error; }

// Waits for `events` on fd. Returns Ok when ready (including POLLERR/POLLHUP: the next
// read/write reports the cause), Timeout at the deadline, Error if poll itself fails.
IoStatus waitFd(int fd, short events, Deadline deadline) {
  for (;;) {
    const int left = msLeft(deadline);
    pollfd p{fd, events, 0};
    const int rc = poll(&p, 1, left);
    if (rc > 0) {
      return IoStatus::Ok;
    }
    if (rc == 0) {
      return IoStatus::Timeout;
    }
    if (errno != EINTR) {
      return IoStatus::Error;
    }
  }
}

Fd openSocket(int family) {
  return Fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

}  // namespace

const char* toString(IoStatus s) {
  switch (s) {
    case IoStatus::Ok: return "ok";
    case IoStatus::Eof: return "eof";
    case IoStatus::Reset: return "reset";
    case IoStatus::Timeout: return "timeout";
    case IoStatus::Error: return "error";
  }
  return "?";
}

std::string errnoText(int err) { return std::strerror(err); }

Fd connectTcp(const SockAddr& addr, Clock::duration timeout, std::string* error) {
  Fd fd = openSocket(addr.family());
  if (!fd) {
    if (error != nullptr) {
      *error = "connect " + addr.str() + ": socket: " + errnoText(errno);
    }
    return Fd();
  }
  return connectTcp(std::move(fd), addr, timeout, error);
}

Fd connectTcp(Fd fd, const SockAddr& addr, Clock::duration timeout, std::string* error) {
  const auto fail = [&](const std::string& why) {
    if (error != nullptr) {
      *error = "connect " + addr.str() + ": " + why;
    }
    return Fd();
  };
  if (connect(fd.get(), addr.get(), addr.len) != 0 && errno != EINPROGRESS) {
    return fail(errnoText(errno));
  }
  const IoStatus w = waitFd(fd.get(), POLLOUT, deadlineIn(timeout));
  if (w == IoStatus::Timeout) {
    return fail("timed out");
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (w != IoStatus::Ok || getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    return fail("poll/getsockopt: " + errnoText(errno));
  }
  if (err != 0) {
    return fail(errnoText(err));
  }
  return fd;
}

std::vector<Fd> connectMany(const SockAddr& addr, size_t count, size_t burst, Deadline deadline,
                            std::string* error, const std::function<void(int fd)>& before_connect) {
  std::vector<Fd> done;
  done.reserve(count);
  const auto fail = [&](const std::string& why) {
    if (error != nullptr) {
      *error = "connection " + std::to_string(done.size() + 1) + "/" + std::to_string(count) +
               " to " + addr.str() + ": " + why;
    }
    return std::move(done);
  };
  burst = std::max<size_t>(burst, 1);
  while (done.size() < count) {
    const size_t n = std::min(burst, count - done.size());
    std::vector<Fd> pending;
    for (size_t i = 0; i < n; ++i) {
      Fd fd = openSocket(addr.family());
      if (!fd) {
        return fail("socket: " + errnoText(errno));
      }
      if (before_connect) {
        before_connect(fd.get());
      }
      if (connect(fd.get(), addr.get(), addr.len) != 0 && errno != EINPROGRESS) {
        return fail(errnoText(errno));
      }
      pending.push_back(std::move(fd));
    }
    // Wait for the whole burst; each completed connect leaves the poll set.
    std::vector<pollfd> pfds;
    while (!pending.empty()) {
      pfds.clear();
      for (const Fd& fd : pending) {
        pfds.push_back({fd.get(), POLLOUT, 0});
      }
      const int rc = poll(pfds.data(), pfds.size(), msLeft(deadline));
      if (rc == 0) {
        return fail("timed out with " + std::to_string(pending.size()) + " connects pending");
      }
      if (rc < 0 && errno != EINTR) {
        return fail("poll: " + errnoText(errno));
      }
      std::vector<Fd> still;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (pfds[i].revents == 0) {
          still.push_back(std::move(pending[i]));
          continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(pending[i].get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          return fail(errnoText(err));
        }
        done.push_back(std::move(pending[i]));
      }
      pending = std::move(still);
    }
  }
  return done;
}

bool claimPort(uint16_t port) {
  // The kernel may hand the same ephemeral port to two binds in a row once the first socket is
  // closed, so two listeners of one test could be given one port. Each port goes out once.
  static std::mutex mu;
  static std::set<uint16_t> claimed;
  const std::lock_guard<std::mutex> lock(mu);
  return port != 0 && claimed.insert(port).second;
}

uint16_t pickFreePortWith(const std::string& host, const std::function<Fd(int family)>& open) {
  const auto addr = SockAddr::from(host, 0);
  if (!addr) {
    return 0;
  }
  for (int attempt = 0; attempt < 64; ++attempt) {
    Fd fd = open(addr->family());
    if (!fd || bind(fd.get(), addr->get(), addr->len) != 0) {
      return 0;
    }
    const auto local = SockAddr::local(fd.get());
    if (!local) {
      return 0;
    }
    if (claimPort(local->port())) {
      return local->port();
    }
  }
  return 0;
}

uint16_t pickFreePort(const std::string& host) {
  return pickFreePortWith(host, [](int family) { return openSocket(family); });
}

bool portIsFree(const std::string& host, uint16_t port) {
  const auto addr = SockAddr::from(host, port);
  if (!addr) {
    return false;
  }
  Fd fd = openSocket(addr->family());
  // No SO_REUSEADDR/SO_REUSEPORT: any listener or bound socket on the port makes this fail.
  return fd && bind(fd.get(), addr->get(), addr->len) == 0;
}

IoStatus writeAll(int fd, const void* data, size_t len, Deadline deadline) {
  const auto* p = static_cast<const char*>(data);
  while (len > 0) {
    if (Clock::now() >= deadline) {
      return IoStatus::Timeout;
    }
    const ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      const IoStatus w = waitFd(fd, POLLOUT, deadline);
      if (w != IoStatus::Ok) {
        return w;
      }
      continue;
    }
    return statusForErrno(errno);
  }
  return IoStatus::Ok;
}

IoStatus readExact(int fd, void* buf, size_t len, Deadline deadline) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    if (Clock::now() >= deadline) {
      return IoStatus::Timeout;
    }
    const ssize_t n = recv(fd, p, len, 0);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return IoStatus::Eof;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN) {
      const IoStatus w = waitFd(fd, POLLIN, deadline);
      if (w != IoStatus::Ok) {
        return w;
      }
      continue;
    }
    return statusForErrno(errno);
  }
  return IoStatus::Ok;
}

namespace {

// readUntilClosed with each chunk passed to `take`.
template <typename Take>
IoStatus readChunksUntilClosed(int fd, Deadline deadline, Take take) {
  char buf[16384];
  for (;;) {
    if (Clock::now() >= deadline) {
      return IoStatus::Timeout;
    }
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      take(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      return IoStatus::Eof;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN) {
      const IoStatus w = waitFd(fd, POLLIN, deadline);
      if (w != IoStatus::Ok) {
        return w;
      }
      continue;
    }
    return statusForErrno(errno);
  }
}

}  // namespace

IoStatus readUntilClosed(int fd, Deadline deadline, uint64_t* discarded) {
  return readChunksUntilClosed(fd, deadline, [discarded](const char*, size_t n) {
    if (discarded != nullptr) {
      *discarded += n;
    }
  });
}

std::string readAllUntilClosed(int fd, Deadline deadline) {
  std::string out;
  (void)readChunksUntilClosed(fd, deadline,
                              [&out](const char* data, size_t n) { out.append(data, n); });
  return out;
}

IoStatus echoRoundTrip(int fd, std::string_view msg, Deadline deadline) {
  const IoStatus w = writeAll(fd, msg, deadline);
  if (w != IoStatus::Ok) {
    return w;
  }
  std::string back(msg.size(), '\0');
  const IoStatus r = readExact(fd, back.data(), back.size(), deadline);
  if (r != IoStatus::Ok) {
    return r;
  }
  return back == msg ? IoStatus::Ok : IoStatus::Error;
}

PumpResult pump(int fd, PrngStream& source, uint64_t send_bytes,
                const std::function<void(const char*, size_t)>& sink, Deadline deadline) {
  PumpResult r;
  std::vector<char> out(256 * 1024);
  std::vector<char> in(256 * 1024);
  size_t out_off = 0;
  size_t out_len = 0;
  bool shut = false;
  bool eof = false;
  Clock::time_point shut_at{};
  Clock::time_point last_data_at = Clock::now();
  const auto finish = [&](IoStatus s, int err, const std::string& what) {
    r.status = s;
    r.err = err;
    r.detail = what + " after sending " + std::to_string(r.sent) + "/" +
               std::to_string(send_bytes) + " bytes and receiving " + std::to_string(r.received);
    if (err != 0) {
      r.detail += " (" + errnoText(err) + ")";
    }
    return r;
  };
  while (!(shut && eof)) {
    if (Clock::now() >= deadline) {
      return finish(IoStatus::Timeout, 0, "timed out");
    }
    // Refill the send window from the stream once the previous chunk is out.
    if (!shut && out_off == out_len) {
      const uint64_t left = send_bytes - r.sent;
      if (left == 0) {
        if (shutdown(fd, SHUT_WR) != 0) {
          return finish(statusForErrno(errno), errno, "shutdown(SHUT_WR) failed");
        }
        shut = true;
        shut_at = Clock::now();
        continue;
      }
      out_len = static_cast<size_t>(std::min<uint64_t>(left, out.size()));
      out_off = 0;
      source.fill(out.data(), out_len);
    }
    pollfd p{fd, static_cast<short>((eof ? 0 : POLLIN) | (shut ? 0 : POLLOUT)), 0};
    const int rc = poll(&p, 1, msLeft(deadline));
    if (rc == 0) {
      return finish(IoStatus::Timeout, 0, "timed out");
    }
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      return finish(IoStatus::Error, errno, "poll failed");
    }
    if (!eof && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = recv(fd, in.data(), in.size(), 0);
      if (n > 0) {
        r.received += static_cast<uint64_t>(n);
        last_data_at = Clock::now();
        sink(in.data(), static_cast<size_t>(n));
      } else if (n == 0) {
        // If we are still sending, go on: a half-closed peer may still read, and a reset,
        // if any, surfaces from send().
        eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return finish(statusForErrno(errno), errno, "recv failed");
      }
    }
    if (!shut && (p.revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t n = send(fd, out.data() + out_off, out_len - out_off, MSG_NOSIGNAL);
      if (n > 0) {
        out_off += static_cast<size_t>(n);
        r.sent += static_cast<uint64_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return finish(statusForErrno(errno), errno, "send failed");
      }
    }
  }
  r.eof_lag = Clock::now() - std::max(shut_at, last_data_at);
  return finish(IoStatus::Ok, 0, "completed");
}

}  // namespace weir::test
