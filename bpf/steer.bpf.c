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
 * worker, but gets nothing new.
 *
 * Before any of that, a group with an access list (acls[group]) refuses the packets of
 * clients the list denies: SK_DROP makes the kernel's listener lookup find no socket, so it
 * answers the SYN with a RST and no worker ever sees the connection. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
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

/* The access list of each group (see steer.h): user space builds a whole new trie and swaps
 * it in with one update of acls[group], so a reload never leaves a group half-listed. */
struct weir_acl_trie {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, WEIR_ACL_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  /* Sizes, not types: clang leaves a struct that only this nested definition names as a
   * forward declaration in the BTF, which libbpf cannot size. */
  __uint(key_size, sizeof(struct weir_acl_key));
  __uint(value_size, sizeof(__u32));
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, WEIR_MAX_GROUPS);
  __type(key, __u32);
  __array(values, struct weir_acl_trie);
} acls SEC(".maps");

/* SYNs refused per group, per CPU (a flood of them must not contend on one counter). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, WEIR_MAX_GROUPS);
  __type(key, __u32);
  __type(value, __u64);
} denied SEC(".maps");

struct weir_steer_state state = {};

/* Whether group's access list refuses the packet's source address. A group without a list
 * refuses nothing; with one, a packet whose address cannot be read is refused too. */
static __always_inline int refused(struct sk_reuseport_md *ctx, __u32 group) {
  void *trie = bpf_map_lookup_elem(&acls, &group);
  if (!trie) {
    return 0;
  }
  struct weir_acl_key key = {};
  int err;
  if (ctx->eth_protocol == bpf_htons(ETH_P_IP)) {
    key.prefixlen = 8 + 32;
    key.family = 4;
    err = bpf_skb_load_bytes_relative(ctx, 12, key.addr, 4, BPF_HDR_START_NET);
  } else if (ctx->eth_protocol == bpf_htons(ETH_P_IPV6)) {
    key.prefixlen = 8 + 128;
    key.family = 6;
    err = bpf_skb_load_bytes_relative(ctx, 8, key.addr, 16, BPF_HDR_START_NET);
  } else {
    return 1;
  }
  if (err != 0) {
    return 1;
  }
  __u32 *action = bpf_map_lookup_elem(trie, &key);
  return !action || *action != WEIR_ACL_ALLOW;
}

/* Whether the packet is a SYN. Read from the network header on: the skb's data starts at the
 * TCP header when the kernel's own lookup runs the program, but at the IP header when a TPROXY
 * rule does (transparent listeners). IPv6 extension headers are not followed (a SYN with
 * them is steered, just not counted). */
static __always_inline int isSyn(struct sk_reuseport_md *ctx) {
  __u32 offset = 40; /* IPv6: the fixed header */
  if (ctx->eth_protocol == bpf_htons(ETH_P_IP)) {
    __u8 version_ihl = 0;
    if (bpf_skb_load_bytes_relative(ctx, 0, &version_ihl, 1, BPF_HDR_START_NET) != 0) {
      return 0;
    }
    offset = (__u32)(version_ihl & 0x0f) * 4;
  }
  __u8 flags = 0;
  return bpf_skb_load_bytes_relative(ctx, offset + 13, &flags, 1, BPF_HDR_START_NET) == 0 &&
         (flags & 0x12) == 0x02;
}

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
  /* ctx->sk is the group member the lookup found (kernel >= 5.14); any member's cookie maps
   * to the group. */
  __u32 *group = 0;
  struct bpf_sock *sk = ctx->sk;
  if (sk) {
    __u64 cookie = bpf_get_socket_cookie(sk);
    group = bpf_map_lookup_elem(&groups, &cookie);
  }
  if (group && *group < WEIR_MAX_GROUPS && refused(ctx, *group)) {
    /* Every packet of a refused client is dropped (a syncookie ACK would open a connection
     * too); only SYNs are counted, one per attempt. */
    if (isSyn(ctx)) {
      __u64 *count = bpf_map_lookup_elem(&denied, group);
      if (count) {
        *count += 1;
      }
    }
    return SK_DROP;
  }
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
  if (!group || *group >= WEIR_MAX_GROUPS) {
    __sync_fetch_and_add(&state.misses, 1);
    return SK_PASS;
  }
  /* Only a SYN starts a connection the worker will accept. Other packets reach the listener
   * too (a syncookie ACK, strays of closed connections): they are steered the same way but
   * not counted, or the count would drift up. In hash mode nobody counts (the workers do not
   * take SYNs off). */
  int counted = mode != WEIR_STEER_HASH && isSyn(ctx);
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
