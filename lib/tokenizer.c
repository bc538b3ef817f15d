/* tokenizer.c - GPT-2 byte-level BPE, id-for-id identical to HuggingFace's.
 *
 * Reading order:
 *   1. bytes <-> unicode table   (how vocab.json spells raw bytes)
 *   2. UTF-8 helpers             (validation, the errors='replace' decoder)
 *   3. hash maps                 (token string -> id while loading; merge pair -> rank)
 *   4. the pre-tokenizer regex   (with HF's exact character classes)
 *   5. tok_load / tok_free       (parse and check vocab.json and merges.txt)
 *   6. BPE on one piece          (HF's priority-queue merge loop)
 *   7. tok_encode
 *   8. decoding                  (whole and streaming)
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "common.h"
#include "tokenizer.h"

/* The special token that HF cuts out of the text before pre-tokenizing. */
static const char EOT_TEXT[] = "<|endoftext|>";
#define EOT_LEN (sizeof(EOT_TEXT) - 1)

/* A merge rule: the pair (a, b) becomes new_id; lower rank = applied first. */
typedef struct {
    uint64_t key;   /* (uint64)a << 32 | b */
    int rank;       /* line order in merges.txt; -1 marks an empty slot */
    int new_id;     /* id of the merged token */
} merge_slot;

struct tokenizer {
    int n_vocab;           /* ids are 0 .. n_vocab-1 */
    int eot_id;            /* id of "<|endoftext|>" */
    char *bytes;           /* raw bytes of every token, back to back */
    size_t *offs;          /* (n_vocab + 1,) token i is bytes[offs[i] .. offs[i+1]) */
    size_t max_tok_len;    /* longest token in raw bytes */
    int byte_id[256];      /* id of the one-byte token for each byte value */
    merge_slot *merges;    /* (merges_cap,) open-addressing hash table */
    size_t merges_cap;     /* power of two */
    int n_merges;
    pcre2_code *re;        /* compiled pre-tokenizer regex */
    /* tokenizer.json only (tok_load_json) */
    struct { char *text; size_t len; int id; } *added;   /* added/special tokens, cut out first */
    int n_added;
    int json;              /* loaded from tokenizer.json: only its added tokens are cut out */
    int nfc;               /* normalizer NFC */
    int model_vocab;       /* ids in [n_vocab, model_vocab) decode to nothing (tok_set_model_vocab) */
    int prefix_space;      /* ByteLevel add_prefix_space */
};

/* ----------------------------------------------------------------------------
 * 1. bytes <-> unicode
 * GPT-2's vocab.json spells each raw byte as a printable code point: the bytes
 * '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68 bytes
 * (controls, space, 0x7F..0xA0, 0xAD) are moved to U+0100, U+0101, ... in
 * byte order. So a space is "Ġ" (U+0120) and a newline is "Ċ" (U+010A). */

static void build_byte_to_cp(int byte_to_cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        byte_to_cp[b] = printable ? b : 256 + n++;
    }
}

/* ----------------------------------------------------------------------------
 * 2. UTF-8 */

static int utf8_encode(unsigned cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 63));
        out[2] = (char)(0x80 | (cp & 63)); return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 63));
    out[2] = (char)(0x80 | ((cp >> 6) & 63)); out[3] = (char)(0x80 | (cp & 63)); return 4;
}

/* Length of the sequence a lead byte starts (0 if it can never start one). */
static int utf8_seq_len(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

/* Is b a valid byte at position pos (1..3) of a sequence starting with lead?
 * The second byte is restricted so that overlong forms, surrogates
 * (U+D800..DFFF) and code points above U+10FFFF are rejected (Unicode Table 3-7). */
static int utf8_cont_ok(unsigned char lead, int pos, unsigned char b) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (pos == 1) {
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return b >= lo && b <= hi;
}

/* Offset of the first byte of the first invalid sequence, or len if valid. */
static size_t utf8_first_invalid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        int n = utf8_seq_len(s[i]);
        if (n == 0 || i + n > len) return i;
        for (int k = 1; k < n; k++)
            if (!utf8_cont_ok(s[i], k, s[i + k])) return i;
        i += n;
    }
    return len;
}

/* Decode one code point of valid UTF-8 at s; returns its byte length. */
static int utf8_decode(const unsigned char *s, unsigned *cp) {
    int n = utf8_seq_len(s[0]);
    unsigned c = n == 1 ? s[0] : n == 2 ? s[0] & 0x1F : n == 3 ? s[0] & 0x0F : s[0] & 0x07;
    for (int k = 1; k < n; k++) c = c << 6 | (s[k] & 0x3F);
    *cp = c;
    return n;
}

/* The errors='replace' decoder, one byte at a time. s->pending holds the
 * start of a character that is still valid so far. A byte that cannot continue
 * it turns the pending bytes (one "maximal subpart", as Python and Rust's
 * from_utf8_lossy call it) into U+FFFD and is then looked at afresh.
 * Writes at most 6 bytes to out and returns how many. */
