/*
 * render_emb.c - the report's embedding sections: the cosine similarity
 * matrix of an embeddings stream and the table of the embedding
 * evaluators (report_emb.c computes them); part of render.c's walk
 * (render_int.h).
 */
#include "render_int.h"

#include <stdlib.h>
#include <string.h>

void render_embeddings(struct out *o, const struct mtl_report *rep)
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

void render_emb_eval(struct out *o, const struct mtl_report *rep)
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
