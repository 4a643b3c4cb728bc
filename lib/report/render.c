/*
 * render.c - the report as text, markdown, JSON or HTML; see render.h.
 *
 * Text, markdown and HTML share one walk over the report (render_doc):
 * headings, paragraphs and tables go through small helpers that escape
 * and lay out for the format at hand, and HTML adds inline SVG: line
 * charts and heat maps (svg_chart, svg_heat).  JSON is built separately with
 * jansson, so that it holds every figure and not only what is shown.
 *
 * This file holds that walk, section by section, and the entry points;
 * the embedding sections are in render_emb.c, the primitives in
 * render_out.c, the JSON in render_json.c (render_int.h).
 */
#include "render_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- sections --- */

static const char *const palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
				       "#9467bd", "#8c564b", "#e377c2", "#17becf" };

/* One line: the best eval F1 of each task (the first eval row reaching it). */
/* Colours of series that are no task's (totals, lr, cosine pairs). */
static const char *const greys[] = { "#333333", "#7f7f7f", "#bcbd22", "#8c6d31",
				     "#5254a3", "#637939" };

/*
 * The distinct task names of the steps, in order of first appearance in
 * their losses, accuracies, weights, labelled counts, then evaluations,
 * into out (at most cap, borrowed from s).  Returns the count.
 */
static int task_names(const struct mtl_report_steps *s, const char **out, int cap)
{
	const struct mtl_report_family *f[] = { &s->losses, &s->accuracy, &s->weights,
						&s->labelled };
	int n = 0;

	for (size_t j = 0; j <= sizeof(f) / sizeof(f[0]); j++) {
		long m = j < 4 ? f[j]->n : s->n_eval;
		for (long i = 0; i < m; i++) {
			const char *name = j < 4 ? f[j]->key[i] : s->eval[i].task;
			int k = 0;
			while (k < n && strcmp(out[k], name))
				k++;
			if (k == n && n < cap)
				out[n++] = name;
		}
	}
	return n;
}

/*
 * A series' colour: a task's is the same in every chart (the palette
 * entry of its place in task_names); another series, the k-th of its
 * chart (a total, lr, a cosine pair), gets a grey.
 */
static const char *series_colour(const struct mtl_report_steps *s, const char *name, int k)
{
	const char *names[64];
	int n = task_names(s, names, 64);

	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return palette[i % 8];
	return greys[k % (int)(sizeof(greys) / sizeof(greys[0]))];
}

/* The evaluations as curves: v[m][t*n + j] is metric m (loss, accuracy,
 * f1) of task t at the j-th distinct eval step x[j], NaN where absent. */
struct eval_curves {
	long n;        /* distinct eval steps */
	double *x;     /* [n] */
	int n_tasks;
	char *task[64]; /* borrowed from the steps */
	double *v[3];  /* [n_tasks * n] each */
};

static void eval_curves_release(struct eval_curves *e)
{
	free(e->x);
	for (int m = 0; m < 3; m++)
		free(e->v[m]);
	memset(e, 0, sizeof(*e));
}

/* Fills e from s's eval rows.  0, or -1 out of memory (e released). */
static int eval_curves(struct eval_curves *e, const struct mtl_report_steps *s)
{
	long ne = s->n_eval;

	memset(e, 0, sizeof(*e));
	if (!(e->x = malloc((size_t)(ne + 1) * sizeof(double))))
		return -1;
	for (long i = 0; i < ne; i++) {
		const struct mtl_report_eval *r = &s->eval[i];
		long j = 0;
		int t = 0;
		while (j < e->n && e->x[j] != r->step)
			j++;
		if (j == e->n)
			e->x[e->n++] = r->step;
		while (t < e->n_tasks && strcmp(e->task[t], r->task))
			t++;
		if (t == e->n_tasks && t < 64)
			e->task[e->n_tasks++] = r->task;
	}
	for (int m = 0; m < 3; m++) {
		size_t sz = (size_t)(e->n_tasks ? e->n_tasks : 1) * (size_t)(e->n ? e->n : 1);
		if (!(e->v[m] = malloc(sz * sizeof(double)))) {
			eval_curves_release(e);
			return -1;
		}
		for (size_t i = 0; i < sz; i++)
			e->v[m][i] = NAN;
	}
	for (long i = 0; i < ne; i++) {
		const struct mtl_report_eval *r = &s->eval[i];
		long j = 0;
		int t = 0;
		while (e->x[j] != r->step)
			j++;
		while (t < e->n_tasks && strcmp(e->task[t], r->task))
			t++;
		if (t == e->n_tasks)
			continue; /* past 64 tasks */
		e->v[0][(size_t)t * (size_t)e->n + (size_t)j] = r->loss;
		e->v[1][(size_t)t * (size_t)e->n + (size_t)j] = r->accuracy;
		e->v[2][(size_t)t * (size_t)e->n + (size_t)j] = r->f1;
	}
	return 0;
}

