/*
 * mtl-dump - shows any mtl stream as JSON lines, packs JSON lines back
 * into a stream (--pack), and writes embeddings as .npy or TSV (lib/io/vecfile.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "vecfile.h"
#include "mp.h"

static const char usage[] =
	"usage: mtl-dump [options] [FILE]\n"
	"       mtl-dump --pack [FILE]\n"
	"       mtl-dump --npy OUT.npy [FILE] >IDS.txt\n"
	"       mtl-dump --tsv [FILE]\n"
	"\n"
	"Prints an mtl msgpack stream (FILE or standard input) as JSON lines,\n"
	"one record per line; --pack turns such JSON lines back into a stream;\n"
	"--npy and --tsv write the vectors of an embeddings stream.\n"
	"\n"
	"  -n, --head N     only the first N records after the header\n"
	"  -t, --type T     only records of type T (repeatable; the header is\n"
	"                   left out unless T is 'header')\n"
	"  -s, --summary    the header, pretty-printed, and record counts per type\n"
	"  -p, --pack       read JSON lines, write a msgpack stream\n"
	"      --force      --pack: write the stream even to a terminal\n"
	"      --npy OUT    the embeddings as a float32 NumPy matrix in OUT (a\n"
	"                   file), their ids one per line on standard output\n"
	"      --tsv        the embeddings as TSV: the id, then the values\n"
	"  -q, --quiet      no notes on stderr\n"
	"  -h, --help       this text\n"
	"  -V, --version    the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

#define MAX_TYPES 64

struct counts {
	char *name[MAX_TYPES];
	long n[MAX_TYPES];
	int len;
	long other;
};

static void count_type(struct counts *c, const msgpack_object *t)
{
	for (int i = 0; i < c->len; i++)
		if (strlen(c->name[i]) == t->via.str.size &&
		    !memcmp(c->name[i], t->via.str.ptr, t->via.str.size)) {
			c->n[i]++;
			return;
		}
	if (c->len == MAX_TYPES || !(c->name[c->len] = strndup(t->via.str.ptr, t->via.str.size))) {
		c->other++;
		return;
	}
	c->n[c->len++] = 1;
}

static void print_summary(const msgpack_object *hdr, const struct counts *c,
			  long records)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	json_t *j;

	mtl_mp_to_json(m, hdr, NULL);
	fclose(m);
	j = json_loads(text, 0, NULL);
	fputs("header:\n", stdout);
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	printf("\nrecords: %ld\n", records);
	for (int i = 0; i < c->len; i++)
		printf("  %-16s %ld\n", c->name[i], c->n[i]);
	if (c->other)
		printf("  %-16s %ld\n", "(other types)", c->other);
	json_decref(j);
	free(text);
}

static int wanted(char **types, int n_types, const msgpack_object *t)
{
	if (!n_types)
		return 1;
	for (int i = 0; i < n_types; i++)
		if (mtl_mp_is_str(t, types[i]))
			return 1;
	return 0;
}

static int dump(FILE *in, const char *name, long head, char **types,
		int n_types, int summary)
{
	struct mtl_mp_reader *r = mtl_mp_reader_new(in, name);
	struct counts c = { 0 };
	msgpack_object hdr, rec;
	struct mtl_err err;
	long shown = 0, records = 1;
	int rc;

	if (!r)
		cmd_die(EXIT_DATA, "out of memory");
	mtl_mp_reader_accept_old(r);
	if (mtl_mp_read_header(r, NULL, &hdr, &err)) {
		fprintf(stderr, "%s: %s\n", cmd_name, err.msg);
		mtl_mp_reader_free(r);
		return EXIT_DATA;
	}
	if (summary) {
		/* keep the header: the reader reuses its memory on the next read */
		msgpack_zone *z = msgpack_zone_new(4096);
		msgpack_object h;
		msgpack_sbuffer sb;
		msgpack_packer pk;
		size_t off = 0;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_object(&pk, hdr);
		msgpack_unpack(sb.data, sb.size, &off, z, &h);
		while ((rc = mtl_mp_read(r, &rec, &err)) > 0) {
			records++;
			count_type(&c, mtl_mp_get(&rec, "type"));
		}
		if (rc == 0)
			print_summary(&h, &c, records);
		msgpack_sbuffer_destroy(&sb);
		msgpack_zone_free(z);
		for (int i = 0; i < c.len; i++)
			free(c.name[i]);
	} else {
		rec = hdr;
		rc = 1;
		do {
			if (!wanted(types, n_types, mtl_mp_get(&rec, "type")))
				continue;
			if (mtl_mp_to_json(stdout, &rec, &err)) {
				fputc('\n', stdout);
				rc = mtl_mp_reader_fail(r, &err, MTL_ERR_FORMAT, "%s", err.msg);
				break;
			}
			fputc('\n', stdout);
			if (fflush(stdout))
				break;
			if (mtl_mp_reader_record(r) > 1)
				shown++;
		} while ((head < 0 || shown < head) &&
			 (rc = mtl_mp_read(r, &rec, &err)) > 0);
	}
	if (rc == 0 && !mtl_mp_reader_ended(r))
		cmd_warn("%s: no end record after %ld records (format 1.0): it may be incomplete",
			 name, mtl_mp_reader_record(r));
	mtl_mp_reader_free(r);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", cmd_name, err.msg);
		return EXIT_DATA;
	}
	return 0;
}

