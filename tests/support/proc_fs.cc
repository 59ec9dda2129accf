#include "support/proc_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "support/fd.h"

namespace weir::test {

namespace {

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) {
    return names;
  }
  while (dirent* e = readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") {
      names.emplace_back(n);
    }
  }
  closedir(d);
  return names;
}

bool isNumber(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fields after the "(comm)" of /proc/<pid>/stat: state is [0], ppid is [1]. comm may hold
// spaces and parentheses, so split after the last ')'.
std::vector<std::string> statFields(pid_t pid) {
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) {
    return fields;
  }
  std::istringstream ss(stat.substr(close + 1));
  std::string f;
  while (ss >> f) {
    fields.push_back(f);
  }
  return fields;
}

void readTcpTable(const char* path, std::vector<TcpEntry>* out) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    std::istringstream ss(line);
    std::string sl, local, remote, st, txrx, trtm, retr, uid, timeout, inode;
    if (!(ss >> sl >> local >> remote >> st >> txrx >> trtm >> retr >> uid >> timeout >> inode)) {
      continue;
    }
    const size_t lc = local.rfind(':');
    const size_t rc = remote.rfind(':');
    if (lc == std::string::npos || rc == std::string::npos) {
      continue;
    }
    TcpEntry e;
    e.local_port = static_cast<uint16_t>(std::stoul(local.substr(lc + 1), nullptr, 16));
    e.remote_port = static_cast<uint16_t>(std::stoul(remote.substr(rc + 1), nullptr, 16));
    e.state = static_cast<int>(std::stoul(st, nullptr, 16));
    e.inode = std::stoull(inode);
    out->push_back(e);
  }
}

}  // namespace

std::vector<pid_t> childPids(pid_t parent) {
  std::vector<pid_t> kids;
  const std::string task_dir = "/proc/" + std::to_string(parent) + "/task";
  bool have_children_file = false;
  for (const std::string& tid : listDir(task_dir)) {
    std::ifstream in(task_dir + "/" + tid + "/children");
    if (!in) {
      continue;
    }
    have_children_file = true;
    pid_t p;
    while (in >> p) {
      kids.push_back(p);
    }
  }
  if (!have_children_file) {
    for (const std::string& name : listDir("/proc")) {
      if (!isNumber(name)) {
        continue;
      }
      const pid_t pid = static_cast<pid_t>(std::stol(name));
      const auto f = statFields(pid);
      if (f.size() > 1 && f[1] == std::to_string(parent)) {
        kids.push_back(pid);
      }
    }
  }
  std::sort(kids.begin(), kids.end());
  kids.erase(std::unique(kids.begin(), kids.end()), kids.end());
  return kids;
}

bool processAlive(pid_t pid) {
  const auto f = statFields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

std::string processComm(pid_t pid) {
  std::string s = readFile("/proc/" + std::to_string(pid) + "/comm");
  while (!s.empty() && s.back() == '\n') {
    s.pop_back();
  }
  return s;
}

std::string processCmdline(pid_t pid) {
  std::string s = readFile("/proc/" + std::to_string(pid) + "/cmdline");
  while (!s.empty() && s.back() == '\0') {
    s.pop_back();
  }
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

long processCpuTicks(pid_t pid) {
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');  // the command may contain spaces and parentheses
  if (close == std::string::npos || close + 2 > stat.size()) {
    return -1;
  }
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  long utime = 0;
  long stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) {
      utime = std::stol(field);
    } else if (i == 15) {
      stime = std::stol(field);
    }
  }
  return utime + stime;
}

std::set<uint64_t> socketInodes(pid_t pid) {
  std::set<uint64_t> inodes;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const std::string& fd : listDir(dir)) {
    char target[64];
    const ssize_t n = readlink((dir + "/" + fd).c_str(), target, sizeof target - 1);
    if (n <= 0) {
      continue;
    }
    const std::string_view t(target, static_cast<size_t>(n));
    constexpr std::string_view kPrefix = "socket:[";
    if (t.substr(0, kPrefix.size()) == kPrefix && t.back() == ']') {
      inodes.insert(std::stoull(std::string(t.substr(kPrefix.size()))));
    }
  }
  return inodes;
}

std::map<int, std::string> openFds(pid_t pid) {
  std::map<int, std::string> fds;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const std::string& fd : listDir(dir)) {
    char target[4096];
    const ssize_t n = readlink((dir + "/" + fd).c_str(), target, sizeof target);
    if (n > 0 && fd.find_first_not_of("0123456789") == std::string::npos) {
      fds[std::stoi(fd)] = std::string(target, static_cast<size_t>(n));
    }
  }
  return fds;
}

std::vector<TcpEntry> readTcpTables() {
  std::vector<TcpEntry> entries;
  readTcpTable("/proc/net/tcp", &entries);
  readTcpTable("/proc/net/tcp6", &entries);
  return entries;
}

std::map<uint16_t, uint64_t> acceptedByClientPort(uint16_t listen_port) {
  std::map<uint16_t, uint64_t> out;
  for (const TcpEntry& e : readTcpTables()) {
    if (e.local_port == listen_port && e.state == kTcpEstablished && e.inode != 0) {
      out[e.remote_port] = e.inode;
    }
  }
  return out;
}

std::vector<size_t> connectionsPerProcess(uint16_t listen_port, const std::vector<pid_t>& pids) {
  std::set<uint64_t> accepted;
  for (const auto& [port, inode] : acceptedByClientPort(listen_port)) {
    accepted.insert(inode);
  }
  std::vector<size_t> counts;
  for (pid_t pid : pids) {
    size_t n = 0;
    for (uint64_t inode : socketInodes(pid)) {
      n += accepted.count(inode);
    }
    counts.push_back(n);
  }
  return counts;
}

std::map<std::string, int> pipesOf(pid_t pid, std::string* why) {
  std::map<std::string, int> sizes;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    *why = dir + ": " + std::strerror(errno);
    return sizes;
  }
  while (dirent* e = ::readdir(d)) {
    const std::string path = dir + "/" + e->d_name;
    char target[64] = {};
    if (::readlink(path.c_str(), target, sizeof(target) - 1) <= 0 ||
        std::strncmp(target, "pipe:", 5) != 0 || sizes.count(target) != 0) {
      continue;
    }
    // An extra read end that never reads: harmless to the pipe's owner.
    Fd p(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!p) {
      if (errno == ENOENT) {
        continue;  // closed since readdir
      }
      *why = path + ": " + std::strerror(errno);
      sizes.clear();
      break;
    }
    sizes[target] = ::fcntl(p.get(), F_GETPIPE_SZ);
  }
  ::closedir(d);
  return sizes;
}

}  // namespace weir::test
