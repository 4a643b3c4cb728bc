/*
 * test_data.c - the example record: what mtl_example_pack writes,
 * mtl_example_parse reads back field for field and packs again to the
 * same bytes (plain text and word input, truncation, labels of both
 * kinds, an all-ignored token task); and the census's stats record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "data.h"
#include "mp.h"
#include "t.h"
#include "t_spec.h"

static struct mtl_task task_list[] = {
	T_TASK_TOPIC, T_TASK_NER,
	{ .name = "other", .kind = MTL_TASK_TOKEN, .labels = (char **)t_ner_labels,
	  .n_labels = 3 },
};
static const struct mtl_tasks ts = { task_list, 3 };

/* Packs ex into sb (reset first). */
static void pack(msgpack_sbuffer *sb, const struct mtl_example *ex)
{
	msgpack_packer pk;

	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	mtl_example_pack(&pk, ex, &ts);
}

static int same_i32(const int32_t *a, const int32_t *b, int32_t n)
{
	if (!a || !b)
		return a == b;
	return memcmp(a, b, (size_t)n * sizeof(int32_t)) == 0;
}

/* ex survives pack, parse, pack: same fields, same bytes. */
static void round_trip(const struct mtl_example *ex, const char *what)
{
	msgpack_sbuffer a, b;
	msgpack_unpacked u;
	struct mtl_example back;
	struct mtl_err err;
	int same = 1;

	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	msgpack_unpacked_init(&u);
	pack(&a, ex);
	if (!T_OK(msgpack_unpack_next(&u, a.data, a.size, NULL) == MSGPACK_UNPACK_SUCCESS,
		  "%s: the record unpacks", what))
		goto out;
	if (!T_OK(mtl_example_parse(&back, &u.data, &ts, &err) == 0,
		  "%s: the record parses (%s)", what, err.msg))
		goto out;
	T_OK(back.id_len == ex->id_len && memcmp(back.id, ex->id, ex->id_len) == 0,
	     "%s: id", what);
	T_OK(back.text_len == ex->text_len &&
	     memcmp(back.text, ex->text, ex->text_len) == 0, "%s: text", what);
	T_OK(back.len == ex->len && same_i32(back.ids, ex->ids, ex->len) &&
	     same_i32(back.word_ids, ex->word_ids, ex->len), "%s: ids and word ids", what);
	same = back.n_words == ex->n_words && !back.words == !ex->words;
	for (size_t i = 0; same && i < ex->n_words; i++)
		same = strcmp(back.words[i], ex->words[i]) == 0;
	T_OK(same, "%s: words", what);
	same = back.labelled == ex->labelled;
	for (int t = 0; same && t < ts.n; t++)
		same = back.seq[t] == ex->seq[t] && same_i32(back.tok[t], ex->tok[t], ex->len);
	T_OK(same, "%s: labels", what);
	T_OK(back.truncated == ex->truncated && back.words_lost == ex->words_lost,
	     "%s: truncation", what);
	T_OK(mtl_example_tasks(&back) == mtl_example_tasks(ex), "%s: tasks carried", what);
	pack(&b, &back);
	T_OK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0,
	     "%s: packs again to the same %zu bytes", what, a.size);
	mtl_example_release(&back);
out:
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
}

/* Packs the batch of the one example ex into sb (reset first). */
static void pack_batch(msgpack_sbuffer *sb, const struct mtl_example *ex)
{
	const struct mtl_example *one[1] = { ex };
	struct mtl_batch b;
	struct mtl_err err;
	msgpack_packer pk;

	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (mtl_batch_make(&b, one, 1, &ts, NULL, ~0ull, 0, &err) == 0) {
		mtl_batch_pack(&pk, &b, &ts);
		mtl_batch_release(&b);
	}
}

/*
 * What mtl-batch keeps of an example: stripped of its text, words, spans
 * and lost labels, it makes the same batch; and its id is kept in a buffer
 * of its own size (msgpack's copy buffer starts at 8 KiB, which made
 * mtl-batch hold 5 KB an example).
 */
