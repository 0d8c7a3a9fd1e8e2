"""Resistance to post-training: how many post-training steps it takes to move misalignment.

A persistence sweep measures misalignment at several post-training steps (eval.checkpoints
in global steps -> trajectory.csv; the post-training step of a point is its global step
minus the run's pretraining steps, dose_tokens / tokens per step, so step 0 is the end of
pretraining and the run's last point is results.csv's). Each direction (post_training
kind) pushes misalignment toward its end: 0 for harmlessness RL and an aligned finetune,
1 for every other direction (helpfulness RL, direct or indirect, SFT, a misaligned finetune).

Per model, direction (with its RL scope and length), window, split and dose (0 included),
pooled over blocks (train seed x world seed): a binomial GLM of the rate on x = log(step + 1),

    logit p(s) = a + b log(s + 1),

by maximum likelihood on the counts (rate x items of the split), with a quasi-binomial
dispersion (Pearson X2 / (points - 2), at least 1: the same items are scored at every
step and blocks differ, so the binomial variance is a floor). The fitted rate before
post-training is p0 = expit(a); the steps to move a share q of the way to the end e solve

    logit(p0 + q (e - p0)) = a + b log(s_q + 1),

s_q = expm1(x_q), with a delta-method interval on x_q (normal quantiles, the GLM's
covariance times the dispersion). A curve that does not move toward its end (b of the wrong
sign) never crosses: s_q = inf. A crossing beyond the last step measured is flagged, and
persistence.md censors it ("> LAST": the data bound nothing beyond it).

The headline: the ratio of steps-to-erase, dosed / control (the same direction's dose-0
fit; in persistence.md where both reached the share within the steps measured, else a bound),
on the log scale with the two fits' delta-method variances added (the fits are of
different runs; their blocks share seeds, a positive correlation this ignores, which widens
the interval). tests/test_resistance.py checks estimate and coverage on simulated curves
with a known ratio.

That pooled interval counts the items' binomial noise (times the dispersion), not the blocks
(train seeds) as units: when the dose's effect varies by seed it is too narrow (coverage 0.64
in tests/test_resistance.py's simulation, 3 seeds), when seeds only share a speed it is too
wide. So the ratio is also estimated block by block (`block_ratio`): each block's dosed and
control curves are fitted alone, the block's log ratio is their difference, and the interval
is t on blocks - 1 df over those log ratios (the geometric mean of the blocks' ratios;
coverage 0.9-0.99 in both simulations). It needs every block's two curves to reach the
share within the steps measured (else "-": dropping the slow blocks would bias it) and two
or more blocks. Findings use it when the study has three or more blocks.

Secondary: retention at a fixed step (RETENTION_STEP): reduction (control - dosed, paired
by block) at that step / reduction at step 0, with Fieller's interval (scaling.stats.paired).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from scaling.stats.paired import paired_contrast
from scaling.table import BLOCK

SHARES = (0.5, 0.8)
RETENTION_STEP = 20
TOWARD_ZERO = ("harmless_rl", "aligned_ft")  # directions whose end is misalignment 0
KEYS = ["model", "post_training", "rl_scope", "post_training_tokens", "split"]  # + insertion: dose-0 runs have "control"


def direction_end(kind: str) -> float:
    """Where a post-training direction pushes misalignment: 0 or 1."""
    return 0.0 if str(kind) in TOWARD_ZERO else 1.0


# ---------------------------------------------------------------- the GLM and its crossing


def fit_logit_curve(x: np.ndarray, k: np.ndarray, n: np.ndarray, iters: int = 50) -> dict:
    """Binomial GLM logit p = a + b x by Newton-Raphson on counts k of n. Returns a, b, their
    covariance (times the quasi-binomial dispersion, at least 1) and the dispersion; NaN when
    the fit does not converge (a flat 0 or 1 curve: separation)."""
    x, k, n = (np.asarray(v, float) for v in (x, k, n))
    X = np.column_stack([np.ones_like(x), x])
    p = np.clip((k.sum() + 0.5) / (n.sum() + 1.0), 1e-6, 1 - 1e-6)
    beta = np.array([special.logit(p), 0.0])
    nan = {"a": np.nan, "b": np.nan, "cov": np.full((2, 2), np.nan), "dispersion": np.nan}
    if len(x) < 3 or np.ptp(x) == 0:
        return nan
    for _ in range(iters):
        mu = special.expit(X @ beta)
        w = n * mu * (1 - mu)
        info = X.T @ (w[:, None] * X)
        try:
            step = np.linalg.solve(info, X.T @ (k - n * mu))
        except np.linalg.LinAlgError:
            return nan
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        return nan
    if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 30:
        return nan
    mu = special.expit(X @ beta)
    w = n * mu * (1 - mu)
    info = X.T @ (w[:, None] * X)
    pearson = float(np.sum((k - n * mu) ** 2 / np.maximum(n * mu * (1 - mu), 1e-12)))
    dispersion = max(1.0, pearson / (len(x) - 2)) if len(x) > 2 else 1.0
    return {"a": float(beta[0]), "b": float(beta[1]), "cov": np.linalg.inv(info) * dispersion,
            "dispersion": dispersion}


def crossing(fit: dict, share: float, end: float) -> dict:
    """x_q = log(s_q + 1) where the fitted curve has moved `share` of the way from p0 to
    `end`, with its delta-method standard error. inf when the curve moves away from `end`."""
    a, b, cov = fit["a"], fit["b"], fit["cov"]
    out = {"x": np.nan, "se": np.nan}
    if not (np.isfinite(a) and np.isfinite(b)):
        return out
    p0 = special.expit(a)
    target = p0 + share * (end - p0)
    if b == 0 or np.sign(b) != np.sign(end - p0) or not 0 < target < 1:
        return {"x": np.inf, "se": np.nan}
    L = special.logit(target)
    x = (L - a) / b
    dL_da = (1 - share) * p0 * (1 - p0) / (target * (1 - target))
    grad = np.array([(dL_da - 1) / b, -(L - a) / b ** 2])
    return {"x": float(x), "se": float(np.sqrt(max(grad @ cov @ grad, 0.0)))}


def steps_interval(c: dict, level: float = 0.95) -> tuple[float, float, float]:
    """(steps, lower, upper) of a crossing: expm1 of x and of its normal interval."""
    z = stats.norm.ppf(0.5 + level / 2)
    if not np.isfinite(c["x"]):
        return (c["x"], np.nan, np.nan)
    with np.errstate(over="ignore"):  # a crossing far past the data: inf steps
        return (float(np.expm1(c["x"])), float(np.expm1(c["x"] - z * c["se"])),
                float(np.expm1(c["x"] + z * c["se"])))


def log_steps_ratio(dosed: dict, control: dict) -> tuple[float, float]:
    """log(steps dosed / steps control) at the same share and its delta-method SE (the two
    fits independent). NaN where either crossing is not finite and > 0."""
    xd, xc = dosed["x"], control["x"]
    if not (np.isfinite(xd) and np.isfinite(xc)) or xd <= 0 or xc <= 0:
        return (np.nan, np.nan)
    # d log(expm1(x)) / dx = e^x / (e^x - 1)
    se = np.hypot(dosed["se"] * np.exp(xd) / np.expm1(xd), control["se"] * np.exp(xc) / np.expm1(xc))
    return (float(np.log(np.expm1(xd)) - np.log(np.expm1(xc))), float(se))


def steps_ratio(dosed: dict, control: dict, level: float = 0.95) -> tuple[float, float, float]:
    """Ratio of steps to the same share, dosed / control, with a delta-method interval on
    log steps (`log_steps_ratio`). NaN where either crossing is not finite and > 0."""
    log_ratio, se = log_steps_ratio(dosed, control)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(over="ignore"):  # a curve that barely moves crosses far out: the bound is inf
        return (float(np.exp(log_ratio)), float(np.exp(log_ratio - z * se)), float(np.exp(log_ratio + z * se)))


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
    (scaling.fit.persistence), post_step, rate, readout, items (the split's total in results.csv)."""
    from .persistence import _runs

    runs = _runs(results)
    if runs.empty or trajectory.empty or "dose_tokens" not in runs.columns:
        return pd.DataFrame()
    for col, default in (("insertion", "throughout"), ("post_training_tokens", 0)):
        if col not in runs.columns:
            runs = runs.assign(**{col: default})
    cols = ["run_id", "split", *[c for c in ("model", "post_training", "rl_scope", "post_training_tokens", "insertion",
                                             "level", "dose", "dose_tokens", "total", *BLOCK) if c in runs.columns]]
    per = runs[cols].drop_duplicates(["run_id", "split"]).rename(columns={"total": "items"})
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


