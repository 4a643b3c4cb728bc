/*
 * test_metrics.c - classification and entity scores against cases worked
 * out by hand (conlleval / seqeval semantics for the entity cases).
 */
#include <math.h>
#include <string.h>

#include "metrics.h"
#include "t.h"

static const char *const labels[] = { "O", "B-PER", "I-PER", "B-LOC", "I-LOC" };
enum { O, BP, IP, BL, IL };

static int spans(const struct mtl_bio *b, const int *tags, int n, char *out)
{
	struct mtl_span s[16];
	int k = mtl_bio_spans(b, tags, n, s);

	out[0] = 0;
	for (int i = 0; i < k; i++)
		sprintf(out + strlen(out), "%s%s[%d,%d)", i ? " " : "",
			b->types[s[i].type], s[i].start, s[i].end);
	return k;
}

static int close_to(double a, double b)
{
	return fabs(a - b) < 1e-12;
}

/*
 * Multilabel, labels A B C D over four items: {A,B}->{A}, {A}->{A,C},
 * {}->{}, {B}->{B}.  A: tp 2 (F1 1); B: tp 1 fn 1 (P 1, R 1/2, F1 2/3);
 * C: fp 1 (F1 0); D never given nor predicted (left out of the macro
 * mean).  Micro pools tp 3 fp 1 fn 1: P = R = F1 = 3/4, while macro is
 * (1 + 2/3 + 0) / 3 = 5/9: the rare wrong label weighs more.  Exact
 * match: 2 of 4.
 */
static void multilabel(void)
{
	const int gold[4][4] = { { 1, 1, 0, 0 }, { 1, 0, 0, 0 }, { 0 }, { 0, 1, 0, 0 } };
	const int pred[4][4] = { { 1, 0, 0, 0 }, { 1, 0, 1, 0 }, { 0 }, { 0, 1, 0, 0 } };
	struct mtl_multilabel_score m;

	if (!T_OK(mtl_multilabel_init(&m, 4) == 0, "multilabel: init"))
		return;
	for (int i = 0; i < 4; i++)
		mtl_multilabel_add(&m, gold[i], pred[i]);
	mtl_multilabel_finish(&m);
	T_OK(close_to(m.per_label[0].f1, 1) && close_to(m.per_label[1].precision, 1) &&
	     close_to(m.per_label[1].recall, 0.5) && close_to(m.per_label[1].f1, 2.0 / 3) &&
	     m.per_label[2].fp == 1 && m.per_label[2].f1 == 0 &&
	     m.per_label[1].support == 2, "multilabel: per-label P/R/F1");
	T_OK(m.micro.tp == 3 && m.micro.fp == 1 && m.micro.fn == 1 &&
	     close_to(m.micro.f1, 0.75), "multilabel: micro F1 3/4 (%g)", m.micro.f1);
	T_OK(close_to(m.macro_f1, 5.0 / 9), "multilabel: macro F1 5/9 (%g)", m.macro_f1);
	T_OK(m.items == 4 && m.exact == 2, "multilabel: exact match 2 of 4");
	mtl_multilabel_release(&m);
}

/*
 * Correlations.  x = 1 2 3 4 5, y = 2 4 5 4 5: Pearson r = 6 / sqrt(10 *
 * 6) = 0.7746.  Spearman with ties: y's ranks are 1, 2.5, 4.5, 2.5, 4.5
 * (the two 4s share ranks 2 and 3, the two 5s ranks 4 and 5), mean 3,
 * deviations -2 -0.5 1.5 -0.5 1.5 against -2 -1 0 1 2: the Pearson r of
 * the ranks is 7 / sqrt(10 * 9) = 0.7379.  A monotone but not linear y has Spearman 1, Pearson
 * below 1; a constant side gives NaN; MSE by hand.
 */