/*
 * One chart of ns series over x[0..n) (svg_chart); the series that are
 * constant (with at least two points) are left out of it and said in a
 * line written to notes ("Task weights constant: topic 1.0000, ner
 * 0.5000"); no chart when none is left.
 */
static void chart(struct out *o, const struct mtl_report_steps *s, const char *title,
		  int ns, char **names, const double **ys, const double *x, long n,
		  double smooth, FILE *notes)
{
	const char *cols[65];
	char *kept_names[65], *sentence = NULL;
	const double *kept[65];
	size_t len = 0;
	int nk = 0;
	FILE *m = open_memstream(&sentence, &len);

	if (!m) {
		o->nomem = 1;
		return;
	}
	for (int k = 0; k < ns && k < 65; k++) {
		struct mtl_report_stat st;
		char b[32];

		mtl_report_stat(ys[k], n, &st);
		if (st.n >= 2 && st.min == st.max) {
			num(b, sizeof(b), st.min);
			fprintf(m, "%s%s %s", ftell(m) ? ", " : "", names[k], b);
			continue;
		}
		cols[nk] = series_colour(s, names[k], k);
		kept_names[nk] = names[k];
		kept[nk++] = ys[k];
	}
	fclose(m);
	if (nk)
		svg_chart(o, title, nk, kept_names, cols, kept, x, n, smooth);
	if (sentence && *sentence)
		fprintf(notes, "%s constant: %s\n", title, sentence);
	free(sentence);
}

/* The curves c[0..nc) that are constant over two points or more, in a
 * sentence ("constant: weight topic 1, weight ner 0.5000"). */
static void render_constant(struct out *o, const struct mtl_report_steps *s,
			    const struct curve *c, int nc)
{
	char *sentence = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&sentence, &len);
	struct mtl_report_stat st;
	char b[32];

	if (!m) {
		o->nomem = 1;
		return;
	}
	for (int k = 0; k < nc; k++) {
		mtl_report_stat(c[k].v, s->n, &st);
		if (st.n < 2 || st.min != st.max)
			continue;
		if (c[k].counts)
			snprintf(b, sizeof(b), "%.0f", st.min);
		else
			num(b, sizeof(b), st.min);
		fprintf(m, "%s%s %s", ftell(m) ? ", " : "", c[k].name, b);
	}
	fclose(m);
	if (sentence && *sentence)
		para(o, "constant: %s", sentence);
	free(sentence);
}

/*
 * The HTML charts of a steps stream: the training curves, the noisy ones
 * (loss, accuracy, cosines, gradient norm) optionally smoothed, with the evaluations' curves (dev loss,
 * accuracy, F1 per task over the eval steps) beside the training ones.
 */
static void render_charts(struct out *o, const struct mtl_report_steps *s)
{
	/* noisy: smoothed on request; eval: metric 1 + (loss, accuracy, f1) */
	const struct { const char *title; const struct mtl_report_family *f; const double *total; const char *tname; int eval, noisy; } ch[] = {
		{ "Loss", &s->losses, s->loss, "total", 0, 1 },
		{ "Dev loss", NULL, NULL, NULL, 1, 0 },
		{ "Accuracy", &s->accuracy, NULL, NULL, 0, 1 },
		{ "Dev accuracy", NULL, NULL, NULL, 2, 0 },
		{ "Dev F1", NULL, NULL, NULL, 3, 0 },
		{ "Task weights", &s->weights, NULL, NULL, 0, 0 },
		{ "Gradient cosine between tasks", &s->cosine, NULL, NULL, 0, 1 },
		{ "Learning rate", NULL, s->lr, "lr", 0, 0 },
		{ "Gradient norm", NULL, s->grad_norm, "grad norm", 0, 1 },
	};
	struct eval_curves ev;
	double *x = malloc((size_t)s->n * sizeof(double));
	char *notes = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *nf = open_memstream(&notes, &len);

	if (!x || !nf || eval_curves(&ev, s)) {
		free(x);
		if (nf)
			fclose(nf);
		free(notes);
		o->nomem = 1;
		return;
	}
	for (long i = 0; i < s->n; i++)
		x[i] = step_x(s, i);
	fputs("<div class=\"charts\">\n", o->f);
	for (size_t k = 0; k < sizeof(ch) / sizeof(ch[0]); k++) {
		const double *ys[65];
		char *names[65];
		int ns = 0;
		struct mtl_report_stat tst;

		if (ch[k].eval) {
			for (int t = 0; t < ev.n_tasks && ns < 65; t++) {
				const double *y = ev.v[ch[k].eval - 1] + (size_t)t * (size_t)ev.n;
				mtl_report_stat(y, ev.n, &tst);
				if (!tst.n)
					continue;
				ys[ns] = y;
				names[ns++] = ev.task[t];
			}
			if (ns)
				chart(o, s, ch[k].title, ns, names, ys, ev.x, ev.n, 0, nf);
			continue;
		}
		if (ch[k].total) {
			mtl_report_stat(ch[k].total, s->n, &tst);
			if (tst.n) {
				ys[ns] = ch[k].total;
				names[ns++] = (char *)ch[k].tname;
			}
		}
		for (int j = 0; ch[k].f && j < ch[k].f->n && ns < 65; j++) {
			ys[ns] = ch[k].f->v[j];
			names[ns++] = ch[k].f->key[j];
		}
		if (ns)
			chart(o, s, ch[k].title, ns, names, ys, x, s->n,
			      ch[k].noisy ? o->o->smooth : 0, nf);
	}
	fputs("</div>\n", o->f);
	fclose(nf);
	for (line = notes ? strtok_r(notes, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save))
		para(o, "%s", line);
	free(notes);
	eval_curves_release(&ev);
	free(x);
}

