// gtest main for the integration suite: raises the descriptor limit first, because tests
// hold thousands of client sockets at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>

int main(int argc, char** argv) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      std::perror("setrlimit(RLIMIT_NOFILE)");
    }
  }
  // Sockets are written with MSG_NOSIGNAL; this covers anything else (a child's pipe).
  signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
