/*
 * balance.c - task balancing: the methods' names and options, the state
 * and its msgpack and JSON forms, and the balancer (the per-task gradient
 * passes and the update); see balance.h and docs/balancing.md.  The
 * methods' arithmetic on Gram matrices and loss histories is in
 * balance_math.c (balance_int.h).
 */
#include "balance_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adamw.h"
#include "contrast.h"
#include "mp.h"
#include "ops.h"
#include "train.h"

static const char *const names[] = {
	"static", "uncertainty", "dwa", "gradnorm", "rlw", "pcgrad", "cagrad",
	"nash",
};

void mtl_balance_opts_defaults(struct mtl_balance_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = MTL_BALANCE_STATIC;
	o->at = MTL_BALANCE_AT_ENCODER;
	o->every = 1;
	o->dwa_temperature = 2;
	o->gradnorm_alpha = 1.5;
	o->gradnorm_lr = 0.025;
	o->cagrad_c = 0.5;
	o->seed = 42;
}

int mtl_balance_parse(enum mtl_balance_kind *k, const char *name)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			*k = (enum mtl_balance_kind)i;
			return 0;
		}
	return -1;
}

int mtl_balance_parse_at(enum mtl_balance_at *at, const char *name)
{
	if (strcmp(name, "encoder") && strcmp(name, "encoder-output"))
		return -1;
	*at = strcmp(name, "encoder") ? MTL_BALANCE_AT_OUTPUT : MTL_BALANCE_AT_ENCODER;
	return 0;
}

const char *mtl_balance_name(enum mtl_balance_kind k)
{
	return names[k];
}

int mtl_balance_is_gradient(enum mtl_balance_kind k)
{
	return k == MTL_BALANCE_GRADNORM || k == MTL_BALANCE_PCGRAD ||
	       k == MTL_BALANCE_CAGRAD || k == MTL_BALANCE_NASH;
}

/* ---- state ---- */

int mtl_balance_state_init(struct mtl_balance_state *s, int n, uint64_t seed)
{
	size_t N = (size_t)n + 1;

	memset(s, 0, sizeof(*s));
	s->n_tasks = n;
	mtl_rng_init(&s->rng, seed);
	s->w = malloc(N * sizeof(double));
	s->coef = malloc(N * sizeof(double));
	s->logvar = calloc(N, sizeof(float));
	s->logvar_m = calloc(N, sizeof(float));
	s->logvar_v = calloc(N, sizeof(float));
	s->hist = malloc(2 * N * sizeof(double));
	s->win_sum = calloc(N, sizeof(double));
	s->win_n = calloc(N, sizeof(int64_t));
	s->loss0 = malloc(N * sizeof(double));
	if (!s->w || !s->coef || !s->logvar || !s->logvar_m || !s->logvar_v ||
	    !s->hist || !s->win_sum || !s->win_n || !s->loss0) {
		mtl_balance_state_release(s);
		return MTL_ERR_NOMEM;
	}
	for (int t = 0; t < n; t++) {
		s->w[t] = s->coef[t] = 1;
		s->hist[t] = s->hist[n + t] = NAN;
		s->loss0[t] = NAN;
	}
	return 0;
}

void mtl_balance_state_release(struct mtl_balance_state *s)
{
	free(s->w);
	free(s->coef);
	free(s->logvar);
	free(s->logvar_m);
	free(s->logvar_v);
	free(s->hist);
	free(s->win_sum);
	free(s->win_n);
	free(s->loss0);
	memset(s, 0, sizeof(*s));
}

static void pack_doubles(msgpack_packer *pk, const char *k, const double *v,
			 size_t n)
{
	mtl_mp_pack_str(pk, k);
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_double(pk, v[i]);
}

