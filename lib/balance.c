/*
 * balance.c - task balancing: the methods' arithmetic on Gram matrices
 * and loss histories, the per-task gradient passes, and the state's
 * msgpack form; see balance.h and docs/balancing.md.
 */
#include "balance.h"

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

/* ---- arithmetic ---- */

/*
 * K[i][j] += sum_{k<len} g_i[off+k] g_j[off+k], rows stride floats apart,
 * over the rows whose active[] is set (NULL: all); the rows of absent
 * tasks are never read (their buffers hold stale values).
 */
static void gram_acc(double *K, const float *g, int T, size_t stride,
		     size_t off, size_t len, int nt, const uint8_t *active)
{
	for (int i = 0; i < T; i++)
		for (int j = i; j < T; j++) {
			const float *a = g + (size_t)i * stride + off;
			const float *b = g + (size_t)j * stride + off;
			double s = 0;

			if (active && (!active[i] || !active[j]))
				continue;
#pragma omp parallel for reduction(+:s) num_threads(nt) if (len > 65536)
			for (size_t k = 0; k < len; k++)
				s += (double)a[k] * b[k];
			K[i * T + j] += s;
			if (j != i)
				K[j * T + i] += s;
		}
}

void mtl_balance_gram(double *K, const float *g, int T, size_t n, int nt)
{
	memset(K, 0, sizeof(double) * (size_t)T * T);
	gram_acc(K, g, T, n, 0, n, nt > 0 ? nt : 1, NULL);
}

void mtl_balance_cosine(double *cos, const double *K, const uint8_t *active,
			int T)
{
	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++) {
			double d = K[i * T + i] * K[j * T + j];

			cos[i * T + j] = active[i] && active[j] && d > 0
				? K[i * T + j] / sqrt(d) : NAN;
		}
}

void mtl_balance_pcgrad(double *coef, const double *K, const double *w,
			const uint8_t *active, int T, struct mtl_rng *rng)
{
	int order[64];
	double a[64];

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++)
		coef[t] = 0;
	for (int i = 0; i < T; i++) {
		if (!active[i])
			continue;
		/* a: task i's projected gradient as a combination of the g_t */
		for (int t = 0; t < T; t++) {
			a[t] = t == i ? w[i] : 0;
			order[t] = t;
		}
		mtl_rng_shuffle(rng, order, (size_t)T, sizeof(int));
		for (int k = 0; k < T; k++) {
			int j = order[k];
			double dot = 0, jj = w[j] * w[j] * K[j * T + j];

			if (j == i || !active[j] || !(jj > 0))
				continue;
			for (int t = 0; t < T; t++)
				dot += a[t] * w[j] * K[t * T + j];
			/* conflict: remove the component along w_j g_j */
			if (dot < 0)
				a[j] -= dot / jj * w[j];
		}
		for (int t = 0; t < T; t++)
			coef[t] += a[t];
	}
}

/* x^T K y over the active entries. */
static double quad(const double *K, const double *x, const double *y, int T)
{
	double s = 0;

	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++)
			s += x[i] * K[i * T + j] * y[j];
	return s;
}

void mtl_balance_cagrad(double *coef, const double *K, const double *w,
			const uint8_t *active, int T, double c)
{
	double Kw[64 * 64], b[64], x[64], best[64], Kb[64], Kx[64];
	double g0n, fbest = INFINITY, lam, gwn;
	int A = 0;

	MTL_ASSERT(T <= 64);
	/* Kw: the Gram matrix of the weighted gradients w_t g_t */
	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++)
			Kw[i * T + j] = active[i] && active[j]
				? w[i] * w[j] * K[i * T + j] : 0;
	for (int t = 0; t < T; t++)
		A += active[t] != 0;
	for (int t = 0; t < T; t++) {
		coef[t] = 0;
		b[t] = x[t] = best[t] = active[t] ? 1.0 / A : 0;
	}
	if (!A)
		return;
	g0n = sqrt(fmax(quad(Kw, b, b, T), 0));
	for (int i = 0; i < T; i++) {
		Kb[i] = 0;
		for (int j = 0; j < T; j++)
			Kb[i] += Kw[i * T + j] * b[j];
	}
	/*
	 * F(x) = x.Kb + c |g0| sqrt(x K x) is convex on the simplex:
	 * exponentiated gradient, steps scaled by the gradient's range and
	 * shrinking as 1/sqrt(k); the best iterate is kept.
	 */
	for (int k = 0; k < 2000; k++) {
		double xkx, f, gr[64], lo = INFINITY, hi = -INFINITY, eta, z = 0;

		for (int i = 0; i < T; i++) {
			Kx[i] = 0;
			for (int j = 0; j < T; j++)
				Kx[i] += Kw[i * T + j] * x[j];
		}
		xkx = fmax(quad(Kw, x, x, T), 0);
		f = 0;
		for (int i = 0; i < T; i++)
			f += x[i] * Kb[i];
		f += c * g0n * sqrt(xkx);
		if (f < fbest) {
			fbest = f;
			memcpy(best, x, sizeof(double) * (size_t)T);
		}
		for (int i = 0; i < T; i++) {
			if (!active[i])
				continue;
			gr[i] = Kb[i] + (xkx > 0 ? c * g0n * Kx[i] / sqrt(xkx) : 0);
			lo = fmin(lo, gr[i]);
			hi = fmax(hi, gr[i]);
		}
		if (!(hi > lo))
			break;
		eta = 4.0 / ((hi - lo) * sqrt(k + 1.0));
		for (int i = 0; i < T; i++)
			if (active[i]) {
				x[i] *= exp(-eta * (gr[i] - lo));
				z += x[i];
			}
		for (int i = 0; i < T; i++)
			x[i] /= z;
	}
	gwn = sqrt(fmax(quad(Kw, best, best, T), 0));
	lam = gwn > 0 ? c * g0n / gwn : 0;
	for (int t = 0; t < T; t++)
		if (active[t])
			coef[t] = w[t] * (b[t] + lam * best[t]) / (1 + c * c) * A;
}