static size_t utf8_push_byte(tok_stream *s, unsigned char b, char *out) {
    static const char FFFD[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t w = 0;
    if (s->npending > 0) {
        unsigned char lead = s->pending[0];
        if (utf8_cont_ok(lead, s->npending, b)) {
            s->pending[s->npending++] = b;
            if (s->npending < utf8_seq_len(lead)) return 0;   /* still incomplete */
            memcpy(out, s->pending, (size_t)s->npending);
            w = (size_t)s->npending;
            s->npending = 0;
            return w;
        }
        memcpy(out, FFFD, 3);      /* the pending bytes can never complete */
        w = 3;
        s->npending = 0;
    }
    int n = utf8_seq_len(b);
    if (n == 1) out[w++] = (char)b;
    else if (n > 1) { s->pending[0] = b; s->npending = 1; }
    else { memcpy(out + w, FFFD, 3); w += 3; }
    return w;
}

/* ----------------------------------------------------------------------------
 * 3. hash maps (open addressing, linear probing, power-of-two capacity) */

static uint64_t mix64(uint64_t x) {   /* splitmix64 finaliser */
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *s, size_t n) {   /* FNV-1a */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* Merge table: pair -> (rank, new_id). Returns NULL when the pair never merges. */
static const merge_slot *merge_find(const tokenizer *t, int a, int b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = t->merges_cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        const merge_slot *m = &t->merges[i];
        if (m->rank < 0) return NULL;
        if (m->key == key) return m;
    }
}

/* Insert or overwrite (a later line of merges.txt wins, as in HF). */
static void merge_put(tokenizer *t, int a, int b, int rank, int new_id) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = t->merges_cap - 1;
    size_t i = mix64(key) & mask;
    while (t->merges[i].rank >= 0 && t->merges[i].key != key) i = (i + 1) & mask;
    if (t->merges[i].rank < 0) t->n_merges++;
    t->merges[i].key = key;
    t->merges[i].rank = rank;
    t->merges[i].new_id = new_id;
}

/* Token string (as spelt in vocab.json) -> id; only used while loading.
 * keys/klen keep each id's string (in the file buffer) for pass 2. */
typedef struct { const char *key; uint32_t len; int32_t id; } str_slot;   /* key NULL: empty */
typedef struct {
    str_slot *slots;
    size_t cap;            /* power of two */
    const char **keys;     /* (n_vocab,) token strings, NUL-terminated, in the file buffer */
    size_t *klen;          /* (n_vocab,) their lengths (a key may contain \u0000) */
} str_map;

static int str_find(const str_map *m, const char *key, size_t len) {
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
        const str_slot *s = &m->slots[i];
        if (!s->key) return -1;
        if (s->len == len && memcmp(s->key, key, len) == 0) return s->id;
    }
}

/* Returns 0 if inserted, -1 if the key was already there. */
static int str_put(str_map *m, const char *key, size_t len, int id) {
    size_t mask = m->cap - 1;
    size_t i = hash_bytes(key, len) & mask;
    for (; m->slots[i].key; i = (i + 1) & mask)
        if (m->slots[i].len == len && memcmp(m->slots[i].key, key, len) == 0) return -1;
    m->slots[i].key = key;
    m->slots[i].len = (uint32_t)len;
    m->slots[i].id = id;
    return 0;
}

static void str_map_free(str_map *m) {
    free(m->slots);
    free(m->keys);
    free(m->klen);
    memset(m, 0, sizeof *m);
}

/* ----------------------------------------------------------------------------
 * 4. The pre-tokenizer regex
 *
 * HF splits with 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * in Oniguruma (tokenizers 0.23: Unicode 16.0). PCRE2 10.42 knows Unicode 14.0
 * and its \s is a little different, so the three classes are spelt out:
 *   \s     exactly the 25 code points Oniguruma calls space (includes U+0085,
 *          excludes U+180E, which PCRE2's \s matches);
 *   \p{L}  PCRE2's letters plus those added in Unicode 15.0-16.0;
 *   \p{N}  PCRE2's numbers plus those added in Unicode 15.0-16.0.
 * These sets were measured against tokenizers 0.23.2 for every code point
 * (classify "a"+c, "1"+c, "\t"+c with its ByteLevel pre-tokenizer) and are
 * checked by tests/test_tokenizer.c. */

#define SPACE_CLASS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
                    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define LETTER_CLASS "\\p{L}" \
    "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}" \
    "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}\\x{1123F}-\\x{11240}" \
    "\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}" \
    "\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}" \
    "\\x{1342F}\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}" \
    "\\x{16D40}-\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}" \
    "\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{2B739}" \
    "\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}"
#define NUMBER_CLASS "\\p{N}" \
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11F50}-\\x{11F59}" \
    "\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}" \
    "\\x{1E4F0}-\\x{1E4F9}\\x{1E5F1}-\\x{1E5FA}"

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?[" LETTER_CLASS "]+"
    "| ?[" NUMBER_CLASS "]+"
    "| ?[^" SPACE_CLASS LETTER_CLASS NUMBER_CLASS "]+"
    "|[" SPACE_CLASS "]+(?![^" SPACE_CLASS "])"
    "|[" SPACE_CLASS "]+";

/* ----------------------------------------------------------------------------
 * 5. Loading */

void tok_free(tokenizer *t) {
    if (!t) return;
    free(t->bytes);
    free(t->offs);
    free(t->merges);
    pcre2_code_free(t->re);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].text);
    free(t->added);
    free(t);
}

/* vocab.json is one flat JSON object {"token": id, ...}. It is scanned here
 * directly instead of through cJSON: a tree of 50k nodes costs ~100k small
 * allocations, which made up most of the tokenizer's load time. The scanner
 * follows RFC 8259 for strings and numbers; anything else is "not valid JSON".
 * Strings are unescaped in place (never longer than their escaped form) and
 * NUL-terminated over their closing quote. */
typedef struct { char *p, *end; } jscan;

static void js_ws(jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int js_hex4(const char *p, const char *end, unsigned *v) {
    if (end - p < 4) return 0;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        x = x << 4 | (unsigned)d;
    }
    *v = x;
    return 1;
}

/* The string whose opening quote is at s->p. Returns 0, or -1 with s->p at
 * the offending byte. */
