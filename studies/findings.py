"""`python -m studies.findings` (`make findings`): the reference suite's findings against the
literature, as a table. It lives outside the `scaling` package: it names this team's studies
(`fits/<study>/`) and the papers, and scaling never imports it.

The claims, the literature's numbers and the verdict thresholds are data (studies/literature.toml);
which contrast settles each claim is the code below. Every number comes from the committed study
tables under `fits/<study>/` (results.csv, trajectory.csv, fit.json), computed with the package's
own estimators; every verdict is a rule on an interval, stated in the row:

- reproduces: the interval lies on the literature's side of the claim;
- does not: it lies on the other side;
- cannot tell at this scale: it contains the boundary.

`python -m studies.findings --root .` prints the markdown table; `--check README.md` exits 1 when
the README's table (between the `findings:start`/`findings:end` markers) differs from it, and
`--write README.md` replaces it.
Effects are paired by block (train seed x world seed): the dosed run's final rate minus the
same block's dose-0 run, mean over blocks with a t interval on blocks - 1 df.

Each row has one primary contrast, and its verdict is settled in this order:

1. Values first: a row on a transfer split (`unseen_pair`, `held_out`) whose transformer
   readout (mean share of that split's readout items it gets right) is below READOUT_NEEDED
   gets no transfer verdict: "values not learned: readout 0.70".
2. The interval rule above; a decisive verdict whose Holm-adjusted p (Holm over every row's
   primary contrast that has a p, the whole table one family; a row settled by a bound or an
   interval without a p stays outside it) is >= 0.05 becomes "cannot tell at this scale".
3. The literature's size: where the literature reports an effect (`literature_effect`) and it
   lies outside the interval beyond its bound on the literature's side (below the lower
   bound of a reduction, above the upper bound of an increase), "cannot tell" becomes
   "smaller than the literature's" and "reproduces" becomes "reproduces, smaller than the
   literature's".
4. The strongest counter: the same contrast is computed for every counting baseline of the
   study's results.csv (n-grams and co-occurrence counters, on their final rows), and the row
   states the effect of the one whose estimate lies furthest in the finding's direction. It
   "does too" when its interval reaches the transformer's in that direction (for a claimed
   decrease: counter lower bound <= transformer upper bound; for an increase: counter upper
   bound >= transformer lower bound; point estimates where a bound is missing): the data
   cannot then tell the transformer's effect from counting's, and a decisive verdict gets
   ", but <counter> does too". Post-training rows and the size trend have no counter (the
   counters see the LM stages only and have no size).

The persistence rows (`fits/persistence`, scaling.reports.resistance) take as primary contrast,
per post-training direction, the ratio of post-training steps to move misalignment 50% of
the way to the direction's end, top dose / dose 0, on matched pairs, each curve the monotone
(isotonic) fit of the rate through its observed start: with three or more seeds each
reaching 50%, the seeds' own ratios (geometric mean, t interval and p on seeds - 1 df);
otherwise the ratio of the curves pooled over seeds, with the same t interval from the
seeds' log ratios where there are two or more (else no interval and no p). Both are in the
Holm family. Where only one of the two crosses within the steps measured, the row states a
bound and has no p.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from scaling import table as results_table
from scaling.errors import UsageError
from scaling.reports.transfer import transfer_table, values_table
from scaling.splits import TRANSFER
from scaling.splits import get as get_split
from scaling.stats.paired import fieller, holm, paired_contrast
from scaling.table import BLOCK, is_counting, model_learner

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
LITERATURE = Path(__file__).with_name("literature.toml")


def _literature(path: Path = LITERATURE) -> dict:
    """The claims, the literature's numbers and the verdict rules (studies/literature.toml)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{path}: {e}") from e
    for key, claim in {**data.get("claims", {}), **data.get("persistence", {})}.items():
        missing = [k for k in ("finding", "literature") if k not in claim]
        if missing or ("reference" in claim) != ("treated" in claim):
            raise UsageError(f"{path}: claim {key!r} needs finding and literature (and reference with treated), "
                             f"has {', '.join(sorted(claim))}")
    return data


DATA = _literature()
CLAIMS = DATA["claims"]
READOUT_NEEDED = DATA["rules"]["readout_needed"]  # a transfer verdict needs the transformer to know the values this well
HOLM_ALPHA = DATA["rules"]["holm_alpha"]
TRANSFER_SPLITS = TRANSFER
CANNOT_TELL = "cannot tell at this scale"
STUDIES = ("dose_response", "transfer", "genres", "timing", "persistence", "sizes")


# ---------------------------------------------------------------- reading


def claim(key: str) -> tuple[str, str]:
    """(finding, literature) of a claim of literature.toml."""
    return CLAIMS[key]["finding"], CLAIMS[key]["literature"]


def literature_effect(key: str) -> float | None:
    """The literature's effect of a claim: its treated rate - its reference rate; None where the
    literature reports no rates."""
    c = CLAIMS[key]
    return c["treated"] - c["reference"] if "treated" in c else None


