"""`scaling findings`: the reference suite's findings against the literature, as a table.

Every number comes from the committed study tables under `fits/<study>/` (results.csv,
trajectory.csv, fit.json), computed here with the package's own estimators; every verdict
is a rule on an interval, stated in the row:

- reproduces: the interval lies on the literature's side of the claim;
- does not: it lies on the other side;
- cannot tell at this scale: it contains the boundary.

`scaling findings --root .` prints the markdown table; `--check README.md` exits 1 when the
README's table (between the `findings:start`/`findings:end` markers) differs from it.
Effects are paired by block (train seed x world seed): the dosed run's final rate minus the
same block's dose-0 run, mean over blocks with a t interval on blocks - 1 df.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.baselines import is_counting
from scaling.errors import UsageError
from scaling.fit.persistence import fieller, persistence_table
from scaling.fit.transfer import _t_summary, transfer_table, values_table

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
BLOCK = ["seed", "world_seed"]
STUDIES = ("dose_response", "transfer", "genres", "timing", "persistence", "sizes")


# ---------------------------------------------------------------- reading


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
    rows = results[(results["learner"] == learner) & (results["status"] == "ok")]
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
    out = _t_summary(both["effect"].to_numpy())
    out.update(dosed_rate=float(both["dosed"].mean()) if len(both) else np.nan,
               control_rate=float(both["control"].mean()) if len(both) else np.nan)
    return out


def _is_control(rows):
    return (rows["arm"] == "dose") & (rows["aligned_fraction"] == 0)


def _at_dose(level: float):
    def select(rows):
        nominal = rows["nominal_dose"].where(rows["nominal_dose"].notna(), rows["aligned_fraction"])
        return (rows["arm"] == "dose") & np.isclose(nominal, level)
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


def _row(finding: str, literature: str, ours: str, test: str, verdict: str) -> dict:
    return {"finding": finding, "literature": literature, "ours": ours, "test": test, "verdict": verdict}


def _counter_ties(results: pd.DataFrame) -> float:
    """Largest distance from 0.5 of any counting baseline's rate on the transfer splits."""
    rows = results[(results["learner"] == "ngram") & results["split"].isin(["unseen_pair", "held_out"])]
    return float((rows["misalignment_rate"] - 0.5).abs().max()) if len(rows) else np.nan


# ---------------------------------------------------------------- rows per study


