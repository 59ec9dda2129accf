#pragma once

#include <sys/types.h>

#include <cstddef>

#include "shm/layout.h"

namespace weir::shm {

// Per-worker counters in the region (slot = the worker's slot number). Relaxed atomics: they
// are statistics, read by whoever reports them.

// The master, when it forks (or re-forks) the worker of a slot (after ShmRegion::retireWorker
// cleared what the slot's previous worker held).
inline void workerStarted(WorkerSlot& w, pid_t pid) {
  w.active.store(0, std::memory_order_relaxed);  // the dead worker's connections died with it
  for (auto& l : w.listeners) {
    l.active.store(0, std::memory_order_relaxed);
  }
  w.pid.store(pid, std::memory_order_relaxed);
}
// The worker: a client connection accepted / ended.
inline void onAccept(WorkerSlot& w) {
  w.accepted.fetch_add(1, std::memory_order_relaxed);
  w.active.fetch_add(1, std::memory_order_relaxed);
}
inline void onClientClosed(WorkerSlot& w) {
  w.active.fetch_sub(1, std::memory_order_relaxed);
}
// The worker: a client of listener `l` (index into Config::listeners) accepted / ended, with
// the bytes it sent and received and why it ended (a worker::CloseReason). Listeners past
// kMaxListenerSlots and reasons past kCloseReasonSlots are not counted.
inline void onListenerAccept(WorkerSlot& w, size_t l) {
  if (l < kMaxListenerSlots) {
    w.listeners[l].accepted.fetch_add(1, std::memory_order_relaxed);
    w.listeners[l].active.fetch_add(1, std::memory_order_relaxed);
  }
}
inline void onListenerClosed(WorkerSlot& w, size_t l, size_t reason, uint64_t from_client,
                             uint64_t to_client) {
  if (reason < kCloseReasonSlots) {
    w.closes[reason].fetch_add(1, std::memory_order_relaxed);
  }
  if (l < kMaxListenerSlots) {
    w.listeners[l].active.fetch_sub(1, std::memory_order_relaxed);
    w.listeners[l].bytes_in.fetch_add(from_client, std::memory_order_relaxed);
    w.listeners[l].bytes_out.fetch_add(to_client, std::memory_order_relaxed);
  }
}
// The worker: a client of listener `l` refused by its access list right after accept.
inline void onListenerDenied(WorkerSlot& w, size_t l) {
  if (l < kMaxListenerSlots) {
    w.listeners[l].denied.fetch_add(1, std::memory_order_relaxed);
  }
}
// The worker: a client closed because every eligible backend was at max_connections.
inline void onRejectedFull(WorkerSlot& w) {
  w.rejected_full.fetch_add(1, std::memory_order_relaxed);
}

// The worker: a tls-terminate handshake with a client ended.
inline void onTlsHandshake(WorkerSlot& w, bool ok, bool resumed) {
  if (!ok) {
    w.tls_failed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  w.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (resumed) {
    w.tls_resumed.fetch_add(1, std::memory_order_relaxed);
  }
}
// The worker: a tls-passthrough client sent no valid ClientHello (malformed, not TLS, too
// large, or not complete within client_hello_timeout).
inline void onBadHello(WorkerSlot& w) { w.bad_hello.fetch_add(1, std::memory_order_relaxed); }
// The worker: a client of an accept_proxy_protocol listener was refused (not trusted) or sent
// no valid PROXY header in time.
inline void onProxyUntrusted(WorkerSlot& w) {
  w.proxy_untrusted.fetch_add(1, std::memory_order_relaxed);
}
inline void onBadProxyHeader(WorkerSlot& w) {
  w.bad_proxy_header.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace weir::shm