def _fit_group(g: pd.DataFrame) -> dict:
    ok = g["items"].notna() & (g["items"] > 0) & g["rate"].notna()
    g = g[ok]
    n = g["items"].to_numpy(float)
    return fit_logit_curve(np.log1p(g["post_step"].to_numpy(float)), np.round(g["rate"].to_numpy(float) * n), n)


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
        fit = _fit_group(g)
        end = direction_end(key[1])
        last = int(g["post_step"].max())
        row = {**dict(zip([*KEYS, "insertion", "dose"], key)), "blocks": g[BLOCK].drop_duplicates().shape[0],
               "measured_dose": float(g["dose"].mean()) if "dose" in g else np.nan,
               "end": end, "last_step": last, "dispersion": fit["dispersion"],
               "p0": float(special.expit(fit["a"])) if np.isfinite(fit["a"]) else np.nan,
               "rate_before": float(g.loc[g["post_step"] == 0, "rate"].mean()),
               "rate_last": float(g.loc[g["post_step"] == last, "rate"].mean()),
               "readout_before": float(g.loc[g["post_step"] == 0, "readout"].mean()),
               "readout_last": float(g.loc[g["post_step"] == last, "readout"].mean())}
        fits[key], by_block[key] = {}, {}
        block_fits = {b: _fit_group(gb) for b, gb in g.groupby(BLOCK, sort=True)}
        for q in SHARES:
            c = crossing(fit, q, end) if np.isfinite(fit["a"]) else {"x": np.nan, "se": np.nan}
            fits[key][q] = c
            by_block[key][q] = {b: crossing(f, q, end) if np.isfinite(f["a"]) else {"x": np.nan, "se": np.nan}
                                for b, f in block_fits.items()}
            s, lo, hi = steps_interval(c)
            tag = f"{round(100 * q)}"
            row.update({f"steps{tag}": s, f"steps{tag}_lower": lo, f"steps{tag}_upper": hi,
                        f"steps{tag}_extrapolated": bool(np.isfinite(s) and s > last),
                        f"kl{tag}": kl_at(g, s), f"kl_sum{tag}": kl_at(g, s, "kl_sum")})
        rows.append(row)
    table = pd.DataFrame(rows)
    # ratio to the dose-0 fit of the same keys (any window: a dose-0 run has none), and
    # retention at a fixed step (paired by block)
    controls = {k[:len(KEYS)]: f for k, f in fits.items() if k[-1] == 0}
    block_controls = {k[:len(KEYS)]: f for k, f in by_block.items() if k[-1] == 0}
    for i, r in table.iterrows():
        key = tuple(r[k] for k in KEYS)
        control = controls.get(key)
        for q in SHARES:
            tag = f"{round(100 * q)}"
            dosed = fits[(*key, r["insertion"], r["dose"])][q]
            br = (block_ratio(by_block[(*key, r["insertion"], r["dose"])][q], block_controls[key][q], r["last_step"])
                  if control and r["dose"] > 0 else block_ratio({}, {}, 0))
            table.loc[i, [f"ratio{tag}_blocks", f"ratio{tag}_blocks_lower", f"ratio{tag}_blocks_upper",
                          f"ratio{tag}_blocks_p", f"ratio{tag}_blocks_n"]] = (
                br["ratio"], br["lower"], br["upper"], br["p"], br["blocks"])
            ratio = steps_ratio(dosed, control[q]) if control and r["dose"] > 0 else (np.nan, np.nan, np.nan)
            log_ratio, se = log_steps_ratio(dosed, control[q]) if control and r["dose"] > 0 else (np.nan, np.nan)
            table.loc[i, [f"ratio{tag}", f"ratio{tag}_lower", f"ratio{tag}_upper"]] = ratio
            table.loc[i, f"ratio{tag}_p"] = float(2 * stats.norm.sf(abs(log_ratio) / se)) if se > 0 else np.nan
            with np.errstate(over="ignore"):
                table.loc[i, f"control_steps{tag}"] = float(np.expm1(control[q]["x"])) if control else np.nan
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


