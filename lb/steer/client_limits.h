#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "net/address.h"

extern "C" {
#include "steer.h"
}

namespace weir::steer {

// listeners.NAME.rate_per_client and max_connections_per_client as the steering program reads
// them (all zero without either).
weir_client_limit clientLimitOf(const config::Listener& listener);

// The client's two sketch cells (weirClientCells in bpf/steer.h) under `limit`: its address cut
// to the limit's prefix. nullopt for a peer that is not IPv4 or IPv6.
std::optional<uint32_t> clientCells(const weir_steer_state& state, const weir_client_limit& limit,
                                    const net::SockAddr& peer);

// Whether `peer` may start a new connection now under `limit` (see weirRateAllows in
// bpf/steer.h), counting the start if so. The workers' check where the program does not
// enforce the limit (no BPF): the same cells in the same shared state, so every worker and a
// reload's next generation see one rate per client. now_ns: CLOCK_MONOTONIC.
bool rateAllows(weir_steer_state& state, const weir_client_limit& limit,
                const net::SockAddr& peer, uint64_t now_ns);

// max_connections_per_client: adds a connection to the client's cells unless it would take
// them past `max`; returns whether it did.
bool holdConnection(weir_steer_state& state, uint32_t cells, uint32_t max);
// Takes a connection off the client's cells (never below zero).
void releaseConnection(weir_steer_state& state, uint32_t cells);

// The connections one worker holds against max_connections_per_client, one entry per session
// index (0: none; else the cells, tagged), in an anonymous shared mapping the master made
// before forking it: when the worker dies, the master gives its connections back
// (releaseAll), so the counts are exact again at once. The worker writes an entry before it
// adds to the cells and clears it after it took them off, so the entries always cover what
// the cells hold for it.
class ClientHolds {
public:
  // Room for `sessions` entries (global.max_connections). Throws std::runtime_error.
  explicit ClientHolds(size_t sessions);
  ~ClientHolds();
  ClientHolds(const ClientHolds&) = delete;
  ClientHolds& operator=(const ClientHolds&) = delete;

  size_t size() const { return size_; }
  // The worker: session `index` holds `cells` / holds nothing. Indexes past size() are
  // ignored (the worker then does not count that connection).
  void set(size_t index, uint32_t cells);
  // The cells session `index` holds, or nullopt.
  std::optional<uint32_t> get(size_t index) const;
  void clear(size_t index);
  // The master, once the worker is gone: takes every held connection off `state`'s cells and
  // clears the entries. Only the cell bits of each entry are used (no index is trusted).
  // Returns how many connections it gave back.
  size_t releaseAll(weir_steer_state& state);

private:
  uint64_t* entries_ = nullptr;
  size_t size_ = 0;
};

// CLOCK_MONOTONIC in nanoseconds (the program's bpf_ktime_get_ns).
uint64_t monotonicNs();

}  // namespace weir::steer
