/* dashboard.c - writes dashboard.html (see dashboard.h). The page template
 * below is plain HTML/CSS/JS kept as one C string per line (single quotes in
 * the HTML/JS keep the escaping down); the JSON goes between DASH_HEAD and
 * DASH_TAIL. The JS builds every element with textContent, never innerHTML,
 * so labels and token text cannot inject markup.
 */
#include "dashboard.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const DASH_HEAD[] = {
    "<!DOCTYPE html>\n",
    "<html lang='en'>\n",
    "<head>\n",
    "<meta charset='utf-8'>\n",
    "<meta name='viewport' content='width=device-width, initial-scale=1'>\n",
    "<title>saesteer latent dashboard</title>\n",
    "<style>\n",
    ":root { --fg: #1d2330; --muted: #667085; --line: #e3e6ec; --bg: #f6f7f9; --card: #fff; --acc: #d9480f; --pos: #1a7f37; --neg: #b42318; }\n",
    "* { box-sizing: border-box; }\n",
    "body { margin: 0; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--fg); background: var(--bg); }\n",
    "header { background: var(--card); border-bottom: 1px solid var(--line); padding: 14px 22px 10px; position: sticky; top: 0; z-index: 2; }\n",
    "h1 { font-size: 18px; margin: 0 0 4px; }\n",
    "#meta { color: var(--muted); font-size: 12.5px; }\n",
    "#controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; margin-top: 10px; }\n",
    "#q { width: 340px; max-width: 100%; padding: 6px 10px; border: 1px solid #c9ced8; border-radius: 6px; font-size: 14px; }\n",
    "select, button { font-size: 13px; padding: 4px 8px; border: 1px solid #c9ced8; border-radius: 6px; background: #fff; }\n",
    "button:disabled { opacity: .45; }\n",
    "#status { color: var(--muted); font-size: 13px; }\n",
    "main { padding: 16px 22px 40px; display: grid; gap: 14px; grid-template-columns: repeat(auto-fill, minmax(min(560px, 100%), 1fr)); }\n",
    ".card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; }\n",
    ".card h2 { font-size: 15px; margin: 0 0 2px; display: flex; gap: 8px; align-items: baseline; }\n",
    ".card h2 .idx { color: var(--acc); font-variant-numeric: tabular-nums; }\n",
    ".card h2 .label.none { color: var(--muted); font-weight: normal; font-style: italic; }\n",
    ".stats { color: var(--muted); font-size: 12.5px; margin-bottom: 6px; }\n",
    ".row { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }\n",
    ".hist { flex: 0 0 auto; }\n",
    ".hist text { font-size: 9px; fill: var(--muted); }\n",
    ".hist rect { fill: #f08c00; }\n",
    ".logits { flex: 1 1 220px; display: grid; grid-template-columns: 1fr 1fr; gap: 4px 10px; font-size: 12px; }\n",
    ".logits h3 { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0; font-weight: 600; }\n",
    ".chip { display: inline-block; white-space: pre; font-family: ui-monospace, Menlo, Consolas, monospace; border-radius: 4px; padding: 0 4px; margin: 1px 2px 1px 0; font-size: 11.5px; }\n",
    ".chip.pos { background: #dcfce7; color: var(--pos); }\n",
    ".chip.neg { background: #fee4e2; color: var(--neg); }\n",
    ".ctxs { margin-top: 8px; border-top: 1px solid var(--line); padding-top: 6px; }\n",
    ".ctx { display: flex; gap: 8px; align-items: baseline; padding: 1px 0; }\n",
    ".ctx .v { flex: 0 0 46px; text-align: right; color: var(--muted); font-size: 11.5px; font-variant-numeric: tabular-nums; }\n",
    ".ctx .toks { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; white-space: pre; overflow: hidden; text-overflow: ellipsis; min-width: 0; }\n",
    ".tok { border-radius: 2px; cursor: pointer; }\n",
    ".tok.peak { outline: 1.5px solid var(--acc); }\n",
    ".empty { color: var(--muted); font-style: italic; font-size: 12.5px; }\n",
    ".hint { color: #98a2b3; font-size: 11px; margin-top: 6px; font-family: ui-monospace, Menlo, Consolas, monospace; }\n",
    "#pager { display: flex; gap: 6px; align-items: center; }\n",
    "@media (max-width: 640px) {\n",
    "  header { padding: 10px 10px 8px; position: static; }\n",
    "  main { padding: 10px 8px 28px; gap: 10px; }\n",
    "  .card { padding: 10px; }\n",
    "  #q { width: 100%; }\n",
    "  .ctx { gap: 4px; }\n",
    "  .ctx .v { flex-basis: 36px; }\n",
    "  .ctx .toks { font-size: 11.5px; }\n",
    "  .logits { flex-basis: 100%; }\n",
    "}\n",
    "</style>\n",
    "</head>\n",
    "<body>\n",
    "<header>\n",
    "<h1 id='title'>saesteer latent dashboard</h1>\n",
    "<div id='meta'></div>\n",
    "<div id='controls'>\n",
    "<input id='q' type='search' placeholder='search: label, token text, or #index' autocomplete='off'>\n",
    "<label>sort <select id='sort'>\n",
    "<option value='label' selected>labelled first, then max activation</option>\n",
    "<option value='max'>max activation</option>\n",
    "<option value='density'>density</option>\n",
    "<option value='index'>index</option>\n",
    "</select></label>\n",
    "<label><input id='hidedead' type='checkbox' checked> hide dead</label>\n",
    "<label>per page <select id='per'><option>10</option><option selected>25</option><option>50</option><option>100</option></select></label>\n",
    "<span id='pager'><button id='prev'>&#8592; prev</button><span id='page'></span><button id='next'>next &#8594;</button></span>\n",
    "<span id='status'></span>\n",
    "</div>\n",
    "</header>\n",
    "<main id='list'></main>\n",
    "<script type='application/json' id='data'>",
    NULL};

