/* Shared between bpf/steer.bpf.c and lb/steer: the one definition of every value the BPF
 * program and user space both read. The C++ side static_asserts this layout. */
#pragma once

#include <linux/types.h>

#define WEIR_MAX_WORKERS 64 /* power of two: the program masks slot indexes with it */
#define WEIR_MAX_GROUPS 64  /* reuseport groups (listen addresses) per appliance */
/* Generations whose workers count their connections at once: the generations one master runs
 * (at most 4 hold connections) plus those of a second master during a binary upgrade. */
#define WEIR_LANES 8

/* Access lists (listeners.NAME.allow / deny): one LPM trie per group, whose key is the
 * address family (4 or 6) followed by the address, so that IPv4 and IPv6 prefixes never match
 * each other's clients. prefixlen counts the family byte: IPv4 a.b.c.d/n is 8 + n bits, IPv6
 * /n is 8 + n. The entry of prefixlen 0 holds the list's default; the value is the action. */
#define WEIR_ACL_MAX_PREFIXES (1 << 20) /* per listener: allow, deny and both files together */
#define WEIR_ACL_DENY 0
#define WEIR_ACL_ALLOW 1

struct weir_acl_key {
  __u32 prefixlen;
  __u8 family; /* 4 or 6 */
  __u8 addr[16]; /* network order; IPv4 uses the first 4 bytes, the rest stays 0 */
  __u8 pad[3];   /* always 0 */
};

/* Per-client limits of a group (listeners.NAME.rate_per_client and
 * max_connections_per_client); all zero: none. A client is
 * its address cut to prefix4 / prefix6 bits, and counts per listener: every group of one
 * listener has the same listener_key. */
#define WEIR_CLIENT_BUCKETS (1 << 16) /* cells per sketch row; a power of two */
struct weir_client_limit {
  __u64 rate_interval_ns;  /* one new connection per this long; 0 = no rate limit */
  __u64 rate_tolerance_ns; /* (burst - 1) * rate_interval_ns */
  __u32 listener_key;
  __u32 max_conns; /* max_connections_per_client; 0 = none */
  __u8 prefix4;
  __u8 prefix6;
  __u8 pad[6];
};

