#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets in tests/fuzz/.

    /usr/bin/python3 tests/fuzz/make_corpus.py OUTDIR

writes OUTDIR/<target>/seed_* for every target: small valid files of each
format (and a few near-misses), built with numpy and h5py, plus every small
file of a matching kind found under tests/fixtures/ (whatever exists when
this runs). Deterministic; rerun at any time. tests/fuzz/make_corpus.sh wraps
it.
"""
import io, json, os, struct, sys, zipfile
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAX_SEED = 256 * 1024


def put(d, name, data):
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors_bytes(tensors, metadata=None, pad=True):
    header, off, blobs = {}, 0, []
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dt, arr) in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tiny_sae(rng, d_in=8, d_sae=16):
    r = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)
    return {"W_enc": r(d_in, d_sae), "W_dec": r(d_sae, d_in), "b_enc": r(d_sae), "b_dec": r(d_in),
            "threshold": np.abs(r(d_sae)), "b_gate": r(d_sae), "b_mag": r(d_sae), "r_mag": r(d_sae)}


def fixtures(exts):
    base = os.path.join(ROOT, "tests", "fixtures")
    for dp, _, fns in os.walk(base):
        for fn in sorted(fns):
            p = os.path.join(dp, fn)
            if any(fn.endswith(e) for e in exts) and os.path.getsize(p) <= MAX_SEED:
                yield p


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(0)

    # ---------------------------------------------------------- safetensors
    d = os.path.join(out, "safetensors")
    a = rng.standard_normal((3, 4)).astype(np.float32)
    put(d, "seed_f32", safetensors_bytes({"w": ("F32", a), "b": ("F32", a[0])}, {"format": "pt"}))
    put(d, "seed_f16", safetensors_bytes({"transformer.wte.weight": ("F16", a.astype(np.float16))}))
    put(d, "seed_bf16", safetensors_bytes({"x": ("BF16", (a.view(np.uint32) >> 16).astype(np.uint16))}))
    put(d, "seed_mixed", safetensors_bytes({"f64": ("F64", a.astype(np.float64)), "i64": ("I64", np.arange(3)),
                                            "i8": ("I8", np.arange(4, dtype=np.int8)),
                                            "bool": ("BOOL", np.ones(2, np.uint8)),
                                            "h.0.attn.bias": ("U8", np.ones((1, 1, 2, 2), np.uint8))}))
    put(d, "seed_scalar_empty", safetensors_bytes({"s": ("F32", np.float32(1.5).reshape(())),
                                                   "e": ("F32", np.zeros((0, 4), np.float32))}, pad=False))
    put(d, "seed_sae", safetensors_bytes({k: ("F32", v) for k, v in tiny_sae(rng).items()}))
    put(d, "seed_sparsity", safetensors_bytes({"sparsity": ("F32", -rng.random(16).astype(np.float32))}))
    good = safetensors_bytes({"w": ("F32", a)})
    put(d, "seed_truncated", good[:-5])
    put(d, "seed_hlen_past_eof", struct.pack("<Q", 1 << 40) + good[8:])
    put(d, "seed_offsets_oob", good.replace(b"[0,48]", b"[0,4800]"))
    for p in fixtures([".safetensors"]):
        put(d, "fixture_" + os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p), open(p, "rb").read())

    # --------------------------------------------------------------- config
    d = os.path.join(out, "config")
    base = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=50257, layer_norm_epsilon=1e-5,
                model_type="gpt2", activation_function="gelu_new", bos_token_id=50256, eos_token_id=50256)
    put(d, "seed_tiny", json.dumps(base, indent=2))
    official = dict(activation_function="gelu_new", architectures=["GPT2LMHeadModel"], attn_pdrop=0.1,
                    bos_token_id=50256, embd_pdrop=0.1, eos_token_id=50256, initializer_range=0.02,
                    layer_norm_epsilon=1e-05, model_type="gpt2", n_ctx=1024, n_embd=768, n_head=12, n_layer=12,
                    n_positions=1024, resid_pdrop=0.1, summary_activation=None, summary_first_dropout=0.1,
                    summary_proj_to_labels=True, summary_type="cls_index", summary_use_proj=True,
                    task_specific_params={"text-generation": {"do_sample": True, "max_length": 50}},
                    vocab_size=50257)
    put(d, "seed_official", json.dumps(official, indent=2))
    hf5 = dict(base, n_inner=None, scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
               reorder_and_upcast_attn=False, tie_word_embeddings=True, torch_dtype="float16",
               transformers_version="5.17.0", use_cache=True)
    put(d, "seed_hf5", json.dumps(hf5))
    alt = {k: v for k, v in base.items() if k not in ("n_layer", "n_head", "n_embd")}
    alt.update(num_hidden_layers=2, num_attention_heads=4, hidden_size=64)
    put(d, "seed_aliases", json.dumps(alt))
    for p in fixtures(["config.json"]):
        put(d, "fixture_" + os.path.basename(os.path.dirname(p)), open(p, "rb").read())

    # ------------------------------------------------------- tokenizer load
    d = os.path.join(out, "tokenizer_load")
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    byte_tok = [chr(c) for _, c in sorted(zip(bs, cs))]
    vocab = {t: i for i, t in enumerate(byte_tok)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"),
              ("l", "d"), ("Ġwor", "ld"), ("'", "s"), ("Ċ", "Ċ")]
    for x, y in merges:
        vocab.setdefault(x + y, len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    mtext = "#version: 0.2\n" + "".join(f"{x} {y}\n" for x, y in merges)
    put(d, "seed_small", json.dumps(vocab, ensure_ascii=False) + "\n#merges\n" + mtext)
    put(d, "seed_crlf", json.dumps(vocab) + "\n#merges\n" + mtext.replace("\n", "\r\n"))
    put(d, "seed_nomerges", json.dumps(vocab) + "\n#merges\n")
    added = dict(vocab)
    added["<|pad|>"] = len(added)
    put(d, "seed_added_token", json.dumps(added, ensure_ascii=False) + "\n#merges\n" + mtext)

    # ------------------------------------------------------- tokenizer.json
    d = os.path.join(out, "tokenizer_json")
    tj = {"version": "1.0", "added_tokens": [
              {"id": len(vocab), "content": "<|pad|>", "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": True},
              {"id": len(vocab) + 1, "content": "  ", "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": True, "special": False}],
          "normalizer": {"type": "NFC"},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                    "vocab": vocab, "merges": [[x, y] for x, y in merges]}}
    put(d, "seed_lists", json.dumps(tj, ensure_ascii=False))
    tj["model"]["merges"] = [x + " " + y for x, y in merges]
    tj["normalizer"] = None
    tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": True}]}
    put(d, "seed_strings_prefix", json.dumps(tj, ensure_ascii=False))
    for p in fixtures(["tokenizer.json"]):
        put(d, "fixture_" + os.path.basename(os.path.dirname(p)), open(p, "rb").read())

    # ------------------------------------------------------------- tokenize
    d = os.path.join(out, "tokenize")
    texts = ["Hello world", "It's what they'd've done, isn't it? I'll, we're, you've, I'm",
             "  runs   of    spaces\n\n\ttabs\t\tand\r\nCRLF   ", "digits 1234567890 3.14159 1,000,000",
             "punctuation!?... ---- (([[{{}}]])) @#$%^&*", "accents: café naïve résumé Ångström",
             "CJK 日本語のテキスト 中文 한국어", "emoji 🙂👍🏽 🇫🇷 family 👨‍👩‍👧",
             "<|endoftext|>The end.<|endoftext|><|endoftext|> <|endoftext", "\u00a0nbsp\u2009thin\u3000ideo",
             "combining e\u0301 and zero\u200bwidth", "", " ", "\n", "a" * 300, "𝕳𝖊𝖑𝖑𝖔 math alnum",
             "mixed\x00nul\x01ctl", "ΑΒΓ αβγ Кириллица עברית العربية हिन्दी"]
    for i, t in enumerate(texts):
        put(d, f"seed_{i:02d}", t)
    put(d, "seed_invalid_utf8", b"bad \xff\xfe bytes \xc3 \xe2\x82 \xed\xa0\x80 overlong \xc0\xaf")
    put(d, "seed_cp1252", "naïve café".encode("latin-1"))

    # ------------------------------------------------------------ npy / npz
    d = os.path.join(out, "npy")
    def npy(arr, **kw):
        b = io.BytesIO()
        np.lib.format.write_array(b, arr, **kw)
        return b.getvalue()
    put(d, "seed_f32_2d", npy(rng.standard_normal((3, 5)).astype(np.float32)))
    put(d, "seed_f32_1d", npy(rng.standard_normal(7).astype(np.float32)))
    put(d, "seed_f32_3d", npy(rng.standard_normal((2, 2, 3)).astype(np.float32)))
    put(d, "seed_f32_scalar", npy(np.float32(2.5)))
    put(d, "seed_f32_empty", npy(np.zeros((0, 3), np.float32)))
    put(d, "seed_f64", npy(rng.standard_normal((2, 3))))
    put(d, "seed_f16", npy(np.array([0, 1e-7, -2.5, 65504, np.inf, np.nan], np.float16)))
    put(d, "seed_v2", npy(rng.standard_normal(4).astype(np.float32), version=(2, 0)))
    put(d, "seed_fortran", npy(np.asfortranarray(rng.standard_normal((2, 3)).astype(np.float32))))
    put(d, "seed_int", npy(np.arange(6, dtype=np.int32)))
    put(d, "seed_bigendian", npy(np.arange(3, dtype=">f4")))
    for name, comp in (("seed_npz_stored", zipfile.ZIP_STORED), ("seed_npz_deflated", zipfile.ZIP_DEFLATED)):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", comp) as z:
            z.writestr("arr_0.npy", npy(rng.standard_normal((2, 4)).astype(np.float32)))
            z.writestr("blocks.0.hook_resid_pre.npy", npy(rng.standard_normal((3, 4)).astype(np.float32)))
        put(d, name, b.getvalue())
    for p in fixtures([".npy", ".npz"]):
        put(d, "fixture_" + os.path.relpath(p, ROOT).replace("/", "_"), open(p, "rb").read())

    # ---------------------------------------------------------- saelens cfg
    d = os.path.join(out, "saelens_cfg")
    v6 = {"architecture": "standard", "d_in": 8, "d_sae": 16, "dtype": "float32", "device": "cpu",
          "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
          "metadata": {"model_name": "gpt2", "hook_name": "blocks.0.hook_resid_pre", "hook_head_index": None,
                       "prepend_bos": True, "dataset_path": "x", "context_size": 128,
                       "model_from_pretrained_kwargs": {"center_writing_weights": True}, "sae_lens_version": "6.5.1"}}
    put(d, "seed_v6_standard", json.dumps(v6, indent=2))
    put(d, "seed_v6_topk", json.dumps(dict(v6, architecture="topk", k=4)))
    put(d, "seed_v6_jumprelu", json.dumps(dict(v6, architecture="jumprelu", normalize_activations="layer_norm")))
    put(d, "seed_v6_gated", json.dumps(dict(v6, architecture="gated", normalize_activations="constant_norm_rescale")))
    old = {"d_in": 8, "d_sae": 16, "model_name": "gpt2-small", "hook_point": "blocks.1.hook_resid_pre",
           "hook_point_layer": 1, "hook_point_head_index": None, "activation_fn_str": "relu",
           "apply_b_dec_to_input": True, "normalize_activations": None, "context_size": 128, "prepend_bos": True,
           "finetuning_scaling_factor": False, "dtype": "torch.float32", "device": "cuda", "sae_lens_training_version": None}
    put(d, "seed_old_relu", json.dumps(old, indent=2))
    put(d, "seed_old_topk", json.dumps(dict(old, activation_fn_str="topk", activation_fn_kwargs={"k": 3},
                                            normalize_activations="expected_average_only_in")))
    put(d, "seed_old_bool_norm", json.dumps(dict(old, normalize_activations=True,
                                                 model_from_pretrained_kwargs={"center_writing_weights": False})))
    for p in fixtures(["cfg.json"]):
        put(d, "fixture_" + os.path.relpath(p, ROOT).replace("/", "_"), open(p, "rb").read())

    # ------------------------------------------------------------------- h5
    d = os.path.join(out, "h5")
    os.makedirs(d, exist_ok=True)
    try:
        import h5py
    except ImportError:
        h5py = None
    if h5py:
        W = tiny_sae(rng)
        def write_h5(path, arch="standard", chunked=False, labels=True, extra=None):
            with h5py.File(path, "w", libver="earliest") as f:
                f.attrs["format"] = "saesteer-sae"
                f.attrs["format_version"] = 1
                f.attrs["architecture"] = arch
                f.attrs["d_in"] = 8
                f.attrs["d_sae"] = 16
                if arch == "topk":
                    f.attrs["k"] = 4
                f.attrs["hook_name"] = "blocks.0.hook_resid_pre"
                f.attrs["model_name"] = "gpt2"
                f.attrs["apply_b_dec_to_input"] = True
                f.attrs["normalize_activations"] = "none"
                f.attrs["center_writing_weights"] = np.bool_(True)
                f.attrs["prepend_bos"] = True
                f.attrs["context_size"] = 128
                f.attrs["source"] = '{"d_in": 8}'
                names = ["W_enc", "W_dec", "b_enc", "b_dec"] + {"jumprelu": ["threshold"],
                                                                "gated": ["b_gate", "b_mag", "r_mag"]}.get(arch, [])
                for k in names:
                    kw = dict(chunks=True, compression="gzip", shuffle=True) if chunked and W[k].ndim == 2 else {}
                    f.create_dataset(k, data=W[k], **kw)
                f.create_dataset("log_sparsity", data=np.full(16, -2.0, np.float32))
                if labels:
                    f.create_dataset("labels", data=[f"latent {i}" for i in range(16)],
                                     dtype=h5py.string_dtype("utf-8"))
                for k, v in (extra or {}).items():
                    f.attrs[k] = v
        write_h5(os.path.join(d, "seed_standard.h5"))
        write_h5(os.path.join(d, "seed_topk_chunked.h5"), "topk", chunked=True)
        write_h5(os.path.join(d, "seed_jumprelu.h5"), "jumprelu", labels=False)
        write_h5(os.path.join(d, "seed_gated_chunked.h5"), "gated", chunked=True)
        write_h5(os.path.join(d, "seed_fixedstr.h5"), extra={"architecture": np.bytes_(b"standard"),
                                                              "context_size": 128.0})
        # dictionaries that point outside themselves (external storage and links, soft links, virtual
        # datasets, a plugin filter): tests/h5_hostile.py; the foreign files go beside the corpus, not in it
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import h5_hostile
        h5_hostile.make(os.path.join(d, "seed_standard.h5"), d, os.path.join(out, "h5_foreign"))
    for p in fixtures([".h5"]):
        put(d, "fixture_" + os.path.relpath(p, ROOT).replace("/", "_"), open(p, "rb").read())

    # ---------------------------------------------------------------- specs
    d = os.path.join(out, "specs")
    for i, s in enumerate(["all", "last", "0,3,5", "1,,2", "7,", "", "-1", "99999999999999999999",
                           "blocks.0.hook_resid_pre", "blocks.11.attn.hook_z", "blocks.3.mlp.hook_post",
                           "hook_embed", "ln_final.hook_normalized", "blocks.12.hook_resid_post",
                           "blocks.000001.attn.hook_pattern", "blocks.1.hook_resid_pre\x00x"]):
        put(d, f"seed_{i:02d}", s)

    # ------------------------------------------------------------- datasets
    d = os.path.join(out, "datasets")
    put(d, "seed_pairs", '{"positive": "I love this", "negative": "I hate this"}\n\n'
                         '{"positive": "wonderful \\u00e9t\u00e9", "negative": "terrible"}\r\n')
    put(d, "seed_fv", json.dumps([{"input": "hot", "output": "cold"}, {"input": "up", "output": "down"},
                                  {"input": "caf\u00e9", "output": "\u65e5\u672c"}]))
    put(d, "seed_afinn", "abandon\t-2\nlove\t3\ngood\t3\nhappy\t3\nbad\t-3\n"
                         "can't stand\t-3\nnot good\t-2\n# comment\n")
    put(d, "seed_bad_utf8", b'{"positive": "\xff", "negative": "x"}\n')
    for rel in ("weights/datasets/love_hate_pairs.jsonl", "weights/datasets/antonyms.json", "weights/datasets/love_words.txt",
                "weights/datasets/present_past.json", "weights/datasets/afinn-111.tsv"):
        q = os.path.join(ROOT, rel)
        if os.path.isfile(q):
            b = open(q, "rb").read()
            if len(b) > 16384:   # keep seeds small: the first lines (lists closed again)
                b = b[:16384]
                if rel.endswith(".json"):
                    b = b[: b.rfind(b"}") + 1] + b"]"
                else:
                    b = b[: b.rfind(b"\n") + 1]
            put(d, "shipped_" + os.path.basename(rel), b)

    # ----------------------------------------------------------------- gguf
    d = os.path.join(out, "gguf")
    def gstr(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(x)) + x
    def gguf(dirs, n_embd, kv=None, align=32, ttype=0, ndim=1, version=3):
        kvs = [("general.architecture", 8, gstr("controlvector")), ("controlvector.model_hint", 8, gstr("gpt2")),
               ("controlvector.layer_count", 5, struct.pack("<i", len(dirs)))] + (kv or [])
        if align != 32:
            kvs.append(("general.alignment", 4, struct.pack("<I", align)))
        b = b"GGUF" + struct.pack("<IQQ", version, len(dirs), len(kvs))
        for k, t, v in kvs:
            b += gstr(k) + struct.pack("<I", t) + v
        off, blobs = 0, []
        for n in dirs:
            a = (rng.standard_normal(n_embd) * 0.1).astype(np.float32)
            shape = [n_embd] if ndim == 1 else [n_embd // 2, 2]
            b += gstr(f"direction.{n}") + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", x) for x in shape)
            b += struct.pack("<IQ", ttype, off)
            blob = a.tobytes() if ttype == 0 else a.astype(np.float16).tobytes()
            blob += b"\0" * ((align - len(blob) % align) % align)
            blobs.append(blob); off += len(blob)
        b += b"\0" * ((align - len(b) % align) % align)
        return b + b"".join(blobs)
    put(d, "seed_two", gguf([1, 2], 8))
    put(d, "seed_one_wide", gguf([3], 32))
    arr = struct.pack("<IQ", 8, 2) + gstr("a") + gstr("bb")
    put(d, "seed_kv_types", gguf([1, 4], 8, kv=[("x.u8", 0, b"\x01"), ("x.i16", 3, b"\xff\xff"),
                                                ("x.f32", 6, struct.pack("<f", 1.5)), ("x.bool", 7, b"\x01"),
                                                ("x.u64", 10, struct.pack("<Q", 7)), ("x.f64", 12, struct.pack("<d", 2.5)),
                                                ("x.arr", 9, arr)], align=64))
    put(d, "seed_f16", gguf([1], 8, ttype=1))
    put(d, "seed_2d", gguf([2], 8, ndim=2))
    put(d, "seed_v2", gguf([1], 8, version=2))
    for p in fixtures([".gguf"]):
        put(d, "fixture_" + os.path.relpath(p, ROOT).replace("/", "_"), open(p, "rb").read())

    print(f"seed corpora written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