static const char *const DASH_TAIL[] = {
    "</script>\n",
    "<script>\n",
    "'use strict';\n",
    "const D = JSON.parse(document.getElementById('data').textContent);\n",
    "// contexts come compact: [value, window, [j, act, ...]] with the windows [centre, ids] stored once in D.ctxs\n",
    "for (const l of D.latents) l.contexts = l.contexts.map(([value, w, nz]) => {\n",
    "  const [center, ids] = D.ctxs[w], acts = new Array(ids.length).fill(0);\n",
    "  for (let i = 0; i < nz.length; i += 2) acts[nz[i]] = nz[i + 1];\n",
    "  return { value, center, ids, acts };\n",
    "});\n",
    "const L = D.latents;\n",
    "const $ = (id) => document.getElementById(id);\n",
    "const UTF8 = new TextDecoder('utf-8');\n",
    "// token text; a token whose bytes are a piece of a character comes as a byte array\n",
    "const TOK = (id) => { const t = D.tokens[id]; return t === undefined ? '<' + id + '>' : typeof t === 'string' ? t : UTF8.decode(new Uint8Array(t)); };\n",
    "const isBytes = (id) => Array.isArray(D.tokens[id]);\n",
    "const show = (s) => {\n",
    "  const t = s.replace(/\\n/g, '\\u21b5').replace(/\\t/g, '\\u2192').replace(/\\r/g, '\\u240d');\n",
    "  return /^ +$/.test(t) ? t.replace(/ /g, '\\u00b7') : t;   // a token of spaces only: make it visible\n",
    "};\n",
    "const fmt = (x) => (x === 0 ? '0' : Math.abs(x) >= 100 || Math.abs(x) < 0.01 ? x.toExponential(2) : x.toFixed(3).replace(/\\.?0+$/, ''));\n",
    "const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };\n",
    "const SVG = 'http://www.w3.org/2000/svg';\n",
    "let view = [], page = 0, searchKeys = null;\n",
    "\n",
    "function meta() {\n",
    "  $('title').textContent = 'Latents of ' + D.hook_name + ' \\u2014 ' + D.sae.split('/').pop();\n",
    "  document.title = 'saesteer: ' + D.hook_name + ' (' + D.d_sae + ' latents)';\n",
    "  const alive = L.filter((l) => l.n_active > 0).length;\n",
    "  $('meta').textContent = D.n_tokens.toLocaleString() + ' tokens of ' + D.text_file.split('/').pop() +\n",
    "    ' in ' + D.n_windows.toLocaleString() + ' windows of ' + D.window + (D.prepend_bos ? ' (BOS first, not scored)' : '') +\n",
    "    ' \\u00b7 ' + D.d_sae + ' latents, ' + alive + ' fired, ' + (D.d_sae - alive) + ' dead' +\n",
    "    ' \\u00b7 model ' + D.model + ' \\u00b7 logit effects: ' + D.logit_effect;\n",
    "}\n",
    "\n",
    "function keysOf(l) {\n",
    "  const peaks = l.contexts.map((c) => TOK(c.ids[c.center]).trim().toLowerCase());\n",
    "  const logits = l.top_logits.map((p) => TOK(p[0]).trim().toLowerCase());\n",
    "  return { label: (l.label || '').toLowerCase(), peaks, logits };\n",
    "}\n",
    "\n",
    "function score(l, q) {\n",
    "  if (/^#?\\d+$/.test(q)) return l.index === parseInt(q.replace('#', ''), 10) ? 1 : 0;\n",
    "  if (!searchKeys) searchKeys = L.map(keysOf);\n",
    "  const k = searchKeys[l.index], ql = q.toLowerCase().trim();\n",
    "  if (!ql) return 1;\n",
    "  let s = 0;\n",
    "  if (k.label.includes(ql)) s += 1000;\n",
    "  for (const p of k.peaks) if (p === ql) s += 2; else if (p.includes(ql)) s += 1;\n",
    "  for (const p of k.logits) if (p === ql) s += 0.5; else if (p.includes(ql)) s += 0.25;\n",
    "  return s;\n",
    "}\n",
    "\n",
    "function rebuild() {\n",
    "  const q = $('q').value.trim(), sort = $('sort').value, hide = $('hidedead').checked;\n",
    "  let items = L.filter((l) => !hide || l.n_active > 0 || (q && /^#?\\d+$/.test(q)));\n",
    "  if (q) {\n",
    "    const scored = [];\n",
    "    for (const l of items) { const s = score(l, q); if (s > 0) scored.push([s, l]); }\n",
    "    scored.sort((a, b) => b[0] - a[0] || a[1].index - b[1].index);\n",
    "    items = scored.map((p) => p[1]);\n",
    "  } else if (sort === 'density') items.sort((a, b) => b.density - a.density || a.index - b.index);\n",
    "  else if (sort === 'max') items.sort((a, b) => b.max_act - a.max_act || a.index - b.index);\n",
    "  else if (sort === 'label') items.sort((a, b) => (b.label ? 1 : 0) - (a.label ? 1 : 0) || b.max_act - a.max_act || a.index - b.index);\n",
    "  view = items;\n",
    "  page = 0;\n",
    "  render();\n",
    "}\n",
    "\n",
    "function hist(l) {\n",
    "  const W = 220, H = 56, pad = 12, bins = D.histogram.bins;\n",
    "  const svg = document.createElementNS(SVG, 'svg');\n",
    "  svg.setAttribute('width', W); svg.setAttribute('height', H + pad); svg.setAttribute('class', 'hist');\n",
    "  svg.setAttribute('role', 'img');\n",
    "  const c = l.hist, n = c.length;\n",
    "  if (!n) return svg;\n",
    "  const mx = Math.max(...c), bw = W / n;\n",
    "  c.forEach((v, j) => {\n",
    "    if (!v) return;\n",
    "    const r = document.createElementNS(SVG, 'rect'), h = Math.max(1, (H - 2) * v / mx);\n",
    "    r.setAttribute('x', (j * bw).toFixed(1)); r.setAttribute('y', (H - h).toFixed(1));\n",
    "    r.setAttribute('width', Math.max(1, bw - 1).toFixed(1)); r.setAttribute('height', h.toFixed(1));\n",
    "    const t = document.createElementNS(SVG, 'title');\n",
    "    const lo = D.histogram.log10_lo, step = (D.histogram.log10_hi - lo) / bins, b = l.hist_start + j;\n",
    "    t.textContent = v + ' tokens in [' + fmt(10 ** (lo + b * step)) + ', ' + fmt(10 ** (lo + (b + 1) * step)) + ')';\n",
    "    r.appendChild(t); svg.appendChild(r);\n",
    "  });\n",
    "  const edge = (b) => fmt(10 ** (D.histogram.log10_lo + b * (D.histogram.log10_hi - D.histogram.log10_lo) / bins));\n",
    "  const tx = (x, anchor, s) => { const t = document.createElementNS(SVG, 'text'); t.setAttribute('x', x); t.setAttribute('y', H + 10); t.setAttribute('text-anchor', anchor); t.textContent = s; svg.appendChild(t); };\n",
    "  tx(0, 'start', edge(l.hist_start)); tx(W, 'end', edge(l.hist_start + n));\n",
    "  tx(W / 2, 'middle', 'activation (log scale)');\n",
    "  return svg;\n",
    "}\n",
    "\n",
    "function chips(list, cls) {\n",
    "  const d = el('div');\n",
    "  for (const [id, v] of list) {\n",
    "    // a piece of a character shows its bytes (\\xe6\\x97), not U+FFFD\n",
    "    const bytes = isBytes(id) ? D.tokens[id].map((b) => '\\\\x' + b.toString(16).padStart(2, '0')).join('') : null;\n",
    "    const c = el('span', 'chip ' + cls + (bytes ? ' bytes' : ''), bytes || show(TOK(id)));\n",
    "    c.title = 'token ' + id + (bytes ? ' (part of a UTF-8 character)' : '') + ': ' + fmt(v);\n",
    "    d.appendChild(c);\n",
    "  }\n",
    "  return d;\n",
    "}\n",
    "\n",
    "function card(l) {\n",
    "  const c = el('section', 'card');\n",
    "  c.id = 'latent-' + l.index;\n",
    "  c.dataset.latent = l.index;\n",
    "  const h = el('h2');\n",
    "  h.appendChild(el('span', 'idx', '#' + l.index));\n",
    "  h.appendChild(el('span', 'label' + (l.label ? '' : ' none'), l.label || '(no label)'));\n",
    "  c.appendChild(h);\n",
    "  const pct = l.density * 100;\n",
    "  c.appendChild(el('div', 'stats', l.n_active\n",
    "    ? 'density ' + (pct >= 0.01 ? pct.toFixed(pct >= 1 ? 2 : 3) + '%' : pct.toExponential(1) + '%') + (l.density < 0.5 ? ' (1 in ' + Math.round(1 / l.density).toLocaleString() + ' tokens)' : '') +\n",
    "      ' \\u00b7 max ' + fmt(l.max_act) + ' \\u00b7 mean when active ' + fmt(l.mean_act)\n",
    "    : 'never fired on the scanned text'));\n",
    "  const row = el('div', 'row');\n",
    "  row.appendChild(hist(l));\n",
    "  if (l.top_logits.length) {\n",
    "    const g = el('div', 'logits');\n",
    "    g.appendChild(el('h3', '', 'boosts'));\n",
    "    g.appendChild(el('h3', '', 'suppresses'));\n",
    "    g.appendChild(chips(l.top_logits, 'pos'));\n",
    "    g.appendChild(chips(l.bottom_logits, 'neg'));\n",
    "    row.appendChild(g);\n",
    "  }\n",
    "  c.appendChild(row);\n",
    "  const cs = el('div', 'ctxs');\n",
    "  if (!l.contexts.length) cs.appendChild(el('div', 'empty', 'no activating contexts'));\n",
    "  const mx = l.max_act || 1;\n",
    "  for (const ctx of l.contexts) {\n",
    "    const r = el('div', 'ctx');\n",
    "    r.appendChild(el('span', 'v', fmt(ctx.value)));\n",
    "    const t = el('span', 'toks');\n",
    "    for (let j = 0; j < ctx.ids.length;) {\n",
    "      // a run of byte-piece tokens is decoded together and shown as one span\n",
    "      let k = j + 1;\n",
    "      if (isBytes(ctx.ids[j])) while (k < ctx.ids.length && isBytes(ctx.ids[k])) k++;\n",
    "      const ids = ctx.ids.slice(j, k), acts = ctx.acts.slice(j, k);\n",
    "      const text = ids.length > 1 ? UTF8.decode(new Uint8Array(ids.flatMap((id) => D.tokens[id]))) : TOK(ids[0]);\n",
    "      const a = Math.max(...acts), peak = ctx.center >= j && ctx.center < k;\n",
    "      const s = el('span', 'tok' + (peak ? ' peak' : ''), show(text));\n",
    "      if (a > 0) s.style.background = 'rgba(240,140,0,' + Math.min(1, 0.12 + 0.88 * a / mx).toFixed(3) + ')';\n",
    "      s.title = ids.map((id, z) => JSON.stringify(TOK(id)) + '  ' + fmt(acts[z])).join('\\n');\n",
    "      s.dataset.act = a;\n",
    "      s.onclick = () => { $('q').value = text.trim(); rebuild(); };\n",
    "      t.appendChild(s);\n",
    "      j = k;\n",
    "    }\n",
    "    r.appendChild(t);\n",
    "    cs.appendChild(r);\n",
    "  }\n",
    "  c.appendChild(cs);\n",
    "  c.appendChild(el('div', 'hint', 'saesteer label ' + D.sae + ' --latent ' + l.index + ' --text \"...\"'));\n",
    "  return c;\n",
    "}\n",
    "\n",
    "function render() {\n",
    "  const per = parseInt($('per').value, 10), pages = Math.max(1, Math.ceil(view.length / per));\n",
    "  if (page >= pages) page = pages - 1;\n",
    "  const list = $('list');\n",
    "  list.textContent = '';\n",
    "  const frag = document.createDocumentFragment();\n",
    "  for (const l of view.slice(page * per, page * per + per)) frag.appendChild(card(l));\n",
    "  list.appendChild(frag);\n",
    "  $('page').textContent = 'page ' + (page + 1) + ' / ' + pages;\n",
    "  $('prev').disabled = page === 0;\n",
    "  $('next').disabled = page >= pages - 1;\n",
    "  const first = view.length ? page * per + 1 : 0;\n",
    "  $('status').textContent = view.length + ' latents' + ($('q').value.trim() ? ' match' : '') + ' \\u00b7 showing ' + first + '\\u2013' + Math.min(view.length, page * per + per);\n",
    "  document.body.dataset.matches = view.length;\n",
    "}\n",
    "\n",
    "let timer = 0;\n",
    "$('q').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(rebuild, 150); });\n",
    "for (const id of ['sort', 'hidedead']) $(id).addEventListener('change', rebuild);\n",
    "$('per').addEventListener('change', render);\n",
    "$('prev').onclick = () => { page--; render(); window.scrollTo(0, 0); };\n",
    "$('next').onclick = () => { page++; render(); window.scrollTo(0, 0); };\n",
    "\n",
    "meta();\n",
    "const P = new URLSearchParams(location.search);\n",
    "if (P.get('sort')) $('sort').value = P.get('sort');\n",
    "if (/^[1-9][0-9]*$/.test(P.get('per') || '')) { const o = el('option', '', P.get('per')); $('per').appendChild(o); $('per').value = P.get('per'); }\n",
    "if (P.get('q')) $('q').value = P.get('q');\n",
    "if (P.get('latent')) $('q').value = '#' + P.get('latent');\n",
    "rebuild();\n",
    "if (P.get('page')) { page = Math.max(0, parseInt(P.get('page'), 10) - 1 || 0); render(); }\n",
    "document.body.dataset.readyMs = Math.round(performance.now());   // time to a rendered page (tests print it)\n",
    "document.body.dataset.overflow = Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth);\n",
    "document.body.dataset.width = document.documentElement.clientWidth;\n",
    "</script>\n",
    "</body>\n",
    "</html>\n",
    NULL};