static void correlations(void)
{
	const double x[5] = { 1, 2, 3, 4, 5 }, y[5] = { 2, 4, 5, 4, 5 };
	const double sq[5] = { 1, 4, 9, 16, 25 }, flat[5] = { 3, 3, 3, 3, 3 };
	struct mtl_regression_score s = { 0 };
	int nomem;

	T_OK(close_to(mtl_pearson(x, y, 5), 6 / sqrt(60)), "pearson by hand (%g)",
	     mtl_pearson(x, y, 5));
	T_OK(close_to(mtl_spearman(x, y, 5, &nomem), 7 / sqrt(90)) && !nomem,
	     "spearman with ties: mean ranks (%g)", mtl_spearman(x, y, 5, &nomem));
	T_OK(close_to(mtl_spearman(x, sq, 5, &nomem), 1) && mtl_pearson(x, sq, 5) < 0.99,
	     "spearman 1 for a monotone y, pearson below");
	T_OK(isnan(mtl_pearson(x, flat, 5)) && isnan(mtl_spearman(flat, x, 5, &nomem)) &&
	     isnan(mtl_pearson(x, y, 1)), "undefined: NaN");
	T_OK(close_to(mtl_mse(x, y, 5), (1 + 4 + 4 + 0 + 0) / 5.0) && isnan(mtl_mse(x, y, 0)),
	     "mse by hand");
	for (int i = 0; i < 5; i++)
		mtl_regression_add(&s, x[i], y[i]);
	T_OK(mtl_regression_finish(&s) == 0 && s.n == 5 && close_to(s.mse, 9.0 / 5) &&
	     close_to(s.pearson, 6 / sqrt(60)) && close_to(s.spearman, 7 / sqrt(90)),
	     "regression score: the pairs' figures");
	mtl_regression_release(&s);
}

