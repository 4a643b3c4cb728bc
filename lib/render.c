/*
 * render.c - the report as text, markdown, JSON or HTML; see render.h.
 *
 * Text, markdown and HTML share one walk over the report (render_doc):
 * headings, paragraphs and tables go through small helpers that escape
 * and lay out for the format at hand, and HTML adds inline SVG: line
 * charts and heat maps (svg_chart, svg_heat).  JSON is built separately with
 * jansson, so that it holds every figure and not only what is shown.
 */
#include "render.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- strings --- */

/* Number of code points in a UTF-8 string (its width in a terminal, near enough). */
static int u8_width(const char *s)
{
	int w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

/*
 * A copy of s made fit for one line: control characters become spaces,
 * and beyond max code points (max > 0) it is cut and ends with "…".
 */
static char *one_line(const char *s, int max)
{
	size_t len = strlen(s);
	char *out = malloc(len + 4), *o = out;
	int w = 0;

	if (!out)
		return NULL;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c & 0xC0) != 0x80) {
			if (max > 0 && w == max - 1 && u8_width(p) > 1) {
				memcpy(o, "\xe2\x80\xa6", 3);
				o += 3;
				break;
			}
			w++;
		}
		*o++ = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	*o = 0;
	return out;
}

static char *vfmt(const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	s = vfmt(f, ap);
	va_end(ap);
	return s;
}

/* A figure for a table: "-" when absent, else 4 decimals or an exponent. */
static void num(char *buf, size_t n, double x)
{
	double a = fabs(x);

	if (!isfinite(x))
		snprintf(buf, n, "-");
	else if (x == 0)
		snprintf(buf, n, "0");
	else if (a >= 1e5 || a < 1e-3)
		snprintf(buf, n, "%.3e", x);
	else
		snprintf(buf, n, "%.4f", x);
}

static void html_escape(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			/* XML 1.0 allows no control characters but tab and newline */
			fputc((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' ? ' ' : *s, f);
		}
}

/* Markdown: a backslash before every character that could be markup. */
static void md_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (strchr("\\`*_[]<>|#~", *s))
			fputc('\\', f);
		fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
	}
}

/* --- output context --- */

struct out {
	FILE *f;
	enum mtl_render_format fmt;
	const struct mtl_render_opts *o;
	int nomem;
};

static void text(struct out *o, const char *s)
{
	if (o->fmt == MTL_RENDER_HTML)
		html_escape(o->f, s);
	else if (o->fmt == MTL_RENDER_MARKDOWN)
		md_escape(o->f, s);
	else
		fputs(s, o->f);
}

