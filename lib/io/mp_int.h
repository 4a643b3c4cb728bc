/*
 * mp_int.h - internal to the msgpack streams (mp.c: the reader,
 * mp_write.c: the writer, mp_json.c: JSON); not a module of its own:
 * the contract is mp.h's.
 */
#ifndef MTL_MP_INT_H
#define MTL_MP_INT_H

#include "mp.h"

/*
 * Records of each type (the header and the end record aside): what a
 * writer wrote, to put in its end record, and what a reader read, to
 * check against it.
 */
struct mp_tally {
	struct mp_count {
		char *type;
		size_t len;
		long n;
	} *c;
	int len, cap;
};

/* Frees the counts (not t). */
void tally_release(struct mp_tally *t);
/*
 * Counts one record of type s[0..len).  0, MTL_ERR_FORMAT (a new type
 * beyond the most one stream may hold) or MTL_ERR_NOMEM, with the reason
 * in err.
 */
int tally_add(struct mp_tally *t, const char *s, size_t len,
	      struct mtl_err *err);

/*
 * The string value of key in the msgpack map p[0..n), found without
 * decoding the map: 0 and the value's bytes, or -1 (not a map, no such
 * key, not a string).
 */
int map_str(const unsigned char *p, size_t n, const char *key,
	    const unsigned char **val, size_t *vlen);

/* Big-endian unsigned integer of n bytes at p. */
uint64_t be(const unsigned char *p, size_t n);

/* o is a float32 array (the MTL_MP_EXT_F32 extension); its element i. */
int is_f32_ext(const msgpack_object *o);
float f32_at(const char *p, size_t i);

#endif
