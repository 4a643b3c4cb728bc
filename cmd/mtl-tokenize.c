/*
 * mtl-tokenize - turns text (JSON lines, CoNLL, TSV, CSV or plain lines)
 * into an examples stream: WordPiece ids, word ids and per-task labels aligned to
 * tokens (docs/tokenize.md).
 *
 * The readers, label look-up and alignment live in lib/data/input.c, the
 * example and stats records in lib/data/data.c; this is options, the header,
 * the loop and exit codes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "data.h"
#include "input.h"
#include "mp.h"
#include "task.h"
#include "tok.h"

static const char usage[] =
	"usage: mtl-tokenize --model DIR [options] [FILE...]\n"
	"\n"
	"Tokenizes text (the FILEs, in turn, or standard input) with the model's WordPiece\n"
	"vocabulary and writes an examples stream with labels for the tasks of\n"
	"DIR/tasks.json.\n"
	"\n"
	"  -m, --model DIR        vocab.txt/tokenizer.json, tokenizer_config.json,\n"
	"                         config.json and tasks.json (required)\n"
	"  -T, --tasks FILE       the task spec (default: DIR/tasks.json if present)\n"
	"  -f, --format F         jsonl, conll, tsv, csv or text (one text a line)\n"
	"                         (default: from the file name: .jsonl, .conll/.bio/\n"
	"                         .iob, .tsv, .csv, .txt; else jsonl)\n"
	"  -l, --max-length N     truncate to N tokens (default: the model's); a\n"
	"                         pair (\"text_b\") is cut longest first\n"
	"      --task NAME        the token task CoNLL tags belong to (default:\n"
	"                         the only token task)\n"
	"      --text-field F     the text field or column (default: text)\n"
	"      --label-field T=F  task T's labels are in field or column F\n"
	"                         (default: the task's name; repeatable)\n"
	"      --strict           unknown fields and columns are errors\n"
	"      --unknown-label A  error (default) or skip: an unknown label is\n"
	"                         then treated as absent\n"
	"      --skip-bad         skip bad records (counted) instead of failing\n"
	"      --replace-invalid  replace invalid UTF-8 with U+FFFD\n"
	"      --force            write the stream even to a terminal\n"
	"  -q, --quiet            no summary on stderr\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

static void end_record(struct mtl_mp_writer *w)
{
	struct mtl_err err;

	if (mtl_mp_end(w, &err) < 0)
		cmd_die(EXIT_IO, "%s", err.msg);
}

static void write_header(struct mtl_mp_writer *w, const struct mtl_tok *tok,
			 const struct mtl_tasks *ts, long max_len, int argc,
			 char **argv)
{
	msgpack_packer *pk = mtl_mp_pk(w);
	int32_t pad = mtl_tok_pad_id(tok);
	char hex[17];

	mtl_mp_pack_header(pk, "examples", "mtl-tokenize", argc, argv, 5 + (pad >= 0));
	mtl_mp_pack_str(pk, "tasks");
	mtl_data_pack_tasks(pk, ts);
	snprintf(hex, sizeof(hex), "%016" PRIx64, mtl_tok_vocab_hash(tok));
	mtl_mp_pack_str(pk, "vocab_hash");
	mtl_mp_pack_str(pk, hex);
	mtl_mp_pack_str(pk, "max_length");
	msgpack_pack_int64(pk, max_len);
	mtl_mp_pack_str(pk, "vocab_size");
	msgpack_pack_int32(pk, mtl_tok_vocab_size(tok));
	mtl_mp_pack_str(pk, "ignore_index");
	msgpack_pack_int32(pk, MTL_IGNORE);
	if (pad >= 0) {
		mtl_mp_pack_str(pk, "pad_id");
		msgpack_pack_int32(pk, pad);
	}
	end_record(w);
}

static void print_summary(const struct mtl_census *s, const struct mtl_tasks *ts)
{
	cmd_note("%ld examples, %ld tokens, %ld truncated (%ld words lost), "
		 "unk rate %.4f%%", s->examples, s->tokens, s->truncated,
		 s->words_lost, 100 * mtl_census_unk_rate(s));
	cmd_note("labelled for no task %ld, one %ld, several %ld; %ld bad records "
		 "skipped, %ld unknown labels skipped, %ld word labels lost",
		 s->none, s->one, s->several, s->bad, s->unknown_labels_skipped,
		 s->labels_lost);
	for (int k = 0; ts && k < ts->n; k++) {
		char buf[1024] = ""; /* an embedding task has no labels */
		size_t o = 0;
		for (int i = 0; i < ts->task[k].n_labels && o < sizeof(buf) - 1; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s=%ld",
					      ts->task[k].labels[i], s->label_count[k][i]);
		cmd_note("task %s (%s): %ld labelled;%s", ts->task[k].name,
			 mtl_task_kind_name(ts->task[k].kind), s->labelled[k], buf);
	}
}