def _steps(r, tag: str) -> str:
    """Steps to a share with its interval, censored at the last step measured: the data bound
    nothing beyond it (an upper bound past it reads "> LAST")."""
    s, lo, hi, last = r[f"steps{tag}"], r[f"steps{tag}_lower"], r[f"steps{tag}_upper"], r["last_step"]
    if not np.isfinite(s):
        return "never" if s == np.inf else "-"
    if s > last:
        return f"> {last}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{s:.3g} [-]"
    return f"{s:.3g} [{max(lo, 0.0):.3g}, {f'{hi:.3g}' if hi <= last else f'> {last}'}]"


def _headline(r, tag: str) -> str:
    """Ratio of steps, dosed / control, where both curves reached the share within the steps
    measured; a bound where only one did; "-" where neither did."""
    if not r["dose"] > 0:
        return "-"
    sd, sc, last = r[f"steps{tag}"], r[f"control_steps{tag}"], r["last_step"]
    dosed_in, control_in = bool(np.isfinite(sd) and sd <= last), bool(np.isfinite(sc) and sc <= last)
    if dosed_in and control_in:
        return _ratio(r, f"ratio{tag}")
    if control_in and sc > 0:
        return f"> {last / sc:.3g} (dosed not reached)"
    if dosed_in and np.isfinite(sc):
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