static void heading(struct out *o, int level, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
static void heading(struct out *o, int level, const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	s = vfmt(f, ap);
	va_end(ap);
	if (!s) {
		o->nomem = 1;
		return;
	}
	if (o->fmt == MTL_RENDER_HTML) {
		fprintf(o->f, "<h%d>", level);
		text(o, s);
		fprintf(o->f, "</h%d>\n", level);
	} else if (o->fmt == MTL_RENDER_MARKDOWN) {
		fprintf(o->f, "%.*s ", level, "####");
		text(o, s);
		fputs("\n\n", o->f);
	} else {
		const char *bar = level == 1 ? "==" : level == 2 ? "--" : "";
		if (level <= 2)
			fprintf(o->f, "%s %s %s\n\n", bar, s, bar);
		else
			fprintf(o->f, "%s:\n", s);
	}
	free(s);
}

static void para(struct out *o, const char *f, ...)
	__attribute__((format(printf, 2, 3)));
static void para(struct out *o, const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	s = vfmt(f, ap);
	va_end(ap);
	if (!s) {
		o->nomem = 1;
		return;
	}
	if (o->fmt == MTL_RENDER_HTML)
		fputs("<p>", o->f);
	text(o, s);
	fputs(o->fmt == MTL_RENDER_HTML ? "</p>\n" : "\n\n", o->f);
	free(s);
}

/* --- tables --- */

struct tab {
	int nc, nr, cap;   /* columns, cells so far (row-major), capacity */
	char **cell;       /* row 0 is the header; NULL: a number in val */
	double *val;       /* [cap] the numbers of tab_num, formatted when
			    * printed, one format per column */
	const char *align; /* per column 'l' or 'r' */
	int nomem;
};

static void tab_init(struct tab *t, const char *align)
{
	memset(t, 0, sizeof(*t));
	t->nc = (int)strlen(align);
	t->align = align;
}

static void tab_put(struct tab *t, char *s)
{
	if (!s)
		t->nomem = 1;
	if (t->nr == t->cap) {
		int cap = t->cap ? 2 * t->cap : 64;
		char **c = realloc(t->cell, (size_t)cap * sizeof(*c));
		double *v = c ? realloc(t->val, (size_t)cap * sizeof(*v)) : NULL;
		if (c)
			t->cell = c;
		if (!v) {
			free(s);
			t->nomem = 1;
			return;
		}
		t->val = v;
		t->cap = cap;
	}
	t->cell[t->nr++] = s ? s : strdup("");
}

static void tab_add(struct tab *t, const char *s)
{
	tab_put(t, strdup(s ? s : ""));
}

static void tab_addf(struct tab *t, const char *f, ...)
	__attribute__((format(printf, 2, 3)));
static void tab_addf(struct tab *t, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	tab_put(t, vfmt(f, ap));
	va_end(ap);
}

/* Adds a number, formatted by tab_format with the rest of its column. */
static void tab_num(struct tab *t, double x)
{
	tab_add(t, "");
	if (t->nr > 0 && t->cell[t->nr - 1] && t->val) {
		free(t->cell[t->nr - 1]);
		t->cell[t->nr - 1] = NULL;
		t->val[t->nr - 1] = x;
	}
}

/*
 * Formats the numbers of each column alike: four decimals, or, when one
 * of them is 1e5 or more or (not 0) under 1e-3, all of them as %.3e; a
 * non-finite value is "-".
 */
static void tab_format(struct tab *t)
{
	for (int c = 0; c < t->nc; c++) {
		int e = 0;
		for (int i = c; i < t->nr; i += t->nc) {
			double a = t->cell[i] ? 0 : fabs(t->val[i]);
			e |= isfinite(a) && (a >= 1e5 || (a > 0 && a < 1e-3));
		}
		for (int i = c; i < t->nr; i += t->nc)
			if (!t->cell[i] && !(t->cell[i] = !isfinite(t->val[i]) ? strdup("-") :
					     fmt(e ? "%.3e" : "%.4f", t->val[i])))
				t->nomem = 1;
	}
}

/* Adds a cell holding a label shortened to the label width. */
static void tab_label(struct tab *t, const struct out *o, const char *s)
{
	tab_put(t, one_line(s ? s : "", o->o->label_width));
}

static void tab_release(struct tab *t)
{
	for (int i = 0; i < t->nr; i++)
		free(t->cell[i]);
	free(t->cell);
	free(t->val);
}

static void pad(FILE *f, int n)
{
	while (n-- > 0)
		fputc(' ', f);
}

static void tab_print(struct out *o, struct tab *t, const char *cls)
{
	int rows = t->nr / t->nc;
	FILE *f = o->f;

	tab_format(t);
	if (t->nomem)
		o->nomem = 1;
	if (o->fmt == MTL_RENDER_HTML) {
		fprintf(f, "<table%s%s%s>\n", cls ? " class=\"" : "", cls ? cls : "",
			cls ? "\"" : "");
		for (int r = 0; r < rows; r++) {
			fputs("<tr>", f);
			for (int c = 0; c < t->nc; c++) {
				int i = r * t->nc + c;
				const char *tag = r == 0 ? "th" : "td";
				fprintf(f, "<%s%s", tag, t->align[c] == 'r' ? " class=\"n\"" : "");
				fputs(">", f);
				html_escape(f, t->cell[i]);
				fprintf(f, "</%s>", tag);
			}
			fputs("</tr>\n", f);
		}
		fputs("</table>\n", f);
		return;
	}
	if (o->fmt == MTL_RENDER_MARKDOWN) {
		for (int r = 0; r < rows; r++) {
			fputs("|", f);
			for (int c = 0; c < t->nc; c++) {
				fputc(' ', f);
				md_escape(f, t->cell[r * t->nc + c]);
				fputs(" |", f);
			}
			fputc('\n', f);
			if (r == 0) {
				fputs("|", f);
				for (int c = 0; c < t->nc; c++)
					fputs(t->align[c] == 'r' ? " ---: |" : " --- |", f);
				fputc('\n', f);
			}
		}
		fputc('\n', f);
		return;
	}
	{
		int *w = calloc((size_t)t->nc, sizeof(int));

		if (!w) {
			o->nomem = 1;
			return;
		}
		for (int i = 0; i < rows * t->nc; i++)
			if (u8_width(t->cell[i]) > w[i % t->nc])
				w[i % t->nc] = u8_width(t->cell[i]);
		for (int r = 0; r < rows; r++) {
			for (int c = 0; c < t->nc; c++) {
				const char *s = t->cell[r * t->nc + c];
				int gap = w[c] - u8_width(s);
				int last = c == t->nc - 1;

				if (c)
					fputs("  ", f);
				if (t->align[c] == 'r')
					pad(f, gap);
				fputs(s, f);
				if (t->align[c] != 'r' && !last)
					pad(f, gap);
			}
			fputc('\n', f);
		}
		fputc('\n', f);
		free(w);
	}
}

/* --- sparklines and series --- */

/* Averages v over at most width buckets: out[k] (NaN where empty). */
static long buckets(const double *v, long n, long width, double *out)
{
	long m = n < width ? n : width;

	for (long k = 0; k < m; k++) {
		long a = k * n / m, b = (k + 1) * n / m;
		double sum = 0;
		long c = 0;

		for (long i = a; i < b; i++)
			if (isfinite(v[i])) {
				sum += v[i];
				c++;
			}
		out[k] = c ? sum / (double)c : NAN;
	}
	return m;
}

void mtl_render_sparkline(char *out, const double *v, long n, int width)
{
	static const char *const bar[] = { "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83",
					   "\xe2\x96\x84", "\xe2\x96\x85", "\xe2\x96\x86",
					   "\xe2\x96\x87", "\xe2\x96\x88" };
	double *b = malloc((size_t)(width > 0 ? width : 1) * sizeof(double));
	double lo = INFINITY, hi = -INFINITY;
	long m;

	*out = 0;
	if (!b || width <= 0) {
		free(b);
		return;
	}
	m = buckets(v, n, width, b);
	for (long k = 0; k < m; k++)
		if (isfinite(b[k])) {
			lo = b[k] < lo ? b[k] : lo;
			hi = b[k] > hi ? b[k] : hi;
		}
	for (long k = 0; k < m; k++) {
		int level;

		if (!isfinite(b[k])) {
			*out++ = ' ';
			continue;
		}
		level = hi > lo ? (int)lrint((b[k] - lo) / (hi - lo) * 7) : 3;
		memcpy(out, bar[level], 3);
		out += 3;
	}
	*out = 0;
	free(b);
}

/* x of step record i: its "step", or its position. */
static double step_x(const struct mtl_report_steps *s, long i)
{
	return isfinite(s->step[i]) ? s->step[i] : (double)(i + 1);
}

/* A named curve of the training section. */
struct curve {
	char *name;
	const double *v;
	int counts; /* whole numbers: shown without decimals */
};

static int curves(const struct mtl_report_steps *s, struct curve *c, int cap)
{
	const struct { const char *prefix; const struct mtl_report_family *f; int counts; } fam[] = {
		{ "loss", &s->losses, 0 },	   { "accuracy", &s->accuracy, 0 },
		{ "weight", &s->weights, 0 },	   { "labelled", &s->labelled, 1 },
		{ "grad cosine", &s->cosine, 0 },
	};
	int n = 0;

#define ADD(nm, vv, mx) \
	do { \
		if (n < cap) \
			c[n++] = (struct curve){ (nm), (vv), (mx) }; \
	} while (0)
	ADD(strdup("loss"), s->loss, 0);
	for (int k = 0; k < s->losses.n; k++)
		ADD(fmt("loss %s", s->losses.key[k]), s->losses.v[k], 0);
	for (size_t f = 1; f < sizeof(fam) / sizeof(fam[0]); f++)
		for (int k = 0; k < fam[f].f->n; k++)
			ADD(fmt("%s %s", fam[f].prefix, fam[f].f->key[k]), fam[f].f->v[k], fam[f].counts);
	ADD(strdup("lr"), s->lr, 0);
	ADD(strdup("grad norm"), s->grad_norm, 0);
	ADD(strdup("tokens/step"), s->tokens, 1);
	ADD(strdup("ms/step"), s->ms, 0);
#undef ADD
	return n;
}

/* Totals over the step records: time in seconds, tokens, tokens/s. */
static void totals(const struct mtl_report_steps *s, double *sec, double *tok,
		   double *rate)
{
	double ms = 0, t = 0, t_timed = 0;

	for (long i = 0; i < s->n; i++) {
		if (isfinite(s->tokens[i]))
			t += s->tokens[i];
		if (isfinite(s->ms[i])) {
			ms += s->ms[i];
			if (isfinite(s->tokens[i]))
				t_timed += s->tokens[i];
		}
	}
	*sec = ms / 1000;
	*tok = t;
	*rate = ms > 0 ? t_timed / (ms / 1000) : NAN;
}

/* --- SVG (HTML only) --- */

static const char *const palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
				       "#9467bd", "#8c564b", "#e377c2", "#17becf" };