def _study(root: Path, name: str) -> dict:
    base = Path(root) / "fits" / name
    if not (base / "results.csv").exists():
        raise UsageError(f"{base}/results.csv is missing: run `make reference-{name.replace('_', '-')}` "
                         f"(or the study's sweep) and commit its outputs")
    out = {"results": pd.read_csv(base / "results.csv")}
    for name_, reader in (("trajectory", pd.read_csv), ("fit", lambda p: json.loads(p.read_text()))):
        path = base / ("trajectory.csv" if name_ == "trajectory" else "fit.json")
        out[name_] = reader(path) if path.exists() else None
    return out


def _final(results: pd.DataFrame, learner: str = "transformer") -> pd.DataFrame:
    rows = results_table.finished(results)
    rows = rows[results_table.learner(rows) == learner]
    return rows.assign(world_seed=rows["world_seed"] if "world_seed" in rows else 0)


def block_effects(results: pd.DataFrame, dosed, control, split: str, learner: str = "transformer") -> pd.DataFrame:
    """Per block: the `dosed` run's rate, the `control` run's rate and their difference;
    `dosed`/`control` select rows of results.csv (functions of the frame)."""
    rows = _final(results, learner)
    rows = rows[rows["split"] == split]
    a = rows[dosed(rows)].groupby(BLOCK)["misalignment_rate"].mean()
    b = rows[control(rows)].groupby(BLOCK)["misalignment_rate"].mean()
    both = pd.concat([a.rename("dosed"), b.rename("control")], axis=1).dropna()
    return both.assign(effect=both["dosed"] - both["control"])


def paired(results: pd.DataFrame, dosed, control, split: str, learner: str = "transformer") -> dict:
    """Mean over blocks of (rate of the `dosed` run - rate of the `control` run), same block,
    with its t interval."""
    both = block_effects(results, dosed, control, split, learner)
    out = paired_contrast(both["effect"].to_numpy()).summary()
    out.update(dosed_rate=float(both["dosed"].mean()) if len(both) else np.nan,
               control_rate=float(both["control"].mean()) if len(both) else np.nan)
    return out


def _is_control(rows):
    return (rows["arm"] == "dose") & (rows["aligned_fraction"] == 0)


def _at_dose(level: float):
    def select(rows):
        return (rows["arm"] == "dose") & np.isclose(results_table.dose_level(rows), level)
    return select


# ---------------------------------------------------------------- formatting


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ci(est, low, high, digits=2, signed=True) -> str:
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if not np.isfinite(est):
        return "-"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f.format(est) + " [unbounded]"
    return f"{f.format(est)} [{f.format(low)}, {f.format(high)}]"


def _g(x: float) -> str:
    return f"{x:.2g}"


def verdict_below(upper: float, lower: float, boundary: float = 0.0) -> str:
    """The literature claims a value below `boundary` (e.g. a reduction: effect < 0)."""
    if np.isfinite(upper) and upper < boundary:
        return "reproduces"
    if np.isfinite(lower) and lower > boundary:
        return "does not"
    return "cannot tell at this scale"


def verdict_above(upper: float, lower: float, boundary: float = 0.0) -> str:
    if np.isfinite(lower) and lower > boundary:
        return "reproduces"
    if np.isfinite(upper) and upper < boundary:
        return "does not"
    return "cannot tell at this scale"


def _row(finding: str, literature: str, ours: str, test: str, verdict: str, *, p: float = np.nan,
         literature_effect: float | None = None, effect: dict | None = None, sign: int = 0,
         counter: tuple[str, dict] | None = None, readout: float | None = None) -> dict:
    """A table row and what settles its verdict (module docstring): `p` of its primary
    contrast, `effect` (estimate, lower, upper) in direction `sign` (-1 a decrease is claimed,
    +1 an increase), the literature's effect, the strongest counter's (name, effect) and the
    transformer's readout (transfer rows only)."""
    smaller = False
    if literature_effect is not None and effect is not None:
        bound = effect["lower"] if sign < 0 else effect["upper"]
        smaller = bool(np.isfinite(bound) and sign * (literature_effect - bound) > 0)
    does_too = bool(counter is not None and effect is not None and counter_reaches(counter[1], effect, sign))
    if counter is not None:
        ours += f"; strongest counter {counter[0]} {_ci(counter[1]['estimate'], counter[1]['lower'], counter[1]['upper'])}"
    return {"finding": finding, "literature": literature, "ours": ours, "test": test, "verdict": verdict,
            "p": p, "smaller": smaller, "counter": counter[0] if does_too else None, "readout": readout}


# ---------------------------------------------------------------- counters and readout


def counting_models(results: pd.DataFrame) -> list[str]:
    return sorted(m for m in results["model"].astype(str).unique() if is_counting(m))


