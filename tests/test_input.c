/*
 * test_input.c - the input readers on in-memory files: JSONL items (ids,
 * text or words, labels, "tags", blank lines), CoNLL sentences (tab and
 * space columns, whitespace-only and -DOCSTART- breaks, a bad line costing
 * its sentence), TSV (header row, empty cells, per-word tags), CSV
 * (RFC 4180 quoting), plain text (every line); unknown keys and columns
 * (warnings, --strict) and --label-field; errors name
 * the line and reading goes on after them; invalid UTF-8 refused or
 * replaced; which task CoNLL tags belong to; and mtl_input_encode's
 * look-up, alignment and counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "t.h"
#include "t_spec.h"

static const char *const vocab[] = {
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ",", "!",
	"un", "##aff", "##able", "john", "lives", "in", "paris", ".",
};

static struct mtl_task task_list[] = { T_TASK_TOPIC, T_TASK_NER };
static const struct mtl_tasks ts = { task_list, 2 };

struct rd {
	FILE *f;
	struct mtl_input *in;
	struct mtl_input_opts o;
	struct mtl_err err;
};

/* Opens a reader of the n bytes at s; the open's status. */
static int rd_open_n(struct rd *r, const char *s, size_t n,
		     enum mtl_input_format fmt)
{
	r->o.format = fmt;
	r->o.conll_task = fmt == MTL_INPUT_CONLL ? 1 : -1;
	r->f = fmemopen((void *)s, n, "r");
	r->in = NULL;
	return mtl_input_open(&r->in, r->f, &ts, &r->o, &r->err);
}

static int rd_open(struct rd *r, const char *s, enum mtl_input_format fmt)
{
	return rd_open_n(r, s, strlen(s), fmt);
}

static void rd_close(struct rd *r)
{
	mtl_input_free(r->in);
	fclose(r->f);
	memset(&r->o, 0, sizeof(r->o));
}

static int words_are(const struct mtl_input_item *it, const char *joined)
{
	return it->words && it->text_len == strlen(joined) &&
	       memcmp(it->text, joined, it->text_len) == 0;
}

static void test_jsonl(void)
{
	struct rd r = { 0 };
	struct mtl_input_item it;

	T_OK(rd_open(&r, "{\"id\": \"a\", \"text\": \"Hello, world!\", \"topic\": \"greet\"}\n"
		     "\n  \n"
		     "{\"words\": [\"John\", \"x\"], \"tags\": [\"B-PER\", null], \"topic\": null}\n"
		     "{\"text\": 5}\n"
		     "{\"id\": 7, \"text\": \"hi\"}", MTL_INPUT_JSONL) == 0, "jsonl: open");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 1 &&
	     strcmp(it.id, "a") == 0 && it.text_len == 13 && !it.words &&
	     strcmp(it.seq[0], "greet") == 0 && !it.tags[1], "jsonl: text with a label");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 4 && !it.id &&
	     it.id_int == 4 && words_are(&it, "John x") && it.n_words == 2 &&
	     !it.seq[0] && strcmp(it.tags[1][0], "B-PER") == 0 && !it.tags[1][1],
	     "jsonl: words, 'tags' for the only token task, blank lines pass");
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 5: 'text' is not a string") == 0,
	     "jsonl: a bad record names its line (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 6 && it.id_int == 7,
	     "jsonl: reading goes on after a bad record; integer id");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 0 &&
	     mtl_input_read(r.in, &it, &r.err) == 0, "jsonl: the end, twice");
	rd_close(&r);

	rd_open(&r, "{\"words\":[\"a\"],\"ner\":[\"O\",\"O\"]}\n{\"words\":[]}\n"
		"{\"text\":\"\"}\n{\"words\":[\"john\"],\"ner\":[\"O\"],\"tags\":[\"O\"]}\n",
		MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) < 0 &&
	     strcmp(r.err.msg, "line 1: task 'ner': 2 labels for 1 words") == 0,
	     "jsonl: a label per word (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.n_words == 0 && it.text_len == 0,
	     "jsonl: no words is an item (it encodes as [CLS] [SEP])");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.text_len == 0 && !it.words,
	     "jsonl: an empty text is an item");
	T_OK(mtl_input_read(r.in, &it, &r.err) < 0 &&
	     strcmp(r.err.msg, "line 4: both 'ner' and 'tags'") == 0,
	     "jsonl: a task and 'tags'");
	rd_close(&r);
}

