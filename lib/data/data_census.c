/* data_census.c - the census of an examples stream; see data.h. */
#include "data.h"

#include <stdlib.h>
#include <string.h>

#include "mp.h"

int mtl_census_init(struct mtl_census *c, const struct mtl_tasks *ts)
{
	memset(c, 0, sizeof(*c));
	c->n_tasks = ts ? ts->n : 0;
	for (int t = 0; t < c->n_tasks; t++) {
		c->n_labels[t] = ts->task[t].n_labels;
		c->label_count[t] = calloc((size_t)ts->task[t].n_labels, sizeof(long));
		if (!c->label_count[t]) {
			mtl_census_release(c);
			return MTL_ERR_NOMEM;
		}
	}
	return 0;
}

void mtl_census_add(struct mtl_census *c, const struct mtl_example *ex,
		    uint64_t tasks)
{
	int n = 0, bin = 0;

	c->examples++;
	c->tokens += ex->len;
	c->truncated += ex->truncated != 0;
	c->words_lost += ex->words_lost;
	while (bin < MTL_CENSUS_LEN_BINS - 1 && ex->len > (16 << bin))
		bin++;
	c->len_hist[bin]++;
	for (int t = 0; t < c->n_tasks; t++) {
		if (!((tasks >> t) & 1))
			continue;
		n++;
		c->labelled[t]++;
		if (ex->emb && ex->emb[t].other)
			continue; /* an embedding task has no classes */
		if (ex->multi && ex->multi[t]) {
			for (int k = 0; k < c->n_labels[t]; k++)
				c->label_count[t][k] += ex->multi[t][k];
			continue;
		}
		if (c->n_labels[t] == 1 && !ex->tok[t]) {
			c->label_count[t][0]++; /* a regression target too */
			continue;
		}
		if (!ex->tok[t]) {
			c->label_count[t][ex->seq[t]]++;
			continue;
		}
		for (int i = 0; i < ex->len; i++)
			if (ex->tok[t][i] != MTL_IGNORE)
				c->label_count[t][ex->tok[t][i]]++;
	}
	if (n == 0)
		c->none++;
	else if (n == 1)
		c->one++;
	else
		c->several++;
}

void mtl_census_print(const struct mtl_census *c, const struct mtl_tasks *ts,
		      FILE *f)
{
	static const char *bins[MTL_CENSUS_LEN_BINS] = {
		"<=16", "<=32", "<=64", "<=128", "<=256", "<=512", "<=1024", ">1024" };
	double ex = c->examples ? (double)c->examples : 1;

	fprintf(f, "examples %ld, tokens %ld (%.1f per example)\n", c->examples,
		c->tokens, (double)c->tokens / ex);
	fprintf(f, "labelled for: no task %ld (%.1f%%), one %ld (%.1f%%), several %ld (%.1f%%)\n",
		c->none, 100 * c->none / ex, c->one, 100 * c->one / ex, c->several,
		100 * c->several / ex);
	for (int t = 0; t < ts->n; t++) {
		const struct mtl_task *task = &ts->task[t];
		long items = 0;

		for (int k = 0; k < task->n_labels; k++)
			items += c->label_count[t][k];
		fprintf(f, "task %s (%s): %ld examples labelled (%.1f%%), %ld %s\n",
			task->name, mtl_task_kind_name(task->kind), c->labelled[t],
			100 * c->labelled[t] / ex, items,
			task->kind == MTL_TASK_TOKEN ? "labelled tokens" : "labels");
		for (int k = 0; k < task->n_labels; k++)
			fprintf(f, "  %-20s %8ld  %5.1f%%\n", task->labels[k],
				c->label_count[t][k],
				items ? 100.0 * (double)c->label_count[t][k] / (double)items : 0.0);
		if (task->kind != MTL_TASK_TOKEN)
			continue;
		/* entities: spans begin at B- tags */
		for (int k = 0; k < task->n_labels; k++)
			if (!strncmp(task->labels[k], "B-", 2))
				fprintf(f, "  entity %-13s %8ld\n", task->labels[k] + 2,
					c->label_count[t][k]);
	}
	fprintf(f, "length (tokens):");
	for (int b = 0; b < MTL_CENSUS_LEN_BINS; b++)
		if (c->len_hist[b])
			fprintf(f, " %s: %ld", bins[b], c->len_hist[b]);
	fprintf(f, "\n");
}

double mtl_census_unk_rate(const struct mtl_census *c)
{
	long content = c->tokens - 2 * c->examples;

	return content > 0 ? (double)c->unk / (double)content : 0.0;
}

/* Packs a map of n counts named by names[] (NULL: none). */
static void pack_counts(msgpack_packer *pk, const char *const *names,
			const long *v, int n)
{
	msgpack_pack_map(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		mtl_mp_pack_str(pk, names[i]);
		msgpack_pack_int64(pk, v[i]);
	}
}

void mtl_census_pack(msgpack_packer *pk, const struct mtl_census *c,
		     const struct mtl_tasks *ts)
{
	static const char *const per_example[] = { "none", "one", "several" };
	static const char *const tail[] = {
		"truncated", "words_lost", "labels_lost", "unknown_labels_skipped",
		"unk" };
	const long few[] = { c->none, c->one, c->several };
	const long cost[] = { c->truncated, c->words_lost, c->labels_lost,
			      c->unknown_labels_skipped, c->unk };
	int n = ts ? ts->n : 0;

	msgpack_pack_map(pk, 14);
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, "stats");
	mtl_mp_pack_str(pk, "examples");
	msgpack_pack_int64(pk, c->examples);
	mtl_mp_pack_str(pk, "tokens");
	msgpack_pack_int64(pk, c->tokens);
	mtl_mp_pack_str(pk, "labelled");
	msgpack_pack_map(pk, (size_t)n);
	for (int t = 0; t < n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_int64(pk, c->labelled[t]);
	}
	mtl_mp_pack_str(pk, "tasks_per_example");
	pack_counts(pk, per_example, few, 3);
	mtl_mp_pack_str(pk, "label_counts");
	msgpack_pack_map(pk, (size_t)n);
	for (int t = 0; t < n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		pack_counts(pk, (const char *const *)ts->task[t].labels,
			    c->label_count[t], ts->task[t].n_labels);
	}
	for (int i = 0; i < 5; i++) {
		mtl_mp_pack_str(pk, tail[i]);
		msgpack_pack_int64(pk, cost[i]);
	}
	mtl_mp_pack_str(pk, "unk_rate");
	msgpack_pack_double(pk, mtl_census_unk_rate(c));
	mtl_mp_pack_str(pk, "bad_records_skipped");
	msgpack_pack_int64(pk, c->bad);
	mtl_mp_pack_str(pk, "no_tokens");
	msgpack_pack_int64(pk, c->no_tokens);
}

void mtl_census_release(struct mtl_census *c)
{
	if (!c)
		return;
	for (int t = 0; t < 64; t++)
		free(c->label_count[t]);
	memset(c, 0, sizeof(*c));
}
