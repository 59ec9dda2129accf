#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace weir::test {

namespace {

// Everything the child needs, prepared before fork: between fork and exec only
// async-signal-safe calls are allowed, so no allocation happens there.
struct ChildSetup {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  int out_fd = -1;  // -1: inherit
  int err_fd = -1;
  int exec_err_fd = -1;
  int netns_fd = -1;  // >= 0: setns() into this network namespace before exec
  pid_t parent = 0;
};

[[noreturn]] void runChild(const ChildSetup& s) {
  // Fresh signal state: the test process may block or ignore signals (ignored dispositions
  // survive exec, and a server that ignores SIGTERM would never stop).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2}) {
    ::signal(sig, SIG_DFL);
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != s.parent) {
    _exit(126);  // the parent died before prctl took effect
  }
  if (s.out_fd >= 0 && dup2(s.out_fd, STDOUT_FILENO) < 0) {
    _exit(126);
  }
  if (s.err_fd >= 0 && dup2(s.err_fd, STDERR_FILENO) < 0) {
    _exit(126);
  }
  // Entering the network namespace is a plain setns(2), unlike `ip netns exec`, which also
  // remounts / and /sys and so fails where / is not a mount point (a chroot).
  if (s.netns_fd < 0 || setns(s.netns_fd, CLONE_NEWNET) == 0) {
    execv(s.argv[0], s.argv.data());
  }
  const int err = errno;
  ssize_t ignored = write(s.exec_err_fd, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

Fd openOutput(Process::Output mode, const std::string& path, Fd* pipe_read_end) {
  switch (mode) {
    case Process::Output::Inherit:
      return Fd();
    case Process::Output::Null:
      return Fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    case Process::Output::File: {
      Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!fd) {
        throw std::runtime_error("open " + path + ": " + std::strerror(errno));
      }
      return fd;
    }
    case Process::Output::Pipe: {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
      }
      *pipe_read_end = Fd(p[0]);
      fcntl(p[0], F_SETFL, O_NONBLOCK);
      return Fd(p[1]);
    }
  }
  return Fd();
}

}  // namespace

Process::Process(Process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      status_(std::exchange(o.status_, std::nullopt)),
      out_(std::move(o.out_)),
      err_(std::move(o.err_)),
      out_buf_(std::move(o.out_buf_)) {}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    status_ = std::exchange(o.status_, std::nullopt);
    out_ = std::move(o.out_);
    err_ = std::move(o.err_);
    out_buf_ = std::move(o.out_buf_);
  }
  return *this;
}

Process::~Process() { stop(); }

Process Process::spawn(const std::string& path, const std::vector<std::string>& args,
                       const Options& options) {
  Process proc;
  ChildSetup setup;
  Fd netns_fd;
  if (!options.netns.empty()) {
    const std::string ns_path = "/run/netns/" + options.netns;
    netns_fd = Fd(open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns_fd) {
      throw std::runtime_error("cannot run " + path + " in network namespace " + options.netns +
                               ": " + ns_path + ": " + std::strerror(errno));
    }
    setup.netns_fd = netns_fd.get();
  }
  // execv does not search PATH (execvp may allocate, which a child of a threaded process must
  // not): a bare name is looked up here.
  const std::string found = path.find('/') == std::string::npos ? findProgram(path) : "";
  setup.argv_storage.push_back(found.empty() ? path : found);
  setup.argv_storage.insert(setup.argv_storage.end(), args.begin(), args.end());
  for (std::string& a : setup.argv_storage) {
    setup.argv.push_back(a.data());
  }
  setup.argv.push_back(nullptr);

  Fd out_write = openOutput(options.out, options.out_path, &proc.out_);
  Fd err_write = openOutput(options.err, options.err_path, &proc.err_);
  setup.out_fd = out_write.get();
  setup.err_fd = err_write.get();
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  Fd exec_read(exec_pipe[0]);
  Fd exec_write(exec_pipe[1]);
  setup.exec_err_fd = exec_write.get();
  setup.parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    runChild(setup);
  }
  proc.pid_ = pid;
  exec_write.reset();
  out_write.reset();
  err_write.reset();
  // The pipe reaches EOF on a successful exec (CLOEXEC) or carries the exec errno.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    proc.stop();
    throw std::runtime_error("exec " + setup.argv_storage.front() + ": " +
                             std::strerror(exec_errno));
  }
  return proc;
}