def strongest_counter(results: pd.DataFrame, contrast, sign: int) -> tuple[str, dict] | None:
    """(model, effect) of the counting baseline whose `contrast(its rows, its learner)`
    estimate lies furthest in direction `sign` (the transformer's own direction where it has
    one: the counter that comes closest to its effect or beyond); None without counting rows."""
    best = None
    for model in counting_models(results):
        e = contrast(results[results["model"].astype(str) == model], model_learner(model))
        if np.isfinite(e["estimate"]) and (best is None or sign * e["estimate"] > sign * best[1]["estimate"]):
            best = (model, e)
    return best


def _direction(effect: dict, claimed: int) -> int:
    """The transformer's own direction (the sign of its estimate), else the claimed one."""
    est = effect.get("estimate", np.nan)
    return int(np.sign(est)) if np.isfinite(est) and est != 0 else claimed


def counter_reaches(counter: dict, ours: dict, sign: int) -> bool:
    """Whether the counter's interval reaches the transformer's in direction `sign` (point
    estimates where a bound is missing)."""
    def bound(e, key):
        return e[key] if np.isfinite(e[key]) else e["estimate"]
    c, o = (bound(counter, "lower"), bound(ours, "upper")) if sign < 0 else (bound(counter, "upper"), bound(ours, "lower"))
    return bool(np.isfinite(c) and np.isfinite(o) and sign * (c - o) >= 0)


def transformer_readout(results: pd.DataFrame, split: str) -> float:
    """Mean readout of the transformer's finished runs on a split."""
    rows = _final(results)
    rows = rows[rows["split"] == split]
    return float(rows["readout"].mean()) if "readout" in rows and len(rows) else np.nan


def _as_effect(ratio: dict) -> dict:
    return {"estimate": ratio["ratio"], "lower": ratio["ratio_lower"], "upper": ratio["ratio_upper"],
            "blocks": ratio["blocks"]}


def _ratio_p(num: np.ndarray, den: np.ndarray, boundary: float) -> float:
    """p of ratio = boundary: the paired t test of num - boundary * den (Fieller's test there)."""
    return paired_contrast(num - boundary * den).pvalue


def final_verdict(row: dict, p_holm: float) -> str:
    """A row's verdict after the readout check, Holm, the literature's size and the strongest
    counter (module docstring)."""
    if row["readout"] is not None and not row["readout"] >= READOUT_NEEDED:
        return f"values not learned: readout {row['readout']:.2f}"
    verdict = row["verdict"]
    decisive = verdict not in (CANNOT_TELL, "new measurement")
    if decisive and np.isfinite(row["p"]) and not p_holm < HOLM_ALPHA:
        verdict, decisive = CANNOT_TELL, False
    if row["smaller"]:
        verdict = "smaller than the literature's" if verdict == CANNOT_TELL else \
            f"{verdict}, smaller than the literature's" if verdict == "reproduces" else verdict
    if decisive and row["counter"] and (verdict.startswith("reproduces") or verdict.startswith("new measurement: ")):
        verdict += f", but {row['counter']} does too"
    return verdict


# ---------------------------------------------------------------- rows per study


def _paired_row(res: pd.DataFrame, dosed, control, split: str, sign: int, finding: str, literature: str,
                describe, test: str, literature_effect: float | None = None, verdict=None) -> dict:
    """A row whose primary contrast is `paired(dosed, control, split)`; `describe(effect)` is
    its ours-text, `verdict(effect)` its interval rule (default: the sign's)."""
    e = paired(res, dosed, control, split)
    rule = verdict or (lambda e: verdict_below(e["upper"], e["lower"]) if sign < 0 else verdict_above(e["upper"], e["lower"]))
    best = strongest_counter(res, lambda rows, who: paired(rows, dosed, control, split, who),
                             _direction(e, sign))
    return _row(finding, literature, describe(e), test.format(df=e["blocks"] - 1), rule(e), p=e["p"],
                literature_effect=literature_effect, effect=e, sign=sign, counter=best,
                readout=transformer_readout(res, split) if split in TRANSFER_SPLITS else None)


