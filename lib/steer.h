/* steer.h - generic activation interventions as gpt2 hooks: position
 * selection and adding a vector (or a per-position matrix) at a hook. */
#ifndef SS_STEER_H
#define SS_STEER_H

#include "gpt2.h"

typedef enum { POS_ALL, POS_LAST, POS_LIST } steer_pos_mode;

/* Which positions an intervention touches.
 *   all   every position, prompt and generated
 *   last  the last position of each forward call: the prompt's final token at
 *         prefill, then every generated token
 *   i,j,k these absolute positions (0-based, BOS counts as position 0)      */
typedef struct {
    steer_pos_mode mode;
    int n;
    int list[256];
} steer_positions;

int steer_positions_parse(const char *spec, steer_positions *p, char *err);
/* Does absolute position `pos` get the intervention? last_pos is the last
   position of the current forward call. */
int steer_positions_match(const steer_positions *p, int pos, int last_pos);

/* Add scale * vec at a hook. vec is (rows, width): rows == 1 adds the same
 * vector at every selected position; rows > 1 adds row p at absolute position
 * p for p < rows (ActAdd "front" placement; positions are ignored). */
typedef struct {
    const float *vec;      /* (rows, width), not owned */
    int rows, width;
    float scale;
    steer_positions pos;
} steer_add;

int steer_add_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err);

#endif