/*
 * Reads, encodes and writes every record.  A bad record stops the run
 * (EXIT_DATA) or, with --skip-bad, is reported (the first ten) and
 * counted.  Returns an exit code.
 */
static int run(struct mtl_input *in, const struct mtl_tok *tok,
	       const struct mtl_tasks *ts, size_t max_len, int skip_bad,
	       struct mtl_census *census, struct mtl_mp_writer *w,
	       const char *name)
{
	struct mtl_input_item it;
	struct mtl_example ex;
	struct mtl_err err;
	int rc;

	while ((rc = mtl_input_read(in, &it, &err)) != 0) {
		if (mtl_input_warning(in))
			cmd_warn("%s: %s", name, mtl_input_warning(in));
		if (rc > 0)
			rc = mtl_input_encode(in, &it, tok, max_len, &ex, census, &err);
		if (rc == 0) {
			mtl_example_pack(mtl_mp_pk(w), &ex, ts);
			end_record(w);
			mtl_census_add(census, &ex, mtl_example_tasks(&ex));
			mtl_example_release(&ex);
			continue;
		}
		if (rc == MTL_ERR_FORMAT && skip_bad) {
			if (census->bad++ < 10)
				cmd_warn("%s: %s (skipped)", name, err.msg);
			continue;
		}
		if (rc == MTL_ERR_NOMEM)
			cmd_die(EXIT_DATA, "%s", err.msg);
		fprintf(stderr, "%s: %s: %s\n", cmd_name, name, err.msg);
		return rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA;
	}
	return 0;
}

/* The tokenizer of the model directory (dies on error). */
static struct mtl_tok *load_tokenizer(const char *model)
{
	struct mtl_tok *tok;
	struct mtl_err err;
	int rc = mtl_tok_load(&tok, model, &err);

	if (rc < 0)
		cmd_die(cmd_status(rc), "%s", err.msg);
	return tok;
}

/* --tasks, else the model's tasks.json if it has one, else NULL (dies on
 * error, freeing tok). */
static struct mtl_tasks *load_tasks(const char *model, const char *tasks_path,
				    struct mtl_tok *tok)
{
	struct mtl_tasks *ts = NULL;
	struct mtl_err err;
	char path[4096];
	int rc;

	if (!tasks_path) {
		snprintf(path, sizeof(path), "%s/tasks.json", model);
		if (access(path, F_OK) == 0)
			tasks_path = path;
	}
	rc = tasks_path ? mtl_task_load(&ts, tasks_path, &err) : 0;
	if (rc < 0) {
		mtl_tok_free(tok);
		cmd_die(cmd_status(rc), "%s", err.msg);
	}
	if (ts && ts->n > 64)
		cmd_die(EXIT_DATA, "%s: more than %d tasks", tasks_path, 64);
	return ts;
}

/* field[k] = FIELD for each --label-field TASK=FIELD in arg[0..n). */
static void label_fields(const char **field, const char **arg, int n,
			 const struct mtl_tasks *ts)
{
	for (int i = 0; i < n; i++) {
		char *eq = strchr(arg[i], '=');
		int k;

		*eq = 0;
		if ((k = mtl_task_find(ts, arg[i])) < 0)
			cmd_usage_error(usage, "--label-field: no task '%s'%s", arg[i],
					cmd_task_hint(ts, arg[i]));
		field[k] = eq + 1;
	}
}

/*
 * Each input (the arguments from optind, or standard input) in turn into
 * the one stream w; with several, ids from line numbers are prefixed by
 * the file name to stay unique.  Returns an exit code.
 */
static int tokenize_all(int argc, char **argv, struct mtl_input_opts *o,
			int format_given, const char *task_name,
			const struct mtl_tok *tok, const struct mtl_tasks *ts,
			size_t max_len, int skip_bad, struct mtl_census *census,
			struct mtl_mp_writer *w)
{
	int rc = 0;

	for (int i = optind; rc == 0 && i < (argc > optind ? argc : optind + 1); i++) {
		const char *file = i < argc ? argv[i] : NULL, *name;
		struct mtl_input *in = NULL;
		struct mtl_err err;
		FILE *f;

		if (!format_given)
			o->format = MTL_INPUT_JSONL;
		if (!format_given && file)
			mtl_input_format_parse(&o->format, file, 1);
		if (mtl_input_tag_task(&o->conll_task, ts, task_name, o->format, &err) < 0)
			cmd_usage_error(usage, "%s%s", err.msg, cmd_task_hint(ts, task_name));
		f = cmd_open_in(file, &name);
		o->id_prefix = argc - optind > 1 ? name : NULL;
		if (mtl_input_open(&in, f, ts, o, &err) < 0) {
			fprintf(stderr, "%s: %s: %s\n", cmd_name, name, err.msg);
			rc = EXIT_DATA;
		} else {
			if (mtl_input_warning(in))
				cmd_warn("%s: %s", name, mtl_input_warning(in));
			rc = run(in, tok, ts, max_len, skip_bad, census, w, name);
		}
		mtl_input_free(in);
		if (f != stdin)
			fclose(f);
	}
	return rc;
}

