#include "master/control.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "master/pid_file.h"

namespace weir::master {

int controlSignal(const std::string& action) {
  if (action == "reload") {
    return SIGHUP;
  }
  if (action == "quit") {
    return SIGQUIT;
  }
  if (action == "stop") {
    return SIGTERM;
  }
  if (action == "reopen") {
    return SIGUSR1;
  }
  return 0;
}

int sendControlSignal(const config::Config& cfg, const std::string& action) {
  const int sig = controlSignal(action);
  if (sig == 0) {
    std::fprintf(stderr, "weir: unknown signal action \"%s\" (reload, quit, stop, reopen)\n",
                 action.c_str());
    return 2;
  }
  const std::string& path = cfg.global.pid_file;
  if (path.empty()) {
    std::fprintf(stderr, "weir: %s sets no global.pid_file, so there is no master to signal\n",
                 cfg.path.c_str());
    return 1;
  }
  auto pid = readPidFile(path);
  if (!pid) {
    std::fprintf(stderr, "weir: cannot read a pid from %s: %s\n", path.c_str(),
                 errno != 0 ? std::strerror(errno) : "no pid in the file");
    return 1;
  }
  if (::kill(*pid, sig) != 0) {
    std::fprintf(stderr, "weir: kill(%d, %s): %s\n", *pid, strsignal(sig), std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace weir::master
