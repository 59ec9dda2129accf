#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"
#include "net/address.h"

extern "C" {
#include "steer.h"
}

namespace weir::steer {

// listeners.NAME.rate_per_client as the steering program reads it (all zero without one).
weir_client_limit clientLimitOf(const config::Listener& listener);

// Whether `peer` may start a new connection now under `limit` (see weirRateAllows in
// bpf/steer.h), counting the start if so. The workers' check where the program does not
// enforce the limit (no BPF): the same cells in the same shared state, so every worker and a
// reload's next generation see one rate per client. now_ns: CLOCK_MONOTONIC.
bool rateAllows(weir_steer_state& state, const weir_client_limit& limit,
                const net::SockAddr& peer, uint64_t now_ns);

// CLOCK_MONOTONIC in nanoseconds (the program's bpf_ktime_get_ns).
uint64_t monotonicNs();

}  // namespace weir::steer