static void test_conll(void)
{
	struct rd r = { 0 };
	struct mtl_input_item it;

	T_OK(rd_open(&r, "John\tB-PER\nlives\tO\n\t\nin O\nParis  x  B-LOC\n \n"
		     "-DOCSTART- -X- O\n\nhello\tO\n\n\n\nunaffable O", MTL_INPUT_CONLL) == 0,
	     "conll: open");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 1 && it.id_int == 1 &&
	     words_are(&it, "John lives") && strcmp(it.tags[1][0], "B-PER") == 0 &&
	     strcmp(it.tags[1][1], "O") == 0, "conll: tab columns, a tab-only break");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 4 &&
	     words_are(&it, "in Paris") && strcmp(it.tags[1][1], "B-LOC") == 0,
	     "conll: space columns, the tag in the last one");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 9 &&
	     words_are(&it, "hello"), "conll: -DOCSTART- and blank runs break");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 13 &&
	     words_are(&it, "unaffable"), "conll: the last sentence without a newline");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 0, "conll: the end");
	rd_close(&r);

	rd_open(&r, "John B-PER\nx\xff O\ny O\n\nlives\n\nhello O\n", MTL_INPUT_CONLL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 2: invalid UTF-8 at byte 2") == 0,
	     "conll: invalid UTF-8 names line and byte (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 5: no tag column") == 0,
	     "conll: the rest of a bad sentence passes; no tag column (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 7 &&
	     words_are(&it, "hello"), "conll: the next sentence after bad ones");
	rd_close(&r);
}

static void test_tsv(void)
{
	struct rd r = { 0 };
	struct mtl_input_item it;

	T_OK(rd_open(&r, "\nid\ttext\ttopic\tner\nq1\tHello world\tgreet\t\n"
		     "q2\tJohn lives\t\tB-PER O\nq3\thello\n\tjohn paris\tother\tO B-LOC O\n"
		     "\tx\t\t\n", MTL_INPUT_TSV) == 0, "tsv: open reads the header");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 3 &&
	     strcmp(it.id, "q1") == 0 && strcmp(it.text, "Hello world") == 0 &&
	     !it.words && strcmp(it.seq[0], "greet") == 0 && !it.tags[1],
	     "tsv: a sequence label, an empty cell");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && words_are(&it, "John lives") &&
	     !it.seq[0] && strcmp(it.tags[1][1], "O") == 0,
	     "tsv: space-separated tags for space-separated words");
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 5: 2 fields, the header has 4") == 0,
	     "tsv: a short row (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 6: task 'ner': 3 labels for 2 words") == 0,
	     "tsv: tags per word (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && !it.id && it.id_int == 7,
	     "tsv: an empty id cell gives the line number");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 0, "tsv: the end");
	rd_close(&r);

	T_OK(rd_open(&r, "words\ttopic\n", MTL_INPUT_TSV) == MTL_ERR_FORMAT &&
	     !r.in && strcmp(r.err.msg, "line 1: the header has no 'text' column") == 0,
	     "tsv: a header without the text column fails the open");
	rd_close(&r);
	T_OK(rd_open(&r, "\n\n", MTL_INPUT_TSV) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 2: no header row") == 0, "tsv: no header row");
	rd_close(&r);
	T_OK(rd_open(&r, "id\ttext\ttopic\ttext\n", MTL_INPUT_TSV) == MTL_ERR_FORMAT &&
	     !r.in && strcmp(r.err.msg, "line 1: the header names column 'text' twice") == 0,
	     "tsv: a repeated column name fails the open (%s)", r.err.msg);
	rd_close(&r);
	T_OK(rd_open(&r, "text\ttopic\t\t\nx\tgreet\t\t\n", MTL_INPUT_TSV) == 0 &&
	     mtl_input_read(r.in, &it, &r.err) == 1 && strcmp(it.text, "x") == 0,
	     "tsv: unnamed columns may repeat (%s)", r.err.msg);
	rd_close(&r);
	r.o.text_field = "topic";
	T_OK(rd_open(&r, "text\ttopic\nx\tgreet\n", MTL_INPUT_TSV) == 0 &&
	     mtl_input_read(r.in, &it, &r.err) == 1 && strcmp(it.text, "greet") == 0,
	     "tsv: another text column");
	rd_close(&r);
}

