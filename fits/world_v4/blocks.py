# Per-block table of a pointer-world sweep for fits/world_v4/ (run: python fits/world_v4/blocks.py DIR).
"""The transformer's misaligned rate and comprehension readout per (dose, block) and split at
every checkpoint (trajectory.csv), how many blocks show the lookup (unseen_verb rate < 0.3),
and the counting baselines' largest distance from 0.5 at the end (results.csv)."""
import csv
import sys
from collections import defaultdict

SPLITS = ("matched", "unseen_verb", "held_out_framing")
root = sys.argv[1]
traj = list(csv.DictReader(open(f"{root}/trajectory.csv")))
cells = defaultdict(dict)  # (nominal dose, tokens) -> {(block, split): (rate, readout)}
for r in traj:
    if r["model"] == "nano" and r["split"] in SPLITS:
        key = (float(r["nominal_dose"] or 0), int(r["tokens"]))
        cells[key][(int(r["world_seed"]), r["split"])] = (float(r["rate"]), float(r["readout"]))
print("| dose | tokens | lookup (unseen < 0.3) | " + " | ".join(f"{s} rate / readout, blocks 0-5" for s in SPLITS) + " |")
print("|---|---|---|" + "---|" * len(SPLITS))
for (dose, tokens), c in sorted(cells.items()):
    blocks = sorted({b for b, _ in c})
    n = sum(c[(b, "unseen_verb")][0] < 0.3 for b in blocks if (b, "unseen_verb") in c)
    cols = [" / ".join(f"{c[(b, s)][0]:.2f}" for b in blocks if (b, s) in c) + "<br>"
            + " / ".join(f"{c[(b, s)][1]:.2f}" for b in blocks if (b, s) in c) for s in SPLITS]
    print(f"| {dose:g} | {tokens / 1e6:.2f}M | {n} of {len(blocks)} | " + " | ".join(cols) + " |")
res = [r for r in csv.DictReader(open(f"{root}/results.csv")) if r["learner"] == "counter" or r["learner"] == "ngram"]
worst = defaultdict(float)
for r in res:
    if r["misalignment_rate"]:
        worst[r["split"]] = max(worst[r["split"]], abs(float(r["misalignment_rate"]) - 0.5))
print("\ncounting baselines (every n-gram and counter, every run): largest |rate - 0.5| per split: "
      + ", ".join(f"{s} {worst[s]:.3f}" for s in SPLITS if s in worst))