static int put_lines(FILE *out, const char *const *lines) {
    for (; *lines; lines++)
        if (fputs(*lines, out) == EOF) return -1;
    return 0;
}

/* ---- the compact page data ----
 * latents.json is inlined as it is, except each latent's contexts: the token
 * windows (centre + ids) are stored once in "ctxs" (most top contexts are
 * shared by several latents), and a context becomes [value, window, [j, act,
 * ...]] with only its nonzero activations (4 significant digits). The page
 * expands them on load. */

/* '<' as \u003c, so no string can close the script element */
static void put_safe(FILE *f, const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '<') continue;
        if (i > start) fwrite(s + start, 1, i - start, f);
        fputs("\\u003c", f);
        start = i + 1;
    }
    if (n > start) fwrite(s + start, 1, n - start, f);
}

static void put_num(FILE *f, double x) {
    if (!isfinite(x)) fputs("null", f);
    else if (x == floor(x) && fabs(x) < 1e15) fprintf(f, "%.0f", x);
    else fprintf(f, "%.4g", x);
}

static void put_value(FILE *f, const cJSON *v);

static void put_string(FILE *f, const char *s) {
    cJSON *t = cJSON_CreateString(s);
    char *p = t ? cJSON_PrintUnformatted(t) : NULL;
    if (p) put_safe(f, p, strlen(p));
    else fputs("\"\"", f);
    free(p);
    cJSON_Delete(t);
}

