#include "master/view.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstdio>
#include <map>
#include <utility>

#include "balance/slow_start.h"
#include "shm/error_text.h"
#include "shm/layout.h"
#include "worker/session.h"

namespace weir::master {
namespace {

// The largest count reported for one worker's active connections (a garbage
// value cannot make a sum over workers overflow).
constexpr int64_t kMaxActive = int64_t{1} << 31;
// A check takes at most its timeout (at most a day); anything longer is garbage.
constexpr int64_t kMaxCheckUs = int64_t{86400} * 1000000;

const char* steeringName(config::Steering mode) {
  switch (mode) {
    case config::Steering::LeastLoaded:
      return "least-loaded";
    case config::Steering::RoundRobin:
      return "round-robin";
    case config::Steering::Hash:
      return "hash";
  }
  return "unknown";
}

const char* modeName(config::ListenerMode mode) {
  switch (mode) {
    case config::ListenerMode::Tcp:
      return "tcp";
    case config::ListenerMode::TlsPassthrough:
      return "tls-passthrough";
    case config::ListenerMode::TlsTerminate:
      return "tls-terminate";
  }
  return "unknown";
}

uint64_t load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

WorkerView workerView(const Generation& gen, unsigned slot) {
  WorkerView w;
  w.slot = slot;
  w.pid = gen.workers[slot].pid;
  const shm::WorkerSlot& s = gen.region->worker(slot);
  w.active = std::clamp<int64_t>(s.active.load(std::memory_order_relaxed), 0, kMaxActive);
  w.accepted = load(s.accepted);
  w.rejected_full = load(s.rejected_full);
  w.tls_handshakes = load(s.tls_handshakes);
  w.tls_resumed = load(s.tls_resumed);
  w.tls_failed = load(s.tls_failed);
  w.bad_hello = load(s.bad_hello);
  w.proxy_untrusted = load(s.proxy_untrusted);
  w.bad_proxy_header = load(s.bad_proxy_header);
  for (size_t r = 0; r < worker::kCloseReasons; ++r) {
    w.closes.emplace_back(worker::toString(static_cast<worker::CloseReason>(r)), load(s.closes[r]));
  }
  return w;
}

BackendView backendView(const shm::PoolSlots& slots, size_t i, const config::Backend& backend,
                        int64_t now_ms) {
  BackendView b;
  b.address = config::backendName(backend);
  // Slow start, as the workers' balancers work it out from the same shared state.
  b.weight = backend.weight;
  b.effective_weight = backend.weight;
  if (const int64_t elapsed = slots.rampElapsed(i, now_ms); elapsed >= 0) {
    const int64_t ramp_ms = slots.policy().slow_start_ms;
    b.slow_start_remaining_ms = ramp_ms - elapsed;
    b.effective_weight =
        static_cast<double>(balance::rampedWeight(backend.weight * balance::kRampScale, elapsed,
                                                  ramp_ms)) /
        balance::kRampScale;
  }
  const uint32_t state = slots.slot(i).state.load(std::memory_order_acquire);
  b.state = state <= static_cast<uint32_t>(shm::BackendState::Empty)
                ? shm::toString(static_cast<shm::BackendState>(state))
                : "unknown";
  if (backend.named() && state != static_cast<uint32_t>(shm::BackendState::Empty)) {
    if (auto address = slots.resolved(i)) {  // checked: any process may write the slot
      b.resolved = address->toString();
    }
  }
  const uint32_t admin = slots.slot(i).admin.load(std::memory_order_acquire);
  b.admin = admin <= static_cast<uint32_t>(shm::AdminState::Maint)
                ? shm::toString(static_cast<shm::AdminState>(admin))
                : "unknown";
  const int64_t last = slots.slot(i).last_check_ms.load(std::memory_order_relaxed);
  if (last > 0) {
    b.last_check_age_ms = last >= now_ms ? 0 : now_ms - last;
    b.last_check_duration_us = std::clamp<int64_t>(
        slots.slot(i).check_duration_us.load(std::memory_order_relaxed), 0, kMaxCheckUs);
  }
  b.last_error = shm::readErrorText(slots.slot(i));  // NUL-terminated inside its buffer
  b.active = slots.active(i);                        // clamped by PoolSlots
  b.total = slots.total(i);
  b.failed_connects = slots.failedConnects(i);
  b.bytes_in = slots.bytesIn(i);
  b.bytes_out = slots.bytesOut(i);
  return b;
}

void addListenerTraffic(ListenerView& lv, const Generation& gen, size_t l) {
  if (l >= shm::kMaxListenerSlots) {
    return;
  }
  const size_t slots = std::min<size_t>(gen.workers.size(), gen.region->workerSlots());
  for (unsigned slot = 0; slot < slots; ++slot) {
    const shm::ListenerTraffic& t = gen.region->worker(slot).listeners[l];
    lv.accepted += load(t.accepted);
    lv.active += std::clamp<int64_t>(t.active.load(std::memory_order_relaxed), 0, kMaxActive);
    lv.bytes_in += load(t.bytes_in);
    lv.bytes_out += load(t.bytes_out);
    lv.denied += load(t.denied);
    lv.limited += load(t.limited);
  }
}

void addPools(View& view, const Generation& gen, int64_t now_ms) {
  const config::Config& cfg = *gen.cfg;
  for (const config::Listener& l : cfg.listeners) {
    ListenerView lv{l.name, {}, l.pool, modeName(l.mode)};
    for (const net::SockAddr& a : l.binds) {
      lv.binds.push_back(a.toString());
    }
    addListenerTraffic(lv, gen, view.listeners.size());
    view.listeners.push_back(std::move(lv));
  }
  const bool mapped = gen.backends && gen.backends->poolCount() == cfg.pools.size();
  for (size_t p = 0; p < cfg.pools.size(); ++p) {
    PoolView pv{cfg.pools[p].name, {}};
    const auto& backends = cfg.pools[p].backends;
    for (size_t i = 0; i < backends.size(); ++i) {
      if (mapped && i < gen.backends->pool(p).size()) {
        pv.backends.push_back(backendView(gen.backends->pool(p), i, backends[i], now_ms));
      } else {
        BackendView unknown;
        unknown.address = config::backendName(backends[i]);
        unknown.state = "unknown";
        unknown.weight = backends[i].weight;
        unknown.effective_weight = backends[i].weight;
        pv.backends.push_back(std::move(unknown));
      }
    }
    view.pools.push_back(std::move(pv));
  }
}

// Connections an older (draining) generation still holds to backends the view shows: a
// backend drained with weirctl is idle only when no generation holds any, so its active
// count is the sum over every generation that has it (same pool name and address).
void addOlderActive(View& view, const Generation& gen) {
  const config::Config& cfg = *gen.cfg;
  if (!gen.backends || gen.backends->poolCount() != cfg.pools.size()) {
    return;
  }
  std::map<std::pair<std::string_view, std::string>, BackendView*> shown;
  for (PoolView& pv : view.pools) {
    for (BackendView& bv : pv.backends) {
      shown.emplace(std::make_pair(std::string_view(pv.name), bv.address), &bv);
    }
  }
  for (size_t p = 0; p < cfg.pools.size(); ++p) {
    const shm::PoolSlots& slots = gen.backends->pool(p);
    const auto& backends = cfg.pools[p].backends;
    for (size_t i = 0; i < backends.size() && i < slots.size(); ++i) {
      auto it = shown.find({cfg.pools[p].name, config::backendName(backends[i])});
      if (it != shown.end()) {
        // Each term is clamped to [0, kMaxActive] by PoolSlots: the sum cannot overflow.
        it->second->active += slots.active(i);
      }
    }
  }
}

// Length of the valid UTF-8 sequence at text[i], or 0 if there is none.
size_t utf8Length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) {
    return 0;
  }
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not
  // valid UTF-8.
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    return 0;
  }
  return n;
}

