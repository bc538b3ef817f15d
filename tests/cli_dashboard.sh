#!/usr/bin/env bash
# cli_dashboard.sh SAESTEER REPO - render scan's dashboard.html in headless
# Chromium and check what a person would see: latent cards with labels,
# histograms and shaded contexts; the search box (via the ?q= hook) finding
# latents by label and by token exactly as the documented rule says; a label
# and token text full of markup shown as text (no injected elements, the
# inlined JSON cannot close its <script>); an 8192-latent dictionary still
# rendering one page quickly. Writes a screenshot (path printed) to look at.
# Skips (exit 0, "SKIP") only when chromium is not installed:
#   apt-get install -y chromium
set -u
BIN=$(realpath "$1"); ROOT=$(realpath "$2")
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP cli_dashboard: chromium not installed (apt-get install -y chromium); the dashboard was not rendered"
  exit 0
fi
T=$(mktemp -d /tmp/cli_dashboard.XXXXXX)
KEEP=${SAESTEER_KEEP_SCREENSHOT:-/tmp/saesteer-dashboard.png}
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
H="$ROOT/tests/scan_helper.py"
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# dom URLSUFFIX OUT: the DOM after the page's scripts ran
dom() {
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --user-data-dir="$T/profile" \
    --virtual-time-budget=5000 --dump-dom "file://$T/scan/dashboard.html$1" >"$2" 2>"$T/chrome.err"
}

"$PY" "$ROOT/bench/make_weights.py" "$T/model" --size tiny >/dev/null || { echo "FAIL make_weights"; exit 1; }
M="$T/model"
# text with markup that must stay text: a closing script tag, a comment opener, an onerror
"$PY" - "$T/text.txt" <<'EOF'
import sys, random
random.seed(2)
w = ("the cat sat on a mat and Paris is in France zebra zebras striped horse Africa savanna "
     "</script><script>document.body.dataset.pwned=1</script> <!-- <img src=x onerror=alert(1)> & &amp; "
     "café 日本 Hello WORLD 2024").split(" ")
out = []
for i in range(3000):
    out.append(random.choice(w))
    out.append(random.choice([" ", " ", " ", "\n", ". "]))
open(sys.argv[1], "w", encoding="utf-8").write("".join(out))
EOF
"$PY" "$H" make-sae "$T/s.h5" --d-in 64 --d-sae 256 --hook blocks.1.hook_resid_pre --center --ctx 64 --seed 3
"$BIN" label "$T/s.h5" --latent 3 --text "zebra <b>detector</b> </script>" >/dev/null || bad "label"
"$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/text.txt" -o "$T/scan" --quiet >/dev/null || { echo "FAIL scan"; exit 1; }

# 1. the first page
if dom "" "$T/d0.html"; then
  "$PY" - "$T/d0.html" "$T/scan/latents.json" <<'EOF' && ok "first page: cards, labels, histograms, shaded contexts, logit chips" || bad "first page"
import json, re, sys
d, J = open(sys.argv[1], encoding="utf-8").read(), json.load(open(sys.argv[2]))
alive = [L for L in J["latents"] if L["n_active"] > 0]
# default order: labelled latents first, then by max activation
alive.sort(key=lambda L: (not L["label"], -L["max_act"], L["index"]))
cards = re.findall(r'<section class="card" id="latent-(\d+)"', d)
m = re.search(r'data-matches="(\d+)"', d)
ms = re.search(r'data-ready-ms="(\d+)"', d)
checks = {
    "25 cards": len(cards) == min(25, len(alive)),
    "cards: labelled first, then by max activation": [int(c) for c in cards] == [L["index"] for L in alive[:25]],
    "matches = alive latents": m and int(m.group(1)) == len(alive),
    "histogram bars": d.count("<rect") >= len(cards),
    "shaded tokens": len(re.findall(r'class="tok( peak)?"[^>]*style="background: rgba?\(240, 140, 0', d)) > 100,
    "peak tokens marked": d.count('class="tok peak"') >= len(cards),
    "logit chips": d.count('class="chip pos') == 10 * len(cards) and d.count('class="chip neg') == 10 * len(cards),
    # a token that is a piece of a UTF-8 character shows its bytes, never U+FFFD
    "partial-UTF-8 chips show bytes": all(re.fullmatch(r"(\\x[0-9a-f]{2})+", t) for t in re.findall(r'class="chip (?:pos|neg) bytes"[^>]*>([^<]*)<', d))
        and not re.search(r'class="chip[^"]*"[^>]*>[^<]*\ufffd', d),
    "density line": d.count("density ") >= len(cards),
    "title": "Latents of blocks.1.hook_resid_pre" in d,
    "labelled latent 3 shown as text": "zebra &lt;b&gt;detector&lt;/b&gt; &lt;/script&gt;" in d and "<b>detector" not in d,
    "no injected script ran": "data-pwned" not in d,
    "two script elements": len(re.findall(r"<script", d)) == 2,
    "no injected img": "<img" not in d,
}
for k, v in checks.items():
    print(("  ok   " if v else "  FAIL ") + k)
