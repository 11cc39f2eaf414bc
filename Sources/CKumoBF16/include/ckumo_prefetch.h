#ifndef CKUMO_PREFETCH_H
#define CKUMO_PREFETCH_H

/* Asks for the cache line holding p to be loaded into every cache level ahead of its use. */
static inline void kumo_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
