/*
 * bench_train.c - training throughput against the machine's BLIS sgemm
 * (make bench-train).
 *
 * For bge-small, bge-base and bge-large shapes (vocabulary 30522, 512
 * positions) with random weights, runs full training steps at batch
 * 16x64 and 8x128: forward in train mode with dropout 0.1, a sequence
 * head (3 labels, linear, on CLS) and a token head (5 labels, linear),
 * both losses, backward through heads and encoder, global-norm clipping
 * and AdamW, the workload of tools/bench_torch.py's "train".  Inputs are
 * random ids with every token attended and labelled.
 *
 * Each workload runs in a child process, so its peak RSS (ru_maxrss of
 * the child) is its own.  One warm-up step, then steps until -s seconds
 * have passed (at least 3); the median is reported.
 *
 * FLOPs, counted as 2*m*n*k per matrix product: a forward is
 * B*T*L*(8H^2 + 4HI + 4TH) (mtl_bert_forward_flops: the Q, K, V and
 * output projections, the two FFN matrices, QK^T and PV); backward does
 * two products of the same size per forward product (the input and the
 * weight gradient for a linear layer; dP, dV, dQ, dK for attention), so
 * a step is 3x forward.  Heads, embeddings, LayerNorm, softmax, GELU and
 * AdamW count nothing (they are real work, so the ratio is if anything
 * flattering to nobody).  The reference is the sgemm the encoder uses
 * (lib/nn/gemm.h's mtl_gemm_default(): BLIS threaded by BLIS, or mtl's
 * kernel on column slices, one per thread, as lib/nn/ops.c runs it) on
 * 2048^3 in the encoder's transposed-B layout, measured in the same
 * child with the same thread count just before the steps, so that both
 * sides of the ratio see the same machine load.
 *
 * With -l, each timed step is followed by the same step beside a busy
 * loop (busy.h: another process spinning on the last core for that
 * step), and a row "MODEL+busy" gives their median (its sgemm columns
 * "-"): how a step fares when another program takes a core.
 *
 * Usage: bench_train [-c] [-l] [-S] [-R] [-r] [-L] [-f] [-t THREADS] [-s SECONDS] [-n STEPS]
 *                    [-m small|base|large]... [-b BxT]...
 *   -c  time by process CPU time instead of wall time (meaningful with
 *       -t 1 on a shared machine; with more threads it counts spinning)
 *   -l  also time each step beside a busy loop on one core (above)
 *   -S  thread the projections by column slices (mtl_bert_set_gemm_split)
 *       instead of inside BLIS, forward and backward
 *   -n  at most STEPS timed steps (0: the warm-up step only, for peak RSS)
 *   -R  no sgemm reference (its columns print "-"): saves its seconds
 *       when only tokens/s and memory matter (tools/bench_compare.py)
 *   -r  recompute each layer's activations in backward
 *       (mtl_bert_set_recompute; tools/bench_torch.py --recompute is
 *       PyTorch's torch.utils.checkpoint per layer)
 *   -L  the low-memory step (train.h, o.low_memory: one layer's
 *       gradient at a time, two passes a step)
 *   -f  new random ids before each timed step (outside its time), so
 *       that the word-embedding rows the steps reach grow as over real
 *       data, and with them the moments AdamW touches (adamw.h, seen):
 *       16x64 reaches about 3% of bge's 30,522 rows a step
 */
#define _GNU_SOURCE /* sched_setaffinity, in busy.h */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <blis.h>
#include <omp.h>

#include "bench.h"
#include "busy.h"
#include "bert.h"
#include "gemm.h"
#include "head.h"
#include "task.h"
#include "train.h"

static int split, no_ref, recompute, low_memory, fresh;

/* New random token ids for b (and with -f before each timed step). */
static void draw_ids(struct mtl_batch *b, struct mtl_rng *rng, int vocab)
{
	for (int i = 0; i < b->B * b->T; i++)
		b->ids[i] = (int32_t)mtl_rng_below(rng, (uint64_t)vocab);
}

/* GFLOP/s of the encoder's sgemm C[n,n] = A[n,n] B[n,n]^T on threads
 * (see above), best of 3. */
static double sgemm_gflops(int n, int threads)
{
	float *a = malloc(sizeof(float) * (size_t)n * n);
	float *b = malloc(sizeof(float) * (size_t)n * n);
	float *c = malloc(sizeof(float) * (size_t)n * n);
	float one = 1.0f, zero = 0.0f;
	double best = 1e30;
	rntm_t rntm;

	for (size_t i = 0; i < (size_t)n * n; i++) {
		a[i] = (float)(i % 7) * 0.1f;
		b[i] = (float)(i % 5) * 0.1f;
	}
	bli_rntm_init(&rntm);
	bli_rntm_set_num_threads(threads, &rntm);
	for (int r = 0; r < 4; r++) {
		double t = bench_now();

		if (mtl_gemm_default() == MTL_GEMM_BLIS)
			bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, n, n, n,
				     &one, a, n, 1, b, n, 1, &zero, c, n, 1,
				     NULL, &rntm);
		else
#pragma omp parallel num_threads(threads)
		{
			int w = (n / threads + 15) & ~15;
			int lo = omp_get_thread_num() * w;

			if (lo < n)
				mtl_gemm(0, 1, n, n - lo < w ? n - lo : w, n,
					 1.0f, a, n, b + (int64_t)lo * n, n,
					 0.0f, c + lo, n);
		}
		t = bench_now() - t;
		if (r && t < best)
			best = t;
	}
	free(a), free(b), free(c);
	return 2.0 * n * n * n / best / 1e9;
}

