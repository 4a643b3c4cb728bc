/* rng.c - xoshiro256** seeded by splitmix64; see rng.h. */
#include "rng.h"

#include <math.h>
#include <string.h>

#include "err.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = mtl_rng_at(*x, 0);

	*x += 0x9e3779b97f4a7c15ull;
	return z;
}

void mtl_rng_init(struct mtl_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t mtl_rng_u64(struct mtl_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

float mtl_rng_float(struct mtl_rng *r)
{
	return (float)(mtl_rng_u64(r) >> 40) * 0x1.0p-24f;
}

double mtl_rng_double(struct mtl_rng *r)
{
	return (double)(mtl_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t mtl_rng_below(struct mtl_rng *r, uint64_t n)
{
	/* reject the top partial range so every value is equally likely */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;

	MTL_ASSERT(n > 0);
	do
		x = mtl_rng_u64(r);
	while (x >= limit);
	return x % n;
}

double mtl_rng_normal(struct mtl_rng *r)
{
	double u1 = 1.0 - mtl_rng_double(r); /* (0, 1]: log is finite */
	double u2 = mtl_rng_double(r);

	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void mtl_rng_shuffle(struct mtl_rng *r, void *base, size_t n, size_t size)
{
	unsigned char tmp[64], *b = base;

	MTL_ASSERT(size <= sizeof(tmp));
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)mtl_rng_below(r, i);
		if (j == i - 1)
			continue;
		memcpy(tmp, b + (i - 1) * size, size);
		memcpy(b + (i - 1) * size, b + j * size, size);
		memcpy(b + j * size, tmp, size);
	}
}