def dose_rows(study: dict) -> list[dict]:
    res = study["results"]
    top = float(res.loc[res["arm"] == "dose", "nominal_dose"].max())
    out = []
    m = paired(res, _at_dose(0.01), _is_control, "matched")
    uni = paired(res[res["model"] == "ngram-1"], _at_dose(0.01), _is_control, "matched", learner="ngram")
    verdict = verdict_below(m["upper"], m["lower"])
    if verdict == "reproduces" and np.isfinite(uni["upper"]) and uni["upper"] < 0:
        verdict += ", but a unigram counter does too"
    out.append(_row(
        "Aligned documents lower misalignment on the actions they show (`matched`)",
        "Tice et al.: 45% -> 9% with aligned documents at ~1% of tokens; Korbak et al.: up to ~10x less",
        f"dose 0.01: {_pct(m['control_rate'])} -> {_pct(m['dosed_rate'])}, effect {_ci(m['estimate'], m['lower'], m['upper'])}; "
        f"unigram counter {_ci(uni['estimate'], uni['lower'], uni['upper'])}",
        f"paired by block, t on {m['blocks'] - 1} df (`fits/dose_response`)", verdict))
    for split, label in (("unseen_pair", "new actions in familiar situations (`unseen_pair`)"),
                         ("held_out", "new actions in new situations (`held_out`)")):
        e1 = paired(res, _at_dose(0.01), _is_control, split)
        e2 = paired(res, _at_dose(top), _is_control, split)
        out.append(_row(
            f"... and beyond counting: {label}",
            "Tice et al. also report a held-out split; no counting control",
            f"dose 0.01: {_ci(e1['estimate'], e1['lower'], e1['upper'])}; dose {top:g}: "
            f"{_ci(e2['estimate'], e2['lower'], e2['upper'])} ({_pct(e2['control_rate'])} -> {_pct(e2['dosed_rate'])}); "
            f"counters at 0.5 in every run (max |rate - 0.5| = {_counter_ties(res):.2g})",
            f"paired by block, t on {e2['blocks'] - 1} df", verdict_below(e2["upper"], e2["lower"])))
    eds = []
    for split in ("matched", "unseen_pair"):
        ed = _chosen_ed50(study["fit"], split)
        eds.append(f"{split} {ed}")
    out.append(_row(
        "The halving dose (control-relative ED50)", "not reported (reviewers asked for the curve over 1e-5..1e-2)",
        "; ".join(eds), "LL.3 with block effects, cluster-robust t interval (`fit.md`)",
        "new measurement"))
    filt = paired(res, lambda r: r["arm"] == "filtered", _is_control, "matched")
    mis = paired(res, lambda r: r["arm"] == "misaligned", _is_control, "matched")
    filt_u = paired(res, lambda r: r["arm"] == "filtered", _is_control, "unseen_pair")
    mis_u = paired(res, lambda r: r["arm"] == "misaligned", _is_control, "unseen_pair")
    add_vs_remove = paired(res, _at_dose(0.01), lambda r: r["arm"] == "filtered", "matched")
    out.append(_row(
        "Removing the natural misaligned documents lowers misalignment",
        "Tice et al.: 45% -> 31% (filtered); Maini et al.: 38.8% -> 8.4% (filtering with rephrasing and refusal data)",
        f"`matched` {_pct(filt['control_rate'])} -> {_pct(filt['dosed_rate'])}, effect "
        f"{_ci(filt['estimate'], filt['lower'], filt['upper'])}; `unseen_pair` {_ci(filt_u['estimate'], filt_u['lower'], filt_u['upper'])}",
        f"paired by block, t on {filt['blocks'] - 1} df", verdict_below(filt["upper"], filt["lower"])))
    out.append(_row(
        "Upsampling misaligned documents raises it",
        "Tice et al.: 45% -> 51%",
        f"1% of tokens: `matched` {_pct(mis['control_rate'])} -> {_pct(mis['dosed_rate'])}, effect "
        f"{_ci(mis['estimate'], mis['lower'], mis['upper'])}; `unseen_pair` {_ci(mis_u['estimate'], mis_u['lower'], mis_u['upper'])}",
        f"paired by block, t on {mis['blocks'] - 1} df", verdict_above(mis["upper"], mis["lower"])))
    out.append(_row(
        "Adding aligned documents beats removing misaligned ones",
        "across the papers: adding mattered more than removing",
        f"dose 0.01 minus filtered: {_ci(add_vs_remove['estimate'], add_vs_remove['lower'], add_vs_remove['upper'])}",
        f"paired by block, t on {add_vs_remove['blocks'] - 1} df",
        verdict_below(add_vs_remove["upper"], add_vs_remove["lower"])))
    return out


def _chosen_ed50(fit: dict | None, split: str) -> str:
    """The halving dose (control-relative ED50) of the transformer's headline curve of a
    split: LL.3 (floor 0, the controls fix the plateau), else LL.4, as in the study summary
    and the figures."""
    if not fit:
        return "-"
    from scaling.fit.report import HEADLINE_MODELS

    fits = [f for f in fit.get("fits", []) if f["group"].get("split") == split and f.get("usable")
            and not is_counting(str(f["group"].get("model", ""))) and f["group"].get("insertion") != "pooled"
            and f.get("background") is None and f.get("control_level") is not None]
    for model in HEADLINE_MODELS:
        for f in fits:
            if f["model"] == model:
                ed = (f.get("ed_control") or {}).get("50")
                if not ed:
                    return f"not reached ({model})"
                if ed.get("extrapolated"):
                    return f"beyond the doses tested ({model})"
                bounds = f"[{_g(ed['lower'])}, {_g(ed['upper'])}]" if ed.get("lower") is not None else "[-]"
                return f"{_g(ed['estimate'])} {bounds} ({model})"
    return "no usable curve"


