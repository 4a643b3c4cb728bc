/*
 * mtl-report - a report on steps, predictions and embeddings streams:
 * training curves, scores and confusion matrices, entity F1, similarity
 * matrices; as text, markdown, JSON or one HTML file.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "embset.h"
#include "fs.h"
#include "mp.h"
#include "render.h"
#include "report.h"

static const char usage[] =
	"usage: mtl-report [options] [FILE...]\n"
	"\n"
	"Reports on steps (mtl-step), predictions (mtl-score) and embeddings\n"
	"(mtl-score --embed) streams read from the FILEs or standard input:\n"
	"training curves, per-class and entity scores, confusion and cosine\n"
	"similarity matrices.\n"
	"\n"
	"  -f, --format F     text (default), markdown, json or html\n"
	"  -o, --out FILE     write the report to FILE (atomically), not stdout\n"
	"                     (--output FILE too)\n"
	"      --errors [N]   list up to N misclassified examples per task (10)\n"
	"      --strict       entities in strict IOB2 mode (default: conlleval)\n"
	"  -n, --max N        embeddings in the similarity matrix (default 20, at most 1000)\n"
	"\n"
	"Embedding evaluators (docs/evaluators.md), on the embeddings read:\n"
	"      --label-task T  evaluate only task T's labels (default: every task the\n"
	"                     embeddings carry labels of): kNN accuracy, same-label\n"
	"                     retrieval (MRR@10, NDCG@10), k-means V-measure\n"
	"      --knn K        neighbours of the kNN vote (default 10)\n"
	"      --train FILE   labelled training embeddings: kNN and a logistic-\n"
	"                     regression probe against them, not leave-one-out\n"
	"      --no-label-eval  no evaluation of labels\n"
	"      --queries FILE  the queries' embeddings, for --qrels\n"
	"      --qrels FILE   relevance judgements, JSON lines {\"query\", \"doc\",\n"
	"                     \"relevance\"}: MRR@10, NDCG@10, Recall@1/10/100, MAP@100\n"
	"      --pairs FILE   scored pairs, JSON lines {\"a\", \"b\", \"score\"}: Pearson\n"
	"                     and Spearman of their cosine similarity with the score\n"
	"  -j, --threads N    threads of the evaluators (default 1)\n"
	"      --title T      the report's title\n"
	"  -w, --width N      characters of a sparkline (default 40)\n"
	"      --smooth W     html: also draw per-step curves smoothed (moving\n"
	"                     average weight W in [0, 1), as TensorBoard's; default 0)\n"
	"  -q, --quiet        no notes on stderr\n"
	"  -h, --help         this text\n"
	"  -V, --version      the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

static void read_input(struct mtl_report *rep, const char *path)
{
	struct mtl_mp_reader *r;
	struct mtl_err err;
	const char *name;
	FILE *in = cmd_open_in(path, &name);
	int rc;

	if (!(r = mtl_mp_reader_new(in, name)))
		cmd_die(EXIT_DATA, "out of memory");
	rc = mtl_report_read(rep, r, &err);
	mtl_mp_reader_free(r);
	if (in != stdin)
		fclose(in);
	if (rc)
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
}

int main(int argc, char **argv)
{
	enum { O_STRICT = 256, O_ERRORS, O_TITLE, O_SMOOTH, O_LABEL_TASK, O_KNN, O_TRAIN,
	       O_NO_LABEL_EVAL, O_QUERIES, O_QRELS, O_PAIRS };
	static const struct cmd_moved moved[] = { { 'e', "--errors" }, { 't', "--title" },
						  { 0, NULL } };
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "out", required_argument, NULL, 'o' },
		{ "output", required_argument, NULL, 'o' },
		{ "errors", optional_argument, NULL, O_ERRORS },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "max", required_argument, NULL, 'n' },
		{ "title", required_argument, NULL, O_TITLE },
		{ "width", required_argument, NULL, 'w' },
		{ "smooth", required_argument, NULL, O_SMOOTH },
		{ "label-task", required_argument, NULL, O_LABEL_TASK },
		{ "knn", required_argument, NULL, O_KNN },
		{ "train", required_argument, NULL, O_TRAIN },
		{ "no-label-eval", no_argument, NULL, O_NO_LABEL_EVAL },
		{ "queries", required_argument, NULL, O_QUERIES },
		{ "qrels", required_argument, NULL, O_QRELS },
		{ "pairs", required_argument, NULL, O_PAIRS },
		{ "threads", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct mtl_report_opts ro = { .strict = 0, .errors = 0, .max_embeddings = 20,
				      .emb_keep = 1 };
	struct mtl_report_eval_opts eo = { .labels = 1 };
	const char *train = NULL, *queries = NULL, *qrels = NULL, *pairs = NULL;
	struct mtl_embset train_set, query_set;
	struct mtl_render_opts fo;
	const char *output = NULL;
	struct mtl_report *rep;
	struct mtl_err err;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	int c, rc = 0;

	cmd_name = "mtl-report";
	mtl_render_defaults(&fo);
	mtl_embset_labels_defaults(&eo.lab);
	while ((c = cmd_getopt(argc, argv, "f:o:n:w:j:qhV", opts, usage, moved)) != -1) {
		switch (c) {
		case 'f':
			if (mtl_render_format_parse(optarg, &fo.format))
				cmd_usage_error(usage, "unknown format '%s' (text, markdown, json, html)",
						optarg);
			break;
		case 'o': output = optarg; break;
		case O_ERRORS: {
			const char *v = cmd_optional_value(argc, argv);
			ro.errors = v ? (int)cmd_parse_long(usage, "--errors", v, 0, 1000000) : 10;
			break;
		}
		case O_STRICT: ro.strict = 1; break;
		case 'n': ro.max_embeddings = (int)cmd_parse_long(usage, "--max", optarg, 1, 1000); break;
		case O_TITLE: fo.title = optarg; break;
		case 'w': fo.spark_width = (int)cmd_parse_long(usage, "--width", optarg, 1, 1000); break;
		case O_SMOOTH:
			fo.smooth = cmd_parse_double(usage, "--smooth", optarg);
			if (!(fo.smooth >= 0 && fo.smooth < 1))
				cmd_usage_error(usage, "--smooth takes a weight in [0, 1), not '%s'", optarg);
			break;
		case O_LABEL_TASK: eo.task = optarg; break;
		case O_KNN: eo.lab.k = (int)cmd_parse_long(usage, "--knn", optarg, 1, 1000); break;
		case O_TRAIN: train = optarg; break;
		case O_NO_LABEL_EVAL: eo.labels = 0; break;
		case O_QUERIES: queries = optarg; break;
		case O_QRELS: qrels = optarg; break;
		case O_PAIRS: pairs = optarg; break;
		case 'j': eo.lab.threads = (int)cmd_parse_long(usage, "--threads", optarg, 1, 1024); break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (!queries != !qrels)
		cmd_usage_error(usage, "--queries and --qrels go together");
	if (eo.task && !eo.labels)
		cmd_usage_error(usage, "--label-task with --no-label-eval: nothing to do");
	if (train && !eo.labels)
		cmd_usage_error(usage, "--train with --no-label-eval: nothing to do");
	ro.emb_keep = eo.labels || qrels || pairs;
	if (!(rep = mtl_report_new(&ro)))
		cmd_die(EXIT_DATA, "out of memory");
	if (optind == argc)
		read_input(rep, NULL);
	for (int i = optind; i < argc; i++)
		read_input(rep, argv[i]);
	if (mtl_report_finish(rep, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	mtl_embset_init(&train_set);
	mtl_embset_init(&query_set);
	if ((qrels || pairs || train || eo.task) && !rep->n_emb_streams)
		cmd_die(EXIT_DATA, "the evaluators need an embeddings stream among the inputs (mtl-score --embed)");
	if (train) {
		if ((rc = mtl_embset_read_file(&train_set, train, &err)))
			cmd_die(cmd_status(rc), "%s", err.msg);
		eo.train = &train_set;
	}
	if (qrels) {
		if ((rc = mtl_embset_read_file(&query_set, queries, &err)))
			cmd_die(cmd_status(rc), "%s", err.msg);
		eo.queries = &query_set;
		eo.qrels = cmd_open_in(qrels, &eo.qrels_name);
	}
	if (pairs)
		eo.pairs = cmd_open_in(pairs, &eo.pairs_name);
	if ((rc = mtl_report_evaluate(rep, &eo, &err)))
		cmd_die(cmd_status(rc), "%s", err.msg);
	if (eo.qrels && eo.qrels != stdin)
		fclose(eo.qrels);
	if (eo.pairs && eo.pairs != stdin)
		fclose(eo.pairs);
	/* render in memory: -o then replaces the file whole, or not at all */
	if (!(m = open_memstream(&buf, &len)))
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_render(m, rep, &fo, &err) || fclose(m))
		cmd_die(EXIT_DATA, "%s", "out of memory");
	if (output && strcmp(output, "-")) {
		if (mtl_fs_write(output, buf, len, &err)) {
			fprintf(stderr, "%s: %s\n", cmd_name, err.msg);
			rc = EXIT_IO;
		}
	} else {
		fwrite(buf, 1, len, stdout);
	}
	free(buf);
	mtl_embset_release(&train_set);
	mtl_embset_release(&query_set);
	mtl_report_free(rep);
	return cmd_finish(rc);
}
