#!/usr/bin/env bash
# cli_badinput.sh - the bad-input matrix (issues 2, 3, 4, 6) as a test.
#
# Every hostile input below must give: exit status 1 or 2 (never a signal,
# never 0), exactly one line on stderr that names the file or the field at
# fault, nothing on stdout that looks like a result, and an output file that
# already existed left byte-identical (no temporary file left beside it).
#
#   bash tests/cli_badinput.sh path/to/saesteer REPO_ROOT            # the test (ctest runs this)
#   bash tests/cli_badinput.sh path/to/saesteer REPO_ROOT --doc      # also rewrite docs/BAD_INPUT.md
#
# The hostile files are built at run time from tests/fixtures/tiny-sp and
# tests/fixtures/saes/standard_centered when present, else from a random tiny
# GPT-2 and SAE made with numpy (/usr/bin/python3). The test also checks that
# docs/BAD_INPUT.md lists every case with the exit status seen now; the
# messages there are regenerated with --doc.
# Set BADINPUT_WRAP="valgrind -q --error-exitcode=99" (or similar) to run each
# case under a wrapper.
set -u
BIN=${1:?usage: cli_badinput.sh SAESTEER REPO_ROOT [--doc]}
ROOT=${2:?usage: cli_badinput.sh SAESTEER REPO_ROOT [--doc]}
DOC_MODE=${3:-}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$ROOT" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cli_badinput.XXXXXX")
trap 'rm -rf "$T"' EXIT
WRAP=${BADINPUT_WRAP:-}

PY=""
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import numpy, h5py' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then echo "FAIL no python3 with numpy and h5py (apt install python3-numpy python3-h5py)"; exit 1; fi

# ------------------------------------------------------------- assets ---
FX=${SAESTEER_FIXTURES:-$ROOT/tests/fixtures}
"$PY" - "$T" "$ROOT" "$FX" <<'EOF' || { echo "FAIL could not build the hostile inputs"; exit 1; }
import json, os, shutil, struct, sys
import numpy as np
T, root, fx = sys.argv[1:4]
rng = np.random.default_rng(0)
r = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)

def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]

def write_st_raw(path, header, blob, hlen=None):
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if hlen is None else hlen)); f.write(h); f.write(blob)

def save_st(path, t):
    hdr, off, blobs = {}, 0, []
    for k, v in t.items():
        hdr[k] = dict(dtype="F32", shape=list(v.shape), data_offsets=[off, off + v.nbytes]); off += v.nbytes
        blobs.append(v.tobytes())
    write_st_raw(path, hdr, b"".join(blobs))

# ---- the good model: fixture tiny-sp, else a random tiny GPT-2 (2 layers, 32 wide, 64 positions)
good = os.path.join(T, "model")
if os.path.isfile(os.path.join(fx, "tiny-sp", "config.json")):
    shutil.copytree(os.path.join(fx, "tiny-sp"), good)
else:
    C, L, V, P = 32, 2, 50257, 64
    os.makedirs(good)
    json.dump(dict(model_type="gpt2", n_embd=C, n_layer=L, n_head=4, vocab_size=V, n_positions=P, n_ctx=P,
                   layer_norm_epsilon=1e-5, activation_function="gelu_new", bos_token_id=50256,
                   eos_token_id=50256), open(f"{good}/config.json", "w"))
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(f"{root}/weights/gpt2-tokenizer/{f}", f"{good}/{f}")
    t = {"wte.weight": r(V, C), "wpe.weight": r(P, C)}
    for l in range(L):
        p = f"h.{l}."
        t.update({p + "ln_1.weight": 1 + r(C), p + "ln_1.bias": r(C), p + "attn.c_attn.weight": r(C, 3 * C),
                  p + "attn.c_attn.bias": r(3 * C), p + "attn.c_proj.weight": r(C, C),
                  p + "attn.c_proj.bias": r(C), p + "ln_2.weight": 1 + r(C), p + "ln_2.bias": r(C),
                  p + "mlp.c_fc.weight": r(C, 4 * C), p + "mlp.c_fc.bias": r(4 * C),
                  p + "mlp.c_proj.weight": r(4 * C, C), p + "mlp.c_proj.bias": r(C)})
    t["ln_f.weight"] = 1 + r(C); t["ln_f.bias"] = r(C)
    save_st(f"{good}/model.safetensors", t)
cfg = json.load(open(f"{good}/config.json"))
C, L, P = cfg["n_embd"], cfg["n_layer"], cfg.get("n_positions", cfg.get("n_ctx"))
open(f"{T}/dims", "w").write(f"{C} {L} {P}\n")
hdr, blob = read_st(f"{good}/model.safetensors")
names = [k for k in hdr if k != "__metadata__"]
wte = next(k for k in names if k.endswith("wte.weight"))
lnfb = next(k for k in names if k.endswith("ln_f.bias"))

def variant(name, files):
    """A model dir that links the good files and replaces `files` (name -> bytes or callable(path))."""
    d = os.path.join(T, name); os.makedirs(d)
    for f in os.listdir(good):
        if f not in files: os.symlink(os.path.join(good, f), os.path.join(d, f))
    for f, v in files.items():
        if v is None: continue
        p = os.path.join(d, f)
        if callable(v): v(p)
        else: open(p, "wb").write(v if isinstance(v, bytes) else v.encode())
    return d

