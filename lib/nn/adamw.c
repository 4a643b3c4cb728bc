/*
 * adamw.c - AdamW, clipping and schedules; see adamw.h.
 */
#include "adamw.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "par.h"

void mtl_adamw_defaults(struct mtl_adamw *o)
{
	o->b1 = 0.9f;
	o->b2 = 0.999f;
	o->eps = 1e-8f;
	o->wd = 0.01f;
}

/* The arguments of one parameter group's update. */
struct adamw_job {
	float *w;
	const float *g;
	float *m, *v;
	int64_t off;
	float decay, step, b1, b2, eps, rbc2, gscale;
	const uint8_t *rows; /* the group's (see adamw.h) */
	int64_t row;
	uint8_t *seen;
};

/*
 * Elements off + lo .. off + hi - 1, with their gradient G (g[i], or 0
 * where it is known to be zero: the same arithmetic, so the same bits).
 */
#define ADAMW_LOOP(G)                                                        \
	do {                                                                 \
		float *w = j->w + j->off, *m = j->m + j->off;                \
		float *v = j->v + j->off;                                    \
		const float *g = j->g + j->off;                              \
		float b1 = j->b1, b2 = j->b2, eps = j->eps, rbc2 = j->rbc2;  \
		float decay = j->decay, step = j->step, gscale = j->gscale;  \
                                                                             \
		(void)g;                                                     \
		_Pragma("omp simd")                                          \
		for (int64_t i = lo; i < hi; i++) {                          \
			float gi = (G) * gscale;                             \
			float mi = b1 * m[i] + (1.0f - b1) * gi;             \
			float vi = b2 * v[i] + (1.0f - b2) * gi * gi;        \
                                                                             \
			m[i] = mi;                                           \
			v[i] = vi;                                           \
			w[i] = w[i] * decay - step * mi / (sqrtf(vi) / rbc2 + eps); \
		}                                                            \
	} while (0)

static void adamw_span(const struct adamw_job *j, int64_t lo, int64_t hi)
{
	ADAMW_LOOP(g[i]);
}

static void adamw_span_zero(const struct adamw_job *j, int64_t lo, int64_t hi)
{
	ADAMW_LOOP(0.0f);
}

/*
 * ADAMW_LOOP(0.0f) where m and v are zero: they stay zero, and the
 * update's quotient is the same for every element.
 */
static void adamw_span_unseen(const struct adamw_job *j, int64_t lo, int64_t hi)
{
	float *w = j->w + j->off, decay = j->decay;
	float q = j->step * 0.0f / (sqrtf(0.0f) / j->rbc2 + j->eps);

	_Pragma("omp simd")
	for (int64_t i = lo; i < hi; i++)
		w[i] = w[i] * decay - q;
}

static void adamw_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	adamw_span(arg, lo, hi);
}

/* Rows lo .. hi - 1 of a group with a row table. */
static void adamw_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct adamw_job *j = arg;

	for (int64_t r = lo; r < hi; r++)
		if (j->rows[r]) {
			adamw_span(j, r * j->row, (r + 1) * j->row);
			if (j->seen)
				j->seen[r] = 1;
		} else if (!j->seen || j->seen[r]) {
			adamw_span_zero(j, r * j->row, (r + 1) * j->row);
		} else {
			adamw_span_unseen(j, r * j->row, (r + 1) * j->row);
		}
}

void mtl_adamw_step(const struct mtl_adamw *o, float *w, const float *g,
		    float *m, float *v, const struct mtl_adamw_group *groups,
		    size_t n_groups, float lr, long t, float gscale, int nt)
{
	/* bias corrections in double, as PyTorch computes them in Python */
	double bc1 = 1.0 - pow(o->b1, (double)t);
	double bc2 = 1.0 - pow(o->b2, (double)t);
	struct adamw_job j = { w, g, m, v, 0, 0, 0, o->b1, o->b2, o->eps,
			       (float)sqrt(bc2), gscale, NULL, 0, NULL };

	for (size_t k = 0; k < n_groups; k++) {
		const struct mtl_adamw_group *gr = &groups[k];
		float glr = lr * gr->lr_mult;

		j.off = (int64_t)gr->off;
		j.decay = gr->decay ? 1.0f - glr * o->wd : 1.0f;
		j.step = (float)(glr / bc1);
		j.rows = gr->rows;
		j.row = (int64_t)gr->row;
		j.seen = gr->seen;
		if (gr->rows) {
			int64_t nr = (int64_t)(gr->n / gr->row);

			mtl_par_for(nt, nr, mtl_par_chunk(nr, j.row, nt),
				    adamw_rows, &j);
			continue;
		}
		mtl_par_for(nt, (int64_t)gr->n, mtl_par_chunk((int64_t)gr->n, 1, nt),
			    adamw_part, &j);
	}
}

float mtl_adamw_clip_scale(double norm, float max_norm)
{
	double c;

	if (max_norm <= 0)
		return 1.0f;
	c = max_norm / (norm + 1e-6);
	return c < 1 ? (float)c : 1.0f;
}

float mtl_adamw_lr_at(enum mtl_sched s, float lr, long step, long warmup,
		long total)
{
	double prog;

	if (step < warmup)
		return (float)(lr * (double)step / (double)warmup);
	if (s == MTL_SCHED_CONSTANT)
		return lr;
	if (total <= warmup)
		return 0.0f;
	prog = (double)(step - warmup) / (double)(total - warmup);
	if (prog > 1)
		prog = 1;
	if (s == MTL_SCHED_LINEAR)
		return (float)(lr * (1.0 - prog));
	return (float)(lr * 0.5 * (1.0 + cos(M_PI * prog)));
}

int mtl_adamw_sched_parse(enum mtl_sched *s, const char *name)
{
	static const char *const names[] = { "linear", "cosine", "constant" };

	for (int i = 0; i < 3; i++)
		if (!strcmp(name, names[i])) {
			*s = (enum mtl_sched)i;
			return 0;
		}
	return -1;
}
