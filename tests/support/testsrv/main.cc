// weir-testsrv: the test and demo backend. See `weir-testsrv --help`.
#include <sys/resource.h>

#include <cstdio>

#include "support/testsrv/options.h"
#include "support/testsrv/server.h"

int main(int argc, char** argv) {
  const auto options = weir::testsrv::parseOptions(argc, argv);
  if (!options) {
    return 2;
  }
  // Thousands of held connections need more descriptors than the usual soft limit of 1024.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  weir::testsrv::Server server(*options);
  if (!server.start()) {
    return 1;
  }
  return server.run();
}
