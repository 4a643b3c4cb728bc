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

#include "bert.h"
#include "eval.h"
#include "head.h"
#include "t.h"
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
	};
	static const struct {
		const char *metric, *msg;
	} bad[] = {
		{ "f1", "unknown metric 'f1': loss or TASK:FIGURE expected" },
		{ "tpoic:f1", "metric 'tpoic:f1': the model has no task 'tpoic'" },
		{ "topic:recall", "metric 'topic:recall': unknown figure 'recall': accuracy, f1, token_f1, entity_f1, micro_f1, mse, pearson or spearman" },
		{ "topic:entity_f1", "metric 'topic:entity_f1': 'topic' is a sequence task: it has accuracy and f1" },
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

static void test_names_list(const struct mtl_tasks *ts)
{
	size_t n = 0;
	char **names = mtl_eval_metric_names(ts, &n), buf[512] = "";

	for (size_t i = 0; names && i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s ", names[i]);
	T_OK(names && !names[n] && !strcmp(buf, "loss topic:accuracy topic:f1 ner:accuracy ner:f1 "
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

int main(void)
{
	struct mtl_tasks *ts;
	struct mtl_err err;

	if (!T_OK(mtl_task_parse(&ts, spec, sizeof(spec) - 1, "tasks.json", &err) == 0, "tasks"))
		return t_done();
	test_names(ts);
	test_names_list(ts);
	test_patience(ts);
	test_format(ts);
	mtl_task_free(ts);
	return t_done();
}