/* A 64-bit finalizer: every input bit moves about half of the output bits. */
static inline __u64 weirMix(__u64 h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/* The hash of a client: a listener key, the family (4 or 6) and the address as two 64-bit
 * words (its first 8 bytes and its last 8, big-endian; IPv4 in the top half of `hi`), cut to
 * `bits` bits, mixed under `seed`. The same function runs in the program and in the workers
 * (which enforce the limits where the program is not loaded). Straight-line code on words,
 * with no loop over bits: the verifier walks it in a few steps. */
static inline __u64 weirClientHash(__u64 seed, __u32 listener_key, __u8 family, __u64 hi,
                                   __u64 lo, __u32 bits) {
  __u64 hi_mask = bits >= 64 ? ~0ULL : bits == 0 ? 0 : ~0ULL << (64 - bits);
  __u64 lo_mask = bits >= 128 ? ~0ULL : bits <= 64 ? 0 : ~0ULL << (128 - bits);
  __u64 h = weirMix(seed ^ ((__u64)listener_key << 8 | family));
  h = weirMix(h ^ (hi & hi_mask));
  return weirMix(h ^ (lo & lo_mask));
}

/* The address bytes as the hash's two words. */
static inline __u64 weirWord(const __u8 b[8]) {
  return (__u64)b[0] << 56 | (__u64)b[1] << 48 | (__u64)b[2] << 40 | (__u64)b[3] << 32 |
         (__u64)b[4] << 24 | (__u64)b[5] << 16 | (__u64)b[6] << 8 | (__u64)b[7];
}

/* A client's two cells, packed: row 0's index in the low 16 bits, row 1's in the high. */
static inline __u32 weirClientCells(__u64 seed, const struct weir_client_limit *limit,
                                    __u8 family, const __u8 addr[16]) {
  __u64 h = weirClientHash(seed, limit->listener_key, family, weirWord(addr),
                           weirWord(addr + 8), family == 4 ? limit->prefix4 : limit->prefix6);
  return ((__u32)h & (WEIR_CLIENT_BUCKETS - 1)) |
         (((__u32)(h >> 32) & (WEIR_CLIENT_BUCKETS - 1)) << 16);
}

/* GCRA (a token bucket kept as one time): a client may start a connection at `now` if the
 * theoretical arrival time of its next one is at most `tolerance` ahead. Its two cells are
 * shared with whatever other clients hash there, so the smaller says most about it (a count-
 * min sketch); an allowed start moves each cell to at least the new time (conservative
 * update). Colliding clients can only make a client look busier, never less busy. Concurrent
 * starts may race on the cells; the cost is a start let through, never a lock. */
static inline int weirRateAllows(__u64 *cell0, __u64 *cell1, __u64 now, __u64 interval,
                                 __u64 tolerance) {
  __u64 t0 = *cell0;
  __u64 t1 = *cell1;
  __u64 tat = t0 < t1 ? t0 : t1;
  if (tat < now) {
    tat = now;
  }
  if (tat - now > tolerance) {
    return 0;
  }
  __u64 next = tat + interval;
  if (t0 < next) {
    *cell0 = next;
  }
  if (t1 < next) {
    *cell1 = next;
  }
  return 1;
}

enum weir_steer_mode {
  WEIR_STEER_LEAST_LOADED = 0,
  WEIR_STEER_ROUND_ROBIN = 1,
  WEIR_STEER_HASH = 2,
};

/* The program's global state (its .bss), memory-mapped by the master before it forks, so the
 * program, the master and every worker share one copy.
 *
 * Load of slot s = steered[s] + the sum over lanes l of active[l][s]. The program adds to
 * steered[s] when it sends a SYN to slot s (long before accept); the worker of slot s takes it
 * off on accept. active[l][s] is written by one process only: the worker of slot s in the
 * generation that holds lane l (+1 on accept, -1 on close). When that worker dies the master
 * zeroes its counter, and when the generation ends the master zeroes the lane and frees it, so
 * a free lane always counts zero and the program may sum every lane. */
struct weir_steer_state {
  __u32 nworkers;      /* slots in use, 1..WEIR_MAX_WORKERS; 0 = steering off */
  __u32 mode;          /* enum weir_steer_mode */
  __u64 rotor;         /* rotation counter: round-robin order and least-loaded tie breaks */
  __u64 misses;        /* selections that fell back to the kernel hash (unknown group, no socket) */
  __u64 steered_total; /* SYNs steered */
  __u64 live;          /* bit s: slot s has a running worker; only live slots are chosen */
  __u64 lane_owner[WEIR_LANES]; /* (master pid << 32) | generation; 0 = free */
  __s64 steered[WEIR_MAX_WORKERS];
  __s64 active[WEIR_LANES][WEIR_MAX_WORKERS];
  /* Per-client limits (see weir_client_limit), after everything above so that the steering
   * fields keep their offsets. */
  __u64 client_seed; /* keys the client hash; random, set once by the master that creates it */
  struct weir_client_limit limits[WEIR_MAX_GROUPS]; /* written by the master */
  __u64 limited[WEIR_MAX_GROUPS]; /* SYNs the program refused for a per-client limit */
  /* rate_per_client: a count-min sketch of GCRA cells. A client's two cells are
   * rate_tat[0][h mod N] and rate_tat[1][(h >> 32) mod N] of its hash h; see weirRateAllows. */
  __u64 rate_tat[2][WEIR_CLIENT_BUCKETS];
  /* max_connections_per_client: a count-min sketch of the connections clients hold, cells
   * picked like rate_tat's. Workers add on accept and take off on close (the master for a
   * worker that died); the program only reads, to refuse a client at its limit. */
  __u32 conns[2][WEIR_CLIENT_BUCKETS];
};