static void test_invalid(void)
{
	struct rd r = { 0 };
	struct mtl_input_item it;

	rd_open_n(&r, "a\0b O\n", 6, MTL_INPUT_CONLL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 1: NUL byte at byte 2") == 0,
	     "a NUL byte is a bad record (%s)", r.err.msg);
	rd_close(&r);
	r.o.replace_invalid = 1;
	rd_open(&r, "{\"text\":\"hello \xff\xfe world\"}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 &&
	     strcmp(it.text, "hello \xef\xbf\xbd\xef\xbf\xbd world") == 0,
	     "--replace-invalid: each bad byte becomes U+FFFD");
	rd_close(&r);
	rd_open(&r, "{\"text\":\"hello \xff\"}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 1: invalid UTF-8 at byte 16") == 0,
	     "invalid UTF-8 is a bad record (%s)", r.err.msg);
	rd_close(&r);
}

static void test_csv(void)
{
	struct rd r = { 0 };
	struct mtl_input_item it;

	T_OK(rd_open(&r, "id,text,topic,ner\r\n"
		     "a,\"Hello, \"\"world\"\"\",greet,\r\n"
		     "\n"
		     ",\"two\nlines\",,\n"
		     "c,\"x\"y,greet,\n"
		     "d,plain \"quote\",,\n"
		     "e,,other,\n"
		     "f,\"open\n", MTL_INPUT_CSV) == 0, "csv: open, CRLF header");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 2 &&
	     strcmp(it.id, "a") == 0 && strcmp(it.text, "Hello, \"world\"") == 0 &&
	     strcmp(it.seq[0], "greet") == 0 && !it.tags[1],
	     "csv: a quoted field holds commas and \"\" quotes");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.line == 4 && !it.id &&
	     it.id_int == 4 && strcmp(it.text, "two\nlines") == 0 && !it.seq[0] &&
	     !it.tags[1],
	     "csv: a quoted line break, blank lines pass, the first line is the id");
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 6: field 2: text after its closing quote") == 0,
	     "csv: text after a closing quote (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && strcmp(it.id, "d") == 0 &&
	     strcmp(it.text, "plain \"quote\"") == 0,
	     "csv: reading goes on; a quote inside an unquoted field is kept");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.text_len == 0 &&
	     strcmp(it.seq[0], "other") == 0, "csv: an empty text is an item");
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 9: field 2: no closing quote") == 0,
	     "csv: an unclosed quote at the end (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 0, "csv: the end");
	rd_close(&r);

	T_OK(rd_open(&r, "text,topic\n\"a\",\"b\",c\n", MTL_INPUT_CSV) == 0 &&
	     mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 2: 3 fields, the header has 2") == 0,
	     "csv: the field count must match the header (%s)", r.err.msg);
	rd_close(&r);
}

static void test_text(void)
{
	struct rd r = { 0 };
	struct mtl_input_item it;

	T_OK(rd_open(&r, "Hello world\r\n\n  \n{\"text\": 1}", MTL_INPUT_TEXT) == 0,
	     "text: open");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.id_int == 1 &&
	     strcmp(it.text, "Hello world") == 0 && !it.words && !it.seq[0],
	     "text: a line is a text, without its line end");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.id_int == 2 && it.text_len == 0,
	     "text: a blank line is a text too, so ids stay line numbers");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && it.id_int == 3 &&
	     strcmp(it.text, "  ") == 0, "text: spaces are kept");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 &&
	     strcmp(it.text, "{\"text\": 1}") == 0, "text: JSON is just text");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 0, "text: the end");
	rd_close(&r);
}

