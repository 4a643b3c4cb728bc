/*
 * test_learn.c - learning end to end: a tiny encoder (2 layers, hidden
 * 64) trained from random weights on fixtures/demo (a topic sequence task
 * and an NER token task, labels partly missing) must reach at least 95%
 * topic accuracy and 95% NER token accuracy on the held-out test split.
 * Tokenization goes through lib/data/tok.h with the demo's vocab.txt; NER
 * labels sit on each word's first sub-token (-100 on the others).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bert.h"
#include "data.h"
#include "head.h"
#include "task.h"
#include "tok.h"
#include "train.h"
#include "t.h"

struct set {
	struct mtl_example *ex;
	int n;
};

/* Reads a demo JSONL split into examples labelled against ts. */
static int read_split(struct set *s, const char *path, const struct mtl_tok *tok,
		      const struct mtl_tasks *ts)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	struct mtl_tok_enc e;
	struct mtl_err err;

	if (!f)
		return -1;
	mtl_tok_enc_init(&e);
	s->ex = NULL;
	s->n = 0;
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL), *w, *topic, *ner;
		const char *words[256];
		size_t nw;
		struct mtl_example *x;

		if (!j)
			return -1;
		w = json_object_get(j, "words");
		topic = json_object_get(j, "topic");
		ner = json_object_get(j, "ner");
		nw = json_array_size(w);
		for (size_t i = 0; i < nw && i < 256; i++)
			words[i] = json_string_value(json_array_get(w, i));
		if (mtl_tok_encode_words(tok, words, nw, 0, 64, &e, &err))
			return -1;
		s->ex = realloc(s->ex, sizeof(*s->ex) * (size_t)(s->n + 1));
		x = &s->ex[s->n++];
		memset(x, 0, sizeof(*x));
		x->len = (int32_t)e.n;
		x->ids = malloc(sizeof(int32_t) * e.n);
		memcpy(x->ids, e.ids, sizeof(int32_t) * e.n);
		x->n_tasks = ts->n;
		x->seq = malloc(sizeof(int32_t) * (size_t)ts->n);
		x->tok = calloc((size_t)ts->n, sizeof(int32_t *));
		x->seq[0] = x->seq[1] = MTL_IGNORE;
		if (topic) {
			x->seq[0] = mtl_task_label(&ts->task[0], json_string_value(topic));
			x->labelled |= 1;
		}
		if (ner) {
			int32_t *l = malloc(sizeof(int32_t) * e.n);

			for (size_t t = 0; t < e.n; t++) {
				int wi = e.word_ids[t];
				int first = wi >= 0 && (t == 0 || e.word_ids[t - 1] != wi);

				l[t] = first ? mtl_task_label(&ts->task[1],
							      json_string_value(json_array_get(ner, (size_t)wi)))
					     : MTL_IGNORE;
			}
			x->tok[1] = l;
			x->labelled |= 2;
		}
		json_decref(j);
	}
	mtl_tok_enc_release(&e);
	fclose(f);
	return 0;
}

static void free_split(struct set *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->ex[i].ids);
		free(s->ex[i].seq);
		for (int t = 0; t < s->ex[i].n_tasks; t++)
			free(s->ex[i].tok[t]);
		free(s->ex[i].tok);
	}
	free(s->ex);
}