/* Solves A x = b (n x n, row-major) by Gaussian elimination with
 * partial pivoting; A and b are overwritten.  0, or -1 when singular. */
static int solve_linear(double *x, double *A, double *b, int n)
{
	for (int c = 0; c < n; c++) {
		int p = c;

		for (int r = c + 1; r < n; r++)
			if (fabs(A[r * n + c]) > fabs(A[p * n + c]))
				p = r;
		if (!(fabs(A[p * n + c]) > 0))
			return -1;
		for (int k = 0; k < n && p != c; k++) {
			double t = A[c * n + k];

			A[c * n + k] = A[p * n + k];
			A[p * n + k] = t;
		}
		if (p != c) {
			double t = b[c];

			b[c] = b[p];
			b[p] = t;
		}
		for (int r = c + 1; r < n; r++) {
			double f = A[r * n + c] / A[c * n + c];

			for (int k = c; k < n; k++)
				A[r * n + k] -= f * A[c * n + k];
			b[r] -= f * b[c];
		}
	}
	for (int r = n - 1; r >= 0; r--) {
		double s = b[r];

		for (int k = r + 1; k < n; k++)
			s -= A[r * n + k] * x[k];
		x[r] = s / A[r * n + r];
	}
	return 0;
}

/* f(a) = a K a / 2 - sum log a over the n compacted tasks; +inf off a > 0. */
static double nash_f(const double *K, const double *a, int n)
{
	double f = 0;

	for (int i = 0; i < n; i++) {
		if (!(a[i] > 0))
			return INFINITY;
		f -= log(a[i]);
		for (int j = 0; j < n; j++)
			f += 0.5 * a[i] * K[i * n + j] * a[j];
	}
	return f;
}

