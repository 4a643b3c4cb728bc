/*
 * mtl-init - makes a model directory: a new randomly initialised encoder
 * (--config options) or a copy of a pretrained one (--encoder DIR).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert.h"
#include "common.h"
#include "fs.h"
#include "model.h"

static const char usage[] =
	"usage: mtl-init --out DIR --encoder DIR [--tasks FILE]\n"
	"       mtl-init --out DIR --vocab FILE [--tasks FILE] [--layers N] [--hidden N]\n"
	"                [--heads N] [--intermediate N] [--max-position N] [--seed N]\n"
	"\n"
	"Makes a model directory in Hugging Face BERT layout (config.json,\n"
	"model.safetensors, tokenizer and sentence-transformers files); with\n"
	"--tasks, a multi-task model: tasks.json and new heads (heads.safetensors).\n"
	"\n"
	"  -o, --out DIR           the directory to write (created if needed)\n"
	"  -e, --encoder DIR       start from this pretrained encoder\n"
	"      --vocab FILE        a new encoder over this vocab.txt\n"
	"  -T, --tasks FILE        the task spec (tasks.json); heads drawn from --seed\n"
	"      --layers N          encoder layers (default 2)\n"
	"      --hidden N          hidden size (default 128)\n"
	"      --heads N           attention heads (default 4)\n"
	"      --intermediate N    feed-forward size (default 4 x hidden)\n"
	"      --max-position N    longest input in tokens (default 128)\n"
	"      --pooling P         cls (default) or mean\n"
	"      --seed N            random seed (default 0)\n"
	"      --uncased / --cased lowercase the input (default: uncased)\n"
	"  -q, --quiet             no notes on stderr\n"
	"  -h, --help              this text\n"
	"  -V, --version           the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input, 2 usage error, 3 I/O error.\n";

/* tokenizer_config.json for a new vocabulary. */
static void write_tokenizer_config(const char *dir, int lower, int max_len)
{
	char path[4096];
	struct mtl_err err;
	json_t *j = json_pack("{s:s, s:b, s:i, s:s, s:s, s:s, s:s, s:s}",
			      "tokenizer_class", "BertTokenizer",
			      "do_lower_case", lower, "model_max_length", max_len,
			      "unk_token", "[UNK]", "sep_token", "[SEP]",
			      "pad_token", "[PAD]", "cls_token", "[CLS]",
			      "mask_token", "[MASK]");

	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	if (!j || mtl_fs_write_json(path, j, JSON_SORT_KEYS, &err))
		cmd_die(EXIT_IO, "%s", j ? err.msg : "out of memory");
	json_decref(j);
}