static int js_string(jscan *s, char **out, size_t *len) {
    char *r = s->p + 1, *w = r, *start = r;
    for (;;) {
        if (r >= s->end || (unsigned char)*r < 0x20) { s->p = r; return -1; }
        if (*r == '"') break;
        if (*r != '\\') { *w++ = *r++; continue; }
        if (s->end - r < 2) { s->p = r; return -1; }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        char e = r[1];
        const char *simple = e ? strchr(from, e) : NULL;
        if (simple) {
            *w++ = to[simple - from];
            r += 2;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || !js_hex4(r + 2, s->end, &cp)) { s->p = r; return -1; }
        if (cp >= 0xDC00 && cp <= 0xDFFF) { s->p = r; return -1; }   /* lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {                           /* needs its low half */
            if (s->end - r < 12 || r[6] != '\\' || r[7] != 'u' || !js_hex4(r + 8, s->end, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) { s->p = r; return -1; }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            r += 6;
        }
        r += 6;
        w += utf8_encode(cp, w);
    }
    *w = '\0';
    *out = start;
    *len = (size_t)(w - start);
    s->p = r + 1;
    return 0;
}

/* A number at s->p. Returns 0, -1 (not JSON), or 1 (valid but over 63
 * characters, which no token id needs). */
static int js_number(jscan *s, double *v) {
    char *q = s->p, *e = s->end;
#define JS_DIGIT(q) ((q) < e && *(q) >= '0' && *(q) <= '9')
    if (q < e && *q == '-') q++;
    if (!JS_DIGIT(q)) { s->p = q; return -1; }
    if (*q == '0') q++;
    else while (JS_DIGIT(q)) q++;
    if (q < e && *q == '.') {
        q++;
        if (!JS_DIGIT(q)) { s->p = q; return -1; }
        while (JS_DIGIT(q)) q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) q++;
        if (!JS_DIGIT(q)) { s->p = q; return -1; }
        while (JS_DIGIT(q)) q++;
    }
#undef JS_DIGIT
    char tmp[64];
    size_t n = (size_t)(q - s->p);
    if (n >= sizeof tmp) return 1;
    memcpy(tmp, s->p, n);
    tmp[n] = '\0';
    *v = strtod(tmp, NULL);
    s->p = q;
    return 0;
}

/* Parse vocab.json: ids must be exactly 0 .. n-1, each once. Fills t->bytes/
 * offs and the string map, whose keys point into *buf_out (the file buffer,
 * which the caller frees after loading merges). */
static int load_vocab_buf(tokenizer *t, const char *path, char *buf, size_t len, int need_eot, str_map *map, char *err);

static int load_vocab(tokenizer *t, const char *path, char **buf_out, str_map *map, char *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = ss_read_file(path, &buf, &len, err);
    if (rc != SS_OK) return rc;
    *buf_out = buf;
    return load_vocab_buf(t, path, buf, len, 1, map, err);
}

/* The vocabulary object in buf (kept: the map points into it). */
static int load_vocab_buf(tokenizer *t, const char *path, char *buf, size_t len, int need_eot, str_map *map, char *err) {
    jscan s = {buf, buf + len};
#define NOT_JSON() ss_fail(err, SS_EINPUT, "%s: not valid JSON (near byte %ld)", path, (long)(s.p - buf))
    js_ws(&s);
    if (s.p >= s.end) return NOT_JSON();
    if (*s.p != '{') return ss_fail(err, SS_EINPUT, "%s: expected a JSON object of token -> id", path);
    s.p++;

    /* Size the tables from an upper bound on the entry count: every entry
     * has its own ':' (keys may hold more), so the colons bound it. */
    size_t cap_n = 1;
    for (const char *q = s.p; (q = memchr(q, ':', (size_t)(s.end - q))) != NULL; q++) cap_n++;
    if (cap_n > INT_MAX / 2) return ss_fail(err, SS_EINPUT, "%s: too many tokens", path);
    map->cap = pow2_at_least(cap_n * 2);
    map->slots = ss_malloc_big(map->cap, sizeof(str_slot));   /* 2 MB: one huge page */
    map->keys = ss_calloc(cap_n, sizeof(char *));
    map->klen = ss_calloc(cap_n, sizeof(size_t));
    if (!map->slots || !map->keys || !map->klen) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path);
    memset(map->slots, 0, map->cap * sizeof(str_slot));

    /* Pass 1: check syntax, ids and keys; fill the map; size the byte blob.
     * Ids are checked against cap_n here and against the final count after. */
    int n = 0;
    size_t total = 0;
    const char *far_key = NULL;   /* first id beyond any possible count */
    double far_id = 0;
    js_ws(&s);
    if (s.p < s.end && *s.p == '}') s.p++;
    else for (;;) {
        char *key;
        size_t kl;
        double v = 0;
        js_ws(&s);
        if (s.p >= s.end || *s.p != '"' || js_string(&s, &key, &kl) != 0) return NOT_JSON();
        js_ws(&s);
        if (s.p >= s.end || *s.p != ':') return NOT_JSON();
        s.p++;
        js_ws(&s);
        if (s.p >= s.end) return NOT_JSON();
        int num = 1;   /* 0: a number in v; 1: some other JSON value, not an id */
        if (*s.p == '-' || (*s.p >= '0' && *s.p <= '9')) num = js_number(&s, &v);
        else if (!*s.p || !strchr("\"{[tfn", *s.p)) num = -1;
        if (num < 0) return NOT_JSON();
        if (utf8_first_invalid((const unsigned char *)key, kl) != kl)
            return ss_fail(err, SS_EINPUT, "%s: a token name is not valid UTF-8", path);
        if (num != 0 || !isfinite(v) || v != floor(v))
            return ss_fail(err, SS_EINPUT, "%s: token \"%.64s\": id is not an integer", path, key);
        n++;
        if (v < 0 || v >= (double)cap_n) {   /* reported once the count is known */
            if (!far_key) { far_key = key; far_id = v; }
            goto next;
        }
        int id = (int)v;
        if (map->keys[id])
            return ss_fail(err, SS_EINPUT, "%s: id %d used by both \"%.64s\" and \"%.64s\"",
                           path, id, map->keys[id], key);
        if (kl > UINT32_MAX)
            return ss_fail(err, SS_EINPUT, "%s: token \"%.64s\": name longer than 4 GB", path, key);
        if (str_put(map, key, kl, id) != 0)
            return ss_fail(err, SS_EINPUT, "%s: token \"%.64s\" appears twice", path, key);
        map->keys[id] = key;
        map->klen[id] = kl;
        total += kl;
    next:
        js_ws(&s);
        if (s.p < s.end && *s.p == ',') { s.p++; continue; }
        if (s.p < s.end && *s.p == '}') { s.p++; break; }
        return NOT_JSON();
    }
    js_ws(&s);
    if (s.p != s.end) return NOT_JSON();