/*
 * The evaluations' other figures (a regression task's Pearson, the
 * embedding evaluators' mrr@10, knn_accuracy, ...: steps.h) as one table,
 * a column per figure name in order of first appearance (at most 16),
 * a row per evaluation row that has any.
 */
static void render_eval_more(struct out *o, const struct mtl_report_steps *s)
{
	const char *key[16];
	char align[19] = "rl";
	int nk = 0;
	struct tab t;

	for (long i = 0; i < s->n_eval; i++)
		for (int j = 0; j < s->eval[i].n_more; j++) {
			int k = 0;

			while (k < nk && strcmp(key[k], s->eval[i].more[j].key))
				k++;
			if (k == nk && nk < 16)
				key[nk++] = s->eval[i].more[j].key;
		}
	if (!nk)
		return;
	for (int k = 0; k < nk; k++)
		align[2 + k] = 'r';
	align[2 + nk] = 0;
	heading(o, 3, "Evaluations: more figures");
	tab_init(&t, align);
	tab_add(&t, "step");
	tab_add(&t, "task");
	for (int k = 0; k < nk; k++)
		tab_add(&t, key[k]);
	for (long i = 0; i < s->n_eval; i++) {
		const struct mtl_report_eval *e = &s->eval[i];

		if (!e->n_more)
			continue;
		tab_addf(&t, "%.0f", e->step);
		tab_add(&t, e->task);
		for (int k = 0; k < nk; k++) {
			double v = NAN;

			for (int j = 0; j < e->n_more; j++)
				if (!strcmp(e->more[j].key, key[k]))
					v = e->more[j].v;
			tab_num(&t, v);
		}
	}
	tab_print(o, &t, NULL);
	tab_release(&t);
}

static void render_best_eval(struct out *o, const struct mtl_report_steps *s)
{
	char *line = NULL;
	size_t len = 0;
	FILE *m;
	int any = 0;

	if (!s->n_eval || !(m = open_memstream(&line, &len))) {
		o->nomem |= s->n_eval != 0;
		return;
	}
	for (long i = 0; i < s->n_eval; i++) {
		long best = -1;
		int seen = 0;
		char b[32];

		for (long k = 0; k < i && !seen; k++)
			seen = !strcmp(s->eval[k].task, s->eval[i].task);
		if (seen)
			continue; /* the task was done at its first row */
		for (long k = i; k < s->n_eval; k++)
			if (!strcmp(s->eval[k].task, s->eval[i].task) && isfinite(s->eval[k].f1) &&
			    (best < 0 || s->eval[k].f1 > s->eval[best].f1))
				best = k;
		if (best < 0)
			continue;
		num(b, sizeof(b), s->eval[best].f1);
		fprintf(m, "%s%s %s (step %.0f)", any ? ", " : "", s->eval[best].task, b,
			s->eval[best].step);
		any = 1;
	}
	fclose(m);
	if (any)
		para(o, "best eval F1: %s", line);
	free(line);
}

