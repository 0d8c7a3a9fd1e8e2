"""Resistance to post-training: how many post-training steps it takes to move misalignment.

A persistence sweep measures misalignment at several post-training steps (eval.checkpoints
in global steps -> trajectory.csv; the post-training step of a point is its global step
minus the run's pretraining steps, dose_tokens / tokens per step, so step 0 is the end of
pretraining and the run's last point is results.csv's). Each direction (post_training
kind) pushes misalignment toward its end: 0 for harmlessness RL and an aligned finetune,
1 for every other direction (helpfulness RL, direct or indirect, SFT, a misaligned finetune).

Per model, direction (with its RL scope and length), window, split and dose (0 included):
the rate at each post-training step, pooled over blocks (train seed x world seed; counts =
rate x items of the split, summed per step), and its isotonic regression on the step,
monotone toward the direction's end (`monotone_curve`: pool adjacent violators weighted by
items). Where the rates already move monotonically the fit is the data themselves; in
particular it passes through the observed step-0 rate unless the next step lies on the far
side of it. The fitted step-0 rate is the start p0; the steps to move a share q of the way
to the end e are where the fitted curve, linear in log(step + 1) between the steps measured,
reaches p0 + q (e - p0) (`monotone_crossing`). Nothing is extrapolated: a curve that has not
got that far by the last step measured is censored ("> LAST"), one whose fit never moves
toward the end "does not move", one that starts at the end "starts at the end".

Why this estimator (benchmarks/resistance_estimators.py, 400 simulations per truth, 3 blocks
whose speed (log sd 0.3) and start (logit sd 0.25) vary, 256 items, the study's steps): the
binomial GLM logit p = a + b log(step + 1) that this module fitted before forces one shape
through every point. On curves that stay flat for a few steps and then rise (the committed
misaligned-finetune control: 0.54, 0.58, 0.68, 0.83 at steps 0, 2, 5, 10) it misses the start (0.42 for
an observed 0.54) and puts the control's half-way step at 0.39 x the truth; its interval
covered 0.3% of the time, and the dosed / control ratio 5%. The monotone curve has median
estimate / truth 0.98-1.11 (ratio 0.95-1.05) at 50% and 80%, on both that shape and the GLM's
own (where the GLM is right), and its block interval below covers 0.93-0.95 (crossing) and
0.92-0.95 (ratio) of the simulations that have one (a block that does not reach 80% by the
last step leaves none: 10-15% of them on the GLM's slow shape). A geometric mean
of the blocks' own crossings does as well where every block reaches the share, but says
nothing where one does not; the pooled curve is the one drawn, and it has a start to check.

Intervals: the blocks are the units. Each block's own curve gives its own crossing; the
95% interval is the pooled estimate x exp(+- t(blocks - 1) x SE), SE the standard error of
the mean of the blocks' log crossings (`over_blocks`). It needs two or more blocks, each
reaching the share within the steps measured (else "[-]": dropping the slow blocks would
bias it). The ratio of steps-to-erase, dosed / control (the same direction's dose-0 curve),
is the ratio of the pooled crossings with the same interval over the blocks' log ratios
(`_pooled_ratio`), and, block by block (`block_ratio`), the geometric mean of the blocks'
ratios with a t interval on blocks - 1 df: findings use the latter when the study has three
or more blocks. tests/test_resistance.py checks coverage on simulated curves with known
crossings and that every committed control curve's fitted start lies inside its observed
step-0 rate's binomial interval.

Secondary: retention at a fixed step (RETENTION_STEP): reduction (control - dosed, paired
by block) at that step / reduction at step 0, with Fieller's interval (scaling.stats.paired).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling.stats.paired import PairedContrast, paired_contrast
from scaling.table import BLOCK, transformers

SHARES = (0.5, 0.8)
RETENTION_STEP = 20
TOWARD_ZERO = ("harmless_rl", "aligned_ft")  # directions whose end is misalignment 0
KEYS = ["model", "post_training", "rl_scope", "post_training_tokens", "split"]  # + insertion: dose-0 runs have "control"


def direction_end(kind: str) -> float:
    """Where a post-training direction pushes misalignment: 0 or 1."""
    return 0.0 if str(kind) in TOWARD_ZERO else 1.0


# ---------------------------------------------------------------- the monotone curve and its crossing


def pava(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted isotonic (non-decreasing) regression of y in its given order: pool adjacent
    violators, each pool at its weighted mean."""
    means, weights, sizes = [], [], []
    for yi, wi in zip(np.asarray(y, float), np.asarray(w, float)):
        means.append(yi), weights.append(wi), sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, s2 = means.pop(), weights.pop(), sizes.pop()
            m1, w1, s1 = means.pop(), weights.pop(), sizes.pop()
            means.append((m1 * w1 + m2 * w2) / (w1 + w2)), weights.append(w1 + w2), sizes.append(s1 + s2)
    return np.repeat(means, sizes)


