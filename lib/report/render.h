/*
 * render.h - writes a finished struct mtl_report (lib/report/report.h) as text
 * for a terminal, markdown, JSON or one self-contained HTML file.
 *
 *   text      aligned tables, Unicode sparklines (▁▂▃▄▅▆▇█) for curves
 *   markdown  the same tables in GitHub markdown, cells escaped
 *   json      every figure, machine-readable (docs/report.md lists keys)
 *   html      one file with inline CSS and inline SVG: line charts with
 *             axes for the training curves, heat maps for confusion and
 *             similarity matrices; no script, no external resource, and
 *             well-formed XML (so xmllint can check it)
 *
 * Output goes to a caller's FILE *; the renderer never opens, closes or
 * prints anywhere else.  It does not check the FILE for write errors: the
 * caller does (ferror, fclose).
 *
 * Failure: mtl_render() returns 0, or MTL_ERR_NOMEM (with a message in
 * err) when building the output runs out of memory.
 */
#ifndef MTL_RENDER_H
#define MTL_RENDER_H

#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "report.h"

enum mtl_render_format {
	MTL_RENDER_TEXT,
	MTL_RENDER_MARKDOWN,
	MTL_RENDER_JSON,
	MTL_RENDER_HTML,
};

struct mtl_render_opts {
	enum mtl_render_format format;
	const char *title;  /* or NULL: "mtl report" */
	int spark_width;    /* characters of a sparkline (text, markdown) */
	int label_width;    /* characters of a text or id label before "…" */
	double smooth;      /* html: per-step curves also drawn smoothed, an
			     * exponential moving average with this weight in
			     * (0, 1) as TensorBoard's; 0: not */
};

/* Fills opts with the defaults: text, 40-character sparklines, 32-character labels. */
void mtl_render_defaults(struct mtl_render_opts *opts);

/* Parses "text", "markdown", "json" or "html".  0, or -1 for another name. */
int mtl_render_format_parse(const char *name, enum mtl_render_format *out);

/* Writes rep (after mtl_report_finish) to f in opts->format. */
int mtl_render(FILE *f, const struct mtl_report *rep,
	       const struct mtl_render_opts *opts, struct mtl_err *err);

/*
 * The JSON document mtl_render writes for MTL_RENDER_JSON (new reference,
 * the caller decrefs), or NULL when out of memory.  Non-finite figures
 * are null.
 */
json_t *mtl_render_json(const struct mtl_report *rep,
			const struct mtl_render_opts *opts);

/*
 * A sparkline of v[0..n) (NaN: a gap) in at most width characters,
 * written to out as UTF-8 (room for 3*width+1 bytes).  Values are averaged
 * over buckets when n > width and scaled between their minimum (▁) and
 * maximum (█); a constant series is drawn at ▄.
 */
void mtl_render_sparkline(char *out, const double *v, long n, int width);

#endif
