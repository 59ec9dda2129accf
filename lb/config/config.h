#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.h"

namespace weir::config {

using Duration = std::chrono::milliseconds;

// How the sk_reuseport program spreads new connections across worker slots.
enum class Steering { LeastLoaded, RoundRobin, Hash };
// How a worker picks a backend inside a pool.
enum class Balance { RoundRobin };

inline constexpr unsigned kMaxWorkers = 64;  // must equal WEIR_MAX_WORKERS in bpf/steer.h

struct Global {
  unsigned workers = 1;            // resolved: "auto" becomes the number of online CPUs (capped)
  bool workers_auto = true;
  std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
  std::string error_log = "stderr";
  std::string access_log = "off";  // off|stderr|PATH
  std::string pid_file;            // empty: no pid file
  uint32_t max_connections = 10000;  // per worker
  Steering steering = Steering::LeastLoaded;
};

struct Backend {
  net::SockAddr address;
  uint32_t weight = 1;
};

struct Pool {
  std::string name;
  Balance balance = Balance::RoundRobin;
  Duration connect_timeout{5000};
  Duration idle_timeout{600000};
  uint32_t retries = 2;  // extra attempts after the first failed connect
  std::vector<Backend> backends;
};

struct Listener {
  std::string name;
  std::vector<net::SockAddr> binds;
  std::string pool;
  size_t pool_index = 0;  // index into Config::pools
  int backlog = 511;
};

// An immutable, validated configuration. Nothing downstream of lb/config touches TOML.
struct Config {
  std::string path;
  Global global;
  std::vector<Listener> listeners;  // sorted by name
  std::vector<Pool> pools;          // sorted by name
};

// Thrown by load/parse. messages holds one line per problem, each
// "FILE:LINE:COL: key.path: what is wrong"; what() is all of them joined by '\n'.
class ConfigError : public std::runtime_error {
public:
  explicit ConfigError(std::vector<std::string> messages);
  const std::vector<std::string>& messages() const { return messages_; }

private:
  std::vector<std::string> messages_;
};

// Reads and validates a config file. Throws ConfigError (also for an unreadable file).
Config load(const std::string& path);
// Same, from text; `path` is only used in messages.
Config parse(std::string_view text, const std::string& path);
// "250ms", "3s", "5m", "1h", "1d" and sums such as "1m30s". nullopt if malformed.
std::optional<Duration> parseDuration(std::string_view text);

}  // namespace weir::config
