"""Dynamic counters (scaling.baselines): counts that forget over training steps and counts
that post-training rows increment, against brute-force recounts of the rows the loop read."""

import collections
import math

import numpy as np
import pandas as pd
import pytest

from scaling import baselines as B
from scaling import evaluate as E
from scaling import results as R
from scaling import rundir
from scaling import table as T
from scaling.cli.data import row_batches
from scaling.data.export import training_row_steps, training_rows
from scaling.data.mixture import Mixture
from scaling.data.tokenizer import EOS, PAD
from scaling.data.vocab import build_tokenizer
from scaling.plan import config_from_dict

MODEL = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 16}
PRE, POST = 12, 3  # steps
MISALIGNED_FT = {"objective": "lm", "misaligned": 1.0}


def _cfg(root, post: dict, **eval_):
    return config_from_dict({
        "model": MODEL, "train": {"steps": PRE, "batch_size": 4},
        "data": {"data_dir": str(root), "story_fraction": 0.0, "dose": 0.05},
        "eval": {"enabled": False, "checkpoints": [PRE, PRE + 1], "max_items": 48, **eval_},
        "stages": [{"name": "pre", "steps": PRE, "intervention": True},
                   {"name": "post", "steps": POST, "post": True, **post}]})


def _exported(cfg, tok):
    """(rows, step of each row): what `scaling data export` writes (the LM and SFT batches
    the loop reads, RL left out), with the step each row was trained at."""
    rows, steps, step = [], [], 0
    for batch in row_batches(Mixture(cfg, tok), PRE + POST):
        for b in batch:
            rows.append(b)
            steps += [step] * len(b)
            step += 1
    return np.concatenate(rows), np.array(steps)


def _unigrams(rows, weights):
    """Weighted occurrences of every token, by a loop over the rows."""
    out = collections.Counter()
    for row, w in zip(rows.tolist(), weights):
        for t in row:
            out[t] += w
    return out


def _forward(rows, weights, k, V):
    """Weighted forward-window pairs (t among the k tokens after u, one document), by loops."""
    out = np.zeros((V, V))
    for row, w in zip(rows.tolist(), weights):
        for i, u in enumerate(row):
            for j in range(i + 1, min(i + k + 1, len(row))):
                if EOS in row[i:j + 1] or u in (EOS, PAD):
                    break
                if row[j] != PAD:
                    out[u, row[j]] += w
    return out


def _gram_count(model, token):
    at = np.searchsorted(model.grams, token)
    return float(model.gram_counts[at]) if at < len(model.grams) and model.grams[at] == token else 0.0


def _random_rows(seed, V=20, n=30, length=24):
    rng = np.random.default_rng(seed)
    rows = rng.integers(3, V, (n, length))
    rows[rng.random(rows.shape) < 0.1] = EOS
    rows[:2, -3:] = PAD
    return rows


def _scores(model, seed=0, V=20):
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(3, V, rng.integers(4, 20)) for _ in range(8)]
    pairs = rng.integers(3, V, (8, 2))
    return model.score([p for p in prompts for _ in range(2)], [np.array([t, 5]) for pair in pairs for t in pair])


# ---------------------------------------------------------------- forgetting


def test_weighted_counts_equal_a_weighted_recount():
    rows, V = _random_rows(0), 20
    w = np.exp(-np.arange(len(rows))[::-1] / 7.0)
    counts = B.Counts(rows, V, windows=(4,), weights=w)
    np.testing.assert_allclose(counts.forward[4], _forward(rows, w, 4, V), rtol=1e-12)
    want = _unigrams(rows, w)
    np.testing.assert_allclose(counts.unigram[3:], [want[t] for t in range(3, V)], rtol=1e-12)
    # the document table too: weights of 1.0 give the integer counts exactly
    np.testing.assert_array_equal(B.Counts(rows, V, weights=np.ones(len(rows))).doc, B.Counts(rows, V).doc)


