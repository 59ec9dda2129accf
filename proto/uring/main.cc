// uring-proto: a minimal TCP proxy for short connections (one listen address, one backend),
// with two event engines behind a flag, to measure io_uring against epoll (issue 13).
//
//   uring-proto --listen 127.0.0.1:18080 --backend 127.0.0.1:18081
//               --engine epoll|io_uring|io_uring-direct-up|io_uring-direct --workers 2
//               --max-seconds 30
//
// Like weir, each worker is a process with its own SO_REUSEPORT listener (here without BPF
// steering: the kernel's hash spreads connections).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "proxy.h"

namespace proto {

int upstreamSocket() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace proto

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "uring-proto: %s\nusage: uring-proto --listen IP:PORT --backend IP:PORT "
               "[--engine epoll|io_uring|io_uring-direct-up|io_uring-direct] [--workers N] "
               "[--max-seconds S]\n",
               why);
  std::exit(2);
}

sockaddr_in parseAddress(const std::string& text) {
  const auto colon = text.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (colon == std::string::npos ||
      ::inet_pton(AF_INET, text.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    usage(("bad address " + text).c_str());
  }
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1)));
  return sa;
}

// Accepted sockets inherit TCP_NODELAY from the listener, so no per-connection setsockopt.
int makeListener(const sockaddr_in& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0 ||
      ::listen(fd, 4096) < 0) {
    std::perror("uring-proto: listener");
    std::exit(1);
  }
  return fd;
}

std::vector<pid_t> g_children;

void forwardSignal(int sig) {
  for (pid_t pid : g_children) {
    ::kill(pid, sig);
  }
}

}  // namespace

int main(int argc, char** argv) {
  sockaddr_in listen_addr{};
  bool have_listen = false, have_backend = false;
  std::string engine = "epoll";
  int workers = 1;
  proto::Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      usage(("missing value after " + arg).c_str());
    }
    const std::string value = argv[++i];
    if (arg == "--listen") {
      listen_addr = parseAddress(value);
      have_listen = true;
    } else if (arg == "--backend") {
      opts.backend = parseAddress(value);
      have_backend = true;
    } else if (arg == "--engine") {
      engine = value;
    } else if (arg == "--workers") {
      workers = std::atoi(value.c_str());
    } else if (arg == "--max-seconds") {
      opts.max_seconds = std::atoi(value.c_str());
    } else {
      usage(("unknown option " + arg).c_str());
    }
  }
  if (!have_listen || !have_backend) {
    usage("--listen and --backend are required");
  }
  if (engine == "io_uring-direct-up") {
    opts.direct = proto::Options::Direct::Upstream;
  } else if (engine == "io_uring-direct") {
    opts.direct = proto::Options::Direct::All;
  } else if (engine != "epoll" && engine != "io_uring") {
    usage(("unknown engine " + engine).c_str());
  }
  if (workers < 1 || workers > 64 || opts.max_seconds < 1) {
    usage("--workers must be 1..64 and --max-seconds at least 1");
  }
  ::signal(SIGPIPE, SIG_IGN);  // sends use MSG_NOSIGNAL; this covers io_uring's sends too

  for (int w = 0; w < workers; ++w) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("uring-proto: fork");
      forwardSignal(SIGTERM);
      return 1;
    }
    if (pid == 0) {
      // A worker must not outlive its parent (a killed driver script must leave nothing).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = makeListener(listen_addr);
      return engine == "epoll" ? proto::runEpoll(opts, fd) : proto::runUring(opts, fd);
    }
    g_children.push_back(pid);
  }
  ::signal(SIGTERM, forwardSignal);
  ::signal(SIGINT, forwardSignal);
  int status = 0, worst = 0;
  for (size_t left = g_children.size(); left > 0;) {
    if (::wait(&status) > 0) {
      --left;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        worst = 1;
      }
    } else if (errno != EINTR) {
      break;
    }
  }
  return worst;
}