static void render_steps(struct out *o, const struct mtl_report *rep)
{
	const struct mtl_report_steps *s = &rep->steps;
	struct mtl_report_stat st, ep;
	struct curve c[64 * 5 + 8];
	double sec, tok, rate;
	int nc;
	struct tab t;
	char b1[32];

	heading(o, 2, "Training");
	mtl_report_stat(s->epoch, s->n, &ep);
	totals(s, &sec, &tok, &rate);
	if (isfinite(rate))
		snprintf(b1, sizeof(b1), "%.0f", rate);
	else
		snprintf(b1, sizeof(b1), "-");
	if (s->n && ep.n)
		para(o, "%ld step records (steps %.0f to %.0f), epochs %.0f to %.0f, %ld skipped; %.2f s, %.0f tokens, %s tokens/s",
		     s->n, step_x(s, 0), step_x(s, s->n - 1), ep.min, ep.max, s->n_skip, sec,
		     tok, b1);
	else if (s->n)
		para(o, "%ld step records (steps %.0f to %.0f), %ld skipped; %.2f s, %.0f tokens, %s tokens/s",
		     s->n, step_x(s, 0), step_x(s, s->n - 1), s->n_skip, sec, tok, b1);
	else
		para(o, "no step records, %ld skipped", s->n_skip);
	mtl_report_stat(s->loss, s->n, &st);
	if (st.n) {
		char b2[32];

		num(b1, sizeof(b1), st.last);
		num(b2, sizeof(b2), st.min);
		para(o, "loss: final %s, best %s at step %.0f", b1, b2, step_x(s, st.i_min));
	}
	render_best_eval(o, s);
	nc = s->n ? curves(s, c, (int)(sizeof(c) / sizeof(c[0]))) : 0;
	if (o->fmt == MTL_RENDER_HTML && s->n)
		render_charts(o, s);
	if (nc) {
		int spark = o->fmt != MTL_RENDER_HTML;
		char *line = malloc((size_t)o->o->spark_width * 3 + 1);

		tab_init(&t, spark ? "lrrrrl" : "lrrrr");
		tab_add(&t, "series");
		tab_add(&t, "first");
		tab_add(&t, "final");
		tab_add(&t, "min (step)");
		tab_add(&t, "max (step)");
		if (spark)
			tab_add(&t, "curve");
		for (int k = 0; k < nc; k++) {
			mtl_report_stat(c[k].v, s->n, &st);
			if (!st.n || (st.n >= 2 && st.min == st.max))
				continue; /* none, or constant: said below */
			tab_add(&t, c[k].name);
			if (c[k].counts) {
				tab_addf(&t, "%.0f", st.first);
				tab_addf(&t, "%.0f", st.last);
				tab_addf(&t, "%.0f (%.0f)", st.min, step_x(s, st.i_min));
				tab_addf(&t, "%.0f (%.0f)", st.max, step_x(s, st.i_max));
			} else {
				/* a row is one series: its four figures in one
				 * format (the columns mix scales: lr, loss, ms) */
				const char *f = fabs(st.max) >= 1e5 || fabs(st.min) >= 1e5 ||
						(st.min != 0 && fabs(st.min) < 1e-3) ||
						(st.max != 0 && fabs(st.max) < 1e-3) ||
						(st.first != 0 && fabs(st.first) < 1e-3) ||
						(st.last != 0 && fabs(st.last) < 1e-3) ? "%.3e" : "%.4f";
				char b2[32];
				snprintf(b1, sizeof(b1), f, st.first);
				tab_add(&t, b1);
				snprintf(b1, sizeof(b1), f, st.last);
				tab_add(&t, b1);
				snprintf(b1, sizeof(b1), f, st.min);
				snprintf(b2, sizeof(b2), " (%.0f)", step_x(s, st.i_min));
				tab_put(&t, fmt("%s%s", b1, b2));
				snprintf(b1, sizeof(b1), f, st.max);
				snprintf(b2, sizeof(b2), " (%.0f)", step_x(s, st.i_max));
				tab_put(&t, fmt("%s%s", b1, b2));
			}
			if (spark) {
				if (line)
					mtl_render_sparkline(line, c[k].v, s->n, o->o->spark_width);
				tab_add(&t, line ? line : "");
			}
		}
		tab_print(o, &t, NULL);
		tab_release(&t);
		free(line);
		render_constant(o, s, c, nc);
	}
	for (int k = 0; k < nc; k++)
		free(c[k].name);
	if (s->n_eval) {
		heading(o, 3, "Evaluations");
		tab_init(&t, "rlrrr");
		tab_add(&t, "step");
		tab_add(&t, "task");
		tab_add(&t, "loss");
		tab_add(&t, "accuracy");
		tab_add(&t, "f1");
		for (long i = 0; i < s->n_eval; i++) {
			tab_addf(&t, "%.0f", s->eval[i].step);
			tab_add(&t, s->eval[i].task);
			tab_num(&t, s->eval[i].loss);
			tab_num(&t, s->eval[i].accuracy);
			tab_num(&t, s->eval[i].f1);
		}
		tab_print(o, &t, NULL);
		tab_release(&t);
		render_eval_more(o, s);
	}
	if (s->n_skip) {
		heading(o, 3, "Skipped steps");
		tab_init(&t, "rl");
		tab_add(&t, "step");
		tab_add(&t, "reason");
		for (long i = 0; i < s->n_skip; i++) {
			tab_addf(&t, "%.0f", s->skip[i].step);
			tab_add(&t, s->skip[i].reason ? s->skip[i].reason : "-");
		}
		tab_print(o, &t, NULL);
		tab_release(&t);
	}
}