void mtl_balance_state_pack(msgpack_packer *pk,
			    const struct mtl_balance_state *s)
{
	size_t n = (size_t)s->n_tasks;

	msgpack_pack_map(pk, 11);
	mtl_mp_pack_str(pk, "n_tasks");
	msgpack_pack_int(pk, s->n_tasks);
	mtl_mp_pack_str(pk, "rng");
	msgpack_pack_array(pk, 4);
	for (int i = 0; i < 4; i++)
		msgpack_pack_uint64(pk, s->rng.s[i]);
	pack_doubles(pk, "w", s->w, n);
	pack_doubles(pk, "coef", s->coef, n);
	mtl_mp_pack_str(pk, "logvar");
	mtl_mp_pack_f32s(pk, s->logvar, n);
	mtl_mp_pack_str(pk, "logvar_m");
	mtl_mp_pack_f32s(pk, s->logvar_m, n);
	mtl_mp_pack_str(pk, "logvar_v");
	mtl_mp_pack_f32s(pk, s->logvar_v, n);
	pack_doubles(pk, "hist", s->hist, 2 * n);
	pack_doubles(pk, "win_sum", s->win_sum, n);
	mtl_mp_pack_str(pk, "win_n");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_int64(pk, s->win_n[i]);
	pack_doubles(pk, "loss0", s->loss0, n);
}

static int unpack_doubles(double *v, const msgpack_object *o, const char *k,
			  size_t n, struct mtl_err *err)
{
	const msgpack_object *a = mtl_mp_get(o, k);

	if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != n)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: '%s' missing or not %zu numbers",
				   k, n);
	for (size_t i = 0; i < n; i++)
		if (mtl_mp_as_num(&a->via.array.ptr[i], &v[i]))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: '%s' holds a non-number", k);
	return 0;
}

int mtl_balance_state_unpack(struct mtl_balance_state *s,
			     const msgpack_object *o, struct mtl_err *err)
{
	const char *fk[] = { "logvar", "logvar_m", "logvar_v" };
	float *fv[] = { s->logvar, s->logvar_m, s->logvar_v };
	size_t n = (size_t)s->n_tasks;
	const msgpack_object *a;
	int64_t nt;
	int rc;

	if (mtl_mp_as_int(mtl_mp_get(o, "n_tasks"), &nt) || nt != s->n_tasks)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: not for %d tasks", s->n_tasks);
	a = mtl_mp_get(o, "rng");
	if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 4)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: 'rng' missing or not 4 integers");
	for (int i = 0; i < 4; i++) {
		if (a->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: 'rng' holds a non-integer");
		s->rng.s[i] = a->via.array.ptr[i].via.u64;
	}
	if ((rc = unpack_doubles(s->w, o, "w", n, err)) ||
	    (rc = unpack_doubles(s->coef, o, "coef", n, err)) ||
	    (rc = unpack_doubles(s->hist, o, "hist", 2 * n, err)) ||
	    (rc = unpack_doubles(s->win_sum, o, "win_sum", n, err)) ||
	    (rc = unpack_doubles(s->loss0, o, "loss0", n, err)))
		return rc;
	for (int i = 0; i < 3; i++)
		if (mtl_mp_as_f32s(mtl_mp_get(o, fk[i]), fv[i], (long)n))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: '%s' missing or not %zu numbers",
					   fk[i], n);
	a = mtl_mp_get(o, "win_n");
	if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != n)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: 'win_n' missing or not %zu integers",
				   n);
	for (size_t i = 0; i < n; i++)
		if (mtl_mp_as_int(&a->via.array.ptr[i], &s->win_n[i]))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: 'win_n' holds a non-integer");
	return 0;
}

