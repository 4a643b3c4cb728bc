/*
 * tok.h - BERT WordPiece tokenization, exactly as Hugging Face's fast
 * ("tokenizers", Rust) BertNormalizer + BertPreTokenizer + WordPiece +
 * [CLS]/[SEP] template produce it for bge-large-en-v1.5.
 *
 * The steps, in order (docs/tokenize.md has the details and the reasons):
 *   1. special tokens ([CLS], [SEP], [UNK], [PAD], [MASK], or whatever
 *      tokenizer.json's added_tokens lists) are found in the raw text
 *      first, case-sensitively, longest match, and emitted as they are;
 *   2. the text between them is cleaned (NUL, U+FFFD and Unicode 8.0
 *      Cc/Cf/Co dropped except \t \n \r; White_Space mapped to a space),
 *      CJK ideographs get spaces around them, accents are stripped (NFD,
 *      then Unicode 8.0 Mn removed), and it is lowercased (full mapping);
 *   3. it is split on whitespace, and each punctuation character (ASCII or
 *      Unicode 8.0 P*) becomes a word of its own;
 *   4. each word becomes its greedy longest-match WordPiece pieces ("##"
 *      on non-initial ones), or [UNK] when it is longer than 100 code
 *      points or some position cannot be matched.
 *
 * Example:
 *
 *	struct mtl_tok *t;
 *	struct mtl_tok_enc e;
 *	struct mtl_err err;
 *	if (mtl_tok_load(&t, "models/bge", &err) < 0) ...report err.msg...
 *	mtl_tok_enc_init(&e);
 *	if (mtl_tok_encode(t, "Hello, world!", 13, 0, 0, &e, &err) < 0) ...
 *	for (size_t i = 0; i < e.n; i++) use(e.ids[i], e.word_ids[i]);
 *	mtl_tok_enc_release(&e);
 *	mtl_tok_free(t);
 *
 * Ownership: a struct mtl_tok is opaque and immutable once loaded, so one
 * may serve several threads; each thread needs its own struct mtl_tok_enc,
 * which holds the output arrays and all scratch memory (the caller owns
 * it; _init/_release, and it may be reused for any number of encodes).
 *
 * Failure: loading fails on unreadable or malformed files (MTL_ERR_IO,
 * MTL_ERR_FORMAT) and when memory runs out.  Encoding fails on invalid
 * UTF-8 (MTL_ERR_FORMAT, the message names the byte offset) unless
 * MTL_TOK_REPLACE_INVALID is given, and on MTL_ERR_NOMEM.  Encoding never
 * reads outside [text, text+len) and its work is linear in len (times the
 * longest vocabulary entry), whatever the bytes.
 */
#ifndef MTL_TOK_H
#define MTL_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct mtl_tok;

/* Normalisation options (tokenizer_config.json / tokenizer.json). */
struct mtl_tok_opts {
	int lowercase;       /* do_lower_case; default 1 */
	int strip_accents;   /* 1, 0, or -1: same as lowercase (the default) */
	int chinese_chars;   /* tokenize_chinese_chars; default 1 */
	int clean_text;      /* default 1 */
	int max_input_chars; /* longer words become [UNK]; default 100 */
};

/* Sets *o to the defaults above. */
void mtl_tok_opts_default(struct mtl_tok_opts *o);

/*
 * Loads a tokenizer from a model directory: the vocabulary from vocab.txt
 * (one token a line, id = line number - 1) or, when that is absent, from
 * tokenizer.json's model.vocab; special tokens from tokenizer.json's
 * added_tokens (or [PAD] [UNK] [CLS] [SEP] [MASK] as found in the vocab), the
 * unknown token from model.unk_token (default [UNK]);
 * options from tokenizer.json's BertNormalizer, overridden by
 * tokenizer_config.json (do_lower_case, strip_accents,
 * tokenize_chinese_chars), as transformers does; and the maximum length
 * from tokenizer_config.json's model_max_length, capped by config.json's
 * max_position_embeddings.  The tokenizer files listed in dir's MANIFEST
 * (manifest.h) are checked against it first: a half-written model
 * directory or a changed file is MTL_ERR_FORMAT.  On success *out is a new
 * tokenizer the caller frees; on error <0, *out untouched, the reason
 * (naming the file) in err.
 */
int mtl_tok_load(struct mtl_tok **out, const char *dir, struct mtl_err *err);

/*
 * Builds a tokenizer from n vocabulary entries (entry i gets id i; a
 * repeated entry keeps its last id for look-ups) and options (NULL:
 * defaults).  Special tokens are those of [PAD] [UNK] [CLS] [SEP] [MASK]
 * present in the vocabulary; [UNK], [CLS] and [SEP] must be.  For tests
 * and for callers with their own vocabulary source.
 */
int mtl_tok_new(struct mtl_tok **out, const char *const *vocab, size_t n,
		const struct mtl_tok_opts *o, struct mtl_err *err);

void mtl_tok_free(struct mtl_tok *t);