int main(int argc, char **argv)
{
	enum { O_TEXT = 256, O_UNK, O_SKIP, O_REPL, O_TASK, O_LABEL, O_STRICT, O_FORCE };
	static const struct cmd_moved moved[] = { { 't', "--task" }, { 0, NULL } };
	static const struct option lopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "tasks", required_argument, NULL, 'T' },
		{ "format", required_argument, NULL, 'f' },
		{ "max-length", required_argument, NULL, 'l' },
		{ "task", required_argument, NULL, O_TASK },
		{ "text-field", required_argument, NULL, O_TEXT },
		{ "label-field", required_argument, NULL, O_LABEL },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "force", no_argument, NULL, O_FORCE },
		{ "unknown-label", required_argument, NULL, O_UNK },
		{ "skip-bad", no_argument, NULL, O_SKIP },
		{ "replace-invalid", no_argument, NULL, O_REPL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct mtl_input_opts o = { .format = MTL_INPUT_JSONL, .text_field = "text" };
	const char *model = NULL, *tasks_path = NULL, *task_name = NULL;
	struct mtl_tok *tok;
	struct mtl_tasks *ts;
	struct mtl_mp_writer *w;
	struct mtl_census census;
	long max_len = -1;
	const char *label_arg[64], *label_field[64] = { NULL };
	int opt, rc, skip_bad = 0, format_given = 0, n_label = 0, force = 0;

	cmd_name = "mtl-tokenize";
	while ((opt = cmd_getopt(argc, argv, "m:T:f:l:qhV", lopts, usage, moved)) != -1) {
		switch (opt) {
		case 'm': model = optarg; break;
		case 'T': tasks_path = optarg; break;
		case 'f':
			if (mtl_input_format_parse(&o.format, optarg, 0)) {
				static const char *const formats[] = { "jsonl", "conll", "tsv", "csv", "text" };
				cmd_usage_error(usage, "unknown format '%s'%s", optarg,
						cmd_hint(optarg, formats, 5));
			}
			format_given = 1;
			break;
		case 'l':
			max_len = cmd_parse_long(usage, "--max-length", optarg, 2, 1L << 24);
			break;
		case O_TASK: task_name = optarg; break;
		case O_TEXT: o.text_field = optarg; break;
		case O_LABEL:
			if (!strchr(optarg, '=') || n_label == 64)
				cmd_usage_error(usage, "--label-field takes TASK=FIELD, not '%s'", optarg);
			label_arg[n_label++] = optarg;
			break;
		case O_STRICT: o.strict = 1; break;
		case O_FORCE: force = 1; break;
		case O_UNK:
			if (!strcmp(optarg, "skip"))
				o.skip_unknown = 1;
			else if (strcmp(optarg, "error"))
				cmd_usage_error(usage, "--unknown-label is error or skip");
			break;
		case O_SKIP: skip_bad = 1; break;
		case O_REPL: o.replace_invalid = 1; break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (!model)
		cmd_usage_error(usage, "--model is required");
	cmd_refuse_tty(force);

	tok = load_tokenizer(model);
	ts = load_tasks(model, tasks_path, tok);
	label_fields(label_field, label_arg, n_label, ts);
	o.label_field = label_field;
	if (max_len < 0)
		max_len = mtl_tok_max_length(tok);
	if (mtl_census_init(&census, ts))
		cmd_die(EXIT_DATA, "out of memory");

	if (!(w = mtl_mp_writer_new(stdout, "standard output")))
		cmd_die(EXIT_DATA, "out of memory");
	write_header(w, tok, ts, max_len, argc, argv);
	rc = tokenize_all(argc, argv, &o, format_given, task_name, tok, ts,
			  (size_t)max_len, skip_bad, &census, w);
	if (rc == 0) {
		mtl_census_pack(mtl_mp_pk(w), &census, ts);
		end_record(w);
		cmd_end_stream(w);
		print_summary(&census, ts);
		if (census.no_tokens)
			cmd_warn("%ld text%s gave no tokens (empty, blank or only dropped "
				 "characters): each is [CLS] [SEP], as Hugging Face gives it",
				 census.no_tokens, census.no_tokens == 1 ? "" : "s");
	}
	mtl_mp_writer_free(w);
	mtl_census_release(&census);
	mtl_task_free(ts);
	mtl_tok_free(tok);
	return cmd_finish(rc);
}
