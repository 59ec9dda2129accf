#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "master/generations.h"
#include "steer/steering.h"

namespace weir::master {

// A snapshot of what the master knows about itself and its children, in plain
// values: the one place that reads the generations and their shared regions for
// reporting. The Prometheus text, /status.json, the status page and weirctl
// status/backends all render from a View.
//
// Everything taken from shared memory (which every worker can write) is treated
// as untrusted: counts are clamped, states outside the enum read as "unknown",
// times in the future read as age 0, texts end inside their buffers. Sizes,
// counts and keys come from the master's own memory (configs, ShmRegion's
// private layout), never from the region.

struct WorkerView {
  unsigned slot = 0;
  pid_t pid = 0;       // from the master's own records; 0: not running (respawn due)
  int64_t active = 0;  // client connections held
  uint64_t accepted = 0;
  uint64_t rejected_full = 0;  // closed: every eligible backend was at max_connections
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;
  uint64_t tls_failed = 0;
  uint64_t bad_hello = 0;
  uint64_t proxy_untrusted = 0;
  uint64_t bad_proxy_header = 0;
  // Client connections ended, by reason (worker::CloseReason's names, every reason listed).
  std::vector<std::pair<std::string, uint64_t>> closes;
};

struct GenerationView {
  uint64_t number = 0;
  bool draining = false;            // false: the serving generation
  std::vector<WorkerView> workers;  // index = worker slot
};

struct BackendView {
  std::string address;  // "IP:PORT", "[IPv6]:PORT", or "NAME:PORT#K" (config::backendName)
  // A named backend's slot: the address its name gave it ("" while the slot is empty).
  std::string resolved;
  // "up", "down", "draining", "empty" (a named slot without an address; "unknown" if shm
  // holds no valid state)
  std::string state;
  // What an operator set with weirctl: "none", "drain", "maint" ("unknown" if shm holds no
  // valid admin state).
  std::string admin = "unknown";
  uint32_t weight = 0;  // configured
  // What the balancers give it now: `weight`, or less while slow start ramps it.
  double effective_weight = 0;
  int64_t slow_start_remaining_ms = 0;  // 0: not ramping
  int64_t last_check_age_ms = -1;       // -1: never checked
  int64_t last_check_duration_us = -1;  // how long the last check took; -1: never checked
  std::string last_error;               // "" if none
  int64_t active = 0;  // held by every generation that has the backend, draining ones too
  uint64_t total = 0;
  uint64_t failed_connects = 0;
  uint64_t bytes_in = 0;   // received from the backend
  uint64_t bytes_out = 0;  // sent to the backend
};

struct PoolView {
  std::string name;
  std::vector<BackendView> backends;  // config order
};

struct ListenerView {
  std::string name;
  std::vector<std::string> binds;
  std::string pool;
  std::string mode;  // "tcp", "tls-passthrough", "tls-terminate"
  // The newest generation's workers, summed (0 for listeners past shm::kMaxListenerSlots).
  uint64_t accepted = 0;
  int64_t active = 0;
  uint64_t bytes_in = 0;   // received from clients
  uint64_t bytes_out = 0;  // sent to clients
  // Connection attempts the access list refused: SYNs the steering program dropped since the
  // address was opened, plus, where the workers enforce the list, those they closed after
  // accept (newest generation). `access`: "kernel", "workers", or "" without a list.
  uint64_t denied = 0;
  std::string access;
  // New connections refused for rate_per_client (counted like `denied`).
  uint64_t limited = 0;
  // listeners.NAME.announce, and whether the master holds a route to every bind address now
  // (docs/scale-out.md).
  bool announce = false;
  bool announced = false;
};

// What only the master counts, in its own memory.
struct MasterCounters {
  uint64_t reloads = 0;         // reloads that started a new generation
  uint64_t reloads_failed = 0;  // reloads refused (config or file errors, or failing to start)
  // Connections still queued or half-open in the listen queues of addresses a reload removed,
  // when the master stopped waiting for them and closed the addresses (reset).
  uint64_t retired_queue_reset = 0;
};

// Client connections lost to reloads, by cause (docs/metrics.md).
struct ReloadCuts {
  uint64_t drain_timeout = 0;     // still open in a draining generation at drain_timeout
  uint64_t generation_limit = 0;  // open in a draining generation stopped to make room
  uint64_t retired_queue = 0;     // unaccepted in the queue of an address a reload removed
};

struct View {
  pid_t master_pid = 0;
  std::string steering;       // configured: "least-loaded", "round-robin", "hash"
  bool steering_bpf = false;  // the BPF program steers (false: the kernel's hash)
  uint64_t reloads = 0;
  uint64_t reloads_failed = 0;
  ReloadCuts reload_cuts;
  std::vector<GenerationView> generations;  // oldest first; the last one serves unless draining
  // Listeners, pools and backends of the newest generation's configuration and
  // region. Totals include what was carried over at the last reload; traffic a
  // draining generation still moves after the reload counts in that
  // generation's region only.
  std::vector<ListenerView> listeners;
  std::vector<PoolView> pools;
};

// now_ms: CLOCK_MONOTONIC milliseconds (what shm times use).
View gatherView(const Generations& gens, const steer::Steering& steering,
                const MasterCounters& counters, int64_t now_ms);

// One JSON document (UTF-8; bytes that are not valid UTF-8 become U+FFFD).
std::string toJson(const View& view);

// Appends `text` as a JSON string literal, quotes included.
void appendJsonString(std::string& out, std::string_view text);

}  // namespace weir::master
