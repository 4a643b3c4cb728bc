/*
 * mtl-batch - examples streams in, a batches stream out: padding, length
 * bucketing, shuffling, epochs, token budgets and multi-task sampling.
 */
#include <getopt.h> /* optind */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "data.h"
#include "mp.h"
#include "plan.h"

static const char usage[] =
	"usage: mtl-batch [options] [EXAMPLES...]\n"
	"\n"
	"Groups examples (from mtl-tokenize; several streams are combined) into\n"
	"padded batches for mtl-step.\n"
	"\n"
	"  -b, --batch-size N      examples per batch (default 32)\n"
	"      --max-tokens N      padded tokens per batch instead (B x longest <= N)\n"
	"      --bucket            group examples of similar length (less padding)\n"
	"      --shuffle           shuffle, anew each epoch\n"
	"      --seed N            random seed (default 0)\n"
	"  -e, --epochs N          passes over the data (default 1)\n"
	"      --drop-last         drop a final short batch\n"
	"      --sampling S        mixed (default: batches mix tasks), or one task\n"
	"                          per batch drawn by: proportional, uniform,\n"
	"                          temperature:T, round-robin\n"
	"      --start TASK=E      curriculum: TASK's labels join at epoch E\n"
	"      --mix-embedding     mixed batches take embedding examples as they\n"
	"                          come (default: they form batches of their own,\n"
	"                          for in-batch negatives)\n"
	"      --labelled-only     leave out examples labelled for no task\n"
	"      --shuffle-buffer N  stream with N examples in memory (inputs\n"
	"                          larger than memory); default: load all\n"
	"      --stats             print the data set census on stderr\n"
	"      --force             write the stream even to a terminal\n"
	"  -q, --quiet             no notes on stderr\n"
	"  -h, --help              this text\n"
	"  -V, --version           the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

struct input {
	const char *path, *name;
	FILE *f;
	struct mtl_mp_reader *r;
};

struct run {
	struct input *in;
	int n_in;
	struct mtl_tasks *ts;
	char *vocab_hash;
	int64_t max_length, pad_id;
	struct mtl_plan_opts o;
	int start[64];
	int epochs, labelled_only, stats;
	long shuffle_buffer;
	uint64_t seed;
	struct mtl_census census;
	struct mtl_mp_writer *w;
	int64_t index; /* batches written */
};

static void die_err(const struct mtl_err *err)
{
	cmd_die(EXIT_DATA, "%s", err->msg);
}

static char *str_of(const msgpack_object *o)
{
	return o && o->type == MSGPACK_OBJECT_STR ?
	       strndup(o->via.str.ptr, o->via.str.size) : NULL;
}

/* Opens every input and reads its header; merges their tasks. */
static void open_inputs(struct run *R)
{
	struct mtl_err err;

	R->ts = calloc(1, sizeof(*R->ts));
	for (int i = 0; i < R->n_in; i++) {
		struct input *in = &R->in[i];
		struct mtl_tasks *ts;
		msgpack_object hdr;
		char *hash;
		int64_t v;

		in->f = cmd_open_in(in->path, &in->name);
		in->r = mtl_mp_reader_new(in->f, in->name);
		if (!in->r)
			cmd_die(EXIT_DATA, "out of memory");
		if (mtl_mp_read_header(in->r, "examples", &hdr, &err))
			die_err(&err);
		if (mtl_data_header_tasks(&ts, &hdr, &err) ||
		    mtl_data_merge_tasks(R->ts, ts, &err))
			cmd_die(EXIT_DATA, "%s: %s", in->name, err.msg);
		mtl_task_free(ts);
		hash = str_of(mtl_mp_get(&hdr, "vocab_hash"));
		if (i == 0)
			R->vocab_hash = hash;
		else {
			if ((hash || R->vocab_hash) &&
			    (!hash || !R->vocab_hash || strcmp(hash, R->vocab_hash)))
				cmd_die(EXIT_DATA,
					"%s: tokenized with another vocabulary than %s (vocab_hash differs)",
					in->name, R->in[0].name);
			free(hash);
		}
		if (!mtl_mp_as_int(mtl_mp_get(&hdr, "max_length"), &v) && v > R->max_length)
			R->max_length = v;
		if (!mtl_mp_as_int(mtl_mp_get(&hdr, "pad_id"), &v))
			R->pad_id = v;
	}
}

/*
 * Reads the next example of input i into ex (1), or 0 at its end.  Other
 * record types (stats) pass by.  Dies on bad input.
 */