int main(void)
{
	struct mtl_confusion c;
	struct mtl_prf s;
	struct mtl_bio b, strict;
	struct mtl_entity_score es;
	struct mtl_err err;
	char out[256];
	int gold[] = { 0, 0, 1, 1, 2, 2 }, pred[] = { 0, 1, 1, 1, 2, 0 };

	mtl_confusion_init(&c, 3);
	for (int i = 0; i < 6; i++)
		mtl_confusion_add(&c, gold[i], pred[i]);
	T_OK(close_to(mtl_confusion_accuracy(&c), 4.0 / 6), "accuracy 4/6");
	mtl_confusion_class(&c, 0, &s);
	T_OK(s.tp == 1 && s.fp == 1 && s.fn == 1 && close_to(s.f1, 0.5), "class 0: P=R=F=0.5");
	mtl_confusion_class(&c, 1, &s);
	T_OK(close_to(s.precision, 2.0 / 3) && close_to(s.recall, 1) && close_to(s.f1, 0.8),
	     "class 1: P=2/3 R=1 F=0.8");
	mtl_confusion_class(&c, 2, &s);
	T_OK(close_to(s.precision, 1) && close_to(s.recall, 0.5) && close_to(s.f1, 2.0 / 3),
	     "class 2: P=1 R=1/2 F=2/3");
	T_OK(close_to(mtl_confusion_macro_f1(&c), (0.5 + 0.8 + 2.0 / 3) / 3), "macro F1");
	T_OK(close_to(mtl_confusion_micro_f1(&c), 4.0 / 6), "micro F1 equals accuracy");
	mtl_confusion_release(&c);

	T_OK(mtl_bio_init(&b, labels, 5, 0, &err) == 0 && b.n_types == 2, "BIO scheme: 2 types");
	T_OK(mtl_bio_init(&strict, labels, 5, 1, &err) == 0, "strict scheme");
	{
		const char *const bad[] = { "O", "PER" };
		struct mtl_bio x;
		T_OK(mtl_bio_init(&x, bad, 2, 0, &err) == MTL_ERR_FORMAT &&
		     strstr(err.msg, "'PER' is not a BIO tag"), "non-BIO labels refused: %s", err.msg);
	}
	{
		/* "" followed in memory by "-PER": strchr("BIES", 0) matches */
		static const char mem[] = "\0-PER";
		const char *const bad[] = { "O", mem };
		struct mtl_bio x;
		T_OK(mtl_bio_init(&x, bad, 2, 0, &err) == MTL_ERR_FORMAT &&
		     strstr(err.msg, "label '' is not a BIO tag"),
		     "an empty label refused, nothing read past it: %s", err.msg);
	}
	{
		int t[] = { BP, IP, O, BL };
		spans(&b, t, 4, out);
		T_OK(!strcmp(out, "PER[0,2) LOC[3,4)"), "B I O B: %s", out);
	}
	{
		int t[] = { O, IP, IP, O };
		spans(&b, t, 4, out);
		T_OK(!strcmp(out, "PER[1,3)"), "conlleval: I after O starts an entity: %s", out);
		spans(&strict, t, 4, out);
		T_OK(!strcmp(out, ""), "strict IOB2: I after O is no entity: '%s'", out);
	}
	{
		int t[] = { BP, IL, IL };
		spans(&b, t, 3, out);
		T_OK(!strcmp(out, "PER[0,1) LOC[1,3)"), "type change ends and starts: %s", out);
		spans(&strict, t, 3, out);
		T_OK(!strcmp(out, "PER[0,1)"), "strict: I of another type is outside: %s", out);
	}
	{
		int t[] = { BP, BP, IP, -100, IL };
		spans(&b, t, 5, out);
		T_OK(!strcmp(out, "PER[0,1) PER[1,3) LOC[4,5)"), "B B I, ignore as O: %s", out);
	}
	{
		/* IOBES: S- is an entity of one word, E- closes one */
		const char *const l[] = { "O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC" };
		struct mtl_bio x;
		int t1[] = { 4, 4, 5 }, t2[] = { 1, 2, 3, 4, 0 }, t3[] = { 1, 3, 3, 0, 2 };
		T_OK(mtl_bio_init(&x, l, 6, 0, &err) == 0 && x.n_types == 2, "IOBES scheme");
		spans(&x, t1, 3, out);
		T_OK(!strcmp(out, "PER[0,1) PER[1,2) LOC[2,3)"), "S S S: three singles: %s", out);
		spans(&x, t2, 5, out);
		T_OK(!strcmp(out, "PER[0,3) PER[3,4)"), "B I E S O: %s", out);
		spans(&x, t3, 5, out);
		T_OK(!strcmp(out, "PER[0,2) PER[2,3) PER[4,5)"),
		     "E after E starts one; I after O starts one (conlleval): %s", out);
		mtl_bio_release(&x);
	}

	mtl_entity_init(&es, &b);
	{
		int g1[] = { BP, IP, O, BL }, p1[] = { BP, IP, O, BL };
		int g2[] = { BP, IP, O, BL }, p2[] = { BP, O, O, BL };
		int g3[] = { O, O, BL, IL }, p3[] = { BP, O, BL, O };
		mtl_entity_add(&es, &b, g1, p1, 4);
		mtl_entity_add(&es, &b, g2, p2, 4);
		mtl_entity_add(&es, &b, g3, p3, 4);
	}
	/* PER: gold 2, pred 3, tp 1.  LOC: gold 3, pred 3, tp 2. */
	{
		double macro = mtl_entity_finish(&es);
		struct mtl_prf *per = &es.per_type[0], *loc = &es.per_type[1];
		T_OK(per->tp == 1 && per->fp == 2 && per->fn == 1, "PER counts tp1 fp2 fn1");
		T_OK(loc->tp == 2 && loc->fp == 1 && loc->fn == 1, "LOC counts tp2 fp1 fn1");
		T_OK(close_to(es.micro.precision, 3.0 / 6) && close_to(es.micro.recall, 3.0 / 5) &&
		     close_to(es.micro.f1, 2 * 0.5 * 0.6 / 1.1), "micro P=1/2 R=3/5 F=6/11");
		T_OK(close_to(macro, (2 * (1.0 / 3) * 0.5 / (1.0 / 3 + 0.5) + 2.0 / 3) / 2),
		     "macro over types");
	}
	mtl_entity_release(&es);
	mtl_bio_release(&b);
	mtl_bio_release(&strict);
	multilabel();
	correlations();
	return t_done();
}