static void render_confusion(struct out *o, const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	const struct mtl_confusion *cf = &rt->conf;
	int n = sp->n_labels;
	struct tab t;
	char al[258];

	heading(o, 3, "Confusion matrix of %s (rows: gold, columns: predicted)", sp->name);
	if (o->fmt == MTL_RENDER_HTML && n <= 64) {
		char **txt = calloc((size_t)n * (size_t)n, sizeof(char *));
		double *sh = calloc((size_t)n * (size_t)n, sizeof(double));
		char **lab = calloc((size_t)n, sizeof(char *));
		char *title = fmt("%s: confusion, shaded by share of the gold row", sp->name);

		if (txt && sh && lab && title) {
			for (int i = 0; i < n; i++) {
				long row = 0;
				lab[i] = one_line(sp->labels[i], o->o->label_width);
				for (int j = 0; j < n; j++)
					row += cf->m[i * n + j];
				for (int j = 0; j < n; j++) {
					long v = cf->m[i * n + j];
					txt[i * n + j] = fmt("%ld", v);
					sh[i * n + j] = row ? (double)v / (double)row : 0;
				}
			}
			svg_heat(o, title, n, lab, lab, txt, sh, 0, "predicted", "gold");
		} else {
			o->nomem = 1;
		}
		for (int i = 0; txt && i < n * n; i++)
			free(txt[i]);
		for (int i = 0; lab && i < n; i++)
			free(lab[i]);
		free(txt);
		free(sh);
		free(lab);
		free(title);
	}
	if (o->fmt == MTL_RENDER_HTML && n <= 64)
		return; /* the heat map shows the counts */
	if (n > 256) {
		para(o, "%d labels: too many to show; the JSON report has the matrix", n);
		return;
	}
	memset(al, 'r', (size_t)n + 1);
	al[0] = 'l';
	al[n + 1] = 0;
	tab_init(&t, al);
	tab_add(&t, "gold \\ predicted");
	for (int j = 0; j < n; j++)
		tab_label(&t, o, sp->labels[j]);
	for (int i = 0; i < n; i++) {
		tab_label(&t, o, sp->labels[i]);
		for (int j = 0; j < n; j++)
			tab_addf(&t, "%ld", cf->m[i * n + j]);
	}
	tab_print(o, &t, "cm");
	tab_release(&t);
}

static void prf_cells(struct tab *t, const struct mtl_prf *p)
{
	tab_num(t, p->precision);
	tab_num(t, p->recall);
	tab_num(t, p->f1);
	tab_addf(t, "%ld", p->support);
	tab_addf(t, "%ld", p->tp + p->fp);
}

/*
 * The words of an error with the wrong ones marked, for text and markdown
 * (markdown: already escaped, with the wrong words in bold).
 */
static char *marked_words(const struct out *o, const struct mtl_report_error *e,
			  const struct mtl_task *sp)
{
	int md = o->fmt == MTL_RENDER_MARKDOWN;
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);
	int nw = e->words ? e->n_words : e->n;

	if (!m)
		return NULL;
	for (int i = 0; i < nw; i++) {
		char num_w[24];
		const char *w = e->words ? e->words[i] : num_w;
		int wrong = i < e->n && e->gold[i] >= 0 && e->gold[i] != e->pred[i];

		snprintf(num_w, sizeof(num_w), "#%d", i + 1);
		if (i)
			fputc(' ', m);
		if (i == e->n)
			fputs("(not scored: ", m);
		fputs(wrong ? (md ? "**" : "[") : "", m);
		if (md)
			md_escape(m, w);
		else
			fputs(w, m);
		if (wrong) {
			fputs(md ? "** (" : " ", m);
			if (md) {
				md_escape(m, sp->labels[e->gold[i]]);
				fputs("\xe2\x86\x92", m);
				md_escape(m, sp->labels[e->pred[i]]);
			} else {
				fprintf(m, "%s\xe2\x86\x92%s", sp->labels[e->gold[i]],
					sp->labels[e->pred[i]]);
			}
			fputs(md ? ")" : "]", m);
		}
	}
	if (nw > e->n)
		fputc(')', m);
	fclose(m);
	return s;
}

