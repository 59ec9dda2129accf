#include "control/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/unique_fd.h"

namespace weir::control {
namespace {

int64_t nowMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits up to the deadline for `events` on fd. False on timeout (errno ETIMEDOUT).
bool waitFor(int fd, short events, int64_t deadline) {
  for (;;) {
    const int64_t left = deadline - nowMs();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (n > 0) {
      return true;  // ready, or an error the next call reports
    }
    if (n < 0 && errno != EINTR) {
      return false;
    }
  }
}

}  // namespace

util::Result<std::string> exchange(const std::string& path, std::string_view request,
                                   int64_t timeout_ms) {
  const int64_t deadline = nowMs() + timeout_ms;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sun.sun_path)) {
    return util::SysError{ENAMETOOLONG, path};
  }
  std::memcpy(sun.sun_path, path.data(), path.size());
  net::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return util::lastError("socket");
  }
  // A unix socket connects at once, or says EAGAIN while the listener's backlog is full (the
  // master has as many connections as it takes): try again until the deadline.
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof(sun)) != 0) {
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN) {
      return util::lastError(path);
    }
    if (nowMs() >= deadline) {
      return util::SysError{ETIMEDOUT, path + ": the master takes no more connections"};
    }
    const timespec pause{0, 10 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n =
        ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
    } else if (errno == EAGAIN) {
      if (!waitFor(fd.get(), POLLOUT, deadline)) {
        return util::lastError(path + ": sending the request");
      }
    } else if (errno != EINTR) {
      return util::lastError(path + ": sending the request");
    }
  }
  std::string reply;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) {
      return reply;
    }
    if (n > 0) {
      if (reply.size() + static_cast<size_t>(n) > kMaxReply) {
        return util::SysError{EMSGSIZE, path + ": reply larger than " +
                                            std::to_string(kMaxReply) + " bytes"};
      }
      reply.append(buf, static_cast<size_t>(n));
    } else if (errno == EAGAIN) {
      if (!waitFor(fd.get(), POLLIN, deadline)) {
        return util::lastError(path + ": waiting for the reply");
      }
    } else if (errno == ECONNRESET && !reply.empty()) {
      // The master closed after its whole reply while bytes of ours were still unread in
      // its socket (a request it refused for its length): on a unix socket that is a reset.
      return reply;
    } else if (errno != EINTR) {
      return util::lastError(path + ": reading the reply");
    }
  }
}

}  // namespace weir::control
