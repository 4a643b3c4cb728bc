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
	return t_done();
}