static json_t *json_doubles(const double *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, isfinite(v[i]) ? json_real(v[i])
							    : json_null())) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *json_floats(const float *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_real(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

json_t *mtl_balance_state_to_json(const struct mtl_balance_state *s,
				  const char *method)
{
	size_t n = (size_t)s->n_tasks;
	json_t *j = json_object(), *rng = json_array(), *wn = json_array();
	char h[17];
	int bad = !j || !rng || !wn;

	for (int i = 0; !bad && i < 4; i++) {
		snprintf(h, sizeof(h), "%016llx", (unsigned long long)s->rng.s[i]);
		bad |= json_array_append_new(rng, json_string(h)) != 0;
	}
	for (size_t i = 0; !bad && i < n; i++)
		bad |= json_array_append_new(wn, json_integer(s->win_n[i])) != 0;
	if (bad) {
		json_decref(j);
		json_decref(rng);
		json_decref(wn);
		return NULL;
	}
	/* json_object_set_new takes a NULL value as a failure */
	bad |= json_object_set_new(j, "method", json_string(method));
	bad |= json_object_set_new(j, "n_tasks", json_integer(s->n_tasks));
	bad |= json_object_set_new(j, "rng", rng);
	bad |= json_object_set_new(j, "w", json_doubles(s->w, n));
	bad |= json_object_set_new(j, "coef", json_doubles(s->coef, n));
	bad |= json_object_set_new(j, "logvar", json_floats(s->logvar, n));
	bad |= json_object_set_new(j, "logvar_m", json_floats(s->logvar_m, n));
	bad |= json_object_set_new(j, "logvar_v", json_floats(s->logvar_v, n));
	bad |= json_object_set_new(j, "hist", json_doubles(s->hist, 2 * n));
	bad |= json_object_set_new(j, "win_sum", json_doubles(s->win_sum, n));
	bad |= json_object_set_new(j, "win_n", wn);
	bad |= json_object_set_new(j, "loss0", json_doubles(s->loss0, n));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* n numbers (null: NaN) of the array j[k] into v. */
static int from_doubles(double *v, const json_t *j, const char *k, size_t n,
			struct mtl_err *err)
{
	const json_t *a = json_object_get(j, k);

	if (!json_is_array(a) || json_array_size(a) != n)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: '%s' missing or not %zu numbers", k, n);
	for (size_t i = 0; i < n; i++) {
		const json_t *x = json_array_get(a, i);

		if (json_is_null(x))
			v[i] = NAN;
		else if (json_is_number(x))
			v[i] = json_number_value(x);
		else
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: '%s' holds a non-number", k);
	}
	return 0;
}

int mtl_balance_state_from_json(struct mtl_balance_state *s, const json_t *j,
				const char *method, struct mtl_err *err)
{
	const char *fk[] = { "logvar", "logvar_m", "logvar_v" };
	float *fv[] = { s->logvar, s->logvar_m, s->logvar_v };
	size_t n = (size_t)s->n_tasks;
	const json_t *m = json_object_get(j, "method"), *a;
	double tmp[64];
	int rc;

	if (n > 64)
		return mtl_err_set(err, MTL_ERR_ARG, "balance state: more than 64 tasks");
	if (!json_is_string(m) || strcmp(json_string_value(m), method))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "the checkpoint balances tasks by '%s', not '%s'",
				   json_is_string(m) ? json_string_value(m) : "?", method);
	if (json_integer_value(json_object_get(j, "n_tasks")) != s->n_tasks)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: not for %d tasks", s->n_tasks);
	a = json_object_get(j, "rng");
	if (!json_is_array(a) || json_array_size(a) != 4)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: 'rng' missing or not 4 strings");
	for (size_t i = 0; i < 4; i++) {
		const char *h = json_string_value(json_array_get(a, i));
		char *end;

		if (!h || strlen(h) != 16)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: 'rng' holds a bad value");
		s->rng.s[i] = strtoull(h, &end, 16);
		if (*end)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: 'rng' holds a bad value");
	}
	if ((rc = from_doubles(s->w, j, "w", n, err)) ||
	    (rc = from_doubles(s->coef, j, "coef", n, err)) ||
	    (rc = from_doubles(s->hist, j, "hist", 2 * n, err)) ||
	    (rc = from_doubles(s->win_sum, j, "win_sum", n, err)) ||
	    (rc = from_doubles(s->loss0, j, "loss0", n, err)))
		return rc;
	for (int k = 0; k < 3; k++) {
		if ((rc = from_doubles(tmp, j, fk[k], n, err)))
			return rc;
		for (size_t i = 0; i < n; i++)
			fv[k][i] = (float)tmp[i];
	}
	a = json_object_get(j, "win_n");
	if (!json_is_array(a) || json_array_size(a) != n)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "balance state: 'win_n' missing or not %zu integers", n);
	for (size_t i = 0; i < n; i++) {
		if (!json_is_integer(json_array_get(a, i)))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "balance state: 'win_n' holds a non-integer");
		s->win_n[i] = json_integer_value(json_array_get(a, i));
	}
	return 0;
}