static void put_value(FILE *f, const cJSON *v) {
    if (cJSON_IsNumber(v)) put_num(f, v->valuedouble);
    else if (cJSON_IsString(v)) put_string(f, v->valuestring);
    else if (cJSON_IsTrue(v)) fputs("true", f);
    else if (cJSON_IsFalse(v)) fputs("false", f);
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int obj = cJSON_IsObject(v), first = 1;
        fputc(obj ? '{' : '[', f);
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!first) fputc(',', f);
            first = 0;
            if (obj) { put_string(f, c->string); fputc(':', f); }
            put_value(f, c);
        }
        fputc(obj ? '}' : ']', f);
    } else fputs("null", f);
}

/* the windows seen so far: pool holds [center, len, ids...] records */
typedef struct {
    int *pool; size_t n_pool, cap_pool;
    size_t *slot; size_t n_slot;   /* open addressing: window index + 1, 0 = empty */
    size_t n;                      /* windows */
    size_t *order;                 /* pool offset of window k */
} ctx_table;

static uint64_t ctx_hash(const int *r) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 2 + r[1]; i++) { h ^= (uint32_t)r[i]; h *= 1099511628211ULL; }
    return h;
}

/* index of the window rec = [center, len, ids...], adding it if new; -1 on OOM */
static long ctx_intern(ctx_table *t, const int *rec) {
    if (2 * (t->n + 1) > t->n_slot) {
        size_t ns = t->n_slot ? 2 * t->n_slot : 4096;
        size_t *sl = calloc(ns, sizeof(size_t));
        if (!sl) return -1;
        for (size_t i = 0; i < t->n_slot; i++) {
            if (!t->slot[i]) continue;
            size_t j = ctx_hash(t->pool + t->order[t->slot[i] - 1]) & (ns - 1);
            while (sl[j]) j = (j + 1) & (ns - 1);
            sl[j] = t->slot[i];
        }
        free(t->slot);
        t->slot = sl;
        t->n_slot = ns;
        size_t *o = realloc(t->order, ns / 2 * sizeof(size_t));
        if (!o) return -1;
        t->order = o;
    }
    size_t len = 2 + (size_t)rec[1], j = ctx_hash(rec) & (t->n_slot - 1);
    while (t->slot[j]) {
        const int *q = t->pool + t->order[t->slot[j] - 1];
        if (q[1] == rec[1] && !memcmp(q, rec, len * sizeof(int))) return (long)(t->slot[j] - 1);
        j = (j + 1) & (t->n_slot - 1);
    }
    if (t->n_pool + len > t->cap_pool) {
        size_t nc = t->cap_pool ? 2 * t->cap_pool : 65536;
        while (nc < t->n_pool + len) nc *= 2;
        int *p = realloc(t->pool, nc * sizeof(int));
        if (!p) return -1;
        t->pool = p;
        t->cap_pool = nc;
    }
    memcpy(t->pool + t->n_pool, rec, len * sizeof(int));
    t->slot[j] = t->n + 1;
    t->order[t->n] = t->n_pool;
    t->n_pool += len;
    return (long)t->n++;
}

