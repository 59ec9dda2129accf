#include "master/upgrade.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "net/unique_fd.h"

extern char** environ;

namespace weir::master {
namespace {

std::string takeEnv(const char* name) {
  const char* value = std::getenv(name);
  std::string out = value != nullptr ? value : "";
  ::unsetenv(name);
  return out;
}

void inheritFd(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) {
    (void)::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}

// The forked child: between fork and execve only plain system calls (the master is
// single-threaded, but keep it simple anyway; everything was prepared before the fork).
[[noreturn]] void execChild(char* const* argv, char* const* envp, const std::vector<int>& fds,
                            int report_fd, bool search_path) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGHUP, SIGUSR2, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD}) {
    ::signal(sig, SIG_DFL);
  }
  for (int fd : fds) {
    inheritFd(fd);
  }
  inheritFd(report_fd);
  if (search_path) {
    ::execvpe(argv[0], argv, envp);
  } else {
    ::execve(argv[0], argv, envp);
  }
  char msg[32];
  int n = std::snprintf(msg, sizeof(msg), "EXEC %d\n", errno);
  ssize_t ignored = ::write(report_fd, msg, static_cast<size_t>(n));
  (void)ignored;
  ::_exit(127);
}

}  // namespace

Inheritance takeInheritance() {
  Inheritance in;
  in.sockets = takeEnv(kInheritEnv);
  const std::string maps = takeEnv(kInheritBpfEnv);
  if (!maps.empty() && std::sscanf(maps.c_str(), "%d,%d,%d", &in.maps.socks, &in.maps.groups,
                                   &in.maps.state) != 3) {
    in.maps = {};
  }
  const std::string shm = takeEnv(kInheritShmEnv);
  if (!shm.empty()) {
    in.shm_fd = std::atoi(shm.c_str());
    (void)::fcntl(in.shm_fd, F_SETFD, FD_CLOEXEC);
  }
  const std::string generation = takeEnv(kGenerationEnv);
  if (!generation.empty()) {
    in.next_generation = std::max<uint64_t>(1, std::strtoull(generation.c_str(), nullptr, 10));
  }
  const std::string report = takeEnv(kUpgradeFdEnv);
  if (!report.empty()) {
    in.report_fd = std::atoi(report.c_str());
    (void)::fcntl(in.report_fd, F_SETFD, FD_CLOEXEC);
  }
  for (int fd : {in.maps.socks, in.maps.groups, in.maps.state}) {
    if (fd >= 0) {
      (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  return in;
}

UpgradeChild startUpgrade(const std::vector<std::string>& args, const std::string& socket_spec,
                          const std::vector<int>& fds, const steer::MapFds& maps, int shm_fd,
                          uint64_t next_generation) {
  if (args.empty()) {
    throw std::runtime_error("no command line to exec");
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  net::UniqueFd read_end(p[0]);
  net::UniqueFd write_end(p[1]);
  (void)::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);

  // Environment: ours minus any stale inheritance variables, plus the new ones.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    if (entry.rfind(std::string(kInheritEnv) + "=", 0) == 0 ||
        entry.rfind(std::string(kInheritBpfEnv) + "=", 0) == 0 ||
        entry.rfind(std::string(kInheritShmEnv) + "=", 0) == 0 ||
        entry.rfind(std::string(kUpgradeFdEnv) + "=", 0) == 0 ||
        entry.rfind(std::string(kGenerationEnv) + "=", 0) == 0) {
      continue;
    }
    env_storage.push_back(std::move(entry));
  }
  env_storage.push_back(std::string(kInheritEnv) + "=" + socket_spec);
  std::vector<int> inherit = fds;
  if (maps.valid()) {
    env_storage.push_back(std::string(kInheritBpfEnv) + "=" + std::to_string(maps.socks) + "," +
                          std::to_string(maps.groups) + "," + std::to_string(maps.state));
    inherit.insert(inherit.end(), {maps.socks, maps.groups, maps.state});
  }
  if (shm_fd >= 0) {
    env_storage.push_back(std::string(kInheritShmEnv) + "=" + std::to_string(shm_fd));
    inherit.push_back(shm_fd);
  }
  env_storage.push_back(std::string(kUpgradeFdEnv) + "=" + std::to_string(write_end.get()));
  env_storage.push_back(std::string(kGenerationEnv) + "=" + std::to_string(next_generation));
  std::vector<char*> envp;
  for (auto& e : env_storage) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> argv_storage = args;
  std::vector<char*> argv;
  for (auto& a : argv_storage) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const bool search_path = args[0].find('/') == std::string::npos;

  pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    execChild(argv.data(), envp.data(), inherit, write_end.get(), search_path);
  }
  return UpgradeChild{pid, std::move(read_end)};
}

void reportReady(int fd) {
  if (fd < 0) {
    return;
  }
  const std::string msg = "READY " + std::to_string(::getpid()) + "\n";
  ssize_t ignored = ::write(fd, msg.data(), msg.size());
  (void)ignored;
  net::UniqueFd closing(fd);
}

}  // namespace weir::master
