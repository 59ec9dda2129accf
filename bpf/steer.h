/* Shared between bpf/steer.bpf.c and lb/steer: the one definition of every value the BPF
 * program and user space both read. The C++ side static_asserts this layout. */
#pragma once

#include <linux/types.h>

#define WEIR_MAX_WORKERS 64 /* power of two: the program masks slot indexes with it */
#define WEIR_MAX_GROUPS 64  /* reuseport groups (listen addresses) per appliance */

enum weir_steer_mode {
  WEIR_STEER_LEAST_LOADED = 0,
  WEIR_STEER_ROUND_ROBIN = 1,
  WEIR_STEER_HASH = 2,
};

/* Load of one worker slot. The program adds to `steered` when it sends a connection to the
 * slot (at SYN time, long before accept); the worker moves it to `active` on accept and
 * subtracts from `active` on close. Load = steered + active. */
struct weir_slot_load {
  __s64 steered;
  __s64 active;
};

/* The program's global state (its .bss), memory-mapped by the master before it forks, so
 * the program, the master and every worker share one copy. */
struct weir_steer_state {
  __u32 nworkers;   /* slots in use, 1..WEIR_MAX_WORKERS; 0 = steering off */
  __u32 mode;       /* enum weir_steer_mode */
  __u64 rotor;      /* rotation counter: round-robin order and least-loaded tie breaks */
  __u64 misses;     /* selections that fell back to the kernel hash (unknown group, no socket) */
  __u64 steered_total; /* SYNs steered */
  struct weir_slot_load slots[WEIR_MAX_WORKERS];
};