/* A "nice" tick step (1, 2 or 5 times a power of ten) for range/ticks. */
static double nice_step(double range, int ticks)
{
	double raw = range / ticks, p = pow(10, floor(log10(raw))), r = raw / p;

	return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * p;
}

static void tick_label(char *b, size_t n, double x, double step)
{
	if (fabs(x) < step * 1e-9)
		x = 0;
	if ((fabs(x) >= 1e5 || (step < 1e-3 && x != 0)))
		snprintf(b, n, "%.2g", x);
	else if (step >= 1)
		snprintf(b, n, "%.0f", x);
	else
		snprintf(b, n, "%.*f", (int)ceil(-log10(step)), x);
}

/*
 * A line chart of the series y[k] over x (n points each, NaN: a gap),
 * downsampled to at most 600 points, with axes, ticks and a legend.
 */
static void svg_chart(struct out *o, const char *title, int ns,
		      char *const *names, const char *const *cols,
		      const double *const *y, const double *x, long n, double smooth)
{
	const int W = 560, H = 260, L = 64, R = 12, T = 28, B = 40;
	const long MAXP = 600;
	double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
	double *bx, *by;
	long m = 0;
	FILE *f = o->f;

	bx = malloc((size_t)(n < MAXP ? n : MAXP) * sizeof(double) + 1);
	by = malloc((size_t)(n < MAXP ? n : MAXP) * sizeof(double) + 1);
	if (!bx || !by) {
		free(bx);
		free(by);
		o->nomem = 1;
		return;
	}
	for (long i = 0; i < n; i++)
		if (isfinite(x[i])) {
			x0 = x[i] < x0 ? x[i] : x0;
			x1 = x[i] > x1 ? x[i] : x1;
		}
	for (int k = 0; k < ns; k++)
		for (long i = 0; i < n; i++)
			if (isfinite(y[k][i])) {
				y0 = y[k][i] < y0 ? y[k][i] : y0;
				y1 = y[k][i] > y1 ? y[k][i] : y1;
			}
	if (!isfinite(y0) || !isfinite(x0)) {
		free(bx);
		free(by);
		return;
	}
	if (x1 == x0) {
		x0 -= 1;
		x1 += 1;
	}
	if (y1 == y0) {
		double d = y0 ? fabs(y0) * 0.1 : 1;
		y0 -= d;
		y1 += d;
	}
	{
		double st = nice_step(y1 - y0, 5);
		y0 = floor(y0 / st) * st;
		y1 = ceil(y1 / st) * st;
	}
	fputs("<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\"", f);
	fprintf(f, " width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
	fputs("<title>", f);
	html_escape(f, title);
	fputs("</title>\n", f);
	fprintf(f, "<text x=\"%d\" y=\"16\" class=\"t\">", L);
	html_escape(f, title);
	fputs("</text>\n", f);
#define PX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
#define PY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
	/* grid, ticks and labels */
	for (int axis = 0; axis < 2; axis++) {
		double a = axis ? y0 : x0, b = axis ? y1 : x1;
		double st = nice_step(b - a, axis ? 5 : 6);
		for (double v = ceil(a / st - 1e-9) * st; v <= b + st * 1e-9; v += st) {
			char lab[32];
			tick_label(lab, sizeof(lab), v, st);
			if (axis)
				fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"g\"/>"
					"<text x=\"%d\" y=\"%.1f\" class=\"yl\">%s</text>\n",
					L, PY(v), W - R, PY(v), L - 6, PY(v) + 4, lab);
			else
				fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"g\"/>"
					"<text x=\"%.1f\" y=\"%d\" class=\"xl\">%s</text>\n",
					PX(v), T, PX(v), H - B + 5, PX(v), H - B + 18, lab);
		}
	}
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"ax\"/>\n", L, H - B,
		W - R, H - B);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"ax\"/>\n", L, T, L, H - B);
	fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"xl\">step</text>\n", L + (W - L - R) / 2,
		H - 6);
	for (int k = 0; k < ns; k++) {
		const char *col = cols[k];
		int open = 0;
		m = 0;
		/* bucket means of x and y together keep points on the curve */
		for (long b = 0, nb = n < MAXP ? n : MAXP; b < nb; b++) {
			long i0 = b * n / nb, i1 = (b + 1) * n / nb;
			double sx = 0, sy = 0;
			long c = 0;
			for (long i = i0; i < i1; i++)
				if (isfinite(y[k][i]) && isfinite(x[i])) {
					sx += x[i];
					sy += y[k][i];
					c++;
				}
			bx[m] = c ? sx / (double)c : NAN;
			by[m++] = c ? sy / (double)c : NAN;
		}
		for (long i = 0; i < m; i++) {
			if (!isfinite(by[i])) {
				if (open)
					fputs("\"/>\n", f);
				open = 0;
				continue;
			}
			if (!open)
				fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"",
					col, smooth > 0 ? " stroke-opacity=\"0.3\"" : "");
			fprintf(f, "%s%.1f,%.1f", open ? " " : "", PX(bx[i]), PY(by[i]));
			open = 1;
		}
		if (open)
			fputs("\"/>\n", f);
		if (m <= 40) /* few points (evaluations): each one marked */
			for (long i = 0; i < m; i++)
				if (isfinite(by[i]))
					fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
						PX(bx[i]), PY(by[i]), col);
		if (smooth > 0) {
			/* TensorBoard's smoothing: an exponential moving average
			 * with weight smooth, debiased for its start */
			double ema = 0, w = 0;
			open = 0;
			for (long i = 0; i < m; i++) {
				if (!isfinite(by[i]))
					continue;
				ema = smooth * ema + (1 - smooth) * by[i];
				w = smooth * w + (1 - smooth);
				if (!open)
					fprintf(f, "<polyline class=\"smooth\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
						col);
				fprintf(f, "%s%.1f,%.1f", open ? " " : "", PX(bx[i]), PY(ema / w));
				open = 1;
			}
			if (open)
				fputs("\"/>\n", f);
		}
	}
