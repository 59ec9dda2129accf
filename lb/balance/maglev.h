#pragma once

#include "balance/balancer.h"
#include "balance/maglev_table.h"

namespace weir::balance {

// balance = "maglev": consistent hashing on the client's IP, so a client keeps its backend
// across connections and across workers (every worker builds the same tables from the same
// config).
//
// The tables (one over the primaries, one over the backups) are built once from the config,
// health aside. A client whose backend cannot take it (down, draining, full, or already tried
// by this client) walks on along the table to the next position whose backend can. So when a
// backend goes down only its own clients move, spread over the others by weight, and when it
// comes back exactly those clients return; no other client is ever remapped by a health
// change. (Rebuilding the table without the backend, as the Maglev paper does for membership
// changes, would also move about 2% of the other clients.) Nothing is rebuilt on the data
// path.
//
// Slow start: a ramping backend keeps its positions, but admits only the clients whose ticket
// (a second hash of the client's address, uniform over [0, full weight)) is below its
// effective weight; the others walk on, to the backend they would have without it (where
// they went while it was down). As the ramp grows it admits a growing share of its own
// clients, and a client once admitted stays admitted to the end of the ramp, so each moves
// back once, at a moment spread over the ramp, rather than all of them when it comes up.
class Maglev : public Balancer {
public:
  Maglev(const config::Pool& pool, shm::PoolSlots slots);

protected:
  int choose(const PickInput& in) override;

private:
  MaglevTable primaries_;
  MaglevTable backups_;
};

}  // namespace weir::balance
