// SPDX-License-Identifier: GPL-2.0
/* sk_reuseport program: picks the worker slot for each new connection of a listen address.
 *
 * Every listen address is one reuseport group holding one listening socket per worker slot.
 * The kernel runs this program when a SYN (or a syncookie ACK) reaches the group; whatever
 * socket it selects is the one whose accept queue the connection lands in. Socket i of
 * group g sits at index g * WEIR_MAX_WORKERS + i of `socks`; `groups` maps the cookie of
 * every listening socket to its group, since the program only sees one socket of the group.
 *
 * Only slots whose bit is set in state.live are chosen: while a slot's worker is dead (or
 * waiting to be respawned) its socket keeps what was already queued there, for the next
 * worker, but gets nothing new. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "steer.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
  __uint(max_entries, WEIR_MAX_GROUPS * WEIR_MAX_WORKERS);
  __type(key, __u32);
  __type(value, __u64);
} socks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, WEIR_MAX_GROUPS * WEIR_MAX_WORKERS);
  __type(key, __u64);
  __type(value, __u32);
} groups SEC(".maps");

struct weir_steer_state state = {};

static __always_inline __u64 slotsBelow(__u32 n) {
  return n >= WEIR_MAX_WORKERS ? ~0ULL : (1ULL << n) - 1;
}

static __always_inline __s64 loadOf(__u32 s) {
  __s64 load = state.steered[s];
  for (__u32 l = 0; l < WEIR_LANES; l++) {
    load += state.active[l][s];
  }
  return load;
}

/* Each chooser returns a live slot below n, or WEIR_MAX_WORKERS if none is live. Slots are
 * visited from `start` on, cyclically below n. One loop per mode keeps the verifier's work
 * linear in the number of slots. */

/* The i-th slot visited from `start`, cyclically below n (start < n, i < n). */
static __always_inline __u32 visit(__u32 start, __u32 i, __u32 n) {
  __u32 s = start + i;
  if (s >= n) {
    s -= n;
  }
  return s & (WEIR_MAX_WORKERS - 1);
}

/* The first live slot from `start`. */
static __always_inline __u32 firstLive(__u32 n, __u32 start, __u64 live) {
  for (__u32 i = 0; i < WEIR_MAX_WORKERS; i++) {
    if (i >= n) {
      break;
    }
    __u32 s = visit(start, i, n);
    if ((live >> s) & 1) {
      return s;
    }
  }
  return WEIR_MAX_WORKERS;
}

/* The least loaded live slot (ties go to the first visited from `start`). */
static __always_inline __u32 leastLoaded(__u32 n, __u32 start, __u64 live) {
  __u32 best_slot = WEIR_MAX_WORKERS;
  __s64 best = 0x7fffffffffffffffLL;
  for (__u32 i = 0; i < WEIR_MAX_WORKERS; i++) {
    if (i >= n) {
      break;
    }
    __u32 s = visit(start, i, n);
    /* A dead slot weighs more than any live one, without a branch of its own. */
    __s64 load = ((live >> s) & 1) ? loadOf(s) : 0x7fffffffffffffffLL;
    if (load < best) {
      best = load;
      best_slot = s;
    }
  }
  return best_slot;
}

/* The (hash mod live count)-th live slot, counting from slot 0. */
static __always_inline __u32 hashedLive(__u32 n, __u64 live, __u32 hash) {
  __u32 count = 0;
  for (__u32 i = 0; i < WEIR_MAX_WORKERS; i++) {
    if (i >= n) {
      break;
    }
    count += (__u32)((live >> i) & 1);
  }
  if (count == 0) {
    return WEIR_MAX_WORKERS;
  }
  __u32 want = hash % count;
  for (__u32 i = 0; i < WEIR_MAX_WORKERS; i++) {
    if (i >= n) {
      break;
    }
    if ((live >> i) & 1) {
      if (want == 0) {
        return i;
      }
      want--;
    }
  }
  return WEIR_MAX_WORKERS;
}

SEC("sk_reuseport")
int weir_steer(struct sk_reuseport_md *ctx) {
  __u32 n = state.nworkers;
  __u32 mode = state.mode;
  if (n == 0 || n > WEIR_MAX_WORKERS) {
    return SK_PASS; /* no selection: the kernel hashes */
  }
  __u64 live = state.live & slotsBelow(n);
  if (mode == WEIR_STEER_HASH && live == slotsBelow(n)) {
    return SK_PASS; /* every worker runs: the kernel's own hash, as plain SO_REUSEPORT */
  }
  if (live == 0) {
    /* No worker runs (all restarting): queue anywhere; they are accepted once workers run. */
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  /* ctx->sk is the group member the lookup found (kernel >= 5.14); any member's cookie maps
   * to the group. */
  struct bpf_sock *sk = ctx->sk;
  if (!sk) {
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  __u64 cookie = bpf_get_socket_cookie(sk);
  __u32 *group = bpf_map_lookup_elem(&groups, &cookie);
  if (!group || *group >= WEIR_MAX_GROUPS) {
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  /* Only a SYN starts a connection the worker will accept. Other packets reach the listener
   * too (a syncookie ACK, strays of closed connections): they are steered the same way but
   * not counted, or the count would drift up. The TCP header starts at offset 0. In hash mode
   * nobody counts (the workers do not take SYNs off). */
  __u8 flags = 0;
  int counted = mode != WEIR_STEER_HASH && bpf_skb_load_bytes(ctx, 13, &flags, 1) == 0 &&
                (flags & 0x12) == 0x02;
  __u32 slot;
  if (mode == WEIR_STEER_HASH) {
    slot = hashedLive(n, live, ctx->hash);
  } else {
    __u32 start = (__u32)(__sync_fetch_and_add(&state.rotor, 1) % n);
    slot = mode == WEIR_STEER_ROUND_ROBIN ? firstLive(n, start, live) : leastLoaded(n, start, live);
  }
  if (slot >= WEIR_MAX_WORKERS) {
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  __u32 key = *group * WEIR_MAX_WORKERS + slot;
  /* Count before selecting so a burst of SYNs sees each other's choices. */
  if (counted) {
    __sync_fetch_and_add(&state.steered[slot], 1);
  }
  if (bpf_sk_select_reuseport(ctx, &socks, &key, 0) != 0) {
    if (counted) {
      __sync_fetch_and_add(&state.steered[slot], -1);
    }
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  if (counted) {
    __sync_fetch_and_add(&state.steered_total, 1);
  }
  return SK_PASS;
}
