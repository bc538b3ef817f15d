/* dashboard.h - the self-contained latent dashboard (dashboard.html) of `scan`.
 *
 * One HTML file with inline CSS and JS and no network access: the scan's
 * latents.json is inlined as <script type="application/json" id="data">, and
 * the page renders latent cards from it (label, density, histogram as inline
 * SVG, top boosted / suppressed tokens, contexts with tokens shaded by
 * activation), a page at a time so tens of thousands of latents stay fast.
 * A search box matches labels, the peak tokens of the contexts, and the top
 * output tokens; "#123" jumps to a latent.
 * URL parameters (also the test hook): ?q=TEXT runs a search on load,
 * ?latent=I shows one latent, ?sort=index|density|max|label, ?page=N.
 */
#ifndef SS_DASHBOARD_H
#define SS_DASHBOARD_H

#include <stdio.h>

/* Write the page to out with the JSON text read from json_in (read to its
   end). Every '<' in the JSON becomes \u003c (legal in JSON strings, and '<'
   occurs nowhere else in JSON), so no token text can close the script element.
   Returns 0, or -1 on a read or write error. */
int dashboard_write(FILE *out, FILE *json_in);

#endif