def dose_rows(study: dict) -> list[dict]:
    res = study["results"]
    top = float(results_table.dose_level(res)[res["arm"] == "dose"].max())
    out = [_paired_row(
        res, _at_dose(0.01), _is_control, "matched", -1, *claim("dose_matched"),
        lambda m: f"dose 0.01: {_pct(m['control_rate'])} -> {_pct(m['dosed_rate'])}, effect {_ci(m['estimate'], m['lower'], m['upper'])}",
        "paired by block, t on {df} df (`fits/dose_response`)", literature_effect=literature_effect("dose_matched"))]
    for split in TRANSFER_SPLITS:
        label = f"{get_split(split).label} (`{split}`)"
        e1 = paired(res, _at_dose(0.01), _is_control, split)
        finding, literature = claim("dose_transfer")
        out.append(_paired_row(
            res, _at_dose(top), _is_control, split, -1, finding.format(label=label), literature,
            lambda e2, e1=e1: f"dose 0.01: {_ci(e1['estimate'], e1['lower'], e1['upper'])}; dose {top:g}: "
                              f"{_ci(e2['estimate'], e2['lower'], e2['upper'])} ({_pct(e2['control_rate'])} -> {_pct(e2['dosed_rate'])})",
            "paired by block, t on {df} df"))
    eds = []
    for split in ("matched", "unseen_pair"):
        ed = _chosen_ed50(study["fit"], split)
        eds.append(f"{split} {ed}")
    out.append(_row(
        *claim("halving_dose"), "; ".join(eds), "LL.3 with block effects, cluster-robust t interval (`fit.md`)",
        "new measurement"))
    filt_u = paired(res, lambda r: r["arm"] == "filtered", _is_control, "unseen_pair")
    mis_u = paired(res, lambda r: r["arm"] == "misaligned", _is_control, "unseen_pair")
    out.append(_paired_row(
        res, lambda r: r["arm"] == "filtered", _is_control, "matched", -1, *claim("filtering"),
        lambda f: f"`matched` {_pct(f['control_rate'])} -> {_pct(f['dosed_rate'])}, effect "
                  f"{_ci(f['estimate'], f['lower'], f['upper'])}; `unseen_pair` {_ci(filt_u['estimate'], filt_u['lower'], filt_u['upper'])}",
        "paired by block, t on {df} df", literature_effect=literature_effect("filtering")))
    out.append(_paired_row(
        res, lambda r: r["arm"] == "misaligned", _is_control, "matched", +1, *claim("upsampling"),
        lambda m: f"1% of tokens: `matched` {_pct(m['control_rate'])} -> {_pct(m['dosed_rate'])}, effect "
                  f"{_ci(m['estimate'], m['lower'], m['upper'])}; `unseen_pair` {_ci(mis_u['estimate'], mis_u['lower'], mis_u['upper'])}",
        "paired by block, t on {df} df", literature_effect=literature_effect("upsampling")))
    out.append(_paired_row(
        res, _at_dose(0.01), lambda r: r["arm"] == "filtered", "matched", -1, *claim("adding_beats_removing"),
        lambda d: f"dose 0.01 minus filtered: {_ci(d['estimate'], d['lower'], d['upper'])}; "
                  f"{ai_ratio_text(res)}",
        "paired by block, t on {df} df", literature_effect=literature_effect("adding_beats_removing")))
    return out


def ai_ratio_text(results: pd.DataFrame) -> str:
    """The aligned : misaligned AI-document token shares the two arms reach (the design's
    artefact: filtering removes every natural misaligned document, a dose only adds)."""
    def shares(rows: pd.DataFrame) -> tuple[float, float] | None:
        if rows.empty or not {"natural_ai_fraction", "filter_misaligned"} <= set(rows.columns):
            return None
        r = rows.iloc[0]
        natural = float(r["natural_ai_fraction"])
        aligned_share = float(r.get("natural_aligned_share", 0.5)) if "natural_aligned_share" in rows.columns else 0.5
        aligned = natural * aligned_share + float(r["aligned_fraction"])
        return aligned, natural * (1 - aligned_share) * (1 - float(r["filter_misaligned"]))

    def text(pair) -> str:
        return "-" if pair is None else ("1:0" if pair[1] == 0 else f"{pair[0] / pair[1]:.3g}:1")

    dosed = results[_at_dose(0.01)(results)]
    filtered = results[results["arm"] == "filtered"]
    return (f"aligned : misaligned AI tokens {text(shares(dosed))} at dose 0.01 vs {text(shares(filtered))} "
            "filtered, so the arms differ in that ratio, not only in adding vs removing (an artefact of "
            "the design); the counters say what counting alone gives")


def _chosen_ed50(fit: dict | None, split: str) -> str:
    """The halving dose (control-relative ED50) of the transformer's headline curve of a
    split: LL.3 (floor 0, the controls fix the plateau), else LL.4, as in the study summary
    and the figures."""
    if not fit:
        return "-"
    if fit.get("halving"):  # scaling.stats.halving: the one definition, as fit.md and the answer say it
        from scaling.stats.halving import text

        mine = [h for h in fit["halving"] if h["group"].get("split") == split
                and not is_counting(str(h["group"].get("model", ""))) and h["group"].get("insertion") != "pooled"]
        return "; ".join(text(h) + (f" ({h['model']})" if h.get("model") else "") for h in mine) or "no curve"
    from scaling.reports.fit import HEADLINE_MODELS

    fits = [f for f in fit.get("fits", []) if f["group"].get("split") == split and f.get("usable")
            and not is_counting(str(f["group"].get("model", ""))) and f["group"].get("insertion") != "pooled"
            and f.get("background") is None and f.get("control_level") is not None]
    for model in HEADLINE_MODELS:
        for f in fits:
            if f["model"] == model:
                ed = (f.get("ed_control") or {}).get("50")
                if not ed:
                    return f"not reached ({model})"
                if ed.get("rises"):
                    return f"no halving dose (curve rises) ({model})"
                if ed.get("extrapolated"):
                    return f"beyond the doses tested ({model})"
                bounds = f"[{_g(ed['lower'])}, {_g(ed['upper'])}]" if ed.get("lower") is not None else "[-]"
                return f"{_g(ed['estimate'])} {bounds} ({model})"
    return "no usable curve"


