#include "netsetup/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "net/unique_fd.h"

namespace weir::netsetup {
namespace {

using net::UniqueFd;
using Clock = std::chrono::steady_clock;

// Where nft and ip live on Debian, searched after PATH: a daemon's or a cron job's PATH may
// lack the sbin directories.
constexpr const char* kFallbackPath = "/usr/sbin:/usr/bin:/sbin:/bin";

// The executable `name` names, or "" if there is none.
std::string findProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return ::access(name.c_str(), X_OK) == 0 ? name : "";
  }
  const char* env = std::getenv("PATH");
  std::string dirs = env != nullptr ? std::string(env) + ":" + kFallbackPath : kFallbackPath;
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    const std::string dir = dirs.substr(begin, end - begin);
    if (!dir.empty()) {
      std::string path = dir + "/" + name;
      if (::access(path.c_str(), X_OK) == 0) {
        return path;
      }
    }
    begin = end + 1;
  }
  return "";
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

util::Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    return util::lastError("pipe2");
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// In the child, between fork and exec: only async-signal-safe calls. Reports the errno of
// what failed through `report` (CLOEXEC: an exec that works closes it, which the parent reads
// as success).
[[noreturn]] void execChild(const std::string& path, const std::vector<std::string>& argv,
                            int in, int out, int err, int report) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);  // an ignored SIGPIPE would survive the exec
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) {
    const int e = errno;
    (void)!::write(report, &e, sizeof(e));
    ::_exit(127);
  }
  // Any descriptor the caller holds without CLOEXEC (sockets inherited over a binary upgrade)
  // stays out of the command. Best effort: close_range needs Linux 5.11.
  (void)::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  ::execv(path.c_str(), args.data());
  const int e = errno;
  (void)!::write(report, &e, sizeof(e));
  ::_exit(127);
}

// Reaps `pid`, retrying EINTR. Returns the exit code, or 128 + the signal that killed it.
int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return WEXITSTATUS(status);
}

// Appends what `fd` has to `to`. Returns false at EOF or on an error other than EAGAIN/EINTR
// (the child is gone or closed it: nothing more will come).
bool drain(int fd, std::string& to) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      to.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return n < 0 && errno == EAGAIN;
  }
}

// Writes what it can of `data` from `done` on. Returns false once nothing more can be
// written: all written, or the reader is gone (EPIPE; its output says why).
// SIGPIPE is blocked around the write so that a command that exits without reading its input
// does not kill the caller; a SIGPIPE this write raised is taken off the pending set.
bool feed(int fd, std::string_view data, size_t& done) {
  sigset_t pipe_set;
  sigset_t old;
  sigset_t pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  bool more = true;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN) {
      more = false;
      if (errno == EPIPE && !was_pending) {
        const timespec zero{};
        (void)::sigtimedwait(&pipe_set, nullptr, &zero);
      }
    }
    break;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return more && done < data.size();
}

}  // namespace

util::Result<Output> SystemRunner::run(const std::vector<std::string>& argv,
                                       const std::string& input) {
  const std::string name = argv.empty() ? "" : argv[0];
  const std::string path = findProgram(name);
  if (path.empty()) {
    return util::SysError{ENOENT, name};
  }
  auto in = makePipe();
  auto out = makePipe();
  auto err = makePipe();
  auto report = makePipe();
  for (auto* p : {&in, &out, &err, &report}) {
    if (!*p) {
      return p->error();
    }
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    return util::lastError("fork for " + name);
  }
  if (pid == 0) {
    execChild(path, argv, in->read.get(), out->write.get(), err->write.get(),
              report->write.get());
  }
  in->read.reset();
  out->write.reset();
  err->write.reset();
  report->write.reset();
  // EOF: exec worked. An errno: it did not, and the child has exited.
  int exec_errno = 0;
  ssize_t n;
  while ((n = ::read(report->read.get(), &exec_errno, sizeof(exec_errno))) < 0 &&
         errno == EINTR) {
  }
  if (n > 0) {
    reap(pid);
    return util::SysError{exec_errno, "exec " + path};
  }

  Output result;
  for (int fd : {in->write.get(), out->read.get(), err->read.get()}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  size_t written = 0;
  if (!feed(in->write.get(), input, written)) {
    in->write.reset();  // EOF on its stdin
  }
  const auto deadline = Clock::now() + timeout_;
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      reap(pid);
      return util::SysError{ETIMEDOUT, commandLine(argv)};
    }
    pollfd fds[3] = {{out_open ? out->read.get() : -1, POLLIN, 0},
                     {err_open ? err->read.get() : -1, POLLIN, 0},
                     {in->write.get(), POLLOUT, 0}};  // -1 once all is written: ignored
    if (::poll(fds, 3, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) {
        continue;
      }
      const util::SysError e = util::lastError("poll for " + name);
      ::kill(pid, SIGKILL);
      reap(pid);
      return e;
    }
    if (fds[0].revents != 0) {
      out_open = drain(out->read.get(), result.out);
    }
    if (fds[1].revents != 0) {
      err_open = drain(err->read.get(), result.err);
    }
    if (fds[2].revents != 0 && !feed(in->write.get(), input, written)) {
      in->write.reset();
    }
  }
  result.code = reap(pid);
  return result;
}

std::string commandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) {
    if (!line.empty()) {
      line += ' ';
    }
    line += a;
  }
  return line;
}

}  // namespace weir::netsetup
