/* gguf.h - llama.cpp control vectors (GGUF v3) read and write.
 *
 * What llama.cpp does with such a file (read from its sources):
 *   - common_control_vector_load_one: every tensor named "direction.N" must be
 *     F32 and 1-D of length n_embd; N >= 1 (N == 0 is rejected); the data of
 *     direction.N goes to offset n_embd * (N - 1) of a flat buffer.
 *   - llama_adapter_cvec::apply: layer il (1 <= il < n_layer) takes the buffer
 *     at offset n_embd * (il - 1), so tensors[il] == direction.il.
 *   - the graph (llm_build_gpt2 and every other arch): at the end of block il,
 *     after the MLP residual add, cur = build_cvec(cur, il) -> cur + tensors[il],
 *     i.e. it is added to the block's output ("l_out") at every position,
 *     before the next block reads it.
 *   So direction.N is added to the output of block N (0-based), which is
 *   TransformerLens' blocks.N.hook_resid_post (== blocks.N+1.hook_resid_pre),
 *   for 1 <= N <= n_layer - 1. The output of block 0 cannot be expressed.
 * Metadata written, as llama.cpp's cvector-generator does:
 *   general.architecture = "controlvector" (string)
 *   controlvector.model_hint = "gpt2" (string; llama.cpp's arch name)
 *   controlvector.layer_count = number of direction tensors (int32)
 *
 * GGUF v3 layout (little-endian): "GGUF", u32 version 3, u64 n_tensors,
 * u64 n_kv; n_kv x (string key, u32 type, value); n_tensors x (string name,
 * u32 n_dims, u64 ne[n_dims], u32 ggml_type (F32 = 0), u64 offset); zero
 * padding to the alignment (general.alignment, default 32); tensor data, each
 * tensor at its offset from the data start, padded to the alignment. Strings
 * are u64 length + bytes (no NUL).
 */
#ifndef SS_GGUF_H
#define SS_GGUF_H

#include "gpt2.h"
#include "steer.h"

typedef struct {
    int n_embd;
    int n_dirs;            /* number of direction tensors */
    int *layer;            /* (n_dirs) N of direction.N, ascending */
    float *data;           /* (n_dirs, n_embd) */
    char model_hint[64];   /* "" if absent */
    int layer_count;       /* controlvector.layer_count, -1 if absent */
} gguf_cvec;

/* Write atomically. layers must be >= 1 and distinct. */
int gguf_cvec_write(const char *path, const gguf_cvec *cv, char *err);
/* Parse a GGUF control vector; bounds-checked; non-F32 / non-1-D direction
   tensors, mismatched widths, direction.0, no directions -> SS_EINPUT. */
int gguf_cvec_read(gguf_cvec *cv, const char *path, char *err);
void gguf_cvec_free(gguf_cvec *cv);

/* Does the file start with the GGUF magic? */
int gguf_is_gguf(const char *path);

/* The TransformerLens hook that direction.N steers: blocks.N.hook_resid_post. */
void gguf_cvec_hook(int N, char *buf, size_t n);

/* Register llama.cpp's semantics on s: scale * direction.N added at
   blocks.N.hook_resid_post at every position. adds (n_dirs) is caller storage
   that must outlive the hooks. Checks n_embd and layer range. */
int gguf_cvec_attach(const gguf_cvec *cv, gpt2_state *s, float scale, steer_add *adds, char *err);

#endif
