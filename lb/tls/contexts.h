#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"

namespace weir::tls {

// The master's ticket key chains, one per tls-terminate listener, kept across reloads so
// that a reload does not cost clients their resumption: a listener keeps its chain while its
// name and ticket_key_rotation stay the same.
class TicketStore {
public:
  std::shared_ptr<TicketKeys> forListener(const std::string& name, uint32_t rotation_s,
                                          time_t now);

private:
  std::map<std::string, std::shared_ptr<TicketKeys>> chains_;
};

// Every OpenSSL context one generation uses, built by the master from its config before the
// generation's children fork (and inherited by them, read-only in spirit).
struct Contexts {
  std::vector<std::unique_ptr<ServerContext>> servers;  // index = listener; null: not terminate
  // index = pool; null: plain TCP. Mutable: each worker's copy caches backend sessions.
  std::vector<std::unique_ptr<ClientContext>> clients;
};

// Builds every context `cfg` needs. Throws std::runtime_error naming the file and the key
// that names it when a certificate, key or list is unusable.
std::shared_ptr<const Contexts> buildContexts(const config::Config& cfg, TicketStore& tickets,
                                              time_t now);

}  // namespace weir::tls
