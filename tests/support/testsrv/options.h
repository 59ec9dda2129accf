#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/sock_addr.h"

namespace weir::testsrv {

enum class Mode { Echo, Http, DrainReply, Source, Hold, Identify };

struct Options {
  test::SockAddr listen;
  Mode mode = Mode::Echo;
  std::string name;                 // empty: the listen address with the bound port
  uint64_t bytes = 1024 * 1024;     // drain-reply / source payload size
  uint64_t seed = 1;                // PRNG stream seed for drain-reply / source
  std::string tls_cert;             // non-empty: speak TLS with this certificate chain (PEM)
  std::string tls_key;              // its private key (PEM)
  std::string tls_client_ca;        // non-empty: require client certificates from these CAs
  std::vector<std::string> tls_alpn;  // protocols to select from, in our preference order
  bool proxy_protocol = false;      // every connection starts with a PROXY header (v1 or v2)
};

// Parses argv. On --help prints usage to stdout and exits 0; on an error prints the problem
// and the usage to stderr and returns nullopt.
std::optional<Options> parseOptions(int argc, char** argv);

}  // namespace weir::testsrv
