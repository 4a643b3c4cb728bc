/*
 * mtl-score - runs a model over an examples stream: each task's
 * predictions (and scores), or sentence embeddings (--embed).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "data.h"
#include "feat.h"
#include "fs.h"
#include "model.h"
#include "mp.h"
#include "predict.h"

static const char usage[] =
	"usage: mtl-score --model DIR [options] [EXAMPLES]\n"
	"       mtl-score --model DIR --embed [options] [EXAMPLES]\n"
	"       mtl-score --model DIR --features [options] [EXAMPLES]\n"
	"\n"
	"Runs the model over examples (from mtl-tokenize) and writes each task's\n"
	"predictions with the gold labels and, at the end, a metrics record per\n"
	"task (a predictions stream for mtl-report); or, with --embed, sentence\n"
	"embeddings (an embeddings stream); or, with --features, each example's\n"
	"last hidden states (a features stream for mtl-step --features).\n"
	"\n"
	"  -m, --model DIR       model directory (Hugging Face BERT layout, with\n"
	"                        tasks.json and heads.safetensors for predictions)\n"
	"      --tasks A,B       predict only these tasks (default: all)\n"
	"      --probs           add each prediction's label probabilities\n"
	"      --with-embedding  add the sentence embedding to each prediction\n"
	"      --embed           write an embeddings stream instead\n"
	"      --features        write a features stream instead\n"
	"      --pooling P       cls, mean or max (default: the model's)\n"
	"      --no-normalize    keep embeddings unnormalised (default: the model's)\n"
	"  -b, --batch-size N    examples per forward pass (default 32)\n"
	"  -t, --threads N       threads (default: all cores)\n"
	"  -q, --quiet           no progress on stderr\n"
	"  -h, --help            this text\n"
	"  -V, --version         the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

struct run {
	struct mtl_model *model;
	struct mtl_tasks *ts; /* from the stream header */
	struct mtl_mp_reader *r;
	struct mtl_mp_writer *w;
	int batch, features;
	long done;
	long last; /* the record number of the last example read */
	int32_t *ids, *mask; /* --features: a padded chunk */
	size_t cap_tokens;
};

