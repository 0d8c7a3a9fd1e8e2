"""Which estimator of post-training steps-to-erase scaling.reports.resistance uses, chosen by
simulation: curves with known crossings, three blocks (seeds) whose speed and starting rate
vary, counts of `--items` items at the persistence study's steps (0 2 5 10 20 40 80).

    python benchmarks/resistance_estimators.py --sims 400

Estimators of the steps to move 50% / 80% of the way from the start to the end (1):
- glm: the binomial GLM logit p = a + b log(step + 1) pooled over blocks, start = its fitted
  step-0 rate, delta-method interval times the quasi-binomial dispersion (the estimator
  scaling.reports.resistance used before);
- glm-blocks: the same GLM per block, t over blocks of the log crossings;
- monotone: isotonic regression of the pooled rate (scaling.reports.resistance.monotone_curve),
  crossing interpolated in log(step + 1); interval t over blocks (blocks - 1 df) of the blocks'
  own log crossings around the pooled one (scaling.reports.resistance.over_blocks);
- monotone-gm: the geometric mean of the blocks' monotone crossings, t interval.
Truth shapes: "flat-start" p(s) = p0 + (1 - p0) s^h / (s^h + s50^h) (h 2.2: the committed
control curves' shape) and "glm" logit p = a + b log(s + 1) (the GLM's own shape). Prints, per
shape and estimator, the median of estimate / truth and the interval's coverage of the truth
(the median block's crossing) among the simulations that have an interval (their count in
brackets: a block that does not reach the share within the last step gives none), for the
control's steps and the dosed / control ratio.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import special, stats

from scaling.reports import resistance

STEPS = np.array([0, 2, 5, 10, 20, 40, 80], float)
SHARES = (0.5, 0.8)


def rate(shape: str, p0: float, s50: float, h: float = 2.2) -> np.ndarray:
    """The true rate at STEPS, from p0 toward 1, half way at s50."""
    if shape == "flat-start":
        frac = STEPS ** h / (STEPS ** h + s50 ** h)
        return p0 + (1 - p0) * frac
    a = special.logit(p0)
    b = (special.logit(p0 + 0.5 * (1 - p0)) - a) / np.log1p(s50)
    return special.expit(a + b * np.log1p(STEPS))


def true_steps(shape: str, p0: float, s50: float, share: float, h: float = 2.2) -> float:
    if shape == "flat-start":
        return s50 * (share / (1 - share)) ** (1 / h)
    a = special.logit(p0)
    b = (special.logit(p0 + 0.5 * (1 - p0)) - a) / np.log1p(s50)
    return float(np.expm1((special.logit(p0 + share * (1 - p0)) - a) / b))


def simulate_arm(rng, shape, p0, s50, speeds, items, start_sd=0.25):
    """Per block: counts at STEPS; the block's s50 is s50 x its speed, its start p0 jittered."""
    out = []
    for speed in speeds:
        p0_b = special.expit(special.logit(p0) + rng.normal(0, start_sd))
        out.append(rng.binomial(items, rate(shape, p0_b, s50 * speed)))
    return out


