/*
 * test_par.c - mtl_par_for (lib/base/par.h): every index once, slots in
 * range, nested and concurrent calls, many loops in a row.  That no call
 * waits for a thread that took no chunk is a matter of timing, measured
 * by bench_encode -l (docs/performance.md, "Threads under load").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "t.h"

struct count {
	_Atomic int *hits;     /* per index */
	_Atomic int chunks;
	_Atomic int bad_slot;  /* a slot outside [0, nt) or a bad range */
	int64_t n, chunk;
	int nt;
};

static void count_fn(void *arg, int64_t lo, int64_t hi, int slot)
{
	struct count *c = arg;

	if (slot < 0 || slot >= c->nt || lo < 0 || hi > c->n || lo >= hi ||
	    lo % c->chunk || (hi - lo != c->chunk && hi != c->n))
		c->bad_slot = 1;
	for (int64_t i = lo; i < hi; i++)
		c->hits[i]++;
	c->chunks++;
}

/* 1 if mtl_par_for(nt, n, chunk) ran each index once in its chunks. */
static int covers(int nt, int64_t n, int64_t chunk)
{
	struct count c = { calloc((size_t)(n ? n : 1), sizeof(_Atomic int)),
			   0, 0, n, chunk, nt };
	int ok = c.hits != NULL;

	mtl_par_for(nt, n, chunk, count_fn, &c);
	for (int64_t i = 0; ok && i < n; i++)
		ok = c.hits[i] == 1;
	ok = ok && !c.bad_slot && c.chunks == (n + chunk - 1) / chunk;
	free(c.hits);
	return ok;
}

/* fn that calls mtl_par_for itself: the inner loop runs alone. */
struct nest {
	_Atomic int inner_bad;
	struct count inner[8];
};

static void nest_fn(void *arg, int64_t lo, int64_t hi, int slot)
{
	struct nest *ne = arg;

	for (int64_t i = lo; i < hi; i++) {
		struct count *c = &ne->inner[i];

		mtl_par_for(4, c->n, c->chunk, count_fn, c);
		for (int64_t k = 0; k < c->n; k++)
			if (c->hits[k] != 1)
				ne->inner_bad = 1;
	}
}

/* Two threads running loops at once. */
static void *loops(void *p)
{
	int *ok = p;

	for (int r = 0; r < 300; r++)
		*ok &= covers(2 + r % 3, 1000 + r, 7 + r % 13);
	return NULL;
}

int main(void)
{
	static const struct { int nt; int64_t n, chunk; } shapes[] = {
		{ 1, 10, 3 }, { 2, 0, 4 }, { 2, 1, 1 }, { 2, 5, 5 },
		{ 2, 100, 1 }, { 2, 1001, 16 }, { 3, 4096, 64 }, { 4, 37, 5 },
		{ 8, 100000, 333 }, { 2, 7, 100 },
	};
	struct nest ne = { 0 };
	pthread_t th[2];
	int ok[2] = { 1, 1 }, all = 1;

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		T_OK(covers(shapes[i].nt, shapes[i].n, shapes[i].chunk),
		     "nt %d, n %lld, chunk %lld: every index once, slots in range",
		     shapes[i].nt, (long long)shapes[i].n,
		     (long long)shapes[i].chunk);

	/* thousands of loops in a row: each generation's chunks its own */
	for (int r = 0; r < 5000 && all; r++)
		all = covers(2, 64 + r % 50, 1 + r % 9);
	T_OK(all, "5000 loops in a row, each index once");

	for (int i = 0; i < 8; i++) {
		ne.inner[i].n = 50 + i;
		ne.inner[i].chunk = 3;
		ne.inner[i].nt = 1; /* run alone: slot 0 only */
		ne.inner[i].hits = calloc(64, sizeof(_Atomic int));
	}
	mtl_par_for(2, 8, 1, nest_fn, &ne);
	all = !ne.inner_bad;
	for (int i = 0; i < 8; i++) {
		all &= !ne.inner[i].bad_slot;
		free(ne.inner[i].hits);
	}
	T_OK(all, "a loop inside a loop's chunk runs on the calling thread alone");

	T_OK(!pthread_create(&th[0], NULL, loops, &ok[0]) &&
	     !pthread_create(&th[1], NULL, loops, &ok[1]),
	     "two threads start loops");
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	T_OK(ok[0] && ok[1], "loops from two threads at once: each index once");
	return t_done();
}