#undef PX
#undef PY
	fputs("</svg>\n<figcaption>", f);
	for (int k = 0; k < ns; k++) {
		fprintf(f, "<span class=\"key\"><span class=\"sw\" style=\"background:%s\"></span>",
			cols[k]);
		html_escape(f, names[k]);
		fputs("</span> ", f);
	}
	fputs("</figcaption></figure>\n", f);
	free(bx);
	free(by);
}

/* Background of a heat-map cell: v in [0,1] from white to blue, or
 * (diverging) v in [-1,1] from red through white to blue. */
static char *heat(double v, int diverging)
{
	double a = diverging ? fabs(v) : v;
	int r, g, b;

	if (!isfinite(a))
		a = 0;
	a = a < 0 ? 0 : a > 1 ? 1 : a;
	if (diverging && v < 0) {
		r = 255 - (int)lrint(a * 41);
		g = 255 - (int)lrint(a * 190);
		b = 255 - (int)lrint(a * 180);
	} else {
		r = 255 - (int)lrint(a * 222);
		g = 255 - (int)lrint(a * 153);
		b = 255 - (int)lrint(a * 75);
	}
	return fmt("#%02x%02x%02x", r, g, b);
}

/*
 * A heat map as SVG: n x n cells, row labels rl, column labels cl, value
 * v[i*n+j] shown as text t[i*n+j] and coloured by shade[i*n+j].
 */
