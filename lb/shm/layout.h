#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

// The shared-memory layout every weir process of one generation maps: the master creates it
// before forking, workers and the health checker inherit the mapping. Bump kVersion whenever a
// struct below changes its layout (a field that takes up a struct's padding, reading 0 in
// regions of earlier builds, does not).
//
//   Header | WorkerSlot[workers] | BackendSlot[backends] | TrafficRow[1 + workers]
//
// where a TrafficRow is Traffic[backends], padded to a cache line. Row 0 holds the totals
// carried over from the generation before (written by the master before it forks); row 1 + w
// belongs to worker slot w and only that worker writes it. A figure for the whole appliance
// (a backend's active connections) is the sum over the rows, so when a worker dies the master
// zeroes that worker's row and the sum is exact at once.
//
// Every field another process may write while this one reads is a lock-free std::atomic (the
// static_asserts below hold on every platform weir builds for), so nothing on the data path
// takes a lock, and a process that dies mid-update cannot leave a lock held.
//
// Workers can write every byte of the region. The master therefore never takes a size, count
// or offset from it: the layout numbers in the Header are a copy of what the master keeps in
// its own memory (ShmRegion), for readers outside the process tree and for a binary upgrade,
// which checks them against the mapping before use.
namespace weir::shm {

inline constexpr uint64_t kMagic = 0x324d485352494557;  // "WEIRSHM2" read as little-endian
inline constexpr uint32_t kVersion = 7;
inline constexpr size_t kPoolKeyLen = 64;     // config::kMaxPoolName + NUL
inline constexpr size_t kAddressKeyLen = 48;  // "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
inline constexpr size_t kErrorWords = 16;     // last error text: 127 bytes + NUL, as 8-byte words
inline constexpr size_t kErrorTextLen = kErrorWords * sizeof(uint64_t);
inline constexpr uint32_t kMaxWorkerSlots = 64;       // = config::kMaxWorkers
inline constexpr uint32_t kMaxBackendSlots = 1 << 20;  // far above any real config
// Per-worker listener counters: the first kMaxListenerSlots listeners (config order, by name)
// are counted one by one; BPF steering allows no more listen addresses (WEIR_MAX_GROUPS).
inline constexpr uint32_t kMaxListenerSlots = 64;
// Per-worker close reason counters, indexed by worker::CloseReason (room to grow).
inline constexpr uint32_t kCloseReasonSlots = 24;

enum class BackendState : uint32_t {
  Up = 0,        // eligible for new connections
  Down = 1,      // failed checks (or failed connects); no new connections
  Draining = 2,  // being removed: existing connections finish, no new ones
  // A named backend's slot without an address (the name has fewer addresses than slots, or
  // its address went away: existing connections finish); the checker fills it (-> Up).
  Empty = 3,
};

// What an operator asked for (weirctl), apart from what health checks found: the master keeps
// it in its own memory and writes it here; nothing else writes it.
enum class AdminState : uint32_t {
  None = 0,   // health decides
  Drain = 1,  // no new connections; existing ones continue; health checks continue
  Maint = 2,  // no new connections; health checks paused
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<int32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);

struct alignas(64) Header {
  // Written once by the master before any other process maps the region; never read back by
  // the process that wrote them (see above).
  uint64_t magic;
  uint32_t version;
  uint32_t worker_slots;
  uint64_t size;  // bytes mapped, header included
  uint32_t backend_slots;
  uint32_t reserved;
  // Bumped on every backend state change, so that a worker rebuilds what it derives from the
  // states only when something changed.
  std::atomic<uint64_t> health_generation;
  // 1 while a named backend has never had an address in this region and the health checker
  // has not yet had a first answer (or failure) for every backend name: workers hold back
  // accepting on the listeners that serve such a pool, for a few seconds at most. Set by the
  // master before forking (first start, a reload adding a name, binary upgrade), cleared by
  // the checker. It sits in what was padding: a region of an earlier build reads 0 here, so
  // the layout version stays.
  std::atomic<uint32_t> names_unanswered;
};

// One backend of one pool, keyed by (pool name, "IP:PORT") so that a binary upgrade can find it
// again. Times are CLOCK_MONOTONIC milliseconds (one clock for every process on the machine).
struct alignas(64) BackendSlot {
  // The key: written by the master before any child is forked, never changed after. The
  // master itself keeps its own copy of every key and never reads these back.
  char pool[kPoolKeyLen];
  char address[kAddressKeyLen];

