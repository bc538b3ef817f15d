/* tokenizer.h - GPT-2 byte-level BPE tokenizer, identical to HuggingFace's.
 *
 * Loads the two files every GPT-2 checkpoint ships (vocab.json, merges.txt)
 * and reproduces HF GPT2TokenizerFast (tokenizers 0.23) id for id:
 *   1. "<|endoftext|>" anywhere in the text is cut out first and becomes its
 *      own id (50256 for GPT-2), like HF's added-token matching; the spaces
 *      around it are left alone.
 *   2. Each remaining segment is split by the GPT-2 pre-tokenizer regex
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (PCRE2 in UTF + UCP mode; the character classes are pinned to what HF's
 *      Oniguruma matches, see tokenizer.c).
 *   3. Each piece is run through BPE over its raw bytes: the lowest-ranked
 *      merge of merges.txt is applied first, leftmost first on ties.
 * Decoding maps ids back to raw bytes and turns them into UTF-8 the way
 * Python's bytes.decode("utf-8", errors="replace") does (each maximal invalid
 * subpart becomes U+FFFD).
 *
 * A loaded tokenizer is read-only: several threads may encode/decode with the
 * same one at once.
 */
#ifndef SS_TOKENIZER_H
#define SS_TOKENIZER_H

#include <stddef.h>

typedef struct tokenizer tokenizer;

/* Load vocab.json + merges.txt. On failure *out is NULL, err names the file and
 * the field, and the return is SS_EINPUT (malformed file) or SS_ERUNTIME. */
int tok_load(tokenizer **out, const char *vocab_json_path, const char *merges_txt_path, char *err);
void tok_free(tokenizer *t);
/* Load an HF tokenizers tokenizer.json (GPT-NeoX / Pythia ship only this):
 * model BPE with merges as ["a", "b"] pairs or "a b" strings, normalizer null
 * or NFC (applied with ICU), pre_tokenizer ByteLevel (add_prefix_space either
 * way, GPT-2 regex), added_tokens (special or not) cut out of the raw text
 * first, leftmost then longest, as HF does. tok_eot_id is -1 if it has no
 * "<|endoftext|>". Anything else gets SS_EINPUT naming the field. */
int tok_load_json(tokenizer **out, const char *path, char *err);

/* Encode len bytes of UTF-8 text (need not be NUL-terminated; may contain NUL).
 * On success *ids is a malloc'd array the caller frees (NULL when *n_ids == 0).
 * Invalid UTF-8 gives SS_EINPUT with the byte offset in err. No BOS is added. */
int tok_encode(const tokenizer *t, const char *text, size_t len, int **ids, int *n_ids, char *err);

int tok_vocab_size(const tokenizer *t);  /* number of ids: 50257 for GPT-2 */
/* The model's vocab_size when it is larger than the tokenizer's (GPT-J 50400,
   Pythia 50304: padding rows): decoding those ids gives no text, as HF's
   decode does, instead of an error. */
void tok_set_model_vocab(tokenizer *t, int model_vocab);
int tok_eot_id(const tokenizer *t);      /* id of <|endoftext|>: 50256 for GPT-2 */
size_t tok_max_token_bytes(const tokenizer *t); /* longest token, in raw bytes */

/* Raw bytes of one token (not NUL-terminated, may be a piece of a UTF-8
 * character); NULL if id is out of range. */
const char *tok_token_bytes(const tokenizer *t, int id, size_t *len);

/* Streaming decode, for printing tokens as they are generated.
 * Zero-initialise a tok_stream (tok_stream s = {0};), feed ids one at a time
 * and print what comes out: only complete UTF-8 characters are emitted, a
 * partial multi-byte character is held back until its continuation bytes
 * arrive, and bytes that can never form a character come out as U+FFFD.
 * tok_stream_flush at the end emits what is left (U+FFFD for a dangling
 * partial character). The concatenated output equals tok_decode of all ids.
 * out receives *outlen bytes plus a NUL; TOK_STREAM_OUTCAP(t) bytes always
 * suffice (256 is plenty for GPT-2, whose longest token is 128 bytes, but
 * only the worst case is guaranteed). Returns SS_EINPUT for an id out of
 * range or a buffer too small for this output (nothing is consumed then). */
typedef struct { unsigned char pending[8]; int npending; } tok_stream;
#define TOK_STREAM_OUTCAP(t) (3 * (tok_max_token_bytes(t) + 8) + 1)
int tok_stream_feed(const tokenizer *t, tok_stream *s, int id, char *out, size_t outcap, size_t *outlen);
int tok_stream_flush(tok_stream *s, char *out, size_t outcap, size_t *outlen);

/* Decode a whole id sequence into a malloc'd NUL-terminated UTF-8 string the
 * caller frees (HF decode without cleanup: errors='replace', special tokens kept). */
int tok_decode(const tokenizer *t, const int *ids, int n, char **text, char *err);
/* Same, also giving the length in bytes (the text may contain NUL bytes). */
int tok_decode_len(const tokenizer *t, const int *ids, int n, char **text, size_t *len, char *err);

#endif