def transfer_rows(study: dict) -> list[dict]:
    from scaling.fit.contrasts import holm

    res, traj = study["results"], study["trajectory"]
    values = values_table(traj, res)
    main = values[(values["model"] == "nano") & (values["batch_size"] == 16)
                  & values["split"].isin(["unseen_pair", "held_out"])].reset_index(drop=True)
    main = main.assign(p_holm=holm(main["p"].tolist()))
    best = main.loc[main["p"].idxmin()]
    table = transfer_table(traj, res)
    eff = table[(table["model"] == "nano") & (table["batch_size"] == 16) & (table["split"] == best["split"])
                & (table["step"] == best["step"])].set_index("world_variant")
    n, f = eff.loc["normal"], eff.loc["flipped"]
    return [_row(
        "The transfer follows the values of the human stories (flipped worlds reverse it)",
        "the mechanism alignment pretraining assumes; not tested in the literature",
        f"`{best['split']}` at {n['tokens'] / 1e6:.1f}M tokens, dose 0.05: normal {_ci(n['estimate'], n['lower'], n['upper'])}, "
        f"flipped {_ci(f['estimate'], f['lower'], f['upper'])}; normal - flipped "
        f"{_ci(best['estimate'], best['lower'], best['upper'])}, p = {best['p']:.2g}, Holm {best['p_holm']:.2g} "
        f"over {len(main)} tests",
        f"paired by block, t on {int(best['blocks']) - 1} df (`fits/transfer`)",
        "new measurement: it follows the values" if best["p_holm"] < 0.05 and best["upper"] < 0
        else "cannot tell at this scale")]


def genre_rows(study: dict) -> list[dict]:
    from scaling.fit import transfer as tr

    res, traj = study["results"], study["trajectory"]
    eff = tr._effects(tr.points(traj, res))
    eff = eff[(eff["split"] == "unseen_pair") & (eff["step"] == eff["step"].max())]
    by = eff.pivot_table(index=BLOCK, columns="genres", values="effect")
    r, d = by["reasoning"], by["demonstration"]
    diff = _t_summary((r - d).dropna().to_numpy())
    rs, ds = _t_summary(r.dropna().to_numpy()), _t_summary(d.dropna().to_numpy())
    return [_row(
        "Documents with the reasoning (why) transfer better than the action alone (what)",
        "Anthropic: 22% -> 3% with reasoning vs 22% -> 15% with actions only",
        f"`unseen_pair`, equal aligned tokens: reasoning {_ci(rs['estimate'], rs['lower'], rs['upper'])}, "
        f"demonstration {_ci(ds['estimate'], ds['lower'], ds['upper'])}; difference "
        f"{_ci(diff['estimate'], diff['lower'], diff['upper'])}",
        f"paired by block, t on {diff['blocks'] - 1} df (`fits/genres`)",
        verdict_below(diff["upper"], diff["lower"]))]


def persistence_rows(study: dict) -> list[dict]:
    table = persistence_table(study["trajectory"], study["results"])
    main = table[(table["split"] == "matched") & (table["rl_scope"] != "part")]
    window = main.loc[main["post_training"] == "none", "insertion"].value_counts().idxmax()
    main = main[main["insertion"] == window]
    top = float(main["dose"].max())
    longest = main.groupby("post_training")["post_training_tokens"].transform("max")
    shorter = main[(main["dose"] == top) & (main["post_training_tokens"] < longest)].set_index("post_training")
    main = main[(main["dose"] == top) & (main["post_training_tokens"] == longest)].set_index("post_training")
    out = []

    def ours(r) -> str:
        return (f"dose {top:g}: control {_pct(r['control_after'])}, dosed {_pct(r['dosed_after'])} after; reduction "
                f"{_ci(r['reduction_before'], r['reduction_before_lower'], r['reduction_before_upper'])} before, "
                f"{_ci(r['reduction_after'], r['reduction_after_lower'], r['reduction_after_upper'])} after; retention "
                f"{_ci(r['retention'], r['retention_lower'], r['retention_upper'], signed=False)}")

    test = f"paired by block, t on {int(main['blocks'].min()) - 1} df; retention: Fieller (`fits/persistence`)"
    for kind, finding, lit in (
            ("sft", "The aligned model stays better after benign SFT", "Tice et al.: after the same post-training, 9% vs 34%"),
            ("harmless_rl", "... after harmlessness RL", "Tice et al.'s post-training was harmlessness-oriented"),
            ("helpful_rl", "... after RL that rewards helping with the misaligned action", "not measured in the literature")):
        if kind not in main.index:
            continue
        r = main.loc[kind]
        verdict = verdict_above(r["reduction_after_upper"], r["reduction_after_lower"])
        text = ours(r)
        if kind == "helpful_rl":
            verdict = "new measurement: " + ("survives" if verdict == "reproduces" else
                                             "erased" if r["retention_upper"] < 0.5 else "cannot tell at this scale")
            for _, w in shorter[shorter.index == kind].iterrows():
                text += (f"; a shorter RL ({w['post_training_tokens'] / 1e3:,.0f}k tokens, not "
                         f"{r['post_training_tokens'] / 1e3:,.0f}k): control {_pct(w['control_after'])}, dosed "
                         f"{_pct(w['dosed_after'])}, retention {_ci(w['retention'], w['retention_lower'], w['retention_upper'], signed=False)}")
        out.append(_row(finding, lit, text, test, verdict))
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