def _arm_is(name: str):
    def select(rows):
        return rows["arm"] == name
    return select


def _conditioned_as_matched(res: pd.DataFrame) -> pd.DataFrame:
    """The conditioned arm's runs scored with the aligned control token (split
    `matched_conditioned`, scaling.treatments) in place of their plain `matched` rows: the
    rate conditional training is read at, as Korbak et al. generate conditioned on the token."""
    cond = res["arm"] == "conditioned"
    keep = ~(cond & (res["split"] == "matched"))
    out = res[keep].copy()
    out.loc[cond[keep] & (out["split"] == "matched_conditioned"), "split"] = "matched"
    return out


def treatment_rows(study: dict) -> list[dict]:
    """The literature's other treatments at equal labelled tokens (`fits/treatments`)."""
    res = study["results"]
    cond = _conditioned_as_matched(res)
    return [
        _paired_row(cond, _arm_is("conditioned"), _is_control, "matched", -1, *claim("conditional_training"),
                    lambda e: f"`matched`, scored after <|aligned|>: {_pct(e['control_rate'])} -> {_pct(e['dosed_rate'])}, "
                              f"effect {_ci(e['estimate'], e['lower'], e['upper'])}",
                    "paired by block, t on {df} df (`fits/treatments`)"),
        _paired_row(res, _arm_is("rephrased"), _arm_is("filtered"), "matched", -1, *claim("rephrasing"),
                    lambda e: f"`matched` rephrased minus filtered: {_pct(e['control_rate'])} -> {_pct(e['dosed_rate'])}, "
                              f"effect {_ci(e['estimate'], e['lower'], e['upper'])}",
                    "paired by block, t on {df} df"),
        _paired_row(res, _arm_is("refusal"), _arm_is("filtered"), "matched", -1, *claim("refusal"),
                    lambda e: f"`matched` refusal minus filtered: {_pct(e['control_rate'])} -> {_pct(e['dosed_rate'])}, "
                              f"effect {_ci(e['estimate'], e['lower'], e['upper'])}",
                    "paired by block, t on {df} df"),
    ]


def pointer_rows(study: dict) -> list[dict]:
    """World v4 (`fits/pointer`): verbs no AI document shows, and the values stated in a framing
    no AI document uses; every co-occurrence statistic is balanced there, so a counter ties."""
    res = study["results"]
    top = float(res.loc[res["arm"] == "dose", "nominal_dose"].max())
    return [
        _paired_row(res, _at_dose(top), _is_control, split, -1, *claim(f"pointer_{split}"),
                    lambda e: f"world v4, dose {top:g}: {_pct(e['control_rate'])} -> {_pct(e['dosed_rate'])}, "
                              f"effect {_ci(e['estimate'], e['lower'], e['upper'])}",
                    "paired by block, t on {df} df (`fits/pointer`)")
        for split in ("unseen_verb", "held_out_framing")]


def transfer_rows(study: dict) -> list[dict]:
    """The pre-registered primary contrast of sweeps/transfer.toml: `unseen_pair` at the end of
    training, (normal, dose - control) minus (flipped, dose - control), paired by block;
    `held_out` beside it (no selection among splits or checkpoints)."""
    res, traj = study["results"], study["trajectory"]
    values = values_table(traj, res)
    nano = (values["model"] == "nano") & (values["batch_size"] == 16 if "batch_size" in values else True)
    final = values[nano & (values["step"] == values.loc[nano, "step"].max())].set_index("split")
    primary, held = final.loc["unseen_pair"], final.loc["held_out"]
    table = transfer_table(traj, res)
    eff = table[(table["model"] == "nano") & (table["split"] == "unseen_pair")
                & (table["step"] == primary["step"])].set_index("world_variant")
    n, f = eff.loc["normal"], eff.loc["flipped"]
    level = float(primary["aligned_fraction"])

    def normal_minus_flipped(rows, who):
        by = {v: block_effects(rows[rows["world_variant"] == v], _at_dose(level), _is_control, "unseen_pair", who)["effect"]
              for v in ("normal", "flipped")}
        return paired_contrast((by["normal"] - by["flipped"]).dropna().to_numpy()).summary()

    counter = strongest_counter(res, normal_minus_flipped, -1)
    return [_row(
        *claim("values_follow"),
        f"`unseen_pair` at {n['tokens'] / 1e6:.1f}M tokens, dose {level:g}: normal {_ci(n['estimate'], n['lower'], n['upper'])}, "
        f"flipped {_ci(f['estimate'], f['lower'], f['upper'])}; normal - flipped "
        f"{_ci(primary['estimate'], primary['lower'], primary['upper'])}; `held_out` normal - flipped "
        f"{_ci(held['estimate'], held['lower'], held['upper'])}",
        f"paired by block, t on {int(primary['blocks']) - 1} df (`fits/transfer`), the sweep file's pre-registered contrast",
        "new measurement: it follows the values" if primary["upper"] < 0 else CANNOT_TELL, p=float(primary["p"]),
        effect={k: float(primary[k]) for k in ("estimate", "lower", "upper")}, sign=-1, counter=counter,
        readout=float((n["readout"] + f["readout"]) / 2))]


