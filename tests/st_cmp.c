/*
 * st_cmp - compares two safetensors files tensor by tensor, for tests
 * that check two runs reached the same weights (tests/dist.bats).
 *
 *	st_cmp A B RTOL ATOL
 *
 * Every tensor of A must be in B with the same shape, and every element
 * within ATOL + RTOL * |b|; B may hold no tensor A lacks.  Prints the
 * largest relative difference (|a-b| / max(|b|, ATOL)) and, for each
 * tensor that fails, its name and worst element.  Exit status 0 when all
 * agree, 1 when any differs, 2 on bad arguments or files.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

int main(int argc, char **argv)
{
	struct mtl_st *a = NULL, *b = NULL;
	struct mtl_err err;
	double rtol, atol, worst = 0;
	int bad = 0;

	if (argc != 5) {
		fputs("usage: st_cmp A B RTOL ATOL\n", stderr);
		return 2;
	}
	rtol = atof(argv[3]);
	atol = atof(argv[4]);
	if (mtl_st_open(&a, argv[1], &err) || mtl_st_open(&b, argv[2], &err)) {
		fprintf(stderr, "st_cmp: %s\n", err.msg);
		mtl_st_close(a);
		return 2;
	}
	if (mtl_st_count(a) != mtl_st_count(b)) {
		printf("%zu tensors against %zu\n", mtl_st_count(a), mtl_st_count(b));
		bad = 1;
	}
	for (size_t i = 0; i < mtl_st_count(a); i++) {
		const struct mtl_st_tensor *ta = mtl_st_at(a, i);
		const struct mtl_st_tensor *tb = mtl_st_find(b, ta->name);
		float *x, *y;
		double tw = 0;
		int64_t at = -1;

		if (!tb || tb->numel != ta->numel || tb->ndim != ta->ndim ||
		    memcmp(tb->shape, ta->shape, sizeof(int64_t) * (size_t)ta->ndim)) {
			printf("%s: missing or of another shape\n", ta->name);
			bad = 1;
			continue;
		}
		x = malloc(sizeof(float) * (size_t)(ta->numel + 1));
		y = malloc(sizeof(float) * (size_t)(ta->numel + 1));
		if (!x || !y || mtl_st_read_f32(ta, x, ta->numel, &err) ||
		    mtl_st_read_f32(tb, y, tb->numel, &err)) {
			printf("%s: cannot read\n", ta->name);
			bad = 1;
			free(x);
			free(y);
			continue;
		}
		for (int64_t k = 0; k < ta->numel; k++) {
			double d = fabs((double)x[k] - y[k]);
			double r = d / fmax(fabs((double)y[k]), atol);

			if (!(d <= atol + rtol * fabs((double)y[k])) && !(r <= tw)) {
				tw = isnan(r) ? INFINITY : r;
				at = k;
			}
			if (r > worst || isnan(r))
				worst = isnan(r) ? INFINITY : r;
		}
		if (at >= 0) {
			printf("%s: element %lld: %.9g against %.9g\n", ta->name,
			       (long long)at, x[at], y[at]);
			bad = 1;
		}
		free(x);
		free(y);
	}
	printf("max relative difference %.3g\n", worst);
	mtl_st_close(a);
	mtl_st_close(b);
	return bad;
}
