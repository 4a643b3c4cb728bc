/* freeze.c - frozen-tensor flags from --freeze specifications; see freeze.h. */
#include "freeze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mtl_freeze_init(struct mtl_freeze *f, const struct mtl_bert *m,
		    const struct mtl_heads *hd, struct mtl_err *err)
{
	f->n_enc = m->n_tensors;
	f->n_head = hd->n_tensors;
	f->enc = calloc(f->n_enc + 1, 1);
	f->head = calloc(f->n_head + 1, 1);
	if (!f->enc || !f->head) {
		mtl_freeze_release(f);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	return 0;
}

void mtl_freeze_release(struct mtl_freeze *f)
{
	free(f->enc);
	free(f->head);
	f->enc = f->head = NULL;
	f->n_enc = f->n_head = 0;
}

static int prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

int mtl_freeze_add(struct mtl_freeze *f, const char *spec,
		   const struct mtl_bert *m, const struct mtl_heads *hd,
		   struct mtl_err *err)
{
	int L = m->cfg.layers, a = -1, b = -1, task = -2, hit = 0;
	const char *part = spec;
	char end;

	if (!strcmp(spec, "encoder"))
		a = -2;
	else if (!strcmp(spec, "heads"))
		task = -1;
	else if (prefix(spec, "head:")) {
		if ((task = mtl_task_find(hd->ts, spec + 5)) < 0)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "cannot freeze '%s': no task '%s'",
					   spec, spec + 5);
	} else if (prefix(spec, "layers:")) {
		int n = sscanf(spec + 7, "%d-%d%c", &a, &b, &end);

		if (n == 1 && sscanf(spec + 7, "%d%c", &a, &end) == 1)
			b = a;
		else if (n != 2)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "cannot freeze '%s': layers take A-B or N", spec);
		if (a < 0 || b < a || b >= L)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "cannot freeze '%s': the model has layers 0-%d",
					   spec, L - 1);
	} else if (strcmp(spec, "embeddings") && strcmp(spec, "pooler"))
		return mtl_err_set(err, MTL_ERR_ARG,
				   "cannot freeze '%s': not encoder, embeddings, layers:A-B, pooler, heads or head:NAME",
				   spec);
	for (size_t i = 0; task == -2 && i < f->n_enc; i++) {
		const char *n = m->tensors[i].name;
		int l = m->tensors[i].layer, on;

		if (a == -2)
			on = 1;
		else if (a >= 0)
			on = l >= a && l <= b;
		else
			on = prefix(n, part[0] == 'e' ? "embeddings." : "pooler.");
		if (on)
			f->enc[i] = 1, hit = 1;
	}
	for (size_t i = 0; task != -2 && i < f->n_head; i++)
		if (task == -1 || hd->tensors[i].task == task)
			f->head[i] = 1, hit = 1;
	if (!hit)
		return mtl_err_set(err, MTL_ERR_ARG, "cannot freeze '%s': it names no parameter",
				   spec);
	return 0;
}

int mtl_freeze_any(const struct mtl_freeze *f)
{
	for (size_t i = 0; i < f->n_enc; i++)
		if (f->enc[i])
			return 1;
	for (size_t i = 0; i < f->n_head; i++)
		if (f->head[i])
			return 1;
	return 0;
}

void mtl_freeze_bounds(const struct mtl_freeze *f, const struct mtl_bert *m,
		       int *lo, int *emb)
{
	*lo = m->cfg.layers;
	*emb = 0;
	for (size_t i = 0; i < f->n_enc; i++) {
		const char *n = m->tensors[i].name;
		int l = m->tensors[i].layer;

		if (f->enc[i])
			continue;
		if (prefix(n, "embeddings."))
			*emb = 1;
		else if (l >= 0 && l < *lo)
			*lo = l;
	}
	if (*emb)
		*lo = 0;
}

size_t mtl_freeze_trainable(const struct mtl_freeze *f,
			    const struct mtl_bert *m,
			    const struct mtl_heads *hd)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_tensors; i++)
		if (!f->enc || !f->enc[i])
			n += m->tensors[i].numel;
	for (size_t i = 0; i < hd->n_tensors; i++)
		if (!f->head || !f->head[i])
			n += hd->tensors[i].numel;
	return n;
}