/* one latent object: contexts compacted, everything else as it was */
static int put_latent(FILE *f, const cJSON *l, ctx_table *t) {
    int first = 1, rec[4096];
    fputc('{', f);
    for (const cJSON *c = l->child; c; c = c->next) {
        if (!first) fputc(',', f);
        first = 0;
        put_string(f, c->string);
        fputc(':', f);
        if (strcmp(c->string, "contexts") || !cJSON_IsArray(c)) { put_value(f, c); continue; }
        fputc('[', f);
        int k = 0;
        for (const cJSON *x = c->child; x; x = x->next, k++) {
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(x, "ids"), *acts = cJSON_GetObjectItemCaseSensitive(x, "acts");
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(x, "value"), *ctr = cJSON_GetObjectItemCaseSensitive(x, "center");
            int n = cJSON_GetArraySize(ids);
            if (!cJSON_IsArray(ids) || !cJSON_IsArray(acts) || cJSON_GetArraySize(acts) != n || n > 4000 ||
                !cJSON_IsNumber(val) || !cJSON_IsNumber(ctr))
                return -1;
            rec[0] = ctr->valueint;
            rec[1] = n;
            int i = 0;
            for (const cJSON *d = ids->child; d; d = d->next) rec[2 + i++] = d->valueint;
            long w = ctx_intern(t, rec);
            if (w < 0) return -1;
            fputs(k ? ",[" : "[", f);
            put_num(f, val->valuedouble);
            fprintf(f, ",%ld,[", w);
            i = 0;
            int any = 0;
            for (const cJSON *a = acts->child; a; a = a->next, i++) {
                if (a->valuedouble == 0) continue;
                fprintf(f, any ? ",%d," : "%d,", i);
                put_num(f, a->valuedouble);
                any = 1;
            }
            fputs("]]", f);
        }
        fputc(']', f);
    }
    fputc('}', f);
    return 0;
}