  // Health: the checker writes the check counters; workers write passive_failures and may
  // take the backend down. State changes are compare-and-swap, so each is made (and logged)
  // by exactly one process.
  std::atomic<uint32_t> state;             // BackendState
  std::atomic<uint32_t> successes;         // consecutive passed checks
  std::atomic<uint32_t> failures;          // consecutive failed checks
  std::atomic<uint32_t> passive_failures;  // consecutive failed connects from traffic
  std::atomic<int64_t> last_check_ms;      // when the last check ended; 0 = never checked
  std::atomic<int64_t> changed_ms;         // when the state last changed; 0 = never
  std::atomic<int64_t> check_duration_us;  // how long the last check took (the checker)
  // Last error text, NUL-terminated, behind a sequence counter (see error_text.h).
  std::atomic<uint32_t> error_seq;
  // AdminState, written by the master only (with a health_generation bump); any other value
  // read here means "not eligible".
  std::atomic<uint32_t> admin;
  std::atomic<uint64_t> error_text[kErrorWords];
  // A named backend's slot: the address the health checker (its only writer, see
  // resolved_address.h) put in it, behind a sequence counter as the error text is. Zero for an
  // "IP:PORT" backend, whose address is in the config.
  std::atomic<uint32_t> resolved_seq;
  std::atomic<uint64_t> resolved[3];

  // Held (1 + the holder's traffic row; 0 = free) for the few instructions in which a worker
  // checks the backend's active count and adds its reservation, so that two workers never
  // both take a count that only one of them may (PoolSlots::reserve). On a line of its own:
  // every reservation writes it.
  alignas(64) std::atomic<uint32_t> reserving;
};

// One backend's traffic as one writer (a worker, or row 0: the carried totals) counts it.
struct Traffic {
  std::atomic<int64_t> active;            // reserved by a pick until the connection ends
  std::atomic<uint64_t> total;            // connections established
  std::atomic<uint64_t> failed_connects;  // connect attempts that failed or timed out
  std::atomic<uint64_t> bytes_in;         // bytes received from the backend
  std::atomic<uint64_t> bytes_out;        // bytes sent to the backend
};

// One listener's clients as one worker counts them. Bytes are counted when a connection ends.
struct ListenerTraffic {
  std::atomic<uint64_t> accepted;   // client connections accepted
  std::atomic<int64_t> active;      // of which still open
  std::atomic<uint64_t> bytes_in;   // bytes received from clients
  std::atomic<uint64_t> bytes_out;  // bytes sent to clients
  // Clients the access list refused after accept (where the steering program does not refuse
  // them in the kernel; those are counted in its map).
  std::atomic<uint64_t> denied;
  // Clients refused after accept for rate_per_client (where the program does not refuse them).
  std::atomic<uint64_t> limited;
};

struct alignas(64) WorkerSlot {
  std::atomic<int32_t> pid;              // 0: no worker in this slot
  std::atomic<int64_t> active;           // client connections the worker holds
  std::atomic<uint64_t> accepted;        // client connections accepted, ever
  std::atomic<uint64_t> rejected_full;   // clients closed: every eligible backend was full
  std::atomic<uint64_t> tls_handshakes;  // tls-terminate: handshakes completed (resumed too)
  std::atomic<uint64_t> tls_resumed;     // of which resumed a session (tickets)
  std::atomic<uint64_t> tls_failed;      // tls-terminate: handshakes failed or timed out
  std::atomic<uint64_t> bad_hello;       // tls-passthrough: no valid ClientHello in time
  // accept_proxy_protocol listeners: clients refused because their address is outside
  // `trusted`, and clients closed for a malformed, partial or missing PROXY header.
  std::atomic<uint64_t> proxy_untrusted;
  std::atomic<uint64_t> bad_proxy_header;
  // Client connections ended, by worker::CloseReason.
  alignas(64) std::atomic<uint64_t> closes[kCloseReasonSlots];
  // Listener l's clients (l < kMaxListenerSlots, index into Config::listeners).
  alignas(64) ListenerTraffic listeners[kMaxListenerSlots];
};

static_assert(sizeof(Header) == 64);
static_assert(sizeof(WorkerSlot) == 128 + 192 + kMaxListenerSlots * 48);
static_assert(sizeof(ListenerTraffic) == 48);
static_assert(sizeof(BackendSlot) % 64 == 0);
static_assert(sizeof(Traffic) == 40);

}  // namespace weir::shm
