/*
 * test_report.c - the figures of lib/report/report.c against hand computations on
 * the hand-made streams in tests/data/report/, the JSON rendering read
 * back with jansson, sparklines, escaping, and bad input.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "report.h"
#include "t.h"
#include "t_jsonl.h"

static int near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc((size_t)n + 1, 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

/* Reads the stream of JSON lines jsonl into rep; returns the read's status. */
static int feed(struct mtl_report *rep, const char *jsonl, size_t cut,
		struct mtl_err *err)
{
	size_t len;
	char *bytes = t_pack_lines(jsonl, &len);
	FILE *f = fmemopen(bytes, cut && cut < len ? len - cut : len, "rb");
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, "in.mpk");
	int rc = mtl_report_read(rep, r, err);

	mtl_mp_reader_free(r);
	fclose(f);
	free(bytes);
	return rc;
}

static int feed_file(struct mtl_report *rep, const char *path, struct mtl_err *err)
{
	char *s = slurp(path);
	int rc;

	if (!s)
		return -100;
	rc = feed(rep, s, 0, err);
	free(s);
	return rc;
}

static void test_predictions(int strict)
{
	struct mtl_report_opts ro = { .strict = strict, .errors = 1, .max_embeddings = 20 };
	struct mtl_report *rep = mtl_report_new(&ro);
	struct mtl_err err = { "" };
	struct mtl_report_task *topic, *ner;
	struct mtl_prf p;
	const char *m = strict ? "strict" : "conlleval";

	T_OK(feed_file(rep, "tests/data/report/predictions.jsonl", &err) == 0,
	     "%s: predictions read: %s", m, err.msg);
	T_OK(mtl_report_finish(rep, &err) == 0, "%s: finish", m);
	T_OK(rep->tasks->n == 2 && rep->predictions == 11, "%s: 2 tasks, 11 records", m);
	topic = &rep->task[0];
	ner = &rep->task[1];
	/* topic: gold a a b b c c, predicted a b b b c a, and one without gold */
	T_OK(topic->examples == 7 && topic->unlabelled == 1 && topic->conf.total == 6,
	     "%s: topic: 7 examples, 1 unlabelled, 6 scored", m);
	T_OK(near(mtl_confusion_accuracy(&topic->conf), 4.0 / 6), "%s: topic accuracy 4/6", m);
	{
		long want[9] = { 1, 1, 0, 0, 2, 0, 1, 0, 1 };
		T_OK(!memcmp(topic->conf.m, want, sizeof(want)), "%s: topic confusion counts", m);
	}
	mtl_confusion_class(&topic->conf, 1, &p);
	T_OK(near(p.precision, 2.0 / 3) && near(p.recall, 1) && near(p.f1, 0.8) && p.support == 2,
	     "%s: class b: P 2/3, R 1, F1 0.8, support 2", m);
	T_OK(near(mtl_confusion_macro_f1(&topic->conf), (0.5 + 0.8 + 2.0 / 3) / 3),
	     "%s: topic macro F1", m);
	T_OK(topic->n_wrong == 2 && topic->n_err == 1 && !strcmp(topic->err[0].id, "s2") &&
	     !strcmp(topic->err[0].text, "second | <b>"), "%s: 2 errors, the first kept", m);
	/* ner: 12 words with gold (the null one is not scored), 10 right */
	T_OK(ner->conf.total == 12 && near(mtl_confusion_accuracy(&ner->conf), 10.0 / 12),
	     "%s: ner tag accuracy 10/12", m);
	T_OK(ner->conf.m[0 * 5 + 1] == 1 && ner->conf.m[4 * 5 + 0] == 1 && ner->conf.m[3 * 5 + 3] == 3,
	     "%s: ner confusion O->B-PER 1, I-LOC->O 1, B-LOC 3", m);
	T_OK(ner->has_entities && ner->lost == 2 && ner->lost_type[0] == 1,
	     "%s: 2 entities lost, 1 of them PER", m);
	/* PER: 2 found, 1 spurious, 1 lost; LOC: 2 found, 1 wrong span (fp+fn);
	 * micro: tp 4, fp 2, fn 1 (LOC) + 1 (PER lost) + 1 (untyped lost) */
	T_OK(ner->ent.per_type[0].tp == 2 && ner->ent.per_type[0].fp == 1 &&
	     ner->ent.per_type[0].fn == 1 && near(ner->ent.per_type[0].recall, 2.0 / 3),
	     "%s: PER tp 2 fp 1 fn 1 (the lost one)", m);
	T_OK(ner->ent.per_type[1].tp == 2 && ner->ent.per_type[1].fp == 1 &&
	     ner->ent.per_type[1].fn == 1, "%s: LOC tp 2 fp 1 fn 1", m);
	T_OK(ner->ent.micro.tp == 4 && ner->ent.micro.fp == 2 && ner->ent.micro.fn == 3 &&
	     near(ner->ent.micro.precision, 4.0 / 6) && near(ner->ent.micro.recall, 4.0 / 7) &&
	     near(ner->ent.micro.f1, 8.0 / 13) && ner->ent.micro.support == 7,
	     "%s: micro P 4/6, R 4/7, F1 8/13, gold 7", m);
	T_OK(near(ner->entity_macro_f1, 2.0 / 3), "%s: entity macro F1 2/3", m);
	T_OK(ner->n_err == 1 && ner->err[0].n == 5 && ner->err[0].n_words == 7 &&
	     !strcmp(ner->err[0].words[6], "Bob") && ner->err[0].gold[4] == 4 &&
	     ner->err[0].pred[4] == 0, "%s: the ner error keeps words and tags", m);
	mtl_report_free(rep);
}

