#pragma once

#include <memory>

#include "support/testsrv/conn.h"
#include "support/testsrv/options.h"

namespace weir::testsrv {

// A new Protocol instance for one connection in `options.mode`. `name` is the server name
// used by the http and identify modes.
std::unique_ptr<Protocol> makeProtocol(const Options& options, const std::string& name);

}  // namespace weir::testsrv