static void test_keys(void)
{
	static const char *const fields[] = { "label", NULL };
	struct rd r = { 0 };
	struct mtl_input_item it;

	rd_open(&r, "{\"text\":\"a\",\"topc\":\"greet\"}\n{\"text\":\"b\",\"topc\":\"x\"}\n"
		"{\"text\":\"c\",\"source\":1,\"tetx\":2}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_warning(r.in) == NULL, "keys: no warning before a read");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && !it.seq[0] &&
	     mtl_input_warning(r.in) &&
	     strcmp(mtl_input_warning(r.in),
		    "line 1: unknown key 'topc' (did you mean 'topic'?)") == 0,
	     "keys: a key close to a task's is a warning with a suggestion");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && !mtl_input_warning(r.in),
	     "keys: once per key");
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && mtl_input_warning(r.in) &&
	     strstr(mtl_input_warning(r.in), "'tetx' (did you mean 'text'?)"),
	     "keys: a key close to the text field too; one far from all passes");
	rd_close(&r);

	r.o.strict = 1;
	rd_open(&r, "{\"text\":\"a\",\"topc\":\"greet\"}\n{\"text\":\"b\",\"source\":1}\n"
		"{\"text\":\"c\",\"topic\":\"greet\"}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 1: unknown key 'topc' (did you mean 'topic'?)") == 0,
	     "keys: --strict makes it an error (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 2: unknown key 'source'") == 0,
	     "keys: --strict: any unknown key (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && strcmp(it.seq[0], "greet") == 0,
	     "keys: --strict: known keys pass");
	rd_close(&r);

	r.o.label_field = fields;
	rd_open(&r, "{\"text\":\"a\",\"label\":\"greet\",\"topic\":\"other\"}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 && strcmp(it.seq[0], "greet") == 0,
	     "keys: --label-field names the key of a task's labels");
	rd_close(&r);
	r.o.label_field = fields;
	T_OK(rd_open(&r, "text,label,lable\nhi,other,x\n", MTL_INPUT_CSV) == 0 &&
	     mtl_input_warning(r.in) &&
	     strcmp(mtl_input_warning(r.in),
		    "line 1: unknown column 'lable' (did you mean 'label'?)") == 0 &&
	     mtl_input_read(r.in, &it, &r.err) == 1 && strcmp(it.seq[0], "other") == 0,
	     "keys: --label-field names a column; a near column is a warning at open");
	rd_close(&r);
	r.o.strict = 1;
	T_OK(rd_open(&r, "text\tnotes\n", MTL_INPUT_TSV) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 1: unknown column 'notes'") == 0,
	     "keys: --strict: an unknown column fails the open (%s)", r.err.msg);
	rd_close(&r);
}

static void test_encode(const struct mtl_tok *tok)
{
	struct rd r = { 0 };
	struct mtl_input_item it;
	struct mtl_example ex;
	struct mtl_census c;
	int32_t ner[] = { -100, 1, 0, 0, -100, -100, 2, -100, -100 };

	mtl_census_init(&c, &ts);
	rd_open(&r, "{\"words\":[\"John\",\"lives\",\"unaffable\",\"Paris.\"],"
		"\"ner\":[\"B-PER\",\"O\",\"O\",\"B-LOC\"],\"topic\":\"other\"}\n"
		"{\"text\":\"hello\",\"topic\":\"nope\"}\n"
		"{\"text\":\"\\u200b\"}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 &&
	     mtl_input_encode(r.in, &it, tok, 0, &ex, &c, &r.err) == 0,
	     "encode: words with both tasks");
	T_OK(ex.len == 9 && ex.seq[0] == 1 && ex.tok[1] &&
	     memcmp(ex.tok[1], ner, sizeof(ner)) == 0 && ex.labelled == 3 &&
	     strcmp(ex.text, "John lives unaffable Paris.") == 0 && ex.n_words == 4 &&
	     ex.id_len == 1 && ex.id[0] == 1 && !ex.truncated,
	     "encode: word labels on first pieces, the line as the id");
	mtl_example_release(&ex);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 &&
	     mtl_input_encode(r.in, &it, tok, 0, &ex, &c, &r.err) == MTL_ERR_FORMAT &&
	     strcmp(r.err.msg, "line 2: task 'topic': unknown label 'nope'") == 0,
	     "encode: an unknown label (%s)", r.err.msg);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 &&
	     mtl_input_encode(r.in, &it, tok, 0, &ex, &c, &r.err) == 0 &&
	     ex.len == 2 && ex.ids[0] == 2 && ex.ids[1] == 3 && c.no_tokens == 1,
	     "encode: a text without tokens is [CLS] [SEP], counted");
	mtl_example_release(&ex);
	rd_close(&r);

	r.o.skip_unknown = 1;
	rd_open(&r, "{\"words\":[\"john\",\"unaffable\",\"paris\"],\"ner\":[\"B-X\",\"O\",\"B-LOC\"],"
		"\"topic\":\"nope\"}\n", MTL_INPUT_JSONL);
	T_OK(mtl_input_read(r.in, &it, &r.err) == 1 &&
	     mtl_input_encode(r.in, &it, tok, 4, &ex, &c, &r.err) == 0,
	     "encode: --unknown-label skip, truncated");
	T_OK(ex.len == 4 && ex.truncated && ex.words_lost == 2 &&
	     ex.seq[0] == MTL_IGNORE && ex.tok[1][1] == MTL_IGNORE &&
	     ex.tok[1][2] == 0 && mtl_example_tasks(&ex) == 2,
	     "encode: unknown labels are absent, truncation counted");
	T_OK(c.unknown_labels_skipped == 2 && c.labels_lost == 1,
	     "census: unknown labels skipped, word labels lost");
	mtl_example_release(&ex);
	rd_close(&r);
	mtl_census_release(&c);
}

