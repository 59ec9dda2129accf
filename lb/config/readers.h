#pragma once

#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/section.h"

namespace weir::config::detail {

// Fills `global` from [global]. Leaves workers unresolved when it is "auto".
void readGlobal(const Section& section, Global& global);

// Without [global] user, gives the children of a master running as `euid` 0 the default
// user: "weir" if the user database has it, else "nobody" (and its primary group unless
// [global] group is set). Records a problem at [global] (or the top of the file) when
// neither exists. Any other euid: nothing to do (the children keep the master's uid).
void defaultUser(const toml::table& root, uint32_t euid, Global& global, Diagnostics& diag);

// Reads [pools.NAME]. The result is only meaningful if no problem was recorded.
Pool readPool(const Section& section, const std::string& name);

// Reads [pools.NAME.health]. nullopt only if a problem was recorded.
std::optional<HealthCheck> readHealth(const Section& section);

// Decodes the escapes \r \n \t \0 \\ and \xHH (two hex digits) in a health check's send or
// expect string. Returns nullopt and sets `error` ("unknown escape \q at byte 3") if malformed.
std::optional<std::string> decodeEscapes(std::string_view text, std::string& error);

// One bind address and where it was written, for the cross-listener overlap check.
struct BindSite {
  net::SockAddr address;
  std::string listener;  // "listeners.web"
  std::string path;      // "listeners.web.bind[0]"
  toml::source_position at;
};

// Reads [listeners.NAME]. `pool_names` are every pool the file defines (valid or not), for
// the dangling-reference check. Appends each bind address to `binds`.
Listener readListener(const Section& section, const std::string& name,
                      const std::vector<std::string>& pool_names, std::vector<BindSite>& binds);

// Records every bind that overlaps one written before it in the file. Two binds overlap when
// they have the same family and port and either the same IP or one is the wildcard. IPv4 and
// IPv6 never overlap: weir sets IPV6_V6ONLY.
void checkBindOverlaps(std::vector<BindSite> binds, Diagnostics& diag);

}  // namespace weir::config::detail
