/* attention_view.c - writes the attention page (see attention_view.h). The
 * template is plain HTML/CSS/JS, one C string per line; the JS builds every
 * element with textContent, never innerHTML, so token text cannot inject
 * markup. */
#include "attention_view.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char *const HEAD[] = {
    "<!DOCTYPE html>\n",
    "<html lang='en'>\n",
    "<head>\n",
    "<meta charset='utf-8'>\n",
    "<meta name='viewport' content='width=device-width, initial-scale=1'>\n",
    "<title>saesteer attention patterns</title>\n",
    "<style>\n",
    ":root { --fg: #1d2330; --muted: #667085; --line: #e3e6ec; --bg: #f6f7f9; --card: #fff; --acc: #d9480f; }\n",
    "* { box-sizing: border-box; }\n",
    "body { margin: 0; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--fg); background: var(--bg); }\n",
    "header { background: var(--card); border-bottom: 1px solid var(--line); padding: 12px 20px 10px; }\n",
    "h1 { font-size: 18px; margin: 0 0 4px; }\n",
    "#meta { color: var(--muted); font-size: 12.5px; overflow-wrap: anywhere; }\n",
    "#controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; margin-top: 8px; }\n",
    "select { font-size: 13px; padding: 3px 6px; border: 1px solid #c9ced8; border-radius: 6px; background: #fff; }\n",
    "#hint { color: var(--muted); font-size: 12.5px; }\n",
    "main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 380px); gap: 16px; padding: 16px 20px 32px; }\n",
    ".panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; }\n",
    "h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; font-weight: 600; }\n",
    "#toks { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 14px; line-height: 2; white-space: pre-wrap; overflow-wrap: anywhere; }\n",
    ".tok { border-radius: 3px; padding: 2px 0; cursor: pointer; }\n",
    ".tok.sel { outline: 2px solid var(--acc); }\n",
    "#info { margin-top: 10px; color: var(--muted); font-size: 12.5px; min-height: 3em; overflow-wrap: anywhere; }\n",
    "#minis { display: grid; grid-template-columns: repeat(auto-fill, minmax(84px, 1fr)); gap: 6px; }\n",
    ".mini { display: flex; flex-direction: column; align-items: center; gap: 2px; cursor: pointer; border: 2px solid transparent; border-radius: 6px; padding: 3px; font-size: 11.5px; color: var(--muted); min-width: 0; }\n",
    ".mini.sel { border-color: var(--acc); color: var(--fg); }\n",
    "canvas { image-rendering: pixelated; border: 1px solid var(--line); background: #fff; }\n",
    ".mini canvas { width: 100%; max-width: 110px; aspect-ratio: 1; }\n",
    "#big { width: 100%; max-width: 380px; aspect-ratio: 1; display: block; }\n",
    "@media (max-width: 760px) {\n",
    "  header { padding: 10px 12px 8px; }\n",
    "  main { grid-template-columns: minmax(0, 1fr); padding: 10px 10px 24px; gap: 10px; }\n",
    "  #minis { grid-template-columns: repeat(auto-fill, minmax(64px, 1fr)); }\n",
    "}\n",
    "</style>\n",
    "</head>\n",
    "<body>\n",
    "<header>\n",
    "<h1>Attention patterns</h1>\n",
    "<div id='meta'></div>\n",
    "<div id='controls'>\n",
    "<label>layer <select id='layer'></select></label>\n",
    "<label>head <select id='head'></select></label>\n",
    "<span id='hint'>hover or tap a token: shading = how much it attends to each earlier token</span>\n",
    "</div>\n",
    "</header>\n",
    "<main>\n",
    "<section class='panel'><h2 id='ttl'>tokens</h2><div id='toks'></div><div id='info'></div></section>\n",
    "<section class='panel'><h2>all heads of this layer (click one)</h2><div id='minis'></div>\n",
    "<h2 style='margin-top: 12px'>this head: query (row) x key (column)</h2><canvas id='big'></canvas></section>\n",
    "</main>\n",
    "<script type='application/json' id='data'>",
    NULL};

