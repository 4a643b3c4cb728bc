/*
 * head.c - task heads: parameter layout, safetensors I/O, forward and
 * backward; see head.h.
 */
#include "head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "st.h"

static void add(struct mtl_heads *hd, size_t *off, int task, const char *what,
		int64_t r, int64_t c)
{
	struct mtl_head_tensor *t = &hd->tensors[hd->n_tensors++];

	snprintf(t->name, sizeof(t->name), "%s.%s", hd->ts->task[task].name,
		 what);
	t->ndim = c ? 2 : 1;
	t->shape[0] = r;
	t->shape[1] = c;
	t->numel = (size_t)r * (size_t)(c ? c : 1);
	t->offset = *off;
	t->task = task;
	*off += t->numel;
}

int mtl_heads_new(struct mtl_heads **out, const struct mtl_tasks *ts, int H,
		  enum mtl_pool pool, struct mtl_err *err)
{
	struct mtl_heads *hd = calloc(1, sizeof(*hd));
	size_t off = 0;

	if (!hd)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	hd->ts = ts;
	hd->H = H;
	hd->h = calloc((size_t)ts->n + 1, sizeof(*hd->h));
	hd->p = calloc((size_t)ts->n + 1, sizeof(*hd->p));
	hd->tensors = calloc(4 * (size_t)ts->n + 1, sizeof(*hd->tensors));
	if (!hd->h || !hd->p || !hd->tensors)
		goto nomem;
	for (int i = 0; i < ts->n; i++) {
		const struct mtl_task *t = &ts->task[i];
		struct mtl_head *h = &hd->h[i];

		h->in = H;
		h->hid = t->hidden;
		h->C = t->n_labels;
		h->pool = t->pooling != MTL_POOL_DEFAULT ? t->pooling : pool;
		hd->p[i] = (float)t->dropout;
		/* an embedding task has no head: its loss reads the pooled
		 * encoder output (train.c, emb.h) */
		if (t->kind == MTL_TASK_EMBEDDING) {
			h->in = 0;
			continue;
		}
		if (h->hid > 0) {
			h->dw = off;
			add(hd, &off, i, "dense.weight", h->hid, H);
			h->db = off;
			add(hd, &off, i, "dense.bias", h->hid, 0);
		}
		h->ow = off;
		add(hd, &off, i, "out.weight", h->C, h->hid > 0 ? h->hid : H);
		h->ob = off;
		add(hd, &off, i, "out.bias", h->C, 0);
	}
	hd->n_params = off;
	hd->params = calloc(off + 1, sizeof(float));
	if (!hd->params)
		goto nomem;
	hd->nt = 1;
	*out = hd;
	return 0;
nomem:
	mtl_heads_free(hd);
	return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
}

void mtl_heads_free(struct mtl_heads *hd)
{
	if (!hd)
		return;
	free(hd->params);
	free(hd->tensors);
	free(hd->h);
	free(hd->p);
	free(hd->arena);
	free(hd->marena);
	free(hd);
}

void mtl_heads_init_random(struct mtl_heads *hd, uint64_t seed)
{
	struct mtl_rng r;

	mtl_rng_init(&r, seed);
	for (size_t i = 0; i < hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &hd->tensors[i];

		for (size_t j = 0; j < t->numel; j++)
			hd->params[t->offset + j] =
				t->ndim == 2 ? (float)(0.02 * mtl_rng_normal(&r))
					     : 0.0f;
	}
}

int mtl_heads_load(struct mtl_heads *hd, const char *path,
		   struct mtl_err *err)
{
	struct mtl_st *st;
	int rc;

	if ((rc = mtl_st_open(&st, path, err)))
		return rc;
	for (size_t i = 0; i < hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &hd->tensors[i];
		const struct mtl_st_tensor *s = mtl_st_find(st, t->name);

		if (!s) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': missing tensor '%s'", path,
					 t->name);
			goto out;
		}
		if (s->ndim != t->ndim || s->shape[0] != t->shape[0] ||
		    (t->ndim == 2 && s->shape[1] != t->shape[1])) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': tensor '%s' has the wrong shape for tasks.json",
					 path, t->name);
			goto out;
		}
		if ((rc = mtl_st_read_f32(s, hd->params + t->offset,
					  (int64_t)t->numel, err)))
			goto out;
	}
	if (mtl_st_count(st) != hd->n_tensors) {
		for (size_t i = 0; i < mtl_st_count(st); i++) {
			const char *name = mtl_st_at(st, i)->name;
			size_t j = 0;

			while (j < hd->n_tensors && strcmp(hd->tensors[j].name, name))
				j++;
			if (j == hd->n_tensors) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "'%s': unexpected tensor '%s'",
						 path, name);
				goto out;
			}
		}
	}
