/*
 * test_eval.c - the best evaluation of a run (eval.h): metric names and
 * their errors, "loss" lower and the others higher, NaN never the best,
 * patience counting evaluations without improvement, and the best
 * weights copied out and back; and the one-line form of a result.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bert.h"
#include "eval.h"
#include "head.h"
#include "report.h"
#include "t.h"
#include "t_golden.h"
#include "t_jsonl.h"
#include "task.h"

static const char spec[] =
	"{\"tasks\": [\n"
	"  {\"name\": \"topic\", \"kind\": \"sequence\", \"labels\": [\"a\",\"b\"]},\n"
	"  {\"name\": \"ner\", \"kind\": \"token\", \"labels\": [\"O\",\"B-PER\",\"I-PER\"]},\n"
	"  {\"name\": \"pos\", \"kind\": \"token\", \"labels\": [\"NN\",\"VB\"]}\n"
	"]}\n";

static void test_names(const struct mtl_tasks *ts)
{
	static const struct {
		const char *metric;
		int task, kind;
	} good[] = {
		{ "loss", -1, MTL_EVAL_LOSS },
		{ "topic:accuracy", 0, MTL_EVAL_ACCURACY },
		{ "topic:f1", 0, MTL_EVAL_F1 },
		{ "ner:token_f1", 1, MTL_EVAL_F1 },
		{ "ner:f1", 1, MTL_EVAL_F1 },
		{ "ner:entity_f1", 1, MTL_EVAL_ENTITY_F1 },
		{ "pos:token_f1", 2, MTL_EVAL_F1 },
		{ "topic:knn_accuracy", 0, MTL_EVAL_KNN_ACCURACY },
		{ "topic:v_measure", 0, MTL_EVAL_V_MEASURE },
	};
	static const struct {
		const char *metric, *msg;
	} bad[] = {
		{ "f1", "unknown metric 'f1': loss or TASK:FIGURE expected" },
		{ "tpoic:f1", "metric 'tpoic:f1': the model has no task 'tpoic'" },
		{ "topic:recall", "metric 'topic:recall': unknown figure 'recall': accuracy, f1, token_f1, entity_f1, micro_f1, mse, pearson, spearman, mrr@10, ndcg@10, recall@1, recall@10, recall@100, map@100, knn_accuracy or v_measure" },
		{ "topic:entity_f1", "metric 'topic:entity_f1': 'topic' is a sequence task: it has accuracy, f1, knn_accuracy and v_measure (entity_f1 is for token tasks)" },
		{ "topic:mrr@10", "metric 'topic:mrr@10': 'topic' is a sequence task: it has accuracy, f1, knn_accuracy and v_measure (mrr@10 is for embedding tasks)" },
		{ "ner:knn_accuracy", "metric 'ner:knn_accuracy': 'ner' is a token task: it has accuracy, f1, token_f1 and entity_f1 (knn_accuracy is for sequence tasks)" },
		{ "pos:entity_f1", "metric 'pos:entity_f1': the labels of 'pos' are not BIO tags: no entities" },
	};
	struct mtl_eval_best b;
	struct mtl_err err;

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		T_OK(mtl_eval_best_init(&b, good[i].metric, ts, 0, &err) == 0 &&
		     b.task == good[i].task && (int)b.kind == good[i].kind &&
		     isnan(b.value) && b.step == -1, "metric '%s'", good[i].metric);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		T_OK(mtl_eval_best_init(&b, bad[i].metric, ts, 0, &err) == MTL_ERR_ARG &&
		     !strcmp(err.msg, bad[i].msg), "bad metric: '%s'", err.msg);
}

/* The figures of an embedding task and a regression task, their
 * direction, and the label tasks whose embeddings a metric needs. */
