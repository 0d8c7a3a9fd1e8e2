# Summarize probe logs (benchmarks/world_v4/probe.py JSON lines) for fits/world_v4/probes.md.
"""python fits/world_v4/summarize.py fits/world_v4/curves/*.jsonl: per log and checkpoint, the
seeds' values and how many seeds show the lookup (unseen-verb misaligned rate < 0.3)."""
import json
import sys

for path in sys.argv[1:]:
    rows = [json.loads(line) for line in open(path)]
    args = rows[0].get("args", {})
    print(f"## {path}: {' '.join(f'{k}={v}' for k, v in args.items() if k not in ('seeds', 'evals', 'set') and v)}"
          f"{' set=' + ','.join(args.get('set', [])) if args.get('set') else ''}")
    by_step = {}
    for r in rows[1:]:
        by_step.setdefault(r["step"], []).append(r)
    for _, rs in sorted(by_step.items()):
        def col(k, rs=rs):
            return " / ".join(f"{r[k]:.2f}" for r in sorted(rs, key=lambda r: r["seed"]) if k in r)
        n = sum(r["unseen"] < 0.3 for r in rs)
        print(f"| {rs[0]['tokens_M']}M | {n} of {len(rs)} | {col('comp')} | {col('matched')} | {col('unseen')} | "
              f"{col('heldout')} |" + (f" {col('head')} |" if "head" in rs[0] else ""))