bool Process::running() {
  if (pid_ <= 0 || status_) {
    return false;
  }
  int st = 0;
  const pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

std::optional<std::string> Process::readLine(Deadline deadline) {
  if (!out_) {
    return std::nullopt;
  }
  for (;;) {
    const size_t nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    pollfd p{out_.get(), POLLIN, 0};
    const int rc = poll(&p, 1, msLeft(deadline));
    if (rc == 0) {
      return std::nullopt;
    }
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::nullopt;
    }
    char buf[4096];
    const ssize_t n = read(out_.get(), buf, sizeof buf);
    if (n > 0) {
      out_buf_.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return std::nullopt;
    } else if (errno != EAGAIN && errno != EINTR) {
      return std::nullopt;
    }
  }
}

std::optional<uint16_t> Process::waitForPortLine(Deadline deadline) {
  // Bounded by the deadline inside readLine and by EOF when the child exits.
  while (auto line = readLine(deadline)) {
    if (line->rfind("PORT ", 0) == 0) {
      try {
        const unsigned long port = std::stoul(line->substr(5));
        if (port > 0 && port <= 65535) {
          return static_cast<uint16_t>(port);
        }
      } catch (const std::exception&) {
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

void Process::drainPipes(Deadline deadline, std::string* out, std::string* err) {
  if (out != nullptr) {
    out->append(out_buf_);
    out_buf_.clear();
  }
  std::vector<std::pair<Fd*, std::string*>> open;
  if (out_) {
    open.emplace_back(&out_, out);
  }
  if (err_) {
    open.emplace_back(&err_, err);
  }
  while (!open.empty()) {
    std::vector<pollfd> pfds;
    for (auto& [fd, sink] : open) {
      pfds.push_back({fd->get(), POLLIN, 0});
    }
    const int rc = poll(pfds.data(), pfds.size(), msLeft(deadline));
    if (rc == 0) {
      return;
    }
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    for (size_t i = pfds.size(); i-- > 0;) {
      if (pfds[i].revents == 0) {
        continue;
      }
      char buf[8192];
      const ssize_t n = read(pfds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (open[i].second != nullptr) {
          open[i].second->append(buf, static_cast<size_t>(n));
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        open[i].first->reset();
        open.erase(open.begin() + static_cast<ptrdiff_t>(i));
      }
    }
  }
}

bool Process::signal(int sig) {
  if (!running()) {
    return false;
  }
  return kill(pid_, sig) == 0;
}

std::optional<int> Process::wait(Clock::duration timeout) {
  if (pid_ <= 0) {
    return status_;
  }
  // No event exists for "child exited" without a SIGCHLD handler or pidfd; poll waitpid.
  waitFor([&] { return !running(); }, timeout, milliseconds(5));
  return status_;
}

int Process::stop(Clock::duration grace) {
  if (pid_ <= 0) {
    return status_.value_or(-1);
  }
  if (running()) {
    kill(pid_, SIGTERM);
    if (!wait(grace)) {
      kill(pid_, SIGKILL);
      int st = 0;
      pid_t r;
      do {
        r = waitpid(pid_, &st, 0);
      } while (r < 0 && errno == EINTR);
      status_ = st;
    }
  }
  pid_ = -1;
  out_.reset();
  err_.reset();
  return status_.value_or(-1);
}

int RunResult::exitCode() const {
  if (timed_out || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

RunResult run(const std::string& path, const std::vector<std::string>& args,
              Clock::duration timeout, const std::string& netns) {
  Process::Options opts;
  opts.out = Process::Output::Pipe;
  opts.err = Process::Output::Pipe;
  opts.netns = netns;
  Process p = Process::spawn(path, args, opts);
  const Deadline deadline = deadlineIn(timeout);
  RunResult r;
  p.drainPipes(deadline, &r.out, &r.err);
  if (!p.wait(std::max<Clock::duration>(deadline - Clock::now(), milliseconds(0)))) {
    r.timed_out = true;
  }
  r.status = p.stop(milliseconds(500));
  return r;
}

std::string describeStatus(int status) {
  if (status < 0) {
    return "not reaped";
  }
  if (WIFEXITED(status)) {
    return "exited " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

std::string findProgram(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
    const std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return "";
}

}  // namespace weir::test
