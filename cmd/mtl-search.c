/*
 * mtl-search - semantic search as a pipeline step: each query embedding
 * against a corpus of embeddings, the k most similar by cosine, as a
 * search stream (lib/heads/embset.h) of (query id, corpus id, rank, score).
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "embeval.h"
#include "embset.h"
#include "mp.h"

static const char usage[] =
	"usage: mtl-search [options] --corpus FILE [QUERIES]\n"
	"\n"
	"Searches the embeddings stream FILE (mtl-score --embed) for each\n"
	"embedding of the QUERIES stream (standard input when absent or -): the\n"
	"k most similar by cosine, best first, equal scores in corpus order.\n"
	"Writes a search stream: one \"hit\" record {query, id, rank, score} per\n"
	"query and rank (mtl-dump shows it).\n"
	"\n"
	"  -c, --corpus FILE   the corpus's embeddings stream (required)\n"
	"  -k, --top K         hits per query (default 10)\n"
	"  -o, --out FILE      write the stream to FILE, not standard output\n"
	"                      (--output FILE too)\n"
	"  -j, --threads N     threads (default 1)\n"
	"      --force         write a stream to a terminal\n"
	"  -q, --quiet         no notes on stderr\n"
	"  -h, --help          this text\n"
	"  -V, --version       the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

/* Reads the embeddings stream at path (NULL or "-": stdin) into s. */
static void load(struct mtl_embset *s, const char *path)
{
	struct mtl_err err;
	int rc = mtl_embset_read_file(s, path, &err);

	if (rc)
		cmd_die(cmd_status(rc), "%s", err.msg);
}

int main(int argc, char **argv)
{
	const char *corpus = NULL, *output = NULL, *qname;
	int k = 10, threads = 1, force = 0, first;
	const struct cmd_opt opts[] = {
		CMD_OPT_STRING('c', "corpus", &corpus),
		CMD_OPT_INT('k', "top", &k, 1, 100000),
		CMD_OPT_STRING('o', "out", &output),
		CMD_OPT_STRING(0, "output", &output),
		CMD_OPT_INT('j', "threads", &threads, 1, 1024),
		CMD_OPT_FLAG(0, "force", &force),
		CMD_OPT_END
	};
	struct mtl_embset q, c;
	struct mtl_mp_writer *w;
	struct mtl_err err;
	float *qx, *cx, *score;
	int32_t *idx;
	FILE *out;

	cmd_name = "mtl-search";
	first = cmd_parse_options(usage, opts, argc, argv);
	if (!corpus)
		cmd_usage_error(usage, "--corpus is required");
	if (argc - first > 1)
		cmd_usage_error(usage, "one queries stream at most");
	qname = first < argc ? argv[first] : NULL;
	if (!output || !strcmp(output, "-"))
		cmd_refuse_tty(force);
	mtl_embset_init(&c);
	mtl_embset_init(&q);
	load(&c, corpus);
	load(&q, qname);
	out = cmd_open_out(output);
	if (c.n && q.n && q.dim != c.dim)
		cmd_die(EXIT_DATA, "%s: queries of dimension %d, but the corpus '%s' has dimension %d",
			qname && strcmp(qname, "-") ? qname : "<stdin>", q.dim, corpus, c.dim);
	if (k > c.n)
		k = (int)c.n;
	qx = mtl_embset_normalized(&q);
	cx = mtl_embset_normalized(&c);
	idx = malloc(sizeof(*idx) * (size_t)(q.n ? q.n : 1) * (size_t)(k ? k : 1));
	score = malloc(sizeof(*score) * (size_t)(q.n ? q.n : 1) * (size_t)(k ? k : 1));
	if (!qx || !cx || !idx || !score || !(w = mtl_mp_writer_new(out, output ? output : "standard output")))
		cmd_die(EXIT_DATA, "out of memory");
	if (q.n && k && mtl_embeval_search(idx, score, qx, q.n, cx, c.n, c.dim, k, -1, threads, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_embset_write_search_header(w, "mtl-search", argc, argv, k, c.dim ? c.dim : q.dim,
					   q.n, c.n, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	for (long i = 0; i < q.n; i++)
		for (int r = 0; r < k; r++)
			if (mtl_embset_write_hit(w, &q, i, &c, idx[(size_t)i * (size_t)k + (size_t)r],
						 r + 1, score[(size_t)i * (size_t)k + (size_t)r], &err))
				cmd_die(EXIT_IO, "%s", err.msg);
	cmd_end_stream(w);
	cmd_note("%ld queries, %ld corpus embeddings, %d hits each", q.n, c.n, k);
	mtl_mp_writer_free(w);
	if (out != stdout && fclose(out))
		cmd_die(EXIT_IO, "cannot write '%s'", output);
	free(qx);
	free(cx);
	free(idx);
	free(score);
	mtl_embset_release(&q);
	mtl_embset_release(&c);
	return cmd_finish(0);
}