static void test_strip(const struct mtl_example *ex)
{
	msgpack_sbuffer a, b;
	msgpack_unpacked u;
	struct mtl_example back;
	struct mtl_err err;

	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	msgpack_unpacked_init(&u);
	pack(&a, ex);
	if (msgpack_unpack_next(&u, a.data, a.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    !T_OK(mtl_example_parse(&back, &u.data, &ts, &err) == 0, "strip: parses"))
		goto out;
	T_OK(back.id && malloc_usable_size(back.id) < 64,
	     "an example's id is kept in %zu bytes", back.id ? malloc_usable_size(back.id) : 0);
	pack_batch(&a, &back);
	mtl_example_strip(&back);
	T_OK(!back.text && !back.words && !back.word_ids && !back.word_starts &&
	     !back.lost[1] && back.ids && back.len == ex->len,
	     "strip frees the text, words, word ids and lost labels, keeps the ids");
	pack_batch(&b, &back);
	T_OK(a.size > 0 && a.size == b.size && memcmp(a.data, b.data, a.size) == 0,
	     "a stripped example makes the same batch (%zu bytes)", a.size);
	mtl_example_release(&back);
out:
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
}

/* Packs the JSON text into sb and decodes it into u; 0 or -1. */
static int from_json(const char *text, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
	json_t *j = json_loads(text, 0, NULL);
	msgpack_packer pk;
	int rc = -1;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(u);
	if (j) {
		mtl_mp_from_json(&pk, j);
		if (msgpack_unpack_next(u, sb->data, sb->size, NULL) == MSGPACK_UNPACK_SUCCESS)
			rc = 0;
	}
	json_decref(j);
	return rc;
}

/* mtl_data_header_tasks on the header JSON hdr: its rc, message in err. */
static int header_tasks(const char *hdr, struct mtl_err *err)
{
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	struct mtl_tasks *got = NULL;
	int rc = -99;

	if (from_json(hdr, &sb, &u) == 0)
		rc = mtl_data_header_tasks(&got, &u.data, err);
	mtl_task_free(got);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/*
 * A batch record's declared size is believed only when its "ids" back it:
 * a 100-byte record saying 2^26 tokens made the parser allocate 256 MB
 * before it looked.  Checked under an address-space limit (not under ASan,
 * whose shadow memory needs terabytes of address space).
 */
static void test_unbacked_size(void)
{
#if defined(__SANITIZE_ADDRESS__)
	t_skip("an address-space limit cannot hold under AddressSanitizer");
#else
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	struct mtl_batch b;
	struct mtl_err err;
	struct rlimit old, lim;
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	int rc = -99;

	if (!f || fscanf(f, "%ld", &pages) != 1 || getrlimit(RLIMIT_AS, &old)) {
		if (f)
			fclose(f);
		t_skip("no /proc/self/statm");
		return;
	}
	fclose(f);
	if (from_json("{\"type\":\"batch\",\"size\":1048576,\"seq_len\":64,"
		      "\"ids\":[2],\"lengths\":[1]}", &sb, &u) == 0) {
		lim = old;
		lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)64 << 20);
		setrlimit(RLIMIT_AS, &lim);
		rc = mtl_batch_parse(&b, &u.data, &ts, &err);
		setrlimit(RLIMIT_AS, &old);
	}
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "\"ids\" is not 67108864 integers"),
	     "a batch size its ids do not back is refused before allocating: '%s'",
	     rc < 0 ? err.msg : "");
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
#endif
}

/*
 * A pair example: its text_b and type ids survive the record; a batch of
 * a pair and a single text carries type ids, 0 on the single text and on
 * padding, and parses back; bad type ids are errors.
 */