/* ---- the balancer ---- */

int mtl_balance_new(struct mtl_balance **out, struct mtl_train *tr,
		    const struct mtl_balance_opts *o, struct mtl_err *err)
{
	struct mtl_balance *bal = calloc(1, sizeof(*bal));
	int T = tr->hd->ts->n;
	size_t N = (size_t)T + 1;

	if (!bal)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if (T > 64) {
		free(bal);
		return mtl_err_set(err, MTL_ERR_ARG,
				   "task balancing supports 64 tasks at most, not %d", T);
	}
	bal->o = *o;
	if (bal->o.every < 1)
		bal->o.every = 1;
	bal->tr = tr;
	bal->T = T;
	/* the output gradient of each task and their combination, or the
	 * one task's being taken through the encoder */
	bal->drows = o->at == MTL_BALANCE_AT_OUTPUT ? T + 1 : 1;
	bal->cos = malloc(N * N * sizeof(double));
	bal->K = calloc(N * N, sizeof(double));
	bal->Kl = calloc(N * N, sizeof(double));
	bal->hw = calloc(N, sizeof(double));
	bal->cw = calloc(N, sizeof(double));
	bal->loss = calloc(N, sizeof(double));
	bal->active = calloc(N, 1);
	bal->norm = calloc(N, sizeof(int64_t));
	bal->ds = calloc(N, sizeof(float));
	bal->order = calloc(N, sizeof(int));
	if (o->kind != MTL_BALANCE_STATIC && o->at == MTL_BALANCE_AT_ENCODER &&
	    mtl_balance_is_gradient(o->kind))
		bal->G = malloc((size_t)T * tr->m->n_params * sizeof(float));
	if (!bal->cos || !bal->K || !bal->Kl || !bal->hw || !bal->cw ||
	    !bal->loss || !bal->active || !bal->norm || !bal->ds ||
	    !bal->order || (mtl_balance_is_gradient(o->kind) &&
			    o->at == MTL_BALANCE_AT_ENCODER && !bal->G) ||
	    mtl_balance_state_init(&bal->s, T, o->seed)) {
		mtl_balance_free(bal);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate the balancing state (%d tasks)", T);
	}
	/* methods that balance a given loss start from the spec weights */
	if (o->kind == MTL_BALANCE_STATIC || o->kind == MTL_BALANCE_PCGRAD ||
	    o->kind == MTL_BALANCE_CAGRAD || o->kind == MTL_BALANCE_NASH)
		for (int t = 0; t < T; t++)
			bal->s.w[t] = bal->s.coef[t] = tr->hd->ts->task[t].weight;
	for (size_t i = 0; i < N * N; i++)
		bal->cos[i] = NAN;
	*out = bal;
	return 0;
}

void mtl_balance_free(struct mtl_balance *bal)
{
	if (!bal)
		return;
	mtl_balance_state_release(&bal->s);
	free(bal->cos);
	free(bal->K);
	free(bal->Kl);
	free(bal->hw);
	free(bal->cw);
	free(bal->loss);
	free(bal->active);
	free(bal->norm);
	free(bal->ds);
	free(bal->order);
	free(bal->G);
	free(bal->D);
	free(bal);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Head t's slice of the heads' gradient times f[t]/g[t] (g[t] != 0). */
static void rescale_heads(struct mtl_train *tr, const double *f,
			  const double *g)
{
	struct mtl_heads *hd = tr->hd;

	for (size_t i = 0; i < hd->n_tensors; i++) {
		const struct mtl_head_tensor *ht = &hd->tensors[i];
		int t = ht->task;
		float k;

		if (f[t] == g[t])
			continue;
		k = g[t] != 0 ? (float)(f[t] / g[t]) : 0.0f;
		for (size_t j = 0; j < ht->numel; j++)
			tr->hgrad[ht->offset + j] *= k;
	}
}

/* Grows D to bal->drows rows of n floats. */
static int grow_d(struct mtl_balance *bal, size_t n, struct mtl_err *err)
{
	if (n <= bal->dcap)
		return 0;
	free(bal->D);
	bal->D = malloc((size_t)bal->drows * n * sizeof(float));
	bal->dcap = bal->D ? n : 0;
	if (!bal->D)
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate %d per-task output gradients",
				   bal->T);
	return 0;
}