void appendField(std::string& out, const char* name) {
  if (out.back() != '{') {
    out += ',';
  }
  appendJsonString(out, name);
  out += ':';
}

void field(std::string& out, const char* name, std::string_view value) {
  appendField(out, name);
  appendJsonString(out, value);
}

template <std::integral Int>
void field(std::string& out, const char* name, Int value) {
  appendField(out, name);
  out += std::to_string(value);
}

void field(std::string& out, const char* name, double value) {
  appendField(out, name);
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round trip
  out.append(buf, ec == std::errc() ? end : buf);
}

void field(std::string& out, const char* name, bool value) {
  appendField(out, name);
  out += value ? "true" : "false";
}

void field(std::string& out, const char* name, const char* value) {
  field(out, name, std::string_view(value));
}

// "name":[ item, item ] with each item written by write(out, item).
template <typename Items, typename Write>
void arrayField(std::string& out, const char* name, const Items& items, Write write) {
  appendField(out, name);
  out += '[';
  bool first = true;
  for (const auto& item : items) {
    if (!first) {
      out += ',';
    }
    first = false;
    write(out, item);
  }
  out += ']';
}

void writeWorker(std::string& out, const WorkerView& w) {
  out += '{';
  field(out, "slot", w.slot);
  field(out, "pid", w.pid);
  field(out, "active", w.active);
  field(out, "accepted", w.accepted);
  field(out, "rejected_full", w.rejected_full);
  field(out, "tls_handshakes", w.tls_handshakes);
  field(out, "tls_resumed", w.tls_resumed);
  field(out, "tls_failed", w.tls_failed);
  field(out, "bad_hello", w.bad_hello);
  field(out, "proxy_untrusted", w.proxy_untrusted);
  field(out, "bad_proxy_header", w.bad_proxy_header);
  appendField(out, "closes");
  out += '{';
  for (const auto& [reason, count] : w.closes) {
    field(out, reason.c_str(), count);
  }
  out += "}}";
}

