#!/usr/bin/env python3
"""In-context episodes for the default model's training mix (used by train_model.py --episodes).

An episode is a short document of example pairs of ONE task written in ONE format, such as

    Q: hot\\nA: cold\\n\\nQ: tall\\nA: short\\n\\n ...        or        cat -> cats\\ndog -> dogs\\n ...

so the only way to predict an answer is to infer the task from the pairs before it: the same word
appears under many tasks (dog -> dogs, dog -> animal, dog -> DOG, dog -> d ...), so the input alone
does not say what is wanted. Tasks and pairs come from relations.json (build_relations.py), which
already excludes every evaluation item of the shipped datasets (weights/datasets/). Two synthetic
list tasks are made here (first and last item of a short list of common words).

Sampling (all from one seeded random.Random, so a run is reproducible): a task by TASK_WEIGHTS, a
format by FORMATS' weights, a number of pairs uniformly in [2, 16], pairs without replacement, 85% of the time from the
pairs whose input is a frequent word (one GPT-2 token after a space; relations.json "common").
`python3 episodes.py relations.json N` prints N episodes for a look.
"""
import json
import random
import sys

TASK_WEIGHTS = {
    "antonym": 3.0, "synonym": 2.0, "hypernym": 2.0, "category": 1.5, "pos": 1.0,
    "past": 2.0, "past_rev": 1.0, "plural": 1.5, "plural_rev": 1.0, "comparative": 1.0, "superlative": 1.0,
    "capital": 2.0, "capital_rev": 1.0, "continent": 1.0, "subregion": 0.5, "demonym": 1.0, "language": 1.0,
    "currency": 1.0, "upper": 0.7, "capitalize": 0.7, "first_letter": 0.7, "last_letter": 0.5, "copy": 1.0,
    "next_number": 0.5, "prev_number": 0.3, "double": 0.3, "next_letter": 0.5, "next_day": 0.3,
    "next_month": 0.3, "list_first": 0.6, "list_last": 0.6,
}

COMMON_SHARE = 0.85

# (weight, pair template, separator between pairs). "{x}"/"{y}" are the input and output.
FORMATS = [
    (0.30, "Q: {x}\nA: {y}", "\n\n"),
    (0.12, "{x} -> {y}", "\n"),
    (0.10, "{x}: {y}", "\n"),
    (0.08, "Input: {x}\nOutput: {y}", "\n\n"),
    (0.06, "{x} => {y}", "\n"),
    (0.06, "{x} = {y}", "\n"),
    (0.06, "{x}\t{y}", "\n"),
    (0.06, "{x} is to {y}", "; "),
    (0.06, "Question: {x}\nAnswer: {y}", "\n\n"),
    (0.05, "{x} becomes {y}", ". "),
    (0.05, "x: {x}, y: {y}", "\n"),
]


class EpisodeMaker:
    def __init__(self, relations_path, seed=0):
        with open(relations_path, encoding="utf-8") as fh:
            rel = json.load(fh)
        self.tasks = {k: v for k, v in rel["tasks"].items() if v}
        # pairs whose input is a frequent word (one GPT-2 token): COMMON_SHARE of the draws
        self.common = {k: [self.tasks[k][i] for i in rel.get("common", {}).get(k, [])] for k in self.tasks}
        self.rnd = random.Random(seed)
        self.words = [x for x, _ in self.common.get("copy", [])] or ["one", "two", "three", "four"]
        names = [t for t in TASK_WEIGHTS if t in self.tasks or t.startswith("list_")]
        self.task_names = names
        self.task_w = [TASK_WEIGHTS[t] for t in names]
        self.fmt_w = [f[0] for f in FORMATS]

    def _list_pairs(self, kind, n):
        out = []
        for _ in range(n):
            items = self.rnd.sample(self.words, self.rnd.randint(3, 5))
            out.append((", ".join(items), items[0] if kind == "list_first" else items[-1]))
        return out

    def episode(self):
        r = self.rnd
        task = r.choices(self.task_names, self.task_w)[0]
        n = r.randint(2, 16)
        if task.startswith("list_"):
            pairs = self._list_pairs(task, n)
        else:
            pool = self.tasks[task]
            if len(self.common[task]) >= 20 and r.random() < COMMON_SHARE:
                pool = self.common[task]
            if len(pool) >= n:
                pairs = r.sample(pool, n)
            else:  # small tasks (days, months, letters): every pair once, in random order, then again
                pairs = (r.sample(pool, len(pool)) * (n // len(pool) + 1))[:n]
        _, tmpl, sep = r.choices(FORMATS, self.fmt_w)[0]
        text = sep.join(tmpl.replace("{x}", x).replace("{y}", y) for x, y in pairs)
        return task, text + ("\n" if sep.endswith("\n") else "")

    def episodes(self, n):
        return [self.episode() for _ in range(n)]


if __name__ == "__main__":
    em = EpisodeMaker(sys.argv[1], seed=int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    for task, text in em.episodes(int(sys.argv[2]) if len(sys.argv) > 2 else 5):
        print("=== %s\n%s" % (task, text))