nb = len(re.findall("chip (?:pos|neg) bytes", d))
print(f"  {len(cards)} cards of {len(alive)} alive latents, {nb} byte chips, page ready in {ms.group(1) if ms else '?'} ms")
sys.exit(0 if all(checks.values()) else 1)
EOF
else bad "chromium --dump-dom failed: $(tail -3 "$T/chrome.err")"; fi

# 2. search by label (?q= hook)
dom "?q=zebra%20%3Cb%3E" "$T/d1.html"
"$PY" - "$T/d1.html" <<'EOF' && ok "search by label: ?q=zebra <b> finds latent 3 only" || bad "search by label"
import re, sys
d = open(sys.argv[1], encoding="utf-8").read()
cards = re.findall(r'<section class="card" id="latent-(\d+)"', d)
print("  cards:", cards, "matches:", re.search(r'data-matches="(\d+)"', d).group(1))
sys.exit(0 if cards == ["3"] else 1)
EOF

# 3. search by token: the page must find exactly the latents the documented rule gives
#    (label contains q, or a context's peak token or a top output token contains q; trimmed, case-insensitive)
for q in zebra Paris script '&'; do
  enc=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$q")
  dom "?q=$enc&per=1000" "$T/d2.html"
  "$PY" - "$T/d2.html" "$T/scan/latents.json" "$q" <<'EOF' && ok "search by token '$q' finds the latents the rule gives, best first" || bad "search by token '$q'"
import json, re, sys
d, J, q = open(sys.argv[1], encoding="utf-8").read(), json.load(open(sys.argv[2])), sys.argv[3].lower().strip()
def tok(i):
    t = J["tokens"][str(i)]   # text, or the raw bytes of a piece of a character
    return (t if isinstance(t, str) else bytes(t).decode("utf-8", "replace")).strip().lower()
def score(L):
    s = 1000 * (q in L["label"].lower())
    for c in L["contexts"]:
        p = tok(c["ids"][c["center"]]); s += 2 if p == q else 1 if q in p else 0
    for i, _ in L["top_logits"]:
        p = tok(i); s += 0.5 if p == q else 0.25 if q in p else 0
    return s
want = sorted(((score(L), L["index"]) for L in J["latents"] if L["n_active"] > 0 and score(L) > 0), key=lambda p: (-p[0], p[1]))
cards = [int(c) for c in re.findall(r'<section class="card" id="latent-(\d+)"', d)]
print(f"  q={q!r}: page shows {len(cards)} latents, rule gives {len(want)}; first {cards[:6]}")
sys.exit(0 if cards == [i for _, i in want] and len(cards) > 0 else 1)
EOF
done

# 4. one latent by index, even a dead one
dead=$("$PY" -c 'import json,sys; J=json.load(open(sys.argv[1])); print(next((L["index"] for L in J["latents"] if L["n_active"]==0), 0))' "$T/scan/latents.json")
dom "?latent=$dead" "$T/d3.html"
grep -q "id=\"latent-$dead\"" "$T/d3.html" && [ "$(grep -o '<section class="card"' "$T/d3.html" | wc -l)" = 1 ] &&
  ok "?latent=$dead shows that latent ($(grep -o 'never fired[^<]*\|density [^<]*' "$T/d3.html" | head -1))" || bad "?latent"

# 4b. a 420 px window (Chromium makes no window under 500 px, so the page goes in a 420 px iframe) and 1280 px:
#     nothing wider than the window; the page stores each context window once, so it is far smaller than latents.json
cat > "$T/scan/harness.html" <<'EOF'
<!DOCTYPE html><html><body style="margin:0"><script>
const P = new URLSearchParams(location.search), f = document.createElement('iframe');
f.style.cssText = 'border:0;height:1000px;width:' + P.get('w') + 'px';
f.src = 'dashboard.html';
f.onload = () => { const b = f.contentDocument.body; document.body.dataset.out = JSON.stringify({ width: +b.dataset.width, overflow: +b.dataset.overflow, cards: f.contentDocument.querySelectorAll('.card').length }); };
document.body.appendChild(f);
</script></body></html>
EOF
for w in 420 1280; do
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --allow-file-access-from-files --user-data-dir="$T/profile" \
    --virtual-time-budget=5000 --dump-dom "file://$T/scan/harness.html?w=$w" >"$T/n$w.html" 2>"$T/chrome.err"
  "$PY" - "$T/n$w.html" "$w" <<'EOF' && ok "$w px window: no sideways overflow" || bad "$w px window overflows"