/* Number of ids (one more than the largest id). */
int32_t mtl_tok_vocab_size(const struct mtl_tok *t);
/* The id of the exact vocabulary string s, or -1. */
int32_t mtl_tok_id(const struct mtl_tok *t, const char *s);
/* The string of id (borrowed, valid while t lives), or NULL when out of range. */
const char *mtl_tok_piece(const struct mtl_tok *t, int32_t id);
/* The id of [UNK]. */
int32_t mtl_tok_unk_id(const struct mtl_tok *t);
/* The id of [PAD] (what batches pad with), or -1 when the vocabulary has none. */
int32_t mtl_tok_pad_id(const struct mtl_tok *t);
/*
 * 64-bit FNV-1a over the vocabulary entries in id order, each followed by
 * "\n": for a vocab.txt with LF line ends that is the hash of its bytes.
 */
uint64_t mtl_tok_vocab_hash(const struct mtl_tok *t);
/* Maximum sequence length from the model's files, or 0 when none says. */
long mtl_tok_max_length(const struct mtl_tok *t);
/* The options in force. */
void mtl_tok_get_opts(const struct mtl_tok *t, struct mtl_tok_opts *o);

/* Encoding flags. */
enum {
	/* Replace invalid UTF-8 (each maximal bad subsequence) with U+FFFD,
	 * which cleaning then drops, instead of failing. */
	MTL_TOK_REPLACE_INVALID = 1,
	/* Do not wrap in [CLS] ... [SEP]. */
	MTL_TOK_NO_SPECIALS = 2,
};

/*
 * One encoded sequence; arrays of n entries, valid until the next encode
 * on the same struct or its release.
 *   ids       token ids
 *   word_ids  which word each token came from, or -1 for the [CLS]/[SEP]
 *             added around the text.  For mtl_tok_encode, the index of the
 *             pre-tokenised word (punctuation is a word of its own, and a
 *             special token written in the text is a word), as
 *             HF's Encoding.word_ids(); for mtl_tok_encode_words, the
 *             index of the caller's word.
 *   starts, ends  byte offsets [start, end) of the token in the input
 *             text (for _words: in the words joined by single spaces);
 *             -1 for the added [CLS]/[SEP]
 *   n_words   words seen (before truncation)
 *   truncated 1 when max_len cut tokens off
 *   words_lost  number of distinct words that lost at least one token
 */
struct mtl_tok_enc {
	int32_t *ids, *word_ids, *starts, *ends;
	size_t n;
	int32_t n_words;
	int truncated;
	int32_t words_lost;
	size_t unk;          /* [UNK] tokens produced by WordPiece (kept ones) */
	/* scratch, private */
	size_t cap;
	struct mtl_tok_scratch *s;
};

void mtl_tok_enc_init(struct mtl_tok_enc *e);
void mtl_tok_enc_release(struct mtl_tok_enc *e);

/*
 * Encodes len bytes of UTF-8 text into e (replacing what it held).
 * max_len > 0 truncates to at most max_len tokens, keeping the final
 * [SEP] (as HF truncation does; it must be >= 2 unless
 * MTL_TOK_NO_SPECIALS).  Returns 0, or <0 with e->n == 0 and the reason in
 * err ("invalid UTF-8 at byte 17").
 */
int mtl_tok_encode(const struct mtl_tok *t, const char *text, size_t len,
		   int flags, size_t max_len, struct mtl_tok_enc *e,
		   struct mtl_err *err);

/*
 * Encodes n pre-split words (NUL-terminated UTF-8) as HF does with
 * is_split_into_words=True: each word is normalised and pre-tokenised on
 * its own, and word_ids give the caller's word index.  Same contract as
 * mtl_tok_encode; an invalid word is named in the message.
 */
int mtl_tok_encode_words(const struct mtl_tok *t, const char *const *words,
			 size_t n, int flags, size_t max_len,
			 struct mtl_tok_enc *e, struct mtl_err *err);

/*
 * Truncation of a text pair, [CLS] a [SEP] b [SEP], to max_len tokens
 * (0: no limit) as Hugging Face's BertTokenizerFast does with
 * truncation="longest_first" (the tokenizers library's rule, which
 * AutoTokenizer and so sentence-transformers use): with R = max_len - 3
 * tokens of room, when the longer text can be cut to fit beside the
 * shorter, only it is cut; otherwise both are cut to R / 2, the longer
 * (on a tie, b) keeping R's odd token.  *na and *nb are the texts' token
 * counts without specials, cut in place.  Returns 1 when a token went, 0
 * when none did, or MTL_ERR_ARG when max_len (> 0) is below 3, no room
 * for the three specials (*na, *nb unchanged).
 * Example: 7 and 5 tokens to max_len 12 (R = 9): both are longer than
 * 9 - the other, so both are cut, to 5 (a, the longer) and 4.
 */
int mtl_tok_pair_lengths(size_t *na, size_t *nb, size_t max_len);

/*
 * Token labels from word labels: the first token of each word w gets
 * word_labels[w] (w < n_words), every other token (later pieces of a
 * word, [CLS], [SEP]) gets ignore.  out has e->n entries.  Returns how many
 * words with a label other than ignore got no token (nothing in the text,
 * or truncated away).
 */
size_t mtl_tok_align(const struct mtl_tok_enc *e, const int32_t *word_labels,
		     size_t n_words, int32_t ignore, int32_t *out);

/*
 * Finds the first invalid UTF-8 in s[0..n): returns its offset (n when
 * there is none) and, in *bad_len, the length of the maximal invalid
 * subsequence there (what one U+FFFD replaces; at least 1).
 */
size_t mtl_tok_utf8_next_bad(const char *s, size_t n, size_t *bad_len);

#endif
