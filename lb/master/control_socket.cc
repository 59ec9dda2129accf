#include "master/control_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "worker/worker.h"

namespace weir::master {
namespace {

constexpr int kBacklog = 64;
constexpr int kAcceptsPerPoll = 16;

sockaddr_un unixAddress(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sun.sun_path)) {
    throw std::runtime_error("control socket " + path + ": path too long for a unix socket");
  }
  std::memcpy(sun.sun_path, path.data(), path.size());
  return sun;
}

[[noreturn]] void fail(const std::string& path, const std::string& step) {
  throw std::runtime_error("control socket " + path + ": " + step + ": " + std::strerror(errno));
}

// Whether a process accepts connections on the socket at `path` (connect succeeds or the
// backlog is full). A socket file nobody listens on refuses (ECONNREFUSED): it is stale.
bool answers(const std::string& path) {
  const sockaddr_un sun = unixAddress(path);
  net::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return false;
  }
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof(sun)) == 0 ||
         errno == EAGAIN;
}

// What is at `path`: nothing, a socket, or something else (which is never replaced).
enum class Existing { None, Socket, Other };
Existing existing(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      fail(path, "lstat");
    }
    return Existing::None;
  }
  return S_ISSOCK(st.st_mode) ? Existing::Socket : Existing::Other;
}

}  // namespace

ControlSocket::ControlSocket(std::string path, std::optional<uint32_t> gid, Handler handler,
                             bool take_over)
    : path_(std::move(path)), gid_(gid), handler_(std::move(handler)) {
  bindAndRename(take_over);
}

ControlSocket::~ControlSocket() { unlinkIfOurs(); }

void ControlSocket::bindAndRename(bool take_over) {
  switch (existing(path_)) {
    case Existing::Other:
      errno = EEXIST;
      fail(path_, "exists and is not a socket; not replacing it");
    case Existing::Socket:
      if (!take_over && answers(path_)) {
        throw std::runtime_error("control socket " + path_ +
                                 ": another process listens there (another weir master?)");
      }
      break;  // stale (or ours to replace): the rename below replaces it
    case Existing::None:
      break;
  }
  // PATH.PID: a leftover of a master that had this pid and died between bind and rename.
  const std::string temp = path_ + "." + std::to_string(::getpid());
  const sockaddr_un sun = unixAddress(temp);
  if (existing(temp) == Existing::Socket) {
    (void)::unlink(temp.c_str());
  }
  net::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    fail(path_, "socket");
  }
  // The file is created with mode 0777 & ~umask: born 0660, never wider for a moment. (The
  // master is single-threaded, so the umask change affects nothing else.)
  const mode_t old_mask = ::umask(0117);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof(sun));
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) {
    errno = bind_errno;
    fail(temp, "bind");
  }
  auto cleanup = [&temp](const char* step) {
    const int saved = errno;
    (void)::unlink(temp.c_str());
    errno = saved;
    fail(temp, step);
  };
  // AT_SYMLINK_NOFOLLOW: whatever might have replaced the name is never followed.
  if (gid_ && ::fchownat(AT_FDCWD, temp.c_str(), static_cast<uid_t>(-1), *gid_,
                         AT_SYMLINK_NOFOLLOW) != 0) {
    cleanup("chown");
  }
  struct stat st {};
  if (::listen(fd.get(), kBacklog) != 0) {
    cleanup("listen");
  }
  if (::lstat(temp.c_str(), &st) != 0) {
    cleanup("lstat");
  }
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    cleanup(("rename to " + path_).c_str());
  }
  listen_ = std::move(fd);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
}

void ControlSocket::unlinkIfOurs() {
  if (ino_ == 0) {
    return;
  }
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    (void)::unlink(path_.c_str());
  }
  ino_ = 0;
}

void ControlSocket::handOff() {
  ino_ = 0;  // the path is the new master's now
  listen_.reset();
  conns_.clear();
}

std::string ControlSocket::rebind() {
  net::UniqueFd old = std::move(listen_);
  const dev_t old_dev = dev_;
  const ino_t old_ino = ino_;
  try {
    bindAndRename(true);
    return "";
  } catch (const std::exception& e) {
    listen_ = std::move(old);
    dev_ = old_dev;
    ino_ = old_ino;
    return e.what();
  }
}