def test_forgetting_with_an_infinite_time_constant_is_the_static_counter_bit_for_bit():
    rows, V = _random_rows(1), 20
    steps = np.repeat(np.arange(10), 3)
    dynamic = B.fit_forgetting(rows, steps, 10, V, models=(("ngram-1", math.inf), ("winpmi-16", math.inf)))
    static = {"ngram-1": B.NGram(1, V).fit(rows), "winpmi-16": B.PMICounter(B.Counts(rows, V), 16)}
    for base, model in static.items():
        np.testing.assert_array_equal(_scores(dynamic[B.forgetting_name(base, math.inf)]), _scores(model))


def test_forgetting_counts_weigh_each_row_by_its_steps_before_the_end():
    rows, V = _random_rows(2), 20
    steps = np.repeat(np.arange(10), 3)
    models = B.fit_forgetting(rows, steps, 10, V, models=(("ngram-1", 3), ("ngram-1", 30)))
    for tau in (3, 30):
        want = _unigrams(rows, np.exp(-(9 - steps) / tau))  # the last step trained (9) weighs 1
        model = models[B.forgetting_name("ngram-1", tau)]
        np.testing.assert_allclose([_gram_count(model, t) for t in range(3, V)],
                                   [want[t] for t in range(3, V)], rtol=1e-12)
    with pytest.raises(ValueError, match="row steps"):
        B.fit_forgetting(rows, steps[:-1], 10, V)


def test_dynamic_names_are_counting_baselines_with_their_base_learner():
    assert T.dynamic("ngram-1-fg60") == ("ngram-1", "fg", 60.0)
    assert T.dynamic("winpmi-16-post10") == ("winpmi-16", "post", 10.0)
    assert T.dynamic("nano") is None and T.dynamic("nano-fg60") is None
    for name in B.DYNAMIC:
        assert T.is_counting(name) and T.dynamic(name) is not None
        assert T.model_learner(name) == T.model_learner(T.dynamic(name)[0])
    assert not T.is_counting("nano")


# ---------------------------------------------------------------- post-training, on a run's rows


@pytest.mark.parametrize("post", [MISALIGNED_FT, {"objective": "sft"}], ids=["misaligned_ft", "sft"])
def test_post_training_counts_are_a_recount_of_the_exported_rows(root, post):
    cfg = _cfg(root, post)
    tok = build_tokenizer(cfg)
    rows, steps = _exported(cfg, tok)
    train_rows = training_rows(cfg, tok)
    row_steps = training_row_steps(cfg)
    np.testing.assert_array_equal(train_rows, rows[np.isin(steps, row_steps)])  # the LM rows, SFT left out
    counters = B.post_counters(cfg, tok, train_rows, row_steps)
    assert B.post_checkpoints(cfg) == [PRE, PRE + 1, PRE + POST]
    for step in B.post_checkpoints(cfg):
        models = counters.at(step)
        for w in (1, 10):
            weights = np.where(steps < PRE, 1.0, np.where(steps < step, float(w), 0.0))
            want = _unigrams(rows, weights)
            np.testing.assert_allclose([_gram_count(models[f"ngram-1-post{w}"], t) for t in range(tok.vocab_size)],
                                       [want[t] for t in range(tok.vocab_size)], rtol=1e-12)
            for k in (4, 16):
                np.testing.assert_allclose(models[f"winpmi-{k}-post{w}"].counts.forward[k],
                                           _forward(rows, weights, k, tok.vocab_size), rtol=1e-12)