import html, json, re, sys
m = re.search(r'data-out="([^"]*)"', open(sys.argv[1], encoding="utf-8").read())
o = json.loads(html.unescape(m.group(1))) if m else {}
print("  ", o)
w = int(sys.argv[2])
sys.exit(0 if o and w - 20 <= o["width"] <= w and o["overflow"] == 0 and o["cards"] > 0 else 1)
EOF
done
"$PY" - "$T/scan/dashboard.html" "$T/scan/latents.json" <<'EOF' && ok "each context window stored once in the page" || bad "page size"
import json, os, re, sys
page, J = open(sys.argv[1], encoding="utf-8").read(), json.load(open(sys.argv[2]))
D = json.loads(re.search(r"<script type='application/json' id='data'>(.*?)</script>", page, re.S).group(1))
want = {(c["center"], tuple(c["ids"])) for L in J["latents"] for c in L["contexts"]}
got = [(w[0], tuple(w[1])) for w in D["ctxs"]]
# and every context expands back to latents.json's ids, centre and activations (4 significant digits)
ok = len(got) == len(set(got)) == len(want) and set(got) == want
for L, M in zip(J["latents"], D["latents"]):
    for c, (v, w, nz) in zip(L["contexts"], M["contexts"]):
        acts = [0.0] * len(c["ids"])
        for i in range(0, len(nz), 2): acts[nz[i]] = nz[i + 1]
        ok &= got[w] == (c["center"], tuple(c["ids"])) and all(abs(a - b) <= 1e-3 * max(1, abs(b)) for a, b in zip(acts, c["acts"]))
n = sum(len(L["contexts"]) for L in J["latents"])
print(f"  {n} contexts, {len(got)} windows stored; dashboard.html {os.path.getsize(sys.argv[1]) / 1e6:.2f} MB, latents.json {os.path.getsize(sys.argv[2]) / 1e6:.2f} MB")
sys.exit(0 if ok and os.path.getsize(sys.argv[1]) < os.path.getsize(sys.argv[2]) else 1)
EOF

# 5. a screenshot to look at
if timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --user-data-dir="$T/profile" --hide-scrollbars \
     --window-size=1400,1100 --screenshot="$T/shot.png" "file://$T/scan/dashboard.html?q=zebra&per=4" >/dev/null 2>&1 &&
   [ "$(stat -c %s "$T/shot.png")" -gt 20000 ]; then
  cp "$T/shot.png" "$KEEP" 2>/dev/null
  ok "screenshot $(stat -c %s "$T/shot.png") bytes, kept at $KEEP"
else bad "screenshot"; fi

# 6. a large dictionary: one page stays quick
"$PY" "$H" make-sae "$T/big.h5" --d-in 64 --d-sae 8192 --hook blocks.1.hook_resid_pre --center --ctx 64 --seed 4
"$BIN" scan --model "$M" --sae "$T/big.h5" --text-file "$T/text.txt" -o "$T/scan" --quiet --top 10 >/dev/null || bad "big scan"
t0=$(date +%s.%N)
dom "?sort=density" "$T/d4.html"
t1=$(date +%s.%N)
"$PY" - "$T/d4.html" "$T/scan/dashboard.html" "$t0" "$t1" <<'EOF' && ok "8192 latents: first page rendered" || bad "8192 latents"
import os, re, sys
d = open(sys.argv[1], encoding="utf-8").read()
cards = re.findall(r'<section class="card" id="latent-(\d+)"', d)
ms = re.search(r'data-ready-ms="(\d+)"', d)
print(f"  dashboard.html {os.path.getsize(sys.argv[2]) / 1e6:.1f} MB, {len(cards)} cards, page ready after {ms.group(1) if ms else '?'} ms "
      f"(chromium run {float(sys.argv[4]) - float(sys.argv[3]):.1f} s in all)")
sys.exit(0 if len(cards) == 25 and ms else 1)
EOF

echo "cli_dashboard: $fails failures"
exit $((fails > 0))