static void test_strict_differs(void)
{
	static const char s[] =
		"{\"type\":\"header\",\"stream\":\"predictions\",\"version\":[1,1],\"tasks\":[{\"name\":\"ner\",\"kind\":\"token\",\"labels\":[\"O\",\"B-X\",\"I-X\"]}]}\n"
		"{\"type\":\"prediction\",\"id\":1,\"tasks\":{\"ner\":{\"pred\":[\"O\",\"I-X\"],\"gold\":[\"O\",\"I-X\"]}}}\n";
	for (int strict = 0; strict < 2; strict++) {
		struct mtl_report_opts ro = { .strict = strict, .max_embeddings = 1 };
		struct mtl_report *rep = mtl_report_new(&ro);
		struct mtl_err err;

		feed(rep, s, 0, &err);
		mtl_report_finish(rep, &err);
		/* conlleval: an I- after O starts an entity; strict IOB2: none */
		T_OK(rep->task[0].ent.micro.tp == 1 - strict && rep->task[0].ent.micro.support == 1 - strict,
		     "%s: an I-X after O is %s", strict ? "strict" : "conlleval",
		     strict ? "no entity" : "an entity");
		mtl_report_free(rep);
	}
}

static void test_steps(void)
{
	struct mtl_report_opts ro = { .max_embeddings = 20 };
	struct mtl_report *rep = mtl_report_new(&ro);
	struct mtl_report_stat st;
	struct mtl_err err = { "" };
	const struct mtl_report_steps *s = &rep->steps;

	T_OK(feed_file(rep, "tests/data/report/steps.jsonl", &err) == 0, "steps read: %s", err.msg);
	T_OK(s->n == 4 && s->n_eval == 3 && s->n_skip == 1 && s->skip[0].step == 4 &&
	     !strcmp(s->skip[0].reason, "non-finite loss"), "4 steps, 3 eval rows, 1 skip");
	mtl_report_stat(s->loss, s->n, &st);
	T_OK(st.first == 2.0 && st.last == 1.2 && st.min == 1.0 && st.i_min == 2 && st.max == 2.0,
	     "loss: first 2, final 1.2, min 1 at record 3");
	T_OK(s->losses.n == 2 && !strcmp(s->losses.key[0], "topic") && s->losses.v[1][3] == 0.5,
	     "per-task losses by name");
	T_OK(isnan(s->grad_norm[2]) && s->grad_norm[3] == 1.5, "a missing grad_norm is a gap");
	T_OK(s->cosine.n == 1 && !strcmp(s->cosine.key[0], "topic/ner") && isnan(s->cosine.v[0][0]) &&
	     s->cosine.v[0][1] == -0.25, "nested cosine map as topic/ner, gaps where absent");
	T_OK(!strcmp(s->eval[1].task, "ner") && isnan(s->eval[1].accuracy) && s->eval[1].f1 == 0.3,
	     "eval rows keep absent figures as gaps");
	mtl_report_finish(rep, &err);
	{
		struct mtl_render_opts fo;
		json_t *j, *tot;

		mtl_render_defaults(&fo);
		j = mtl_render_json(rep, &fo);
		tot = json_object_get(json_object_get(j, "steps"), "totals");
		T_OK(near(json_real_value(json_object_get(tot, "tokens_per_second")), 2000) &&
		     near(json_real_value(json_object_get(tot, "seconds")), 0.2),
		     "400 tokens in 200 ms: 2000 tokens/s");
		T_OK(json_is_null(json_array_get(json_object_get(json_object_get(json_object_get(j, "steps"), "series"), "grad_norm"), 2)),
		     "JSON: a gap is null");
		json_decref(j);
	}
	mtl_report_free(rep);
}