static int pack(FILE *in, const char *name)
{
	struct mtl_mp_writer *w = mtl_mp_writer_new(stdout, "standard output");
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked unp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	int rc = 0, ended = 0;

	if (!w)
		cmd_die(EXIT_DATA, "out of memory");
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&unp);
	while ((len = getline(&line, &cap, in)) >= 0) {
		struct mtl_err err;
		json_error_t jerr;
		json_t *j;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
		if (!j) {
			fprintf(stderr, "%s: %s: line %ld: column %d: %s\n", cmd_name,
				name, lineno, jerr.column, jerr.text);
			rc = EXIT_DATA;
			break;
		}
		msgpack_sbuffer_clear(&sb);
		mtl_mp_from_json(&pk, j);
		if (msgpack_unpack_next(&unp, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
		    mtl_mp_check_record(&unp.data, lineno == 1, &err)) {
			fprintf(stderr, "%s: %s: line %ld: %s\n", cmd_name, name, lineno,
				err.msg);
			json_decref(j);
			rc = EXIT_DATA;
			break;
		}
		if (ended || (lineno > 1 && mtl_mp_is_str(mtl_mp_get(&unp.data, "type"), "end"))) {
			/* the end record is written anew from what was packed,
			 * so that an edited dump packs back into a whole stream */
			json_decref(j);
			if (!ended++)
				continue;
			fprintf(stderr, "%s: %s: line %ld: a record after the end record\n",
				cmd_name, name, lineno);
			rc = EXIT_DATA;
			break;
		}
		mtl_mp_from_json(mtl_mp_pk(w), j);
		json_decref(j);
		if ((rc = mtl_mp_end(w, &err))) {
			if (rc == MTL_ERR_IO)
				fprintf(stderr, "%s: %s\n", cmd_name, err.msg);
			else
				fprintf(stderr, "%s: %s: line %ld: %s\n", cmd_name, name,
					lineno, err.msg);
			rc = rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA;
			break;
		}
	}
	if (!rc && ferror(in)) {
		fprintf(stderr, "%s: %s: read error\n", cmd_name, name);
		rc = EXIT_IO;
	}
	if (!rc && lineno == 0) {
		fprintf(stderr, "%s: %s: empty input, expected JSON lines starting with a header\n",
			cmd_name, name);
		rc = EXIT_DATA;
	}
	if (!rc)
		cmd_end_stream(w);
	free(line);
	msgpack_unpacked_destroy(&unp);
	msgpack_sbuffer_destroy(&sb);
	mtl_mp_writer_free(w);
	return rc;
}

static int known_type(const char *t)
{
	for (size_t i = 0; mtl_mp_record_types[i]; i++)
		if (!strcmp(t, mtl_mp_record_types[i]))
			return 1;
	return 0;
}

static size_t n_known_types(void)
{
	size_t n = 0;

	while (mtl_mp_record_types[n])
		n++;
	return n;
}

/*
 * --npy OUT / --tsv: the vectors of an embeddings (or predictions) stream.
 * Returns an exit code.
 */
