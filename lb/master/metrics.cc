#include "master/metrics.h"

#include <charconv>
#include <initializer_list>
#include <utility>

namespace weir::master {
namespace {

using Labels = std::initializer_list<std::pair<const char*, std::string_view>>;

// A label value: backslash, double quote and line feed escaped.
void appendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

class Writer {
public:
  // HELP and TYPE of the metric whose samples follow.
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, Labels labels, double value) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round trip
    emit(name, labels, std::string(buf, ec == std::errc() ? end : buf));
  }
  void sample(const char* name, Labels labels, uint64_t value) {
    emit(name, labels, std::to_string(value));
  }
  void sample(const char* name, Labels labels, int64_t value) {
    emit(name, labels, std::to_string(value));
  }
  std::string take() { return std::move(out_); }

private:
  void emit(const char* name, Labels labels, const std::string& value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [key, v] : labels) {
        if (!first) {
          out_ += ',';
        }
        first = false;
        out_ += key;
        out_ += "=\"";
        appendLabelValue(out_, v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string out_;
};

const GenerationView* serving(const View& view) {
  return view.generations.empty() ? nullptr : &view.generations.back();
}

void masterMetrics(Writer& w, const View& view) {
  w.family("weir_reloads_total", "counter",
           "Reloads (SIGHUP) since the master started, by result: ok started a new generation, "
           "failed kept the previous configuration.");
  w.sample("weir_reloads_total", {{"result", "ok"}}, view.reloads);
  w.sample("weir_reloads_total", {{"result", "failed"}}, view.reloads_failed);
  w.family("weir_reload_cut_connections_total", "counter",
           "Client connections a reload cut off, by cause: drain_timeout (open in a draining "
           "generation when drain_timeout ended), generation_limit (open in a draining "
           "generation stopped to make room), retired_queue (unaccepted in the queue of an "
           "address a reload removed). See docs/metrics.md.");
  w.sample("weir_reload_cut_connections_total", {{"cause", "drain_timeout"}},
           view.reload_cuts.drain_timeout);
  w.sample("weir_reload_cut_connections_total", {{"cause", "generation_limit"}},
           view.reload_cuts.generation_limit);
  w.sample("weir_reload_cut_connections_total", {{"cause", "retired_queue"}},
           view.reload_cuts.retired_queue);
  w.family("weir_generations", "gauge", "Generations of workers running, by state.");
  uint64_t draining = 0;
  for (const auto& g : view.generations) {
    draining += g.draining ? 1 : 0;
  }
  const GenerationView* gen = serving(view);
  w.sample("weir_generations", {{"state", "serving"}},
           uint64_t{gen != nullptr && !gen->draining ? 1u : 0u});
  w.sample("weir_generations", {{"state", "draining"}}, draining);
  w.family("weir_steering_bpf", "gauge",
           "1 when the BPF program steers new connections, 0 when the kernel's hash does.");
  w.sample("weir_steering_bpf", {}, uint64_t{view.steering_bpf ? 1u : 0u});
}

void workerMetrics(Writer& w, const View& view) {
  const GenerationView* gen = serving(view);
  if (gen == nullptr) {
    return;
  }
  struct Counter {
    const char* name;
    const char* type;
    const char* help;
    uint64_t WorkerView::*field;
  };
  w.family("weir_worker_active_connections", "gauge",
           "Client connections a worker of the newest generation holds, by worker slot.");
  for (const auto& wk : gen->workers) {
    w.sample("weir_worker_active_connections", {{"slot", std::to_string(wk.slot)}}, wk.active);
  }
  w.family("weir_worker_up", "gauge", "1 while the worker process of the slot runs.");
  for (const auto& wk : gen->workers) {
    w.sample("weir_worker_up", {{"slot", std::to_string(wk.slot)}}, uint64_t{wk.pid > 0 ? 1u : 0u});
  }
  const Counter counters[] = {
      {"weir_worker_accepted_total", "counter",
       "Client connections accepted by the worker of the slot (restarts at 0 with each "
       "generation).",
       &WorkerView::accepted},
      {"weir_worker_rejected_full_total", "counter",
       "Clients closed because every eligible backend was at max_connections.",
       &WorkerView::rejected_full},
      {"weir_worker_bad_client_hello_total", "counter",
       "tls-passthrough clients that sent no valid ClientHello in time.", &WorkerView::bad_hello},
      {"weir_worker_proxy_untrusted_total", "counter",
       "Clients of accept_proxy_protocol listeners refused: address outside trusted.",
       &WorkerView::proxy_untrusted},
      {"weir_worker_bad_proxy_header_total", "counter",
       "Clients closed for a malformed, partial or missing PROXY header.",
       &WorkerView::bad_proxy_header},
  };
  for (const auto& c : counters) {
    w.family(c.name, c.type, c.help);
    for (const auto& wk : gen->workers) {
      w.sample(c.name, {{"slot", std::to_string(wk.slot)}}, wk.*c.field);
    }
  }
  w.family("weir_tls_handshakes_total", "counter",
           "tls-terminate handshakes with clients, by worker slot and result (resumed: "
           "completed by resuming a session; ok counts those too).");
  for (const auto& wk : gen->workers) {
    const std::string slot = std::to_string(wk.slot);
    w.sample("weir_tls_handshakes_total", {{"slot", slot}, {"result", "ok"}}, wk.tls_handshakes);
    w.sample("weir_tls_handshakes_total", {{"slot", slot}, {"result", "resumed"}}, wk.tls_resumed);
    w.sample("weir_tls_handshakes_total", {{"slot", slot}, {"result", "failed"}}, wk.tls_failed);
  }
}

void backendMetrics(Writer& w, const View& view) {
  struct Counter {
    const char* name;
    const char* help;
    uint64_t BackendView::*field;
  };
  w.family("weir_backend_up", "gauge", "1 while the backend takes new connections (state up).");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      w.sample("weir_backend_up", {{"pool", p.name}, {"backend", b.address}},
               uint64_t{b.state == "up" ? 1u : 0u});
    }
  }
  w.family("weir_backend_state", "gauge",
           "1 for the backend's current health state (up, down, draining, empty), 0 for the "
           "others.");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      for (const char* state : {"up", "down", "draining", "empty"}) {
        w.sample("weir_backend_state", {{"pool", p.name}, {"backend", b.address}, {"state", state}},
                 uint64_t{b.state == state ? 1u : 0u});
      }
    }
  }
  w.family("weir_backend_resolved_info", "gauge",
           "1 for the address a named backend's slot holds (backend NAME:PORT#K).");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      if (!b.resolved.empty()) {
        w.sample("weir_backend_resolved_info",
                 {{"pool", p.name}, {"backend", b.address}, {"address", b.resolved}}, uint64_t{1});
      }
    }
  }
  w.family("weir_backend_active_connections", "gauge",
           "Connections to the backend, all workers of the newest generation.");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      w.sample("weir_backend_active_connections", {{"pool", p.name}, {"backend", b.address}},
               b.active);
    }
  }
  w.family("weir_backend_effective_weight", "gauge",
           "The weight the balancers give the backend now: its configured weight, less while "
           "slow start ramps it.");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      w.sample("weir_backend_effective_weight", {{"pool", p.name}, {"backend", b.address}},
               b.effective_weight);
    }
  }
  w.family("weir_backend_slow_start_remaining_seconds", "gauge",
           "Seconds until slow start gives the backend its full weight (0: not ramping).");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      w.sample("weir_backend_slow_start_remaining_seconds",
               {{"pool", p.name}, {"backend", b.address}},
               static_cast<double>(b.slow_start_remaining_ms) / 1000.0);
    }
  }
  w.family("weir_backend_last_check_age_seconds", "gauge",
           "Seconds since the last health check of the backend ended (absent: never checked).");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      if (b.last_check_age_ms >= 0) {
        w.sample("weir_backend_last_check_age_seconds", {{"pool", p.name}, {"backend", b.address}},
                 static_cast<double>(b.last_check_age_ms) / 1000.0);
      }
    }
  }
  w.family("weir_backend_check_duration_seconds", "gauge",
           "How long the last health check of the backend took (absent: never checked).");
  for (const auto& p : view.pools) {
    for (const auto& b : p.backends) {
      if (b.last_check_duration_us >= 0) {
        w.sample("weir_backend_check_duration_seconds", {{"pool", p.name}, {"backend", b.address}},
                 static_cast<double>(b.last_check_duration_us) / 1e6);
      }
    }
  }
  const Counter counters[] = {
      {"weir_backend_connections_total", "Connections established to the backend.",
       &BackendView::total},
      {"weir_backend_failed_connects_total", "Connect attempts to the backend that failed.",
       &BackendView::failed_connects},
      {"weir_backend_received_bytes_total", "Bytes received from the backend.",
       &BackendView::bytes_in},
      {"weir_backend_sent_bytes_total", "Bytes sent to the backend.", &BackendView::bytes_out},
  };
  for (const auto& c : counters) {
    w.family(c.name, "counter", c.help);
    for (const auto& p : view.pools) {
      for (const auto& b : p.backends) {
        w.sample(c.name, {{"pool", p.name}, {"backend", b.address}}, b.*c.field);
      }
    }
  }
}

