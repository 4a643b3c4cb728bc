/* metrics.c - classification and entity scores; see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mtl_prf_finish(struct mtl_prf *s)
{
	s->support = s->tp + s->fn;
	s->precision = s->tp + s->fp ? (double)s->tp / (double)(s->tp + s->fp) : 0;
	s->recall = s->tp + s->fn ? (double)s->tp / (double)(s->tp + s->fn) : 0;
	s->f1 = s->precision + s->recall > 0 ?
		2 * s->precision * s->recall / (s->precision + s->recall) : 0;
}

int mtl_confusion_init(struct mtl_confusion *c, int n)
{
	c->n = n;
	c->total = 0;
	c->m = calloc((size_t)n * (size_t)n, sizeof(long));
	return c->m ? 0 : MTL_ERR_NOMEM;
}

void mtl_confusion_add(struct mtl_confusion *c, int gold, int pred)
{
	MTL_ASSERT(gold >= 0 && gold < c->n && pred >= 0 && pred < c->n);
	c->m[(size_t)gold * (size_t)c->n + (size_t)pred]++;
	c->total++;
}

double mtl_confusion_accuracy(const struct mtl_confusion *c)
{
	long right = 0;

	for (int k = 0; k < c->n; k++)
		right += c->m[(size_t)k * (size_t)c->n + (size_t)k];
	return c->total ? (double)right / (double)c->total : 0;
}

void mtl_confusion_class(const struct mtl_confusion *c, int k,
			 struct mtl_prf *out)
{
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < c->n; j++) {
		long gk = c->m[(size_t)k * (size_t)c->n + (size_t)j];
		long pk = c->m[(size_t)j * (size_t)c->n + (size_t)k];
		if (j == k)
			out->tp = gk;
		else {
			out->fn += gk;
			out->fp += pk;
		}
	}
	mtl_prf_finish(out);
}

double mtl_confusion_macro_f1(const struct mtl_confusion *c)
{
	double sum = 0;
	int n = 0;

	for (int k = 0; k < c->n; k++) {
		struct mtl_prf s;
		mtl_confusion_class(c, k, &s);
		if (s.tp + s.fp + s.fn == 0)
			continue; /* a class never seen nor predicted */
		sum += s.f1;
		n++;
	}
	return n ? sum / n : 0;
}

int mtl_multilabel_init(struct mtl_multilabel_score *s, int n)
{
	memset(s, 0, sizeof(*s));
	s->per_label = calloc((size_t)n + 1, sizeof(*s->per_label));
	if (!s->per_label)
		return MTL_ERR_NOMEM;
	s->n = n;
	return 0;
}

void mtl_multilabel_add(struct mtl_multilabel_score *s, const int *gold,
			const int *pred)
{
	int same = 1;

	for (int k = 0; k < s->n; k++) {
		struct mtl_prf *p = &s->per_label[k];

		p->tp += gold[k] && pred[k];
		p->fp += !gold[k] && pred[k];
		p->fn += gold[k] && !pred[k];
		same &= !gold[k] == !pred[k];
	}
	s->items++;
	s->exact += same;
}

void mtl_multilabel_finish(struct mtl_multilabel_score *s)
{
	double sum = 0;
	int n = 0;

	s->micro.tp = s->micro.fp = s->micro.fn = 0;
	for (int k = 0; k < s->n; k++) {
		struct mtl_prf *p = &s->per_label[k];

		mtl_prf_finish(p);
		s->micro.tp += p->tp;
		s->micro.fp += p->fp;
		s->micro.fn += p->fn;
		if (p->tp + p->fp + p->fn == 0)
			continue; /* a label never given nor predicted */
		sum += p->f1;
		n++;
	}
	mtl_prf_finish(&s->micro);
	s->macro_f1 = n ? sum / n : 0;
}

void mtl_multilabel_release(struct mtl_multilabel_score *s)
{
	free(s->per_label);
	memset(s, 0, sizeof(*s));
}

