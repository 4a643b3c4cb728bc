/*
 * render_json.c - the report as JSON (mtl_render_json), built with
 * jansson so that it holds every figure and not only what is shown, and
 * written with arrays of scalars on one line (json_write); see render.h.
 */
#include "render_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
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
	for (long i = 0; i < s->n_eval; i++) {
		json_t *row = json_pack("{s:o,s:s,s:o,s:o,s:o}", "step",
					jnum(s->eval[i].step), "task", s->eval[i].task,
					"loss", jnum(s->eval[i].loss), "accuracy",
					jnum(s->eval[i].accuracy), "f1", jnum(s->eval[i].f1));

		for (int j = 0; row && j < s->eval[i].n_more; j++)
			json_object_set_new(row, s->eval[i].more[j].key,
					    jnum(s->eval[i].more[j].v));
		json_array_append_new(ev, row);
	}
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

/* A multilabel task's JSON: per-label scores and the averages. */
static json_t *jmultilabel(const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	const struct mtl_multilabel_score *ml = &rt->ml;
	json_t *classes = json_object(), *labels = json_array(),
	       *pc = json_object();
	int have = ml->items > 0;

	for (int k = 0; k < sp->n_labels; k++) {
		json_object_set_new(classes, sp->labels[k], jprf(&ml->per_label[k]));
		json_array_append_new(labels, json_string(sp->labels[k]));
		json_object_set_new(pc, sp->labels[k], json_integer(rt->predicted[k]));
	}
	return json_pack("{s:s,s:o,s:I,s:I,s:I,s:f,s:o,s:o,s:o,s:o,s:o,s:o,s:I}",
			 "kind", mtl_task_kind_name(sp->kind), "labels", labels,
			 "examples", (json_int_t)rt->examples,
			 "unlabelled", (json_int_t)rt->unlabelled,
			 "scored", (json_int_t)ml->items, "threshold", sp->threshold,
			 "micro", jprf(&ml->micro),
			 "micro_f1", have ? jnum(ml->micro.f1) : json_null(),
			 "macro_f1", have ? jnum(ml->macro_f1) : json_null(),
			 "exact_match", have ? jnum((double)ml->exact / (double)ml->items)
					     : json_null(),
			 "classes", classes, "predicted", pc,
			 "wrong", (json_int_t)rt->n_wrong);
}


static json_t *jtask(const struct mtl_report *rep, const struct mtl_report_task *rt)
{
	const struct mtl_task *sp = rt->spec;
	const struct mtl_confusion *cf = &rt->conf;
	json_t *classes, *cm, *labels, *shown, *j;

	if (sp->kind == MTL_TASK_MULTILABEL)
		return jmultilabel(rt);
	if (sp->kind == MTL_TASK_REGRESSION)
		return json_pack("{s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "kind",
				 mtl_task_kind_name(sp->kind), "examples",
				 (json_int_t)rt->examples, "unlabelled",
				 (json_int_t)rt->unlabelled, "scored",
				 (json_int_t)rt->rg.n, "mse", jnum(rt->rg.mse),
				 "pearson", jnum(rt->rg.pearson), "spearman",
				 jnum(rt->rg.spearman));
	classes = json_object();
	cm = json_array();
	labels = json_array();
	shown = json_array();
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
		if (sp->kind == MTL_TASK_SEQUENCE || sp->kind == MTL_TASK_PAIR) {
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
void json_write(FILE *f, const json_t *j, int depth)
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
