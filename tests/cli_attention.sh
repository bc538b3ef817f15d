#!/usr/bin/env bash
# cli_attention.sh SAESTEER REPO - the `attention` page in headless Chromium:
# the shading a hovered token gets is its row of blocks.L.attn.hook_pattern
# (checked against the float64 torch reference, tests/ref_analysis.py), the
# layer/head pick and the small multiples work, token text full of markup
# stays text, and the page fits a 420 px window (and a 1280 px one) without
# sideways scrolling. Chromium will not make a window narrower than 500 px,
# so the page is loaded in a 420 px iframe of a small harness page (file://
# pages may read each other with --allow-file-access-from-files). Writes a
# screenshot (path printed). Skips (exit 0, "SKIP") only when chromium is
# not installed: apt-get install -y chromium
set -u
BIN=$(realpath "$1"); ROOT=$(realpath "$2")
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP cli_attention: chromium not installed (apt-get install -y chromium); the page was not rendered"
  exit 0
fi
T=$(mktemp -d /tmp/cli_attention.XXXXXX)
KEEP=${SAESTEER_KEEP_SCREENSHOT_ATTN:-/tmp/saesteer-attention.png}
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
M="$ROOT/tests/fixtures/tiny-oa"
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

TEXT='The </script><script>document.body.dataset.pwned=1</script> <b>quick</b> brown fox & jumps over the lazy dog'
"$BIN" attention --model "$M" --text "$TEXT" -o "$T/att.html" --layer 1 --head 2 >/dev/null || { echo "FAIL attention"; exit 1; }
ids=$("$BIN" tokenize --model "$M" --text "$TEXT" --json | "$PY" -c "import json,sys; print(','.join(map(str, [50256] + json.load(sys.stdin)['ids'])))")
"$PY" "$ROOT/tests/ref_analysis.py" attention "$M" --ids "$ids" -o "$T/ref.npy" >/dev/null || { echo "FAIL reference"; exit 1; }

# the harness: load the page at a width, then hover a token and click a small multiple; report what the DOM shows
cat > "$T/harness.html" <<'EOF'
<!DOCTYPE html><html><body style="margin:0">
<script>
const P = new URLSearchParams(location.search);
const f = document.createElement('iframe');
f.style.cssText = 'border:0;height:900px;width:' + P.get('w') + 'px';
f.src = 'att.html?' + P.get('q');
f.onload = () => {
  const d = f.contentDocument, b = d.body, out = {};
  const snap = () => ({ layer: +b.dataset.layer, head: +b.dataset.head, token: +b.dataset.token,
                        w: [...d.querySelectorAll('.tok')].map((s) => +s.dataset.w) });
  out.width = +b.dataset.width; out.overflow = +b.dataset.overflow; out.ready = b.dataset.ready;
  out.first = snap();
  d.querySelectorAll('.tok')[4].dispatchEvent(new MouseEvent('mouseenter'));
  out.hover = snap();
  d.querySelectorAll('.mini')[0].click();
  out.click = snap();
  out.minis = d.querySelectorAll('.mini canvas').length;
  out.sel = [...d.querySelectorAll('.mini.sel')].map((m) => +m.dataset.head);
  out.pwned = 'pwned' in b.dataset; out.bold = d.querySelectorAll('b').length;
  out.scripts = d.querySelectorAll('script').length;
  out.tokens = [...d.querySelectorAll('.tok')].map((s) => s.textContent).join('');
  document.body.dataset.out = JSON.stringify(out);
};
document.body.appendChild(f);
</script></body></html>
EOF
for w in 420 1280; do
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --allow-file-access-from-files --user-data-dir="$T/profile" \
    --virtual-time-budget=5000 --dump-dom "file://$T/harness.html?w=$w&q=layer%3D1%26head%3D2%26token%3D5" >"$T/d$w.html" 2>"$T/chrome.err"
  "$PY" - "$T/d$w.html" "$T/ref.npy" "$w" "$TEXT" <<'EOF' && ok "$w px: shading = pattern rows (torch), layer/head pick, hover, small multiples, markup as text, no overflow" || bad "$w px page"
import html, json, re, sys, numpy as np
d = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'data-out="([^"]*)"', d)
if not m:
    print("  no result from the harness"); sys.exit(1)
o, ref, w = json.loads(html.unescape(m.group(1))), np.load(sys.argv[2]), int(sys.argv[3])
L, H, T, _ = ref.shape
def diff(snap, l, h, q):
    return float(np.abs(np.array(snap["w"]) - ref[l, h, q]).max())
checks = {
    "window as wide as asked (minus a scrollbar)": w - 20 <= o["width"] <= w,
    "no sideways overflow": o["overflow"] == 0,
    "?layer=1&head=2&token=5 selected": (o["first"]["layer"], o["first"]["head"], o["first"]["token"]) == (1, 2, 5),
    "token 5's shading = pattern[1, 2, 5] within 1e-4": diff(o["first"], 1, 2, 5) <= 1e-4,
    "hover token 4 shades pattern[1, 2, 4]": o["hover"]["token"] == 4 and diff(o["hover"], 1, 2, 4) <= 1e-4,
    "click small multiple 0 picks head 0": o["click"]["head"] == 0 and diff(o["click"], 1, 0, 4) <= 1e-4 and o["sel"] == [0],
    "one small multiple per head": o["minis"] == H,
    "markup in the text stays text": not o["pwned"] and o["bold"] == 0 and o["scripts"] == 2,
    "tokens spell the prompt": o["tokens"] == "<|endoftext|>" + sys.argv[4],
}
for k, v in checks.items():
    print(("  ok   " if v else "  FAIL ") + k)
print(f"  width {o['width']} px, overflow {o['overflow']} px; max |shading - torch pattern| "
      f"{max(diff(o['first'], 1, 2, 5), diff(o['hover'], 1, 2, 4), diff(o['click'], 1, 0, 4)):.2e}")
sys.exit(0 if all(checks.values()) else 1)
EOF
done

# a screenshot of the narrow page to look at
if timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --allow-file-access-from-files --user-data-dir="$T/profile" \
     --hide-scrollbars --window-size=500,900 --virtual-time-budget=5000 --screenshot="$T/shot.png" \
     "file://$T/harness.html?w=420&q=token%3D6" >/dev/null 2>&1 && [ "$(stat -c %s "$T/shot.png")" -gt 10000 ]; then
  cp "$T/shot.png" "$KEEP" 2>/dev/null
  ok "screenshot $(stat -c %s "$T/shot.png") bytes, kept at $KEEP"
else bad "screenshot"; fi

echo "cli_attention: $fails failures"
exit $((fails > 0))