/* Renders rep as format fmt (smoothing smooth) into a new string. */
static char *render_str(const struct mtl_report *rep, enum mtl_render_format fmt, double smooth)
{
	struct mtl_render_opts fo;
	struct mtl_err err;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	mtl_render_defaults(&fo);
	fo.format = fmt;
	fo.smooth = smooth;
	if (mtl_render(m, rep, &fo, &err))
		len = 0;
	fclose(m);
	return out;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/*
 * The training charts: the evaluations beside the training curves, one
 * colour per task in every chart, constant series said in a sentence,
 * smoothing on request; one number format per table column.
 */
static void test_charts(void)
{
	struct mtl_report_opts ro = { .max_embeddings = 20 };
	struct mtl_report *rep = mtl_report_new(&ro);
	struct mtl_err err = { "" };
	char *h, *h2, *txt;

	T_OK(feed_file(rep, "tests/data/report/steps.jsonl", &err) == 0 &&
	     mtl_report_finish(rep, &err) == 0, "steps read: %s", err.msg);
	h = render_str(rep, MTL_RENDER_HTML, 0);
	h2 = render_str(rep, MTL_RENDER_HTML, 0.6);
	txt = render_str(rep, MTL_RENDER_TEXT, 0);
	T_OK(h && h2 && txt, "rendered");
	/* dev F1: topic at steps 2 and 5, ner at step 2 only: 3 points marked */
	T_OK(strstr(h, "<title>Dev loss</title>") && strstr(h, "<title>Dev F1</title>") &&
	     strstr(h, "<title>Dev accuracy</title>"), "dev loss, accuracy and F1 charts");
	{
		const char *f1 = strstr(h, "<title>Dev F1</title>"), *end = f1 ? strstr(f1, "</figure>") : NULL;
		char *chart = f1 && end ? strndup(f1, (size_t)(end - f1)) : NULL;
		T_OK(chart && count(chart, "<circle") == 3, "dev F1: its 3 evaluations marked");
		T_OK(chart && strstr(chart, "background:#1f77b4\"></span>topic") &&
		     strstr(chart, "background:#d62728\"></span>ner"), "dev F1: topic blue, ner red");
		free(chart);
		/* the dev charts sit right after their training chart */
		T_OK(strstr(h, "<title>Loss</title>") < strstr(h, "<title>Dev loss</title>") &&
		     strstr(h, "<title>Dev loss</title>") < strstr(h, "<title>Accuracy</title>"),
		     "dev loss beside loss");
	}
	T_OK(count(h, "background:#1f77b4\"></span>topic") == 5 &&
	     count(h, "background:#1f77b4\"></span>") == 5,
	     "topic's colour in the loss, accuracy and 3 dev charts, and no other series has it");
	T_OK(count(h, "background:#d62728\"></span>ner") == 5,
	     "ner's colour in loss, accuracy, weights, dev loss and dev F1 (it has no dev accuracy)");
	/* weights: topic 1 at every step (static), ner changes */
	T_OK(strstr(h, "Task weights constant: topic 1.0000") != NULL, "a constant weight is a sentence");
	{
		const char *w = strstr(h, "<title>Task weights</title>"), *end = w ? strstr(w, "</figure>") : NULL;
		char *chart = w && end ? strndup(w, (size_t)(end - w)) : NULL;
		T_OK(chart && !strstr(chart, "topic") && strstr(chart, ">ner<"),
		     "the weights chart has ner only");
		free(chart);
	}
	T_OK(strstr(txt, "constant: weight topic 1.0000, labelled ner 4\n") &&
	     !strstr(txt, "\nweight topic "), "text: constant curves in a sentence, not the table");
	T_OK(!strstr(h, "class=\"smooth\"") && count(h2, "class=\"smooth\"") >= 5 &&
	     strstr(h2, "stroke-opacity=\"0.3\""), "--smooth: a smoothed line over a faint one");
	/* evaluations table: accuracy of ner absent, f1 all with 4 decimals */
	T_OK(strstr(txt, "   2  ner    0.7000         -  0.3000\n") != NULL, "eval table: '-' for a gap");
	free(h);
	free(h2);
	free(txt);
	mtl_report_free(rep);

	/* all weights static: no weights chart at all */
	rep = mtl_report_new(&ro);
	T_OK(feed(rep, "{\"type\":\"header\",\"stream\":\"steps\",\"version\":[1,0]}\n"
		       "{\"type\":\"step\",\"step\":1,\"loss\":2.0,\"weights\":{\"a\":1.0,\"b\":0.5}}\n"
		       "{\"type\":\"step\",\"step\":2,\"loss\":1.0,\"weights\":{\"a\":1.0,\"b\":0.5}}\n",
		  0, &err) == 0 && mtl_report_finish(rep, &err) == 0, "static weights read");
	h = render_str(rep, MTL_RENDER_HTML, 0);
	T_OK(h && !strstr(h, "<title>Task weights</title>") &&
	     strstr(h, "Task weights constant: a 1.0000, b 0.5000"), "static weights: a sentence, no chart");
	T_OK(h && !strstr(h, "<title>Dev"), "no evaluations: no dev charts");
	free(h);
	mtl_report_free(rep);

	/* one format per column: 0 is 0.0000 beside 0.5000; a tiny value turns
	 * the whole column to exponents */
	rep = mtl_report_new(&ro);
	T_OK(feed(rep, "{\"type\":\"header\",\"stream\":\"steps\",\"version\":[1,0]}\n"
		       "{\"type\":\"eval\",\"step\":1,\"tasks\":{\"a\":{\"loss\":0.00001,\"f1\":0}}}\n"
		       "{\"type\":\"eval\",\"step\":2,\"tasks\":{\"a\":{\"loss\":0.5,\"f1\":0.5}}}\n",
		  0, &err) == 0 && mtl_report_finish(rep, &err) == 0, "evals read");
	txt = render_str(rep, MTL_RENDER_TEXT, 0);
	T_OK(txt && strstr(txt, "1.000e-05") && strstr(txt, "5.000e-01") && strstr(txt, "0.0000") &&
	     strstr(txt, "0.5000"), "loss column in exponents, f1 column fixed");
	free(txt);
	mtl_report_free(rep);
}

static void test_embeddings(void)
{
	struct mtl_report_opts ro = { .max_embeddings = 3 };
	struct mtl_report *rep = mtl_report_new(&ro);
	struct mtl_err err = { "" };
	const struct mtl_report_embeddings *e = &rep->emb;

	T_OK(feed_file(rep, "tests/data/report/embeddings.jsonl", &err) == 0, "embeddings read: %s",
	     err.msg);
	mtl_report_finish(rep, &err);
	T_OK(e->total == 4 && e->n == 3 && e->dim == 3, "4 read, --max 3 kept");
	T_OK(!strcmp(e->label[0], "alpha") && !strcmp(e->label[2], "7"), "labels: text, else id");
	/* [1,0,0] [0,2,0] [1,1,0] */
	T_OK(near(e->sim[0 * 3 + 1], 0) && near(e->sim[0 * 3 + 2], 1 / sqrt(2)) &&
	     near(e->sim[1 * 3 + 2], 1 / sqrt(2)) && near(e->sim[1 * 3 + 1], 1),
	     "cosines 0, 1/sqrt 2, 1/sqrt 2, and 1 on the diagonal");
	{
		float a[] = { 1, 2, 3 }, b[] = { -2, -4, -6 }, z[] = { 0, 0, 0 };
		T_OK(near(mtl_report_cosine(a, b, 3), -1) && mtl_report_cosine(a, z, 3) == 0,
		     "opposite vectors -1, a zero vector 0");
	}
	mtl_report_free(rep);
}

static void test_render(void)
{
	struct mtl_report_opts ro = { .errors = 5, .max_embeddings = 20 };
	struct mtl_report *rep = mtl_report_new(&ro);
	struct mtl_render_opts fo;
	struct mtl_err err;
	char *out = NULL, spark[256];
	size_t len;
	FILE *m;

	feed_file(rep, "tests/data/report/predictions.jsonl", &err);
	feed_file(rep, "tests/data/report/embeddings.jsonl", &err);
	mtl_report_finish(rep, &err);
	mtl_render_defaults(&fo);
	fo.format = MTL_RENDER_MARKDOWN;
	m = open_memstream(&out, &len);
	T_OK(mtl_render(m, rep, &fo, &err) == 0, "markdown rendered");
	fclose(m);
	T_OK(strstr(out, "| s2 | second \\| \\<b\\> | a | b |") != NULL, "markdown escapes | and <");
	T_OK(strstr(out, "| a | 0.5000 | 0.5000 | 0.5000 | 2 | 2 |") != NULL, "markdown class row");
	free(out);
	fo.format = MTL_RENDER_HTML;
	m = open_memstream(&out, &len);
	mtl_render(m, rep, &fo, &err);
	fclose(m);
	T_OK(strstr(out, "delta | pipe &amp; &lt;amp&gt; &quot;q&quot;") != NULL, "HTML escapes & < > \"");
	T_OK(!strstr(out, "<script") && !strstr(out, "http://e") && strstr(out, "<svg"),
	     "HTML: SVG, no script, no external resource");
	free(out);
	fo.format = MTL_RENDER_JSON;
	m = open_memstream(&out, &len);
	mtl_render(m, rep, &fo, &err);
	fclose(m);
	{
		json_error_t je;
		json_t *j = json_loads(out, 0, &je), *t;

		t = json_object_get(json_object_get(json_object_get(j, "predictions"), "tasks"), "topic");
		T_OK(j && near(json_real_value(json_object_get(t, "macro_f1")), (0.5 + 0.8 + 2.0 / 3) / 3) &&
		     json_integer_value(json_array_get(json_array_get(json_object_get(t, "confusion"), 2), 0)) == 1,
		     "JSON parses back: macro F1 and confusion[c][a]");
		json_decref(j);
	}
	free(out);
	mtl_report_free(rep);

	{
		double v[] = { 0, 1, 2, 3, 4, 5, 6, 7 }, c[] = { 2, 2 }, g[] = { 0, NAN, 1 };
		mtl_render_sparkline(spark, v, 8, 8);
		T_OK(!strcmp(spark, "▁▂▃▄▅▆▇█"), "sparkline of 0..7: %s", spark);
		mtl_render_sparkline(spark, v, 8, 4);
		T_OK(!strcmp(spark, "▁▃▆█"), "bucket means 0.5 2.5 4.5 6.5: %s", spark);
		mtl_render_sparkline(spark, c, 2, 10);
		T_OK(!strcmp(spark, "▄▄"), "a constant series: %s", spark);
		mtl_render_sparkline(spark, g, 3, 10);
		T_OK(!strcmp(spark, "▁ █"), "a gap: '%s'", spark);
	}
}

static void expect_error(const char *what, const char *jsonl, size_t cut, const char *msg)
{
	struct mtl_report_opts ro = { .max_embeddings = 20 };
	struct mtl_report *rep = mtl_report_new(&ro);
	struct mtl_err err = { "" };
	int rc = feed(rep, jsonl, cut, &err);

	T_OK(rc < 0 && !strcmp(err.msg, msg), "%s: '%s'", what, err.msg);
	mtl_report_free(rep);
}

#define PH "{\"type\":\"header\",\"stream\":\"predictions\",\"version\":[1,1],\"tasks\":[{\"name\":\"t\",\"kind\":\"sequence\",\"labels\":[\"x\",\"y\"]},{\"name\":\"k\",\"kind\":\"token\",\"labels\":[\"O\",\"B-A\"]}]}\n"

static void test_errors(void)
{
	expect_error("another stream kind",
		     "{\"type\":\"header\",\"stream\":\"examples\",\"version\":[1,1]}\n", 0,
		     "in.mpk: record 1: cannot report a 'examples' stream (expected steps, predictions or embeddings)");
	expect_error("unknown label", PH "{\"type\":\"prediction\",\"id\":1,\"tasks\":{\"t\":{\"pred\":\"z\",\"gold\":\"x\"}}}\n",
		     0, "in.mpk: record 2: task 't': unknown pred label 'z'");
	expect_error("unknown gold label in a token task",
		     PH "{\"type\":\"prediction\",\"id\":1,\"tasks\":{\"k\":{\"pred\":[\"O\"],\"gold\":[\"I-A\"]}}}\n",
		     0, "in.mpk: record 2: task 'k': unknown gold label 'I-A'");
	expect_error("unknown task", PH "{\"type\":\"prediction\",\"tasks\":{\"q\":{\"pred\":\"x\"}}}\n", 0,
		     "in.mpk: record 2: unknown task 'q' (not in the header)");
	expect_error("length mismatch",
		     PH "{\"type\":\"prediction\",\"tasks\":{\"k\":{\"pred\":[\"O\"],\"gold\":[\"O\",\"O\"]}}}\n", 0,
		     "in.mpk: record 2: task 'k': \"pred\" and \"gold\" must be arrays of one label per word, of the same length");
	expect_error("bad gold_lost",
		     PH "{\"type\":\"prediction\",\"tasks\":{\"k\":{\"pred\":[\"O\"],\"gold\":[\"O\"],\"gold_lost\":{\"B\":1}}}}\n", 0,
		     "in.mpk: record 2: task 'k': \"gold_lost\": unknown entity type 'B'");
	expect_error("truncated stream", PH "{\"type\":\"prediction\",\"tasks\":{\"t\":{\"pred\":\"x\"}}}\n", 3,
		     "in.mpk: record 3: truncated (input ends inside the record)");
	/* its end record is 67 bytes: cut after record 3, a type the report
	 * does not read (it used to stop reading there) */
	expect_error("no end record", PH "{\"type\":\"prediction\",\"tasks\":{\"t\":{\"pred\":\"x\"}}}\n"
		     "{\"type\":\"metrics\"}\n", 67,
		     "in.mpk: truncated stream (no end record after 3 records)");
	expect_error("embedding of another dimension",
		     "{\"type\":\"header\",\"stream\":\"embeddings\",\"version\":[1,1],\"dim\":2}\n"
		     "{\"type\":\"embedding\",\"id\":1,\"embedding\":[1.0,2.0,3.0]}\n", 0,
		     "in.mpk: record 2: embedding has 3 values, expected 2");
	expect_error("a step figure of the wrong type",
		     "{\"type\":\"header\",\"stream\":\"steps\",\"version\":[1,1]}\n"
		     "{\"type\":\"step\",\"step\":1,\"loss\":\"low\"}\n", 0,
		     "in.mpk: record 2: \"loss\" is not a number");
}

int main(void)
{
	test_predictions(0);
	test_predictions(1);
	test_strict_differs();
	test_steps();
	test_charts();
	test_embeddings();
	test_render();
	test_errors();
	return t_done();
}