#undef NOT_JSON
    if (n <= 0) return ss_fail(err, SS_EINPUT, "%s: no tokens", path);
    if (far_key)
        return ss_fail(err, SS_EINPUT, "%s: token \"%.64s\": id %.0f out of range 0..%d", path, far_key, far_id, n - 1);
    for (int id = 0; id < n; id++)   /* n distinct ids below cap_n: all of 0..n-1? */
        if (!map->keys[id]) {
            int hi = n;
            while (hi < (int)cap_n && !map->keys[hi]) hi++;
            return ss_fail(err, SS_EINPUT, "%s: token \"%.64s\": id %d out of range 0..%d",
                           path, map->keys[hi], hi, n - 1);
        }

    int byte_to_cp[256];
    build_byte_to_cp(byte_to_cp);
    int cp_to_byte[512];   /* inverse table; every mapped code point is < 512 */
    for (int i = 0; i < 512; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp[b]] = b;

    /* Pass 2: raw bytes of each token. A token spelt entirely in the byte
     * alphabet maps back char by char; any other token (an added token written
     * in plain text) keeps its UTF-8 bytes, as HF's ByteLevel decoder does. */
    t->n_vocab = n;
    t->offs = ss_calloc((size_t)n + 1, sizeof(size_t));
    t->bytes = malloc(total + 1);
    if (!t->offs || !t->bytes) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path);
    size_t pos = 0;
    for (int id = 0; id < n; id++) {
        const unsigned char *k = (const unsigned char *)map->keys[id];
        size_t kl = map->klen[id];
        size_t start = pos;
        int all_mapped = 1;
        for (size_t i = 0; i < kl;) {
            unsigned cp;
            i += (size_t)utf8_decode(k + i, &cp);
            if (cp >= 512 || cp_to_byte[cp] < 0) { all_mapped = 0; break; }
            t->bytes[pos++] = (char)cp_to_byte[cp];
        }
        if (!all_mapped) { pos = start; memcpy(t->bytes + pos, k, kl); pos += kl; }
        t->offs[id] = start;
        if (pos - start > t->max_tok_len) t->max_tok_len = pos - start;
    }
    t->offs[n] = pos;

    /* Every byte must have its one-byte token, or BPE could not start. */
    for (int b = 0; b < 256; b++) {
        char s1[4];
        int sl = utf8_encode((unsigned)byte_to_cp[b], s1);
        t->byte_id[b] = str_find(map, s1, (size_t)sl);
        if (t->byte_id[b] < 0)
            return ss_fail(err, SS_EINPUT, "%s: no token for byte 0x%02x (\"%.*s\")", path, b, sl, s1);
    }
    t->eot_id = str_find(map, EOT_TEXT, EOT_LEN);
    if (t->eot_id < 0 && need_eot) return ss_fail(err, SS_EINPUT, "%s: no \"%s\" token", path, EOT_TEXT);
    return SS_OK;
}

/* Parse merges.txt: an optional "#version" line, then one merge per line,
 * "A B" (two vocab tokens separated by one space); A, B and AB must all be in
 * the vocabulary. Line order is the rank. LF or CRLF; blank lines are skipped. */
static int load_merges_buf(tokenizer *t, const char *path, char *buf, size_t len, const str_map *map, char *err);

static int load_merges(tokenizer *t, const char *path, const str_map *map, char *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = ss_read_file(path, &buf, &len, err);
    if (rc != SS_OK) return rc;
    return load_merges_buf(t, path, buf, len, map, err);
}

/* merges.txt's text in buf (freed here). */
static int load_merges_buf(tokenizer *t, const char *path, char *buf, size_t len, const str_map *map, char *err) {
    int rc;

    /* Size the table from the line count (load factor <= 0.5). */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    t->merges_cap = pow2_at_least(lines * 2);
    t->merges = ss_malloc_big(t->merges_cap, sizeof(merge_slot));
    char *cat = malloc(len + 1);   /* scratch for "A" + "B" */
    if (!t->merges || !cat) { free(buf); free(cat); return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path); }
    for (size_t i = 0; i < t->merges_cap; i++) t->merges[i].rank = -1;

    int rank = 0;
    size_t lineno = 0;
    rc = SS_OK;
    for (char *line = buf; line < buf + len && rc == SS_OK;) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        char *eol = nl ? nl : buf + len;
        char *next = nl ? nl + 1 : buf + len;
        lineno++;
        size_t ll = (size_t)(eol - line);
        if (ll > 0 && line[ll - 1] == '\r') ll--;
        if (ll == 0 || (ll >= 8 && memcmp(line, "#version", 8) == 0)) { line = next; continue; }

        if (utf8_first_invalid((const unsigned char *)line, ll) != ll) {
            rc = ss_fail(err, SS_EINPUT, "%s: line %zu: not valid UTF-8", path, lineno);
            break;
        }
        char *sp = memchr(line, ' ', ll);
        size_t la = sp ? (size_t)(sp - line) : 0;
        size_t lb = sp ? ll - la - 1 : 0;
        if (!sp || la == 0 || lb == 0 || memchr(sp + 1, ' ', lb)) {
            rc = ss_fail(err, SS_EINPUT, "%s: line %zu: expected two symbols separated by one space",
                         path, lineno);
            break;
        }
        int a = str_find(map, line, la);
        int b = str_find(map, sp + 1, lb);
        memcpy(cat, line, la);
        memcpy(cat + la, sp + 1, lb);
        int ab = str_find(map, cat, la + lb);
        if (a < 0 || b < 0 || ab < 0) {
            const char *what = a < 0 ? line : b < 0 ? sp + 1 : cat;
            int wl = (int)(a < 0 ? la : b < 0 ? lb : la + lb);
            rc = ss_fail(err, SS_EINPUT, "%s: line %zu: %s \"%.*s\" is not in the vocabulary",
                         path, lineno, (a < 0 || b < 0) ? "symbol" : "merged token",
                         wl > 64 ? 64 : wl, what);
            break;
        }
        if (rank == INT_MAX) { rc = ss_fail(err, SS_EINPUT, "%s: too many merges", path); break; }
        merge_put(t, a, b, rank++, ab);
        line = next;
    }
    free(cat);
    free(buf);
    return rc;
}