static const char *const TAIL[] = {
    "</script>\n",
    "<script>\n",
    "'use strict';\n",
    "const D = JSON.parse(document.getElementById('data').textContent);\n",
    "const $ = (id) => document.getElementById(id);\n",
    "const T = D.T, NH = D.n_head, NL = D.n_layer;\n",
    "// D.pattern[l][h] holds the lower triangle row by row: query q attends to keys 0..q\n",
    "const row = (l, h, q) => { const s = q * (q + 1) / 2; return D.pattern[l][h].slice(s, s + q + 1); };\n",
    "const show = (s) => s.replace(/\\n/g, '\\u21b5\\n').replace(/\\t/g, '\\u2192').replace(/\\r/g, '\\u240d');\n",
    "const fmt = (w) => (w * 100).toFixed(w >= 0.1 ? 0 : 1) + '%';\n",
    "let L = D.layer, H = D.head, Q = -1;\n",
    "const spans = [];\n",
    "\n",
    "function build() {\n",
    "  $('meta').textContent = D.model + ' \\u00b7 ' + T + ' tokens \\u00b7 ' + NL + ' layers \\u00d7 ' + NH + ' heads';\n",
    "  for (let l = 0; l < NL; l++) $('layer').appendChild(new Option('L' + l, l));\n",
    "  for (let h = 0; h < NH; h++) $('head').appendChild(new Option('H' + h, h));\n",
    "  D.tokens.forEach((t, i) => {\n",
    "    const s = document.createElement('span');\n",
    "    s.className = 'tok';\n",
    "    s.textContent = show(t);\n",
    "    s.dataset.pos = i;\n",
    "    s.title = 'position ' + i + ': ' + JSON.stringify(t) + ' (id ' + D.ids[i] + ')';\n",
    "    s.addEventListener('mouseenter', () => pick(i));\n",
    "    s.addEventListener('click', () => pick(i));\n",
    "    $('toks').appendChild(s);\n",
    "    spans.push(s);\n",
    "  });\n",
    "  $('layer').onchange = () => { L = +$('layer').value; draw(); };\n",
    "  $('head').onchange = () => { H = +$('head').value; draw(); };\n",
    "}\n",
    "\n",
    "// white -> orange heat map of one head, one pixel per (query, key)\n",
    "function heat(cv, l, h) {\n",
    "  cv.width = T; cv.height = T;\n",
    "  const g = cv.getContext('2d'), img = g.createImageData(T, T);\n",
    "  for (let q = 0; q < T; q++) {\n",
    "    const r = row(l, h, q);\n",
    "    for (let k = 0; k < T; k++) {\n",
    "      const w = k <= q ? Math.sqrt(r[k]) : 0, o = 4 * (q * T + k);\n",
    "      img.data[o] = 255 - w * (255 - 217); img.data[o + 1] = 255 - w * (255 - 72); img.data[o + 2] = 255 - w * (255 - 15);\n",
    "      img.data[o + 3] = 255;\n",
    "    }\n",
    "  }\n",
    "  g.putImageData(img, 0, 0);\n",
    "}\n",
    "\n",
    "function minis() {\n",
    "  const box = $('minis');\n",
    "  box.textContent = '';\n",
    "  for (let h = 0; h < NH; h++) {\n",
    "    const m = document.createElement('div');\n",
    "    m.className = 'mini' + (h === H ? ' sel' : '');\n",
    "    m.dataset.head = h;\n",
    "    const cv = document.createElement('canvas');\n",
    "    heat(cv, L, h);\n",
    "    m.appendChild(cv);\n",
    "    const t = document.createElement('span');\n",
    "    t.textContent = 'L' + L + ' H' + h;\n",
    "    m.appendChild(t);\n",
    "    m.addEventListener('click', () => { H = h; draw(); });\n",
    "    box.appendChild(m);\n",
    "  }\n",
    "}\n",
    "\n",
    "function pick(q) { Q = q; shade(); }\n",
    "\n",
    "function shade() {\n",
    "  for (const s of spans) { s.style.background = ''; s.classList.remove('sel'); s.dataset.w = '0'; }\n",
    "  document.body.dataset.token = Q;\n",
    "  if (Q < 0) { $('info').textContent = 'Hover or tap a token to see where it attends in L' + L + ' H' + H + '.'; return; }\n",
    "  const r = row(L, H, Q);\n",
    "  r.forEach((w, k) => {\n",
    "    spans[k].dataset.w = w;\n",
    "    if (w > 0.002) spans[k].style.background = 'rgba(217, 72, 15, ' + Math.min(1, 0.06 + 0.94 * w).toFixed(3) + ')';\n",
    "  });\n",
    "  spans[Q].classList.add('sel');\n",
    "  const best = r.map((w, k) => [w, k]).sort((a, b) => b[0] - a[0]).slice(0, 3);\n",
    "  $('info').textContent = 'L' + L + ' H' + H + ': position ' + Q + ' ' + JSON.stringify(D.tokens[Q]) + ' attends to ' +\n",
    "    best.map(([w, k]) => JSON.stringify(D.tokens[k]) + ' (' + k + ') ' + fmt(w)).join(', ');\n",
    "}\n",
    "\n",
    "function draw() {\n",
    "  $('layer').value = L; $('head').value = H;\n",
    "  $('ttl').textContent = 'tokens \\u00b7 layer ' + L + ', head ' + H;\n",
    "  minis();\n",
    "  heat($('big'), L, H);\n",
    "  shade();\n",
    "  document.body.dataset.layer = L;\n",
    "  document.body.dataset.head = H;\n",
    "  const de = document.documentElement;\n",
    "  document.body.dataset.overflow = Math.max(0, de.scrollWidth - de.clientWidth);\n",
    "  document.body.dataset.width = de.clientWidth;\n",
    "}\n",
    "\n",
    "build();\n",
    "const P = new URLSearchParams(location.search);\n",
    "const num = (k, n) => { const v = P.get(k); return /^[0-9]+$/.test(v || '') && +v < n ? +v : -1; };\n",
    "if (num('layer', NL) >= 0) L = num('layer', NL);\n",
    "if (num('head', NH) >= 0) H = num('head', NH);\n",
    "if (num('token', T) >= 0) Q = num('token', T);\n",
    "draw();\n",
    "document.body.dataset.ready = '1';\n",
    "</script>\n",
    "</body>\n",
    "</html>\n",
    NULL};