full = open(f"{good}/model.safetensors", "rb").read()
hl = struct.unpack("<Q", full[:8])[0]
variant("st_hlen_past_eof", {"model.safetensors": struct.pack("<Q", len(full) * 2) + full[8:]})
variant("st_hlen_huge", {"model.safetensors": struct.pack("<Q", 2**63 + 5) + full[8:]})
variant("st_truncated", {"model.safetensors": full[: 8 + hl + len(blob) // 2]})
variant("st_empty", {"model.safetensors": b""})
variant("st_header_garbage", {"model.safetensors": struct.pack("<Q", 16) + b"{not json at all" + full[8 + 16:]})
variant("st_header_array", {"model.safetensors": lambda p: write_st_raw(p, [1, 2, 3], blob)})
def forge(mut):
    def w(p):
        h = json.loads(json.dumps(hdr)); mut(h); write_st_raw(p, h, blob)
    return w
def oob(h):
    b, e = h[lnfb]["data_offsets"]; h[lnfb]["data_offsets"] = [len(blob) + 64, len(blob) + 64 + (e - b)]
variant("st_offsets_oob", {"model.safetensors": forge(oob)})
def overlap_neg(h): h[lnfb]["data_offsets"] = [-8, 120]
variant("st_offsets_negative", {"model.safetensors": forge(overlap_neg)})
def span(h): h[lnfb]["data_offsets"] = [h[lnfb]["data_offsets"][0], h[lnfb]["data_offsets"][0] + 4]
variant("st_offsets_span", {"model.safetensors": forge(span)})
def dtype(h): h[lnfb]["dtype"] = "F8_E4M3"
variant("st_unknown_dtype", {"model.safetensors": forge(dtype)})
def intdtype(h): h[lnfb]["dtype"] = "I32"
variant("st_int_dtype", {"model.safetensors": forge(intdtype)})
def shape(h):
    b, e = h[lnfb]["data_offsets"]; h[lnfb]["shape"] = [(e - b) // 8, 2]
variant("st_shape_mismatch", {"model.safetensors": forge(shape)})
def shape_big(h): h[wte]["shape"] = [2**40, 2**30]
variant("st_shape_overflow", {"model.safetensors": forge(shape_big)})
def missing(h): del h[lnfb]
variant("st_missing_tensor", {"model.safetensors": forge(missing)})
def nanw(p):
    b = bytearray(full); o = 8 + hl + hdr[lnfb]["data_offsets"][0]; b[o:o + 4] = struct.pack("<f", float("nan"))
    open(p, "wb").write(bytes(b))
variant("st_nan_weight", {"model.safetensors": nanw})
variant("no_weights", {"model.safetensors": None})

# config.json
def cfgv(name, mut=None, raw=None):
    c = dict(cfg)
    if mut: mut(c)
    variant(name, {"config.json": raw if raw is not None else json.dumps(c)})
cfgv("cfg_not_json", raw="{\"n_layer\": 2,")
cfgv("cfg_array", raw="[1, 2]")
cfgv("cfg_missing_n_layer", lambda c: (c.pop("n_layer", None), c.pop("num_hidden_layers", None)))
cfgv("cfg_n_head_divides", lambda c: c.update(n_head=5))
cfgv("cfg_n_layer_negative", lambda c: c.update(n_layer=-2))
cfgv("cfg_n_embd_string", lambda c: c.update(n_embd="32"))
cfgv("cfg_model_type", lambda c: c.update(model_type="llama"))
cfgv("cfg_activation", lambda c: c.update(activation_function="relu"))
cfgv("cfg_more_layers", lambda c: c.update(n_layer=L + 1))
cfgv("cfg_wider", lambda c: c.update(n_embd=C * 2))
cfgv("cfg_vocab_small", lambda c: c.update(vocab_size=1000))
cfgv("cfg_eps_nan", raw=json.dumps(cfg).replace("}", ", \"layer_norm_epsilon\": -1}", 1) if "layer_norm_epsilon" not in cfg else json.dumps(dict(cfg, layer_norm_epsilon=-1)))
variant("no_config", {"config.json": None})

# vocab.json / merges.txt
vocab = open(f"{good}/vocab.json", "rb").read()
merges = open(f"{good}/merges.txt", "rb").read()
variant("vocab_not_json", {"vocab.json": vocab[: len(vocab) // 2]})
variant("vocab_array", {"vocab.json": "[\"a\", \"b\"]"})
vj = json.loads(vocab)
vj2 = dict(vj); vj2["Ġthe"] = 999999
variant("vocab_id_range", {"vocab.json": json.dumps(vj2)})
vj3 = dict(vj); vj3["Ġthe"] = vj["Ġand"]
variant("vocab_id_dup", {"vocab.json": json.dumps(vj3)})
variant("vocab_missing_eot", {"vocab.json": json.dumps({k: v for k, v in vj.items() if k != "<|endoftext|>"})})
variant("merges_three", {"merges.txt": merges + b"a b c\n"})
variant("merges_unknown", {"merges.txt": merges + "zzzqqq xxxjjj\n".encode()})
variant("merges_bad_utf8", {"merges.txt": merges + b"\xff\xfe a\n"})
variant("no_vocab", {"vocab.json": None})

# ---- SAEs: fixture standard_centered, else a random standard SAE at blocks.0.hook_resid_pre
sae = os.path.join(T, "sae")
if os.path.isfile(os.path.join(fx, "saes", "standard_centered", "cfg.json")):
    shutil.copytree(os.path.join(fx, "saes", "standard_centered"), sae)
else:
    os.makedirs(sae)
    S = 48
    json.dump({"architecture": "standard", "d_in": C, "d_sae": S, "apply_b_dec_to_input": True,
               "normalize_activations": "none",
               "metadata": {"hook_name": "blocks.0.hook_resid_pre", "model_name": "tiny", "prepend_bos": True,
                            "context_size": 64, "model_from_pretrained_kwargs": {"center_writing_weights": False}}},
              open(f"{sae}/cfg.json", "w"))
    save_st(f"{sae}/sae_weights.safetensors", {"W_enc": r(C, S), "W_dec": r(S, C), "b_enc": r(S), "b_dec": r(C)})
scfg = json.load(open(f"{sae}/cfg.json"))
sh, sblob = read_st(f"{sae}/sae_weights.safetensors")
S = scfg["d_sae"]
open(f"{T}/sae_dims", "w").write(f"{S}\n")
def sae_variant(name, cfgmut=None, cfgraw=None, weights=None):
    d = os.path.join(T, name); os.makedirs(d)
    c = json.loads(json.dumps(scfg))
    if cfgmut: cfgmut(c)
    open(f"{d}/cfg.json", "w").write(cfgraw if cfgraw is not None else json.dumps(c))
    if weights is None: shutil.copy(f"{sae}/sae_weights.safetensors", d)
    elif weights != "none": weights(f"{d}/sae_weights.safetensors")
    return d
def meta(c, k, v):
    if "metadata" in c: c["metadata"][k] = v
    else: c[k] = v
sae_variant("sae_cfg_not_json", cfgraw="{\"d_in\": ")
sae_variant("sae_cfg_no_d_sae", lambda c: c.pop("d_sae"))
sae_variant("sae_arch_unknown", lambda c: c.update(architecture="transcoder"))
sae_variant("sae_norm_unknown", lambda c: c.update(normalize_activations="whiten"))
sae_variant("sae_topk_no_k", lambda c: c.update(architecture="topk"))
sae_variant("sae_topk_k_big", lambda c: c.update(architecture="topk", k=S + 1))
sae_variant("sae_hook_layer", lambda c: (meta(c, "hook_name", f"blocks.{L + 5}.hook_resid_pre"), c.pop("hook_point", None)))
sae_variant("sae_hook_unknown", lambda c: (meta(c, "hook_name", "blocks.0.hook_resid_sideways"), c.pop("hook_point", None)))
sae_variant("sae_no_weights", weights="none")
def sae_w(mut):
    def w(p):
        t = {k: np.frombuffer(sblob[v["data_offsets"][0]:v["data_offsets"][1]], np.float32).reshape(v["shape"]).copy()
             for k, v in sh.items() if k != "__metadata__"}
        mut(t); save_st(p, t)
    return w
def wnan(t): t["W_dec"][3, 1] = np.nan
sae_variant("sae_nan", weights=sae_w(wnan))
def winf(t): t["b_enc"][0] = np.inf
sae_variant("sae_inf", weights=sae_w(winf))
def wshape(t): t["W_enc"] = np.ascontiguousarray(t["W_enc"].T)
sae_variant("sae_wrong_shape", weights=sae_w(wshape))
def wmiss(t): del t["b_dec"]
sae_variant("sae_missing_tensor", weights=sae_w(wmiss))
# an SAE whose d_in does not match the model
def narrow(c): c["d_in"] = C // 2
def narrow_w(t):
    t["W_enc"] = t["W_enc"][: C // 2].copy(); t["W_dec"] = t["W_dec"][:, : C // 2].copy(); t["b_dec"] = t["b_dec"][: C // 2].copy()
sae_variant("sae_d_in_mismatch", narrow, weights=sae_w(narrow_w))

# vectors (npy) and text inputs
def npy(path, a): np.save(path, a, allow_pickle=False)
npy(f"{T}/vec_good.npy", r(C))
npy(f"{T}/vec_wrong_width.npy", r(C + 3))
v = r(C); v[5] = np.nan; npy(f"{T}/vec_nan.npy", v)
npy(f"{T}/vec_3d.npy", r(2, 2, C))
npy(f"{T}/vec_int.npy", np.arange(C, dtype=np.int32))
open(f"{T}/vec_text.npy", "w").write("0.1 0.2 0.3\n")
with open(f"{T}/vec_truncated.npy", "wb") as f: f.write(open(f"{T}/vec_good.npy", "rb").read()[:100])
open(f"{T}/bad_utf8.txt", "wb").write(b"hello \xff\xfe world\n")
open(f"{T}/empty.txt", "w").close()
open(f"{T}/long.txt", "w").write("word " * (4 * P))
open(f"{T}/pairs_not_json.jsonl", "w").write("positive: happy, negative: sad\n")
open(f"{T}/pairs_missing_key.jsonl", "w").write('{"positive": "I love it"}\n')
open(f"{T}/pairs_wrong_type.jsonl", "w").write('{"positive": 3, "negative": ["x"]}\n')
open(f"{T}/pairs_bad_utf8.jsonl", "wb").write(b'{"positive": "good \xff", "negative": "bad"}\n')
open(f"{T}/pairs_array.jsonl", "w").write('[{"positive": "a", "negative": "b"}]\n')
open(f"{T}/ds_not_json.json", "w").write("input,output\nhot,cold\n")
open(f"{T}/ds_empty_list.json", "w").write("[]")
open(f"{T}/ds_missing_key.json", "w").write(json.dumps([{"input": "hot"}] * 12))
open(f"{T}/ds_object.json", "w").write(json.dumps({"hot": "cold"}))
good_ds = [{"input": a, "output": b} for a, b in [("hot", "cold"), ("up", "down"), ("big", "small"), ("old", "new"),
           ("fast", "slow"), ("happy", "sad"), ("light", "dark"), ("high", "low"), ("rich", "poor"), ("hard", "soft"),
           ("early", "late"), ("open", "closed")]]
open(f"{T}/ds_good.json", "w").write(json.dumps(good_ds))
open(f"{T}/prompts_good.txt", "w").write("The weather today is\nI think that\n")
open(f"{T}/labels_bad.json", "w").write('{"99999": "too far"}')
def gguf(dirs, n_embd):   # a llama.cpp control vector (GGUF v3), one F32 direction.N per layer
    gs = lambda x: struct.pack("<Q", len(x.encode())) + x.encode()
    kv = [("general.architecture", 8, gs("controlvector")), ("controlvector.layer_count", 5, struct.pack("<i", len(dirs)))]
    b = b"GGUF" + struct.pack("<IQQ", 3, len(dirs), len(kv)) + b"".join(gs(k) + struct.pack("<I", t) + v for k, t, v in kv)
    for i, n in enumerate(dirs):
        b += gs(f"direction.{n}") + struct.pack("<IQIQ", 1, n_embd, 0, i * n_embd * 4)
    b += b"\0" * ((32 - len(b) % 32) % 32)
    return b + b"".join(r(n_embd).tobytes() for _ in dirs)
open(f"{T}/two_dirs.gguf", "wb").write(gguf([1, 2], C))
open(f"{T}/wide.gguf", "wb").write(gguf([1], C + 8))
open(f"{T}/labels_not_json.json", "w").write('{"1": ')
EOF
read C L P < "$T/dims"
read S < "$T/sae_dims"
M="$T/model"
SAE="$T/sae"

# The good .h5 dictionary, and hostile copies made with h5py.
if ! "$BIN" convert "$SAE" -o "$T/dict.h5" >/dev/null 2>"$T/convert.err"; then
  echo "FAIL saesteer convert of the good SAE failed: $(cat "$T/convert.err")"; exit 1
fi
"$PY" - "$T" <<'EOF' || { echo "FAIL could not build the hostile .h5 files"; exit 1; }
import shutil, sys
import h5py, numpy as np
T = sys.argv[1]
def h5v(name, mut):
    p = f"{T}/{name}.h5"; shutil.copy(f"{T}/dict.h5", p)
    with h5py.File(p, "r+") as f: mut(f)
def del_ds(k): return lambda f: f.__delitem__(k)
def del_attr(k): return lambda f: f.attrs.__delitem__(k)
def set_attr(k, v): return lambda f: f.attrs.__setitem__(k, v)
def nan_ds(f):
    a = f["W_enc"][...]; a[0, 0] = np.nan; f["W_enc"][...] = a
def transpose(f):
    a = f["W_dec"][...]; del f["W_dec"]; f.create_dataset("W_dec", data=np.ascontiguousarray(a.T))
def int_ds(f):
    a = f["b_dec"][...]; del f["b_dec"]; f.create_dataset("b_dec", data=a.astype(np.int32))
h5v("h5_missing_W_dec", del_ds("W_dec"))
h5v("h5_missing_d_in", del_attr("d_in"))
h5v("h5_missing_format", del_attr("format"))
h5v("h5_arch_unknown", set_attr("architecture", "crosscoder"))
h5v("h5_version", set_attr("format_version", 7))
h5v("h5_d_sae_wrong", set_attr("d_sae", 5))
h5v("h5_nan", nan_ds)
h5v("h5_wrong_shape", transpose)
h5v("h5_int_dtype", int_ds)
h5v("h5_hook_unknown", set_attr("hook_name", "blocks.0.hook_nowhere"))
h5v("h5_k_string", set_attr("d_in", "thirty-two"))
b = open(f"{T}/dict.h5", "rb").read()
open(f"{T}/h5_truncated.h5", "wb").write(b[: len(b) // 3])
open(f"{T}/h5_not_hdf5.h5", "wb").write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
open(f"{T}/h5_text.h5", "w").write("this is not a dictionary\n")
EOF

# Issue 13: dictionaries that point outside themselves (tests/h5_hostile.py), and
# inputs that are not plain files or not plain text.
"$PY" "$ROOT/tests/h5_hostile.py" "$T/dict.h5" "$T" "$T/foreign" >/dev/null || { echo "FAIL h5_hostile.py"; exit 1; }
"$PY" - "$T" <<'EOF' || { echo "FAIL could not build the issue 13 inputs"; exit 1; }
import json, os, shutil, struct, sys
import numpy as np
T = sys.argv[1]
good = f"{T}/model"
def variant(name, files):
    d = os.path.join(T, name); os.makedirs(d)
    for f in os.listdir(good):
        if f not in files: os.symlink(os.path.join(good, f), os.path.join(d, f))
    for f, v in files.items():
        if v is not None: open(os.path.join(d, f), "wb").write(v if isinstance(v, bytes) else v.encode())
    return d
cfg = open(f"{good}/config.json").read()
c = json.loads(cfg)
variant("cfg_dup_key", {"config.json": cfg.rstrip().rstrip("}") + ', "n_layer": 1}'})
variant("cfg_bos_range", {"config.json": json.dumps(dict(c, bos_token_id=c["vocab_size"] + 5))})
variant("cfg_esc", {"config.json": json.dumps(dict(c, model_type="\u001b[31mevil"))})
for k in ("config.json", "merges.txt", "vocab.json", "model.safetensors"):
    variant("fifo_" + k.replace(".", "_"), {k: None})
b = open(f"{good}/model.safetensors", "rb").read()
hl = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8 + hl])
names = [k for k in hdr if k != "__metadata__"]
def st(hdr_text):
    h = hdr_text.encode(); h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b[8 + hl:]
# the same tensor twice (cJSON would answer with the first), and two tensors sharing bytes
first = names[0]
variant("st_dup_tensor", {"model.safetensors": st(json.dumps(hdr)[:-1] + ", " + json.dumps({first: hdr[first]})[1:])})
size = lambda k: hdr[k]["data_offsets"][1] - hdr[k]["data_offsets"][0]
small = min(names, key=size)
other = next(k for k in names if k != small and size(k) >= size(small))
h2 = json.loads(json.dumps(hdr))
h2[small]["data_offsets"] = [hdr[other]["data_offsets"][0], hdr[other]["data_offsets"][0] + size(small)]
variant("st_overlap", {"model.safetensors": st(json.dumps(h2))})
# a header length over the 100 MiB cap, in a (sparse) file big enough to hold it
d = variant("st_header_cap", {"model.safetensors": b""})
with open(f"{d}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", 101 << 20) + b"{"); f.truncate((101 << 20) + 4096)
open(f"{T}/nul.txt", "wb").write(b"The quick brown fox\0 jumps over the lazy dog\n")
# a .npy header that spells fortran_order without the space numpy writes (numpy reads it)
def npy_hdr(d):
    h = d.encode(); h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h
C = c["n_embd"]
v = np.arange(C, dtype=np.float32).reshape(1, C)
open(f"{T}/vec_fortran_spaced.npy", "wb").write(npy_hdr("{'descr': '<f4', 'fortran_order':True, 'shape': (1, %d), }" % C) + v.tobytes())
# a SAELens cfg.json with a key twice
sd = f"{T}/sae_cfg_dup_key"; os.makedirs(sd)
shutil.copy(f"{T}/sae/sae_weights.safetensors", sd)
open(f"{sd}/cfg.json", "w").write(open(f"{T}/sae/cfg.json").read().rstrip().rstrip("}") + ', "d_sae": 7}')
EOF
for k in config.json merges.txt vocab.json model.safetensors; do mkfifo "$T/fifo_${k/./_}/$k"; done
mkfifo "$T/fifo.h5" "$T/fifo_record.jsonl"
mkdir -p "$T/sae_fifo" "$T/sae_fifo_w" "$T/a_dir"
cp "$SAE/sae_weights.safetensors" "$T/sae_fifo/" && mkfifo "$T/sae_fifo/cfg.json"
cp "$SAE/cfg.json" "$T/sae_fifo_w/" && mkfifo "$T/sae_fifo_w/sae_weights.safetensors"

# ------------------------------------------------------------- runner ---
fails=0; n=0; xfails=0
# Cases that fail for a reason already reported (tests/fuzz/FINDINGS.md) and
# not yet fixed by the file's owner: shown as XFAIL, not counted as failures.
XFAIL=""
IO="$T/.io"; mkdir -p "$IO"
RES="$IO/results.tsv"; : > "$RES"
SENT="pre-existing output: must survive a failed run"

# bad NAME NEEDLE OUT -- ARGS...
#   NEEDLE: a substring the one stderr line must contain (the file or field at
#   fault; | separates alternatives). OUT: an output path the command writes
#   (pre-created with a sentinel and checked afterwards), or - for none.
bad() {
  local name=$1 needle=$2 out=$3; shift 3; [ "$1" = "--" ] && shift
  n=$((n+1))
  if [ "$out" != - ]; then
    if [ -d "$(dirname "$out")" ]; then
      if [[ $out == */ ]]; then mkdir -p "$out"; printf '%s\n' "$SENT" > "$out/latents.json"
      else printf '%s\n' "$SENT" > "$out"; fi
    fi
  fi
  local before; before=$(ls -A "$T" | wc -l)
  timeout -k 5 "${BADINPUT_TIMEOUT:-120}" $WRAP "$BIN" "$@" >"$IO/stdout" 2>"$IO/stderr" </dev/null
  local rc=$?
  local lines; lines=$(wc -l < "$IO/stderr")
  local msg; msg=$(head -c 400 "$IO/stderr" | head -1 | iconv -f UTF-8 -t UTF-8 -c)
  local why=""
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="hangs (killed after ${BADINPUT_TIMEOUT:-120} s)"
  elif [ $rc -ge 128 ]; then why="killed by signal $((rc-128))"
  elif [ $rc -eq 0 ]; then why="exit 0 (accepted)"
  elif [ $rc -ne 1 ] && [ $rc -ne 2 ]; then why="exit $rc"
  fi
  [ -z "$why" ] && [ "$lines" -ne 1 ] && why="$lines lines on stderr"
  # bytes from a hostile file must not reach the terminal raw (ESC sequences, ...)
  [ -z "$why" ] && LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$IO/stderr" && why="control bytes on stderr"
  if [ -z "$why" ]; then
    local hit=0 alt; IFS='|' read -ra alts <<< "$needle"
    for alt in "${alts[@]}"; do [[ $msg == *"$alt"* ]] && hit=1; done
    [ $hit -eq 0 ] && why="message does not name '$needle'"
  fi
  if [ -z "$why" ] && [ "$out" != - ]; then
    if [[ $out == */ ]]; then
      cmp -s "$out/latents.json" <(printf '%s\n' "$SENT") || why="existing $out/latents.json changed"
      [ -z "$why" ] && [ -n "$(ls -A "$out" | grep -v '^latents.json$')" ] && why="files left in $out: $(ls -A "$out" | grep -v '^latents.json$' | head -3 | tr '\n' ' ')"
    elif [ -d "$(dirname "$out")" ]; then
      cmp -s "$out" <(printf '%s\n' "$SENT") || why="existing output $out changed"
    fi
  fi
  if [ -z "$why" ]; then
    local after; after=$(ls -A "$T" | wc -l)
    [ "$after" -ne "$before" ] && why="left files behind: $(ls -At "$T" | head -2 | tr '\n' ' ')"
  fi
  # the command line and message for the doc, with the temp dir shown as $T
  local cmd="saesteer"; local a
  for a in "$@"; do
    a=${a//$T/\$T}; a=${a//$ROOT/\$ROOT}
    if ! printf '%s' "$a" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then cmd+=" $(printf '%q' "$a")"; continue; fi
    if [[ $a =~ [[:space:]\'\"\|\;\&\$\<\>\(\)] || -z $a ]] && [[ $a != \$T* ]] && [[ $a != \$ROOT* ]]; then
      a="'${a//\'/\'\\\'\'}'"
    fi
    [ ${#a} -gt 60 ] && a="${a:0:57}..."
    cmd+=" $a"
  done
  local m=${msg//$T/\$T}; m=${m//$ROOT/\$ROOT}; m=${m:-(nothing on stderr)}
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$cmd" "$m" "${why:-ok}" >> "$RES"
  if [ -n "$why" ] && [[ " $XFAIL " == *" $name "* ]]; then
    xfails=$((xfails+1)); echo "XFAIL $name: $why (known, tests/fuzz/FINDINGS.md)"
  elif [ -n "$why" ]; then
    fails=$((fails+1)); echo "FAIL $name: $why"; echo "     stderr: $(head -c 600 "$IO/stderr" | head -3)"
  elif [[ " $XFAIL " == *" $name "* ]]; then
    echo "XPASS $name (exit $rc): $m -- fixed: take it off XFAIL in this script"
  else
    echo "ok   $name (exit $rc): $m"
  fi
  rm -f "$IO/stdout" "$IO/stderr"
  # leave the pre-created output for the next case to recreate
  if [ "$out" != - ] && [[ $out != */ ]]; then rm -f "$out"; fi
  if [[ $out == */ ]]; then rm -rf "$out"; fi
}

O="$T/out.npy"
TXT=(--text "The quick brown fox")

# ---- model files: safetensors
for v in st_hlen_past_eof st_hlen_huge st_truncated st_empty st_header_garbage st_header_array st_offsets_oob \
         st_offsets_negative st_offsets_span st_unknown_dtype st_int_dtype st_shape_mismatch st_shape_overflow \
         st_nan_weight; do
  bad "$v" "model.safetensors" "$O" -- logits --model "$T/$v" "${TXT[@]}" -o "$O"
done
bad st_missing_tensor "ln_f.bias" "$O" -- logits --model "$T/st_missing_tensor" "${TXT[@]}" -o "$O"
bad no_weights "model.safetensors|$T/no_weights" "$O" -- logits --model "$T/no_weights" "${TXT[@]}" -o "$O"
bad model_dir_missing "$T/nonexistent" "$O" -- logits --model "$T/nonexistent" "${TXT[@]}" -o "$O"
# ---- config.json
bad cfg_not_json "config.json" "$O" -- logits --model "$T/cfg_not_json" "${TXT[@]}" -o "$O"
bad cfg_array "config.json" "$O" -- logits --model "$T/cfg_array" "${TXT[@]}" -o "$O"
bad cfg_missing_n_layer "n_layer" "$O" -- logits --model "$T/cfg_missing_n_layer" "${TXT[@]}" -o "$O"
bad cfg_n_head_divides "n_head" "$O" -- logits --model "$T/cfg_n_head_divides" "${TXT[@]}" -o "$O"
bad cfg_n_layer_negative "n_layer" "$O" -- logits --model "$T/cfg_n_layer_negative" "${TXT[@]}" -o "$O"
bad cfg_n_embd_string "n_embd" "$O" -- logits --model "$T/cfg_n_embd_string" "${TXT[@]}" -o "$O"
bad cfg_model_type "model_type" "$O" -- logits --model "$T/cfg_model_type" "${TXT[@]}" -o "$O"
bad cfg_activation "activation_function" "$O" -- logits --model "$T/cfg_activation" "${TXT[@]}" -o "$O"
bad cfg_more_layers "h.$L." "$O" -- logits --model "$T/cfg_more_layers" "${TXT[@]}" -o "$O"
bad cfg_wider "model.safetensors" "$O" -- logits --model "$T/cfg_wider" "${TXT[@]}" -o "$O"
bad cfg_vocab_small "vocab" "$O" -- logits --model "$T/cfg_vocab_small" "${TXT[@]}" -o "$O"
bad cfg_eps_nan "layer_norm_epsilon" "$O" -- logits --model "$T/cfg_eps_nan" "${TXT[@]}" -o "$O"
bad no_config "config.json" "$O" -- logits --model "$T/no_config" "${TXT[@]}" -o "$O"
# ---- tokenizer files
bad vocab_not_json "vocab.json" - -- tokenize --model "$T/vocab_not_json" "${TXT[@]}" --json
bad vocab_array "vocab.json" - -- tokenize --model "$T/vocab_array" "${TXT[@]}" --json
bad vocab_id_range "vocab.json" - -- tokenize --model "$T/vocab_id_range" "${TXT[@]}" --json
bad vocab_id_dup "vocab.json" - -- tokenize --model "$T/vocab_id_dup" "${TXT[@]}" --json
bad vocab_missing_eot "vocab.json" - -- tokenize --model "$T/vocab_missing_eot" "${TXT[@]}" --json
bad merges_three "merges.txt" - -- tokenize --model "$T/merges_three" "${TXT[@]}" --json
bad merges_unknown "merges.txt" - -- tokenize --model "$T/merges_unknown" "${TXT[@]}" --json
bad merges_bad_utf8 "merges.txt" - -- tokenize --model "$T/merges_bad_utf8" "${TXT[@]}" --json
bad no_vocab "vocab.json" "$O" -- logits --model "$T/no_vocab" "${TXT[@]}" -o "$O"

# ---- flags and text
LONG=$(cat "$T/long.txt")
bad hook_unknown "blocks.0.hook_foo" "$O" -- cache --model "$M" "${TXT[@]}" --hook blocks.0.hook_foo -o "$O"
bad hook_layer_range "blocks.$((L+7)).hook_resid_pre" "$O" -- cache --model "$M" "${TXT[@]}" --hook "blocks.$((L+7)).hook_resid_pre" -o "$O"
bad hook_empty "hook" "$O" -- cache --model "$M" "${TXT[@]}" --hook "" -o "$O"
bad prompt_too_long "n_positions" "$O" -- logits --model "$M" --text "$LONG" -o "$O"
bad prompt_file_too_long "n_positions" "$O" -- logits --model "$M" --text-file "$T/long.txt" -o "$O"
bad generate_past_context "n_positions|max-new-tokens" - -- generate --model "$M" --text "$(head -c $((4*P-40)) "$T/long.txt")" --max-new-tokens $((P*2)) --temperature 0 --json
bad scale_nan "--scale" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_good.npy" --hook blocks.0.hook_resid_pre --scale nan -o "$O"
bad scale_inf "--scale" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_good.npy" --hook blocks.0.hook_resid_pre --scale inf -o "$O"
bad scale_word "--scale" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_good.npy" --hook blocks.0.hook_resid_pre --scale lots -o "$O"
bad max_new_tokens_neg "--max-new-tokens" - -- generate --model "$M" "${TXT[@]}" --max-new-tokens -1
bad max_new_tokens_huge "--max-new-tokens" - -- generate --model "$M" "${TXT[@]}" --max-new-tokens 99999999999999999999
bad temperature_inf "--temperature" - -- generate --model "$M" "${TXT[@]}" --temperature inf
bad temperature_neg "--temperature" - -- generate --model "$M" "${TXT[@]}" --temperature -1
bad top_p_range "--top-p" - -- generate --model "$M" "${TXT[@]}" --top-p 1.5
bad top_k_neg "--top-k" - -- generate --model "$M" "${TXT[@]}" --top-k -3
bad seed_word "--seed" - -- generate --model "$M" "${TXT[@]}" --seed abc
bad positions_double_comma "--positions" "$O" -- logits --model "$M" "${TXT[@]}" --sae "$SAE" --latent 1 --scale 2 --positions 1,,2 -o "$O"
bad positions_negative "--positions" "$O" -- logits --model "$M" "${TXT[@]}" --sae "$SAE" --latent 1 --scale 2 --positions -1 -o "$O"
bad positions_trailing "--positions" "$O" -- logits --model "$M" "${TXT[@]}" --sae "$SAE" --latent 1 --scale 2 --positions 3, -o "$O"
bad text_bad_utf8 "UTF-8" "$O" -- logits --model "$M" --text $'caf\xe9 \xff' -o "$O"
bad text_file_bad_utf8 "bad_utf8.txt" "$O" -- logits --model "$M" --text-file "$T/bad_utf8.txt" -o "$O"
bad text_file_missing "missing.txt" "$O" -- logits --model "$M" --text-file "$T/missing.txt" -o "$O"
bad empty_no_bos "--text|empty" "$O" -- logits --model "$M" --text "" --no-bos -o "$O"
bad unknown_flag "--frobnicate" "$O" -- logits --model "$M" "${TXT[@]}" --frobnicate -o "$O"
bad flag_no_value "--text" - -- tokenize --model "$M" --text
bad unknown_subcommand "frobnicate" - -- frobnicate --model "$M"
bad out_dir_missing "$T/no/such/dir/out.npy|out.npy" "$T/no/such/dir/out.npy" -- logits --model "$M" "${TXT[@]}" -o "$T/no/such/dir/out.npy"
mkdir -p "$T/outdir"
bad out_is_dir "$T/outdir|outdir" - -- logits --model "$M" "${TXT[@]}" -o "$T/outdir"
# ---- steering vectors
bad vec_wrong_width "vec_wrong_width.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_wrong_width.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_nan "vec_nan.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_nan.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_3d "vec_3d.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_3d.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_int "vec_int.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_int.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_text "vec_text.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_text.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_truncated "vec_truncated.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_truncated.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_missing "vec_missing.npy" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_missing.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad vec_pattern_hook "hook_pattern" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_good.npy" --hook blocks.0.attn.hook_pattern --scale 2 -o "$O"
bad vec_no_scale "--scale" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_good.npy" --hook blocks.0.hook_resid_pre -o "$O"

# ---- SAEs (SAELens folders and .h5 dictionaries)
for v in sae_cfg_not_json sae_cfg_no_d_sae sae_arch_unknown sae_norm_unknown sae_topk_no_k sae_topk_k_big; do
  bad "$v" "$v/cfg.json" "$O" -- encode --model "$M" --sae "$T/$v" "${TXT[@]}" -o "$O"
done
bad sae_hook_layer "hook_name|blocks.$((L+5))" "$O" -- encode --model "$M" --sae "$T/sae_hook_layer" "${TXT[@]}" -o "$O"
bad sae_hook_unknown "hook_name|hook_resid_sideways" "$O" -- encode --model "$M" --sae "$T/sae_hook_unknown" "${TXT[@]}" -o "$O"
bad sae_no_weights "sae_weights.safetensors" "$O" -- encode --model "$M" --sae "$T/sae_no_weights" "${TXT[@]}" -o "$O"
bad sae_nan "W_dec" "$O" -- encode --model "$M" --sae "$T/sae_nan" "${TXT[@]}" -o "$O"
bad sae_inf "b_enc" "$O" -- logits --model "$M" --sae "$T/sae_inf" --latent 0 --scale 3 "${TXT[@]}" -o "$O"
bad sae_wrong_shape "W_enc" "$O" -- encode --model "$M" --sae "$T/sae_wrong_shape" "${TXT[@]}" -o "$O"
bad sae_missing_tensor "b_dec" "$O" -- encode --model "$M" --sae "$T/sae_missing_tensor" "${TXT[@]}" -o "$O"
bad sae_d_in_mismatch "d_in" "$O" -- logits --model "$M" --sae "$T/sae_d_in_mismatch" --latent 0 --scale 3 "${TXT[@]}" -o "$O"
bad sae_missing "sae_missing" "$O" -- encode --model "$M" --sae "$T/sae_missing" "${TXT[@]}" -o "$O"
bad latent_out_of_range "--latent|$((S+100))" "$O" -- logits --model "$M" --sae "$SAE" --latent $((S+100)) --scale 3 "${TXT[@]}" -o "$O"
bad latent_negative "--latent" "$O" -- logits --model "$M" --sae "$SAE" --latent -1 --scale 3 "${TXT[@]}" -o "$O"
bad latent_no_mode "--latent" "$O" -- logits --model "$M" --sae "$SAE" --latent 1 "${TXT[@]}" -o "$O"
bad clamp_nan "--clamp" "$O" -- logits --model "$M" --sae "$SAE" --latent 1 --clamp nan "${TXT[@]}" -o "$O"
for v in h5_missing_W_dec:W_dec h5_missing_d_in:d_in h5_missing_format:format h5_arch_unknown:architecture \
         h5_version:format_version h5_d_sae_wrong:d_sae h5_nan:W_enc h5_wrong_shape:W_dec h5_int_dtype:b_dec \
         h5_k_string:d_in h5_truncated:h5_truncated.h5 h5_not_hdf5:h5_not_hdf5.h5 h5_text:h5_text.h5; do
  bad "${v%%:*}" "${v#*:}" "$O" -- encode --model "$M" --sae "$T/${v%%:*}.h5" "${TXT[@]}" -o "$O"
done
bad h5_hook_unknown "hook_name|hook_nowhere" "$O" -- logits --model "$M" --sae "$T/h5_hook_unknown.h5" --latent 0 --scale 2 "${TXT[@]}" -o "$O"
bad convert_bad_cfg "cfg.json" "$T/conv.h5" -- convert "$T/sae_cfg_not_json" -o "$T/conv.h5"
bad convert_nan "W_dec" "$T/conv.h5" -- convert "$T/sae_nan" -o "$T/conv.h5"
bad convert_out_dir_missing "conv.h5" "$T/nodir/conv.h5" -- convert "$SAE" -o "$T/nodir/conv.h5"
# a one-byte change to a valid dictionary (found by fuzz_h5): libhdf5 1.10.8 loops forever in it;
# sae_h5.c's time-limited probe read turns that into an error (FINDINGS.md F1)
cp "$ROOT/tests/fuzz/regressions/h5/libhdf5_gheap_zero_free_object.h5" "$T/h5_gheap_hang.h5"
BADINPUT_TIMEOUT=60 bad h5_gheap_hang "h5_gheap_hang.h5" - -- info "$T/h5_gheap_hang.h5"
# libhdf5 would copy past a global-heap object that runs beyond its collection (found by fuzz_h5)
cp "$ROOT/tests/fuzz/regressions/h5/libhdf5_gheap_object_overruns_16B.h5" "$T/h5_gheap_overrun.h5"
bad h5_gheap_overrun "h5_gheap_overrun.h5" "$O" -- encode --model "$M" --sae "$T/h5_gheap_overrun.h5" "${TXT[@]}" -o "$O"
cp "$ROOT/tests/fuzz/regressions/h5/libhdf5_gheap_object_1GB.h5" "$T/h5_gheap_1GB.h5"
bad h5_gheap_1GB "h5_gheap_1GB.h5" - -- info "$T/h5_gheap_1GB.h5"
cp "$ROOT/tests/fuzz/regressions/h5/libhdf5_leaks_object_header.h5" "$T/h5_bad_object_header.h5"
bad h5_bad_object_header "h5_bad_object_header.h5" - -- info "$T/h5_bad_object_header.h5"
bad info_truncated "h5_truncated.h5" - -- info "$T/h5_truncated.h5"
bad recon_out_dir_missing "recon.npy" "$O" -- encode --model "$M" --sae "$SAE" "${TXT[@]}" -o "$O" --recon "$T/nodir/recon.npy"
bad steer_latent_range "--latent|$((S+1))" - -- steer --model "$M" --sae "$SAE" --latent $((S+1)) "${TXT[@]}" --scales 0,2 --max-new-tokens 2
bad steer_scales_nan "--scales" - -- steer --model "$M" --sae "$SAE" --latent 1 "${TXT[@]}" --scales 0,nan --max-new-tokens 2
bad steer_scales_empty "--scales" - -- steer --model "$M" --sae "$SAE" --latent 1 "${TXT[@]}" --scales , --max-new-tokens 2
bad steer_scales_double_comma "--scales" - -- steer --model "$M" --sae "$SAE" --latent 1 "${TXT[@]}" --scales 0,,4 --max-new-tokens 2
bad latent_list_trailing_comma "--latent" "$O" -- logits --model "$M" --sae "$SAE" --latent 1, --scale 2 "${TXT[@]}" -o "$O"
bad latents_top_zero "--top" - -- latents --model "$M" --sae "$SAE" "${TXT[@]}" --top 0
bad sae_eval_empty "empty.txt|tokens" - -- sae-eval --model "$M" --sae "$SAE" --text-file "$T/empty.txt"
bad label_out_of_range "--latent|99999" - -- label "$T/dict.h5" --latent 99999 --text name
bad label_from_bad "labels_bad.json|99999" - -- label "$T/dict.h5" --from "$T/labels_bad.json"
bad label_from_not_json "labels_not_json.json" - -- label "$T/dict.h5" --from "$T/labels_not_json.json"

# ---- contrastive vectors, compare, task vectors, function vectors
V="$T/v.npy"
bad pairs_not_json "pairs_not_json.jsonl" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/pairs_not_json.jsonl" -o "$V"
bad pairs_empty "empty.txt" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/empty.txt" -o "$V"
bad pairs_missing_key "negative" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/pairs_missing_key.jsonl" -o "$V"
bad pairs_wrong_type "positive" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/pairs_wrong_type.jsonl" -o "$V"
bad pairs_bad_utf8 "pairs_bad_utf8.jsonl" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/pairs_bad_utf8.jsonl" -o "$V"
bad pairs_array "pairs_array.jsonl" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/pairs_array.jsonl" -o "$V"
bad pairs_missing_file "nope.jsonl" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/nope.jsonl" -o "$V"
bad vector_hook_unknown "blocks.0.hook_bogus" "$V" -- vector --model "$M" --hook blocks.0.hook_bogus --positive good --negative bad -o "$V"
bad vector_method "--method" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --positive good --negative bad --method median -o "$V"
bad vector_gguf_layer "--layer" "$T/v.gguf" -- vector --export-gguf "$T/vec_good.npy" --layer 999999999999 -o "$T/v.gguf"
bad vector_import_not_gguf "vec_good.npy" "$V" -- vector --import-gguf "$T/vec_good.npy" -o "$V"
bad vector_import_two_dirs "two_dirs.gguf holds 2 directions" "$V" -- vector --import-gguf "$T/two_dirs.gguf" -o "$V"
bad vector_import_no_layer "direction.7|--layer" "$V" -- vector --import-gguf "$T/two_dirs.gguf" --layer 7 -o "$V"
bad gguf_steer_wrong_width "wide.gguf" - -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/wide.gguf" --prompts "$T/prompts_good.txt" --scales 0,2 --max-new-tokens 2
bad compare_vec_width "vec_wrong_width.npy" - -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/vec_wrong_width.npy" --prompts "$T/prompts_good.txt" --scales 0,2 --max-new-tokens 2
bad compare_prompts_empty "empty.txt" - -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/vec_good.npy" --prompts "$T/empty.txt" --scales 0,2 --max-new-tokens 2
bad compare_latent_range "--latent|$((S+5))" - -- compare --model "$M" --sae "$SAE" --latent $((S+5)) --vector "$T/vec_good.npy" --prompts "$T/prompts_good.txt" --scales 0,2 --max-new-tokens 2
bad compare_plot_dir "plot.svg" "$T/nodir/plot.svg" -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/vec_good.npy" --prompts "$T/prompts_good.txt" --scales 0,2 --max-new-tokens 2 --plot "$T/nodir/plot.svg"
bad fv_dataset_not_json "ds_not_json.json" - -- fv --model "$M" --dataset "$T/ds_not_json.json" --layer 0 --json
bad fv_dataset_empty "ds_empty_list.json" - -- fv --model "$M" --dataset "$T/ds_empty_list.json" --layer 0 --json
bad fv_dataset_missing_key "output" - -- fv --model "$M" --dataset "$T/ds_missing_key.json" --layer 0 --json
bad fv_dataset_object "ds_object.json" - -- fv --model "$M" --dataset "$T/ds_object.json" --layer 0 --json
bad fv_layer_range "--layer" - -- fv --model "$M" --dataset "$T/ds_good.json" --layer $((L+3)) --json
bad fv_heads_range "--heads" - -- fv --model "$M" --dataset "$T/ds_good.json" --layer 0 --heads 100000 --json
bad fv_heads_zero "--heads" - -- fv --model "$M" --dataset "$T/ds_good.json" --layer 0 --heads 0 --json
bad task_vector_layer "--layer" - -- task-vector --model "$M" --dataset "$T/ds_good.json" --layer -1 --json
bad task_vector_bad_ds "ds_missing_key.json|output" - -- task-vector --model "$M" --dataset "$T/ds_missing_key.json" --layer 0 --json
bad perplexity_bad_utf8 "bad_utf8.txt" - -- perplexity --model "$M" --text-file "$T/bad_utf8.txt" --json
bad perplexity_context "--context" - -- perplexity --model "$M" --text-file "$T/long.txt" --context 100000 --json
bad scan_top_zero "--top" "$T/scan/" -- scan --model "$M" --sae "$SAE" --text-file "$T/long.txt" --top 0 -o "$T/scan"
bad scan_bad_utf8 "bad_utf8.txt" "$T/scan/" -- scan --model "$M" --sae "$SAE" --text-file "$T/bad_utf8.txt" -o "$T/scan"
bad scan_sae_nan "W_dec" "$T/scan/" -- scan --model "$M" --sae "$T/sae_nan" --text-file "$T/long.txt" -o "$T/scan"

# ---- issue 13: dictionaries that point outside themselves; inputs that are FIFOs, directories, text with NUL
for v in h5_external_labels:labels h5_external_raw:b_dec h5_external_link:W_dec h5_soft_link:W_dec \
         h5_virtual:W_dec h5_unknown_filter:W_enc; do
  bad "${v%%:*}" "${v#*:}" "$O" -- encode --model "$M" --sae "$T/${v%%:*}.h5" "${TXT[@]}" -o "$O"
done
bad h5_external_labels_latents "external storage" - -- latents --model "$M" --sae "$T/h5_external_labels.h5" "${TXT[@]}"
bad h5_external_labels_label "external storage" - -- label "$T/h5_external_labels.h5" --latent 0 --text x
for k in config.json merges.txt vocab.json model.safetensors; do
  BADINPUT_TIMEOUT=30 bad "fifo_${k/./_}" "$k" "$O" -- logits --model "$T/fifo_${k/./_}" "${TXT[@]}" -o "$O"
done
BADINPUT_TIMEOUT=30 bad fifo_sae_h5 "fifo.h5" "$O" -- encode --model "$M" --sae "$T/fifo.h5" "${TXT[@]}" -o "$O"
BADINPUT_TIMEOUT=30 bad fifo_sae_cfg "cfg.json" "$O" -- encode --model "$M" --sae "$T/sae_fifo" "${TXT[@]}" -o "$O"
BADINPUT_TIMEOUT=30 bad fifo_sae_weights "sae_weights.safetensors" "$O" -- encode --model "$M" --sae "$T/sae_fifo_w" "${TXT[@]}" -o "$O"
BADINPUT_TIMEOUT=30 bad fifo_record "fifo_record.jsonl" "$O" -- logits --model "$M" "${TXT[@]}" -o "$O" --record "$T/fifo_record.jsonl"
bad dir_text_file "a_dir" "$O" -- logits --model "$M" --text-file "$T/a_dir" -o "$O"
bad dir_steer_vector "a_dir" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/a_dir" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad dir_prompts "a_dir" - -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/vec_good.npy" --prompts "$T/a_dir" --scales 0,2 --max-new-tokens 2
bad dir_dataset "a_dir" - -- fv --model "$M" --dataset "$T/a_dir" --layer 0 --json
bad dir_pairs "a_dir" "$V" -- vector --model "$M" --hook blocks.0.hook_resid_pre --pairs "$T/a_dir" -o "$V"
bad dir_label_from "a_dir" - -- label "$T/dict.h5" --from "$T/a_dir"
bad nul_text_file "NUL byte at offset 19" "$O" -- logits --model "$M" --text-file "$T/nul.txt" -o "$O"
bad nul_text_file_tokenize "NUL byte at offset 19" - -- tokenize --model "$M" --text-file "$T/nul.txt"
bad nul_text_file_encode "NUL byte at offset 19" "$O" -- encode --model "$M" --sae "$SAE" --text-file "$T/nul.txt" -o "$O"
bad cfg_dup_key "'n_layer' appears twice" "$O" -- logits --model "$T/cfg_dup_key" "${TXT[@]}" -o "$O"
bad sae_cfg_dup_key "'d_sae' appears twice" "$O" -- encode --model "$M" --sae "$T/sae_cfg_dup_key" "${TXT[@]}" -o "$O"
bad cfg_bos_range "bos_token_id" "$O" -- logits --model "$T/cfg_bos_range" "${TXT[@]}" -o "$O"
bad cfg_esc_echo "model_type" "$O" -- logits --model "$T/cfg_esc" "${TXT[@]}" -o "$O"
bad st_dup_tensor "appears twice" "$O" -- logits --model "$T/st_dup_tensor" "${TXT[@]}" -o "$O"
bad st_overlap "overlap" "$O" -- logits --model "$T/st_overlap" "${TXT[@]}" -o "$O"
bad st_header_cap "100 MiB limit" "$O" -- logits --model "$T/st_header_cap" "${TXT[@]}" -o "$O"
bad vec_fortran_spaced "fortran_order" "$O" -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/vec_fortran_spaced.npy" --hook blocks.0.hook_resid_pre --scale 2 -o "$O"
bad seed_above_2_64 "--seed" - -- generate --model "$M" "${TXT[@]}" --seed 18446744073709551616
cp -r "$M" "$T/model_copy"; MSUM=$(sha256sum < "$T/model_copy/model.safetensors")
bad out_onto_model_input "model.safetensors" - -- logits --model "$T/model_copy" "${TXT[@]}" -o "$T/model_copy/model.safetensors"
[ "$(sha256sum < "$T/model_copy/model.safetensors")" = "$MSUM" ] || { echo "FAIL out_onto_model_input: the model file changed"; fails=$((fails+1)); }
rm -rf "$T/model_copy"
DSUM=$(sha256sum < "$T/dict.h5")
bad convert_onto_input "dict.h5" - -- convert "$T/dict.h5" -o "$T/dict.h5"
[ "$(sha256sum < "$T/dict.h5")" = "$DSUM" ] || { echo "FAIL convert_onto_input: dict.h5 changed"; fails=$((fails+1)); }
bad recon_is_dir "a_dir" "$O" -- encode --model "$M" --sae "$SAE" "${TXT[@]}" -o "$O" --recon "$T/a_dir"
bad vector_gguf_out_is_dir "a_dir" "$V" -- vector --model "$M" --hook blocks.1.hook_resid_post --positive good --negative bad -o "$V" --gguf-out "$T/a_dir"

echo "$((n - fails - xfails))/$n hostile inputs handled ($xfails known failures)"

# ------------------------------------------------------------------ doc ---
DOC="$ROOT/docs/BAD_INPUT.md"
if [ "$DOC_MODE" = "--doc" ]; then
  mkdir -p "$ROOT/docs"
  {
    echo "# Hostile inputs and the message each gets"
    echo
    echo "Generated by \`bash tests/cli_badinput.sh build/saesteer . --doc\` (the same script runs under ctest as"
    echo "\`cli_badinput\` and checks that this table still lists every case with the exit status it gets)."
    echo "\`\$T\` is the test's temporary directory: \`\$T/model\` a tiny GPT-2 ($L layers, $C wide, $P positions), \`\$T/sae\`"
    echo "a SAELens SAE on it ($S latents), \`\$T/dict.h5\` its HDF5 conversion; each hostile variant is built from"
    echo "those at run time (see the script). Every case must exit 1 or 2 with exactly one line on stderr naming"
    echo "the file or field at fault, and leave a pre-existing output file byte-identical."
    echo
    echo "| case | command | exit | stderr (one line) |"
    echo "|---|---|---|---|"
    while IFS=$'\t' read -r name rc cmd msg why; do
      cmd=${cmd//|/\\|}; msg=${msg//|/\\|}
      if [ "$why" != ok ] && [[ " $XFAIL " == *" $name "* ]]; then msg="$msg **(known failure: ${why//|/\\|}; tests/fuzz/FINDINGS.md)**"
      elif [ "$why" != ok ]; then msg="$msg **(FAILS: ${why//|/\\|})**"; fi
      echo "| \`$name\` | \`$cmd\` | $rc | $msg |"
    done < "$RES"
    echo
    echo "$((n - fails - xfails)) of $n cases pass; $xfails known failure(s) are listed in tests/fuzz/FINDINGS.md."
  } > "$DOC"
  echo "wrote $DOC"
elif [ -f "$DOC" ]; then
  while IFS=$'\t' read -r name rc cmd msg why; do
    if ! grep -qE "^\| \`$name\` \|.*\| $rc \|" "$DOC"; then
      echo "FAIL docs/BAD_INPUT.md does not list case $name with exit $rc (rerun with --doc)"; fails=$((fails+1))
    fi
  done < "$RES"
else
  echo "FAIL docs/BAD_INPUT.md is missing (rerun with --doc)"; fails=$((fails+1))
fi
[ $fails -eq 0 ] && echo "PASS" || echo "$fails failure(s)"
exit $((fails > 0))
