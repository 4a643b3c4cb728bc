/*
 * mtl-export - writes one task of a model as a Hugging Face directory
 * that transformers loads as it is (BertForSequenceClassification or
 * BertForTokenClassification); the mapping is lib/model/export.h's.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "export.h"
#include "fs.h"
#include "model.h"

static const char usage[] =
	"usage: mtl-export -m MODEL [--task NAME] -o DIR\n"
	"\n"
	"Writes one task of a trained model as a Hugging Face directory that\n"
	"transformers loads as it is: BertForSequenceClassification for a\n"
	"sequence or multilabel task (problem_type multi_label_classification),\n"
	"BertForTokenClassification for a token task (config.json\n"
	"with the labels, model.safetensors, the tokenizer files).  Linear heads\n"
	"map exactly, and so does a sequence head of hidden size H with tanh\n"
	"(transformers' pooler); any other head is refused, saying why.\n"
	"\n"
	"  -m, --model DIR         the trained model (tasks.json, heads.safetensors)\n"
	"  -T, --task NAME         the task to export (needed when there are several)\n"
	"  -o, --out DIR           the directory to write (created if needed)\n"
	"  -q, --quiet             no notes on stderr\n"
	"  -h, --help              this text\n"
	"  -V, --version           the version\n"
	"\n"
	"Exit status: 0 success, 1 a head that does not map or a bad model,\n"
	"2 usage error, 3 I/O error.\n";

int main(int argc, char **argv)
{
	const char *model_dir = NULL, *task = NULL, *out = NULL, *arch;
	const struct cmd_opt opts[] = {
		CMD_OPT_STRING('m', "model", &model_dir),
		CMD_OPT_STRING('T', "task", &task),
		CMD_OPT_STRING('o', "out", &out),
		CMD_OPT_END
	};
	struct mtl_model *m = NULL;
	struct mtl_err err;
	int first, t, rc;

	cmd_name = "mtl-export";
	first = cmd_parse_options(usage, opts, argc, argv);
	if (!model_dir || !out)
		cmd_usage_error(usage, "--model and --out are required");
	if (first < argc)
		cmd_usage_error(usage, "unexpected argument '%s'", argv[first]);
	if ((rc = mtl_model_load(&m, model_dir, &err)))
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
	if (!m->tasks || !mtl_fs_exists(model_dir, "heads.safetensors"))
		cmd_die(EXIT_DATA, "'%s' has no %s: nothing to export", model_dir,
			m->tasks ? "heads.safetensors" : "tasks.json");
	if (!task && m->tasks->n > 1)
		cmd_usage_error(usage, "'%s' has %d tasks: choose one with --task",
				model_dir, m->tasks->n);
	t = task ? mtl_task_find(m->tasks, task) : 0;
	if (t < 0)
		cmd_usage_error(usage, "--task: the model has no task '%s'", task);
	if (mtl_model_heads(m, 0, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if ((rc = mtl_export_task(m, t, out, &arch, &err)))
		cmd_die(rc == MTL_ERR_FORMAT ? EXIT_DATA : EXIT_IO, "%s", err.msg);
	cmd_note("wrote task '%s' to '%s' as %s", m->tasks->task[t].name, out, arch);
	mtl_model_free(m);
	return cmd_finish(0);
}