int main(void)
{
	struct mtl_bert_config cfg = { 0 };
	struct mtl_tok *tok;
	struct mtl_tasks *ts;
	struct mtl_bert *m;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_err err;
	struct set train, test;
	struct mtl_rng rng;
	int map[2] = { 0, 1 }, *order, bs = 32, epochs = 4;
	const struct mtl_example *sel[32];
	struct timespec t0, t1;
	double secs, acc[2];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (mtl_tok_load(&tok, "fixtures/demo", &err) ||
	    mtl_task_load(&ts, "fixtures/demo/tasks.json", &err)) {
		printf("Bail out! %s\n", err.msg);
		return 1;
	}
	if (read_split(&train, "fixtures/demo/train.jsonl", tok, ts) ||
	    read_split(&test, "fixtures/demo/test.jsonl", tok, ts)) {
		printf("Bail out! cannot read the demo splits\n");
		return 1;
	}
	cfg.vocab = mtl_tok_vocab_size(tok);
	cfg.hidden = 64;
	cfg.layers = 2;
	cfg.heads = 4;
	cfg.intermediate = 256;
	cfg.max_pos = 64;
	cfg.type_vocab = 2;
	cfg.ln_eps = 1e-12f;
	cfg.pad_id = mtl_tok_id(tok, "[PAD]");
	cfg.hidden_dropout = cfg.attn_dropout = 0.1f;
	if (mtl_bert_new(&m, &cfg, &err) ||
	    mtl_heads_new(&hd, ts, cfg.hidden, MTL_POOL_CLS, &err)) {
		printf("Bail out! %s\n", err.msg);
		return 1;
	}
	mtl_bert_init_random(m, 1);
	mtl_heads_init_random(hd, 2);
	/* tiny matrices: threads would cost more than they save */
	mtl_bert_set_threads(m, 1);
	mtl_train_opts_defaults(&o);
	o.lr = 2e-3f;
	o.total = (long)epochs * ((train.n + bs - 1) / bs);
	o.warmup = o.total / 10;
	mtl_train_new(&tr, m, hd, &o, &err);
	mtl_step_stats_init(&st, ts->n);
	T_NOTE("%d train / %d test examples, %ld steps of %d", train.n, test.n,
	       o.total, bs);

	order = malloc(sizeof(int) * (size_t)train.n);
	for (int i = 0; i < train.n; i++)
		order[i] = i;
	mtl_rng_init(&rng, 3);
	for (int ep = 0; ep < epochs; ep++) {
		double lsum = 0;
		int nb = 0;

		mtl_rng_shuffle(&rng, order, (size_t)train.n, sizeof(int));
		for (int i = 0; i < train.n; i += bs) {
			int n = train.n - i < bs ? train.n - i : bs;
			struct mtl_batch b;
			const struct mtl_batch *bp = &b;

			for (int k = 0; k < n; k++)
				sel[k] = &train.ex[order[i + k]];
			if (mtl_batch_make(&b, sel, n, ts, map, ~0ull, cfg.pad_id, &err) ||
			    mtl_train_step(tr, &bp, 1, &st, &err) < 0) {
				printf("Bail out! %s\n", err.msg);
				return 1;
			}
			lsum += st.loss;
			nb++;
			mtl_batch_release(&b);
		}
		T_NOTE("epoch %d: mean training loss %.4f", ep + 1, lsum / nb);
	}

	{
		struct mtl_step_stats ev;

		mtl_step_stats_init(&ev, ts->n);
		for (int i = 0; i < test.n; i += bs) {
			int n = test.n - i < bs ? test.n - i : bs;
			struct mtl_batch b;

			for (int k = 0; k < n; k++)
				sel[k] = &test.ex[i + k];
			mtl_batch_make(&b, sel, n, ts, map, ~0ull, cfg.pad_id, &err);
			mtl_train_eval(tr, &b, &ev, NULL, &err);
			mtl_batch_release(&b);
		}
		for (int t = 0; t < 2; t++)
			acc[t] = ev.labelled[t] ? (double)ev.correct[t] / (double)ev.labelled[t] : 0;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
		T_OK(acc[0] >= 0.95, "test topic accuracy %.4f (%lld/%lld) >= 0.95",
		     acc[0], (long long)ev.correct[0], (long long)ev.labelled[0]);
		T_OK(acc[1] >= 0.95, "test NER token accuracy %.4f (%lld/%lld) >= 0.95",
		     acc[1], (long long)ev.correct[1], (long long)ev.labelled[1]);
		/* a figure, not a check: timed tests fail on a busy machine */
		T_NOTE("trained and evaluated in %.1f s", secs);
		mtl_step_stats_release(&ev);
	}
	free(order);
	mtl_step_stats_release(&st);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_bert_free(m);
	free_split(&train);
	free_split(&test);
	mtl_task_free(ts);
	mtl_tok_free(tok);
	return t_done();
}