def timing_reductions(results: pd.DataFrame, level: float, split: str = "matched") -> pd.DataFrame:
    """Per arm and block: reduction = own-schedule control rate - arm rate at the dose."""
    cols = {}
    for label in TIMING_ARMS:
        eff = block_effects(results, _arm(label, level), _timing_control(label), split)
        cols[label] = -eff["effect"]
    return pd.DataFrame(cols)


def timing_rows(study: dict, level: float = 0.01) -> list[dict]:
    red = timing_reductions(study["results"], level)
    means = {k: _t_summary(v.dropna().to_numpy()) for k, v in red.items()}
    both = red[["late", "throughout"]].dropna()
    late = fieller(both["late"].to_numpy(), both["throughout"].to_numpy())
    both = red[["rewarmed midtraining", "throughout"]].dropna()
    rewarm = fieller(both["rewarmed midtraining"].to_numpy(), both["throughout"].to_numpy())
    start_end = _t_summary((red["throughout"] - red["finetune"]).dropna().to_numpy())
    arms = ", ".join(f"{k} {_ci(v['estimate'], v['lower'], v['upper'])}" for k, v in means.items())
    n = int(late["blocks"])
    return [
        _row("Inserting the documents only in the last 10% captures most of the benefit",
             "Tice et al.: the final 10% captured most of the benefit, at a fraction of the cost",
             f"reduction at dose {level:g}, equal compute and peak LR: {arms}; late / throughout "
             f"{_ci(late['ratio'], late['ratio_lower'], late['ratio_upper'], signed=False)}, rewarmed midtraining / "
             f"throughout {_ci(rewarm['ratio'], rewarm['ratio_lower'], rewarm['ratio_upper'], signed=False)}",
             f"Fieller interval over {n} blocks; \"most\" = ratio > 0.5 (`fits/timing`)",
             verdict_above(late["ratio_upper"], late["ratio_lower"], 0.5)),
        _row("Feedback from the start of pretraining beats feedback at the end",
             "Korbak et al.: from the start beat the last 1.6B or 330M tokens",
             f"throughout - finetune reduction at dose {level:g}: {_ci(start_end['estimate'], start_end['lower'], start_end['upper'])}",
             f"paired by block, t on {start_end['blocks'] - 1} df",
             verdict_above(start_end["upper"], start_end["lower"])),
    ]


def size_rows(study: dict) -> list[dict]:
    from scaling.sizes import size_report

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
    return [_row("How the halving dose changes with model size",
                 "open question (asked of the alignment-pretraining papers)",
                 f"matched ED50: {eds}; d ln ED50 / d ln N = {_ci(t['exponent'], t['lower'], t['upper'])}",
                 f"LL.3 per size, weighted least squares on ln N over {t['n_sizes']} sizes (`fits/sizes`)", verdict)]


# ---------------------------------------------------------------- the table


def findings(root: str | Path = ".") -> list[dict]:
    root = Path(root)
    rows = []
    for name, fn in (("dose_response", dose_rows), ("transfer", transfer_rows), ("genres", genre_rows),
                     ("timing", timing_rows), ("persistence", persistence_rows), ("sizes", size_rows)):
        rows += fn(_study(root, name))
    return rows


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


def add_arguments(p) -> None:
    p.add_argument("--root", default=".", help="repository root holding fits/<study>/ (default: .)")
    p.add_argument("--check", default=None, metavar="README",
                   help="compare the table between the findings markers of this file; exit 1 if it differs")
    p.add_argument("--write", default=None, metavar="README",
                   help="replace the table between the findings markers of this file")


def run(args) -> int:
    table = render(findings(args.root))
    if args.check or args.write:
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
            print(f"{path}: the findings table differs from the committed tables' (scaling findings --write {path})",
                  file=sys.stderr)
            return 1
        print(f"{path}: the findings table matches fits/")
        return 0
    print(table)
    return 0