out:
	mtl_st_close(st);
	return rc;
}

int mtl_heads_save(const struct mtl_heads *hd, const char *path,
		   struct mtl_err *err)
{
	struct mtl_st_out *t = calloc(hd->n_tensors + 1, sizeof(*t));
	int rc;

	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < hd->n_tensors; i++) {
		t[i].name = hd->tensors[i].name;
		t[i].ndim = hd->tensors[i].ndim;
		t[i].shape[0] = hd->tensors[i].shape[0];
		t[i].shape[1] = hd->tensors[i].shape[1];
		t[i].data = hd->params + hd->tensors[i].offset;
	}
	rc = mtl_st_write(path, t, hd->n_tensors, NULL, 0, err);
	free(t);
	return rc;
}

/* Carves the per-task activations for (B, T); grows the arenas only. */
static int plan(struct mtl_heads *hd, int B, int T, struct mtl_err *err)
{
	size_t need = 0, mneed = 0;
	float *f;
	uint8_t *u;

	for (int i = 0; i < hd->ts->n; i++) {
		struct mtl_head *h = &hd->h[i];
		size_t N = hd->ts->task[i].kind == MTL_TASK_TOKEN ? (size_t)B * T
								   : (size_t)B;

		h->N = (int)N;
		need += N * h->in * 2 + N * h->hid * 5 + N * h->C * 2 +
			(size_t)B * h->in;
		mneed += N * h->in + N * h->hid;
	}
	if (need > hd->arena_len) {
		free(hd->arena);
		hd->arena = malloc(need * sizeof(float));
		hd->arena_len = hd->arena ? need : 0;
	}
	if (mneed > hd->marena_len) {
		free(hd->marena);
		hd->marena = malloc(mneed);
		hd->marena_len = hd->marena ? mneed : 0;
	}
	if ((need && !hd->arena) || (mneed && !hd->marena))
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate head activations");
	f = hd->arena;
	u = hd->marena;
	for (int i = 0; i < hd->ts->n; i++) {
		struct mtl_head *h = &hd->h[i];
		size_t N = (size_t)h->N;

		h->x = f; f += N * h->in;
		h->d_x = f; f += N * h->in;
		h->hpre = f; f += N * h->hid;
		h->hact = f; f += N * h->hid;
		h->hdrop = f; f += N * h->hid;
		h->d_hdrop = f; f += N * h->hid;
		h->d_hpre = f; f += N * h->hid;
		h->logits = f; f += N * h->C;
		h->dlogits = f; f += N * h->C;
		h->d_pool = f; f += (size_t)B * h->in;
		h->keep_x = u; u += N * h->in;
		h->keep_h = u; u += N * h->hid;
	}
	hd->B = B;
	hd->T = T;
	return 0;
}

int mtl_heads_forward(struct mtl_heads *hd, const float *last,
		      const int32_t *mask, int B, int T, int train,
		      struct mtl_rng *rng, struct mtl_err *err)
{
	int rc;

