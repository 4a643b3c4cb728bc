/*
 * render_int.h - internal to the report renderer (render.c, render_emb.c,
 * render_out.c, render_json.c); not a module of its own: the contract is
 * render.h's.
 *
 * render_out.c holds the output primitives: strings and escaping, an
 * output context (struct out) that writes headings, paragraphs and table
 * cells for the format at hand, tables (struct tab), the series of the
 * training section (struct curve) and HTML's inline SVG.  render.c walks
 * the report section by section over them (render_emb.c: the embedding
 * sections); render_json.c builds the JSON.
 *
 * Ownership: a char * these functions return is the caller's to free;
 * NULL means out of memory.  A helper that runs out of memory while
 * writing sets o->nomem (or t->nomem) and carries on, and mtl_render
 * reports it at the end.
 */
#ifndef MTL_RENDER_INT_H
#define MTL_RENDER_INT_H

#include "render.h"

/* Where and how the text, markdown or HTML document is written. */
struct out {
	FILE *f;
	enum mtl_render_format fmt;
	const struct mtl_render_opts *o;
	int nomem;
};

/* A table: cells added row by row, laid out when printed. */
struct tab {
	int nc, nr, cap;   /* columns, cells so far (row-major), capacity */
	char **cell;       /* row 0 is the header; NULL: a number in val */
	double *val;       /* [cap] the numbers of tab_num, formatted when
			    * printed, one format per column */
	const char *align; /* per column 'l' or 'r' */
	int nomem;
};

/* A named curve of the training section. */
struct curve {
	char *name;
	const double *v;
	int counts; /* whole numbers: shown without decimals */
};

/* strings (malloc'd, NULL when out of memory) and escaping */
char *one_line(const char *s, int max);
char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
void num(char *buf, size_t n, double x);
void html_escape(FILE *f, const char *s);
void md_escape(FILE *f, const char *s);

/* text, headings and paragraphs, escaped for o->fmt */
void text(struct out *o, const char *s);
void heading(struct out *o, int level, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
void para(struct out *o, const char *f, ...)
	__attribute__((format(printf, 2, 3)));

/* tables: init, add cells (tab_put takes s, NULL: out of memory), print
 * (cls: the HTML class), release */
void tab_init(struct tab *t, const char *align);
void tab_put(struct tab *t, char *s);
void tab_add(struct tab *t, const char *s);
void tab_addf(struct tab *t, const char *f, ...)
	__attribute__((format(printf, 2, 3)));
void tab_num(struct tab *t, double x);
void tab_label(struct tab *t, const struct out *o, const char *s);
void tab_print(struct out *o, struct tab *t, const char *cls);
void tab_release(struct tab *t);

/* the training section's series: x of step record i; its named curves
 * into c (at most cap; names the caller's to free), their count; totals */
double step_x(const struct mtl_report_steps *s, long i);
int curves(const struct mtl_report_steps *s, struct curve *c, int cap);
void totals(const struct mtl_report_steps *s, double *sec, double *tok,
	    double *rate);

/* HTML's inline SVG: a line chart, a heat-map colour, a heat map */
void svg_chart(struct out *o, const char *title, int ns,
	       char *const *names, const char *const *cols,
	       const double *const *y, const double *x, long n, double smooth);
char *heat(double v, int diverging);
void svg_heat(struct out *o, const char *title, int n, char *const *rl,
	      char *const *cl, char *const *t, const double *shade,
	      int diverging, const char *xlab, const char *ylab);

/* The embedding sections of the document (render_emb.c): the similarity
 * matrix of the embeddings read, and the evaluators' table. */
void render_embeddings(struct out *o, const struct mtl_report *rep);
void render_emb_eval(struct out *o, const struct mtl_report *rep);

/* JSON written indented, arrays of scalars on one line (render_json.c) */
void json_write(FILE *f, const json_t *j, int depth);

#endif