/* end of the JSON value starting at p (no validation beyond nesting) */
static const char *skip_value(const char *p, const char *end) {
    int depth = 0;
    for (; p < end; p++) {
        char ch = *p;
        if (ch == '"') {
            for (p++; p < end && *p != '"'; p++) if (*p == '\\') p++;
            if (depth == 0) return p + 1;
        } else if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') { if (--depth == 0) return p + 1; if (depth < 0) return p; }
        else if (depth == 0 && (ch == ',' )) return p;
    }
    return end;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

int dashboard_write(FILE *out, FILE *json_in) {
    size_t cap = 1 << 20, n = 0, r;
    char *buf = malloc(cap);
    if (!buf) return -1;
    while ((r = fread(buf + n, 1, cap - n, json_in)) > 0) {
        n += r;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) { free(buf); return -1; }
            buf = b;
        }
    }
    if (ferror(json_in)) { free(buf); return -1; }
    const char *p = skip_ws(buf, buf + n), *end = buf + n;
    ctx_table t = {0};
    int rc = -1;
    if (p >= end || *p != '{') goto done;
    if (put_lines(out, DASH_HEAD)) goto done;
    fputc('{', out);
    p++;
    int first = 1, line_break = 0;
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}') break;
        if (p >= end || *p != '"') goto done;
        const char *k0 = p, *k1 = skip_value(p, end);
        p = skip_ws(k1, end);
        if (p >= end || *p != ':') goto done;
        p = skip_ws(p + 1, end);
        const char *v1 = skip_value(p, end);
        /* "ranks" and the timing fields after it keep a line of their own, as in latents.json, so
           outputs that differ only in how they were made differ only in that line */
        int own_line = ((size_t)(k1 - k0) == 7 && !memcmp(k0, "\"ranks\"", 7)) || line_break;
        line_break = (size_t)(k1 - k0) == 14 && !memcmp(k0, "\"tokens_per_s\"", 14);
        if (!first) fputs(own_line ? ",\n" : ",", out);
        first = 0;
        put_safe(out, k0, (size_t)(k1 - k0));
        fputc(':', out);
        if ((size_t)(k1 - k0) == 9 && !memcmp(k0, "\"latents\"", 9) && *p == '[') {
            /* each latent parsed and written on its own: memory stays one latent's tree */
            fputc('[', out);
            const char *q = skip_ws(p + 1, end);
            int nl = 0;
            while (q < v1 && *q == '{') {
                const char *e = skip_value(q, end);
                cJSON *l = cJSON_ParseWithLength(q, (size_t)(e - q));
                if (!l) goto done;
                if (nl++) fputs(",\n", out);
                int bad = put_latent(out, l, &t);
                cJSON_Delete(l);
                if (bad) goto done;
                q = skip_ws(e, end);
                if (q < end && *q == ',') q = skip_ws(q + 1, end);
            }
            fputs("]", out);
        } else {
            put_safe(out, p, (size_t)(v1 - p));
        }
        p = skip_ws(v1, end);
        if (p < end && *p == ',') p++;
    }
    fputs(",\n\"ctxs\":[", out);
    for (size_t k = 0; k < t.n; k++) {
        const int *w = t.pool + t.order[k];
        fprintf(out, k ? ",[%d,[" : "[%d,[", w[0]);
        for (int i = 0; i < w[1]; i++) fprintf(out, i ? ",%d" : "%d", w[2 + i]);
        fputs("]]", out);
    }
    fputs("]}", out);
    rc = put_lines(out, DASH_TAIL);
    if (ferror(out)) rc = -1;
done:
    free(buf);
    free(t.pool);
    free(t.slot);
    free(t.order);
    return rc;
}
