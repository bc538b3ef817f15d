#!/usr/bin/env python3
"""bench/project_scale.py - the projected table of docs/SCALING.md: a scan of TOKENS tokens on N nodes.

Every input is a measured figure from bench/run_scale.sh (pass them as options) except the network
bandwidth, which is an assumption (--gbps). The model, per phase:
  counting   each rank tokenizes its 1/N of the text            (TOKENS/N) / count_tps
  windows    each rank runs its 1/N of the windows             (TOKENS/N) / node_tps
  merge      ceil(log2 N) tree rounds; a round moves one part    rounds * (part_bytes / bandwidth + merge_s)
             and merges it (part_bytes and merge_s measured for one part of the same d_sae and K)
  logits     rank 0, once                                       logits_s
  write      rank 0, once (latents.json, dashboard.html)        write_s
"""
import argparse, math

ap = argparse.ArgumentParser()
ap.add_argument("--tokens", type=float, default=100e6)
ap.add_argument("--node-tps", type=float, required=True, help="scan tokens/s of one node (window pass)")
ap.add_argument("--count-tps", type=float, required=True, help="tokens/s of the counting pass (tokenizer only)")
ap.add_argument("--part-bytes", type=float, required=True, help="bytes one rank sends at the merge")
ap.add_argument("--merge-s", type=float, required=True, help="seconds to merge one part at a rank")
ap.add_argument("--logits-s", type=float, required=True)
ap.add_argument("--write-s", type=float, required=True)
ap.add_argument("--gbps", type=float, default=10.0, help="network bandwidth, Gbit/s (assumed)")
ap.add_argument("--nodes", default="1,2,8,32,128,512")
a = ap.parse_args()

def fmt(s):
    if s >= 86400: return f"{s / 86400:.1f} d"
    if s >= 3600: return f"{s / 3600:.1f} h"
    if s >= 60: return f"{s / 60:.1f} min"
    return f"{s:.1f} s"

bw = a.gbps * 1e9 / 8
print("| nodes | counting | windows | merge (rounds) | logit effects + writing | total | speed-up |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
t1 = None
for n in [int(x) for x in a.nodes.split(",")]:
    cnt = a.tokens / n / a.count_tps if n > 1 else 0.0
    win = a.tokens / n / a.node_tps
    rounds = math.ceil(math.log2(n)) if n > 1 else 0
    mrg = rounds * (a.part_bytes / bw + a.merge_s)
    fin = a.logits_s + a.write_s
    tot = cnt + win + mrg + fin
    t1 = t1 or tot
    print(f"| {n} | {fmt(cnt)} | {fmt(win)} | {fmt(mrg)} ({rounds}) | {fmt(fin)} | {fmt(tot)} | {t1 / tot:.1f}x |")