int tok_load(tokenizer **out, const char *vocab_json_path, const char *merges_txt_path, char *err) {
    *out = NULL;
    tokenizer *t = calloc(1, sizeof(tokenizer));
    if (!t) return ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory");

    char *vocab_buf = NULL;
    str_map map = {0};
    int rc = load_vocab(t, vocab_json_path, &vocab_buf, &map, err);
    if (rc == SS_OK) rc = load_merges(t, merges_txt_path, &map, err);
    str_map_free(&map);
    free(vocab_buf);
    if (rc == SS_OK) {
        int ecode;
        PCRE2_SIZE eoff;
        t->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                              &ecode, &eoff, NULL);
        if (!t->re) rc = ss_fail(err, SS_ERUNTIME, "tokenizer: regex failed to compile at %zu", (size_t)eoff);
        else pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);   /* optional speed-up */
    }
    if (rc != SS_OK) { tok_free(t); return rc; }
    *out = t;
    return SS_OK;
}

int tok_vocab_size(const tokenizer *t) { return t->n_vocab; }
void tok_set_model_vocab(tokenizer *t, int model_vocab) { t->model_vocab = model_vocab; }
int tok_eot_id(const tokenizer *t) { return t->eot_id; }
size_t tok_max_token_bytes(const tokenizer *t) { return t->max_tok_len; }

const char *tok_token_bytes(const tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->offs[id + 1] - t->offs[id];
    return t->bytes + t->offs[id];
}

/* ----------------------------------------------------------------------------
 * 6. BPE on one pre-tokenized piece
 *
 * Same algorithm as HF tokenizers' Word::merge_all: start with one symbol per
 * byte, keep a min-heap of mergeable neighbours ordered by (rank, position),
 * pop the best, skip it if stale (a neighbour changed), merge, and push the two
 * new pairs the merge created. A doubly-linked list keeps merges O(log n), so
 * even a megabyte-long piece (a run of spaces, say) is fast. */

typedef struct { int rank, pos, new_id; } heap_item;

/* Growable scratch memory and the output list, one per tok_encode call. */
typedef struct {
    int *sym;          /* (cap,) token id of each symbol */
    int *prev, *next;  /* (cap,) linked list of live symbols; -1 ends it */
    char *alive;       /* (cap,) 0 once merged into its left neighbour */
    heap_item *heap;   /* (2*cap,) pending merges */
    int cap;
    int *ids;          /* (ids_cap,) the encoded output */
    int n_ids, ids_cap;
} bpe_work;

