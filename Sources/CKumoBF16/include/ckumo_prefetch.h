#ifndef CKUMO_PREFETCH_H
#define CKUMO_PREFETCH_H

/* Asks for the cache line holding p to be loaded into every cache level ahead of its use. */
static inline void kumo_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/* Tells the CPU this thread is spinning on a flag (x86 pause): it yields the core's shared
   resources to the sibling hyper-thread and saves power while the flag is unchanged. */
static inline void kumo_spin_pause(void) { __builtin_ia32_pause(); }

#endif