def monotone_curve(steps: np.ndarray, k: np.ndarray, n: np.ndarray, end: float) -> pd.DataFrame:
    """The rate per distinct post-training step (counts k of n pooled over the points at that
    step), ascending, and its isotonic fit monotone toward `end` (weights: items). Index: step;
    columns rate, items, fitted. Where the data are monotone, fitted is the rate itself."""
    steps, k, n = (np.asarray(v, float) for v in (steps, k, n))
    at, where = np.unique(steps, return_inverse=True)  # numpy, not groupby: simulations call it often
    k, n = np.bincount(where, k, len(at)), np.bincount(where, n, len(at))
    rate = k / n
    sign = 1.0 if end > 0.5 else -1.0  # toward 1: non-decreasing; toward 0: non-increasing
    return pd.DataFrame({"rate": rate, "items": n, "fitted": sign * pava(sign * rate, n)},
                        index=pd.Index(at, name="step"))


def monotone_crossing(curve: pd.DataFrame, share: float, end: float) -> dict:
    """Steps until the fitted curve has moved `share` of the way from its start (its fitted
    step-0 rate) to `end`: linear interpolation in log(step + 1) between the two measured
    steps that bracket the target. status: "reached"; "beyond" (the curve moves toward the end
    but not that far by the last step: steps inf, censored); "never" (the fitted curve is flat:
    the rate never moves toward the end; steps inf); "at end" (it starts there; steps NaN)."""
    s, f = curve.index.to_numpy(float), curve["fitted"].to_numpy(float)
    if len(s) < 2 or s[0] != 0:
        return {"steps": np.nan, "status": "no step 0"}
    start = f[0]
    if start == end:
        return {"steps": np.nan, "status": "at end"}
    target = start + share * (end - start)
    there = (f - target) * np.sign(end - start) >= 0
    if not there.any():
        return {"steps": np.inf, "status": "never" if f[-1] == start else "beyond"}
    i = int(np.argmax(there))  # >= 1: the start is short of any target with share > 0
    x0, x1 = np.log1p(s[i - 1]), np.log1p(s[i])
    x = x0 + (target - f[i - 1]) / (f[i] - f[i - 1]) * (x1 - x0)
    return {"steps": float(np.expm1(x)), "status": "reached"}


def over_blocks(estimate: float, block_logs: list[float], level: float = 0.95) -> dict:
    """Interval of a positive estimate (steps, or a ratio of steps) on the log scale: log
    estimate +- t(blocks - 1) x the standard error of the mean of the blocks' own log values
    (the blocks are the units), and the p of log = 0. NaN unless there are two or more blocks,
    each with a finite value."""
    out = {"lower": np.nan, "upper": np.nan, "p": np.nan}
    logs = np.asarray(block_logs, float)
    if len(logs) < 2 or not np.all(np.isfinite(logs)) or not (np.isfinite(estimate) and estimate > 0):
        return out
    contrast = PairedContrast.from_moments(np.log(estimate), logs.std(ddof=1), len(logs))
    lower, upper = contrast.conf_int(1 - level)
    return {"lower": float(np.exp(lower)), "upper": float(np.exp(upper)), "p": contrast.pvalue}