static void svg_heat(struct out *o, const char *title, int n, char *const *rl,
		     char *const *cl, char *const *t, const double *shade,
		     int diverging, const char *xlab, const char *ylab)
{
	/* figures in the cells while they fit, beyond that only in tooltips */
	int cell = n <= 8 ? 44 : n <= 24 ? 32 : 14, rw = 0, cw = 0;
	int lw, top, W, H;
	FILE *f = o->f;

	/* margins from the longest labels: ~6.5 px a character at 11 px, and
	 * column labels rotated by 60 degrees rise sin(60) of their length */
	for (int i = 0; i < n; i++) {
		rw = u8_width(rl[i]) > rw ? u8_width(rl[i]) : rw;
		cw = u8_width(cl[i]) > cw ? u8_width(cl[i]) : cw;
	}
	lw = 14 + rw * 13 / 2;
	if (lw < 40)
		lw = 40;
	top = 20 + cw * 6;
	W = lw + n * cell + 10 + cw * 3;
	H = top + n * cell + 30;
	fprintf(f, "<figure class=\"heat\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
		W, H, W, H);
	fputs("<title>", f);
	html_escape(f, title);
	fputs("</title>\n", f);
	for (int i = 0; i < n; i++) {
		fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"yl\">", lw - 4, top + i * cell + cell / 2 + 4);
		html_escape(f, rl[i]);
		fputs("</text>\n", f);
		fprintf(f, "<text transform=\"translate(%d,%d) rotate(-60)\" class=\"cl\">",
			lw + i * cell + cell / 2 + 4, top - 4);
		html_escape(f, cl[i]);
		fputs("</text>\n", f);
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			double s = shade[i * n + j];
			char *bg = heat(s, diverging);
			double a = fabs(s);
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" class=\"c\"><title>",
				lw + j * cell, top + i * cell, cell, cell, bg ? bg : "#fff");
			free(bg);
			html_escape(f, rl[i]);
			fputs(" / ", f);
			html_escape(f, cl[j]);
			fputs(": ", f);
			html_escape(f, t[i * n + j]);
			fputs("</title></rect>", f);
			if (cell < 32) {
				fputc('\n', f);
				continue;
			}
			fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"v%s\">", lw + j * cell + cell / 2,
				top + i * cell + cell / 2 + 4, isfinite(a) && a > 0.6 ? " w" : "");
			html_escape(f, t[i * n + j]);
			fputs("</text>\n", f);
		}
	fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"xl\">", lw + n * cell / 2, H - 8);
	html_escape(f, xlab);
	fprintf(f, "</text><text x=\"4\" y=\"%d\" class=\"al\">", top - 6);
	html_escape(f, ylab);
	fputs("</text>\n</svg><figcaption>", f);
	html_escape(f, title);
	fputs("</figcaption></figure>\n", f);
}