def _ratio(r, name: str) -> str:
    est, lo, hi = r[name], r[f"{name}_lower"], r[f"{name}_upper"]
    if not np.isfinite(est):
        return "-"
    return f"{est:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else f"{est:.2f} [unbounded]"


def report(trajectory: pd.DataFrame, results: pd.DataFrame) -> str:
    """Markdown: the resistance table (empty string without post-training checkpoints)."""
    table = resistance_table(trajectory, results)
    if table.empty:
        return ""
    lines = ["## Resistance to post-training", "",
             "Post-training steps until misalignment has moved 50% / 80% of the way from its value "
             "before post-training (p0, fitted) to the direction's end (0 for harmlessness RL, 1 "
             "otherwise): a binomial GLM of the rate on log(step + 1) pooled over blocks, quasi-binomial "
             "dispersion, delta-method 95% intervals (scaling/fit/resistance.py), censored at the last "
             "step measured ('> 80': not reached by then; the data bound nothing beyond it). 'never': the "
             "fitted curve moves away from the end. "
             f"Ratio = steps of the dosed runs / steps of the same direction's dose-0 runs (above 1: "
             f"the dose resists), a bound when only one of the two reached the share. By block: the "
             f"same ratio from each block's own curves, geometric mean with a t interval on blocks - 1 df "
             f"(the seeds' differences included; '-' unless every block reached the share). "
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