/* Counts the lines of a vocab.txt; dies when it cannot be read. */
static int count_vocab(const char *path, int *pad_id)
{
	FILE *f = fopen(path, "rb");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int count = 0;

	if (!f)
		cmd_die(EXIT_IO, "cannot open '%s': %m", path);
	*pad_id = -1;
	while ((n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (!strcmp(line, "[PAD]") && *pad_id < 0)
			*pad_id = count;
		count++;
	}
	free(line);
	fclose(f);
	if (*pad_id < 0)
		cmd_die(EXIT_DATA, "'%s' has no [PAD] token", path);
	return count;
}

/* Writes the task spec and new heads drawn from seed into the model dir. */
static void add_tasks(const char *dir, const char *tasks, uint64_t seed)
{
	struct mtl_tasks *ts;
	struct mtl_model *m;
	struct mtl_err err;
	char path[4096];

	if (mtl_task_load(&ts, tasks, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/tasks.json", dir);
	if (mtl_task_save(ts, path, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	mtl_task_free(ts);
	snprintf(path, sizeof(path), "%s/heads.safetensors", dir);
	unlink(path); /* new heads, not a previous model's */
	if (mtl_model_load(&m, dir, &err) || mtl_model_heads(m, seed, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_heads_save(m->heads, path, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	cmd_note("added %d tasks with new heads (%zu parameters)", m->tasks->n,
		 m->heads->n_params);
	mtl_model_free(m);
}

int main(int argc, char **argv)
{
	enum { O_VOCAB = 256, O_LAYERS, O_HIDDEN, O_HEADS, O_INTER, O_MAXPOS, O_SEED,
	       O_POOLING, O_UNCASED, O_CASED };
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "encoder", required_argument, NULL, 'e' },
		{ "vocab", required_argument, NULL, O_VOCAB },
		{ "tasks", required_argument, NULL, 'T' },
		{ "layers", required_argument, NULL, O_LAYERS },
		{ "hidden", required_argument, NULL, O_HIDDEN },
		{ "heads", required_argument, NULL, O_HEADS },
		{ "intermediate", required_argument, NULL, O_INTER },
		{ "max-position", required_argument, NULL, O_MAXPOS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "pooling", required_argument, NULL, O_POOLING },
		{ "uncased", no_argument, NULL, O_UNCASED },
		{ "cased", no_argument, NULL, O_CASED },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct mtl_bert_config cfg = { .layers = 2, .hidden = 128, .heads = 4,
				       .max_pos = 128, .type_vocab = 2, .ln_eps = 1e-12f };
	struct mtl_bert_pooling pool = { .mode = MTL_POOL_CLS, .normalize = 1 };
	const char *out = NULL, *encoder = NULL, *vocab = NULL, *tasks = NULL;
	long seed = 0;
	int lower = 1, c;
	struct mtl_bert *m;
	struct mtl_err err;
	char path[4096];

	cmd_name = "mtl-init";
	while ((c = getopt_long(argc, argv, "o:e:T:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'e': encoder = optarg; break;
		case 'T': tasks = optarg; break;
		case O_VOCAB: vocab = optarg; break;
		case O_LAYERS: cfg.layers = (int)cmd_parse_long(usage, "--layers", optarg, 1, 256); break;
		case O_HIDDEN: cfg.hidden = (int)cmd_parse_long(usage, "--hidden", optarg, 1, 65536); break;
		case O_HEADS: cfg.heads = (int)cmd_parse_long(usage, "--heads", optarg, 1, 1024); break;
		case O_INTER: cfg.intermediate = (int)cmd_parse_long(usage, "--intermediate", optarg, 1, 1 << 20); break;
		case O_MAXPOS: cfg.max_pos = (int)cmd_parse_long(usage, "--max-position", optarg, 2, 1 << 16); break;
		case O_SEED: seed = cmd_parse_long(usage, "--seed", optarg, 0, LONG_MAX); break;
		case O_POOLING:
			if (!strcmp(optarg, "cls"))
				pool.mode = MTL_POOL_CLS;
			else if (!strcmp(optarg, "mean"))
				pool.mode = MTL_POOL_MEAN;
			else
				cmd_usage_error(usage, "--pooling takes cls or mean, not '%s'", optarg);
			break;
		case O_UNCASED: lower = 1; break;
		case O_CASED: lower = 0; break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (optind < argc)
		cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
	if (!out)
		cmd_usage_error(usage, "--out is required");
	if (!encoder == !vocab)
		cmd_usage_error(usage, "give either --encoder DIR or --vocab FILE");
	if (mtl_fs_mkdirs(out, &err))
		cmd_die(EXIT_IO, "%s", err.msg);

	if (encoder) {
		if (mtl_bert_load(&m, encoder, &err) ||
		    mtl_model_pooling_load(&pool, encoder, &m->cfg, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		if (mtl_model_copy_tokenizer(encoder, out, &err))
			cmd_die(EXIT_IO, "%s", err.msg);
	} else {
		cfg.vocab = count_vocab(vocab, &cfg.pad_id);
		if (!cfg.intermediate)
			cfg.intermediate = 4 * cfg.hidden;
		if (cfg.hidden % cfg.heads)
			cmd_usage_error(usage, "--hidden %d is not a multiple of --heads %d",
					cfg.hidden, cfg.heads);
		if (mtl_bert_config_check(&cfg, &err) || mtl_bert_new(&m, &cfg, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		mtl_bert_init_random(m, (uint64_t)seed);
		snprintf(path, sizeof(path), "%s/vocab.txt", out);
		if (mtl_fs_copy(vocab, path, &err))
			cmd_die(EXIT_IO, "%s", err.msg);
		write_tokenizer_config(out, lower, cfg.max_pos);
		pool.max_seq_length = cfg.max_pos;
	}
	if (mtl_bert_save(m, out, &err) ||
	    mtl_model_pooling_save(&pool, m->cfg.hidden, out, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	cmd_note("wrote '%s': %d layers, hidden %d, %d heads, %zu parameters", out,
		 m->cfg.layers, m->cfg.hidden, m->cfg.heads, m->n_params);
	mtl_bert_free(m);
	if (tasks)
		add_tasks(out, tasks, (uint64_t)seed);
	return cmd_finish(0);
}