static void render_errors(struct out *o, const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	struct tab t;

	if (!rt->n_err)
		return;
	heading(o, 3, "Misclassified examples of %s (%d of %ld)", sp->name, rt->n_err,
		rt->n_wrong);
	if (sp->kind == MTL_TASK_SEQUENCE || sp->kind == MTL_TASK_PAIR) {
		tab_init(&t, "llll");
		tab_add(&t, "id");
		tab_add(&t, "text");
		tab_add(&t, "gold");
		tab_add(&t, "predicted");
		for (int k = 0; k < rt->n_err; k++) {
			const struct mtl_report_error *e = &rt->err[k];
			tab_label(&t, o, e->id);
			tab_put(&t, one_line(e->text ? e->text : "", 2 * o->o->label_width));
			tab_add(&t, sp->labels[e->gold[0]]);
			tab_add(&t, sp->labels[e->pred[0]]);
		}
		tab_print(o, &t, NULL);
		tab_release(&t);
		return;
	}
	if (o->fmt == MTL_RENDER_HTML) {
		fputs("<p class=\"legend\">Wrongly tagged words are marked, with the gold tag, an arrow and the predicted tag; grey words were not scored (cut by truncation).</p>\n<ul class=\"errs\">\n",
		      o->f);
		for (int k = 0; k < rt->n_err; k++) {
			const struct mtl_report_error *e = &rt->err[k];
			int nw = e->words ? e->n_words : e->n;
			fputs("<li><span class=\"id\">", o->f);
			html_escape(o->f, e->id);
			fputs("</span> ", o->f);
			for (int i = 0; i < nw; i++) {
				char nb[24];
				snprintf(nb, sizeof(nb), "#%d", i + 1);
				if (i)
					fputc(' ', o->f);
				if (i >= e->n) {
					fputs("<span class=\"lost\">", o->f);
					html_escape(o->f, e->words ? e->words[i] : nb);
					fputs("</span>", o->f);
				} else if (e->gold[i] >= 0 && e->gold[i] != e->pred[i]) {
					fputs("<mark>", o->f);
					html_escape(o->f, e->words ? e->words[i] : nb);
					fputs("<sub>", o->f);
					html_escape(o->f, sp->labels[e->gold[i]]);
					fputs("\xe2\x86\x92", o->f);
					html_escape(o->f, sp->labels[e->pred[i]]);
					fputs("</sub></mark>", o->f);
				} else {
					html_escape(o->f, e->words ? e->words[i] : nb);
				}
			}
			fputs("</li>\n", o->f);
		}
		fputs("</ul>\n", o->f);
		return;
	}
	if (o->fmt == MTL_RENDER_TEXT)
		fputs("(wrong words as [word gold\xe2\x86\x92predicted])\n", o->f);
	else
		fputs("Wrong words in bold, then (gold\xe2\x86\x92predicted).\n\n", o->f);
	for (int k = 0; k < rt->n_err; k++) {
		const struct mtl_report_error *e = &rt->err[k];
		char *w = marked_words(o, e, sp);
		char *id = one_line(e->id, o->o->label_width);
		char *ws = w ? one_line(w, 0) : NULL;

		if (!w || !id || !ws) {
			o->nomem = 1;
		} else if (o->fmt == MTL_RENDER_MARKDOWN) {
			fputs("- ", o->f);
			md_escape(o->f, id);
			fprintf(o->f, ": %s\n", ws);
		} else {
			fprintf(o->f, "  %s: %s\n", id, ws);
		}
		free(w);
		free(id);
		free(ws);
	}
	fputc('\n', o->f);
}

/*
 * A task without any gold label: what was predicted, how often (examples,
 * or words of a token task), and the predicted entities of each type.
 */
static void render_predicted(struct out *o, const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	int tok = sp->kind == MTL_TASK_TOKEN;
	long total = 0;
	struct tab t;

	for (int k = 0; k < sp->n_labels; k++)
		total += rt->predicted[k];
	para(o, "%ld examples, none with gold labels: predictions only (%ld predicted %s)",
	     rt->examples, total, tok ? "words" : "labels");
	heading(o, 3, "Predicted %s of %s", tok ? "tags" : "labels", sp->name);
	tab_init(&t, "lrr");
	tab_add(&t, tok ? "tag" : "label");
	tab_add(&t, "predicted");
	tab_add(&t, "share");
	for (int k = 0; k < sp->n_labels; k++) {
		tab_label(&t, o, sp->labels[k]);
		tab_addf(&t, "%ld", rt->predicted[k]);
		tab_addf(&t, "%.1f%%", total ? 100.0 * (double)rt->predicted[k] / (double)total : 0.0);
	}
	tab_print(o, &t, NULL);
	tab_release(&t);
	if (!rt->has_entities)
		return;
	heading(o, 3, "Predicted entities of %s", sp->name);
	tab_init(&t, "lr");
	tab_add(&t, "type");
	tab_add(&t, "predicted");
	for (int k = 0; k < rt->bio.n_types; k++) {
		tab_label(&t, o, rt->bio.types[k]);
		tab_addf(&t, "%ld", rt->predicted_entities[k]);
	}
	tab_print(o, &t, NULL);
	tab_release(&t);
}

