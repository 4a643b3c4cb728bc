/*
 * card.c - README.md for a model directory; see card.h.
 */
#include "card.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "fs.h"
#include "task.h"

int mtl_card_new(struct mtl_card **out, int n_tasks, int argc,
		 char *const *argv, struct mtl_err *err)
{
	struct mtl_card *c = calloc(1, sizeof(*c));
	size_t len = 1;

	for (int i = 0; i < argc; i++)
		len += 4 * strlen(argv[i]) + 3; /* quoted, every ' as '\'' */
	if (c) {
		c->n_tasks = n_tasks;
		c->eval_step = -1;
		c->command = calloc(len, 1);
		c->labelled = calloc((size_t)n_tasks + 1, sizeof(*c->labelled));
		c->eval_labelled = calloc((size_t)n_tasks + 1, sizeof(*c->eval_labelled));
		c->eval_acc = calloc((size_t)n_tasks + 1, sizeof(*c->eval_acc));
		c->eval_f1 = calloc((size_t)n_tasks + 1, sizeof(*c->eval_f1));
	}
	if (!c || !c->command || !c->labelled || !c->eval_labelled ||
	    !c->eval_acc || !c->eval_f1) {
		mtl_card_free(c);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; i < argc; i++) {
		char *o = c->command + strlen(c->command);
		const char *a = i || !strrchr(argv[0], '/') ? argv[i] : strrchr(argv[0], '/') + 1;
		int plain = *a && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./=:,+@%") == strlen(a);

		if (i)
			*o++ = ' ';
		if (!plain)
			*o++ = '\'';
		for (; *a; a++)
			if (*a == '\'' && !plain)
				o += sprintf(o, "'\\''");
			else
				*o++ = *a;
		if (!plain)
			*o++ = '\'';
		*o = 0;
	}
	*out = c;
	return 0;
}

void mtl_card_free(struct mtl_card *c)
{
	if (!c)
		return;
	free(c->command);
	free(c->labelled);
	free(c->eval_labelled);
	free(c->eval_acc);
	free(c->eval_f1);
	free(c);
}

void mtl_card_step(struct mtl_card *c, const int64_t *labelled)
{
	if (!c)
		return;
	c->steps++;
	for (int t = 0; t < c->n_tasks; t++)
		c->labelled[t] += labelled[t];
}

void mtl_card_eval(struct mtl_card *c, long step, int examples, int n_tasks,
		   const double *acc, const double *f1, const int64_t *labelled)
{
	if (!c)
		return;
	c->eval_step = step;
	c->eval_examples = examples;
	for (int t = 0; t < c->n_tasks && t < n_tasks; t++) {
		c->eval_acc[t] = acc[t];
		c->eval_f1[t] = f1[t];
		c->eval_labelled[t] = labelled[t];
	}
}

/* A growing text; on failure it stays NULL and adds nothing. */
struct text {
	char *s;
	size_t len;
	int oom;
};

static void add(struct text *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add(struct text *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = realloc(b->s, b->len + (size_t)n + 1))) {
		b->oom = 1;
		return;
	}
	b->s = s;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int mtl_card_write(const struct mtl_card *c, const struct mtl_bert_config *cfg,
		   const struct mtl_bert_pooling *pooling,
		   const struct mtl_tasks *ts, const char *dir,
		   struct mtl_err *err)
{
	const char *pool = pooling->mode == MTL_POOL_CLS ? "CLS token"
			 : pooling->mode == MTL_POOL_MEAN ? "mean of the tokens"
			 : "max over the tokens";
	char path[MTL_FS_PATH_LEN];
	struct text b = { 0 };
	int rc;

	add(&b, "---\nlibrary_name: sentence-transformers\npipeline_tag: sentence-similarity\ntags:\n- sentence-transformers\n- mtl\n---\n\n");
	add(&b, "# %s\n\n", ts ? "A multi-task BERT sentence transformer" : "A BERT sentence transformer");
	add(&b, "Made by mtl. A Hugging Face BERT encoder (%d layers, hidden size %d, %d attention heads, %d positions, vocabulary %d) with sentence-transformers files: sentence embeddings are the %s%s (at most %d tokens).\n",
	    cfg->layers, cfg->hidden, cfg->heads, cfg->max_pos, cfg->vocab, pool,
	    pooling->normalize ? ", L2-normalised" : "", pooling->max_seq_length);
	if (ts) {
		add(&b, "\n## Tasks\n\nThe task heads are mtl's (tasks.json, heads.safetensors); `mtl-score` runs them, and `mtl-export` writes a task as a transformers classifier.\n\n");
		add(&b, "| task | kind | head | labels |\n| --- | --- | --- | --- |\n");
		for (int t = 0; t < ts->n; t++) {
			const struct mtl_task *k = &ts->task[t];

			add(&b, "| %s | %s | ", k->name, mtl_task_kind_name(k->kind));
			if (k->kind == MTL_TASK_EMBEDDING)
				add(&b, "none: %s on the sentence embedding",
				    mtl_task_emb_loss_name(k->emb.loss));
			else if (k->hidden)
				add(&b, "%d %s units, then linear", k->hidden,
				    mtl_task_act_name(k->activation));
			else
				add(&b, "linear");
			if (k->kind != MTL_TASK_TOKEN && k->pooling != MTL_POOL_DEFAULT)
				add(&b, " (%s pooling)", mtl_task_pool_name(k->pooling));
			if (k->kind == MTL_TASK_MULTILABEL)
				add(&b, ", sigmoid per label, threshold %g", k->threshold);
			add(&b, " |");
			for (int l = 0; k->kind != MTL_TASK_REGRESSION && l < k->n_labels; l++)
				add(&b, "%s%s", l ? ", " : " ", k->labels[l]);
			if (k->kind == MTL_TASK_REGRESSION)
				add(&b, " a number");
			add(&b, " |\n");
		}
	}
	if (ts && c) {
		add(&b, "\n## Training\n\n%ld optimiser steps. Labels seen in training:", c->steps);
		for (int t = 0; t < ts->n && t < c->n_tasks; t++)
			add(&b, "%s %s %lld", t ? "," : "", ts->task[t].name,
			    (long long)c->labelled[t]);
		add(&b, ".\n\n```sh\n%s\n```\n", c->command);
		if (c->eval_step >= 0) {
			add(&b, "\n## Evaluation\n\nAfter step %ld, on %d examples (macro F1 over the labels; per token for token tasks):\n\n| task | labelled | accuracy | macro F1 |\n| --- | ---: | ---: | ---: |\n",
			    c->eval_step, c->eval_examples);
			for (int t = 0; t < ts->n && t < c->n_tasks; t++)
				if (c->eval_labelled[t])
					add(&b, "| %s | %lld | %.4f | %.4f |\n", ts->task[t].name,
					    (long long)c->eval_labelled[t], c->eval_acc[t], c->eval_f1[t]);
				else
					add(&b, "| %s | 0 | - | - |\n", ts->task[t].name);
		}
	}
	if (b.oom) {
		free(b.s);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	rc = mtl_fs_join(path, dir, "README.md", err);
	if (!rc)
		rc = mtl_fs_write(path, b.s, b.len, err);
	free(b.s);
	return rc;
}