double mtl_balance_nash(double *coef, const double *K, const double *w,
			const uint8_t *active, int T)
{
	double Kc[64 * 64], H[64 * 64], a[64], g[64], p[64], na[64], res = 0;
	int idx[64], n = 0;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++) {
		coef[t] = 0;
		if (active[t] && w[t] * w[t] * K[t * T + t] > 0)
			idx[n++] = t;
	}
	if (!n)
		return 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			Kc[i * n + j] = w[idx[i]] * w[idx[j]] * K[idx[i] * T + idx[j]];
	/* start where each task alone would be solved: 1 / |w_t g_t| */
	for (int i = 0; i < n; i++)
		a[i] = 1 / sqrt(Kc[i * n + i]);
	for (int it = 0; it < 100; it++) {
		double f0 = nash_f(Kc, a, n), step = 1, dec = 0, gmax = 0;

		for (int i = 0; i < n; i++) {
			double ka = 0;

			for (int j = 0; j < n; j++)
				ka += Kc[i * n + j] * a[j];
			g[i] = ka - 1 / a[i];
			gmax = fmax(gmax, fabs(g[i] * a[i]));
			for (int j = 0; j < n; j++)
				H[i * n + j] = Kc[i * n + j] + (i == j ? 1 / (a[i] * a[i]) : 0);
			p[i] = -g[i];
		}
		if (gmax < 1e-12 || solve_linear(na, H, p, n))
			break;
		for (int i = 0; i < n; i++)
			dec += g[i] * na[i];
		/* backtracking (Armijo) inside a > 0 */
		for (int k = 0; k < 60; k++, step *= 0.5) {
			double trial[64];

			for (int i = 0; i < n; i++)
				trial[i] = a[i] + step * na[i];
			if (nash_f(Kc, trial, n) <= f0 + 1e-4 * step * dec) {
				memcpy(a, trial, sizeof(double) * (size_t)n);
				break;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		double ka = 0;

		for (int j = 0; j < n; j++)
			ka += Kc[i * n + j] * a[j];
		res = fmax(res, fabs(ka * a[i] - 1));
		coef[idx[i]] = w[idx[i]] * a[i];
	}
	return res;
}

double mtl_balance_uncertainty(float *ds, const float *s, const double *L,
			       const uint8_t *active, int T)
{
	double total = 0;

	for (int t = 0; t < T; t++) {
		double e = exp(-(double)s[t]);

		ds[t] = 0;
		if (!active[t])
			continue;
		total += e * L[t] + s[t];
		ds[t] = (float)(1 - e * L[t]);
	}
	return total;
}

void mtl_balance_dwa(double *w, const double *last, const double *prev,
		     const uint8_t *active, int T, double temp)
{
	double r[64], mx = -INFINITY, z = 0;
	int A = 0, ready = 1;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++) {
		if (!active[t])
			continue;
		A++;
		if (!(isfinite(last[t]) && isfinite(prev[t]) && prev[t] > 0))
			ready = 0;
	}
	for (int t = 0; t < T; t++) {
		if (!active[t])
			continue;
		if (!ready) {
			w[t] = 1;
			continue;
		}
		r[t] = last[t] / prev[t] / temp;
		mx = fmax(mx, r[t]);
	}
	if (!ready)
		return;
	/* softmax with the max subtracted, for large ratios */
	for (int t = 0; t < T; t++)
		if (active[t])
			z += exp(r[t] - mx);
	for (int t = 0; t < T; t++)
		if (active[t])
			w[t] = A * exp(r[t] - mx) / z;
}

void mtl_balance_gradnorm(double *w, const double *gn, const double *L,
			  const double *L0, const uint8_t *active, int T,
			  double alpha, double lr)
{
	double G[64], rt[64], gbar = 0, rbar = 0, sum0 = 0, sum1 = 0;
	int A = 0;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++) {
		if (!active[t] || !(L0[t] > 0))
			continue;
		A++;
		G[t] = w[t] * gn[t];
		rt[t] = L[t] / L0[t];
		gbar += G[t];
		rbar += rt[t];
		sum0 += w[t];
	}
	if (!A)
		return;
	gbar /= A;
	rbar /= A;
	for (int t = 0; t < T; t++) {
		double target, d;

		if (!active[t] || !(L0[t] > 0))
			continue;
		target = gbar * pow(rt[t] / rbar, alpha);
		/* d/dw_t |w_t gn_t - target| with the target held fixed */
		d = G[t] > target ? gn[t] : G[t] < target ? -gn[t] : 0;
		w[t] = fmax(w[t] - lr * d, 1e-3);
		sum1 += w[t];
	}
	for (int t = 0; t < T; t++)
		if (active[t] && L0[t] > 0)
			w[t] *= sum0 / sum1;
}

void mtl_balance_rlw(double *w, const uint8_t *active, int T,
		     struct mtl_rng *rng)
{
	double z[64], mx = -INFINITY, s = 0;
	int A = 0;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++)
		if (active[t]) {
			z[t] = mtl_rng_normal(rng);
			mx = fmax(mx, z[t]);
			A++;
		}
	for (int t = 0; t < T; t++)
		if (active[t])
			s += exp(z[t] - mx);
	for (int t = 0; t < T; t++)
		if (active[t])
			w[t] = A * exp(z[t] - mx) / s;
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
		for (size_t i = 0; i < m->n_tensors; i++) {
			int layer = -1;

			if (sscanf(m->tensors[i].name, "encoder.layer.%d.",
				   &layer) == 1 && layer == L - 1)
				gram_acc(bal->Kl, bal->G, T, np,
					 m->tensors[i].offset,
					 m->tensors[i].numel, m->threads,
					 bal->active);
		}
		solve(bal, bal->K);
		for (int t = 0; t < T; t++) {
			const float *g = bal->G + (size_t)t * np;
			float c = (float)bal->cw[t];

			if (!bal->active[t] || c == 0)
				continue;
#pragma omp parallel for num_threads(m->threads)
			for (size_t i = 0; i < np; i++)
				tr->grad[i] += c * g[i];
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