static void put_lines(FILE *f, const char *const *lines) {
    for (; *lines; lines++) fputs(*lines, f);
}

int attention_view_write(const char *path, const attention_view *v, char *err) {
    ss_outfile o;
    int rc = ss_out_open(&o, path, err);
    if (rc) return rc;
    FILE *f = o.fp;
    put_lines(f, HEAD);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "model", v->model);
    cJSON_AddStringToObject(meta, "text", v->text);
    cJSON *toks = cJSON_AddArrayToObject(meta, "tokens"), *ids = cJSON_AddArrayToObject(meta, "ids");
    for (int t = 0; t < v->T; t++) {
        cJSON_AddItemToArray(toks, cJSON_CreateString(v->tokens[t]));
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(v->ids[t]));
    }
    cJSON_AddNumberToObject(meta, "n_layer", v->n_layer);
    cJSON_AddNumberToObject(meta, "n_head", v->n_head);
    cJSON_AddNumberToObject(meta, "T", v->T);
    cJSON_AddNumberToObject(meta, "layer", v->layer);
    cJSON_AddNumberToObject(meta, "head", v->head);
    /* the object without its closing brace, then the patterns */
    char *ms = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    if (!ms) { ss_out_abort(&o); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    ms[strlen(ms) - 1] = '\0';
    for (char *p = ms; *p; p++) {
        if (*p == '<') fputs("\\u003c", f);
        else fputc(*p, f);
    }
    free(ms);
    fputs(",\"pattern\":[", f);
    size_t TT = (size_t)v->T * v->T;
    for (int l = 0; l < v->n_layer; l++) {
        fputs(l ? ",[" : "[", f);
        for (int h = 0; h < v->n_head; h++) {
            fputs(h ? ",[" : "[", f);
            const float *p = v->pattern + ((size_t)l * v->n_head + h) * TT;
            for (int q = 0; q < v->T; q++)
                for (int k = 0; k <= q; k++) {
                    float w = p[(size_t)q * v->T + k];
                    if (q || k) fputc(',', f);
                    if (w == 0.0f) fputc('0', f);
                    else fprintf(f, "%.5g", w);
                }
            fputc(']', f);
        }
        fputc(']', f);
    }
    fputs("]}", f);
    put_lines(f, TAIL);
    if (ferror(f)) { ss_out_abort(&o); return ss_fail(err, SS_ERUNTIME, "%s: write error", path); }
    return ss_out_commit(&o, err);
}
