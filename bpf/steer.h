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
};