static void test_names_kinds(void)
{
	static const char kinds[] =
		"{\"tasks\": [{\"name\": \"sim\", \"kind\": \"embedding\"},\n"
		" {\"name\": \"score\", \"kind\": \"regression\"},\n"
		" {\"name\": \"topic\", \"kind\": \"sequence\", \"labels\": [\"a\",\"b\"]}]}\n";
	struct mtl_tasks *ts;
	struct mtl_eval_best b;
	struct mtl_err err;
	size_t n = 0;
	char **names, buf[512] = "";

	if (!T_OK(mtl_task_parse(&ts, kinds, sizeof(kinds) - 1, "tasks.json", &err) == 0, "tasks"))
		return;
	names = mtl_eval_metric_names(ts, &n);
	for (size_t i = 0; names && i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s ", names[i]);
	T_OK(names && !strcmp(buf, "loss sim:accuracy sim:pearson sim:spearman sim:mrr@10 sim:ndcg@10 "
			      "sim:recall@1 sim:recall@10 sim:recall@100 sim:map@100 "
			      "score:mse score:pearson score:spearman topic:accuracy topic:f1 "
			      "topic:knn_accuracy topic:v_measure "),
	     "an embedding and a regression task's metrics: '%s'", buf);
	free(names);
	T_OK(mtl_eval_best_init(&b, "sim:f1", ts, 0, &err) == MTL_ERR_ARG &&
	     !strcmp(err.msg, "metric 'sim:f1': 'sim' is an embedding task: it has accuracy, pearson, spearman, mrr@10, ndcg@10, recall@1, recall@10, recall@100 and map@100 (f1 is for sequence, token, multilabel and pair tasks)"),
	     "an embedding task has no f1: '%s'", err.msg);
	T_OK(mtl_eval_best_init(&b, "score:mrr@10", ts, 0, &err) == MTL_ERR_ARG &&
	     !strcmp(err.msg, "metric 'score:mrr@10': 'score' is a regression task: it has mse, pearson and spearman (mrr@10 is for embedding tasks)"),
	     "retrieval is an embedding task's: '%s'", err.msg);
	T_OK(mtl_eval_best_init(&b, "sim:ndcg@10", ts, 0, &err) == 0 &&
	     b.kind == MTL_EVAL_NDCG10 && mtl_eval_best_emb_labels(&b) == 0,
	     "sim:ndcg@10 needs no label task's embeddings");
	T_OK(mtl_eval_best_init(&b, "topic:v_measure", ts, 0, &err) == 0 &&
	     mtl_eval_best_emb_labels(&b) == 1ull << 2, "topic:v_measure needs topic's");
	mtl_task_free(ts);
}

static void test_names_list(const struct mtl_tasks *ts)
{
	size_t n = 0;
	char **names = mtl_eval_metric_names(ts, &n), buf[512] = "";

	for (size_t i = 0; names && i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s ", names[i]);
	T_OK(names && !names[n] && !strcmp(buf, "loss topic:accuracy topic:f1 topic:knn_accuracy "
					   "topic:v_measure ner:accuracy ner:f1 "
					   "ner:token_f1 ner:entity_f1 pos:accuracy pos:f1 pos:token_f1 "),
	     "every metric name: '%s'", buf);
	free(names);
}

/* An evaluation whose figures are v (loss and the ner task's). */
struct fake {
	double task_loss[3], accuracy[3], f1[3], entity_f1[3], nan3[3];
	int64_t labelled[3];
	struct mtl_eval_result res;
};

static void fake_set(struct fake *f, double v)
{
	for (int t = 0; t < 3; t++) {
		f->task_loss[t] = f->accuracy[t] = f->f1[t] = v;
		f->entity_f1[t] = t == 1 ? v : NAN;
		f->nan3[t] = NAN; /* no multilabel or regression task */
		f->labelled[t] = 4;
	}
	f->res = (struct mtl_eval_result){
		.n_tasks = 3, .examples = 4, .loss = v, .task_loss = f->task_loss,
		.accuracy = f->accuracy, .f1 = f->f1, .labelled = f->labelled,
		.entity_f1 = f->entity_f1, .micro_f1 = f->nan3,
		.pearson = f->nan3, .spearman = f->nan3,
	};
}

static void test_patience(const struct mtl_tasks *ts)
{
	float enc[3] = { 1, 2, 3 }, heads[2] = { 4, 5 };
	struct mtl_bert bert = { .params = enc, .n_params = 3 };
	struct mtl_heads hd = { .params = heads, .n_params = 2 };
	struct mtl_model m = { .bert = &bert, .heads = &hd };
	const double seq[] = { 0.5, 0.7, 0.7, NAN, 0.6, 0.9, 0.8, 0.8 };
	const int want_better[] = { 1, 1, 0, 0, 0, 1, 0, 0 };
	const int want_stop[] = { 0, 0, 0, 0, 1, 0, 0, 0 };
	struct mtl_eval_best b;
	struct mtl_err err;
	struct fake f;
	int ok = 1, rc;

	T_OK(mtl_eval_best_init(&b, "ner:entity_f1", ts, 3, &err) == 0, "init with patience 3");
	for (int i = 0; i < 5; i++) {
		fake_set(&f, seq[i]);
		enc[0] = (float)(10 + i); /* the weights at step i + 1 */
		rc = mtl_eval_best_update(&b, i + 1, &f.res, &m, 1, &err);
		ok &= rc == want_better[i] && b.stop == want_stop[i];
	}
	T_OK(ok && b.value == 0.7 && b.step == 2 && b.stale == 3,
	     "higher is better; equal and NaN are not; stop after 3 without");
	enc[0] = 99;
	heads[1] = 99;
	T_OK(mtl_eval_best_restore(&b, &m) == 0 && enc[0] == 11 && heads[1] == 5,
	     "the best step's weights restored");
	mtl_eval_best_release(&b);

	T_OK(mtl_eval_best_init(&b, "loss", ts, 0, &err) == 0, "loss, no patience");
	for (int i = 5; i < 8; i++) {
		fake_set(&f, seq[i]);
		rc = mtl_eval_best_update(&b, i, &f.res, &m, 0, &err);
		ok &= rc == (i == 5 || i == 6) && !b.stop;
	}
	T_OK(ok && b.value == 0.8 && b.step == 6, "loss: lower is better; never stops");
	T_OK(mtl_eval_best_restore(&b, &m) == 1, "weights not kept: nothing to restore");
	mtl_eval_best_release(&b);
}

static void test_format(const struct mtl_tasks *ts)
{
	struct fake f;
	char buf[256];

	fake_set(&f, 0.5);
	f.labelled[0] = 0;
	mtl_eval_format(buf, sizeof(buf), ts, &f.res);
	T_OK(!strcmp(buf, "loss 0.5000, ner accuracy 0.5000 token_f1 0.5000 entity_f1 0.5000, "
			  "pos accuracy 0.5000 token_f1 0.5000"), "one line: '%s'", buf);
	mtl_eval_format(buf, 20, ts, &f.res);
	T_OK(strlen(buf) == 19, "cut to the buffer");
}

/* ---- the embedding evaluators: the same numbers as mtl-report's ---- */

static const char emb_spec[] =
	"{\"tasks\": [\n"
	"  {\"name\": \"topic\", \"kind\": \"sequence\", \"labels\": [\"a\",\"b\",\"c\"]},\n"
	"  {\"name\": \"sim\", \"kind\": \"embedding\"},\n"
	"  {\"name\": \"sts\", \"kind\": \"embedding\", \"loss\": \"cosent\"}\n"
	"]}\n";

/* "[2, x, ..., 3]": 3 to 10 random token ids. */
static void put_ids(FILE *f, unsigned *seed)
{
	int n = 3 + (int)(*seed = *seed * 1103515245u + 12345u) % 8;

	fputs("[2", f);
	for (int i = 0; i < n - 2; i++)
		fprintf(f, ",%u", 5 + (*seed = *seed * 1103515245u + 12345u) / 7 % 300);
	fputs(",3]", f);
}

/* Example i of the set, as a JSON example record: i % 4 == 0 a topic
 * label and a positive, 1 a scored pair, 2 a topic label, 3 a topic
 * label and a scored pair. */
static void put_example(FILE *f, int i, unsigned *seed)
{
	fprintf(f, "{\"type\":\"example\",\"id\":%d,\"ids\":", i);
	put_ids(f, seed);
	fputs(",\"labels\":{", f);
	if (i % 4 != 1)
		fprintf(f, "\"topic\":%u%s", (*seed = *seed * 1103515245u + 12345u) / 11 % 3,
			i % 4 == 2 ? "" : ",");
	if (i % 4 == 0) {
		fputs("\"sim\":{\"other_ids\":", f);
		put_ids(f, seed);
		fputs("}", f);
	}
	if (i % 2) {
		fputs("\"sts\":{\"other_ids\":", f);
		put_ids(f, seed);
		fprintf(f, ",\"score\":%.2f}", (*seed = *seed * 1103515245u + 12345u) / 13 % 100 / 100.0);
	}
	fputs("}}", f);
}

/* An embeddings record of row x[H] as JSON (9 digits: the float back). */
static void put_vector(FILE *f, const char *id, const float *x, int H,
		       const char *label)
{
	fprintf(f, "{\"type\":\"embedding\",\"id\":\"%s\",\"embedding\":[", id);
	for (int j = 0; j < H; j++)
		fprintf(f, "%s%.9g", j ? "," : "", (double)x[j]);
	fputs("]", f);
	if (label)
		fprintf(f, ",\"labels\":{\"topic\":\"%s\"}", label);
	fputs("}\n", f);
}

/* Reads the JSON lines text into a report keeping every embedding. */
static struct mtl_report *report_of(const char *jsonl, struct mtl_err *err)
{
	struct mtl_report_opts ro = { .max_embeddings = 20, .emb_keep = 1 };
	struct mtl_report *rep = mtl_report_new(&ro);
	size_t len;
	char *bytes = t_pack_lines(jsonl, &len);
	FILE *f = fmemopen(bytes, len, "rb");
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, "in.mpk");

	if (mtl_report_read(rep, r, err) || mtl_report_finish(rep, err)) {
		mtl_report_free(rep);
		rep = NULL;
	}
	mtl_mp_reader_free(r);
	fclose(f);
	free(bytes);
	return rep;
}

/*
 * An evaluation set of 45 examples (two chunks) over fixtures/tiny with a
 * topic task and two embedding tasks: the figures mtl_eval_run computes
 * are exactly those mtl-report computes (mtl_report_evaluate) on the same
 * vectors written as embeddings streams: topic's kNN accuracy and
 * V-measure, sts's Pearson and Spearman of its scored pairs, sim's
 * retrieval with the judgements "anchor i: its own positive".
 */
static void test_same_as_report(void)
{
	enum { NEX = 45, CHUNK = 32 };
	static const char *const lab[] = { "a", "b", "c" };
	struct mtl_err err = { "" };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_eval_set set = { 0 };
	struct mtl_eval_result res;
	struct mtl_report *ra = NULL, *rb = NULL;
	struct mtl_report_eval_opts eo = { .labels = 1 };
	struct mtl_embset queries;
	char *all = NULL, *pos = NULL, *qry = NULL, *pairs = NULL, *qrels = NULL;
	size_t n_all, n_pos, n_qry, n_pairs, n_qrels;
	FILE *fa, *fp, *fq, *fpair, *fqrel;
	int map[3] = { 0, 1, 2 }, H, nsim = 0;
	unsigned seed = 7;

	if (mtl_bert_load(&m, "fixtures/tiny", &err) ||
	    mtl_task_parse(&ts, emb_spec, sizeof(emb_spec) - 1, "tasks", &err) ||
	    mtl_heads_new(&hd, ts, m->cfg.hidden, MTL_POOL_CLS, &err))
		t_bail(err.msg);
	H = m->cfg.hidden;
	mtl_train_opts_defaults(&o);
	o.dropout = 0;
	if (mtl_train_new(&tr, m, hd, &o, &err))
		t_bail(err.msg);
	struct mtl_model model = { .bert = m, .tasks = ts, .heads = hd,
				   .pool = { MTL_POOL_CLS, 1, m->cfg.max_pos } };

	set.ex = calloc(NEX, sizeof(*set.ex));
	set.n = NEX;
	set.map = map;
	set.emb_labels = 1; /* topic */
	for (int i = 0; i < NEX; i++) {
		char *js = NULL;
		size_t len;
		FILE *f = open_memstream(&js, &len);
		json_t *j;
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_unpacked u;

		put_example(f, i, &seed);
		fclose(f);
		j = json_loads(js, 0, NULL);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		mtl_mp_from_json(&pk, j);
		msgpack_unpacked_init(&u);
		if (!j || msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
		    mtl_example_parse(&set.ex[i], &u.data, ts, &err))
			t_bail(js);
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
		json_decref(j);
		free(js);
	}
	if (!T_OK(mtl_eval_run(&res, tr, &set, &model, &err) == 0, "evaluation runs: %s", err.msg))
		goto out;

	/* the vectors of each chunk, as the evaluation pools them */
	fa = open_memstream(&all, &n_all);
	fp = open_memstream(&pos, &n_pos);
	fq = open_memstream(&qry, &n_qry);
	fpair = open_memstream(&pairs, &n_pairs);
	fqrel = open_memstream(&qrels, &n_qrels);
	fprintf(fa, "{\"type\":\"header\",\"stream\":\"embeddings\",\"version\":[1,1],\"dim\":%d}\n", H);
	fprintf(fp, "{\"type\":\"header\",\"stream\":\"embeddings\",\"version\":[1,1],\"dim\":%d}\n", H);
	fprintf(fq, "{\"type\":\"header\",\"stream\":\"embeddings\",\"version\":[1,1],\"dim\":%d}\n", H);
	for (int c = 0; c < NEX; c += CHUNK) {
		const struct mtl_example *sel[CHUNK];
		int n = NEX - c < CHUNK ? NEX - c : CHUNK;
		struct mtl_batch b;
		struct mtl_step_stats st;
		float *P;

		for (int k = 0; k < n; k++)
			sel[k] = &set.ex[c + k];
		if (mtl_batch_make(&b, sel, n, ts, map, ~0ull, m->cfg.pad_id, &err) ||
		    mtl_step_stats_init(&st, ts->n) || mtl_train_eval(tr, &b, &st, NULL, &err))
			t_bail(err.msg);
		P = malloc(sizeof(float) * (size_t)(b.B + b.E) * (size_t)H);
		mtl_train_pool(tr, &b, MTL_POOL_CLS, P);
		for (int i = 0; i < n; i++) {
			const struct mtl_example *ex = sel[i];
			char id[32], other[32];

			snprintf(id, sizeof(id), "e%d", c + i);
			put_vector(fa, id, P + (size_t)i * H, H,
				   ex->seq[0] == MTL_IGNORE ? NULL : lab[ex->seq[0]]);
			if (b.labels[2] && b.labels[2][i] != MTL_IGNORE) {
				snprintf(other, sizeof(other), "s%d", c + i);
				put_vector(fa, other, P + (size_t)b.labels[2][i] * H, H, NULL);
				fprintf(fpair, "{\"a\":\"%s\",\"b\":\"%s\",\"score\":%.17g}\n", id,
					other, (double)b.score[2][i]);
			}
			if (b.labels[1] && b.labels[1][i] != MTL_IGNORE) {
				snprintf(other, sizeof(other), "p%d", c + i);
				put_vector(fq, id, P + (size_t)i * H, H, NULL);
				put_vector(fp, other, P + (size_t)b.labels[1][i] * H, H, NULL);
				fprintf(fqrel, "{\"query\":\"%s\",\"doc\":\"%s\"}\n", id, other);
				nsim++;
			}
		}
		free(P);
		mtl_step_stats_release(&st);
		mtl_batch_release(&b);
	}
	fclose(fa);
	fclose(fp);
	fclose(fq);
	fclose(fpair);
	fclose(fqrel);

	/* mtl-report over them: labels and pairs, then retrieval */
	mtl_embset_labels_defaults(&eo.lab);
	eo.pairs = fmemopen(pairs, n_pairs, "r");
	eo.pairs_name = "pairs.jsonl";
	if (!(ra = report_of(all, &err)) || mtl_report_evaluate(ra, &eo, &err))
		t_bail(err.msg);
	fclose(eo.pairs);
	{
		const struct mtl_embset_labels_eval *l = &ra->emb.eval->lab[0].e;
		const struct mtl_eval_emb *e = &res.emb[0];

		T_OK(l->labelled == e->lab.labelled && l->labelled == 34,
		     "topic: %ld labelled rows (%ld in the report)", e->lab.labelled, l->labelled);
		T_OK(e->lab.knn_accuracy == l->knn_accuracy && e->lab.vmeasure == l->vmeasure &&
		     !isnan(l->knn_accuracy) && !isnan(l->vmeasure),
		     "topic: kNN accuracy %.6f and V-measure %.6f, the report's %.6f and %.6f",
		     e->lab.knn_accuracy, e->lab.vmeasure, l->knn_accuracy, l->vmeasure);
		T_OK(ra->emb.eval->sim.pairs == res.emb[2].pairs && res.emb[2].pairs == 22 &&
		     res.pearson[2] == ra->emb.eval->sim.pearson &&
		     res.spearman[2] == ra->emb.eval->sim.spearman && !isnan(res.spearman[2]),
		     "sts: %ld pairs, Pearson %.6f and Spearman %.6f, the report's %.6f and %.6f",
		     res.emb[2].pairs, res.pearson[2], res.spearman[2],
		     ra->emb.eval->sim.pearson, ra->emb.eval->sim.spearman);
		T_OK(isnan(res.emb[1].lab.knn_accuracy) && !res.emb[2].ir.queries &&
		     isnan(res.emb[2].ir.mrr10) && isnan(res.pearson[1]),
		     "what is not computed is NaN");
	}
	mtl_embset_init(&queries);
	{
		size_t len;
		char *bytes = t_pack_lines(qry, &len);
		FILE *f = fmemopen(bytes, len, "rb");
		struct mtl_mp_reader *r = mtl_mp_reader_new(f, "q.mpk");

		if (mtl_embset_read(&queries, r, &err))
			t_bail(err.msg);
		mtl_mp_reader_free(r);
		fclose(f);
		free(bytes);
	}
	eo = (struct mtl_report_eval_opts){ .queries = &queries, .qrels_name = "qrels.jsonl" };
	mtl_embset_labels_defaults(&eo.lab);
	eo.qrels = fmemopen(qrels, n_qrels, "r");
	if (!(rb = report_of(pos, &err)) || mtl_report_evaluate(rb, &eo, &err))
		t_bail(err.msg);
	fclose(eo.qrels);
	{
		const struct mtl_embeval_ir *a = &res.emb[1].ir, *b = &rb->emb.eval->ir;

		T_OK(a->queries == nsim && b->queries == nsim && nsim == 12 &&
		     a->mrr10 == b->mrr10 && a->ndcg10 == b->ndcg10 &&
		     a->recall1 == b->recall1 && a->recall10 == b->recall10 &&
		     a->recall100 == b->recall100 && a->map100 == b->map100 && a->recall1 < 1,
		     "sim: %ld queries, MRR@10 %.6f NDCG@10 %.6f R@1 %.6f MAP@100 %.6f, the report's %.6f %.6f %.6f %.6f",
		     a->queries, a->mrr10, a->ndcg10, a->recall1, a->map100,
		     b->mrr10, b->ndcg10, b->recall1, b->map100);
	}
	mtl_embset_release(&queries);
	mtl_eval_result_release(&res);
out:
	mtl_report_free(ra);
	mtl_report_free(rb);
	free(all);
	free(pos);
	free(qry);
	free(pairs);
	free(qrels);
	for (int i = 0; i < set.n; i++)
		mtl_example_release(&set.ex[i]);
	free(set.ex);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
}

int main(void)
{
	struct mtl_tasks *ts;
	struct mtl_err err;

	if (!T_OK(mtl_task_parse(&ts, spec, sizeof(spec) - 1, "tasks.json", &err) == 0, "tasks"))
		return t_done();
	test_names(ts);
	test_names_list(ts);
	test_names_kinds();
	test_patience(ts);
	test_format(ts);
	mtl_task_free(ts);
	test_same_as_report();
	return t_done();
}