static int heap_less(const heap_item *a, const heap_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(heap_item *h, int *n, heap_item x) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static heap_item heap_pop(heap_item *h, int *n) {
    heap_item top = h[0], x = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = x;
    return top;
}

static int push_id(bpe_work *w, int id) {
    if (w->n_ids == w->ids_cap) {
        if (w->ids_cap > INT_MAX / 2) return -1;
        int cap = w->ids_cap ? w->ids_cap * 2 : 64;
        int *p = realloc(w->ids, (size_t)cap * sizeof(int));
        if (!p) return -1;
        w->ids = p;
        w->ids_cap = cap;
    }
    w->ids[w->n_ids++] = id;
    return 0;
}

static int work_reserve(bpe_work *w, int n) {
    if (n <= w->cap) return 0;
    int cap = n < 64 ? 64 : n;   /* n <= INT_MAX / 2: tok_encode checks the text length */
    free(w->sym); free(w->prev); free(w->next); free(w->alive); free(w->heap);
    w->sym = malloc((size_t)cap * sizeof(int));
    w->prev = malloc((size_t)cap * sizeof(int));
    w->next = malloc((size_t)cap * sizeof(int));
    w->alive = malloc((size_t)cap);
    w->heap = malloc((size_t)cap * 2 * sizeof(heap_item));
    w->cap = cap;
    return (w->sym && w->prev && w->next && w->alive && w->heap) ? 0 : -1;
}

/* BPE-encode bytes p[0..n) and append the ids to w->ids. Returns 0 or -1 (OOM). */
static int bpe_piece(const tokenizer *t, const unsigned char *p, int n, bpe_work *w) {
    if (n == 1) return push_id(w, t->byte_id[p[0]]);
    if (work_reserve(w, n) != 0) return -1;
    int *sym = w->sym, *prev = w->prev, *next = w->next;
    char *alive = w->alive;
    heap_item *heap = w->heap;
    int nh = 0;
    for (int i = 0; i < n; i++) {
        sym[i] = t->byte_id[p[i]];
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
        alive[i] = 1;
    }
    for (int i = 0; i + 1 < n; i++) {
        const merge_slot *m = merge_find(t, sym[i], sym[i + 1]);
        if (m) heap_push(heap, &nh, (heap_item){m->rank, i, m->new_id});
    }
    /* At most n-1 entries to start with; each merge pops one and pushes at
     * most two, and there are at most n-1 merges, so nh stays below 2n. */
    while (nh > 0) {
        heap_item top = heap_pop(heap, &nh);
        int i = top.pos;
        if (!alive[i] || next[i] < 0) continue;
        int j = next[i];
        const merge_slot *m = merge_find(t, sym[i], sym[j]);
        if (!m || m->new_id != top.new_id) continue;   /* stale entry */
        sym[i] = top.new_id;                           /* merge j into i */
        alive[j] = 0;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        if (prev[i] >= 0) {
            const merge_slot *ml = merge_find(t, sym[prev[i]], sym[i]);
            if (ml) heap_push(heap, &nh, (heap_item){ml->rank, prev[i], ml->new_id});
        }
        if (next[i] >= 0) {
            const merge_slot *mr = merge_find(t, sym[i], sym[next[i]]);
            if (mr) heap_push(heap, &nh, (heap_item){mr->rank, i, mr->new_id});
        }
    }
    for (int i = 0; i >= 0; i = next[i])
        if (push_id(w, sym[i]) != 0) return -1;
    return 0;
}

/* ----------------------------------------------------------------------------
 * 7. Encoding */

/* Pre-tokenize one segment (text without "<|endoftext|>") and BPE each piece. */
static int encode_segment(const tokenizer *t, const unsigned char *s, size_t len,
                          pcre2_match_data *md, bpe_work *w) {
    size_t pos = 0;
    while (pos < len) {
        /* The text was validated as UTF-8 once, up front. */
        int rc = pcre2_match(t->re, s, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) return rc == PCRE2_ERROR_NOMATCH ? 0 : -2;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        /* Every character is matched by some alternative, so matches are
         * contiguous; should that ever not hold, the gap is its own piece,
         * like HF's split with Isolated behaviour. */
        if (ov[0] > pos && bpe_piece(t, s + pos, (int)(ov[0] - pos), w) != 0) return -1;
        if (ov[1] <= ov[0]) return -2;   /* no alternative matches empty */
        if (bpe_piece(t, s + ov[0], (int)(ov[1] - ov[0]), w) != 0) return -1;
        pos = ov[1];
    }
    return 0;
}

/* tokenizer.json's normalizer (NFC, by ICU) and ByteLevel's add_prefix_space
   on one segment between added tokens. 0, -1 out of memory, -2 failure. */
static int normalize_segment(const tokenizer *t, const unsigned char *s, size_t len, unsigned char **out, size_t *out_len) {
    unsigned char *res = NULL;
    size_t rl = 0;
    if (t->nfc) {
        UErrorCode st = U_ZERO_ERROR;
        const UNormalizer2 *n2 = unorm2_getNFCInstance(&st);
        int32_t ul = 0;
        UChar *u = malloc((len + 1) * sizeof(UChar)), *v = NULL;
        if (!u) return -1;
        u_strFromUTF8(u, (int32_t)len + 1, &ul, (const char *)s, (int32_t)len, &st);
        int32_t cap = 3 * ul + 16, vl = 0, bl = 0;
        v = malloc((size_t)cap * sizeof(UChar));
        if (v && U_SUCCESS(st)) vl = unorm2_normalize(n2, u, ul, v, cap, &st);
        res = v ? malloc((size_t)vl * 3 + 2) : NULL;
        if (res && U_SUCCESS(st)) u_strToUTF8((char *)res + 1, vl * 3 + 1, &bl, v, vl, &st);
        free(u);
        free(v);
        if (!res) return -1;
        if (U_FAILURE(st)) { free(res); return -2; }
        rl = (size_t)bl;
    } else {
        res = malloc(len + 2);
        if (!res) return -1;
        memcpy(res + 1, s, len);
        rl = len;
    }
    /* res + 1 holds the text; res[0] is room for the prefix space */
    if (t->prefix_space && rl > 0 && res[1] != ' ') { res[0] = ' '; rl++; }
    else memmove(res, res + 1, rl);
    *out = res;
    *out_len = rl;
    return 0;
}

static int json_null_or(const cJSON *v, const char *want) {
    return !v || cJSON_IsNull(v) || (want && cJSON_IsString(v) && strcmp(v->valuestring, want) == 0);
}

int tok_load_json(tokenizer **out, const char *path, char *err) {
    *out = NULL;
    char *text = NULL;
    int rc = ss_read_file(path, &text, NULL, err);
    if (rc) return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    tokenizer *t = calloc(1, sizeof(tokenizer));
    cJSON *vocab = NULL;
    char *vbuf = NULL, *mbuf = NULL;
    str_map map = {0};
    if (!t) { cJSON_Delete(root); return ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory"); }
    t->json = 1;
#define FAIL(...) do { rc = ss_fail(err, SS_EINPUT, __VA_ARGS__); goto done; } while (0)
    if (!cJSON_IsObject(root)) FAIL("%s: not a JSON object", path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) FAIL("%s: missing object 'model'", path);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!json_null_or(ty, "BPE")) FAIL("%s: field 'model.type' must be 'BPE' (byte-level BPE is what saesteer reads)", path);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges")))
        FAIL("%s: fields 'model.byte_fallback' / 'model.ignore_merges' = true are not supported", path);
    const char *nulls[] = {"dropout", "continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, nulls[i]);
        if (!json_null_or(v, "") && !(cJSON_IsNumber(v) && v->valuedouble == 0))
            FAIL("%s: field 'model.%s' must be null", path, nulls[i]);
    }
    /* normalizer: none or NFC */
    const cJSON *nz = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (cJSON_IsObject(nz)) {
        const cJSON *nt = cJSON_GetObjectItemCaseSensitive(nz, "type");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(nz, "normalizers");
        if (cJSON_IsString(nt) && strcmp(nt->valuestring, "NFC") == 0) t->nfc = 1;
        else if (!(cJSON_IsString(nt) && strcmp(nt->valuestring, "Sequence") == 0 && cJSON_GetArraySize(seq) == 0))
            FAIL("%s: field 'normalizer' is '%.32s'; supported: null, NFC", path, cJSON_IsString(nt) ? nt->valuestring : "?");
    } else if (!json_null_or(nz, NULL)) FAIL("%s: field 'normalizer' must be null or an object", path);
    /* pre-tokenizer: ByteLevel (alone or the one member of a Sequence) with its GPT-2 regex */
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *ptt = pt ? cJSON_GetObjectItemCaseSensitive(pt, "type") : NULL;
    if (cJSON_IsString(ptt) && strcmp(ptt->valuestring, "Sequence") == 0) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        pt = cJSON_GetArraySize(arr) == 1 ? cJSON_GetArrayItem(arr, 0) : NULL;
        ptt = pt ? cJSON_GetObjectItemCaseSensitive(pt, "type") : NULL;
    }
    if (!cJSON_IsString(ptt) || strcmp(ptt->valuestring, "ByteLevel") != 0)
        FAIL("%s: field 'pre_tokenizer' must be ByteLevel (GPT-2-style byte-level BPE)", path);
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pt, "use_regex")))
        FAIL("%s: field 'pre_tokenizer.use_regex' = false is not supported", path);
    t->prefix_space = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space"));
    /* vocabulary: model.vocab plus the added tokens it lacks */
    const cJSON *mv = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(mv)) FAIL("%s: missing object 'model.vocab'", path);
    vocab = cJSON_Duplicate(mv, 1);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (at && !cJSON_IsArray(at)) FAIL("%s: field 'added_tokens' must be an array", path);
    int na = cJSON_GetArraySize(at);
    t->added = ss_calloc((size_t)(na ? na : 1), sizeof *t->added);
    if (!vocab || !t->added) { rc = ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory"); goto done; }
    for (int i = 0; i < na; i++) {
        const cJSON *a = cJSON_GetArrayItem(at, i);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content"), *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(c) || !c->valuestring[0] || !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1 << 24 ||
            id->valuedouble != floor(id->valuedouble))
            FAIL("%s: added_tokens[%d]: needs a non-empty 'content' and an integer 'id'", path, i);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "single_word")) || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "lstrip")) ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "rstrip")))
            FAIL("%s: added_tokens[%d] ('%.32s'): single_word / lstrip / rstrip are not supported", path, i, c->valuestring);
        size_t cl = strlen(c->valuestring);
        if (!ss_utf8_valid(c->valuestring, cl)) FAIL("%s: added_tokens[%d]: content is not valid UTF-8", path, i);
        const cJSON *have = cJSON_GetObjectItemCaseSensitive(vocab, c->valuestring);
        if (have && (!cJSON_IsNumber(have) || have->valuedouble != id->valuedouble))
            FAIL("%s: added_tokens[%d] ('%.32s') has id %d but model.vocab says otherwise", path, i, c->valuestring, (int)id->valuedouble);
        if (!have) cJSON_AddNumberToObject(vocab, c->valuestring, id->valuedouble);
        t->added[t->n_added].text = strdup(c->valuestring);
        t->added[t->n_added].len = cl;
        t->added[t->n_added].id = (int)id->valuedouble;
        if (!t->added[t->n_added].text) { rc = ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory"); goto done; }
        t->n_added++;
    }
    vbuf = cJSON_PrintUnformatted(vocab);
    if (!vbuf) { rc = ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory"); goto done; }
    if ((rc = load_vocab_buf(t, path, vbuf, strlen(vbuf), 0, &map, err))) goto done;
    /* merges: ["a", "b"] pairs (tokenizers >= 0.20) or "a b" strings (older) -> merges.txt text */
    const cJSON *mg = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(mg)) FAIL("%s: missing array 'model.merges'", path);
    size_t cap = 16, ml = 0;
    for (const cJSON *e = mg->child; e; e = e->next) {
        if (cJSON_IsString(e)) cap += strlen(e->valuestring) + 1;
        else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next))
            cap += strlen(e->child->valuestring) + strlen(e->child->next->valuestring) + 2;
        else FAIL("%s: model.merges: each merge must be \"a b\" or [\"a\", \"b\"]", path);
    }
    mbuf = malloc(cap);
    if (!mbuf) { rc = ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory"); goto done; }
    for (const cJSON *e = mg->child; e; e = e->next) {
        if (cJSON_IsString(e)) ml += (size_t)sprintf(mbuf + ml, "%s\n", e->valuestring);
        else {
            if (strchr(e->child->valuestring, ' ') || strchr(e->child->next->valuestring, ' ') ||
                strchr(e->child->valuestring, '\n') || strchr(e->child->next->valuestring, '\n'))
                FAIL("%s: model.merges: a merge symbol contains a space or newline", path);
            ml += (size_t)sprintf(mbuf + ml, "%s %s\n", e->child->valuestring, e->child->next->valuestring);
        }
    }
    rc = load_merges_buf(t, path, mbuf, ml, &map, err);
    mbuf = NULL;   /* load_merges_buf frees it */
    if (rc) goto done;
    int ecode;
    PCRE2_SIZE eoff;
    t->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
    if (!t->re) { rc = ss_fail(err, SS_ERUNTIME, "tokenizer: regex failed to compile at %zu", (size_t)eoff); goto done; }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    if (t->n_added == 0) { free(t->added); t->added = NULL; }
#undef FAIL
done:
    str_map_free(&map);
    free(vbuf);
    free(mbuf);
    cJSON_Delete(vocab);
    cJSON_Delete(root);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return SS_OK;
}