/* A multilabel task: per-label scores, micro and macro F1, exact match. */
static void render_multilabel(struct out *o, const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	const struct mtl_multilabel_score *ml = &rt->ml;
	struct tab t;
	char b1[32], b2[32], b3[32];

	num(b1, sizeof(b1), ml->micro.f1);
	num(b2, sizeof(b2), ml->macro_f1);
	num(b3, sizeof(b3), ml->items ? (double)ml->exact / (double)ml->items : 0);
	para(o, "%ld examples, %ld without gold labels (not scored); micro F1 %s, macro F1 %s, exact match %s (%ld of %ld); threshold %g",
	     rt->examples, rt->unlabelled, b1, b2, b3, ml->exact, ml->items,
	     sp->threshold);
	heading(o, 3, "Per label of %s", sp->name);
	tab_init(&t, "lrrrrr");
	tab_add(&t, "label");
	tab_add(&t, "precision");
	tab_add(&t, "recall");
	tab_add(&t, "f1");
	tab_add(&t, "support");
	tab_add(&t, "predicted");
	for (int k = 0; k < ml->n; k++) {
		tab_label(&t, o, sp->labels[k]);
		prf_cells(&t, &ml->per_label[k]);
	}
	tab_add(&t, "micro");
	prf_cells(&t, &ml->micro);
	tab_print(o, &t, NULL);
	tab_release(&t);
}

/* A regression task: the pairs' MSE and correlations. */
static void render_regression(struct out *o, const struct mtl_report_task *rt)
{
	const struct mtl_regression_score *rg = &rt->rg;
	char b1[32], b2[32], b3[32];

	num(b1, sizeof(b1), rg->mse);
	num(b2, sizeof(b2), rg->pearson);
	num(b3, sizeof(b3), rg->spearman);
	para(o, "%ld examples, %ld without a gold value (not scored); %ld scored: MSE %s, Pearson %s, Spearman %s",
	     rt->examples, rt->unlabelled, rg->n, b1, b2, b3);
}

static void render_task(struct out *o, const struct mtl_report *rep,
			const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	const struct mtl_confusion *cf = &rt->conf;
	int tok = sp->kind == MTL_TASK_TOKEN;
	long right = 0;
	struct tab t;
	char b1[32], b2[32], b3[32];

	for (int k = 0; k < cf->n; k++)
		right += cf->m[k * cf->n + k];
	heading(o, 2, "Task %s (%s)", sp->name, mtl_task_kind_name(sp->kind));
	if (sp->kind == MTL_TASK_REGRESSION) {
		render_regression(o, rt);
		return;
	}
	if (sp->kind == MTL_TASK_MULTILABEL ? !rt->ml.items : !cf->total) {
		render_predicted(o, rt);
		return;
	}
	if (sp->kind == MTL_TASK_MULTILABEL) {
		render_multilabel(o, rt);
		return;
	}
	num(b1, sizeof(b1), mtl_confusion_accuracy(cf));
	num(b2, sizeof(b2), mtl_confusion_macro_f1(cf));
	num(b3, sizeof(b3), mtl_confusion_micro_f1(cf));
	para(o, "%ld examples, %ld without gold labels (not scored); %s %s (%ld of %ld); macro F1 %s, micro F1 %s",
	     rt->examples, rt->unlabelled, tok ? "per word: tag accuracy" : "accuracy", b1,
	     right, cf->total, b2, b3);
	heading(o, 3, "Per %s of %s", tok ? "tag" : "class", sp->name);
	tab_init(&t, "lrrrrr");
	tab_add(&t, tok ? "tag" : "label");
	tab_add(&t, "precision");
	tab_add(&t, "recall");
	tab_add(&t, "f1");
	tab_add(&t, "support");
	tab_add(&t, "predicted");
	for (int k = 0; k < cf->n; k++) {
		struct mtl_prf p;
		mtl_confusion_class(cf, k, &p);
		tab_label(&t, o, sp->labels[k]);
		prf_cells(&t, &p);
	}
	tab_print(o, &t, NULL);
	tab_release(&t);
	render_confusion(o, rt);
	if (rt->has_entities) {
		const struct mtl_entity_score *es = &rt->ent;

		heading(o, 3, "Entities of %s (%s)", sp->name,
			rep->opts.strict ? "strict IOB2" : "conlleval");
		tab_init(&t, "lrrrrrrr");
		tab_add(&t, "type");
		tab_add(&t, "precision");
		tab_add(&t, "recall");
		tab_add(&t, "f1");
		tab_add(&t, "gold");
		tab_add(&t, "predicted");
		tab_add(&t, "correct");
		tab_add(&t, "lost");
		for (int k = 0; k < es->n_types; k++) {
			tab_label(&t, o, rt->bio.types[k]);
			prf_cells(&t, &es->per_type[k]);
			tab_addf(&t, "%ld", es->per_type[k].tp);
			tab_addf(&t, "%ld", rt->lost_type[k]);
		}
		tab_add(&t, "micro");
		prf_cells(&t, &es->micro);
		tab_addf(&t, "%ld", es->micro.tp);
		tab_addf(&t, "%ld", rt->lost);
		tab_print(o, &t, NULL);
		tab_release(&t);
		long typed = 0;

		for (int k = 0; k < es->n_types; k++)
			typed += rt->lost_type[k];
		num(b1, sizeof(b1), rt->entity_macro_f1);
		para(o, "macro F1 over entity types %s; %ld gold entities lost to truncation, counted as missed (in gold and against recall%s)",
		     b1, rt->lost,
		     rt->lost > typed ? "; those of unknown type in the micro row only" : "");
	}
	render_errors(o, rt);
}

