"""`python -m studies.backfill` (studies/backfill.py) with each run's training rows, tokenizer, items and
accounting taken from an export made by the code the study was trained with
(export_legacy.py), instead of rebuilt by today's code (whose world data changed since).

usage: PYTHONPATH=NEW_CHECKOUT python backfill_legacy.py SWEEP.toml RESULTS.csv EXPORT_DIR OUT.csv [MODELS]
"""
import json
import sys
from pathlib import Path

import numpy as np

from scaling import rundir
from scaling.data.tokenizer import SPECIALS, WordTokenizer
from scaling.plan import with_tokenizer
from studies import backfill

sweep, table, export, out = sys.argv[1:5]
models = sys.argv[5] if len(sys.argv) > 5 else "counter"


def legacy_rebuild(match: backfill.Match) -> backfill.Rebuilt:
    d = Path(export) / match.run_id  # the old code's run id is the table's
    meta = json.loads((d / "meta.json").read_text())
    assert meta["run_id"] == match.run_id
    tok = WordTokenizer([w for w in meta["words"] if w not in SPECIALS])
    assert tok.itos == meta["words"], "the exported vocabulary does not make the same token ids"
    cfg = with_tokenizer(match.spec.config, tok)  # today's config, the run's vocabulary
    record = rundir.config_record(cfg, meta["total_steps"])
    assert (record["params"], record["flops_per_token"]) == (meta["params"], meta["flops_per_token"])
    rows = np.load(d / "rows.npy", mmap_mode="r")
    return backfill.Rebuilt(cfg, tok, record, meta["accounting"], meta["items"], meta["readout"],
                            rows=rows)


backfill.backfill(sweep, table, out, models, rebuild=legacy_rebuild, say=lambda s: print(s, flush=True))
