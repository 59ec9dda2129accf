#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "support/sock_addr.h"

namespace weir::testsrv {

enum class Mode { Echo, Http, DrainReply, Source, Hold };

struct Options {
  test::SockAddr listen;
  Mode mode = Mode::Echo;
  std::string name;                 // empty: the listen address with the bound port
  uint64_t bytes = 1024 * 1024;     // drain-reply / source payload size
  uint64_t seed = 1;                // PRNG stream seed for drain-reply / source
};

// Parses argv. On --help prints usage to stdout and exits 0; on an error prints the problem
// and the usage to stderr and returns nullopt.
std::optional<Options> parseOptions(int argc, char** argv);

}  // namespace weir::testsrv
