#include "child_fds.h"

#include <map>
#include <string>

#include "support/proc_fs.h"

namespace weir::test {

::testing::AssertionResult holdsOnlyItsOwnFds(pid_t child,
                                              const std::vector<uint16_t>& listen_ports) {
  const std::map<int, std::string> fds = openFds(child);
  std::string table;
  for (const auto& [fd, target] : fds) {
    table += "\n  " + std::to_string(fd) + " -> " + target;
  }
  if (fds.empty()) {
    return ::testing::AssertionFailure() << "pid " << child << " is gone";
  }
  // Listening sockets by inode, for the ports asked about.
  std::map<uint64_t, uint16_t> listening;
  for (const TcpEntry& e : readTcpTables()) {
    if (e.state == kTcpListen && e.inode != 0) {
      listening[e.inode] = e.local_port;
    }
  }
  // A pipe of the child's own pipe pool: the child holds both ends. A lone end is someone
  // else's pipe (an upgrade's report pipe is one).
  std::map<std::string, size_t> pipe_ends;
  for (const auto& [fd, target] : fds) {
    if (fd > 2 && target.rfind("pipe:[", 0) == 0) {
      ++pipe_ends[target];
    }
  }
  size_t epolls = 0;
  size_t signalfds = 0;
  std::map<uint16_t, size_t> per_port;
  std::string unexpected;
  for (const auto& [fd, target] : fds) {
    if (fd <= 2) {
      continue;
    }
    // A worker waits on epoll or on an io_uring ring (global.event_engine), never both.
    if (target == "anon_inode:[eventpoll]" || target == "anon_inode:[io_uring]") {
      ++epolls;
      continue;
    }
    if (target == "anon_inode:[signalfd]") {
      ++signalfds;
      continue;
    }
    if (target.rfind("pipe:[", 0) == 0 && pipe_ends[target] == 2) {
      continue;
    }
    if (target.rfind("socket:[", 0) == 0) {
      const uint64_t inode = std::stoull(target.substr(8));
      auto it = listening.find(inode);
      if (it != listening.end()) {
        ++per_port[it->second];
        continue;
      }
    }
    unexpected += " " + std::to_string(fd) + "->" + target;
  }
  std::string wrong;
  if (!unexpected.empty()) {
    wrong += "; unexpected:" + unexpected;
  }
  if (epolls != 1) {
    wrong += "; " + std::to_string(epolls) + " event instances, epoll or io_uring (want 1)";
  }
  if (signalfds != 1) {
    wrong += "; " + std::to_string(signalfds) + " signalfds (want 1, its own)";
  }
  std::map<uint16_t, size_t> want;
  for (uint16_t port : listen_ports) {
    ++want[port];
  }
  if (per_port != want) {
    std::string got;
    for (const auto& [port, n] : per_port) {
      got += " " + std::to_string(port) + "x" + std::to_string(n);
    }
    std::string expected;
    for (const auto& [port, n] : want) {
      expected += " " + std::to_string(port) + "x" + std::to_string(n);
    }
    wrong += "; listening sockets by port:" + (got.empty() ? " none" : got) + " (want" +
             (expected.empty() ? " none" : expected) + ")";
  }
  if (!wrong.empty()) {
    return ::testing::AssertionFailure()
           << "pid " << child << " (" << processCmdline(child) << ")" << wrong
           << "; fd table:" << table;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace weir::test
