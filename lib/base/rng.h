/*
 * rng.h - a small, fast, reproducible random number generator
 * (xoshiro256**, seeded through splitmix64).
 *
 * The state is a plain struct so that trainers can save it in checkpoints
 * and resume bit-identically.  The same seed gives the same sequence on
 * every machine.  Not for cryptography.
 */
#ifndef MTL_RNG_H
#define MTL_RNG_H

#include <stddef.h>
#include <stdint.h>

struct mtl_rng {
	uint64_t s[4];
};

/* Seeds r; every seed, 0 included, gives a valid, distinct state. */
void mtl_rng_init(struct mtl_rng *r, uint64_t seed);
uint64_t mtl_rng_u64(struct mtl_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float mtl_rng_float(struct mtl_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double mtl_rng_double(struct mtl_rng *r);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t mtl_rng_below(struct mtl_rng *r, uint64_t n);
/*
 * Standard normal (Box-Muller).  Each call takes two uniforms and returns
 * one value, keeping no cached second value, so the state alone says
 * where a stream is.
 */
double mtl_rng_normal(struct mtl_rng *r);
/* Fisher-Yates shuffle of n elements of size bytes each (size <= 64). */
void mtl_rng_shuffle(struct mtl_rng *r, void *base, size_t n, size_t size);

#endif