/* --- sections --- */

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
	if (sp->kind == MTL_TASK_SEQUENCE) {
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
	if (!cf->total) {
		render_predicted(o, rt);
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

static void render_embeddings(struct out *o, const struct mtl_report *rep)
{
	const struct mtl_report_embeddings *e = &rep->emb;
	struct tab t;
	char *al;

	heading(o, 2, "Embeddings");
	para(o, "%ld embeddings of dimension %d%s%s%s; cosine similarities of the first %d",
	     e->total, e->dim, e->pooling ? ", pooling " : "", e->pooling ? e->pooling : "",
	     e->normalized == 1 ? ", normalized" : e->normalized == 0 ? ", not normalized" : "",
	     e->n);
	if (!e->n)
		return;
	if (o->fmt == MTL_RENDER_HTML) {
		char **txt = calloc((size_t)e->n * (size_t)e->n, sizeof(char *));
		char **rl = calloc((size_t)e->n, sizeof(char *));
		char **cl = calloc((size_t)e->n, sizeof(char *));

		if (txt && rl && cl) {
			for (int i = 0; i < e->n; i++) {
				char *l = one_line(e->label[i], o->o->label_width);
				rl[i] = fmt("%s %d", l ? l : "", i + 1);
				cl[i] = fmt("%d", i + 1);
				free(l);
				for (int j = 0; j < e->n; j++)
					txt[i * e->n + j] = fmt("%.2f", e->sim[i * e->n + j]);
			}
			svg_heat(o, "cosine similarity", e->n, rl, cl, txt, e->sim, 1, "", "");
		} else {
			o->nomem = 1;
		}
		for (int i = 0; txt && i < e->n * e->n; i++)
			free(txt[i]);
		for (int i = 0; rl && cl && i < e->n; i++) {
			free(rl[i]);
			free(cl[i]);
		}
		free(txt);
		free(rl);
		free(cl);
		return; /* the heat map shows the figures */
	}
	al = malloc((size_t)e->n + 3);
	if (!al) {
		o->nomem = 1;
		return;
	}
	memset(al, 'r', (size_t)e->n + 2);
	al[1] = 'l';
	al[e->n + 2] = 0;
	tab_init(&t, al);
	tab_add(&t, "#");
	tab_add(&t, "text or id");
	for (int j = 0; j < e->n; j++)
		tab_addf(&t, "%d", j + 1);
	for (int i = 0; i < e->n; i++) {
		tab_addf(&t, "%d", i + 1);
		tab_label(&t, o, e->label[i]);
		for (int j = 0; j < e->n; j++)
			tab_addf(&t, "%.3f", e->sim[i * e->n + j]);
	}
	tab_print(o, &t, "sim");
	tab_release(&t);
	free(al);
}

/* A row of the evaluation table: what, the count it is over, a figure. */
static void eval_row(struct tab *t, const char *what, long n, const char *fig,
		     double v)
{
	tab_add(t, what);
	tab_addf(t, "%ld", n);
	tab_add(t, fig);
	tab_num(t, v);
}

/* The retrieval figures of ir as rows named what. */
static void eval_ir_rows(struct tab *t, const char *what,
			 const struct mtl_embeval_ir *ir)
{
	eval_row(t, what, ir->queries, "MRR@10", ir->mrr10);
	eval_row(t, what, ir->queries, "NDCG@10", ir->ndcg10);
	eval_row(t, what, ir->queries, "Recall@1", ir->recall1);
	eval_row(t, what, ir->queries, "Recall@10", ir->recall10);
	eval_row(t, what, ir->queries, "Recall@100", ir->recall100);
	eval_row(t, what, ir->queries, "MAP@100", ir->map100);
}

static void render_emb_eval(struct out *o, const struct mtl_report *rep)
{
	const struct mtl_report_embeval *ev = rep->emb.eval;
	struct tab t;

	heading(o, 2, "Embedding evaluation");
	tab_init(&t, "lrlr");
	tab_add(&t, "evaluation");
	tab_add(&t, "n");
	tab_add(&t, "figure");
	tab_add(&t, "value");
	for (int i = 0; i < ev->n_lab; i++) {
		const struct mtl_report_label_eval *l = &ev->lab[i];
		char *what = fmt("%s (%d labels)", l->task, l->e.n_labels);
		char *knn = fmt("kNN accuracy, k %d%s", l->e.k, l->with_train ? "" : ", leave-one-out");
		char *same = fmt("%s, same label", l->task);

		if (!what || !knn || !same) {
			o->nomem = 1;
		} else {
			eval_row(&t, what, l->e.labelled, knn, l->e.knn_accuracy);
			if (l->with_train)
				eval_row(&t, what, l->e.labelled, "probe accuracy", l->e.probe_accuracy);
			eval_row(&t, what, l->e.labelled, "k-means V-measure", l->e.vmeasure);
			eval_row(&t, same, l->e.same.queries, "MRR@10", l->e.same.mrr10);
			eval_row(&t, same, l->e.same.queries, "NDCG@10", l->e.same.ndcg10);
		}
		free(what);
		free(knn);
		free(same);
	}
	if (ev->qrels)
		eval_ir_rows(&t, ev->qrels, &ev->ir);
	if (ev->pairs) {
		eval_row(&t, ev->pairs, ev->sim.pairs, "Pearson", ev->sim.pearson);
		eval_row(&t, ev->pairs, ev->sim.pairs, "Spearman", ev->sim.spearman);
	}
	tab_print(o, &t, "eval");
	tab_release(&t);
	if (ev->qrels && ev->ir.skipped)
		para(o, "%ld judged queries without a relevant document left out", ev->ir.skipped);
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
			render_task(o, rep, &rep->task[i]);
	}
	if (rep->n_emb_streams)
		render_embeddings(o, rep);
	if (rep->emb.eval)
		render_emb_eval(o, rep);
	if (o->fmt == MTL_RENDER_HTML)
		fputs("</body>\n</html>\n", o->f);
}

/* --- JSON --- */

static json_t *jnum(double x)
{
	return isfinite(x) ? json_real(x) : json_null();
}

static json_t *jseries(const double *v, long n)
{
	json_t *a = json_array();

	for (long i = 0; a && i < n; i++)
		json_array_append_new(a, jnum(v[i]));
	return a;
}

static json_t *jprf(const struct mtl_prf *p)
{
	return json_pack("{s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I}", "precision", jnum(p->precision),
			 "recall", jnum(p->recall), "f1", jnum(p->f1), "support",
			 (json_int_t)p->support, "predicted", (json_int_t)(p->tp + p->fp), "tp",
			 (json_int_t)p->tp, "fp", (json_int_t)p->fp, "fn", (json_int_t)p->fn);
}

static json_t *jstat(const struct mtl_report_steps *s, const double *v)
{
	struct mtl_report_stat st;

	mtl_report_stat(v, s->n, &st);
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "n", (json_int_t)st.n, "first",
			 jnum(st.first), "final", jnum(st.last), "min", jnum(st.min),
			 "min_step", st.n ? jnum(step_x(s, st.i_min)) : json_null(), "max",
			 jnum(st.max), "max_step", st.n ? jnum(step_x(s, st.i_max)) : json_null());
}

static json_t *jsteps(const struct mtl_report *rep)
{
	const struct mtl_report_steps *s = &rep->steps;
	const struct { const char *name; const struct mtl_report_family *f; } fam[] = {
		{ "losses", &s->losses }, { "accuracy", &s->accuracy }, { "weights", &s->weights },
		{ "labelled", &s->labelled }, { "cosine", &s->cosine },
	};
	const struct { const char *name; const double *v; } col[] = {
		{ "epoch", s->epoch }, { "lr", s->lr }, { "loss", s->loss },
		{ "grad_norm", s->grad_norm }, { "tokens", s->tokens }, { "ms", s->ms },
	};
	json_t *series = json_object(), *stats = json_object(), *ev = json_array(),
	       *sk = json_array(), *x = json_array();
	double sec, tok, rate;

	for (long i = 0; x && i < s->n; i++)
		json_array_append_new(x, jnum(step_x(s, i)));
	json_object_set_new(series, "step", x);
	for (size_t c = 0; c < sizeof(col) / sizeof(col[0]); c++) {
		json_object_set_new(series, col[c].name, jseries(col[c].v, s->n));
		json_object_set_new(stats, col[c].name, jstat(s, col[c].v));
	}
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		json_t *js = json_object(), *jt = json_object();
		for (int k = 0; k < fam[f].f->n; k++) {
			json_object_set_new(js, fam[f].f->key[k], jseries(fam[f].f->v[k], s->n));
			json_object_set_new(jt, fam[f].f->key[k], jstat(s, fam[f].f->v[k]));
		}
		json_object_set_new(series, fam[f].name, js);
		json_object_set_new(stats, fam[f].name, jt);
	}
	for (long i = 0; i < s->n_eval; i++)
		json_array_append_new(ev, json_pack("{s:o,s:s,s:o,s:o,s:o}", "step",
						    jnum(s->eval[i].step), "task", s->eval[i].task,
						    "loss", jnum(s->eval[i].loss), "accuracy",
						    jnum(s->eval[i].accuracy), "f1", jnum(s->eval[i].f1)));
	for (long i = 0; i < s->n_skip; i++)
		json_array_append_new(sk, json_pack("{s:o,s:o}", "step", jnum(s->skip[i].step),
						    "reason", s->skip[i].reason ?
						    json_string(s->skip[i].reason) : json_null()));
	totals(s, &sec, &tok, &rate);
	return json_pack("{s:I,s:i,s:{s:o,s:o,s:o},s:o,s:o,s:o,s:o}", "records",
			 (json_int_t)s->n, "streams", rep->n_steps_streams, "totals", "seconds",
			 jnum(sec), "tokens", jnum(tok), "tokens_per_second", jnum(rate),
			 "series", series, "stats", stats, "eval", ev, "skips", sk);
}