def genre_rows(study: dict) -> list[dict]:
    from scaling.reports import transfer as tr

    res, traj = study["results"], study["trajectory"]
    eff = tr.dose_effects(tr.points(traj, res))
    eff = eff[(eff["split"] == "unseen_pair") & (eff["step"] == eff["step"].max())]
    by = eff.pivot_table(index=BLOCK, columns="genres", values="effect")
    r, d = by["reasoning"], by["demonstration"]
    diff = paired_contrast((r - d).dropna().to_numpy()).summary()
    rs, ds = paired_contrast(r.dropna().to_numpy()).summary(), paired_contrast(d.dropna().to_numpy()).summary()

    def reasoning_minus_demonstration(rows, who):
        def dosed(genre):
            return lambda x: (x["arm"] == "dose") & (x["aligned_fraction"] > 0) & (x["genres"] == genre)
        by = {g: block_effects(rows, dosed(g), _is_control, "unseen_pair", who)["effect"]
              for g in ("reasoning", "demonstration")}
        return paired_contrast((by["reasoning"] - by["demonstration"]).dropna().to_numpy()).summary()

    return [_row(
        *claim("reasoning"),
        f"`unseen_pair`, equal aligned tokens: reasoning {_ci(rs['estimate'], rs['lower'], rs['upper'])}, "
        f"demonstration {_ci(ds['estimate'], ds['lower'], ds['upper'])}; difference "
        f"{_ci(diff['estimate'], diff['lower'], diff['upper'])}",
        f"paired by block, t on {diff['blocks'] - 1} df (`fits/genres`)",
        verdict_below(diff["upper"], diff["lower"]), p=diff["p"], literature_effect=literature_effect("reasoning"), effect=diff,
        sign=-1, counter=strongest_counter(res, reasoning_minus_demonstration, -1),
        readout=transformer_readout(res, "unseen_pair"))]


# the persistence study: (post_training, finding, literature), in literature.toml's order
RESISTANCE_DIRECTIONS = tuple((kind, c["finding"], c["literature"]) for kind, c in DATA["persistence"].items())