static const char tasks_json[] =
	"{\"tasks\":["
	"{\"name\":\"seq\",\"kind\":\"sequence\",\"labels\":[\"a\",\"b\",\"c\"],\"head\":{\"dropout\":0.1}},"
	"{\"name\":\"tok\",\"kind\":\"token\",\"labels\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"head\":{\"dropout\":0.1}}]}";

struct result {
	int steps;
	double sec, sgemm, sec_busy; /* sec_busy: with -l */
};

static int busy; /* -l */

/* One workload in this (child) process; writes the result to fd. */
static int run(const struct mtl_bert_config *cfg, int B, int T, int threads,
	       double min_time, int max_steps, int fd)
{
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_batch b = { 0 };
	struct mtl_rng rng;
	struct mtl_err err;
	int32_t *lab[2];
	const struct mtl_batch *bp = &b;
	double times[1000], busy_times[1000], t0;
	struct result r = { 0 };

	if (mtl_bert_new(&m, cfg, &err) ||
	    mtl_task_parse(&ts, tasks_json, sizeof(tasks_json) - 1, "tasks", &err) ||
	    mtl_heads_new(&hd, ts, cfg->hidden, MTL_POOL_CLS, &err)) {
		fprintf(stderr, "bench_train: %s\n", err.msg);
		return 1;
	}
	mtl_bert_init_random(m, 1);
	mtl_heads_init_random(hd, 2);
	mtl_bert_set_threads(m, threads);
	mtl_bert_set_gemm_split(m, split);
	mtl_bert_set_recompute(m, recompute);
	mtl_train_opts_defaults(&o);
	o.total = 1000;
	o.low_memory = low_memory;
	if (mtl_train_new(&tr, m, hd, &o, &err) || mtl_step_stats_init(&st, 2)) {
		fprintf(stderr, "bench_train: %s\n", err.msg);
		return 1;
	}
	mtl_rng_init(&rng, 5);
	b.B = B;
	b.T = T;
	b.n_tasks = 2;
	b.ids = malloc(sizeof(int32_t) * (size_t)B * T);
	b.lengths = malloc(sizeof(int32_t) * (size_t)B);
	lab[0] = malloc(sizeof(int32_t) * (size_t)B);
	lab[1] = malloc(sizeof(int32_t) * (size_t)B * T);
	b.labels = lab;
	draw_ids(&b, &rng, cfg->vocab);
	for (int i = 0; i < B * T; i++)
		lab[1][i] = (int32_t)mtl_rng_below(&rng, 5);
	for (int i = 0; i < B; i++) {
		b.lengths[i] = T;
		lab[0][i] = (int32_t)mtl_rng_below(&rng, 3);
	}
	r.sgemm = no_ref ? 0 : sgemm_gflops(2048, threads);
	r.sec = bench_now();
	if (mtl_train_step(tr, &bp, 1, &st, &err) < 0) { /* warm-up */
		fprintf(stderr, "bench_train: %s\n", err.msg);
		return 1;
	}
	t0 = bench_now();
	times[0] = t0 - r.sec; /* the warm-up, reported when no step is timed */
	while (r.steps < max_steps &&
	       (r.steps < 3 || bench_now() - t0 < min_time)) {
		double t;

		if (fresh)
			draw_ids(&b, &rng, cfg->vocab);
		t = bench_now();
		if (mtl_train_step(tr, &bp, 1, &st, &err) < 0) {
			fprintf(stderr, "bench_train: %s\n", err.msg);
			return 1;
		}
		times[r.steps] = bench_now() - t;
		if (busy) { /* the same step again beside a busy loop */
			pid_t pid = busy_start();
			int rc;

			t = bench_now();
			rc = mtl_train_step(tr, &bp, 1, &st, &err);
			busy_times[r.steps] = bench_now() - t;
			busy_stop(pid);
			if (rc < 0) {
				fprintf(stderr, "bench_train: %s\n", err.msg);
				return 1;
			}
		}
		r.steps++;
	}
	if (busy && r.steps) {
		qsort(busy_times, (size_t)r.steps, sizeof(double), bench_cmp_double);
		r.sec_busy = busy_times[r.steps / 2];
	}
	qsort(times, (size_t)(r.steps ? r.steps : 1), sizeof(double), bench_cmp_double);
	r.sec = times[r.steps / 2];
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int H, L, NH, I; } shapes[] = {
		{ "small", 384, 12, 12, 1536 },
		{ "base", 768, 12, 12, 3072 },
		{ "large", 1024, 24, 16, 4096 },
	};
	int threads = 2, c, want[3] = { 0 }, any = 0, nb = 0, max_steps = 1000;
	int bs[8][2], def[2][2] = { { 16, 64 }, { 8, 128 } };
	double min_time = 10;
	char host[256] = "?";
	double load[3] = { 0 };

	busy_main(argc, argv);
	while ((c = getopt(argc, argv, "clSRrLft:s:n:m:b:h")) != -1) {
		switch (c) {
		case 'c': bench_clock = CLOCK_PROCESS_CPUTIME_ID; break;
		case 'l': busy = 1; break;
		case 'S': split = 1; break;
		case 'R': no_ref = 1; break;
		case 'r': recompute = 1; break;
		case 'L': low_memory = 1; break;
		case 'f': fresh = 1; break;
		case 'n':
			max_steps = atoi(optarg);
			max_steps = max_steps < 0 ? 0 : max_steps > 1000 ? 1000 : max_steps;
			break;
		case 't': threads = atoi(optarg); break;
		case 's': min_time = atof(optarg); break;
		case 'm':
			for (int i = 0; i < 3; i++)
				if (!strcmp(optarg, shapes[i].name))
					want[i] = any = 1;
			break;
		case 'b':
			if (nb < 8 && sscanf(optarg, "%dx%d", &bs[nb][0], &bs[nb][1]) == 2)
				nb++;
			break;
		default:
			fprintf(stderr, "usage: bench_train [-c] [-l] [-S] [-R] [-r] [-L] [-f] [-t THREADS] [-s SECONDS] [-n STEPS] [-m small|base|large]... [-b BxT]...\n");
			return 2;
		}
	}
	if (!any)
		want[0] = want[1] = want[2] = 1;
	if (!nb) {
		memcpy(bs, def, sizeof(def));
		nb = 2;
	}
	gethostname(host, sizeof(host) - 1);
	getloadavg(load, 3);
	printf("# bench_train: host %s, %d threads (%s), sgemm %s, %s time, load average %.2f %.2f %.2f at start\n",
	       host, threads, split ? "column slices per projection, -S" : "threads inside each product",
	       mtl_gemm_name(mtl_gemm_default()),
	       bench_clock == CLOCK_MONOTONIC ? "wall" : "process CPU",
	       load[0], load[1], load[2]);
	printf("# a step: dropout 0.1, two linear heads, AdamW; GFLOP/s counts 3x the forward's 2mnk\n");
	printf("model\tbatch\tseq\tsteps\tsec_per_step\ttokens_per_s\tgflops\tsgemm_gflops\tof_sgemm\tpeak_rss_mb\n");
	fflush(stdout);
	for (int s = 0; s < 3; s++) {
		for (int k = 0; s < 3 && want[s] && k < nb; k++) {
			struct mtl_bert_config cfg = {
				.vocab = 30522, .hidden = shapes[s].H,
				.layers = shapes[s].L, .heads = shapes[s].NH,
				.intermediate = shapes[s].I, .max_pos = 512,
				.type_vocab = 2, .ln_eps = 1e-12f, .pad_id = 0,
				.hidden_dropout = 0.1f, .attn_dropout = 0.1f,
			};
			int B = bs[k][0], T = bs[k][1], fd[2], status;
			struct rusage ru;
			struct result r;
			pid_t pid;
			double gf;
			char ref[64];

			if (pipe(fd))
				return 1;
			fflush(stdout);
			pid = fork();
			if (pid == 0) {
				close(fd[0]);
				_exit(run(&cfg, B, T, threads, min_time, max_steps, fd[1]));
			}
			close(fd[1]);
			if (read(fd[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
				fprintf(stderr, "bench_train: %s %dx%d failed\n",
					shapes[s].name, B, T);
				wait4(pid, &status, 0, &ru);
				close(fd[0]);
				continue;
			}
			close(fd[0]);
			wait4(pid, &status, 0, &ru);
			gf = 3 * mtl_bert_forward_flops(&cfg, B, T) / r.sec / 1e9;
			if (r.sgemm > 0)
				snprintf(ref, sizeof(ref), "%.1f\t%.2f", r.sgemm,
					 gf / r.sgemm);
			else
				snprintf(ref, sizeof(ref), "-\t-");
			printf("%s\t%d\t%d\t%d\t%.3f\t%.0f\t%.1f\t%s\t%.0f\n",
			       shapes[s].name, B, T, r.steps, r.sec,
			       (double)B * T / r.sec, gf, ref,
			       ru.ru_maxrss / 1024.0);
			if (busy && r.sec_busy > 0)
				printf("%s+busy\t%d\t%d\t%d\t%.3f\t%.0f\t%.1f\t-\t-\t%.0f\n",
				       shapes[s].name, B, T, r.steps, r.sec_busy,
				       (double)B * T / r.sec_busy,
				       3 * mtl_bert_forward_flops(&cfg, B, T) / r.sec_busy / 1e9,
				       ru.ru_maxrss / 1024.0);
			fflush(stdout);
		}
	}
	getloadavg(load, 3);
	printf("# load average %.2f %.2f %.2f at the end\n", load[0], load[1], load[2]);
	return 0;
}
