#include "master/child_fds.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "net/unique_fd.h"
#include "util/log.h"

namespace weir::master {
namespace {

bool kept(const std::vector<int>& keep, int fd) {
  return std::binary_search(keep.begin(), keep.end(), fd);
}

// For kernels without close_range: every fd /proc/self/fd lists, minus the directory's own.
void closeListed(const std::vector<int>& keep) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    throw std::runtime_error(std::string("close inherited fds: /proc/self/fd: ") +
                             std::strerror(errno));
  }
  std::vector<int> open;
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && fd >= 0 && fd <= INT_MAX &&
        fd != ::dirfd(dir) && !kept(keep, static_cast<int>(fd))) {
      open.push_back(static_cast<int>(fd));
    }
  }
  ::closedir(dir);
  for (int fd : open) {
    net::UniqueFd(fd).reset();
  }
}

}  // namespace

void closeInheritedFds(std::vector<int> keep) {
  util::closeLogFiles();
  keep.insert(keep.end(), {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO});
  std::erase_if(keep, [](int fd) { return fd < 0; });
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  // close_range over the gaps between kept fds, then above the last one.
  auto closeGap = [](unsigned first, unsigned last) {
    if (::close_range(first, last, 0) == 0) {
      return true;
    }
    if (errno != ENOSYS) {
      throw std::runtime_error("close_range(" + std::to_string(first) + ", " +
                               std::to_string(last) + "): " + std::strerror(errno));
    }
    return false;
  };
  unsigned first = 0;
  for (int fd : keep) {
    const auto kept_fd = static_cast<unsigned>(fd);
    if (kept_fd > first && !closeGap(first, kept_fd - 1)) {
      closeListed(keep);  // Linux < 5.9
      return;
    }
    first = kept_fd + 1;
  }
  if (!closeGap(first, ~0u)) {
    closeListed(keep);
  }
}

}  // namespace weir::master
