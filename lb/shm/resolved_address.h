#pragma once

#include <optional>

#include "net/address.h"
#include "shm/layout.h"

namespace weir::shm {

// The address in a named backend's slot (BackendSlot::resolved): written by the health checker
// only (and by the master into a region no other process uses yet), read by the workers before
// each connect and by the master for display.
//
// resolved[0] holds the family and the port, resolved[1..2] the address bytes (the first 4 for
// IPv4). A reader that keeps meeting a write in progress, or reads a family that is no family
// (any process can write the region), gets nullopt: no address, as for an empty slot.

// Stores `address` (IPv4 or IPv6), or clears the slot's address (nullopt).
void writeResolved(BackendSlot& slot, const std::optional<net::SockAddr>& address);

std::optional<net::SockAddr> readResolved(const BackendSlot& slot);

}  // namespace weir::shm