def test_post_training_counter_ties_to_the_pretraining_and_the_static_counter(root):
    cfg = _cfg(root, MISALIGNED_FT)
    tok = build_tokenizer(cfg)
    rows, row_steps = training_rows(cfg, tok), training_row_steps(cfg)
    pre = rows[row_steps < PRE]
    end = PRE + POST
    zero = B.PostCounters(pre, B.post_rows(cfg, tok), tok.vocab_size, models=(("ngram-1", 0), ("winpmi-16", 0)))
    one = B.post_counters(cfg, tok, rows, row_steps).at(end)
    V = tok.vocab_size
    items = E.eval_items(cfg)
    enc = E.encode_items(tok, items)

    def margins(model):
        return E.item_margins(model.score, tok, items, enc)[0]

    # weight 0: the pretraining rows' counter
    np.testing.assert_array_equal(margins(zero.at(end)["ngram-1-post0"]), margins(B.NGram(1, V).fit(pre)))
    np.testing.assert_array_equal(margins(zero.at(end)["winpmi-16-post0"]),
                                  margins(B.PMICounter(B.Counts(pre, V), 16)))
    # weight 1 at the end of a misaligned finetune (LM rows): the static counter of every row
    np.testing.assert_array_equal(margins(one["ngram-1-post1"]), margins(B.NGram(1, V).fit(rows)))
    np.testing.assert_array_equal(margins(one["winpmi-16-post1"]), margins(B.PMICounter(B.Counts(rows, V), 16)))


def test_evaluation_rows_of_the_dynamic_counters(root, tmp_path):
    """eval.json's payload -> results.csv rows (an RL run's post-training counters say why
    they are missing) and trajectory.csv rows (kept out of the transformer's curves)."""
    rl = _cfg(root, {"objective": "helpful_rl"})
    tok = build_tokenizer(rl)
    out = E.evaluate_baselines(rl, tok, E.eval_items(rl), trajectory=(traj := {}))
    assert set(out) == {"ngram-1", "ngram-2", "ngram-3", *B.COUNTERS, *B.FORGETTING_MODELS, *B.POST_MODELS}
    assert traj == {} and all(out[m] == {"status": B.NOT_COUNTABLE} for m in B.POST_MODELS)
    base = R.run_columns("r", rl, {}, "ok")
    rows = pd.DataFrame(R.baseline_rows(base, rl, out))
    post = rows["model"].isin(B.POST_MODELS)
    assert (rows.loc[post, "status"] == B.NOT_COUNTABLE).all() and rows.loc[post, "misalignment_rate"].isna().all()
    assert (rows.loc[~post, "status"] == "ok").all()

    ft = _cfg(root, MISALIGNED_FT)
    out = E.evaluate_baselines(ft, tok, E.eval_items(ft), trajectory=(traj := {}))
    assert set(traj) == set(B.POST_MODELS)
    assert [p["step"] for p in traj["winpmi-16-post10"]] == [PRE, PRE + 1, PRE + POST]
    end = traj["winpmi-16-post10"][-1]
    assert end["matched_rate"] == out["winpmi-16-post10"]["splits"]["matched"]["rate"]
    # a sweep directory with this run: its counters' points in trajectory.csv, not in the transformer's
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    point = {"step": PRE + POST, "tokens": 100, "matched_rate": 0.25, "families": {}}
    rundir.write_json(run / "config.json", {"config": {"model": {"name": "nano"}, "data": {}, "train": {}}})
    rundir.write_json(run / "eval.json", {"trajectory": [point], "baseline_trajectory": traj})
    table = R.trajectory_table(tmp_path)
    assert set(table["model"]) == {"nano", *B.POST_MODELS}
    assert (table.loc[table["model"] == "winpmi-16-post10", "step"].unique() == [PRE, PRE + 1, PRE + POST]).all()
    kept = R.transformer_points(table)
    assert set(kept["model"]) == {"nano"} and kept["rate"].tolist() == [0.25]


def test_counter_points_in_trajectory_csv_leave_the_transformer_curves_as_they_were():
    from test_resistance import study_tables

    from scaling.reports import resistance

    traj, res = study_tables(truth=3.0)
    traj = traj.assign(model="nano")
    counter = traj.assign(model="winpmi-16-post10", rate=1 - traj["rate"])  # the same runs, steps and splits
    both = pd.concat([traj, counter], ignore_index=True)
    pd.testing.assert_frame_equal(resistance.resistance_table(both, res), resistance.resistance_table(traj, res))
    pd.testing.assert_frame_equal(R.transformer_points(both), traj)