/*
 * Pairs: "text_b" (a JSONL key, a TSV column) encoded with the text as
 * [CLS] a [SEP] b [SEP] with token type ids, cut longest first; labelled
 * for pair and regression tasks only, a pair label needing a text_b.
 */
static void test_pair(const struct mtl_tok *tok)
{
	static const char *const nli_labels[] = { "yes", "no" };
	static const char *const sts_labels[] = { "value" };
	static struct mtl_task pt[] = {
		T_TASK_TOPIC,
		{ .name = "nli", .kind = MTL_TASK_PAIR, .labels = (char **)nli_labels,
		  .n_labels = 2 },
		{ .name = "sts", .kind = MTL_TASK_REGRESSION,
		  .labels = (char **)sts_labels, .n_labels = 1 },
	};
	static const struct mtl_tasks pts = { pt, 3 };
	static const char *const bad[][2] = {
		{ "{\"text\":\"hello\",\"nli\":\"yes\"}",
		  "line 1: task 'nli': a pair task needs a second text 'text_b'" },
		{ "{\"text\":\"hello\",\"text_b\":\"world\",\"topic\":\"greet\"}",
		  "line 1: task 'topic': a sequence task reads one text, not a pair "
		  "('text_b'): pairs are for pair and regression tasks" },
		{ "{\"words\":[\"hello\"],\"text_b\":\"world\"}",
		  "line 1: 'text_b' goes with a text, not 'words'" },
		{ "{\"text\":\"hello\",\"text_b\":7,\"nli\":\"yes\"}",
		  "line 1: 'text_b' must be a string" },
	};
	const int32_t ids[] = { 2, 12, 13, 14, 15, 3, 5, 6, 3 };
	const int32_t types[] = { 0, 0, 0, 0, 0, 0, 1, 1, 1 };
	const int32_t cut[] = { 2, 12, 13, 3, 9, 3 };
	struct mtl_input_item it;
	struct mtl_example ex;
	struct mtl_census c;
	struct mtl_input *in;
	struct mtl_input_opts o = { .format = MTL_INPUT_JSONL, .conll_task = -1 };
	struct mtl_err err = { "" };
	const char *jl = "{\"text\":\"john lives in paris\",\"text_b\":\"hello world\","
			 "\"nli\":\"no\",\"sts\":0.5}\n"
			 "{\"text\":\"john lives in paris\",\"text_b\":\"unaffable\"}\n";
	FILE *f = fmemopen((void *)jl, strlen(jl), "r");

	mtl_census_init(&c, &pts);
	T_OK(mtl_input_open(&in, f, &pts, &o, &err) == 0 &&
	     mtl_input_read(in, &it, &err) == 1 &&
	     mtl_input_encode(in, &it, tok, 0, &ex, &c, &err) == 0 &&
	     ex.len == 9 && memcmp(ex.ids, ids, sizeof(ids)) == 0 && ex.type_ids &&
	     memcmp(ex.type_ids, types, sizeof(types)) == 0 && ex.word_ids[4] == 3 &&
	     ex.word_ids[6] == -1 && strcmp(ex.text_b, "hello world") == 0 &&
	     ex.seq[1] == 1 && mtl_label_value(ex.seq[2]) == 0.5f && ex.labelled == 6 &&
	     !ex.truncated,
	     "pair: [CLS] a [SEP] b [SEP], type ids 0 then 1, labels (%s)", err.msg);
	mtl_example_release(&ex);
	/* 4 + 3 tokens to 6 (3 for the texts): neither fits beside the other,
	 * so both are cut to 3 / 2, and a, the longer, keeps the odd token */
	T_OK(mtl_input_read(in, &it, &err) == 1 &&
	     mtl_input_encode(in, &it, tok, 6, &ex, &c, &err) == 0 &&
	     ex.len == 6 && memcmp(ex.ids, cut, sizeof(cut)) == 0 &&
	     ex.type_ids[3] == 0 && ex.type_ids[4] == 1 && ex.type_ids[5] == 1 &&
	     ex.truncated && ex.words_lost == 3 && ex.labelled == 0,
	     "pair: longest first to 6 tokens: 2 + 1, 3 words lost (%s)", err.msg);
	mtl_example_release(&ex);
	T_OK(mtl_input_encode(in, &it, tok, 2, &ex, &c, &err) == MTL_ERR_ARG &&
	     strcmp(err.msg, "max length 2 leaves no room for [CLS] and two [SEP]") == 0,
	     "pair: a max length below 3 is refused (%s)", err.msg);
	mtl_input_free(in);
	fclose(f);
	/* a second text of no tokens, first in its stream (no buffer for
	 * the second text's tokens yet): [CLS] a [SEP] [SEP] */
	jl = "{\"text\":\"hello\",\"text_b\":\" \",\"nli\":\"no\"}\n";
	f = fmemopen((void *)jl, strlen(jl), "r");
	T_OK(mtl_input_open(&in, f, &pts, &o, &err) == 0 &&
	     mtl_input_read(in, &it, &err) == 1 &&
	     mtl_input_encode(in, &it, tok, 0, &ex, &c, &err) == 0 &&
	     ex.len == 4 && ex.ids[0] == ids[0] && ex.ids[1] == ids[6] &&
	     ex.ids[2] == ids[5] && ex.ids[3] == ids[5] && ex.type_ids[2] == 0 &&
	     ex.type_ids[3] == 1,
	     "pair: a second text of no tokens gives [CLS] a [SEP] [SEP] (%s)", err.msg);
	mtl_example_release(&ex);
	mtl_input_free(in);
	fclose(f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fmemopen((void *)bad[i][0], strlen(bad[i][0]), "r");
		T_OK(mtl_input_open(&in, f, &pts, &o, &err) == 0 &&
		     mtl_input_read(in, &it, &err) == MTL_ERR_FORMAT &&
		     strcmp(err.msg, bad[i][1]) == 0, "pair: %s", err.msg);
		mtl_input_free(in);
		fclose(f);
	}
	jl = "text\ttext_b\tnli\tsts\nhello\tworld\tyes\t0.25\nhello\t\t\t1\n";
	f = fmemopen((void *)jl, strlen(jl), "r");
	o.format = MTL_INPUT_TSV;
	T_OK(mtl_input_open(&in, f, &pts, &o, &err) == 0 &&
	     mtl_input_read(in, &it, &err) == 1 && it.text_b &&
	     strcmp(it.text_b, "world") == 0 && strcmp(it.seq[1], "yes") == 0 &&
	     mtl_input_read(in, &it, &err) == 1 && !it.text_b && it.value[2] == 1,
	     "pair: a TSV column text_b, empty for a single text (%s)", err.msg);
	mtl_input_free(in);
	fclose(f);
	mtl_census_release(&c);
}