void ControlSocket::addPollFds(std::vector<pollfd>& fds) const {
  polled_listen_ = listen_.valid() && conns_.size() < kMaxConnections;
  if (polled_listen_) {
    fds.push_back({listen_.get(), POLLIN, 0});
  }
  for (const Conn& c : conns_) {
    fds.push_back({c.fd.get(), static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
  }
  polled_conns_ = conns_.size();
}

void ControlSocket::onPoll(const pollfd* fds, int64_t now) {
  const pollfd* conn_fds = fds + (polled_listen_ ? 1 : 0);
  std::vector<uint8_t> done(conns_.size(), 0);
  for (size_t i = 0; i < polled_conns_ && i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    const short ev = conn_fds[i].revents;
    if (now >= c.deadline) {
      done[i] = 1;
    } else if (ev & (POLLIN | POLLOUT)) {
      done[i] = (c.out.empty() ? onReadable(c) : onWritable(c)) ? 0 : 1;
    } else if (ev & (POLLERR | POLLHUP | POLLNVAL)) {
      done[i] = 1;
    }
  }
  for (size_t i = polled_conns_; i < conns_.size(); ++i) {
    done[i] = now >= conns_[i].deadline ? 1 : 0;  // none: addPollFds saw every connection
  }
  size_t i = 0;
  std::erase_if(conns_, [&](const Conn&) { return done[i++] != 0; });
  if (polled_listen_ && (fds[0].revents & POLLIN) != 0) {
    acceptSome(now);
  }
}

int64_t ControlSocket::nextDeadline() const {
  int64_t next = -1;
  for (const Conn& c : conns_) {
    if (next < 0 || c.deadline < next) {
      next = c.deadline;
    }
  }
  return next;
}

void ControlSocket::acceptSome(int64_t now) {
  for (int i = 0; i < kAcceptsPerPoll && conns_.size() < kMaxConnections; ++i) {
    net::UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      // EAGAIN: the backlog is empty. Anything else (ECONNABORTED, EMFILE...) concerns one
      // client or a moment of shortage: the next poll tries again.
      if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR) {
        spdlog::warn("control socket {}: accept: {}", path_, std::strerror(errno));
      }
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    std::optional<uint32_t> uid;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      uid = cred.uid;
    }
    conns_.push_back(Conn{std::move(fd), now + kTimeoutMs, {}, {}, 0, uid});
    // Most clients have sent their request by now: answer without another poll round.
    Conn& c = conns_.back();
    if (!onReadable(c)) {
      conns_.pop_back();
    }
  }
}

bool ControlSocket::onReadable(Conn& c) {
  for (;;) {
    char buf[control::kMaxRequest];
    const ssize_t n = ::recv(c.fd.get(), buf, control::kMaxRequest - c.in.size(), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      // EAGAIN: wait for more; anything else ends this client only.
      return errno == EAGAIN;
    }
    c.in.append(buf, static_cast<size_t>(n));
    if (std::optional<control::ParsedRequest> parsed = control::parseReceived(c.in, n == 0)) {
      answer(c, *parsed);
      return onWritable(c);
    }
  }
}

void ControlSocket::answer(Conn& c, const control::ParsedRequest& parsed) {
  control::Reply reply;
  if (!parsed.request) {
    reply = control::Reply::failure("bad request: " + parsed.error);
  } else if (!control::readsOnly(parsed.request->command) && read_only_uid_ &&
             *read_only_uid_ != 0 && (!c.uid || *c.uid == *read_only_uid_)) {
    spdlog::warn("control socket {}: {} refused: the client runs as uid {}, the uid of weir's "
                 "workers, which may only read",
                 path_, control::commandName(parsed.request->command), *read_only_uid_);
    reply = control::Reply::failure(
        std::string(control::commandName(parsed.request->command)) +
        " refused: uid " + std::to_string(*read_only_uid_) +
        " is the user weir's workers run as, which may only read (status, backends)");
  } else {
    try {
      reply = handler_(*parsed.request);
    } catch (const std::exception& e) {
      spdlog::error("control socket {}: {}: {}", path_,
                    control::commandName(parsed.request->command), e.what());
      reply = control::Reply::failure(std::string("internal error: ") + e.what());
    }
  }
  c.out = control::encodeReply(reply);
  c.sent = 0;
  // The reply gets the full time to leave, whatever the handler took (a reload).
  c.deadline = worker::monotonicMs() + kTimeoutMs;
}

bool ControlSocket::onWritable(Conn& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN;  // wait for room; EPIPE and the like: the client left
    }
    c.sent += static_cast<size_t>(n);
  }
  return false;  // all sent: close
}

}  // namespace weir::master
