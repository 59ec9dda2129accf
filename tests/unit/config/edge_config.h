#pragma once

// The config the tests of [listeners.NAME] keys start from: a pool "web" and a listener
// "edge" in lines 1-5, the rest of [listeners.edge] appended from line 6 on.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace weir::config::edge_config {

inline constexpr std::string_view kHead =
    "[pools.web]\n"                                 // 1
    "backends = [{ address = \"10.0.0.1:80\" }]\n"  // 2
    "[listeners.edge]\n"                            // 3
    "bind = \"127.0.0.1:8080\"\n"                   // 4
    "pool = \"web\"\n";                             // 5

// kHead + `rest`, parsed as "weir.toml".
inline Config parseRest(std::string_view rest) {
  return parse(std::string(kHead) + std::string(rest), "weir.toml");
}

// The messages of the ConfigError that parsing kHead + `rest` throws; a test failure if none.
inline std::vector<std::string> errorsOf(std::string_view rest) {
  try {
    parseRest(rest);
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << rest;
  return {};
}

}  // namespace weir::config::edge_config