static void write_or_die(struct run *R)
{
	struct mtl_err err;

	if (mtl_mp_end(R->w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

/* --features: the inference forward of ex[0..n) padded to the longest,
 * then a record per example with the last hidden states of its tokens. */
static void features_chunk(struct run *R, struct mtl_example *ex, int n)
{
	size_t H = (size_t)R->model->bert->cfg.hidden;
	const float *last;
	struct mtl_err err;
	int T = 0;

	for (int i = 0; i < n; i++)
		if (ex[i].len > T)
			T = ex[i].len;
	if ((size_t)n * (size_t)T > R->cap_tokens) {
		R->cap_tokens = (size_t)n * (size_t)T;
		R->ids = realloc(R->ids, R->cap_tokens * sizeof(int32_t));
		R->mask = realloc(R->mask, R->cap_tokens * sizeof(int32_t));
		if (!R->ids || !R->mask)
			cmd_die(EXIT_DATA, "out of memory");
	}
	for (int i = 0; i < n; i++)
		for (int t = 0; t < T; t++) {
			R->ids[i * T + t] = t < ex[i].len ? ex[i].ids[t] : R->model->bert->cfg.pad_id;
			R->mask[i * T + t] = t < ex[i].len;
		}

	if (mtl_bert_forward(R->model->bert, R->ids, NULL, R->mask, n, T, 0, &err))
		cmd_die(EXIT_DATA, "%s: records %ld-%ld: %s", mtl_mp_reader_name(R->r),
			R->last - n + 1, R->last, err.msg);
	last = mtl_bert_last_hidden(R->model->bert);
	for (int i = 0; i < n; i++) {
		msgpack_packer *pk = mtl_mp_pk(R->w);

		msgpack_pack_map(pk, 4);
		mtl_mp_pack_str(pk, "type");
		mtl_mp_pack_str(pk, "features");
		mtl_mp_pack_str(pk, "id");
		if (ex[i].id)
			mtl_data_pack_raw(pk, ex[i].id, ex[i].id_len);
		else
			msgpack_pack_nil(pk);
		mtl_mp_pack_str(pk, "len");
		msgpack_pack_int(pk, ex[i].len);
		mtl_mp_pack_str(pk, "hidden");
		mtl_mp_pack_f32s(pk, last + (size_t)i * (size_t)T * H,
				 (size_t)ex[i].len * H);
		write_or_die(R);
	}
}

/* Runs one chunk of examples: predictions, or embeddings. */
static void chunk(struct run *R, struct mtl_predictor *pred,
		  struct mtl_example *ex, int n)
{
	struct mtl_err err;
	int rc;

	if (!pred) {
		features_chunk(R, ex, n);
		return;
	}
	if ((rc = mtl_predict(pred, ex, n, R->w, &err)))
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s: records %ld-%ld: %s",
			mtl_mp_reader_name(R->r), R->last - n + 1, R->last, err.msg);
}

static void progress(const struct run *R, struct timespec *t0, int final)
{
	struct timespec t;
	double s;

	if (cmd_quiet || (!final && !isatty(2)))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	s = (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
	fprintf(stderr, "\r%s: %ld examples, %.1f/s%s", cmd_name, R->done,
		s > 0 ? (double)R->done / s : 0.0, final ? "\n" : "");
}

static const char *pool_name(enum mtl_bert_pool p)
{
	return p == MTL_BERT_POOL_CLS ? "cls" : p == MTL_BERT_POOL_MEAN ? "mean" : "max";
}

int main(int argc, char **argv)
{
	enum { O_EMBED = 256, O_POOLING, O_NONORM, O_TASKS, O_PROBS, O_WITH_EMB,
	       O_FEATURES };
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "tasks", required_argument, NULL, O_TASKS },
		{ "probs", no_argument, NULL, O_PROBS },
		{ "with-embedding", no_argument, NULL, O_WITH_EMB },
		{ "embed", no_argument, NULL, O_EMBED },
		{ "features", no_argument, NULL, O_FEATURES },
		{ "pooling", required_argument, NULL, O_POOLING },
		{ "no-normalize", no_argument, NULL, O_NONORM },
		{ "batch-size", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct run R = { .batch = 32 };
	const char *model_dir = NULL, *pooling = NULL, *name;
	char *tasks = NULL;
	int embed = 0, no_norm = 0, threads = 0, flags = 0, c, rc, n = 0;
	uint64_t task_mask = 0;
	struct mtl_predictor *pred = NULL;
	struct mtl_example *ex;
	struct mtl_err err;
	msgpack_object hdr, rec;
	struct timespec t0;
	FILE *in;

	cmd_name = "mtl-score";
	while ((c = getopt_long(argc, argv, "m:b:t:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_dir = optarg; break;
		case O_EMBED: embed = 1; break;
		case O_FEATURES: R.features = embed = 1; break;
		case O_POOLING: pooling = optarg; break;
		case O_NONORM: no_norm = 1; break;
		case O_TASKS: tasks = optarg; break;
		case O_PROBS: flags |= MTL_PREDICT_PROBS; break;
		case O_WITH_EMB: flags |= MTL_PREDICT_EMBEDDING; break;
		case 'b': R.batch = (int)cmd_parse_long(usage, "--batch-size", optarg, 1, 4096); break;
		case 't': threads = (int)cmd_parse_long(usage, "--threads", optarg, 1, 1024); break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (!model_dir)
		cmd_usage_error(usage, "--model is required");
	if (R.features && pooling)
		cmd_usage_error(usage, "--features writes hidden states: no --pooling");
	if (embed && (tasks || flags))
		cmd_usage_error(usage, "--embed writes embeddings only: no --tasks, --probs or --with-embedding");
	if (argc - optind > 1)
		cmd_usage_error(usage, "one input at most");
	if (mtl_model_load(&R.model, model_dir, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (pooling) {
		if (!strcmp(pooling, "cls"))
			R.model->pool.mode = MTL_BERT_POOL_CLS;
		else if (!strcmp(pooling, "mean"))
			R.model->pool.mode = MTL_BERT_POOL_MEAN;
		else if (!strcmp(pooling, "max"))
			R.model->pool.mode = MTL_BERT_POOL_MAX;
		else
			cmd_usage_error(usage, "--pooling takes cls, mean or max, not '%s'", pooling);
	}
	if (no_norm)
		R.model->pool.normalize = 0;
	if (!embed) {
		if (!R.model->tasks)
			cmd_die(EXIT_DATA, "'%s' has no tasks.json: nothing to predict (use --embed for embeddings)",
				model_dir);
		if (!mtl_fs_exists(model_dir, "heads.safetensors"))
			cmd_die(EXIT_DATA, "'%s' has no heads.safetensors: train the model with mtl-step first",
				model_dir);
		if (mtl_model_heads(R.model, 0, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		for (char *t = tasks ? strtok(tasks, ",") : NULL; t; t = strtok(NULL, ",")) {
			int k = mtl_task_find(R.model->tasks, t);
			if (k < 0)
				cmd_usage_error(usage, "--tasks: the model has no task '%s'", t);
			task_mask |= 1ull << k;
		}
	}
	mtl_bert_set_threads(R.model->bert, threads);

	in = cmd_open_in(optind < argc ? argv[optind] : NULL, &name);
	R.r = mtl_mp_reader_new(in, name);
	R.w = mtl_mp_writer_new(stdout, "standard output");
	if (!R.r || !R.w)
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_mp_read_header(R.r, "examples", &hdr, &err) ||
	    mtl_data_header_tasks(&R.ts, &hdr, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_model_check_header(R.model, &hdr, &err))
		cmd_die(EXIT_DATA, "%s: %s", name, err.msg);
	if (!R.features &&
	    mtl_predictor_new(&pred, R.model, R.ts, task_mask,
			      embed ? MTL_PREDICT_EMBED_ONLY : flags, &err))
		cmd_die(EXIT_DATA, "%s: %s", name, err.msg);

	if (!embed) {
		msgpack_packer *pk = mtl_mp_pk(R.w);
		mtl_mp_pack_header(pk, "predictions", "mtl-score", argc, argv, 2);
		mtl_mp_pack_str(pk, "model");
		mtl_mp_pack_str(pk, model_dir);
		mtl_mp_pack_str(pk, "tasks");
		mtl_data_pack_tasks(pk, R.model->tasks);
		write_or_die(&R);
	} else if (R.features) {
		msgpack_packer *pk = mtl_mp_pk(R.w);
		char hex[17];

		mtl_feat_encoder_hash(R.model->bert, hex);
		mtl_mp_pack_header(pk, "features", "mtl-score", argc, argv,
				   3 + R.model->has_vocab);
		mtl_mp_pack_str(pk, "model");
		mtl_mp_pack_str(pk, model_dir);
		mtl_mp_pack_str(pk, "dim");
		msgpack_pack_int(pk, R.model->bert->cfg.hidden);
		mtl_mp_pack_str(pk, "encoder");
		mtl_mp_pack_str(pk, hex);
		if (R.model->has_vocab) {
			snprintf(hex, sizeof(hex), "%016" PRIx64, R.model->vocab_hash);
			mtl_mp_pack_str(pk, "vocab_hash");
			mtl_mp_pack_str(pk, hex);
		}
		write_or_die(&R);
	} else {
		msgpack_packer *pk = mtl_mp_pk(R.w);
		mtl_mp_pack_header(pk, "embeddings", "mtl-score", argc, argv, 4);
		mtl_mp_pack_str(pk, "model");
		mtl_mp_pack_str(pk, model_dir);
		mtl_mp_pack_str(pk, "dim");
		msgpack_pack_int(pk, R.model->bert->cfg.hidden);
		mtl_mp_pack_str(pk, "pooling");
		mtl_mp_pack_str(pk, pool_name(R.model->pool.mode));
		mtl_mp_pack_str(pk, "normalized");
		if (R.model->pool.normalize)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		write_or_die(&R);
	}
	ex = calloc((size_t)R.batch, sizeof(*ex));
	if (!ex)
		cmd_die(EXIT_DATA, "out of memory");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((rc = mtl_mp_read(R.r, &rec, &err)) > 0) {
		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example"))
			continue;
		if (mtl_example_parse(&ex[n], &rec, R.ts, &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", name, mtl_mp_reader_record(R.r), err.msg);
		if (ex[n].len > R.model->bert->cfg.max_pos)
			cmd_die(EXIT_DATA, "%s: record %ld: %d tokens, more than the model's %d positions (tokenize with --max-length)",
				name, mtl_mp_reader_record(R.r), (int)ex[n].len, R.model->bert->cfg.max_pos);
		R.last = mtl_mp_reader_record(R.r);
		if (++n == R.batch) {
			chunk(&R, pred, ex, n);
			R.done += n;
			while (n)
				mtl_example_release(&ex[--n]);
			progress(&R, &t0, 0);
		}
	}
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (n) {
		chunk(&R, pred, ex, n);
		R.done += n;
		while (n)
			mtl_example_release(&ex[--n]);
	}
	if (pred && mtl_predict_metrics(pred, R.w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	cmd_end_stream(R.w);
	progress(&R, &t0, 1);
	mtl_predictor_free(pred);
	free(ex);
	free(R.ids);
	free(R.mask);
	mtl_mp_reader_free(R.r);
	mtl_mp_writer_free(R.w);
	mtl_task_free(R.ts);
	mtl_model_free(R.model);
	if (in != stdin)
		fclose(in);
	return cmd_finish(0);
}