	if ((rc = plan(hd, B, T, err)))
		return rc;
	hd->mask = mask;
	hd->train = train;
	for (int i = 0; i < hd->ts->n; i++) {
		struct mtl_head *h = &hd->h[i];
		const float *P = hd->params;
		int64_t nx = (int64_t)h->N * h->in, nh = (int64_t)h->N * h->hid;
		float p = train ? hd->p[i] : 0.0f;
		const float *oin = h->x;

		if (hd->ts->task[i].kind == MTL_TASK_EMBEDDING)
			continue;
		if (hd->ts->task[i].kind == MTL_TASK_TOKEN)
			memcpy(h->x, last, sizeof(float) * (size_t)nx);
		else
			mtl_pool_forward(h->x, last, mask, B, T, h->in, h->pool);
		if (p > 0) {
			mtl_dropout_mask(h->keep_x, nx, p, rng);
			mtl_dropout_forward(h->x, h->x, h->keep_x, p, nx);
		}
		if (h->hid > 0) {
			mtl_linear_forward(h->hpre, h->x, P + h->dw, P + h->db,
					   h->N, h->in, h->hid, hd->nt);
			switch (hd->ts->task[i].activation) {
			case MTL_TASK_ACT_GELU:
				mtl_gelu_forward(h->hact, h->hpre, nh, hd->nt);
				break;
			case MTL_TASK_ACT_TANH:
				mtl_tanh_forward(h->hact, h->hpre, nh);
				break;
			case MTL_TASK_ACT_RELU:
				mtl_relu_forward(h->hact, h->hpre, nh);
				break;
			}
			if (p > 0) {
				mtl_dropout_mask(h->keep_h, nh, p, rng);
				mtl_dropout_forward(h->hdrop, h->hact, h->keep_h,
						    p, nh);
			} else {
				memcpy(h->hdrop, h->hact, sizeof(float) * (size_t)nh);
			}
			oin = h->hdrop;
		}
		mtl_linear_forward(h->logits, oin, P + h->ow, P + h->ob, h->N,
				   h->hid > 0 ? h->hid : h->in, h->C, hd->nt);
	}
	return 0;
}

void mtl_heads_backward(struct mtl_heads *hd, float *grad, float *dlast,
			const uint8_t *skip)
{
	int B = hd->B, T = hd->T;

	for (int i = 0; i < hd->ts->n; i++) {
		struct mtl_head *h = &hd->h[i];
		int64_t nx = (int64_t)h->N * h->in, nh = (int64_t)h->N * h->hid;
		float p = hd->train ? hd->p[i] : 0.0f;
		int token = hd->ts->task[i].kind == MTL_TASK_TOKEN;
		float *dsink;

		if ((skip && skip[i]) ||
		    hd->ts->task[i].kind == MTL_TASK_EMBEDDING)
			continue;
		memset(h->d_x, 0, sizeof(float) * (size_t)nx);
		if (h->hid > 0) {
			memset(h->d_hdrop, 0, sizeof(float) * (size_t)nh);
			mtl_linear_backward(h->d_hdrop, grad + h->ow, grad + h->ob,
					    h->dlogits, h->hdrop,
					    hd->params + h->ow, h->N, h->hid,
					    h->C, hd->nt);
			memset(h->d_hpre, 0, sizeof(float) * (size_t)nh);
			/* reuse hdrop's gradient slot as d act output */
			if (p > 0) {
				float *dact = h->d_hdrop;

				/* in place: dact = keep * d_hdrop / (1-p) */
				for (int64_t k = 0; k < nh; k++)
					dact[k] = h->keep_h[k] ? dact[k] / (1.0f - p) : 0.0f;
			}
			switch (hd->ts->task[i].activation) {
			case MTL_TASK_ACT_GELU:
				mtl_gelu_backward(h->d_hpre, h->hpre, h->d_hdrop,
						  nh, hd->nt);
				break;
			case MTL_TASK_ACT_TANH:
				mtl_tanh_backward(h->d_hpre, h->hact, h->d_hdrop, nh);
				break;
			case MTL_TASK_ACT_RELU:
				mtl_relu_backward(h->d_hpre, h->hact, h->d_hdrop, nh);
				break;
			}
			mtl_linear_backward(h->d_x, grad + h->dw, grad + h->db,
					    h->d_hpre, h->x, hd->params + h->dw,
					    h->N, h->in, h->hid, hd->nt);
		} else {
			mtl_linear_backward(h->d_x, grad + h->ow, grad + h->ob,
					    h->dlogits, h->x, hd->params + h->ow,
					    h->N, h->in, h->C, hd->nt);
		}
		/* through the input dropout into the pooled vector or tokens */
		dsink = token ? dlast : h->d_pool;
		if (!token)
			memset(h->d_pool, 0, sizeof(float) * (size_t)B * h->in);
		if (p > 0)
			mtl_dropout_backward(dsink, h->d_x, h->keep_x, p, nx);
		else
			for (int64_t k = 0; k < nx; k++)
				dsink[k] += h->d_x[k];
		if (!token)
			mtl_pool_backward(dlast, h->d_pool, hd->mask, B, T,
					  h->in, h->pool);
	}
}