def log_steps_ratio(dosed: dict, control: dict) -> tuple[float, float]:
    """log(steps dosed / steps control) at the same share from two crossings (x = log(steps +
    1)), and the delta-method SE where they carry one ("se"; NaN for the monotone crossings).
    NaN where either crossing is not finite and > 0."""
    xd, xc = dosed["x"], control["x"]
    if not (np.isfinite(xd) and np.isfinite(xc)) or xd <= 0 or xc <= 0:
        return (np.nan, np.nan)
    # d log(expm1(x)) / dx = e^x / (e^x - 1)
    se = np.hypot(dosed["se"] * np.exp(xd) / np.expm1(xd), control["se"] * np.exp(xc) / np.expm1(xc))
    return (float(np.log(np.expm1(xd)) - np.log(np.expm1(xc))), float(se))


def block_ratio(dosed: dict, control: dict, last: float, level: float = 0.95) -> dict:
    """Ratio of steps, dosed / control, from per-block crossings (dicts block -> crossing of
    that block's own fit): the geometric mean of the blocks' ratios with a t interval on
    blocks - 1 df and its p (log ratio 0). NaN unless every block of both reached the share
    within `last` steps and there are two or more blocks."""
    nan = {"ratio": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan, "blocks": 0}
    blocks = sorted(set(dosed) & set(control), key=str)
    logs = []
    for b in blocks:
        log_ratio, _ = log_steps_ratio(dosed[b], control[b])
        if not np.isfinite(log_ratio) or max(np.expm1(dosed[b]["x"]), np.expm1(control[b]["x"])) > last:
            return nan
        logs.append(log_ratio)
    if len(logs) < 2:
        return nan
    contrast = paired_contrast(logs)
    lower, upper = contrast.conf_int(1 - level)
    return {"ratio": float(np.exp(contrast.estimate)), "lower": float(np.exp(lower)), "upper": float(np.exp(upper)),
            "p": contrast.pvalue, "blocks": contrast.blocks}


# ---------------------------------------------------------------- from the study's tables