/* coef from the Gram matrix K of the step (or batch) for the method. */
static void solve(struct mtl_balance *bal, const double *K)
{
	int T = bal->T;

	if (bal->o.kind == MTL_BALANCE_PCGRAD)
		mtl_balance_pcgrad(bal->cw, K, bal->hw, bal->active, T,
				   &bal->s.rng);
	else if (bal->o.kind == MTL_BALANCE_CAGRAD)
		mtl_balance_cagrad(bal->cw, K, bal->hw, bal->active, T,
				   bal->o.cagrad_c);
	else if (bal->o.kind == MTL_BALANCE_NASH)
		mtl_balance_nash(bal->cw, K, bal->hw, bal->active, T);
	else
		memcpy(bal->cw, bal->hw, sizeof(double) * (size_t)T);
}

/*
 * Per-task gradients of the step: the one forward per batch, then a
 * heads backward per task and either an encoder backward per task into
 * G (at = encoder) or one encoder backward of the combined output
 * gradient (at = output).  Heads unweighted here, scaled by hw after.
 */
static int per_task(struct mtl_balance *bal, const struct mtl_batch *const *b,
		    int n, struct mtl_step_stats *st, struct mtl_err *err)
{
	struct mtl_train *tr = bal->tr;
	struct mtl_bert *m = tr->m;
	size_t np = m->n_params;
	int T = bal->T, full = bal->o.at == MTL_BALANCE_AT_ENCODER, rc;
	int L = m->cfg.layers;
	double t0 = now(), acc = 0;

	mtl_train_zero_grad(tr);
	memset(bal->K, 0, sizeof(double) * (size_t)T * T);
	memset(bal->Kl, 0, sizeof(double) * (size_t)T * T);
	if (full)
		for (int t = 0; t < T; t++)
			if (bal->active[t])
				mtl_zero(bal->G + (size_t)t * np, (int64_t)np,
					 m->threads);
	acc = now() - t0;
	for (int k = 0; k < n; k++) {
		const struct mtl_batch *bk = b[k];
		/* with an embedding task's extra rows (train.h) */
		size_t BTH = (size_t)mtl_train_rows(tr, bk) * bk->T * m->cfg.hidden;

		if ((rc = mtl_train_forward(tr, bk, 1, err)))
			return rc;
		for (int i = 0; i < bk->B; i++)
			st->tokens += bk->lengths[i];
		t0 = now();
		if ((rc = grow_d(bal, BTH, err)))
			return rc;
		for (int t = 0; t < T; t++) {
			float *dst = bal->D + (full ? 0 : (size_t)t * BTH);

			if (!bal->active[t])
				continue;
			if (mtl_train_task_backward(tr, bk, t,
						    (float)(1.0 / (double)bal->norm[t]),
						    dst, st) && full)
				mtl_train_encoder_backward(tr, bal->G + (size_t)t * np,
							   dst);
		}
		if (!full) {
			/* the output gradients of this batch: Gram, solve,
			 * one encoder backward of the combination */
			double Kb[64 * 64] = { 0 };
			float *dc = bal->D + (size_t)T * BTH;

			gram_acc(Kb, bal->D, T, BTH, 0, BTH, m->threads,
				 bal->active);
			for (int i = 0; i < T * T; i++)
				bal->K[i] += Kb[i];
			solve(bal, Kb);
			mtl_zero(dc, (int64_t)BTH, m->threads);
			for (int t = 0; t < T; t++) {
				const float *d = bal->D + (size_t)t * BTH;
				float c = (float)bal->cw[t];

				if (!bal->active[t] || c == 0)
					continue;
				for (size_t i = 0; i < BTH; i++)
					dc[i] += c * d[i];
			}
			mtl_train_encoder_backward(tr, tr->grad, dc);
		}
		acc += now() - t0;
	}
	t0 = now();
	if (full) {
		gram_acc(bal->K, bal->G, T, np, 0, np, m->threads, bal->active);
		/* GradNorm's shared layer: every tensor of the last layer */
		for (size_t i = 0; i < m->n_tensors; i++)
			if (m->tensors[i].layer == L - 1)
				gram_acc(bal->Kl, bal->G, T, np,
					 m->tensors[i].offset,
					 m->tensors[i].numel, m->threads,
					 bal->active);
		solve(bal, bal->K);
		for (int t = 0; t < T; t++) {
			const float *g = bal->G + (size_t)t * np;
			float c = (float)bal->cw[t];

			if (!bal->active[t] || c == 0)
				continue;
			mtl_axpy(tr->grad, c, g, (int64_t)np, m->threads);
		}
	} else {
		memcpy(bal->Kl, bal->K, sizeof(double) * (size_t)T * T);
	}
	mtl_balance_cosine(bal->cos, bal->K, bal->active, T);
	bal->have_cos = 1;
	/* heads: each its own task's gradient, weighted */
	for (int t = 0; t < T; t++)
		bal->loss[t] = 1;
	rescale_heads(tr, bal->hw, bal->loss);
	bal->ms = 1e3 * (acc + now() - t0);
	return 0;
}