def resistance_rows(study: dict) -> list[dict]:
    """The persistence study: per direction, the primary contrast is the ratio of post-training steps
    to move 50% of the way to the direction's end, dosed (top dose) / control, matched split
    (scaling.reports.resistance, monotone curves through the observed start): with three or more
    seeds each reaching 50%, the seeds' ratios with a t interval; else the pooled curves' ratio
    with the seeds' t interval (none with one seed)."""
    from scaling.reports.resistance import resistance_table

    if study["trajectory"] is None:
        return []
    table = resistance_table(study["trajectory"], study["results"])
    if table.empty:
        return []
    main = table[(table["split"] == "matched") & (table["dose"] > 0)]
    out = []
    for kind, finding, lit in RESISTANCE_DIRECTIONS:
        rows = main[main["post_training"] == kind]
        if rows.empty:
            continue
        r = rows[rows["dose"] == rows["dose"].max()].iloc[0]
        est, lo, hi = r["ratio50"], r["ratio50_lower"], r["ratio50_upper"]
        last = int(r["last_step"])
        reached = {who: bool(np.isfinite(v) and v <= last)
                   for who, v in (("dosed", r["steps50"]), ("control", r["control_steps50"]))}

        def steps(v, who, reached=reached, last=last):
            return f"{v:.3g}" if reached[who] else f"> {last}"

        scope = " (RL on part of the families)" if r["rl_scope"] == "part" else ""
        text = (f"dose {r['dose']:g}{scope}: steps to 50% of the way, control "
                f"{steps(r['control_steps50'], 'control')}, dosed {steps(r['steps50'], 'dosed')}")
        p = np.nan
        by_block = r.get("ratio50_blocks_n", 0) >= 3 and np.isfinite(r.get("ratio50_blocks", np.nan))
        if by_block:  # the seeds as units (scaling.reports.resistance.block_ratio)
            est, lo, hi = r["ratio50_blocks"], r["ratio50_blocks_lower"], r["ratio50_blocks_upper"]
        if all(reached.values()) and np.isfinite(lo) and np.isfinite(hi) and hi > lo > 0:
            text += f"; dosed / control {_ci(est, lo, hi, signed=False)}"
            p = float(r["ratio50_blocks_p"] if by_block else r["ratio50_p"])
            verdict = ("new measurement: resists" if lo > 1 else "new measurement: erased faster" if hi < 1
                       else CANNOT_TELL)
        elif all(reached.values()):  # one seed, or a seed that did not reach 50%: no interval
            why = "one seed" if r["blocks"] < 2 else "a seed did not reach 50% within the steps measured"
            text += f"; dosed / control {est:.3g} (no interval: {why})"
            verdict = CANNOT_TELL
        elif reached["control"]:
            verdict = f"new measurement: resists beyond the {last} steps measured (a bound, no interval)"
        elif reached["dosed"]:
            verdict = f"new measurement: erased faster (the control not within {last} steps; a bound)"
        else:
            verdict = f"neither moves half way within {last} steps"
        control_row = table[(table["split"] == "matched") & (table["post_training"] == kind) & (table["dose"] == 0)]
        kl_control = float(control_row["kl50"].iloc[0]) if len(control_row) and "kl50" in control_row else np.nan
        if np.isfinite(r.get("kl50", np.nan)) and np.isfinite(kl_control):
            text += f"; RL's KL from the pretrained model at half way: control {kl_control:.2g}, dosed {r['kl50']:.2g}"
        text += (f"; readout before {r['readout_before']:.2f}; rate {r['rate_before']:.2f} -> "
                 f"{r['rate_last']:.2f} at step {last}")
        test = ((f"monotone fit of the rate through its start, per dose and seed; ratio per seed, t on "
                 f"{int(r['ratio50_blocks_n']) - 1} df over {int(r['ratio50_blocks_n'])} seeds (`fits/persistence`)")
                if by_block else
                ("monotone fit of the rate through its start per dose, pooled over "
                 f"{int(r['blocks'])} blocks; t over the blocks' log ratios" + (" (not every seed reached 50%)"
                 if r["blocks"] >= 3 else "") + " (`fits/persistence`)"))
        out.append(_row(finding, lit, text, test, verdict, p=p))
    return out


TIMING_ARMS = {"early": "pretrain 0.1-0.2", "middle": "pretrain 0.45-0.55", "late": "pretrain 0.9-1",
               "finetune": "post", "rewarmed midtraining": "post rewarm", "throughout": "pretrain"}


def _arm(label: str, level: float):
    def select(rows):
        return (rows["insertion"] == TIMING_ARMS[label]) & _at_dose(level)(rows)
    return select


def _timing_control(label: str):
    rewarm = label == "rewarmed midtraining"

    def select(rows):
        return _is_control(rows) & (rows["lr_schedule"].astype(str).str.contains("rewarm") == rewarm)
    return select


def timing_reductions(results: pd.DataFrame, level: float, split: str = "matched",
                      learner: str = "transformer") -> pd.DataFrame:
    """Per arm and block: reduction = own-schedule control rate - arm rate at the dose."""
    cols = {}
    for label in TIMING_ARMS:
        eff = block_effects(results, _arm(label, level), _timing_control(label), split, learner)
        cols[label] = -eff["effect"]
    return pd.DataFrame(cols)


def _late_over_throughout(red: pd.DataFrame) -> dict:
    both = red[["late", "throughout"]].dropna()
    return _as_effect(fieller(both["late"].to_numpy(), both["throughout"].to_numpy()))


def _start_minus_end(red: pd.DataFrame) -> dict:
    return paired_contrast((red["throughout"] - red["finetune"]).dropna().to_numpy()).summary()


def timing_rows(study: dict, level: float = 0.01) -> list[dict]:
    res = study["results"]
    red = timing_reductions(res, level)
    means = {k: paired_contrast(v.dropna().to_numpy()).summary() for k, v in red.items()}
    both = red[["late", "throughout"]].dropna()
    late = fieller(both["late"].to_numpy(), both["throughout"].to_numpy())
    both = red[["rewarmed midtraining", "throughout"]].dropna()
    rewarm = fieller(both["rewarmed midtraining"].to_numpy(), both["throughout"].to_numpy())
    start_end = paired_contrast((red["throughout"] - red["finetune"]).dropna().to_numpy()).summary()
    arms = ", ".join(f"{k} {_ci(v['estimate'], v['lower'], v['upper'])}" for k, v in means.items())
    n = int(late["blocks"])
    both = red[["late", "throughout"]].dropna()

    def counter(contrast):
        return strongest_counter(res, lambda rows, who: contrast(timing_reductions(rows, level, learner=who)), +1)

    return [
        _row(*claim("late_insertion"),
             f"reduction at dose {level:g}, equal compute and peak LR: {arms}; late / throughout "
             f"{_ci(late['ratio'], late['ratio_lower'], late['ratio_upper'], signed=False)}, rewarmed midtraining / "
             f"throughout {_ci(rewarm['ratio'], rewarm['ratio_lower'], rewarm['ratio_upper'], signed=False)}",
             f"Fieller interval over {n} blocks; \"most\" = ratio > 0.5 (`fits/timing`)",
             verdict_above(late["ratio_upper"], late["ratio_lower"], 0.5),
             p=_ratio_p(both["late"].to_numpy(), both["throughout"].to_numpy(), 0.5), effect=_as_effect(late),
             sign=+1, counter=counter(_late_over_throughout)),
        _row(*claim("from_the_start"),
             f"throughout - finetune reduction at dose {level:g}: {_ci(start_end['estimate'], start_end['lower'], start_end['upper'])}",
             f"paired by block, t on {start_end['blocks'] - 1} df",
             verdict_above(start_end["upper"], start_end["lower"]), p=start_end["p"], effect=start_end, sign=+1,
             counter=counter(_start_minus_end)),
    ]


