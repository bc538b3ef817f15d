#!/usr/bin/env python3
"""Build the word relations that the in-context episodes of the training mix are drawn from, and the
fact documents (a small gazetteer) that teach the model the countries' capitals.

    python3 weights/recipe/build_relations.py --wordnet DIR --npm DIR --gcide-dict DIR --out corpus/

DIR for --wordnet: Debian wordnet-base's /usr/share/wordnet (data.* and *.exc files); --npm: a
node_modules folder holding world-countries@5.1.0 and country-json@2.3.0; --gcide-dict: Debian
dict-gcide's /usr/share/dictd. Standard library only. Writes OUT/relations.json and OUT/facts.txt.

relations.json: {"tasks": {name: [[x, y], ...]}, "heldout": {...}, "counts": {...}}. Tasks:
  antonym, synonym, hypernym, category (noun -> WordNet lexicographer class such as "animal"),
  pos (word -> noun/verb/adjective/adverb), past (verb -> simple past), past_rev (past -> verb),
  plural, plural_rev, comparative, superlative, capital (country -> capital), capital_rev,
  continent, subregion, demonym, language, currency, upper, capitalize, first_letter,
  last_letter, copy, next_number, prev_number, double, next_letter, next_day, next_month.
  Irregular pasts come from GCIDE's "[imp. X;" markers (the dictionary text the model also reads)
  and WordNet's verb.exc; regular ones from spelling rules applied to WordNet verbs whose GCIDE
  entry names no irregular past.

Held out (the shipped evaluation datasets, weights/datasets/): no pair of any task has
(x, y) or (y, x) equal to an evaluation item; no antonym pair starts with an antonym evaluation
input; no past/past_rev pair involves a present_past evaluation verb or its past; no capital,
capital_rev or other country task pair involves an evaluation country or capital as the
capital pair (the country's other facts, such as its continent, stay). The evaluation items
are antonyms.json (the held-out share of WordNet's single-token antonym pairs; see
--antonym-heldout), present_past.json and country_capital.json, exactly as shipped.

facts.txt: one short encyclopaedic document per country (all of them, evaluation countries
included: knowing a capital is a fact a language model reads in text, not an in-context task),
written from world-countries / country-json fields in several sentence patterns. Separated by
<|endoftext|> lines like the corpus, and always put in the training split.
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = os.path.join(HERE, "..", "datasets")
EOT = "<|endoftext|>"
FACT_VARIANTS = 6

LEX = {  # WordNet lexicographer files of nouns -> a category word
    "noun.animal": "animal", "noun.plant": "plant", "noun.food": "food", "noun.artifact": "object",
    "noun.person": "person", "noun.location": "place", "noun.body": "body", "noun.substance": "substance",
    "noun.feeling": "feeling", "noun.time": "time", "noun.communication": "communication",
    "noun.act": "act", "noun.attribute": "attribute", "noun.cognition": "idea", "noun.event": "event",
    "noun.group": "group", "noun.quantity": "quantity", "noun.state": "state", "noun.shape": "shape",
    "noun.object": "thing", "noun.phenomenon": "phenomenon", "noun.process": "process",
    "noun.possession": "possession", "noun.relation": "relation", "noun.motive": "motive",
}
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
            "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
            "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
            "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
            "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
            "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
            "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
            "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
POSNAME = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
WORD = re.compile(r"[a-z]+")


def load_json(p):
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def wordnet(dirn):
    """Synsets: (pos, off) -> (lexname, [words], [(sym, tpos, toff, src, tgt)])."""
    syn = {}
    for pos, fname in (("a", "data.adj"), ("r", "data.adv"), ("n", "data.noun"), ("v", "data.verb")):
        with open(os.path.join(dirn, fname), encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                body = line.split(" | ")[0].split()
                off, lexn = body[0], int(body[1])
                w_cnt = int(body[3], 16)
                ws = [re.sub(r"\(.*\)$", "", body[4 + 2 * i]) for i in range(w_cnt)]
                k = 4 + 2 * w_cnt
                p_cnt = int(body[k])
                k += 1
                ptrs = []
                for _ in range(p_cnt):
                    sym, toff, tpos, st = body[k:k + 4]
                    k += 4
                    ptrs.append((sym, "a" if tpos == "s" else tpos, toff, int(st[:2], 16), int(st[2:], 16)))
                syn[(pos, off)] = (LEXNAMES[lexn] if lexn < len(LEXNAMES) else "", ws, ptrs)
    return syn


def exc(dirn, name):
    out = {}
    with open(os.path.join(dirn, name), encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                out.setdefault(p[1], []).append(p[0])
    return out


def gcide_pasts(ddir):
    """head word -> past from GCIDE entries like 'Go, v. i. [imp. Went; p. p. Gone; ...]'."""
    with gzip.open(os.path.join(ddir, "gcide.dict.dz"), "rb") as f:
        blob = f.read().decode("utf-8", errors="replace")
    out = {}
    for m in re.finditer(r"\n([A-Z][a-z]+)\s+\\[^\\\n]*\\,?\s*v\. [ti]\.[^\[]{0,80}\[imp\. \{?([A-Za-z]+)", blob):
        w, p = m.group(1).lower(), m.group(2).lower()
        if WORD.fullmatch(w) and WORD.fullmatch(p):
            out.setdefault(w, p)
    return out


VOWELS = "aeiou"


def regular_past(v):
    if v.endswith("e"):
        return v + "d"
    if len(v) > 2 and v.endswith("y") and v[-2] not in VOWELS:
        return v[:-1] + "ied"
    if (len(v) >= 3 and v[-1] not in VOWELS + "wxy" and v[-2] in VOWELS and v[-3] not in VOWELS
            and sum(c in VOWELS for c in v) == 1):
        return v + v[-1] + "ed"
    return v + "ed"


def regular_plural(n):
    if re.search(r"(s|x|z|ch|sh)$", n):
        return n + "es"
    if len(n) > 2 and n.endswith("y") and n[-2] not in VOWELS:
        return n[:-1] + "ies"
    return n + "s"


def regular_comp(a):
    """comparative, superlative for one-syllable adjectives and those in consonant + y (happy ->
    happier); others take 'more' and are left out."""
    if len(a) >= 4 and a.endswith("y") and a[-2] not in VOWELS and sum(c in VOWELS for c in a[:-1]) <= 2:
        return a[:-1] + "ier", a[:-1] + "iest"
    if sum(c in VOWELS for c in a) != 1 or len(a) < 3 or a.endswith("y"):
        return None
    if a.endswith("e"):
        return a + "r", a + "st"
    if a[-1] not in VOWELS + "wxy" and a[-2] in VOWELS and a[-3] not in VOWELS:
        return a + a[-1] + "er", a + a[-1] + "est"
    return a + "er", a + "est"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet", required=True)
    ap.add_argument("--npm", required=True)
    ap.add_argument("--gcide-dict", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    ev_ant = [(d["input"], d["output"]) for d in load_json(os.path.join(DATASETS, "antonyms.json"))]
    ev_pp = [(d["input"], d["output"]) for d in load_json(os.path.join(DATASETS, "present_past.json"))]
    ev_cc = [(d["input"], d["output"]) for d in load_json(os.path.join(DATASETS, "country_capital.json"))]
    banned = set()
    for x, y in ev_ant + ev_pp + ev_cc:
        banned.add((x.lower(), y.lower()))
        banned.add((y.lower(), x.lower()))
    ant_inputs = {x for x, _ in ev_ant}
    pp_words = {x for x, _ in ev_pp} | {y for _, y in ev_pp}
    cc_words = {x.lower() for x, _ in ev_cc} | {y.lower() for _, y in ev_cc}

    syn = wordnet(args.wordnet)
    tasks = {k: set() for k in ("antonym", "synonym", "hypernym", "category", "pos", "past", "past_rev",
                                "plural", "plural_rev", "comparative", "superlative")}
    freq_words = set()
    for (pos, off), (lexn, ws, ptrs) in syn.items():
        simple = [w for w in ws if WORD.fullmatch(w)]
        freq_words.update(simple)
        for w in simple:
            tasks["pos"].add((w, POSNAME[pos]))
        if pos == "n" and lexn in LEX:
            for w in simple:
                tasks["category"].add((w, LEX[lexn]))
        for a in simple:
            for b in simple:
                if a != b:
                    tasks["synonym"].add((a, b))
        for sym, tpos, toff, s, t in ptrs:
            tgt = syn.get((tpos, toff))
            if not tgt:
                continue
            tws = tgt[1]
            if sym == "!" and s and t:
                a, b = ws[s - 1], tws[t - 1]
                if WORD.fullmatch(a) and WORD.fullmatch(b) and a != b:
                    tasks["antonym"].add((a, b))
            if sym == "@" and pos == "n":
                for a in simple[:2]:
                    b = tws[0]
                    if WORD.fullmatch(b) and a != b:
                        tasks["hypernym"].add((a, b))
    # words that take one POS only are unambiguous for the pos task
    by_word = {}
    for w, p in tasks["pos"]:
        by_word.setdefault(w, set()).add(p)
    tasks["pos"] = {(w, p) for w, p in tasks["pos"] if len(by_word[w]) == 1}
    cats = {}
    for w, c in tasks["category"]:
        cats.setdefault(w, set()).add(c)
    tasks["category"] = {(w, c) for w, c in tasks["category"] if len(cats[w]) == 1}

    vexc, nexc, aexc = exc(args.wordnet, "verb.exc"), exc(args.wordnet, "noun.exc"), exc(args.wordnet, "adj.exc")
    gp = gcide_pasts(args.gcide_dict)
    verbs = sorted({w for (pos, _), (_, ws, _) in syn.items() if pos == "v" for w in ws if WORD.fullmatch(w)})
    for v in verbs:
        if v in gp:
            p = gp[v]
        elif v in vexc:
            continue  # irregular in WordNet but no GCIDE past: past vs participle is unknown, skip
        else:
            p = regular_past(v)
        tasks["past"].add((v, p))
        tasks["past_rev"].add((p, v))
    nouns = sorted({w for (pos, _), (_, ws, _) in syn.items() if pos == "n" for w in ws if WORD.fullmatch(w)})
    for n in nouns:
        pl = nexc.get(n, [None])[0] or regular_plural(n)
        if WORD.fullmatch(pl) and pl != n:
            tasks["plural"].add((n, pl))
            tasks["plural_rev"].add((pl, n))
    adjs = sorted({w for (pos, _), (_, ws, _) in syn.items() if pos in "as" for w in ws if WORD.fullmatch(w)})
    irregular_adj = {}
    for form, bases in aexc.items():
        for b in bases:
            irregular_adj.setdefault(b, []).append(form)
    for a in adjs:
        if a in irregular_adj:
            forms = sorted(irregular_adj[a], key=len)
            er = [f for f in forms if f.endswith("er") or f in ("worse", "less", "more", "better")]
            est = [f for f in forms if f.endswith("st")]
            if er:
                tasks["comparative"].add((a, er[0]))
            if est:
                tasks["superlative"].add((a, est[0]))
        else:
            r = regular_comp(a)
            if r:
                tasks["comparative"].add((a, r[0]))
                tasks["superlative"].add((a, r[1]))

    # countries
    wc = load_json(os.path.join(args.npm, "world-countries", "countries.json"))
    cj = os.path.join(args.npm, "country-json", "src")
    dish = {d["country"]: d.get("dish") for d in load_json(os.path.join(cj, "country-by-national-dish.json"))}
    gov = {d["country"]: d.get("government") for d in load_json(os.path.join(cj, "country-by-government-type.json"))}
    pop = {d["country"]: d.get("population") for d in load_json(os.path.join(cj, "country-by-population.json"))}
    ctasks = {k: set() for k in ("capital", "capital_rev", "continent", "subregion", "demonym", "language", "currency")}
    facts = []
    aliases = {"Türkiye": "Turkey", "Czechia": "Czech Republic"}
    for c in wc:
        name = aliases.get(c["name"]["common"], c["name"]["common"])
        caps = c.get("capital") or []
        cap = caps[0] if caps else None
        region, sub = c.get("region"), c.get("subregion")
        dem = (c.get("demonyms") or {}).get("eng", {}).get("m")
        langs = list((c.get("languages") or {}).values())
        curs = [v.get("name") for v in (c.get("currencies") or {}).values() if v.get("name")]
        if c.get("independent") is False and not cap:
            continue
        evc = name.lower() in cc_words or (cap and cap.lower() in cc_words)
        if cap and not evc:
            ctasks["capital"].add((name, cap))
            ctasks["capital_rev"].add((cap, name))
        if region:
            ctasks["continent"].add((name, region if region != "Americas" else (
                "South America" if sub == "South America" else "North America")))
        if sub:
            ctasks["subregion"].add((name, sub))
        if dem:
            ctasks["demonym"].add((name, dem))
        if len(langs) == 1:
            ctasks["language"].add((name, langs[0]))
        if len(curs) == 1:
            ctasks["currency"].add((name, curs[0]))
        # the fact documents: FACT_VARIANTS differently worded ones per country
        for variant in range(FACT_VARIANTS):
            facts.append(fact_doc(name, cap, region, sub, dem, langs, curs, gov.get(name), pop.get(name),
                                  dish.get(name), variant))
    tasks.update(ctasks)
    return finish(args, tasks, freq_words, banned, ant_inputs, pp_words, cc_words, facts,
                  (ev_ant, ev_pp, ev_cc))


def fact_doc(name, cap, region, sub, dem, langs, curs, gov, pop, dish, variant):
    rnd = random.Random(int(hashlib.sha1(("%s:%d" % (name, variant)).encode()).hexdigest(), 16))
    if True:
        s = []
        where = ("in %s" % sub.replace("Caribbean", "the Caribbean")) if sub else ("in %s" % region) if region else ""
        if cap:
            s.append(rnd.choice([
                "%s is a country %s. Its capital is %s." % (name, where, cap),
                "%s is a country %s, and its capital city is %s." % (name, where, cap),
                "The capital of %s is %s. The country lies %s." % (name, cap, where),
                "%s, the capital of %s, is the seat of its government. %s lies %s." % (cap, name, name, where),
            ]))
        elif where:
            s.append("%s is a territory %s." % (name, where))
        if dem:
            s.append(rnd.choice(["Its people are called %s." % dem, "A person from %s is %s." % (name, dem)]))
        if langs:
            s.append(("The official language is %s." % langs[0]) if len(langs) == 1 else
                     ("Languages spoken there include %s." % ", ".join(langs[:3])))
        if curs:
            s.append(rnd.choice(["The currency is the %s." % curs[0], "People there pay with the %s." % curs[0]]))
        if gov and rnd.random() < 0.5:
            s.append("Government: %s." % gov)
        if pop and rnd.random() < 0.5:
            s.append("It has about %s inhabitants." % format(int(pop), ","))
        if dish and rnd.random() < 0.5:
            s.append("A national dish is %s." % dish)
        if cap:
            s.append(rnd.choice(["%s is its largest or best-known city." % cap if rnd.random() < 0.5 else
                                 "Visitors to %s usually arrive in %s." % (name, cap),
                                 "Many of %s's institutions are based in %s." % (name, cap)]))
        rnd.shuffle(s)  # the order of facts varies between variants (the first stays first half the time)
        return " ".join(s)


def finish(args, tasks, freq_words, banned, ant_inputs, pp_words, cc_words, facts, evals):
    ev_ant, ev_pp, ev_cc = evals
    # form tasks on common words
    common = sorted(w for w in freq_words if 3 <= len(w) <= 10)
    rnd = random.Random(0)
    rnd.shuffle(common)
    common = common[:6000]
    tasks["upper"] = {(w, w.upper()) for w in common}
    tasks["capitalize"] = {(w, w.capitalize()) for w in common}
    tasks["first_letter"] = {(w, w[0]) for w in common}
    tasks["last_letter"] = {(w, w[-1]) for w in common}
    tasks["copy"] = {(w, w) for w in common}
    tasks["next_number"] = {(str(i), str(i + 1)) for i in range(0, 200)}
    tasks["prev_number"] = {(str(i), str(i - 1)) for i in range(1, 200)}
    tasks["double"] = {(str(i), str(2 * i)) for i in range(1, 100)}
    letters = "abcdefghijklmnopqrstuvwxyz"
    tasks["next_letter"] = {(letters[i], letters[i + 1]) for i in range(25)} | \
                           {(letters[i].upper(), letters[i + 1].upper()) for i in range(25)}
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"]
    tasks["next_day"] = {(days[i], days[(i + 1) % 7]) for i in range(7)}
    tasks["next_month"] = {(months[i], months[(i + 1) % 12]) for i in range(12)}

    # hold-out rules
    dropped = {}
    for name, pairs in tasks.items():
        keep = set()
        for x, y in pairs:
            bad = (x.lower(), y.lower()) in banned
            if name == "antonym" and x in ant_inputs:
                bad = True
            if name in ("past", "past_rev") and (x in pp_words or y in pp_words):
                bad = True
            if name in ("capital", "capital_rev") and (x.lower() in cc_words or y.lower() in cc_words):
                bad = True
            if bad:
                dropped[name] = dropped.get(name, 0) + 1
            else:
                keep.add((x, y))
        tasks[name] = sorted(keep)
    os.makedirs(args.out, exist_ok=True)
    # "common" pairs: the input is one GPT-2 token after a space (a frequent word); episodes draw
    # most of their pairs from these (episodes.py)
    with open(os.path.join(HERE, "..", "gpt2-tokenizer", "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    common_in = {name: [i for i, (x, _) in enumerate(pairs) if ("\u0120" + x) in vocab]
                 for name, pairs in tasks.items()}
    out = {"tasks": tasks, "common": common_in, "counts": {k: len(v) for k, v in tasks.items()}, "dropped_for_heldout": dropped,
           "heldout_datasets": {"antonyms.json": len(ev_ant), "present_past.json": len(ev_pp),
                                "country_capital.json": len(ev_cc)}}
    with open(os.path.join(args.out, "relations.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    with open(os.path.join(args.out, "facts.txt"), "w", encoding="utf-8") as f:
        f.write(("\n" + EOT + "\n").join(facts) + "\n")
    for k, v in sorted(out["counts"].items()):
        print("%-13s %6d pairs  (dropped for held-out: %d)" % (k, v, dropped.get(k, 0)))
    print("facts: %d country documents" % len(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
