/*
 * mp.h - msgpack streams: the contract every mtl program speaks.
 *
 * A stream is a sequence of msgpack maps (docs/streams.md).  Record 1 is a
 * header: {"type":"header", "stream":KIND, "version":[MAJOR,MINOR],
 * "program":NAME, "args":[...], ...metadata}.  Every later record is a map
 * with a string "type".  Readers ignore keys they do not know.
 *
 * Numeric arrays: integers are msgpack arrays; float arrays are written as
 * the extension type MTL_MP_EXT_F32 (little-endian IEEE float32, packed),
 * and readers accept either that or a msgpack array of numbers (which is
 * what `mtl-dump --pack` produces from JSON).
 *
 * The last record is the end record, {"type":"end", "stream":KIND,
 * "records":N, "counts":{TYPE:n,...}}: N records came before it (the header
 * included) and counts has the number of every other type.  It proves the
 * stream complete: a writer killed or failed mid-stream leaves none.
 *
 * Reading: a reader wraps a FILE * it does not own.  mtl_mp_read() returns
 * 1 and a record whose memory stays valid until the next call on the same
 * reader, 0 at the end of a complete stream, or <0 with "NAME: record N:
 * what" in err.  The end record is returned like any other (readers skip
 * types they do not use) after its counts were checked against the
 * records read; input that ends without one is an error ("NAME: truncated
 * stream (no end record after N records)"), as is anything after it.  A
 * record is fully delimited and size-checked before it is decoded, so a
 * corrupt length cannot make the reader allocate more than a small
 * multiple of the bytes actually present: decoding takes at most 4 times
 * the record's bytes plus 64 MiB (msgpack-c takes 24 bytes per element, so
 * a record of millions of one-byte elements is refused).  A record is
 * returned as soon as its bytes arrived (a pipe is read with read(2)), so
 * `tail -f | mtl-dump` shows records as they come.
 *
 * Writing: a writer packs one record at a time into memory (mtl_mp_pk()
 * gives the msgpack_packer), and mtl_mp_end() writes and flushes it, so
 * `| head` and live inspection see whole records.  The writer counts the
 * records by type, and mtl_mp_finish() writes the end record: call it once
 * the stream is complete, never on a failure.  A closed reader kills the
 * process with SIGPIPE (left at its default), which is the normal end of a
 * pipeline; any other write error is returned as MTL_ERR_IO.
 *
 * JSON: mtl_mp_to_json() renders a record as one line of canonical compact
 * JSON; mtl_mp_from_json() packs a parsed JSON value.  For canonical JSON
 * the two are exact inverses (docs/streams.md says what canonical means).
 */
#ifndef MTL_MP_H
#define MTL_MP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <msgpack.h>

#include "err.h"

#define MTL_STREAM_MAJOR 1
#define MTL_STREAM_MINOR 1
#define MTL_MP_EXT_F32 1
/* Largest record a reader accepts (bytes). */
#define MTL_MP_MAX_RECORD ((size_t)1 << 30)

struct mtl_mp_reader;
struct mtl_mp_writer;

/*
 * Wraps f (not owned) for reading; name is used in messages ("<stdin>" for
 * standard input) and copied.  Returns NULL only when out of memory.
 */
struct mtl_mp_reader *mtl_mp_reader_new(FILE *f, const char *name);
void mtl_mp_reader_free(struct mtl_mp_reader *r);

/*
 * Reads the next record into *rec.  Returns 1 for a record (the end
 * record included), 0 at the end of input after the end record, <0 on
 * error (truncated, corrupt, not a map, no "type", an end record whose
 * counts differ from what was read, no end record, data after it, a read
 * error).  Record 1 must be a valid header (any kind).
 */
int mtl_mp_read(struct mtl_mp_reader *r, msgpack_object *rec,
		struct mtl_err *err);

/*
 * For mtl-dump only: a stream of format 1.0 (written before end records)
 * may end without one; mtl_mp_read() then returns 0 at its end, and
 * mtl_mp_reader_ended() tells the caller to warn.
 */
void mtl_mp_reader_accept_old(struct mtl_mp_reader *r);
/* Whether the end record was read (its counts checked). */
int mtl_mp_reader_ended(const struct mtl_mp_reader *r);