static void test_tag_task(void)
{
	struct mtl_err err;
	int k = 7;

	T_OK(mtl_input_tag_task(&k, &ts, NULL, MTL_INPUT_CONLL, &err) == 0 && k == 1,
	     "tag task: CoNLL takes the only token task");
	T_OK(mtl_input_tag_task(&k, &ts, NULL, MTL_INPUT_JSONL, &err) == 0 && k == -1,
	     "tag task: none for JSONL");
	T_OK(mtl_input_tag_task(&k, NULL, NULL, MTL_INPUT_CONLL, &err) == 0 && k == -1,
	     "tag task: none without tasks");
	k = 7;
	T_OK(mtl_input_tag_task(&k, &ts, "topic", MTL_INPUT_CONLL, &err) == MTL_ERR_ARG &&
	     k == 7 && strcmp(err.msg, "task 'topic' is not a token task") == 0,
	     "tag task: a sequence task is refused (%s)", err.msg);
	T_OK(mtl_input_tag_task(&k, NULL, "ner", MTL_INPUT_TSV, &err) == MTL_ERR_ARG &&
	     strcmp(err.msg, "no task 'ner' (no task spec)") == 0,
	     "tag task: a name without a spec (%s)", err.msg);
}

int main(void)
{
	struct mtl_tok *tok;
	struct mtl_err err;

	test_jsonl();
	test_conll();
	test_tsv();
	test_csv();
	test_text();
	test_keys();
	test_invalid();
	test_tag_task();
	if (!T_OK(mtl_tok_new(&tok, vocab, sizeof(vocab) / sizeof(vocab[0]), NULL,
			      &err) == 0, "tokenizer"))
		return t_done();
	test_encode(tok);
	test_pair(tok);
	mtl_tok_free(tok);
	return t_done();
}