static void test_pairs(const struct mtl_example *single)
{
	int32_t ids[] = { 2, 5, 3, 6, 7, 3 }, types[] = { 0, 0, 0, 1, 1, 1 };
	int32_t seq[] = { 1, MTL_IGNORE, MTL_IGNORE }, *tok[3] = { NULL };
	char text[] = "hello", text_b[] = "world !", id[] = "\x09";
	const struct mtl_example pair = {
		.id = id, .id_len = 1, .text = text, .text_len = 5, .text_b = text_b,
		.text_b_len = 7, .ids = ids, .type_ids = types, .len = 6,
		.labelled = 1, .seq = seq, .tok = tok, .n_tasks = 3,
	};
	const struct mtl_example *two[2] = { single, &pair };
	static const char *const bad[][2] = {
		{ "{\"type\":\"example\",\"ids\":[2,3],\"type_ids\":[0]}",
		  "\"type_ids\" is not 2 integers (one per token)" },
		{ "{\"type\":\"example\",\"ids\":[2,3],\"type_ids\":[0,2]}",
		  "token type id 2 at 1: not 0 or 1" },
		{ "{\"type\":\"batch\",\"size\":1,\"seq_len\":2,\"ids\":[2,3],"
		  "\"lengths\":[2],\"type_ids\":[0,-1]}", "token type id -1 at 1: not 0 or 1" },
	};
	struct mtl_batch b, back;
	struct mtl_err err = { "" };
	msgpack_sbuffer sb, sb2;
	msgpack_packer pk;
	msgpack_unpacked u;
	struct mtl_example ex;
	int T;

	round_trip(&pair, "a pair: text_b and type ids");
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&u);
	pack(&sb, &pair);
	if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    mtl_example_parse(&ex, &u.data, &ts, &err) == 0) {
		T_OK(ex.type_ids && same_i32(ex.type_ids, types, 6) &&
		     strcmp(ex.text_b, "world !") == 0, "a pair: the record's type ids and text_b");
		mtl_example_strip(&ex);
		T_OK(!ex.text_b && ex.type_ids, "strip frees text_b, keeps the type ids");
		mtl_example_release(&ex);
	}
	msgpack_unpacked_destroy(&u);
	T_OK(mtl_batch_make(&b, two, 2, &ts, NULL, ~0ull, 0, &err) == 0 && b.type_ids,
	     "a batch with a pair has type ids");
	T = b.T;
	T_OK(T == 6 && same_i32(b.type_ids + T, types, 6) &&
	     b.type_ids[0] + b.type_ids[1] + b.type_ids[2] + b.type_ids[3] +
	     b.type_ids[4] + b.type_ids[5] == 0,
	     "batch type ids: 0 on the single text and padding, the pair's own");
	msgpack_sbuffer_clear(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mtl_batch_pack(&pk, &b, &ts);
	msgpack_unpacked_init(&u);
	T_OK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS &&
	     mtl_batch_parse(&back, &u.data, &ts, &err) == 0 && back.type_ids &&
	     same_i32(back.type_ids, b.type_ids, 2 * T),
	     "a batch's type ids survive the record (%s)", err.msg);
	msgpack_sbuffer_init(&sb2);
	msgpack_packer_init(&pk, &sb2, msgpack_sbuffer_write);
	mtl_batch_pack(&pk, &back, &ts);
	T_OK(sb.size == sb2.size && memcmp(sb.data, sb2.data, sb.size) == 0,
	     "the batch packs again to the same %zu bytes", sb.size);
	msgpack_sbuffer_destroy(&sb2);
	mtl_batch_release(&back);
	mtl_batch_release(&b);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	T_OK(mtl_batch_make(&b, &single, 1, &ts, NULL, ~0ull, 0, &err) == 0 && !b.type_ids,
	     "a batch of single texts has no type ids (all 0)");
	mtl_batch_release(&b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = -99;

		if (from_json(bad[i][0], &sb, &u) == 0)
			rc = i < 2 ? mtl_example_parse(&ex, &u.data, &ts, &err)
				   : mtl_batch_parse(&b, &u.data, &ts, &err);
		T_OK(rc == MTL_ERR_FORMAT && !strcmp(err.msg, bad[i][1]),
		     "bad type ids refused: '%s'", rc < 0 ? err.msg : "");
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* A header's task labels are checked as tasks.json's are. */
static void test_header_tasks(void)
{
	struct mtl_err err;

	T_OK(header_tasks("{\"tasks\":[{\"name\":\"ner\",\"kind\":\"token\","
			  "\"labels\":[\"O\",\"B-PER\"]}]}", &err) == 0,
	     "header tasks: good labels");
	T_OK(header_tasks("{\"tasks\":[{\"name\":\"ner\",\"kind\":\"token\","
			  "\"labels\":[\"O\",\"\"]}]}", &err) == MTL_ERR_FORMAT &&
	     !strcmp(err.msg, "header task 0: label 1 is not a non-empty string"),
	     "header tasks: an empty label refused: '%s'", err.msg);
	T_OK(header_tasks("{\"tasks\":[{\"name\":\"ner\",\"kind\":\"token\","
			  "\"labels\":[\"O\",\"B-PER\",\"O\"]}]}", &err) == MTL_ERR_FORMAT &&
	     !strcmp(err.msg, "header task 0: duplicate label 'O'"),
	     "header tasks: a duplicate label refused: '%s'", err.msg);
}

int main(void)
{
	/* "a" as msgpack: fixstr of length 1; 7 as a positive fixint */
	char id_a[] = "\xa1" "a", id_7[] = "\x07";
	int32_t ids1[] = { 2, 5, 7, 6, 8, 3 }, wids1[] = { -1, 0, 1, 2, 3, -1 };
	int32_t ids2[] = { 2, 12, 9, 3 }, wids2[] = { -1, 0, 1, -1 };
	int32_t ner2[] = { -100, 1, 0, -100 }, other2[] = { -100, -100, -100, -100 };
	int32_t seq1[] = { 0, MTL_IGNORE, MTL_IGNORE }, seq2[] = { 1, MTL_IGNORE, MTL_IGNORE };
	int32_t *tok1[3] = { NULL }, *tok2[3] = { NULL, ner2, other2 };
	char w0[] = "John", w1[] = "unaffable", w2[] = "Paris";
	char *words2[] = { w0, w1, w2 };
	char text1[] = "Hello, world!", text2[] = "John unaffable Paris";
	struct mtl_example plain = {
		.id = id_a, .id_len = 2, .text = text1, .text_len = 13,
		.ids = ids1, .word_ids = wids1, .len = 6, .labelled = 1,
		.seq = seq1, .tok = tok1, .n_tasks = 3,
	};
	struct mtl_example words = {
		.id = id_7, .id_len = 1, .text = text2, .text_len = 20,
		.ids = ids2, .word_ids = wids2, .len = 4, .words = words2,
		.n_words = 3, .labelled = 3, .seq = seq2, .tok = tok2, .n_tasks = 3,
		.truncated = 1, .words_lost = 2,
	};
	struct mtl_census c;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;

	round_trip(&plain, "text, a sequence label");
	T_OK(mtl_example_tasks(&words) == 7, "an all-ignored token task is carried");
	round_trip(&words, "words, truncated, both kinds of labels");
	test_strip(&words);
	test_pairs(&plain);

	/* the census: counts by the mask it is given, and packs 13 keys */
	T_OK(mtl_census_init(&c, &ts) == 0, "census init");
	mtl_census_add(&c, &plain, mtl_example_tasks(&plain));
	mtl_census_add(&c, &words, mtl_example_tasks(&words));
	c.unk = 3;
	T_OK(c.examples == 2 && c.tokens == 10 && c.truncated == 1 && c.words_lost == 2,
	     "census: examples, tokens, truncation");
	T_OK(c.labelled[0] == 2 && c.labelled[1] == 1 && c.labelled[2] == 1 &&
	     c.one == 1 && c.several == 1 && c.none == 0,
	     "census: labels given count, all-ignored ones too");
	T_OK(c.label_count[1][0] == 1 && c.label_count[1][1] == 1 &&
	     c.label_count[2][0] == 0, "census: label counts skip ignored tokens");
	T_OK(mtl_census_unk_rate(&c) == 0.5, "census: unk rate over tokens between specials");
	mtl_census_release(&c);
	mtl_census_init(&c, &ts);
	mtl_census_add(&c, &words, words.labelled);
	T_OK(c.labelled[2] == 0 && c.one == 0 && c.several == 1,
	     "census by scored labels leaves all-ignored tasks out");
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mtl_census_pack(&pk, &c, &ts);
	msgpack_unpacked_init(&u);
	if (T_OK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS,
		 "stats record unpacks")) {
		const msgpack_object *lc = mtl_mp_get(mtl_mp_get(&u.data, "label_counts"), "ner");
		int64_t v = -1;
		T_OK(u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 14 &&
		     mtl_mp_is_str(mtl_mp_get(&u.data, "type"), "stats") &&
		     !mtl_mp_as_int(mtl_mp_get(&u.data, "no_tokens"), &v) && v == 0,
		     "stats record: 14 keys, type stats, no_tokens");
		T_OK(!mtl_mp_as_int(mtl_mp_get(lc, "B-PER"), &v) && v == 1,
		     "stats record: label_counts by name");
		T_OK(!mtl_mp_as_int(mtl_mp_get(&u.data, "words_lost"), &v) && v == 2,
		     "stats record: words_lost");
	}
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	mtl_census_release(&c);
	test_header_tasks();
	test_unbacked_size();
	return t_done();
}
