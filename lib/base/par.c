/*
 * par.c - the barrier-free parallel loop of par.h.
 *
 * One loop at a time, under `busy`.  A loop is published as a generation
 * g: the caller writes the loop's fields, then stores (g << 32 | 0) into
 * `next` and g into `gen` (the futex word the pool sleeps on).  A thread
 * takes chunk i of loop g by moving `next` from (g << 32 | i) to
 * (g << 32 | i + 1) with a compare-and-swap, so it can never take a chunk
 * of a loop other than the one whose fields it read: the fields of loop
 * g + 1 are written only after every chunk of g is done, by which time no
 * CAS on (g << 32 | i), i < count, can succeed.  A pool thread that reads
 * fields being rewritten for the next loop fails its CAS and reads again.
 */
#include "par.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <immintrin.h>

/* Pool threads at most (slots 1..MAX_SLOTS). */
#define MAX_SLOTS 255
/* Elements below which a loop runs on the calling thread alone. */
#define PAR_MIN 32768
/* Pause instructions a pool thread spins for the next loop before it
 * sleeps: tens of microseconds, longer than the gap between two of the
 * encoder's loops, far shorter than a scheduler slice. */
#define SPIN 4000

static struct {
	pthread_mutex_t busy;        /* held by the thread running a loop */
	int started;                 /* pool threads started (under busy) */
	_Atomic uint32_t gen;        /* the current loop's generation */
	_Atomic uint64_t next;       /* gen << 32 | the next chunk to take */
	_Atomic int64_t done;        /* chunks of the current loop done */
	_Atomic int sleepers;        /* pool threads in futex_wait */
	/* the current loop, read by pool threads (see above) */
	_Atomic(mtl_par_fn *) fn;
	_Atomic(void *) arg;
	_Atomic int64_t n, chunk, count;
	_Atomic int nt;
} pool = { .busy = PTHREAD_MUTEX_INITIALIZER };

static void futex_wait(_Atomic uint32_t *w, uint32_t v)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Takes and runs chunks of loop g until none is left. */
static void take(uint32_t g, int slot)
{
	for (;;) {
		uint64_t v = atomic_load_explicit(&pool.next, memory_order_acquire);
		uint32_t i = (uint32_t)v;
		int64_t n, chunk, lo;
		mtl_par_fn *fn;
		void *arg;

		if ((uint32_t)(v >> 32) != g)
			return;
		n = atomic_load_explicit(&pool.n, memory_order_relaxed);
		chunk = atomic_load_explicit(&pool.chunk, memory_order_relaxed);
		fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
		arg = atomic_load_explicit(&pool.arg, memory_order_relaxed);
		if (i >= atomic_load_explicit(&pool.count, memory_order_relaxed) ||
		    slot >= atomic_load_explicit(&pool.nt, memory_order_relaxed))
			return;
		if (!atomic_compare_exchange_weak_explicit(&pool.next, &v, v + 1,
							   memory_order_acquire,
							   memory_order_relaxed))
			continue;
		lo = (int64_t)i * chunk;
		fn(arg, lo, n - lo < chunk ? n : lo + chunk, slot);
		atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
	}
}

static void *worker(void *p)
{
	int slot = (int)(intptr_t)p;
	uint32_t seen = 0;

	for (;;) {
		uint32_t g;
		int k = 0;

		while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen) {
			if (k++ < SPIN) {
				_mm_pause();
				continue;
			}
			atomic_fetch_add(&pool.sleepers, 1);
			futex_wait(&pool.gen, seen);
			atomic_fetch_sub(&pool.sleepers, 1);
		}
		seen = g;
		take(g, slot);
	}
	return NULL;
}

/* Starts pool threads up to slot nt - 1 (under busy); fewer on failure. */
static int start(int nt)
{
	while (pool.started < nt - 1 && pool.started < MAX_SLOTS) {
		pthread_t t;
		pthread_attr_t at;
		int ok;

		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		ok = !pthread_create(&t, &at, worker,
				     (void *)(intptr_t)(pool.started + 1));
		pthread_attr_destroy(&at);
		if (!ok)
			break;
		pool.started++;
	}
	return pool.started + 1 < nt ? pool.started + 1 : nt;
}

static void serial(int64_t n, int64_t chunk, mtl_par_fn *fn, void *arg)
{
	for (int64_t lo = 0; lo < n; lo += chunk)
		fn(arg, lo, n - lo < chunk ? n : lo + chunk, 0);
}

void mtl_par_for(int nt, int64_t n, int64_t chunk, mtl_par_fn *fn, void *arg)
{
	static uint32_t last;
	int64_t count;
	uint32_t g;

	if (n <= 0)
		return;
	count = (n + chunk - 1) / chunk;
	/* busy is held during a loop, also when fn calls us (trylock fails) */
	if (nt <= 1 || count == 1 || count > UINT32_MAX ||
	    pthread_mutex_trylock(&pool.busy)) {
		serial(n, chunk, fn, arg);
		return;
	}
	nt = start(nt);
	atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
	atomic_store_explicit(&pool.arg, arg, memory_order_relaxed);
	atomic_store_explicit(&pool.n, n, memory_order_relaxed);
	atomic_store_explicit(&pool.chunk, chunk, memory_order_relaxed);
	atomic_store_explicit(&pool.count, count, memory_order_relaxed);
	atomic_store_explicit(&pool.nt, nt, memory_order_relaxed);
	atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
	/* generation 0 is the pool threads' initial "seen" */
	g = ++last ? last : ++last;
	atomic_store_explicit(&pool.next, (uint64_t)g << 32, memory_order_release);
	atomic_store(&pool.gen, g);
	if (atomic_load(&pool.sleepers))
		futex_wake(&pool.gen);
	take(g, 0);
	/* only chunks another thread has started are left */
	while (atomic_load_explicit(&pool.done, memory_order_acquire) < count)
		_mm_pause();
	pthread_mutex_unlock(&pool.busy);
}

int64_t mtl_par_chunk(int64_t n, int64_t w, int nt)
{
	int64_t c = (n + 4 * nt - 1) / (4 * nt);

	if (n * w < PAR_MIN || nt <= 1)
		return n > 0 ? n : 1;
	return w == 1 ? (c + 15) & ~(int64_t)15 : c;
}
