/* test_suggest.c - edit distances and "did you mean" choices. */
#include <string.h>

#include "suggest.h"
#include "t.h"

int main(void)
{
	static const char *const types[] = { "header", "example", "batch", "step",
					     "eval", "stats" };
	static const char *const opts[] = { "model", "max-tokens", "batch-size", NULL };
	char a[100], b[100];

	T_OK(mtl_suggest_distance("", "") == 0, "empty strings: 0");
	T_OK(mtl_suggest_distance("abc", "") == 3, "against empty: the length");
	T_OK(mtl_suggest_distance("topc", "topic") == 1, "a deletion: 1");
	T_OK(mtl_suggest_distance("stpe", "step") == 1, "a swap of neighbours: 1");
	T_OK(mtl_suggest_distance("kitten", "sitting") == 3, "kitten/sitting: 3");
	T_OK(mtl_suggest_distance("Step", "step") == 0, "ASCII case is ignored");
	T_OK(mtl_suggest_distance("ca", "abc") == 3, "optimal string alignment, not Damerau: ca/abc is 3");
	memset(a, 'a', 99), a[99] = 0;
	memset(b, 'a', 70), b[70] = 0;
	T_OK(mtl_suggest_distance(a, b) == 99, "over 64 bytes: the longer length");

	T_OK(!strcmp(mtl_suggest("stpe", types, 6), "step"), "stpe: step");
	T_OK(!strcmp(mtl_suggest("exmaple", types, 6), "example"), "exmaple: example");
	T_OK(!strcmp(mtl_suggest("STATS", types, 6), "stats"), "STATS: stats");
	T_OK(mtl_suggest("step", types, 6) == NULL, "a name itself is no suggestion");
	T_OK(mtl_suggest("xyz", types, 6) == NULL, "nothing close: NULL");
	T_OK(mtl_suggest("stop", types, 6) != NULL, "stop: one substitution from step");
	T_OK(mtl_suggest("sp", types, 6) == NULL, "two edits from a 4-byte name: too far");
	T_OK(!strcmp(mtl_suggest("max-token", opts, 4), "max-tokens"), "max-token: max-tokens (NULL entries skipped)");
	T_OK(!strcmp(mtl_suggest("modle", opts, 4), "model"), "modle: model");
	T_OK(mtl_suggest("", opts, 4) == NULL && mtl_suggest(NULL, opts, 4) == NULL,
	     "empty or NULL: NULL");

	T_OK(!strcmp(mtl_suggest_hint(a, sizeof(a), "stpe", types, 6), " (did you mean 'step'?)"),
	     "hint: the message's tail");
	T_OK(mtl_suggest_hint(a, sizeof(a), "xyz", types, 6) == a && !*a, "hint: nothing close: empty");
	T_OK(!strcmp(mtl_suggest_hint(a, 12, "stpe", types, 6), " (did you m"), "hint: cut to the buffer");
	return t_done();
}