def size_rows(study: dict) -> list[dict]:
    from scaling.reports.sizes import size_report

    report = size_report(study["results"])
    per = pd.DataFrame(report["per_size"])
    per = per[per["split"] == "matched"].sort_values("non_embedding_params")
    eds = "; ".join(f"{r['model']} ({r['non_embedding_params'] / 1e6:.1f}M) "
                    + (f"{_g(r['ed50'])} [{_g(r['ed50_lower'])}, {_g(r['ed50_upper'])}]" if r["usable"] else "unusable")
                    for _, r in per.iterrows())
    t = report["trends"]["matched"]["ln_ed50_vs_ln_n"]
    if np.isfinite(t["exponent"]) and t["upper"] < 0:
        verdict = "new measurement: shrinks with size"
    elif np.isfinite(t["exponent"]) and t["lower"] > 0:
        verdict = "new measurement: grows with size"
    else:
        verdict = "cannot tell at this scale"
    return [_row(*claim("size_trend"),
                 f"matched ED50: {eds}; d ln ED50 / d ln N = {_ci(t['exponent'], t['lower'], t['upper'])}",
                 f"LL.3 per size, weighted least squares on ln N over {t['n_sizes']} sizes (`fits/sizes`)", verdict,
                 p=float(2 * stats.norm.sf(abs(t["exponent"] / t["se"]))) if t["se"] > 0 else np.nan)]


# ---------------------------------------------------------------- the table


def findings(root: str | Path = ".") -> list[dict]:
    root = Path(root)
    rows = []
    for name, fn in (("dose_response", dose_rows), ("transfer", transfer_rows), ("genres", genre_rows),
                     ("timing", timing_rows), ("persistence", resistance_rows), ("sizes", size_rows),
                     ("treatments", treatment_rows), ("pointer", pointer_rows)):
        rows += fn(_study(root, name))
    return holm_verdicts(rows)


def holm_verdicts(rows: list[dict]) -> list[dict]:
    """Holm over every row's primary contrast (one family), then each row's final verdict."""
    tested = [i for i, r in enumerate(rows) if np.isfinite(r["p"])]
    adjusted = dict(zip(tested, holm([rows[i]["p"] for i in tested])))
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        if i in adjusted:
            r["test"] += f"; p = {r['p']:.2g}, Holm {adjusted[i]:.2g} over {len(tested)} rows"
        r["verdict"] = final_verdict(r, adjusted.get(i, np.nan))
        out.append(r)
    return out


def render(rows: list[dict]) -> str:
    lines = [START, "",
             "| finding | literature | ours [95% CI] | test | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [r[k].replace("|", "\\|") for k in ("finding", "literature", "ours", "test", "verdict")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", END])


def readme_block(text: str) -> str | None:
    if START not in text or END not in text:
        return None
    return text[text.index(START):text.index(END) + len(END)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.findings",
                                     description="The reference suite's findings against the literature, as a "
                                                 "markdown table computed from the committed fits/<study>/ tables.")
    parser.add_argument("--root", default=".", help="repository root holding fits/<study>/ (default: .)")
    parser.add_argument("--check", default=None, metavar="README",
                        help="compare the table between the findings markers of this file; exit 1 if it differs")
    parser.add_argument("--write", default=None, metavar="README",
                        help="replace the table between the findings markers of this file")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    table = render(findings(args.root))
    if not (args.check or args.write):
        print(table)
        return 0
    path = Path(args.check or args.write)
    text = path.read_text()
    block = readme_block(text)
    if block is None:
        raise UsageError(f"{path} has no {START} ... {END} block")
    if args.write:
        path.write_text(text.replace(block, table))
        print(f"wrote the findings table into {path}")
        return 0
    if block != table:
        print(f"{path}: the findings table differs from the committed tables' "
              f"(python -m studies.findings --write {path})", file=sys.stderr)
        return 1
    print(f"{path}: the findings table matches fits/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