/*
 * Reads record 1 and checks it is a header of stream kind `kind` (NULL
 * accepts any kind) with a major version this build understands.  An
 * empty input is an error ("empty input, expected a KIND stream").
 */
int mtl_mp_read_header(struct mtl_mp_reader *r, const char *kind,
		       msgpack_object *hdr, struct mtl_err *err);

/* 1-based number of the last record returned (0 before the first). */
long mtl_mp_reader_record(const struct mtl_mp_reader *r);
/* Bytes the reader has scanned to find where records end: about the
 * input's size, however small the reads it arrives in (a record is not
 * scanned again from its start after each read; tests check this). */
size_t mtl_mp_reader_scanned(const struct mtl_mp_reader *r);
/* Bytes of a seekable input taken by the records returned so far (its
 * position less what the reader holds ahead), or -1 (a pipe). */
long mtl_mp_reader_offset(const struct mtl_mp_reader *r);
const char *mtl_mp_reader_name(const struct mtl_mp_reader *r);

/*
 * Formats "NAME: record N: " + fmt into err, returns code: for callers
 * that find a semantic problem in a record they just read.
 */
int mtl_mp_reader_fail(const struct mtl_mp_reader *r, struct mtl_err *err,
		       int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- access to decoded records (all accept NULL objects) --- */

/* The value of key in map m, or NULL (absent, or m is not a map). */
const msgpack_object *mtl_mp_get(const msgpack_object *m, const char *key);
/* Whether o is a string equal to s. */
int mtl_mp_is_str(const msgpack_object *o, const char *s);
/* o as an integer (int or uint fitting int64). Returns 0 or -1. */
int mtl_mp_as_int(const msgpack_object *o, int64_t *v);
/* o as a number (int or float). Returns 0 or -1. */
int mtl_mp_as_num(const msgpack_object *o, double *v);
/*
 * Length of a numeric array (msgpack array of numbers or F32 extension),
 * or -1 when o is neither.
 */
long mtl_mp_array_len(const msgpack_object *o);
/* Copies a numeric array of exactly n elements into out. 0 or -1. */
int mtl_mp_as_f32s(const msgpack_object *o, float *out, long n);
/* Copies an array of exactly n integers fitting int32 into out. 0 or -1. */
int mtl_mp_as_i32s(const msgpack_object *o, int32_t *out, long n);

/*
 * The msgpack encoding of o in a new buffer (*out, *len; the caller frees
 * *out): for values kept past the record, like example ids.  0 or -1 (out
 * of memory).
 */
int mtl_mp_copy(const msgpack_object *o, char **out, size_t *len);

/* --- writing --- */

/* Wraps f (not owned) for writing; name is used in messages.  NULL: OOM. */
struct mtl_mp_writer *mtl_mp_writer_new(FILE *f, const char *name);
void mtl_mp_writer_free(struct mtl_mp_writer *w);
/*
 * A writer that keeps its records in memory, for a caller that writes them
 * out in another order: mtl_mp_end() appends the record (0, or
 * MTL_ERR_NOMEM).  mtl_mp_writer_record() gives record i's bytes (i below
 * mtl_mp_writer_count()), valid until the next call on w;
 * mtl_mp_writer_clear() drops every record and keeps the memory.  Its
 * records are not counted for an end record (mtl_mp_finish refuses a
 * memory writer): they count once, in the writer they are copied to.
 * NULL: OOM.
 */
struct mtl_mp_writer *mtl_mp_writer_new_mem(void);
size_t mtl_mp_writer_count(const struct mtl_mp_writer *w);
const char *mtl_mp_writer_record(const struct mtl_mp_writer *w, size_t i,
				 size_t *len);
void mtl_mp_writer_clear(struct mtl_mp_writer *w);
/* The packer for the record under construction. */
msgpack_packer *mtl_mp_pk(struct mtl_mp_writer *w);
/*
 * Writes and flushes the packed record, and counts it by its "type" (the
 * header: its "stream" kind).  0, MTL_ERR_IO, or MTL_ERR_ARG for what a
 * program must not write: a record without a string "type", an "end"
 * record (mtl_mp_finish writes it), a record after the end record.
 * MTL_ERR_FORMAT: more than 256 record types.
 */
int mtl_mp_end(struct mtl_mp_writer *w, struct mtl_err *err);
/*
 * Writes the end record, counting what was written, and flushes: the
 * stream is complete.  0, MTL_ERR_IO, or MTL_ERR_ARG (no header written,
 * ended already, a record half packed).
 */
int mtl_mp_finish(struct mtl_mp_writer *w, struct mtl_err *err);

/*
 * Starts a header map with 5 + n_extra entries (type, stream, version,
 * program, args); the caller packs n_extra key/value pairs after it and
 * then calls mtl_mp_end().
 */
void mtl_mp_pack_header(msgpack_packer *pk, const char *kind,
			const char *program, int argc, char **argv,
			size_t n_extra);
void mtl_mp_pack_str(msgpack_packer *pk, const char *s);
/* Packs n floats as one MTL_MP_EXT_F32 extension. */
void mtl_mp_pack_f32s(msgpack_packer *pk, const float *v, size_t n);
void mtl_mp_pack_i32s(msgpack_packer *pk, const int32_t *v, size_t n);

/*
 * A map counted as it is packed: msgpack puts a map's size before its
 * entries, so a record whose entries depend on the run is packed here
 * and its size is the count of the keys given, never a sum by hand.
 *
 *	struct mtl_mp_map m;
 *	mtl_mp_map_begin(&m);
 *	msgpack_pack_long(mtl_mp_map_key(&m, "step"), step);
 *	if (have_x)
 *		msgpack_pack_double(mtl_mp_map_key(&m, "x"), x);
 *	mtl_mp_map_end(&m, mtl_mp_pk(w));
 *
 * The entries are buffered in m until mtl_mp_map_end() (or _end_header)
 * packs them into pk and frees the buffer; a map may nest in another
 * (end the inner one into the outer's mtl_mp_map_key()).  Out of memory
 * is the packer's: the bytes are lost, as with every msgpack_pack_*.
 */
struct mtl_mp_map {
	msgpack_sbuffer body;
	msgpack_packer pk;
	size_t n;
};

void mtl_mp_map_begin(struct mtl_mp_map *m);
/* Packs key k, counts the entry, and returns the packer of its value. */
msgpack_packer *mtl_mp_map_key(struct mtl_mp_map *m, const char *k);
/* Packs the map (its size, then its entries) into pk; frees m's buffer. */
void mtl_mp_map_end(struct mtl_mp_map *m, msgpack_packer *pk);
/* The same for a stream header: mtl_mp_pack_header() with m's entries as
 * its extra ones. */
void mtl_mp_map_end_header(struct mtl_mp_map *m, msgpack_packer *pk,
			   const char *kind, const char *program, int argc,
			   char **argv);
/* Frees m's buffer without packing anything (an empty map left out). */
void mtl_mp_map_drop(struct mtl_mp_map *m);

/* --- JSON --- */

/*
 * Writes o as one line of compact JSON (no newline) to f.  Fails with
 * MTL_ERR_FORMAT for what JSON cannot hold losslessly: non-string map keys,
 * strings that are not valid UTF-8, binary data, unknown extensions.
 * Non-finite floats are written as null.
 */
int mtl_mp_to_json(FILE *f, const msgpack_object *o, struct mtl_err *err);

/*
 * Packs a JSON value: objects to maps (key order kept), arrays, strings,
 * integers (int64), reals (float64), true/false/null.
 */
void mtl_mp_from_json(msgpack_packer *pk, const json_t *j);

/*
 * Checks that a decoded record is a map with a string "type"; when
 * is_first, that it is a header with a string "stream" and a version this
 * build reads.  Returns 0 or MTL_ERR_FORMAT with the reason in err.
 */
int mtl_mp_check_record(const msgpack_object *rec, int is_first,
			struct mtl_err *err);

/*
 * The record types mtl programs write ("header", "example", "batch",
 * "step", ...; docs/streams.md), NULL-terminated: what mtl-dump --type
 * accepts.
 */
extern const char *const mtl_mp_record_types[];

#endif
