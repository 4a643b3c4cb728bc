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
/*
 * Output i of a counter-based generator keyed by key: splitmix64's i-th
 * output (0-based) from the state key.  Any element of the stream is had
 * in O(1), without the ones before it, so two passes (a forward and its
 * backward, on any threads) can draw the same random bits independently
 * instead of storing them.
 */
static inline uint64_t mtl_rng_at(uint64_t key, uint64_t i)
{
	/* inline, so a loop over i vectorises */
	uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
/* Fisher-Yates shuffle of n elements of size bytes each (size <= 64). */
void mtl_rng_shuffle(struct mtl_rng *r, void *base, size_t n, size_t size);

#endif
