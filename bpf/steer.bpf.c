// SPDX-License-Identifier: GPL-2.0
/* sk_reuseport program: picks the worker slot for each new connection of a listen address.
 *
 * Every listen address is one reuseport group holding one listening socket per worker slot.
 * The kernel runs this program when a SYN (or a syncookie ACK) reaches the group; whatever
 * socket it selects is the one whose accept queue the connection lands in. Socket i of
 * group g sits at index g * WEIR_MAX_WORKERS + i of `socks`; `groups` maps the cookie of
 * every listening socket to its group, since the program only sees one socket of the group. */
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

static __always_inline __u32 leastLoaded(__u32 n, __u32 start) {
  __u32 best_slot = start;
  __s64 best = 0x7fffffffffffffffLL;
  for (__u32 i = 0; i < WEIR_MAX_WORKERS; i++) {
    if (i >= n) {
      break;
    }
    __u32 s = start + i;
    if (s >= n) {
      s -= n;
    }
    s &= WEIR_MAX_WORKERS - 1;
    __s64 load = state.slots[s].steered + state.slots[s].active;
    if (load < best) {
      best = load;
      best_slot = s;
    }
  }
  return best_slot;
}

SEC("sk_reuseport")
int weir_steer(struct sk_reuseport_md *ctx) {
  __u32 n = state.nworkers;
  __u32 mode = state.mode;
  if (n == 0 || n > WEIR_MAX_WORKERS || mode == WEIR_STEER_HASH) {
    return SK_PASS; /* no selection: the kernel hashes */
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
   * not counted, or the count would drift up. The TCP header starts at offset 0. */
  __u8 flags = 0;
  int is_syn = bpf_skb_load_bytes(ctx, 13, &flags, 1) == 0 && (flags & 0x12) == 0x02;
  __u32 start = (__u32)(__sync_fetch_and_add(&state.rotor, 1) % n);
  __u32 slot = mode == WEIR_STEER_ROUND_ROBIN ? start : leastLoaded(n, start);
  slot &= WEIR_MAX_WORKERS - 1;
  __u32 key = *group * WEIR_MAX_WORKERS + slot;
  /* Count before selecting so a burst of SYNs sees each other's choices. */
  if (is_syn) {
    __sync_fetch_and_add(&state.slots[slot].steered, 1);
  }
  if (bpf_sk_select_reuseport(ctx, &socks, &key, 0) != 0) {
    if (is_syn) {
      __sync_fetch_and_add(&state.slots[slot].steered, -1);
    }
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  if (is_syn) {
    __sync_fetch_and_add(&state.steered_total, 1);
  }
  return SK_PASS;
}