static const char css[] =
	"body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}"
	"h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ccc;margin-top:32px}h3{font-size:15px}"
	"table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:3px 9px;border:1px solid #ddd;text-align:left}"
	"th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
	".charts{display:flex;flex-wrap:wrap;gap:8px}figure{margin:6px 0}"
	"figcaption{font-size:12px;color:#444}.key{margin-right:12px;white-space:nowrap}"
	".sw{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:4px}"
	"svg text{font:11px system-ui,sans-serif;fill:#333}svg .t{font-size:13px;font-weight:600}"
	"svg .yl{text-anchor:end}svg .xl{text-anchor:middle}svg .cl{text-anchor:start}"
	"svg .v{text-anchor:middle;font-size:10px}svg .w{fill:#fff}svg .al{font-style:italic}"
	"svg .g{stroke:#e4e4e4}svg .ax{stroke:#555}svg .c{stroke:#fff}"
	"mark{background:#ffd7d7;padding:0 2px}mark sub{color:#a00;font-size:10px;margin-left:2px}"
	".lost{color:#999}.id{font-family:monospace;color:#555}ul.errs li{margin:4px 0}";

static void render_doc(struct out *o, const struct mtl_report *rep)
{
	const char *title = o->o->title ? o->o->title : "mtl report";

	if (o->fmt == MTL_RENDER_HTML) {
		fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>",
		      o->f);
		html_escape(o->f, title);
		fprintf(o->f, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
	}
	heading(o, 1, "%s", title);
	if (rep->n_steps_streams)
		render_steps(o, rep);
	if (rep->n_pred_streams) {
		if (!rep->tasks->n)
			para(o, "%ld predictions, no tasks", rep->predictions);
		for (int i = 0; i < rep->tasks->n; i++)
			/* an embedding task predicts nothing (mtl-score
			 * --embed writes its embeddings) */
			if (rep->task[i].spec->kind != MTL_TASK_EMBEDDING)
				render_task(o, rep, &rep->task[i]);
	}
	if (rep->n_emb_streams)
		render_embeddings(o, rep);
	if (rep->emb.eval)
		render_emb_eval(o, rep);
	if (o->fmt == MTL_RENDER_HTML)
		fputs("</body>\n</html>\n", o->f);
}

/* --- entry points --- */

void mtl_render_defaults(struct mtl_render_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->format = MTL_RENDER_TEXT;
	opts->spark_width = 40;
	opts->label_width = 32;
}

int mtl_render_format_parse(const char *name, enum mtl_render_format *out)
{
	static const char *const names[] = { "text", "markdown", "json", "html" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum mtl_render_format)i;
			return 0;
		}
	return -1;
}

int mtl_render(FILE *f, const struct mtl_report *rep,
	       const struct mtl_render_opts *opts, struct mtl_err *err)
{
	struct out o = { f, opts->format, opts, 0 };

	if (opts->format == MTL_RENDER_JSON) {
		json_t *j = mtl_render_json(rep, opts);
		if (!j)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		json_write(f, j, 0);
		fputc('\n', f);
		json_decref(j);
		return 0;
	}
	render_doc(&o, rep);
	return o.nomem ? mtl_err_set(err, MTL_ERR_NOMEM, "out of memory") : 0;
}