static json_t *jlabels(const struct mtl_task *sp, const int *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; a && i < n; i++)
		json_array_append_new(a, v[i] >= 0 ? json_string(sp->labels[v[i]]) : json_null());
	return a;
}

static json_t *jtask(const struct mtl_report *rep, const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	const struct mtl_confusion *cf = &rt->conf;
	json_t *classes = json_object(), *cm = json_array(), *labels = json_array(),
	       *shown = json_array(), *j;

	for (int k = 0; k < cf->n; k++) {
		struct mtl_prf p;
		json_t *row = json_array();

		mtl_confusion_class(cf, k, &p);
		json_object_set_new(classes, sp->labels[k], jprf(&p));
		json_array_append_new(labels, json_string(sp->labels[k]));
		for (int l = 0; row && l < cf->n; l++)
			json_array_append_new(row, json_integer(cf->m[k * cf->n + l]));
		json_array_append_new(cm, row);
	}
	for (int k = 0; k < rt->n_err; k++) {
		const struct mtl_report_error *e = &rt->err[k];
		json_t *je = json_pack("{s:s,s:o}", "id", e->id, "text",
				       e->text ? json_string(e->text) : json_null());
		if (!je)
			continue;
		if (sp->kind == MTL_TASK_SEQUENCE) {
			json_object_set_new(je, "gold", json_string(sp->labels[e->gold[0]]));
			json_object_set_new(je, "pred", json_string(sp->labels[e->pred[0]]));
		} else {
			json_t *w = json_array();
			for (int i = 0; w && e->words && i < e->n_words; i++)
				json_array_append_new(w, json_string(e->words[i]));
			json_object_set_new(je, "words", e->words ? w : json_null());
			if (!e->words)
				json_decref(w);
			json_object_set_new(je, "gold", jlabels(sp, e->gold, e->n));
			json_object_set_new(je, "pred", jlabels(sp, e->pred, e->n));
		}
		json_array_append_new(shown, je);
	}
	j = json_pack("{s:s,s:o,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:{s:I,s:o}}", "kind",
		      mtl_task_kind_name(sp->kind), "labels", labels, "examples",
		      (json_int_t)rt->examples, "unlabelled", (json_int_t)rt->unlabelled,
		      "scored", (json_int_t)cf->total, "accuracy",
		      cf->total ? jnum(mtl_confusion_accuracy(cf)) : json_null(), "macro_f1",
		      cf->total ? jnum(mtl_confusion_macro_f1(cf)) : json_null(), "micro_f1",
		      cf->total ? jnum(mtl_confusion_micro_f1(cf)) : json_null(), "classes",
		      classes, "confusion", cm, "errors", "total", (json_int_t)rt->n_wrong,
		      "shown", shown);
	if (j) {
		json_t *pc = json_object();
		for (int k = 0; k < sp->n_labels; k++)
			json_object_set_new(pc, sp->labels[k], json_integer(rt->predicted[k]));
		json_object_set_new(j, "predicted", pc);
	}
	if (j && rt->has_entities) {
		json_t *types = json_object();
		for (int k = 0; k < rt->ent.n_types; k++) {
			json_t *p = jprf(&rt->ent.per_type[k]);
			json_object_set_new(p, "lost", json_integer(rt->lost_type[k]));
			json_object_set_new(p, "predicted_entities",
					    json_integer(rt->predicted_entities[k]));
			json_object_set_new(types, rt->bio.types[k], p);
		}
		json_object_set_new(j, "entities",
				    json_pack("{s:s,s:o,s:o,s:o,s:I}", "mode",
					      rep->opts.strict ? "strict" : "conlleval", "types",
					      types, "micro", jprf(&rt->ent.micro), "macro_f1",
					      jnum(rt->entity_macro_f1), "lost",
					      (json_int_t)rt->lost));
	}
	return j;
}

static json_t *jembeddings(const struct mtl_report *rep)
{
	const struct mtl_report_embeddings *e = &rep->emb;
	json_t *labels = json_array(), *sim = json_array();

	for (int i = 0; i < e->n; i++) {
		json_t *row = json_array();
		json_array_append_new(labels, json_string(e->label[i]));
		for (int j = 0; row && j < e->n; j++)
			json_array_append_new(row, jnum(e->sim[i * e->n + j]));
		json_array_append_new(sim, row);
	}
	return json_pack("{s:I,s:i,s:i,s:o,s:o,s:o,s:o}", "total", (json_int_t)e->total, "shown",
			 e->n, "dim", e->dim, "pooling",
			 e->pooling ? json_string(e->pooling) : json_null(), "normalized",
			 e->normalized < 0 ? json_null() : json_boolean(e->normalized), "labels",
			 labels, "similarity", sim);
}