static int next_example(struct run *R, int i, struct mtl_example *ex)
{
	struct input *in = &R->in[i];
	msgpack_object rec;
	struct mtl_err err;
	int rc;

	while ((rc = mtl_mp_read(in->r, &rec, &err)) > 0) {
		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example"))
			continue;
		if (mtl_example_parse(ex, &rec, R->ts, &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", in->name,
				mtl_mp_reader_record(in->r), err.msg);
		if (R->labelled_only && !ex->labelled) {
			mtl_example_release(ex);
			continue;
		}
		if (R->stats)
			mtl_census_add(&R->census, ex, ex->labelled);
		mtl_example_strip(ex); /* batches need ids and labels only */
		return 1;
	}
	if (rc < 0)
		die_err(&err);
	return 0;
}

/* An upstream that gave no examples failed: no batches from it. */
static void no_examples(const struct run *R)
{
	cmd_die(EXIT_DATA, "no %sexamples in the input",
		R->labelled_only ? "labelled " : "");
}

static void write_batch(struct run *R, const struct mtl_example *const *ex,
			int n, uint64_t mask, int epoch)
{
	struct mtl_batch b;
	struct mtl_err err;

	if (mtl_batch_make(&b, ex, n, R->ts, NULL, mask, (int32_t)R->pad_id, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	b.epoch = epoch;
	b.index = R->index++;
	mtl_batch_pack(mtl_mp_pk(R->w), &b, R->ts);
	mtl_batch_release(&b);
	if (mtl_mp_end(R->w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

static void write_header(struct run *R, int argc, char **argv, long examples,
			 long total)
{
	const struct mtl_plan_header h = {
		R->ts, R->vocab_hash, R->max_length, R->pad_id, R->epochs,
		R->seed, examples, total
	};
	struct mtl_err err;

	if (mtl_plan_write_header(R->w, &R->o, &h, argc, argv, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

/* Loads every example, plans each epoch, writes the batches. */
static void run_in_memory(struct run *R, int argc, char **argv)
{
	struct mtl_example *ex = NULL;
	const struct mtl_example **sel;
	int32_t *len;
	uint64_t *lab;
	size_t n = 0, cap = 0;
	struct mtl_plan plan = { 0 };
	struct mtl_rng rng, rng0;
	struct mtl_err err;
	long total = 0;

	for (int i = 0; i < R->n_in; i++) {
		for (;;) {
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				if (!(ex = realloc(ex, cap * sizeof(*ex))))
					cmd_die(EXIT_DATA, "out of memory");
			}
			if (!next_example(R, i, &ex[n]))
				break;
			n++;
		}
	}
	len = malloc((n ? n : 1) * sizeof(*len));
	lab = malloc((n ? n : 1) * sizeof(*lab));
	if (!len || !lab)
		cmd_die(EXIT_DATA, "out of memory");
	for (size_t i = 0; i < n; i++) {
		len[i] = ex[i].len;
		lab[i] = ex[i].labelled;
	}
	/* plan every epoch once to count the batches for the header, then
	 * again from the same seed while writing */
	mtl_rng_init(&rng0, R->seed);
	rng = rng0;
	for (int e = 1; e <= R->epochs; e++) {
		if (mtl_plan_epoch(&plan, len, lab, n, e, &R->o, &rng, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		total += (long)plan.n_batch;
	}
	if (!n)
		no_examples(R);
	write_header(R, argc, argv, (long)n, total);
	rng = rng0;
	sel = malloc((n ? n : 1) * sizeof(*sel));
	for (int e = 1; e <= R->epochs; e++) {
		uint64_t mask = mtl_plan_active_mask(&R->o, e);

		mtl_plan_epoch(&plan, len, lab, n, e, &R->o, &rng, &err);
		for (size_t b = 0; b < plan.n_batch; b++) {
			const struct mtl_plan_batch *pb = &plan.batch[b];
			for (size_t k = 0; k < pb->n; k++)
				sel[k] = &ex[plan.order[pb->start + k]];
			write_batch(R, sel, (int)pb->n,
				    pb->task >= 0 ? mask & (1ull << pb->task) : mask, e);
		}
	}
	mtl_plan_release(&plan);
	for (size_t i = 0; i < n; i++)
		mtl_example_release(&ex[i]);
	free(ex);
	free(sel);
	free(len);
	free(lab);
}

static int is_regular(const struct input *in)
{
	struct stat st;

	return in->f != stdin && !fstat(fileno(in->f), &st) && S_ISREG(st.st_mode);
}

/* Reopens input i at its first example (for the next epoch). */
static void rewind_input(struct run *R, int i)
{
	struct input *in = &R->in[i];
	msgpack_object hdr;
	struct mtl_err err;

	mtl_mp_reader_free(in->r);
	rewind(in->f);
	in->r = mtl_mp_reader_new(in->f, in->name);
	if (!in->r || mtl_mp_read_header(in->r, "examples", &hdr, &err))
		cmd_die(EXIT_DATA, "%s: cannot read again", in->name);
}

/* Counts examples of regular-file inputs (for total_batches), or -1. */
static long count_examples(struct run *R)
{
	long n = 0;
	int stats = R->stats;

	for (int i = 0; i < R->n_in; i++)
		if (!is_regular(&R->in[i]))
			return -1;
	R->stats = 0;
	for (int i = 0; i < R->n_in; i++) {
		struct mtl_example ex;
		while (next_example(R, i, &ex)) {
			mtl_example_release(&ex);
			n++;
		}
		rewind_input(R, i);
	}
	R->stats = stats;
	return n;
}

/* Writes batch[0..nb) as one batch and releases the examples. */
static void flush(struct run *R, struct mtl_example *batch,
		  const struct mtl_example **sel, long nb, uint64_t mask, int epoch)
{
	for (long i = 0; i < nb; i++)
		sel[i] = &batch[i];
	write_batch(R, sel, (int)nb, mask, epoch);
	for (long i = 0; i < nb; i++)
		mtl_example_release(&batch[i]);
}

/*
 * Streams: a buffer of shuffle_buffer examples, each batch drawn from it
 * at random and refilled from the inputs.  Memory stays bounded.
 */
static void run_streaming(struct run *R, int argc, char **argv)
{
	/* without --shuffle a buffer of one keeps the input order */
	long cap = R->o.shuffle ? R->shuffle_buffer : 1, n_ex = -1, total = -1;
	struct mtl_example *buf = calloc((size_t)cap, sizeof(*buf));
	struct mtl_example *batch = calloc((size_t)(R->o.batch_size > 0 ? R->o.batch_size : 1) +
					   (size_t)cap, sizeof(*batch));
	const struct mtl_example **sel = calloc((size_t)cap + (size_t)R->o.batch_size + 1, sizeof(*sel));
	struct mtl_rng rng;
	long seen = 0; /* examples drawn from the buffer */

	if (!buf || !batch || !sel)
		cmd_die(EXIT_DATA, "out of memory");
	if (R->o.max_tokens == 0 && (n_ex = count_examples(R)) >= 0)
		total = R->epochs * (R->o.drop_last ? n_ex / R->o.batch_size :
				     (n_ex + R->o.batch_size - 1) / R->o.batch_size);
	if (n_ex == 0)
		no_examples(R);
	write_header(R, argc, argv, n_ex, total);
	mtl_rng_init(&rng, R->seed);
	for (int e = 1; e <= R->epochs; e++) {
		uint64_t mask = mtl_plan_active_mask(&R->o, e);
		long have = 0, nb = 0;
		int32_t longest = 0;
		int cur = 0, eof = 0;

		if (e > 1) {
			for (int i = 0; i < R->n_in; i++)
				rewind_input(R, i);
			R->stats = 0; /* the census counts one pass */
		}
		for (;;) {
			long k;

			while (!eof && have < cap) {
				while (cur < R->n_in && !next_example(R, cur, &buf[have]))
					cur++;
				if (cur == R->n_in)
					eof = 1;
				else
					have++;
			}
			if (have == 0)
				break;
			seen++;
			k = (long)mtl_rng_below(&rng, (uint64_t)have);
			if (R->o.max_tokens > 0) {
				int32_t l = buf[k].len, m = l > longest ? l : longest;
				if (l > R->o.max_tokens)
					cmd_die(EXIT_DATA, "an example of %d tokens exceeds --max-tokens %ld",
						(int)l, R->o.max_tokens);
				if ((long)m * (nb + 1) > R->o.max_tokens) {
					flush(R, batch, sel, nb, mask, e);
					nb = 0;
					m = l;
				}
				longest = m;
			}
			batch[nb++] = buf[k];
			buf[k] = buf[--have];
			if (R->o.max_tokens == 0 && nb == R->o.batch_size) {
				flush(R, batch, sel, nb, mask, e);
				nb = 0;
			}
		}
		if (nb && !(R->o.drop_last && R->o.max_tokens == 0))
			flush(R, batch, sel, nb, mask, e);
		else
			for (long i = 0; i < nb; i++)
				mtl_example_release(&batch[i]);
	}
	if (!seen)
		no_examples(R);
	free(buf);
	free(batch);
	free(sel);
}

/* --sampling S into the plan's options. */
static void opt_sampling(void *v, const char *arg)
{
	struct mtl_err err;

	if (mtl_plan_parse_sampling(v, arg, &err))
		cmd_usage_error(usage, "%s", err.msg);
}

/* --start TASK=EPOCH, kept until the input's tasks are known. */
struct starts {
	char *s[64];
	int n;
};

static void opt_start(void *v, const char *arg)
{
	struct starts *st = v;

	if (st->n == 64)
		cmd_usage_error(usage, "too many --start options");
	st->s[st->n++] = (char *)arg; /* a string of argv: writable */
}

int main(int argc, char **argv)
{
	struct run R = { .epochs = 1, .o = { .batch_size = 32 } };
	struct starts starts = { .n = 0 };
	int force = 0, mix_emb = 0;
	const struct cmd_opt opts[] = {
		CMD_OPT_INT('b', "batch-size", &R.o.batch_size, 1, 1 << 20),
		CMD_OPT_LONG(0, "max-tokens", &R.o.max_tokens, 1, 1L << 30),
		CMD_OPT_MOVED('m', "--max-tokens"),
		CMD_OPT_FLAG(0, "bucket", &R.o.bucket),
		CMD_OPT_FLAG(0, "shuffle", &R.o.shuffle),
		CMD_OPT_U64(0, "seed", &R.seed, 0, LONG_MAX),
		CMD_OPT_INT('e', "epochs", &R.epochs, 1, 1 << 20),
		CMD_OPT_FLAG(0, "drop-last", &R.o.drop_last),
		CMD_OPT_CALL(0, "sampling", &R.o, opt_sampling),
		CMD_OPT_CALL(0, "start", &starts, opt_start),
		CMD_OPT_FLAG(0, "mix-embedding", &mix_emb),
		CMD_OPT_FLAG(0, "labelled-only", &R.labelled_only),
		CMD_OPT_LONG(0, "shuffle-buffer", &R.shuffle_buffer, 1, 1L << 30),
		CMD_OPT_FLAG(0, "stats", &R.stats),
		CMD_OPT_FLAG(0, "force", &force),
		CMD_OPT_END
	};

	cmd_name = "mtl-batch";
	optind = cmd_parse_options(usage, opts, argc, argv);
	if (R.shuffle_buffer && (R.o.sampling != MTL_PLAN_MIXED || R.o.bucket))
		cmd_usage_error(usage, "--shuffle-buffer streams mixed batches: no --sampling or --bucket");
	cmd_refuse_tty(force);
	R.n_in = argc > optind ? argc - optind : 1;
	R.in = calloc((size_t)R.n_in, sizeof(*R.in));
	for (int i = 0; i < R.n_in; i++)
		R.in[i].path = argc > optind ? argv[optind + i] : NULL;
	open_inputs(&R);
	if (R.shuffle_buffer && R.epochs > 1)
		for (int i = 0; i < R.n_in; i++)
			if (!is_regular(&R.in[i]))
				cmd_die(EXIT_USAGE, "--shuffle-buffer with --epochs > 1 reads the input again: give files, not a pipe");
	R.o.n_tasks = R.ts->n;
	for (int t = 0; t < R.ts->n; t++) {
		R.start[t] = 1;
		if (!mix_emb && R.ts->task[t].kind == MTL_TASK_EMBEDDING)
			R.o.apart |= 1ull << t;
	}
	for (int i = 0; i < starts.n; i++) {
		char *eq = strchr(starts.s[i], '=');
		int t;
		if (!eq)
			cmd_usage_error(usage, "--start needs TASK=EPOCH, not '%s'", starts.s[i]);
		*eq = 0;
		if ((t = mtl_task_find(R.ts, starts.s[i])) < 0)
			cmd_die(EXIT_USAGE, "--start: no task '%s' in the input", starts.s[i]);
		R.start[t] = (int)cmd_parse_long(usage, "--start", eq + 1, 1, 1 << 20);
	}
	R.o.start_epoch = R.start;
	if (R.stats && mtl_census_init(&R.census, R.ts))
		cmd_die(EXIT_DATA, "out of memory");
	R.w = mtl_mp_writer_new(stdout, "standard output");
	if (R.shuffle_buffer)
		run_streaming(&R, argc, argv);
	else
		run_in_memory(&R, argc, argv);
	cmd_end_stream(R.w);
	if (R.stats) {
		mtl_census_print(&R.census, R.ts, stderr);
		mtl_census_release(&R.census);
	}
	if (!cmd_quiet)
		cmd_note("%lld batches", (long long)R.index);
	for (int i = 0; i < R.n_in; i++) {
		mtl_mp_reader_free(R.in[i].r);
		if (R.in[i].f != stdin)
			fclose(R.in[i].f);
	}
	mtl_mp_writer_free(R.w);
	mtl_task_free(R.ts);
	free(R.vocab_hash);
	free(R.in);
	return cmd_finish(0);
}