int mtl_balance_grad(struct mtl_balance *bal, const struct mtl_batch *const *b,
		     int n, struct mtl_step_stats *st, struct mtl_err *err)
{
	struct mtl_train *tr = bal->tr;
	struct mtl_balance_state *s = &bal->s;
	int T = bal->T, recompute = tr->step % bal->o.every == 0, rc;
	int grads = 0;

	if (mtl_balance_is_gradient(bal->o.kind) && tr->dist)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "--balance %s: per-task gradients do not train across processes yet",
				   mtl_balance_name(bal->o.kind));
	if (mtl_balance_is_gradient(bal->o.kind) && mtl_train_frozen(tr))
		return mtl_err_set(err, MTL_ERR_ARG,
				   "--balance %s: per-task gradients do not support a frozen encoder or heads",
				   mtl_balance_name(bal->o.kind));
	bal->have_cos = 0;
	bal->ms = 0;
	bal->reg = 0;
	/* the step's labelled items on this process: which tasks take part,
	 * and the per-task passes' normalisers */
	mtl_train_count(tr, b, n, bal->norm);
	for (int t = 0; t < T; t++)
		bal->active[t] = bal->norm[t] > 0;
	switch (bal->o.kind) {
	case MTL_BALANCE_STATIC:
		break;
	case MTL_BALANCE_UNCERTAINTY:
		for (int t = 0; t < T; t++)
			s->w[t] = exp(-(double)s->logvar[t]);
		break;
	case MTL_BALANCE_DWA:
		if (!recompute)
			break;
		/* close the window: its mean loss becomes the last one */
		for (int t = 0; t < T; t++)
			if (s->win_n[t]) {
				s->hist[T + t] = s->hist[t];
				s->hist[t] = s->win_sum[t] / (double)s->win_n[t];
				s->win_sum[t] = 0;
				s->win_n[t] = 0;
			}
		mtl_balance_dwa(s->w, s->hist, s->hist + T, bal->active, T,
				bal->o.dwa_temperature);
		break;
	case MTL_BALANCE_RLW:
		if (recompute)
			mtl_balance_rlw(s->w, bal->active, T, &s->rng);
		break;
	case MTL_BALANCE_GRADNORM:
	case MTL_BALANCE_PCGRAD:
	case MTL_BALANCE_CAGRAD:
	case MTL_BALANCE_NASH:
		grads = recompute;
		break;
	}
	memcpy(bal->hw, s->w, sizeof(double) * (size_t)T);
	if (!mtl_balance_is_gradient(bal->o.kind))
		memcpy(s->coef, s->w, sizeof(double) * (size_t)T);
	if (grads) {
		memset(st->task_loss, 0, sizeof(double) * (size_t)T);
		memset(st->correct, 0, sizeof(int64_t) * (size_t)T);
		st->tokens = 0;
		for (int t = 0; t < T; t++)
			st->labelled[t] = bal->norm[t];
		if ((rc = per_task(bal, b, n, st, err)))
			return rc;
		for (int t = 0; t < T; t++)
			if (bal->active[t])
				s->coef[t] = bal->cw[t];
		for (int t = 0; t < T; t++)
			if (bal->norm[t])
				st->task_loss[t] /= (double)bal->norm[t];
		st->bwd_ms = bal->ms;
		st->bwd_layers = tr->m->cfg.layers;
	} else {
		if ((rc = mtl_train_grad_weighted(tr, b, n, s->coef, st, err)))
			return rc;
		rescale_heads(tr, bal->hw, s->coef);
	}
	st->loss = 0;
	for (int t = 0; t < T; t++)
		if (bal->active[t])
			st->loss += bal->hw[t] * st->task_loss[t];
	if (bal->o.kind == MTL_BALANCE_UNCERTAINTY) {
		st->loss = mtl_balance_uncertainty(bal->ds, s->logvar,
						   st->task_loss, bal->active, T);
		for (int t = 0; t < T; t++)
			if (bal->active[t])
				bal->reg += s->logvar[t];
	}
	/* contrast.c's term (weighted paths only; mtl-step refuses it with
	 * gradient methods) */
	if (tr->con && !grads)
		st->loss += tr->con->weight * tr->con->loss;
	memcpy(bal->loss, st->task_loss, sizeof(double) * (size_t)T);
	st->grad_norm = mtl_train_grad_norm(tr);
	return 0;
}