static int export(FILE *in, const char *name, const char *npy)
{
	struct mtl_mp_reader *r = mtl_mp_reader_new(in, name);
	struct mtl_vecfile *x = NULL;
	msgpack_object rec;
	struct mtl_err err;
	FILE *out = stdout;
	int rc;

	if (!r)
		cmd_die(EXIT_DATA, "out of memory");
	if ((rc = mtl_mp_read_header(r, NULL, &rec, &err)) == 0 &&
	    !mtl_mp_is_str(mtl_mp_get(&rec, "stream"), "embeddings") &&
	    !mtl_mp_is_str(mtl_mp_get(&rec, "stream"), "predictions"))
		rc = mtl_mp_reader_fail(r, &err, MTL_ERR_FORMAT,
					"not an embeddings stream (make one with mtl-score --embed)");
	if (rc) {
		fprintf(stderr, "%s: %s\n", cmd_name, err.msg);
		mtl_mp_reader_free(r);
		return EXIT_DATA;
	}
	if (npy && !(out = fopen(npy, "wb")))
		cmd_die(EXIT_IO, "cannot create '%s': %s", npy, strerror(errno));
	rc = mtl_vecfile_new(&x, npy ? MTL_VECFILE_NPY : MTL_VECFILE_TSV, out, stdout, &err);
	if (rc < 0 && npy)
		mtl_err_prefix(&err, rc, "'%s'", npy);
	while (rc == 0 && (rc = mtl_mp_read(r, &rec, &err)) > 0)
		if ((rc = mtl_vecfile_add(x, &rec, &err)) < 0 && rc != MTL_ERR_IO)
			mtl_err_prefix(&err, rc, "%s: record %ld", name, mtl_mp_reader_record(r));
	if (rc == 0)
		rc = mtl_vecfile_finish(x, &err);
	if (rc == 0)
		cmd_note("%ld vectors", mtl_vecfile_rows(x));
	mtl_vecfile_free(x);
	mtl_mp_reader_free(r);
	if (npy && fclose(out) && rc == 0)
		rc = mtl_err_set(&err, MTL_ERR_IO, "'%s': write error: %s", npy, strerror(errno));
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", cmd_name, err.msg);
	return rc < 0 ? cmd_status(rc) : 0;
}

int main(int argc, char **argv)
{
	enum { O_FORCE = 256, O_NPY, O_TSV };
	static const struct option opts[] = {
		{ "head", required_argument, NULL, 'n' },
		{ "type", required_argument, NULL, 't' },
		{ "summary", no_argument, NULL, 's' },
		{ "pack", no_argument, NULL, 'p' },
		{ "force", no_argument, NULL, O_FORCE },
		{ "npy", required_argument, NULL, O_NPY },
		{ "tsv", no_argument, NULL, O_TSV },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	char *types[MAX_TYPES];
	const char *npy = NULL;
	int n_types = 0, summary = 0, do_pack = 0, force = 0, tsv = 0, c, rc;
	long head = -1;
	const char *name;
	FILE *in;

	cmd_name = "mtl-dump";
	while ((c = cmd_getopt(argc, argv, "n:t:spqhV", opts, usage, NULL)) != -1) {
		switch (c) {
		case 'n': head = cmd_parse_long(usage, "--head", optarg, 0, LONG_MAX); break;
		case 't':
			if (n_types == MAX_TYPES)
				cmd_usage_error(usage, "too many --type options");
			if (!known_type(optarg))
				cmd_usage_error(usage, "unknown record type '%s'%s", optarg,
						cmd_hint(optarg, mtl_mp_record_types, n_known_types()));
			types[n_types++] = optarg;
			break;
		case O_FORCE: force = 1; break;
		case O_NPY: npy = optarg; break;
		case O_TSV: tsv = 1; break;
		case 's': summary = 1; break;
		case 'p': do_pack = 1; break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (argc - optind > 1)
		cmd_usage_error(usage, "one input at most");
	if (do_pack && (summary || n_types || head >= 0 || npy || tsv))
		cmd_usage_error(usage, "--pack takes no other option");
	if ((npy || tsv) && (summary || n_types || head >= 0 || (npy && tsv)))
		cmd_usage_error(usage, "--npy and --tsv take no other option");
	if (do_pack)
		cmd_refuse_tty(force);
	in = cmd_open_in(optind < argc ? argv[optind] : NULL, &name);
	if (npy || tsv)
		rc = export(in, name, npy);
	else
		rc = do_pack ? pack(in, name) : dump(in, name, head, types, n_types, summary);
	if (in != stdin)
		fclose(in);
	return cmd_finish(rc);
}
