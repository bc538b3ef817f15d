/* attention_view.h - the self-contained attention-pattern page of `attention`.
 *
 * One HTML file, inline CSS and JS, no network: the patterns of every layer
 * and head (lower triangle, 5 significant digits) are inlined as JSON in a
 * <script type="application/json"> element (every '<' written as \u003c, so
 * no token text can close it), and the page shows the prompt's tokens: hover
 * or tap one to shade the tokens it attends to in the chosen layer and head,
 * with the heads of the layer as small heat maps beside it. URL parameters
 * ?layer=L&head=H&token=P select on load (the Chromium test uses them); the
 * body gets data-ready, data-layer, data-head, data-token and data-overflow
 * (page width beyond the window, in px) attributes once it is drawn.
 */
#ifndef SS_ATTENTION_VIEW_H
#define SS_ATTENTION_VIEW_H

typedef struct {
    const char *model, *text;
    int n_layer, n_head, T;
    const int *ids;              /* (T) */
    const char *const *tokens;   /* (T) token texts, UTF-8 */
    const float *pattern;        /* (n_layer, n_head, T, T): [l][h][query][key] */
    int layer, head;             /* shown first */
} attention_view;

/* Write the page atomically to path. Returns SS_OK or an SS_* code with err set. */
int attention_view_write(const char *path, const attention_view *v, char *err);

#endif
