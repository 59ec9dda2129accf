#include "tls/contexts.h"

namespace weir::tls {

std::shared_ptr<TicketKeys> TicketStore::forListener(const std::string& name,
                                                     uint32_t rotation_s, time_t now) {
  auto& chain = chains_[name];
  if (!chain || chain->rotation() != rotation_s) {
    chain = std::make_shared<TicketKeys>(rotation_s, now);
  }
  chain->advance(now);
  return chain;
}

std::shared_ptr<const Contexts> buildContexts(const config::Config& cfg, TicketStore& tickets,
                                              time_t now) {
  auto out = std::make_shared<Contexts>();
  out->servers.resize(cfg.listeners.size());
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    const config::Listener& l = cfg.listeners[i];
    if (l.mode != config::ListenerMode::TlsTerminate || !l.tls) {
      continue;
    }
    std::shared_ptr<TicketKeys> keys;
    if (l.tls->session_tickets) {
      const auto rotation = static_cast<uint32_t>(l.tls->ticket_key_rotation.count() / 1000);
      keys = tickets.forListener(l.name, rotation, now);
    }
    out->servers[i] = std::make_unique<ServerContext>(*l.tls, std::move(keys));
  }
  out->clients.resize(cfg.pools.size());
  for (size_t i = 0; i < cfg.pools.size(); ++i) {
    if (cfg.pools[i].tls) {
      out->clients[i] = std::make_unique<ClientContext>(ClientContext::build(*cfg.pools[i].tls));
    }
  }
  return out;
}

}  // namespace weir::tls
