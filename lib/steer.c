/* steer.c - positions and vector addition as gpt2 hooks. */
#include "steer.h"

#include <stdlib.h>
#include <string.h>

int steer_positions_parse(const char *spec, steer_positions *p, char *err) {
    memset(p, 0, sizeof *p);
    if (!spec || strcmp(spec, "all") == 0) { p->mode = POS_ALL; return SS_OK; }
    if (strcmp(spec, "last") == 0) { p->mode = POS_LAST; return SS_OK; }
    p->mode = POS_LIST;
    const char *s = spec;
    while (*s) {
        char *end;
        if (*s < '0' || *s > '9')
            return ss_fail(err, SS_EINPUT, "--positions: '%.32s' is not all, last or a list of positions like 0,3,5", spec);
        long v = strtol(s, &end, 10);
        if (v < 0 || v > 1000000 || (*end && *end != ','))
            return ss_fail(err, SS_EINPUT, "--positions: bad position in '%.32s'", spec);
        if (p->n >= (int)(sizeof p->list / sizeof p->list[0]))
            return ss_fail(err, SS_EINPUT, "--positions: too many positions (max %d)", (int)(sizeof p->list / sizeof p->list[0]));
        p->list[p->n++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end == ',' && !*s) return ss_fail(err, SS_EINPUT, "--positions: trailing comma in '%.32s'", spec);
    }
    if (p->n == 0) return ss_fail(err, SS_EINPUT, "--positions: empty list");
    return SS_OK;
}

int steer_positions_match(const steer_positions *p, int pos, int last_pos) {
    switch (p->mode) {
    case POS_ALL: return 1;
    case POS_LAST: return pos == last_pos;
    case POS_LIST:
        for (int i = 0; i < p->n; i++)
            if (p->list[i] == pos) return 1;
        return 0;
    }
    return 0;
}

int steer_add_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    const steer_add *a = ctx;
    if (a->width != width) {
        char nm[128];
        gpt2_hook_name(hp, nm, sizeof nm);
        return ss_fail(err, SS_EINPUT, "steering vector has width %d but hook '%s' has width %d", a->width, nm, width);
    }
    for (int t = 0; t < T; t++) {
        int pos = pos0 + t;
        const float *v;
        if (a->rows > 1) {               /* matrix: row p at position p, once */
            if (pos >= a->rows) continue;
            v = a->vec + (size_t)pos * width;
        } else {
            if (!steer_positions_match(&a->pos, pos, pos0 + T - 1)) continue;
            v = a->vec;
        }
        float *r = act + (size_t)t * width;
        for (int j = 0; j < width; j++) r[j] += a->scale * v[j];
    }
    return SS_OK;
}