int tok_encode(const tokenizer *t, const char *text, size_t len, int **ids, int *n_ids, char *err) {
    *ids = NULL;
    *n_ids = 0;
    if (len == 0) return SS_OK;
    const unsigned char *s = (const unsigned char *)text;
    size_t bad = utf8_first_invalid(s, len);
    if (bad != len) return ss_fail(err, SS_EINPUT, "text: invalid UTF-8 at byte offset %zu", bad);
    if (len > INT_MAX / 2) return ss_fail(err, SS_EINPUT, "text: too long (%zu bytes)", len);

    bpe_work w = {0};
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    int rc = md ? 0 : -1;
    /* Cut the text at each literal "<|endoftext|>"; segments in between are
     * pre-tokenized on their own (a lookahead never sees past a cut). */
    size_t seg = 0;
    while (rc == 0 && seg <= len) {
        size_t cut = len, cut_len = EOT_LEN;
        int cut_id = t->eot_id;
        if (t->json) {    /* tokenizer.json: the leftmost, then longest, added token */
            for (size_t q = seg; q < len && cut == len; q++)
                for (int a = 0; a < t->n_added; a++)
                    if (t->added[a].len <= len - q && memcmp(s + q, t->added[a].text, t->added[a].len) == 0 &&
                        (cut == len || t->added[a].len > cut_len)) {
                        cut = q;
                        cut_len = t->added[a].len;
                        cut_id = t->added[a].id;
                    }
        } else {
            for (const unsigned char *q = s + seg; (q = memchr(q, '<', (size_t)(s + len - q))) != NULL; q++) {
                if ((size_t)(s + len - q) >= EOT_LEN && memcmp(q, EOT_TEXT, EOT_LEN) == 0) {
                    cut = (size_t)(q - s);
                    break;
                }
            }
        }
        if (cut > seg && (t->nfc || t->prefix_space)) {
            unsigned char *norm = NULL;
            size_t nl = 0;
            rc = normalize_segment(t, s + seg, cut - seg, &norm, &nl);
            if (rc == 0) rc = encode_segment(t, norm, nl, md, &w);
            free(norm);
        } else {
            rc = encode_segment(t, s + seg, cut - seg, md, &w);
        }
        if (rc == 0 && cut < len) rc = push_id(&w, cut_id);
        seg = cut + cut_len;   /* past the end when there was no cut */
    }
    pcre2_match_data_free(md);
    free(w.sym); free(w.prev); free(w.next); free(w.alive); free(w.heap);
    if (rc != 0) {
        free(w.ids);
        return rc == -1 ? ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory")
                        : ss_fail(err, SS_ERUNTIME, "tokenizer: regex match failed");
    }
    *ids = w.ids;
    *n_ids = w.n_ids;
    return SS_OK;
}

