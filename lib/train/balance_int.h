/*
 * balance_int.h - internal to task balancing (balance.c: the balancer,
 * balance_math.c: the methods' arithmetic); not a module of its own: the
 * contract is balance.h's.
 */
#ifndef MTL_BALANCE_INT_H
#define MTL_BALANCE_INT_H

#include "balance.h"

/*
 * K[i][j] += sum_{k<len} g_i[off+k] g_j[off+k], rows stride floats apart,
 * over the rows whose active[] is set (NULL: all); the rows of absent
 * tasks are never read (their buffers hold stale values).
 */
void gram_acc(double *K, const float *g, int T, size_t stride,
	      size_t off, size_t len, int nt, const uint8_t *active);

#endif
