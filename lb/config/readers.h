#pragma once

#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/section.h"

namespace weir::config::detail {

// Fills `global` from [global]. Leaves workers unresolved when it is "auto".
void readGlobal(const Section& section, Global& global);
// Reads [global] control_socket: "" or an absolute path of at most kMaxControlSocketPath bytes.
void readControlSocket(const Section& section, Global& global);

// Without [global] user, gives the children of a master running as `euid` 0 the default
// user: "weir" if the user database has it, else "nobody" (and its primary group unless
// [global] group is set). Records a problem at [global] (or the top of the file) when
// neither exists. Any other euid: nothing to do (the children keep the master's uid).
void defaultUser(const toml::table& root, uint32_t euid, Global& global, Diagnostics& diag);

// Reads [pools.NAME]. The result is only meaningful if no problem was recorded.
Pool readPool(const Section& section, const std::string& name);

// Reads [pools.NAME.health]. nullopt only if a problem was recorded.
std::optional<HealthCheck> readHealth(const Section& section);

// Reads [pools.NAME.tls] / [listeners.NAME.tls]. File paths are recorded (resolved, see
// resolvePath), never opened. The result is only meaningful if no problem was recorded.
UpstreamTls readUpstreamTls(const Section& section);
ServerTls readServerTls(const Section& section);

// `path` as written in the config file `config_path`: an absolute path as is, a relative one
// taken from the config file's directory ("/etc/weir/weir.toml", "certs/a.pem" ->
// "/etc/weir/certs/a.pem"; "weir.toml", "a.pem" -> "a.pem"). Lexical only: no file is read.
std::string resolvePath(std::string_view config_path, std::string_view path);

// Reads [listeners.NAME.sni]: names lower-cased, each route's pool one of `pool_names`, in
// file order. A wrong or duplicate route is recorded and left out. pool_index is not set.
std::vector<SniRoute> readSniRoutes(const Section& section,
                                    const std::vector<std::string>& pool_names);

// Why `name` (lower case) is not a DNS host name (labels of 1..63 letters, digits and '-',
// not starting or ending with '-'; at most 253 characters), or "" if it is one.
std::string hostNameProblem(std::string_view name);

// A host name value (lower-cased), such as pools.NAME.tls.sni; nullopt if absent or wrong.
std::optional<std::string> readHostName(const Section& section, std::string_view key);

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

// The pools a file defines (valid or not), for the checks of references to them.
struct PoolNames {
  std::vector<std::string> all;
  std::vector<std::string> with_tls;  // those with a [pools.NAME.tls] table
};

// Reads [listeners.NAME]. Appends each bind address to `binds`.
Listener readListener(const Section& section, const std::string& name, const PoolNames& pools,
                      std::vector<BindSite>& binds);

// Reads the array of addresses or prefixes at `key` (such as trusted, allow, deny) into `out`,
// leaving out (and recording) each wrong or repeated element; `nodes`, if given, gets the
// element each prefix of `out` came from. Returns false if the value is not an array (the
// problem is recorded at it); true when the key is absent.
bool readPrefixArray(const Section& section, std::string_view key, std::vector<net::Cidr>& out,
                     std::vector<const toml::node*>* nodes = nullptr);

// Reads allow, deny, allow_file and deny_file of [listeners.NAME] into `listener`, and builds
// listener.access from allow and deny (the files are read by load, see readAccessFiles). A
// prefix both allowed and denied is recorded at the deny element.
void readAccess(const Section& section, Listener& listener);

// Reads every allow_file / deny_file `cfg` names and rebuilds those listeners' access lists
// with the files' prefixes. Returns one message per problem ("FILE:LINE:COL: key: LIST:LINE:
// COL: what"); the lists are only meaningful if there are none.
std::vector<std::string> readAccessFiles(Config& cfg);

// Reads accept_proxy_protocol, trusted and proxy_protocol_timeout of [listeners.NAME] into
// `listener`. Accepting needs a non-empty trusted; trusted and the timeout are errors without
// it (they would do nothing); a wrong or repeated prefix is recorded and left out.
void readProxyProtocol(const Section& section, Listener& listener);

// Records every bind that overlaps one written before it in the file. Two binds overlap when
// they have the same family and port and either the same IP or one is the wildcard. IPv4 and
// IPv6 never overlap: weir sets IPV6_V6ONLY.
void checkBindOverlaps(std::vector<BindSite> binds, Diagnostics& diag);

}  // namespace weir::config::detail