/* ----------------------------------------------------------------------------
 * 8. Decoding */

int tok_stream_feed(const tokenizer *t, tok_stream *s, int id, char *out, size_t outcap, size_t *outlen) {
    *outlen = 0;
    size_t n;
    if (id >= t->n_vocab && id < t->model_vocab) { if (outcap) out[0] = 0; return SS_OK; }   /* a padding row */
    const unsigned char *b = (const unsigned char *)tok_token_bytes(t, id, &n);
    if (!b) return SS_EINPUT;
    /* Dry run on a copy of the state: does the output (plus a NUL) fit? */
    tok_stream dry = *s;
    char scratch[8];
    size_t need = 1;
    for (size_t i = 0; i < n; i++) need += utf8_push_byte(&dry, b[i], scratch);
    if (outcap < need) return SS_EINPUT;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) w += utf8_push_byte(s, b[i], out + w);
    out[w] = '\0';
    *outlen = w;
    return SS_OK;
}

int tok_stream_flush(tok_stream *s, char *out, size_t outcap, size_t *outlen) {
    *outlen = 0;
    if (outcap < 4) return SS_EINPUT;
    size_t w = 0;
    if (s->npending > 0) {   /* a character cut short: one U+FFFD */
        memcpy(out, "\xEF\xBF\xBD", 3);
        w = 3;
        s->npending = 0;
    }
    out[w] = '\0';
    *outlen = w;
    return SS_OK;
}

int tok_decode(const tokenizer *t, const int *ids, int n, char **text, char *err) {
    return tok_decode_len(t, ids, n, text, NULL, err);
}

int tok_decode_len(const tokenizer *t, const int *ids, int n, char **text, size_t *len, char *err) {
    *text = NULL;
    if (len) *len = 0;
    if (n < 0 || (n > 0 && !ids)) return ss_fail(err, SS_EINPUT, "ids: bad count %d", n);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        if (ids[i] >= t->n_vocab && ids[i] < t->model_vocab) continue;   /* a padding row: no text */
        if (!tok_token_bytes(t, ids[i], &l))
            return ss_fail(err, SS_EINPUT, "ids: id %d at position %d is out of range 0..%d",
                           ids[i], i, t->n_vocab - 1);
        total += l;
    }
    char *out = malloc(3 * total + 4);
    if (!out) return ss_fail(err, SS_ERUNTIME, "tokenizer: out of memory");
    tok_stream s = {0};
    size_t w = 0, l = 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *b = (const unsigned char *)tok_token_bytes(t, ids[i], &l);
        if (!b) continue;   /* a padding row (checked above) */
        for (size_t k = 0; k < l; k++) w += utf8_push_byte(&s, b[k], out + w);
    }
    tok_stream_flush(&s, out + w, 4, &l);
    w += l;
    out[w] = '\0';
    *text = out;
    if (len) *len = w;
    return SS_OK;
}