def glm_fit(x, k, n, iters=50):
    """The former estimator: binomial GLM logit p = a + b x, quasi-binomial covariance."""
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([special.logit(np.clip((k.sum() + .5) / (n.sum() + 1), 1e-6, 1 - 1e-6)), 0.0])
    for _ in range(iters):
        mu = special.expit(X @ beta)
        info = X.T @ ((n * mu * (1 - mu))[:, None] * X)
        step = np.linalg.solve(info, X.T @ (k - n * mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    mu = special.expit(X @ beta)
    info = X.T @ ((n * mu * (1 - mu))[:, None] * X)
    disp = max(1.0, float(np.sum((k - n * mu) ** 2 / (n * mu * (1 - mu)))) / (len(x) - 2))
    return beta, np.linalg.inv(info) * disp


def glm_crossing(beta, cov, share):
    """log steps to `share` of the way to 1 and its delta-method SE."""
    a, b = beta
    p0 = special.expit(a)
    target = p0 + share * (1 - p0)
    L = special.logit(target)
    x = (L - a) / b
    dL_da = (1 - share) * p0 * (1 - p0) / (target * (1 - target))
    grad = np.array([(dL_da - 1) / b, -(L - a) / b ** 2])
    se_x = np.sqrt(max(grad @ cov @ grad, 0.0))
    return float(np.log(np.expm1(x))), float(se_x * np.exp(x) / np.expm1(x))


def estimates(arm: list[np.ndarray], items: int, share: float) -> dict:
    """log steps and interval half-width bounds per estimator: {name: (log est, [log lo, log hi],
    block logs)}."""
    x, n = np.log1p(STEPS), np.full(len(STEPS), float(items))
    out = {}
    beta, cov = glm_fit(np.tile(x, len(arm)), np.concatenate(arm).astype(float), np.tile(n, len(arm)))
    le, se = glm_crossing(beta, cov, share)
    out["glm"] = (le, le - 1.96 * se, le + 1.96 * se, np.full(len(arm), np.nan))
    blocks = [glm_crossing(*glm_fit(x, k.astype(float), n), share)[0] for k in arm]
    out["glm-blocks"] = _t(np.mean(blocks), blocks)
    curve = resistance.monotone_curve(np.tile(STEPS, len(arm)), np.concatenate(arm), np.tile(n, len(arm)), 1.0)
    pooled = resistance.monotone_crossing(curve, share, 1.0)["steps"]
    blocks = [np.log(resistance.monotone_crossing(resistance.monotone_curve(STEPS, k, n, 1.0), share, 1.0)["steps"])
              for k in arm]
    out["monotone"] = _t(np.log(pooled), blocks)
    out["monotone-gm"] = _t(np.mean(blocks), blocks)
    return out


def _t(center, blocks):
    blocks = np.asarray(blocks)
    if not np.all(np.isfinite(blocks)) or not np.isfinite(center):
        return (np.nan, np.nan, np.nan, blocks)
    half = stats.t.ppf(0.975, len(blocks) - 1) * blocks.std(ddof=1) / np.sqrt(len(blocks))
    return (center, center - half, center + half, blocks)


def run(shape: str, sims: int, items: int, blocks: int, ratio: float, speed_sd: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # the control half way at 7.5 steps (flat-start: the committed control curves) or 4 (glm:
    # so that its slow approach to 1 still reaches 80% within the steps measured)
    s50c, p0c, p0d = (7.5 if shape == "flat-start" else 4.0), 0.54, 0.05
    lines = []
    tally: dict = {}
    for _ in range(sims):
        speeds_c = np.exp(rng.normal(0, speed_sd, blocks))
        speeds_d = np.exp(rng.normal(0, speed_sd, blocks))  # the dose's effect varies by seed
        c = simulate_arm(rng, shape, p0c, s50c, speeds_c, items)
        d = simulate_arm(rng, shape, p0d, s50c * ratio, speeds_d, items)
        for q in SHARES:
            want_c = np.log(true_steps(shape, p0c, s50c, q))
            want_r = np.log(true_steps(shape, p0d, s50c * ratio, q)) - want_c
            ec, ed = estimates(c, items, q), estimates(d, items, q)
            for name in ec:
                t = tally.setdefault((q, name), {"c": [], "cc": 0, "cn": 0, "r": [], "rc": 0, "rn": 0, "n": 0})
                t["n"] += 1
                t["c"].append(ec[name][0] - want_c)
                t["cc"] += ec[name][1] <= want_c <= ec[name][2]
                t["cn"] += np.isfinite(ec[name][1])
                logr = ed[name][0] - ec[name][0]
                with np.errstate(invalid="ignore"):  # a block that did not reach: no interval
                    r = _t(logr, np.asarray(ed[name][3]) - np.asarray(ec[name][3]))
                if name == "glm":  # independent fits: delta-method SEs added
                    se = np.hypot((ec[name][2] - ec[name][0]) / 1.96, (ed[name][2] - ed[name][0]) / 1.96)
                    r = (logr, logr - 1.96 * se, logr + 1.96 * se)
                t["r"].append(r[0] - want_r)
                t["rc"] += r[1] <= want_r <= r[2]
                t["rn"] += np.isfinite(r[1])
    for (q, name), t in sorted(tally.items()):
        lines.append(f"| {shape} | {round(100 * q)}% | {name} | {np.exp(np.nanmedian(t['c'])):.2f} | "
                     f"{t['cc'] / max(t['cn'], 1):.3f} ({t['cn']}) | {np.exp(np.nanmedian(t['r'])):.2f} | "
                     f"{t['rc'] / max(t['rn'], 1):.3f} ({t['rn']}) |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--ratio", type=float, default=2.5, help="true dosed / control steps to 50%%")
    ap.add_argument("--speed-sd", type=float, default=0.3, help="sd of a block's log speed")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"# {args.sims} simulations per shape, {args.blocks} blocks, {args.items} items, steps "
          f"{' '.join(f'{s:g}' for s in STEPS)}, true ratio {args.ratio}, block log-speed sd {args.speed_sd}, "
          f"seed {args.seed}")
    print("| truth | share | estimator | control steps: median est / truth | coverage (intervals) | "
          "ratio: median est / truth | coverage (intervals) |")
    print("|---|---|---|---|---|---|---|")
    for shape in ("flat-start", "glm"):
        print("\n".join(run(shape, args.sims, args.items, args.blocks, args.ratio, args.speed_sd, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
