/*
 * bench_emb.c - the share of a training step that an embedding task's
 * O(B^2) loss takes, on bge-small shapes (make bench-emb).
 *
 * A bge-small-shaped encoder (12 layers, hidden 384, 12 heads, FFN 1536,
 * vocabulary 30522) with random weights trains one embedding task:
 * symmetric MNRL with a hard negative per anchor and Matryoshka dims
 * 384/256/128/64, the heaviest loss emb.h has.  A batch of B anchors
 * carries 2B extra rows (positives, negatives), every row T tokens, all
 * attended.  For each B it times full training steps (mtl_train_step:
 * forward over the 3B rows, loss, backward, AdamW; median of -n after a
 * warm-up) and the loss alone (mtl_emb_loss on the step's pooled rows:
 * the similarity matrices, softmaxes and their gradient at every dim;
 * median of 21 runs), and prints the loss's share of a step.
 *
 * Usage: bench_emb [-c] [-t THREADS] [-n STEPS] [-T TOKENS] [-b B]...
 *   -c  time by process CPU time instead of wall time (meaningful with
 *       -t 1 on a shared machine)
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bert.h"
#include "emb.h"
#include "head.h"
#include "task.h"
#include "train.h"

static const char tasks_json[] =
	"{\"tasks\":[{\"name\":\"sim\",\"kind\":\"embedding\",\"loss\":\"mnrl\","
	"\"symmetric\":true,\"matryoshka_dims\":[384,256,128,64]}]}";

static void die(const char *msg)
{
	fprintf(stderr, "bench_emb: %s\n", msg);
	exit(1);
}

int main(int argc, char **argv)
{
	struct mtl_bert_config cfg = {
		.vocab = 30522, .hidden = 384, .layers = 12, .heads = 12,
		.intermediate = 1536, .max_pos = 512, .type_vocab = 2,
		.ln_eps = 1e-12f, .pad_id = 0, .hidden_dropout = 0.1f,
		.attn_dropout = 0.1f,
	};
	int threads = 2, steps = 3, T = 32, bs[8], nb = 0, c;
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_err err;

	while ((c = getopt(argc, argv, "ct:n:T:b:")) != -1) {
		switch (c) {
		case 'c': bench_clock = CLOCK_PROCESS_CPUTIME_ID; break;
		case 't': threads = atoi(optarg); break;
		case 'n': steps = atoi(optarg); break;
		case 'T': T = atoi(optarg); break;
		case 'b':
			if (nb < 8)
				bs[nb++] = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_emb [-c] [-t THREADS] [-n STEPS] [-T TOKENS] [-b B]...\n");
			return 2;
		}
	}
	if (!nb) {
		bs[nb++] = 16;
		bs[nb++] = 32;
		bs[nb++] = 64;
	}
	if (steps < 1 || steps > 100 || T < 2)
		die("bad -n or -T");
	if (mtl_bert_new(&m, &cfg, &err) ||
	    mtl_task_parse(&ts, tasks_json, sizeof(tasks_json) - 1, "tasks", &err) ||
	    mtl_heads_new(&hd, ts, cfg.hidden, MTL_POOL_CLS, &err))
		die(err.msg);
	mtl_bert_init_random(m, 1);
	mtl_bert_set_threads(m, threads);
	mtl_train_opts_defaults(&o);
	o.total = 1000;
	if (mtl_train_new(&tr, m, hd, &o, &err))
		die(err.msg);
	printf("bge-small shapes, symmetric MNRL + hard negatives, Matryoshka 384/256/128/64, "
	       "T %d, %d threads, %s time\n", T, threads,
	       bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
	printf("%6s %6s %10s %10s %8s\n", "B", "rows", "step_s", "loss_ms", "share");
	for (int k = 0; k < nb; k++) {
		int B = bs[k], R = 3 * B;
		struct mtl_batch b = { 0 };
		struct mtl_step_stats st;
		const struct mtl_batch *bp = &b;
		int32_t *pos = malloc(sizeof(int32_t) * B), *neg = malloc(sizeof(int32_t) * B);
		int32_t *lab[1] = { pos }, *negs[1] = { neg };
		float *dP = malloc(sizeof(float) * (size_t)R * cfg.hidden);
		double ts_[100], tl[21], L;
		struct mtl_rng rng;

		b.B = B;
		b.E = 2 * B;
		b.T = T;
		b.n_tasks = 1;
		b.ids = malloc(sizeof(int32_t) * (size_t)R * T);
		b.lengths = malloc(sizeof(int32_t) * (size_t)R);
		b.labels = lab;
		b.neg = negs;
		if (!pos || !neg || !dP || !b.ids || !b.lengths || mtl_step_stats_init(&st, 1))
			die("out of memory");
		mtl_rng_init(&rng, 5);
		for (int i = 0; i < R * T; i++)
			b.ids[i] = (int32_t)mtl_rng_below(&rng, (uint64_t)cfg.vocab);
		for (int i = 0; i < R; i++)
			b.lengths[i] = T;
		for (int i = 0; i < B; i++) {
			pos[i] = B + i;
			neg[i] = 2 * B + i;
		}
		if (mtl_train_step(tr, &bp, 1, &st, &err) < 0) /* warm-up */
			die(err.msg);
		for (int s = 0; s < steps; s++) {
			double t = bench_now();

			if (mtl_train_step(tr, &bp, 1, &st, &err) < 0)
				die(err.msg);
			ts_[s] = bench_now() - t;
		}
		/* the loss alone, on the last step's pooled rows */
		{
			int32_t *a = malloc(sizeof(int32_t) * B);

			for (int i = 0; i < B; i++)
				a[i] = i;
			for (int r = 0; r < 21; r++) {
				double t = bench_now();

				memset(dP, 0, sizeof(float) * (size_t)R * cfg.hidden);
				if (mtl_emb_loss(&L, dP, tr->pooled, R, cfg.hidden, a, pos,
						 neg, NULL, B, &ts->task[0].emb, 1.0f,
						 NULL, &err))
					die(err.msg);
				tl[r] = bench_now() - t;
			}
			free(a);
		}
		qsort(ts_, (size_t)steps, sizeof(double), bench_cmp_double);
		qsort(tl, 21, sizeof(double), bench_cmp_double);
		printf("%6d %6d %10.3f %10.3f %7.2f%%\n", B, R, ts_[steps / 2],
		       1e3 * tl[10], 100 * tl[10] / ts_[steps / 2]);
		fflush(stdout);
		mtl_step_stats_release(&st);
		free(b.ids);
		free(b.lengths);
		free(pos);
		free(neg);
		free(dP);
	}
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
	return 0;
}