void listenerMetrics(Writer& w, const View& view) {
  struct Counter {
    const char* name;
    const char* type;
    const char* help;
    uint64_t ListenerView::*field;
  };
  const Counter counters[] = {
      {"weir_listener_connections_total", "counter",
       "Client connections accepted on the listener (newest generation).", &ListenerView::accepted},
      {"weir_listener_received_bytes_total", "counter", "Bytes received from the clients.",
       &ListenerView::bytes_in},
      {"weir_listener_sent_bytes_total", "counter", "Bytes sent to the clients.",
       &ListenerView::bytes_out},
      {"weir_listener_denied_total", "counter",
       "Connection attempts the listener's access list refused (in the kernel, or by the "
       "workers where the steering program is not loaded).", &ListenerView::denied},
      {"weir_listener_client_limited_total", "counter",
       "New connections refused for a per-client limit (rate_per_client or "
       "max_connections_per_client).",
       &ListenerView::limited},
  };
  w.family("weir_listener_active_connections", "gauge",
           "Client connections open on the listener (newest generation).");
  for (const auto& l : view.listeners) {
    w.sample("weir_listener_active_connections", {{"listener", l.name}}, l.active);
  }
  for (const auto& c : counters) {
    w.family(c.name, c.type, c.help);
    for (const auto& l : view.listeners) {
      w.sample(c.name, {{"listener", l.name}}, l.*c.field);
    }
  }
  w.family("weir_listener_announced", "gauge",
           "1 while the master announces a route to every address of the listener "
           "(announce = true), else 0.");
  for (const auto& l : view.listeners) {
    if (l.announce) {
      const uint64_t announced = l.announced ? 1 : 0;
      w.sample("weir_listener_announced", {{"listener", l.name}}, announced);
    }
  }
}

void closeReasonMetrics(Writer& w, const View& view) {
  const GenerationView* gen = serving(view);
  if (gen == nullptr) {
    return;
  }
  w.family("weir_worker_closed_connections_total", "counter",
           "Client connections closed by the worker of the slot, by reason.");
  for (const auto& wk : gen->workers) {
    const std::string slot = std::to_string(wk.slot);
    for (const auto& [reason, count] : wk.closes) {
      w.sample("weir_worker_closed_connections_total", {{"slot", slot}, {"reason", reason}}, count);
    }
  }
}

}  // namespace

std::string renderMetrics(const View& view) {
  Writer w;
  masterMetrics(w, view);
  workerMetrics(w, view);
  closeReasonMetrics(w, view);
  listenerMetrics(w, view);
  backendMetrics(w, view);
  return w.take();
}

}  // namespace weir::master