def curves(trajectory: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, split, post-training step >= 0): the run's configuration columns
    (scaling.reports.persistence), post_step, rate, readout, items (the split's total in results.csv)."""
    from .persistence import run_rows

    runs = run_rows(results)
    if runs.empty or trajectory.empty or "dose_tokens" not in runs.columns:
        return pd.DataFrame()
    for col, default in (("insertion", "throughout"), ("post_training_tokens", 0)):
        if col not in runs.columns:
            runs = runs.assign(**{col: default})
    cols = ["run_id", "split", *[c for c in ("model", "post_training", "rl_scope", "post_training_tokens", "insertion",
                                             "level", "dose", "dose_tokens", "total", *BLOCK) if c in runs.columns]]
    per = runs[cols].drop_duplicates(["run_id", "split"]).rename(columns={"total": "items"})
    trajectory = transformers(trajectory)  # not the post-training counters' points
    traj = trajectory if "readout" in trajectory.columns else trajectory.assign(readout=np.nan)
    traj = traj[["run_id", "split", "step", "tokens", "rate", "readout",
                 *[c for c in ("kl", "kl_sum") if c in traj.columns]]]
    # a run without dose_tokens (a table of one's own) has no post-training steps to place
    out = traj.merge(per, on=["run_id", "split"], how="inner").dropna(subset=["dose_tokens"])
    if out.empty:
        return pd.DataFrame()
    per_step = out["tokens"].astype(float) / out["step"].astype(float)
    post = out["step"].astype(float) - out["dose_tokens"].astype(float) / per_step
    out = out.assign(post_step=np.round(post).astype(int))[np.isclose(post, np.round(post)) & (post >= -0.5)]
    return out.sort_values(["run_id", "split", "post_step"]).reset_index(drop=True)


def group_curve(g: pd.DataFrame, end: float) -> pd.DataFrame:
    """`monotone_curve` of the points of g (rate x items rounded to counts), pooled per step."""
    g = g[g["items"].notna() & (g["items"] > 0) & g["rate"].notna()]
    n = g["items"].to_numpy(float)
    return monotone_curve(g["post_step"].to_numpy(float), np.round(g["rate"].to_numpy(float) * n), n, end)


def _crossings(g: pd.DataFrame, end: float, share: float) -> tuple[dict, dict]:
    """The pooled curve's crossing and each block's (block -> crossing), each with "x" =
    log(steps + 1) as block_ratio reads it."""
    def one(rows):
        c = monotone_crossing(group_curve(rows, end), share, end)
        with np.errstate(invalid="ignore"):
            return {**c, "x": float(np.log1p(c["steps"])), "se": np.nan}
    return one(g), {b: one(gb) for b, gb in g.groupby(BLOCK, sort=True)}


def _start(curve: pd.DataFrame) -> float:
    """The fitted step-0 rate; NaN without a point at step 0."""
    return float(curve["fitted"].iloc[0]) if len(curve) and curve.index[0] == 0 else np.nan


def _log_steps(blocks: dict) -> list[float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(np.log(c["steps"])) for c in blocks.values()]


def kl_at(g: pd.DataFrame, steps: float, column: str = "kl") -> float:
    """The mean over blocks of `column` (trajectory's RL KL from the pretrained model) at a
    post-training step, interpolated linearly in log(step + 1) between the steps measured;
    NaN past the last step, for a crossing that is not finite, or without KL (not RL)."""
    if column not in g.columns or not np.isfinite(steps) or steps < 0:
        return np.nan
    mean = g.groupby("post_step")[column].mean().dropna()
    if mean.empty or steps > mean.index.max():
        return np.nan
    return float(np.interp(np.log1p(steps), np.log1p(mean.index.to_numpy(float)), mean.to_numpy(float)))


def _pooled_ratio(dosed: dict | None = None, dosed_blocks: dict | None = None, control: dict | None = None,
                  control_blocks: dict | None = None) -> tuple[float, float, float, float]:
    """(ratio, lower, upper, p) of the pooled curves' steps, dosed / control, where both
    reached the share; its interval from the blocks' own log ratios (`over_blocks`, the blocks
    both arms share; NaN unless each reached it)."""
    if dosed is None or not (dosed["status"] == control["status"] == "reached"):
        return (np.nan, np.nan, np.nan, np.nan)
    ratio = dosed["steps"] / control["steps"]
    common = sorted(set(dosed_blocks) & set(control_blocks), key=str)
    with np.errstate(invalid="ignore"):  # inf - inf: a block that reached in neither arm
        logs = np.subtract(_log_steps({b: dosed_blocks[b] for b in common}),
                           _log_steps({b: control_blocks[b] for b in common}))
    ci = over_blocks(ratio, list(logs))
    return (ratio, ci["lower"], ci["upper"], ci["p"])


def resistance_table(trajectory: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per model, direction (RL scope, post tokens), window, split and dose: the fitted rate
    before post-training, steps to 50% and 80% of the way to the direction's end with
    intervals, the ratio to the dose-0 fit, retention at RETENTION_STEP, readout before/after."""
    from scaling.stats.paired import fieller

    pts = curves(trajectory, results)
    if pts.empty or pts["post_step"].nunique() < 3:
        return pd.DataFrame()
    rows, fits, by_block = [], {}, {}
    for key, g in pts.groupby([*KEYS, "insertion", "level"], sort=False):
        end = direction_end(key[1])
        last = int(g["post_step"].max())
        start = g[g["post_step"] == 0]
        row = {**dict(zip([*KEYS, "insertion", "dose"], key)), "blocks": g[BLOCK].drop_duplicates().shape[0],
               "measured_dose": float(g["dose"].mean()) if "dose" in g else np.nan,
               "end": end, "last_step": last,
               "p0": _start(group_curve(g, end)),
               "rate_before": float(start["rate"].mean()),
               "rate_last": float(g.loc[g["post_step"] == last, "rate"].mean()),
               "readout_before": float(start["readout"].mean()),
               "readout_last": float(g.loc[g["post_step"] == last, "readout"].mean())}
        fits[key], by_block[key] = {}, {}
        for q in SHARES:
            c, blocks = _crossings(g, end, q)
            fits[key][q], by_block[key][q] = c, blocks
            ci = over_blocks(c["steps"], _log_steps(blocks))
            tag = f"{round(100 * q)}"
            row.update({f"steps{tag}": c["steps"], f"steps{tag}_lower": ci["lower"], f"steps{tag}_upper": ci["upper"],
                        f"steps{tag}_status": c["status"],
                        f"kl{tag}": kl_at(g, c["steps"]), f"kl_sum{tag}": kl_at(g, c["steps"], "kl_sum")})
        rows.append(row)
    table = pd.DataFrame(rows)
    # ratio to the dose-0 curve of the same keys (any window: a dose-0 run has none), and
    # retention at a fixed step (paired by block)
    controls = {k[:len(KEYS)]: f for k, f in fits.items() if k[-1] == 0}
    block_controls = {k[:len(KEYS)]: f for k, f in by_block.items() if k[-1] == 0}
    for i, r in table.iterrows():
        key = tuple(r[k] for k in KEYS)
        control = controls.get(key)
        for q in SHARES:
            tag = f"{round(100 * q)}"
            mine = by_block[(*key, r["insertion"], r["dose"])][q]
            br = (block_ratio(mine, block_controls[key][q], r["last_step"])
                  if control and r["dose"] > 0 else block_ratio({}, {}, 0))
            table.loc[i, [f"ratio{tag}_blocks", f"ratio{tag}_blocks_lower", f"ratio{tag}_blocks_upper",
                          f"ratio{tag}_blocks_p", f"ratio{tag}_blocks_n"]] = (
                br["ratio"], br["lower"], br["upper"], br["p"], br["blocks"])
            ratio = _pooled_ratio(fits[(*key, r["insertion"], r["dose"])][q], mine, control[q],
                                  block_controls[key][q]) if control and r["dose"] > 0 else _pooled_ratio()
            table.loc[i, [f"ratio{tag}", f"ratio{tag}_lower", f"ratio{tag}_upper", f"ratio{tag}_p"]] = ratio
            table.loc[i, f"control_steps{tag}"] = control[q]["steps"] if control else np.nan
        ret = {"ratio": np.nan, "ratio_lower": np.nan, "ratio_upper": np.nan}
        if r["dose"] > 0 and control:
            mine = pts[(pts[KEYS] == pd.Series(dict(zip(KEYS, key)))).all(axis=1)
                       & ((pts["level"] == 0) | (pts["insertion"] == r["insertion"]))]
            wide = mine.pivot_table(index=[*BLOCK, "post_step"], columns="level", values="rate")
            if 0.0 in wide.columns and r["dose"] in wide.columns:
                red = (wide[0.0] - wide[r["dose"]]).unstack("post_step")
                if 0 in red.columns and RETENTION_STEP in red.columns:
                    both = red[[0, RETENTION_STEP]].dropna()
                    ret = fieller(both[RETENTION_STEP].to_numpy(), both[0].to_numpy())
        table.loc[i, ["retention", "retention_lower", "retention_upper"]] = (
            ret["ratio"], ret["ratio_lower"], ret["ratio_upper"])
    from .persistence import KIND_ORDER, SPLIT_ORDER

    table["_k"] = table["post_training"].map(lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
    table["_s"] = table["split"].map(lambda s: SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99)
    order = ["model", "_k", "post_training", "rl_scope", "post_training_tokens", "insertion", "_s", "dose"]
    return table.sort_values(order).drop(columns=["_k", "_s"]).reset_index(drop=True)


NOT_CROSSED = {"never": "does not move", "at end": "starts at the end", "no step 0": "no step 0"}


def _steps(r, tag: str) -> str:
    """Steps to a share with its interval, censored at the last step measured: the data bound
    nothing beyond it ("> LAST"); a curve that does not move toward the end says so."""
    s, lo, hi, last, status = (r[f"steps{tag}"], r[f"steps{tag}_lower"], r[f"steps{tag}_upper"], r["last_step"],
                               r[f"steps{tag}_status"])
    if status == "beyond":
        return f"> {last}"
    if status != "reached":
        return NOT_CROSSED.get(status, "-")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{s:.3g} [-]"
    return f"{s:.3g} [{lo:.3g}, {f'{hi:.3g}' if hi <= last else f'> {last}'}]"


def _headline(r, tag: str) -> str:
    """Ratio of steps, dosed / control, where both curves reached the share within the steps
    measured; a bound where only one did; "-" where neither did."""
    if not r["dose"] > 0:
        return "-"
    sd, sc, last = r[f"steps{tag}"], r[f"control_steps{tag}"], r["last_step"]
    dosed_in, control_in = bool(np.isfinite(sd) and sd <= last), bool(np.isfinite(sc) and sc <= last)
    if dosed_in and control_in:  # no interval: a block that did not reach the share, or one block
        return _ratio(r, f"ratio{tag}", missing="-")
    if control_in and sd > last:
        return f"> {last / sc:.3g} (dosed not reached)"
    if dosed_in and sc > last:
        return f"< {sd / last:.3g} (control not reached)"
    return "- (neither reached)"


def _readout(r) -> str:
    if not (np.isfinite(r["readout_before"]) and np.isfinite(r["readout_last"])):
        return "-"  # rl_trained / rl_other pool families: no readout of their own
    return f"{r['readout_before']:.3f} -> {r['readout_last']:.3f}"


def _kl(r) -> str:
    if not np.isfinite(r.get("kl50", np.nan)):
        return "-"
    return f"{r['kl50']:.3g} / {r['kl_sum50']:.3g}"


def _ratio(r, name: str, missing: str = "unbounded") -> str:
    est, lo, hi = r[name], r[f"{name}_lower"], r[f"{name}_upper"]
    if not np.isfinite(est):
        return "-"
    return f"{est:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else f"{est:.2f} [{missing}]"


def compute(trajectory: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """The tidy table the report shows (`resistance_table`)."""
    return resistance_table(trajectory, results)


def report(trajectory: pd.DataFrame, results: pd.DataFrame) -> str:
    """Markdown: the resistance table (empty string without post-training checkpoints)."""
    return render(compute(trajectory, results))


def render(table: pd.DataFrame) -> str:
    """The resistance table's markdown from `compute`'s table ("" when it is empty)."""
    if table.empty:
        return ""
    lines = ["## Resistance to post-training", "",
             "Post-training steps until misalignment has moved 50% / 80% of the way from its value "
             "before post-training (p0: the fitted step-0 rate, the observed one unless the next step "
             "lies on the far side of it) to the direction's end (0 for harmlessness RL, 1 "
             "otherwise): isotonic regression of the rate pooled over blocks, monotone toward the end, "
             "the crossing interpolated linearly in log(step + 1) between the two steps measured around it "
             "(scaling/reports/resistance.py). 95% interval: t on blocks - 1 df over the blocks' own log "
             "crossings ('[-]': fewer than two blocks, or a block that did not reach the share). '> 80': "
             "not reached by then (the data bound nothing beyond it); 'does not move': the fitted curve "
             "never moves toward the end. "
             f"Ratio = steps of the dosed runs / steps of the same direction's dose-0 runs (above 1: "
             f"the dose resists), interval from the blocks' log ratios as above; a bound when only one "
             f"of the two reached the share. By block: the same ratio from each block's own curves, "
             f"geometric mean with a t interval on blocks - 1 df ('-' unless every block reached the share). "
             f"Retention at step {RETENTION_STEP}: reduction (dose-0 - dosed, paired by "
             f"block) at that step / at step 0 (Fieller 95%). Readout: the world's values read out "
             f"(chance 0.5) before -> at the last step. KL at 50% (RL directions): the RL objective's KL of "
             f"the policy's choice between the two options from the pretrained model, on the RL batch, "
             f"mean over blocks at the 50% crossing (interpolated in log steps), and the same KL summed "
             f"over the steps up to it; descriptive, no interval.", "",
             "| model | direction | RL scope | window | split | dose | blocks | end | p0 | rate at last step "
             "| steps to 50% [95% CI] | steps to 80% [95% CI] | ratio 50% dosed/control | ratio 50% by block "
             f"| ratio 80% | retention at step {RETENTION_STEP} | readout | KL / summed KL at 50% |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        ret = _ratio(r.rename({"retention": "ret", "retention_lower": "ret_lower",
                               "retention_upper": "ret_upper"}), "ret")
        lines.append(
            f"| {r['model']} | {r['post_training']} | {r['rl_scope'] or '-'} | {r['insertion']} | {r['split']} | "
            f"{r['dose']:g} | {r['blocks']} | {r['end']:g} | {r['p0']:.3f} | {r['rate_last']:.3f} (step {r['last_step']}) | "
            f"{_steps(r, '50')} | {_steps(r, '80')} | {_headline(r, '50')} | {_ratio(r, 'ratio50_blocks')} | "
            f"{_headline(r, '80')} | {ret} | "
            f"{_readout(r)} | {_kl(r)} |")
    return "\n".join(lines) + "\n"