/*
 * After optimiser update number step (from 1) with the heads at
 * learning rate lr: the strategy's own update (uncertainty: AdamW on s_t
 * at lr, no weight decay; DWA's loss window; GradNorm's weights).
 */
static void update(struct mtl_balance *bal, float lr, long step)
{
	struct mtl_train *tr = bal->tr;
	struct mtl_balance_state *s = &bal->s;
	int T = bal->T;

	switch (bal->o.kind) {
	case MTL_BALANCE_UNCERTAINTY:
		/* the same AdamW as the heads (lr is theirs), no decay;
		 * only present tasks move */
		for (int t = 0; t < T; t++) {
			struct mtl_adamw_group g = {
				.off = (size_t)t, .n = 1, .decay = 0, .lr_mult = 1,
			};

			if (bal->active[t])
				mtl_adamw_step(&tr->adam, s->logvar, bal->ds,
					       s->logvar_m, s->logvar_v, &g, 1,
					       lr, step, 1.0f, 1);
		}
		break;
	case MTL_BALANCE_DWA:
		for (int t = 0; t < T; t++)
			if (bal->active[t] && isfinite(bal->loss[t])) {
				s->win_sum[t] += bal->loss[t];
				s->win_n[t]++;
			}
		break;
	case MTL_BALANCE_GRADNORM:
		if (!bal->have_cos)
			break;
		for (int t = 0; t < T; t++)
			if (bal->active[t] && isnan(s->loss0[t]))
				s->loss0[t] = bal->loss[t];
		{
			double gn[64];

			for (int t = 0; t < T; t++)
				gn[t] = sqrt(fmax(bal->Kl[t * T + t], 0));
			mtl_balance_gradnorm(s->w, gn, bal->loss, s->loss0,
					     bal->active, T,
					     bal->o.gradnorm_alpha,
					     bal->o.gradnorm_lr);
		}
		break;
	default:
		break;
	}
}

int mtl_balance_step(struct mtl_balance *bal, const struct mtl_batch *const *b,
		     int n, struct mtl_step_stats *st, struct mtl_err *err)
{
	int rc;

	if ((rc = mtl_balance_grad(bal, b, n, st, err)) ||
	    (rc = mtl_train_apply(bal->tr, st)))
		return rc;
	update(bal, st->head_lr, st->step);
	return 0;
}
