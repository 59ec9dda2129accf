#include "master/pid_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace weir::master {

void writePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) {
    return;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pid << '\n';
    out.flush();
    if (!out) {
      throw std::runtime_error("cannot write pid file " + tmp + ": " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write pid file " + path + ": " + std::strerror(err));
  }
}

std::optional<pid_t> readPidFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

void removePidFile(const std::string& path, pid_t pid) {
  if (!path.empty() && readPidFile(path) == pid) {
    ::unlink(path.c_str());
  }
}

std::string oldBinPath(const std::string& path) { return path + ".oldbin"; }

}  // namespace weir::master
