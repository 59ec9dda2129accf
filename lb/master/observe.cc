// The metrics listener (global.metrics): Prometheus text on /metrics, the View as JSON on
// /status.json and the status page on /. Served by the master from its own records and the
// shared regions (master/view.h); workers never answer these.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "master/metrics.h"
#include "master/status_page.h"
#include "master/supervisor.h"
#include "worker/worker.h"

namespace weir::master {

// At start a listener that cannot be opened is fatal, like a listen address; on a reload the
// old one (if any) keeps serving and the error is logged.
void Supervisor::openMetrics(const config::Global& next, bool at_start) {
  if (!next.metrics) {
    if (http_) {
      spdlog::info("metrics listener {} closed", http_->address().toString());
      http_.reset();
    }
    return;
  }
  auto server = HttpServer::listen(*next.metrics,
                                   [this](const std::string& path) { return serveHttp(path); });
  if (!server) {
    if (at_start) {
      throw std::runtime_error(server.error().message());
    }
    spdlog::error("{}; {}", server.error().message(),
                  http_ ? "the metrics listener stays on " + http_->address().toString()
                        : std::string("no metrics listener"));
    return;
  }
  http_ = std::move(*server);
  spdlog::info("metrics listener on http://{}/ (/metrics, /status.json)",
               http_->address().toString());
}

View Supervisor::view() const {
  View v = gatherView(*gens_, *steering_, counters_, worker::monotonicMs());
  for (ListenerView& lv : v.listeners) {
    for (const config::Listener& l : cfg_->listeners) {
      if (l.name != lv.name) {
        continue;
      }
      bool in_kernel = true;
      for (const ListenGroup& g : sockets_->groups()) {
        if (std::find(l.binds.begin(), l.binds.end(), g.addr) == l.binds.end()) {
          continue;
        }
        in_kernel = in_kernel && g.access_in_kernel;
        if (g.known_id) {
          lv.denied += steering_->denied(g.steer_id);
        }
      }
      if (l.access) {
        lv.access = in_kernel ? "kernel" : "workers";
      }
      if (!l.announce) {
        continue;
      }
      lv.announce = true;
      lv.announced = !l.binds.empty();
      for (const net::SockAddr& bind : l.binds) {
        lv.announced = lv.announced && announcer_.holds(net::HostAddr::of(bind));
      }
    }
  }
  return v;
}

HttpResponse Supervisor::serveHttp(const std::string& path) const {
  if (path == "/metrics") {
    return {200, kMetricsContentType, renderMetrics(view())};
  }
  if (path == "/status.json") {
    return {200, "application/json", toJson(view())};
  }
  if (path == "/") {
    return {200, "text/html; charset=utf-8", std::string(kStatusPage)};
  }
  return {404, "text/plain; charset=utf-8", "404 Not Found\n"};
}

}  // namespace weir::master