void writeGeneration(std::string& out, const GenerationView& g) {
  out += '{';
  field(out, "number", g.number);
  field(out, "state", g.draining ? "draining" : "serving");
  arrayField(out, "workers", g.workers, writeWorker);
  out += '}';
}

void writeListener(std::string& out, const ListenerView& l) {
  out += '{';
  field(out, "name", l.name);
  arrayField(out, "binds", l.binds,
             [](std::string& o, const std::string& b) { appendJsonString(o, b); });
  field(out, "pool", l.pool);
  field(out, "mode", l.mode);
  field(out, "accepted", l.accepted);
  field(out, "active", l.active);
  field(out, "bytes_in", l.bytes_in);
  field(out, "bytes_out", l.bytes_out);
  field(out, "access", l.access);
  field(out, "denied", l.denied);
  field(out, "client_limited", l.limited);
  field(out, "announce", l.announce);
  field(out, "announced", l.announced);
  out += '}';
}

void writeBackend(std::string& out, const BackendView& b) {
  out += '{';
  field(out, "address", b.address);
  field(out, "state", b.state);
  field(out, "admin", b.admin);
  field(out, "weight", b.weight);
  field(out, "effective_weight", b.effective_weight);
  field(out, "slow_start_remaining_ms", b.slow_start_remaining_ms);
  field(out, "last_check_age_ms", b.last_check_age_ms);
  field(out, "last_check_duration_us", b.last_check_duration_us);
  field(out, "last_error", b.last_error);
  field(out, "active", b.active);
  field(out, "total", b.total);
  field(out, "failed_connects", b.failed_connects);
  field(out, "bytes_in", b.bytes_in);
  field(out, "bytes_out", b.bytes_out);
  field(out, "resolved", b.resolved);
  out += '}';
}

void writePool(std::string& out, const PoolView& p) {
  out += '{';
  field(out, "name", p.name);
  arrayField(out, "backends", p.backends, writeBackend);
  out += '}';
}

}  // namespace

View gatherView(const Generations& gens, const steer::Steering& steering,
                const MasterCounters& counters, int64_t now_ms) {
  View view;
  view.master_pid = ::getpid();
  view.steering_bpf = steering.active();
  view.reloads = counters.reloads;
  view.reloads_failed = counters.reloads_failed;
  view.reload_cuts = {gens.cut().drain_timeout, gens.cut().generation_limit,
                      counters.retired_queue_reset};
  const Generation* newest = nullptr;
  for (const auto& gen : gens.all()) {
    if (!gen->region || !gen->cfg) {
      continue;  // made but never launched
    }
    GenerationView gv{gen->number, gen->draining, {}};
    const size_t slots = std::min<size_t>(gen->workers.size(), gen->region->workerSlots());
    for (unsigned slot = 0; slot < slots; ++slot) {
      gv.workers.push_back(workerView(*gen, slot));
    }
    view.generations.push_back(std::move(gv));
    newest = gen.get();
  }
  if (newest != nullptr) {
    view.steering = steeringName(newest->cfg->global.steering);
    addPools(view, *newest, now_ms);
    for (const auto& gen : gens.all()) {
      if (gen.get() != newest && gen->region && gen->cfg) {
        addOlderActive(view, *gen);
      }
    }
  }
  return view;
}

void appendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t n = utf8Length(text, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

std::string toJson(const View& view) {
  std::string out = "{";
  field(out, "master_pid", view.master_pid);
  field(out, "steering", view.steering);
  field(out, "steering_bpf", view.steering_bpf);
  field(out, "reloads", view.reloads);
  field(out, "reloads_failed", view.reloads_failed);
  appendField(out, "reload_cut_connections");
  out += '{';
  field(out, "drain_timeout", view.reload_cuts.drain_timeout);
  field(out, "generation_limit", view.reload_cuts.generation_limit);
  field(out, "retired_queue", view.reload_cuts.retired_queue);
  out += '}';
  arrayField(out, "generations", view.generations, writeGeneration);
  arrayField(out, "listeners", view.listeners, writeListener);
  arrayField(out, "pools", view.pools, writePool);
  out += "}\n";
  return out;
}

}  // namespace weir::master