double mtl_pearson(const double *x, const double *y, long n)
{
	double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;

	if (n < 2)
		return NAN;
	for (long i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= (double)n;
	my /= (double)n;
	/* centred sums: no cancellation of large means */
	for (long i = 0; i < n; i++) {
		sxy += (x[i] - mx) * (y[i] - my);
		sxx += (x[i] - mx) * (x[i] - mx);
		syy += (y[i] - my) * (y[i] - my);
	}
	if (sxx == 0 || syy == 0)
		return NAN;
	return sxy / sqrt(sxx * syy);
}

struct ranked {
	double v;
	long i;
};

static int by_value(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	return (x->v > y->v) - (x->v < y->v);
}

/* r[i] = the rank (1-based) of v[i], ties the mean of their ranks. */
static int ranks(double *r, const double *v, long n)
{
	struct ranked *o = malloc((size_t)(n ? n : 1) * sizeof(*o));

	if (!o)
		return -1;
	for (long i = 0; i < n; i++)
		o[i] = (struct ranked){ v[i], i };
	qsort(o, (size_t)n, sizeof(*o), by_value);
	for (long i = 0, j; i < n; i = j) {
		for (j = i; j < n && o[j].v == o[i].v; j++)
			;
		for (long k = i; k < j; k++)
			r[o[k].i] = (double)(i + 1 + j) / 2; /* mean of ranks i+1..j */
	}
	free(o);
	return 0;
}

double mtl_spearman(const double *x, const double *y, long n, int *nomem)
{
	double *r = malloc(2 * (size_t)(n ? n : 1) * sizeof(double)), rho;

	*nomem = 0;
	if (!r || ranks(r, x, n) || ranks(r + n, y, n)) {
		free(r);
		*nomem = 1;
		return NAN;
	}
	rho = mtl_pearson(r, r + n, n);
	free(r);
	return rho;
}

double mtl_mse(const double *x, const double *y, long n)
{
	double s = 0;

	for (long i = 0; i < n; i++)
		s += (x[i] - y[i]) * (x[i] - y[i]);
	return n ? s / (double)n : NAN;
}

int mtl_regression_add(struct mtl_regression_score *s, double pred,
		       double gold)
{
	if (s->n == s->cap) {
		long cap = s->cap ? 2 * s->cap : 256;
		double *p = realloc(s->pred, (size_t)cap * sizeof(double));

		if (p)
			s->pred = p;
		p = p ? realloc(s->gold, (size_t)cap * sizeof(double)) : NULL;
		if (!p)
			return MTL_ERR_NOMEM;
		s->gold = p;
		s->cap = cap;
	}
	s->pred[s->n] = pred;
	s->gold[s->n++] = gold;
	return 0;
}

int mtl_regression_finish(struct mtl_regression_score *s)
{
	int nomem;

	s->mse = mtl_mse(s->pred, s->gold, s->n);
	s->pearson = mtl_pearson(s->pred, s->gold, s->n);
	s->spearman = mtl_spearman(s->pred, s->gold, s->n, &nomem);
	return nomem ? MTL_ERR_NOMEM : 0;
}

void mtl_regression_release(struct mtl_regression_score *s)
{
	free(s->pred);
	free(s->gold);
	memset(s, 0, sizeof(*s));
}

double mtl_confusion_micro_f1(const struct mtl_confusion *c)
{
	struct mtl_prf all = { 0 };

	for (int k = 0; k < c->n; k++) {
		struct mtl_prf s;
		mtl_confusion_class(c, k, &s);
		all.tp += s.tp;
		all.fp += s.fp;
		all.fn += s.fn;
	}
	mtl_prf_finish(&all);
	return all.f1;
}

void mtl_confusion_release(struct mtl_confusion *c)
{
	if (!c)
		return;
	free(c->m);
	memset(c, 0, sizeof(*c));
}

int mtl_bio_init(struct mtl_bio *b, const char *const *labels, int n,
		 int strict, struct mtl_err *err)
{
	memset(b, 0, sizeof(*b));
	b->n_labels = n;
	b->strict = strict;
	b->prefix = calloc((size_t)n, 1);
	b->type = calloc((size_t)n, sizeof(int));
	b->types = calloc((size_t)n, sizeof(char *));
	if (!b->prefix || !b->type || !b->types) {
		mtl_bio_release(b);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		const char *l = labels[i];
		int t;

		if (!strcmp(l, "O")) {
			b->prefix[i] = 'O';
			b->type[i] = -1;
			continue;
		}
		/* l[0] first: strchr finds the terminating NUL of "BIES" too */
		if (!l[0] || !strchr("BIES", l[0]) || l[1] != '-' || !l[2]) {
			mtl_bio_release(b);
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "label '%s' is not a BIO tag (O, B-TYPE, I-TYPE)", l);
		}
		b->prefix[i] = l[0];
		for (t = 0; t < b->n_types; t++)
			if (!strcmp(b->types[t], l + 2))
				break;
		if (t == b->n_types) {
			if (!(b->types[t] = strdup(l + 2))) {
				mtl_bio_release(b);
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			}
			b->n_types++;
		}
		b->type[i] = t;
	}
	return 0;
}