static json_t *jir(const struct mtl_embeval_ir *ir)
{
	return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "queries", (json_int_t)ir->queries,
			 "skipped", (json_int_t)ir->skipped, "mrr10", jnum(ir->mrr10),
			 "ndcg10", jnum(ir->ndcg10), "recall1", jnum(ir->recall1),
			 "recall10", jnum(ir->recall10), "recall100", jnum(ir->recall100),
			 "map100", jnum(ir->map100));
}

static json_t *jembeval(const struct mtl_report_embeval *ev)
{
	json_t *j = json_object(), *lab = json_object();

	for (int i = 0; lab && i < ev->n_lab; i++) {
		const struct mtl_report_label_eval *l = &ev->lab[i];

		json_object_set_new(lab, l->task,
				    json_pack("{s:I,s:i,s:i,s:o,s:o,s:o,s:o}", "labelled",
					      (json_int_t)l->e.labelled, "labels", l->e.n_labels,
					      "k", l->e.k, "knn_accuracy", jnum(l->e.knn_accuracy),
					      "probe_accuracy", jnum(l->e.probe_accuracy),
					      "same_label", jir(&l->e.same),
					      "vmeasure", jnum(l->e.vmeasure)));
	}
	json_object_set_new(j, "labels", lab);
	if (ev->qrels)
		json_object_set_new(j, "retrieval",
				    json_pack("{s:s,s:I,s:o}", "qrels", ev->qrels, "queries",
					      (json_int_t)ev->queries, "figures", jir(&ev->ir)));
	if (ev->pairs)
		json_object_set_new(j, "similarity",
				    json_pack("{s:s,s:I,s:o,s:o}", "pairs_file", ev->pairs, "pairs",
					      (json_int_t)ev->sim.pairs, "pearson",
					      jnum(ev->sim.pearson), "spearman",
					      jnum(ev->sim.spearman)));
	return j;
}

json_t *mtl_render_json(const struct mtl_report *rep,
			const struct mtl_render_opts *opts)
{
	json_t *root = json_pack("{s:s}", "title", opts->title ? opts->title : "mtl report");

	if (!root)
		return NULL;
	if (rep->n_steps_streams && json_object_set_new(root, "steps", jsteps(rep)))
		goto fail;
	if (rep->n_pred_streams) {
		json_t *tasks = json_object();
		for (int i = 0; tasks && i < rep->tasks->n; i++)
			if (json_object_set_new(tasks, rep->tasks->task[i].name,
						jtask(rep, &rep->task[i])))
				goto fail;
		if (json_object_set_new(root, "predictions",
					json_pack("{s:I,s:i,s:o}", "records",
						  (json_int_t)rep->predictions, "streams",
						  rep->n_pred_streams, "tasks", tasks)))
			goto fail;
	}
	if (rep->n_emb_streams && json_object_set_new(root, "embeddings", jembeddings(rep)))
		goto fail;
	if (rep->emb.eval && json_object_set_new(root, "embedding_evaluation",
						 jembeval(rep->emb.eval)))
		goto fail;
	return root;
fail:
	json_decref(root);
	return NULL;
}

/*
 * Writes j as indented JSON, but with arrays of scalars on one line (the
 * series would otherwise take a line a value), and reals in the shortest
 * form that reads back to the same double (whole numbers without ".0").
 */
static void json_write(FILE *f, const json_t *j, int depth)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *v;
		int first = 1;

		if (!json_object_size(j)) {
			fputs("{}", f);
			break;
		}
		fputs("{\n", f);
		json_object_foreach((json_t *)j, key, v) {
			json_t *k = json_string(key);
			char *ks = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;

			fprintf(f, "%s%*s%s: ", first ? "" : ",\n", 2 * depth + 2, "", ks ? ks : "\"\"");
			free(ks);
			json_decref(k);
			json_write(f, v, depth + 1);
			first = 0;
		}
		fprintf(f, "\n%*s}", 2 * depth, "");
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		int flat = 1;

		for (size_t i = 0; i < n; i++)
			if (json_is_object(json_array_get(j, i)) || json_is_array(json_array_get(j, i)))
				flat = 0;
		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			if (flat)
				fputs(i ? ", " : "", f);
			else
				fprintf(f, "%s\n%*s", i ? "," : "", 2 * depth + 2, "");
			json_write(f, json_array_get(j, i), depth + 1);
		}
		if (!flat && n)
			fprintf(f, "\n%*s", 2 * depth, "");
		fputc(']', f);
		break;
	}
	case JSON_REAL: {
		double x = json_real_value(j);
		char b[32];

		if (x == floor(x) && fabs(x) < 9007199254740992.0) {
			fprintf(f, "%.0f", x);
			break;
		}
		for (int p = 15; p <= 17; p++) {
			snprintf(b, sizeof(b), "%.*g", p, x);
			if (strtod(b, NULL) == x)
				break;
		}
		fputs(b, f);
		break;
	}
	default: {
		char *s = json_dumps(j, JSON_ENCODE_ANY);

		fputs(s ? s : "null", f);
		free(s);
	}
	}
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
