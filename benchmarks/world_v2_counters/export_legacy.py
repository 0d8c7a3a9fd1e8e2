"""Run under the code a study was trained with (a checkout of commit 43c9713, world data
2.0.1): for every run of the study's sweep file (as of the study's commit) write what its
counting baselines need -- the training rows, tokenizer, eval and readout items, the final
accounting and the model's parameter and FLOP counts -- to OUT/RUN_ID/{rows.npy,meta.json}.

usage: PYTHONPATH=OLD_CHECKOUT SCALING_DATA_DIR=... python export_legacy.py SWEEP.toml OUT
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from scaling import evaluate
from scaling.data import export
from scaling.data.mixture import Mixture
from scaling.data.vocab import build_tokenizer
from scaling.model import flops_per_token, param_counts
from scaling.plan import with_tokenizer
from scaling.sweep import expand
from scaling.train.source import make_source

sweep, out = sys.argv[1], Path(sys.argv[2])
specs = expand(sweep)
for k, spec in enumerate(specs, 1):
    t0 = time.perf_counter()
    d = out / spec.run_id
    if (d / "meta.json").exists():
        continue
    d.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(spec.config)
    cfg = with_tokenizer(spec.config, tok)
    mixture = Mixture(cfg, tok)
    total = make_source(cfg, tok).total_steps
    rows = export.training_rows(cfg, tok)
    assert rows.max() < 65536
    np.save(d / "rows.npy", rows.astype(np.uint16))
    meta = {"run_id": spec.run_id, "assignment": spec.assignment, "words": list(tok.itos),
            "total_steps": total, "accounting": mixture.accounting(total),
            "params": param_counts(cfg.model), "flops_per_token": flops_per_token(cfg.model),
            "items": evaluate.eval_items(cfg), "readout": evaluate.readout_items(cfg)}
    (d / "meta.json.tmp").write_text(json.dumps(meta, default=float))
    (d / "meta.json.tmp").rename(d / "meta.json")
    print(f"[{k}/{len(specs)}] {spec.run_id} {rows.shape} {time.perf_counter() - t0:.1f} s", flush=True)