void mtl_bio_release(struct mtl_bio *b)
{
	if (!b)
		return;
	for (int t = 0; b->types && t < b->n_types; t++)
		free(b->types[t]);
	free(b->types);
	free(b->type);
	free(b->prefix);
	memset(b, 0, sizeof(*b));
}

int mtl_bio_spans(const struct mtl_bio *b, const int *tags, int n,
		  struct mtl_span *out)
{
	int count = 0, open = 0, cur_type = -1;
	char prev = 'O';

	for (int i = 0; i <= n; i++) {
		char p = 'O';
		int type = -1;
		int starts, ends;

		if (i < n && tags[i] >= 0 && tags[i] < b->n_labels) {
			p = b->prefix[tags[i]];
			type = b->type[tags[i]];
		}
		/* conlleval's end-of-chunk and start-of-chunk rules */
		ends = open && (p == 'B' || p == 'S' || p == 'O' || type != cur_type ||
				prev == 'E' || prev == 'S');
		starts = p == 'B' || p == 'S' ||
			 ((p == 'I' || p == 'E') &&
			  (!open || ends || type != cur_type) && !b->strict);
		if (ends) {
			out[count - 1].end = i;
			open = 0;
		}
		if (starts) {
			out[count++] = (struct mtl_span){ type, i, i + 1 };
			open = 1;
			cur_type = type;
		} else if (!open || ends) {
			/* strict mode: an I- with no entity to continue is outside */
			open = 0;
		}
		prev = p;
	}
	return count;
}

int mtl_entity_init(struct mtl_entity_score *s, const struct mtl_bio *b)
{
	memset(s, 0, sizeof(*s));
	s->n_types = b->n_types;
	s->per_type = calloc((size_t)(b->n_types ? b->n_types : 1), sizeof(*s->per_type));
	return s->per_type ? 0 : MTL_ERR_NOMEM;
}

int mtl_entity_add(struct mtl_entity_score *s, const struct mtl_bio *b,
		   const int *gold, const int *pred, int n)
{
	struct mtl_span *g = malloc((size_t)(n + 1) * 2 * sizeof(*g)), *p;
	int ng, np, i = 0, j = 0;

	if (!g)
		return MTL_ERR_NOMEM;
	p = g + n + 1;
	ng = mtl_bio_spans(b, gold, n, g);
	np = mtl_bio_spans(b, pred, n, p);
	/* both lists are ordered by start and do not overlap */
	for (int k = 0; k < ng; k++)
		s->per_type[g[k].type].fn++;
	for (int k = 0; k < np; k++)
		s->per_type[p[k].type].fp++;
	while (i < ng && j < np) {
		if (g[i].start < p[j].start)
			i++;
		else if (p[j].start < g[i].start)
			j++;
		else {
			if (g[i].end == p[j].end && g[i].type == p[j].type) {
				s->per_type[g[i].type].tp++;
				s->per_type[g[i].type].fn--;
				s->per_type[g[i].type].fp--;
			}
			i++;
			j++;
		}
	}
	free(g);
	return 0;
}

double mtl_entity_finish(struct mtl_entity_score *s)
{
	double macro = 0;

	memset(&s->micro, 0, sizeof(s->micro));
	for (int t = 0; t < s->n_types; t++) {
		mtl_prf_finish(&s->per_type[t]);
		s->micro.tp += s->per_type[t].tp;
		s->micro.fp += s->per_type[t].fp;
		s->micro.fn += s->per_type[t].fn;
		macro += s->per_type[t].f1;
	}
	mtl_prf_finish(&s->micro);
	return s->n_types ? macro / s->n_types : 0;
}

void mtl_entity_release(struct mtl_entity_score *s)
{
	if (!s)
		return;
	free(s->per_type);
	memset(s, 0, sizeof(*s));
}
