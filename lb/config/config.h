#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "net/access_list.h"
#include "net/address.h"
#include "net/cidr.h"

namespace weir::config {

using Duration = std::chrono::milliseconds;

// How the sk_reuseport program spreads new connections across worker slots.
enum class Steering { LeastLoaded, RoundRobin, Hash };
// How a worker picks a backend inside a pool (see lb/balance).
enum class Balance { RoundRobin, LeastConn, Maglev, RandomTwo };
// What an active health check does (see lb/health).
enum class HealthKind { Tcp, SendExpect, Http, Tls };
// What a listener does with the bytes of a new connection (see docs/architecture.md, TLS).
enum class ListenerMode {
  Tcp,             // splice the bytes to a backend of `pool`, untouched
  TlsPassthrough,  // peek at the ClientHello, route by its SNI, then splice the bytes untouched
  TlsTerminate,    // handshake with the client (OpenSSL), plaintext to the backend
};
enum class TlsVersion { V1_2, V1_3 };
// What a pool sends to a backend before the first byte of a connection (lb/proxy).
enum class ProxyProtocol { Off, V1, V2 };
// The source address of the connections a pool makes to its backends.
enum class SourceMode {
  Local,   // the kernel picks one of this host's addresses (routing)
  Client,  // the client's own address (IP_TRANSPARENT; needs weir-netsetup's return path)
};

inline constexpr unsigned kMaxWorkers = 64;  // must equal WEIR_MAX_WORKERS in bpf/steer.h
inline constexpr size_t kMaxPoolName = 63;    // pool names key backends in shared memory
// global.control_socket: sun_path holds 107 bytes; the master binds PATH.PID first, then
// renames it over PATH (see lb/master/control_socket.h).
inline constexpr size_t kMaxControlSocketPath = 96;

// Upper bounds of the duration keys. A longer timeout or interval is a typo ("1000d" for
// "1000ms") rather than a wish, and the bound keeps deadlines (now + duration) far from int64
// overflow. idle_timeout allows a week: long-lived tunnels (database pools, websockets, MQTT)
// sit idle for hours, where HAProxy users set `timeout tunnel 1h`..`24h` and beyond.
inline constexpr Duration kMaxDuration{86400000};          // 1d: timeouts, intervals, drain
inline constexpr Duration kMaxIdleTimeout{7 * 86400000};  // 7d: pools.NAME.idle_timeout

// global.worker_rlimit_core = "unlimited" (RLIM_INFINITY).
inline constexpr uint64_t kUnlimitedCore = ~uint64_t{0};

enum class EventEngine { Epoll, IoUring };

struct Global {
  unsigned workers = 1;            // resolved: "auto" becomes the number of online CPUs (capped)
  bool workers_auto = true;
  std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
  std::string error_log = "stderr";
  std::string access_log = "off";  // off|stderr|PATH
  std::string pid_file;            // empty: no pid file
  // The master's unix control socket (weirctl), an absolute path; empty: none.
  std::string control_socket;
  uint32_t max_connections = 10000;  // per worker
  Steering steering = Steering::LeastLoaded;
  // How long a graceful stop (SIGQUIT) or an old generation after a reload or upgrade waits
  // for connections to end before closing them.
  Duration drain_timeout{30000};
  // Credentials the workers and the health checker drop to after the master has bound the
  // sockets and loaded BPF; the master stays as started. The names are resolved when the
  // config is read (an unknown name is a config error); a group left empty with a user set
  // means the user's primary group. Without `user`, a master started as root (euid 0) runs
  // its children as "weir" if that user exists, else "nobody" (as nginx does; user_default is
  // then set and `user` holds the name chosen); any other master keeps its own uid. Children
  // run as root only with an explicit user = "root" (or "0").
  std::string user;
  std::string group;
  std::optional<uint32_t> uid;  // resolved `user` (nullopt: keep)
  std::optional<uint32_t> gid;  // resolved `group`, or the user's primary group
  bool user_default = false;    // `user` was not in the file: the default above chose it
  bool worker_cpu_affinity = false;  // "auto": worker i runs on the i-th allowed CPU
  std::optional<uint64_t> worker_rlimit_nofile;  // RLIMIT_NOFILE of the workers; nullopt: keep
  // As nginx's directives of the same names, for every child (workers and health checker):
  // the nice value they run at (nullopt: the master's), their RLIMIT_CORE in bytes
  // (kUnlimitedCore: no limit; nullopt: the master's) and the directory they work in, where
  // a crashing child leaves its core (empty: the master's). A directory that does not exist
  // is a config error.
  std::optional<int> worker_priority;
  std::optional<uint64_t> worker_rlimit_core;
  std::string working_directory;
  // Transparent mode (listeners.NAME.transparent, pools.NAME.source = "client"): the firewall
  // mark weir-netsetup gives packets that belong to weir's transparent sockets, and the
  // routing table its policy rule sends them to (a "local" default route: deliver here).
  uint32_t transparent_mark = 0x7765;   // nonzero
  uint32_t transparent_table = 7765;    // 1..2^31-1, not 253 (default), 254 (main), 255 (local)
  // The master's HTTP listener for Prometheus (/metrics), /status.json and the status page
  // (/); nullopt: off.
  std::optional<net::SockAddr> metrics;
  // What workers wait on for socket readiness (lb/engine). io_uring falls back to epoll, with
  // a logged reason, where the kernel does not offer it.
  EventEngine event_engine = EventEngine::Epoll;
  // Scale-out behind ECMP (listeners.NAME.announce): the master puts a host route to each
  // announced VIP in this routing table, with this route protocol number, for a routing daemon
  // (BIRD, FRR) to announce. On a graceful stop the routes go first and the workers keep
  // accepting for withdraw_delay while the routers converge; then the drain begins.
  uint32_t announce_table = 4747;   // 1..2^31-1, not 253..255, not transparent_table
  uint32_t announce_protocol = 87;  // 5..255 (0..4 are the kernel's own)
  Duration withdraw_delay{5000};
  // Backends by name: the nameservers the health checker asks (empty: /etc/resolv.conf, and
  // /etc/hosts first, as libc does), and how often it asks again: every resolve_interval, or
  // when the answer's smallest TTL runs out if that is sooner (but at most once a second).
  std::vector<net::SockAddr> resolvers;
  Duration resolve_interval{30000};
};
inline constexpr Duration kMinResolveInterval{1000};

// A config value that names a file, with where the config wrote it, so that the messages of
// whoever reads the file later ("weir -t", a reload) can point at the key:
// where = "FILE:LINE:COL: listeners.secure.tls.certificates[0].key".
struct FileRef {
  std::string path;
  std::string where;
  bool empty() const { return path.empty(); }
};

// One certificate (PEM; the leaf first, then its chain) and its private key (PEM).
struct CertKey {
  FileRef cert;
  FileRef key;
};

// [listeners.NAME.tls], for mode = "tls-terminate". Defaults are what an auditor signs off:
// TLS 1.2 and 1.3 only, forward-secret AEAD suites only, no renegotiation, no compression,
// the server's cipher preference. Anything weaker must be written out.
struct ServerTls {
  std::vector<CertKey> certificates;  // at least one; chosen by SNI, the first is the default
  TlsVersion min_version = TlsVersion::V1_2;
  std::string ciphers;       // TLS 1.2 suites, OpenSSL syntax; empty: kDefaultCiphers
  std::string ciphersuites;  // TLS 1.3 suites; empty: kDefaultCiphersuites
  std::string groups;        // key exchange groups; empty: kDefaultGroups
  std::vector<std::string> alpn;  // protocols offered, in server preference order
  Duration handshake_timeout{10000};
  bool session_tickets = true;          // stateless resumption, keys shared by all workers
  Duration ticket_key_rotation{3600000};  // a ticket key encrypts this long, decrypts twice it
};

inline constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kDefaultCiphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr const char* kDefaultGroups = "X25519:P-256:P-384";

// [listeners.NAME.sni]: one server name -> pool route. `name` is lower case, either exact
// ("api.example.com") or a wildcard of one leftmost label ("*.example.com" matches
// "a.example.com", not "example.com" nor "a.b.example.com"). Exact names win over wildcards.
struct SniRoute {
  std::string name;
  std::string pool;
  size_t pool_index = 0;  // index into Config::pools
};

// [pools.NAME.tls]: weir speaks TLS to the pool's backends.
struct UpstreamTls {
  bool verify = true;      // verify the backend's chain (and name, when sni is set)
  FileRef ca;              // PEM bundle of trusted CAs; empty: the system's default store
  std::string sni;         // server name sent and verified; empty: none sent
  std::optional<CertKey> client_certificate;  // presented when a backend asks
  TlsVersion min_version = TlsVersion::V1_2;
  std::string ciphers;       // empty: kDefaultCiphers
  std::string ciphersuites;  // empty: kDefaultCiphersuites
  std::vector<std::string> alpn;  // offered to the backend; empty: none
};

struct Backend {
  net::SockAddr address;  // unset (family AF_UNSPEC) in a named backend's slot
  uint32_t weight = 1;
  bool backup = false;  // used while no primary is up, or once every primary failed a client
  uint32_t max_connections = 0;  // across all workers; 0 = unlimited
  // A backend written as "NAME:PORT" becomes max_addresses entries of Pool::backends, its
  // slots, all with the same settings: `host` is NAME (empty for an "IP:PORT" backend) and
  // this entry is slot `name_slot` (0-based) of `name_slots`. The health checker resolves the
  // name and puts one of its addresses in each slot it needs (shm); an empty slot takes no
  // connections.
  std::string host;
  uint16_t port = 0;
  uint32_t name_slot = 0;
  uint32_t name_slots = 0;
  std::string where;  // a named backend: "FILE:LINE:COL: pools.P.backends[i].address"
  bool named() const { return !host.empty(); }
};

// How logs, weirctl, /status.json and the metrics name a backend: "IP:PORT", or "NAME:PORT#K"
// for slot K (1-based) of a named backend.
std::string backendName(const Backend& backend);

// Where a named backend's slots are in a pool's backends: `first` (its slot 0) and `count`
// consecutive entries.
struct NameSlots {
  size_t first = 0;
  uint32_t count = 0;
};
// The named backends of `backends` (a Pool's), in order; counts never run past the end.
std::vector<NameSlots> nameSlots(const std::vector<Backend>& backends);
inline constexpr uint32_t kDefaultMaxAddresses = 16;
inline constexpr uint32_t kMaxMaxAddresses = 256;

// [pools.NAME.health]: one active check per backend per interval, run by the health checker.
struct HealthCheck {
  HealthKind kind = HealthKind::Tcp;
  Duration interval{2000};
  Duration timeout{1000};  // < interval; default 1s, or interval / 2 if that is shorter
  uint32_t rise = 2;       // consecutive passed checks that bring a down backend up
  uint32_t fall = 3;       // consecutive failed checks that take an up backend down
  uint16_t port = 0;       // 0: the backend's own port
  std::string send;        // send-expect: bytes sent after connecting (escapes decoded)
  std::string expect;      // send-expect: the reply must contain these bytes (escapes decoded)
  std::string path = "/";  // http: request path
  std::string host;        // http: Host header; empty = the probed address, "IP:PORT"
  uint16_t status_min = 200;  // http: a status in [status_min, status_max] passes
  uint16_t status_max = 200;
};

struct Pool {
  std::string name;
  Balance balance = Balance::RoundRobin;
  Duration connect_timeout{5000};
  Duration idle_timeout{600000};
  uint32_t retries = 2;  // extra attempts after the first failed connect
  std::vector<Backend> backends;
  std::optional<HealthCheck> health;  // nullopt: passive health only
  // Consecutive failed connects from traffic that take a backend down; 0 = never. Defaults to
  // health->fall, or 3 in a pool without [health].
  uint32_t passive_fall = 3;
  // Pools without [health]: a backend taken down by traffic is tried again after this long.
  Duration passive_holddown{10000};
  // A backend that comes back up (health checks, or the end of a passive hold-down) or that a
  // reload added has its weight ramped from near 0 to full over this long; 0 = off.
  Duration slow_start{0};
  std::optional<UpstreamTls> tls;  // nullopt: plain TCP to the backends
  SourceMode source = SourceMode::Local;
  ProxyProtocol proxy_protocol = ProxyProtocol::Off;  // header sent before any byte (and TLS)
  // TCP Fast Open to the backends: the client's first bytes (after the PROXY header, if any)
  // ride in the SYN. Plain TCP pools only (a [tls] pool has no bytes before its handshake).
  // TFO data may be delivered twice to the backend, so only for replay-tolerant protocols.
  bool tcp_fastopen = false;
};

// A rate of new connections: `count` per `period` (listeners.NAME.rate_per_client).
struct Rate {
  uint32_t count = 0;
  Duration period{1000};
  bool operator==(const Rate&) const = default;
};
inline constexpr uint32_t kMaxRateCount = 1000000;

struct Listener {
  std::string name;
  std::vector<net::SockAddr> binds;
  std::string pool;
  size_t pool_index = 0;  // index into Config::pools; the default route of TLS modes
  int backlog = 511;
  ListenerMode mode = ListenerMode::Tcp;
  // tls-passthrough: how long a client may take to send its whole ClientHello. (tls-terminate
  // bounds the whole handshake with ServerTls::handshake_timeout.)
  Duration client_hello_timeout{5000};
  std::vector<SniRoute> sni;     // TLS modes; sorted by name
  std::optional<ServerTls> tls;  // set exactly when mode == TlsTerminate
  // TPROXY interception: the listening sockets get IP_TRANSPARENT, so a bind address may be
  // one this host does not own (a VIP routed through it); weir-netsetup installs the rules.
  bool transparent = false;
  // TCP_DEFER_ACCEPT: a worker wakes for a connection only once its first bytes arrived. For
  // protocols where the client speaks first (HTTP, TLS, PROXY headers); a server-first
  // client (SMTP, MySQL) would wait seconds for its greeting.
  bool defer_accept = false;
  // The client first sends a PROXY protocol header (v1 or v2, told apart by its first bytes);
  // its source address stands for the client from then on (logs, hashing, source = "client").
  // Only peers inside `trusted` may send one (non-empty when accepting); a connection from
  // elsewhere, with a malformed header or with none within proxy_protocol_timeout is closed.
  bool accept_proxy_protocol = false;
  std::vector<net::Cidr> trusted;
  Duration proxy_protocol_timeout{5000};
  // The master announces each bind address as a host route in global.announce_table while
  // the workers serve and the pool has a backend that can take connections (see Global).
  bool announce = false;
  // Who may connect (see net::AccessList): the prefixes of `allow` and `deny` as written,
  // allow_file / deny_file (one prefix per line), and the list all four make. parse() builds
  // `access` from the arrays alone, load() again with the files' prefixes; nullptr when the
  // listener has no list (everyone may connect).
  std::vector<net::Cidr> allow;
  std::vector<net::Cidr> deny;
  std::optional<FileRef> allow_file;
  std::optional<FileRef> deny_file;
  std::shared_ptr<const net::AccessList> access;
  // New connections each client may start (a token bucket: `count` at once, then `count` per
  // period), refused in the kernel like a denied client. A client is its address cut to
  // per_client_ipv4_prefix / per_client_ipv6_prefix bits, counted per listener.
  std::optional<Rate> rate_per_client;
  // Connections one client may hold at once (0: no limit); a client at it is refused in the
  // kernel, and exactly at accept.
  uint32_t max_connections_per_client = 0;
  unsigned per_client_ipv4_prefix = 32;
  unsigned per_client_ipv6_prefix = 64;
};

// Prefixes one listener's access list may hold, files included (the kernel's trie is sized
// for it: bpf/steer.h WEIR_ACL_MAX_PREFIXES).
inline constexpr size_t kMaxAccessPrefixes = size_t{1} << 20;

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
// `euid` is the effective uid of the master that will run it (this process's by default):
// it decides the children's default user (see Global::user).
Config load(const std::string& path);
Config load(const std::string& path, uint32_t euid);
// Same, from text; `path` is only used in messages.
Config parse(std::string_view text, const std::string& path);
Config parse(std::string_view text, const std::string& path, uint32_t euid);
// global.control_socket of the config file at `path`, reading that key only, so that weirctl
// finds the master's socket even while the rest of the file has problems ("" when the key is
// absent). Throws ConfigError when the file cannot be read, is not TOML, or the key's value
// is not valid.
std::string controlSocketOf(const std::string& path);
// "250ms", "3s", "5m", "1h", "1d" and sums such as "1m30s". nullopt if malformed.
std::optional<Duration> parseDuration(std::string_view text);
// The inverse, in the largest units that are exact: 90000ms -> "1m30s", 250ms -> "250ms".
std::string formatDuration(Duration d);
// Parses a rate "N/s" or "N/m": N decimal 1..kMaxRateCount, no sign, spaces or leading zeros.
std::optional<Rate> parseRate(std::string_view text);
// "N/s" or "N/m"; parseRate(formatRate(r)) == r.
std::string formatRate(const Rate& rate);

}  // namespace weir::config
