/*
 * render_out.c - the output primitives of the report renderer: strings
 * and escaping, headings and paragraphs for the format at hand, tables,
 * sparklines, the series of the training section, and HTML's inline SVG
 * (line charts and heat maps).  Shared by render.c and render_json.c
 * through render_int.h; see render.h.
 */
#include "render_int.h"

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
char *one_line(const char *s, int max)
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

char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	s = vfmt(f, ap);
	va_end(ap);
	return s;
}

/* A figure for a table: "-" when absent, else 4 decimals or an exponent. */
void num(char *buf, size_t n, double x)
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

void html_escape(FILE *f, const char *s)
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
void md_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (strchr("\\`*_[]<>|#~", *s))
			fputc('\\', f);
		fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
	}
}

/* --- output context --- */

void text(struct out *o, const char *s)
{
	if (o->fmt == MTL_RENDER_HTML)
		html_escape(o->f, s);
	else if (o->fmt == MTL_RENDER_MARKDOWN)
		md_escape(o->f, s);
	else
		fputs(s, o->f);
}

/* A heading of level (1 to 4), or a paragraph (level 0), of f's text. */
static void block(struct out *o, int level, const char *f, va_list ap)
{
	char *s = vfmt(f, ap);

	if (!s) {
		o->nomem = 1;
		return;
	}
	if (!level) {
		if (o->fmt == MTL_RENDER_HTML)
			fputs("<p>", o->f);
		text(o, s);
		fputs(o->fmt == MTL_RENDER_HTML ? "</p>\n" : "\n\n", o->f);
	} else if (o->fmt == MTL_RENDER_HTML) {
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

void heading(struct out *o, int level, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	block(o, level, f, ap);
	va_end(ap);
}

void para(struct out *o, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	block(o, 0, f, ap);
	va_end(ap);
}

/* --- tables --- */

void tab_init(struct tab *t, const char *align)
{
	memset(t, 0, sizeof(*t));
	t->nc = (int)strlen(align);
	t->align = align;
}

void tab_put(struct tab *t, char *s)
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

void tab_add(struct tab *t, const char *s)
{
	tab_put(t, strdup(s ? s : ""));
}

void tab_addf(struct tab *t, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	tab_put(t, vfmt(f, ap));
	va_end(ap);
}

/* Adds a number, formatted by tab_format with the rest of its column. */
void tab_num(struct tab *t, double x)
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
void tab_label(struct tab *t, const struct out *o, const char *s)
{
	tab_put(t, one_line(s ? s : "", o->o->label_width));
}

void tab_release(struct tab *t)
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

void tab_print(struct out *o, struct tab *t, const char *cls)
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
double step_x(const struct mtl_report_steps *s, long i)
{
	return isfinite(s->step[i]) ? s->step[i] : (double)(i + 1);
}

int curves(const struct mtl_report_steps *s, struct curve *c, int cap)
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
void totals(const struct mtl_report_steps *s, double *sec, double *tok,
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
void svg_chart(struct out *o, const char *title, int ns,
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
char *heat(double v, int diverging)
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
void svg_heat(struct out *o, const char *title, int n, char *const *rl,
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
