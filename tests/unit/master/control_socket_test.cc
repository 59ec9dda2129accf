// The master's control socket on its own: a loop thread plays the master's poll loop, the test
// is the client. What a local client can do to the root master: send too much, send nothing,
// open many connections; and how the path behaves across masters.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "control/client.h"
#include "master/control_socket.h"
#include "support/temp_dir.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

using control::Reply;
using control::Request;

// Runs the socket's half of the master loop in a thread until destroyed.
class Loop {
public:
  explicit Loop(ControlSocket& socket) : socket_(socket), thread_([this] { run(); }) {}
  ~Loop() {
    stop_ = true;
    thread_.join();
  }

private:
  void run() {
    std::vector<pollfd> fds;
    while (!stop_) {
      fds.clear();
      socket_.addPollFds(fds);
      (void)::poll(fds.data(), fds.size(), 20);
      socket_.onPoll(fds.data(), worker::monotonicMs());
    }
  }

  ControlSocket& socket_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

ControlSocket::Handler echoCommand(std::atomic<int>* calls = nullptr) {
  return [calls](const Request& r) {
    if (calls != nullptr) {
      ++*calls;
    }
    return Reply::success(std::string(control::commandName(r.command)) +
                          (r.format == control::Format::Json ? " json" : " text"));
  };
}

// A raw connection to `path` with a receive timeout.
int connectTo(const std::string& path, int timeout_ms = 2000) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Everything until EOF (or the receive timeout: then what came, plus "<timeout>"). A reset
// ends the reply too: the master closed with bytes of ours unread.
std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      return out;
    }
    if (n < 0) {
      return out + "<timeout>";
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

ino_t inodeOf(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(ControlSocket, AnswersOneRequestPerConnection) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  std::atomic<int> calls{0};
  ControlSocket socket(path, std::nullopt, echoCommand(&calls), false);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  Loop loop(socket);
  auto reply = control::exchange(path, "json status\n", 2000);
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(*reply, "ok\nstatus json\n");
  // A second line on the same connection is not read: one request per connection.
  int fd = connectTo(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "text reload\ntext status\n", 24, MSG_NOSIGNAL), 24);
  EXPECT_EQ(readAll(fd), "ok\nreload text\n");
  ::close(fd);
  EXPECT_EQ(calls.load(), 2);
}

TEST(ControlSocket, GroupIsTheChildrensGroup) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "giving the socket to group 65534 needs root (CAP_CHOWN)";
  }
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  ControlSocket socket(path, 65534, echoCommand(), false);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST(ControlSocket, BadAndOversizedRequestsGetAnErrorNotTheHandler) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  std::atomic<int> calls{0};
  ControlSocket socket(path, std::nullopt, echoCommand(&calls), false);
  Loop loop(socket);
  auto bad = control::exchange(path, "text stop\n", 2000);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(*bad, "error\nbad request: unknown command \"stop\"\n");
  // 64 KiB without a newline: answered after the first kMaxRequest bytes.
  int fd = connectTo(path);
  ASSERT_GE(fd, 0);
  const std::string flood(64 * 1024, 'a');
  (void)::send(fd, flood.data(), flood.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  EXPECT_EQ(readAll(fd), "error\nbad request: request longer than 1023 bytes\n");
  ::close(fd);
  // A client that closes its side before a newline.
  fd = connectTo(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "text status", 11, MSG_NOSIGNAL), 11);
  ::shutdown(fd, SHUT_WR);
  EXPECT_EQ(readAll(fd), "error\nbad request: no newline before the end\n");
  ::close(fd);
  EXPECT_EQ(calls.load(), 0);
}

TEST(ControlSocket, SilentClientsAreClosedAfterTheTimeout) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  ControlSocket socket(path, std::nullopt, echoCommand(), false);
  Loop loop(socket);
  int fd = connectTo(path, ControlSocket::kTimeoutMs + 3000);
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(readAll(fd), "");  // EOF, not the receive timeout
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(ControlSocket::kTimeoutMs - 100));
  ::close(fd);
}

TEST(ControlSocket, AtMostMaxConnectionsTheRestWait) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  ControlSocket socket(path, std::nullopt, echoCommand(), false);
  Loop loop(socket);
  std::vector<int> idle;
  for (size_t i = 0; i < ControlSocket::kMaxConnections; ++i) {
    idle.push_back(connectTo(path));
    ASSERT_GE(idle.back(), 0);
  }
  // Accepted into the backlog, but not served while every slot is taken.
  const int waiting = connectTo(path, 500);
  ASSERT_GE(waiting, 0);
  ASSERT_EQ(::send(waiting, "text status\n", 12, MSG_NOSIGNAL), 12);
  EXPECT_EQ(readAll(waiting), "<timeout>");
  ::close(idle.back());  // one slot free: the waiting client is served
  idle.pop_back();
  timeval tv{3, 0};
  ::setsockopt(waiting, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(readAll(waiting), "ok\nstatus text\n");
  ::close(waiting);
  for (int fd : idle) {
    ::close(fd);
  }
}

TEST(ControlSocket, AStaleSocketIsReplacedALiveOneOnlyOnTakeOver) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  {
    // A socket file nobody listens on: what a killed master leaves.
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0);
    ::close(fd);
  }
  auto first = std::make_unique<ControlSocket>(path, std::nullopt, echoCommand(), false);
  // Another master starting with the same path must not steal it...
  EXPECT_THROW(ControlSocket(path, std::nullopt, echoCommand(), false), std::runtime_error);
  // ...but a new master of a binary upgrade takes it over while the old one runs.
  const ino_t old_inode = inodeOf(path);
  ControlSocket second(path, std::nullopt, echoCommand(), true);
  EXPECT_NE(inodeOf(path), old_inode);
  first.reset();  // the old master exits: the path is not its socket any more
  EXPECT_NE(inodeOf(path), 0u);
  Loop loop(second);
  auto reply = control::exchange(path, "text status\n", 2000);
  ASSERT_TRUE(reply.ok()) << reply.error().message();
  EXPECT_EQ(*reply, "ok\nstatus text\n");
}

TEST(ControlSocket, RemovedOnCloseButNotAfterAHandOff) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  { ControlSocket socket(path, std::nullopt, echoCommand(), false); }
  EXPECT_EQ(inodeOf(path), 0u);
  {
    ControlSocket socket(path, std::nullopt, echoCommand(), false);
    socket.handOff();
  }
  EXPECT_NE(inodeOf(path), 0u);
}

TEST(ControlSocket, NeverReplacesWhatIsNotASocket) {
  test::TempDir dir;
  const std::string path = dir.write("weir.sock", "precious");
  EXPECT_THROW(ControlSocket(path, std::nullopt, echoCommand(), true), std::runtime_error);
  EXPECT_EQ(test::readTextFile(path), "precious");
}

TEST(ControlSocket, RebindAnswersAtThePathAgain) {
  test::TempDir dir;
  const std::string path = dir.file("weir.sock");
  ControlSocket socket(path, std::nullopt, echoCommand(), false);
  {
    // A new master took the path over, then failed and removed its socket.
    ControlSocket successor(path, std::nullopt, echoCommand(), true);
  }
  EXPECT_EQ(inodeOf(path), 0u);
  EXPECT_EQ(socket.rebind(), "");
  Loop loop(socket);
  auto reply = control::exchange(path, "text status\n", 2000);
  ASSERT_TRUE(reply.ok()) << reply.error().message();
}

}  // namespace
}  // namespace weir::master
