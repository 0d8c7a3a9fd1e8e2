"""The literature's other treatments (scaling.treatments): exact shares, equal tokens, control
tokens in the vocabulary, the evaluation's conditioned scoring and the unlikelihood loss."""

import jax
import numpy as np
import pytest
from flax import nnx

from scaling import evaluate, treatments
from scaling import world as W
from scaling.data.mixture import Mixture
from scaling.data.tokenizer import EOS, ControlTokenizer, from_dict
from scaling.data.vocab import build_tokenizer
from scaling.errors import ConfigError
from scaling.plan import config_from_dict
from scaling.train.objectives import unlikelihood


def make_cfg(root, steps=60, batch=8, seq=32, stages=None, lr=3e-3, **data):
    raw = {"model": {"seq_len": seq, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
           "train": {"steps": steps, "batch_size": batch, "steps_per_call": 5, "warmup_steps": 2, "lr": lr},
           "data": {"data_dir": str(root), "story_fraction": 0.0, "natural_ai_fraction": 0.2, **data},
           "eval": {"enabled": False}}
    if stages:
        raw["stages"] = stages
    return config_from_dict(raw)


def rows_and_pools(mix):
    rows = mix.batches(0, mix.total_steps).reshape(-1, mix.L + 1)
    pool, index = mix._assign(np.arange(len(rows)))
    return rows, pool, index


def test_control_tokens_tag_exactly_the_share_asked(root):
    cfg = make_cfg(root, control_tokens=0.3, aligned_fraction=0.1)
    mix = Mixture(cfg)
    tok = mix.tok
    assert isinstance(tok, ControlTokenizer) and tok.vocab_size == tok.base.vocab_size + 2
    rows, pool, _ = rows_and_pools(mix)
    counts = mix.accounting(mix.total_steps)["treatments"]["control_tokens"]
    ctrl = tok.control_ids
    for p, name in enumerate(M_POOLS):
        if name not in treatments.LABELS:
            assert not np.isin(rows[pool == p], list(ctrl.values())).any()
            continue
        label = ctrl[treatments.ALIGNED_TOKEN if treatments.LABELS[name] == "aligned" else treatments.MISALIGNED_TOKEN]
        at = rows[pool == p]
        tagged = at[:, 0] == label
        n = int((pool == p).sum())
        assert tagged.sum() == counts[name] == int(np.floor(0.3 * n + mix.treat.u[("control_tokens", name)]))
        assert abs(tagged.sum() - 0.3 * n) < 1  # exact up to the stochastic rounding
        # every document start of a tagged row carries its label's token, and no other row has one
        tagged_rows = at[tagged]
        after_eos = np.roll(tagged_rows == EOS, 1, axis=1)
        after_eos[:, 0] = False
        assert (tagged_rows[after_eos] == label).all()
        assert not np.isin(at[~tagged], list(ctrl.values())).any()


M_POOLS = ("base", "natural_aligned", "natural_misaligned", "aligned", "misaligned", "stories")


def test_untreated_run_has_the_plain_vocabulary_and_rows(root):
    plain = make_cfg(root, aligned_fraction=0.1)
    tok = build_tokenizer(plain)
    assert not isinstance(tok, ControlTokenizer) and Mixture(plain).treat is None
    assert "treatments" not in Mixture(plain).accounting(10)
    # a treatment's control tokens come after the vocabulary: every other id is unchanged
    treated = build_tokenizer(make_cfg(root, aligned_fraction=0.1, harm_tags=0.5))
    assert treated.itos[:tok.vocab_size] == tok.itos and treated.itos[tok.vocab_size:] == [treatments.HARM_TAG]
    assert from_dict(treated.to_dict()).itos == treated.itos


def test_harm_tags_sit_before_each_misaligned_action(root):
    cfg = make_cfg(root, harm_tags=1.0, misaligned_fraction=0.1)
    mix = Mixture(cfg)
    rows, pool, _ = rows_and_pools(mix)
    harm = mix.tok.control_ids[treatments.HARM_TAG]
    verbs = mix.treat.verbs
    for p in (2, 4):  # natural_misaligned, misaligned: every row tagged at share 1
        at = rows[pool == p]
        before = np.isin(at[:, 1:], verbs)
        assert (at[:, :-1][before] == harm).all()
        assert (np.isin(at[:, 1:][at[:, :-1] == harm], verbs)).all()
    assert not (rows[np.isin(pool, (0, 1, 3))] == harm).any()


def test_rephrasing_keeps_the_tokens_and_moves_them_to_aligned(root):
    plain = Mixture(make_cfg(root, steps=200))
    mix = Mixture(make_cfg(root, steps=200, rephrase_misaligned=0.5))
    a, b = plain.accounting(200)["tokens_by_pool"], mix.accounting(200)["tokens_by_pool"]
    ai = ("natural_aligned", "natural_misaligned")
    assert abs(sum(b[p] for p in ai) - sum(a[p] for p in ai)) <= 0.01 * sum(a[p] for p in ai)
    assert abs(b["natural_misaligned"] / a["natural_misaligned"] - 0.5) < 0.1
    # the replaced documents are the twins: same scenario, the aligned verb, equal lengths
    world = W.World(0)
    for i in mix.rephrased_doc_ids[:5]:
        m, t = (world.ai_document("natural", int(i), side)["text"].split() for side in (1, 0))
        assert len(m) == len(t) and sum(x != y for x, y in zip(m, t)) >= 1
    assert mix.rephrased_token_share == pytest.approx(0.5, abs=0.02)
    # rephrasing takes the documents that come after the filtered ones, disjoint from them
    both = Mixture(make_cfg(root, steps=200, rephrase_misaligned=0.3, filter_misaligned=0.3))
    assert not set(both.rephrased_doc_ids) & set(both.filtered_doc_ids)


def test_refusal_documents_use_the_world_vocabulary(root):
    cfg = make_cfg(root, aligned_fraction=0.2, genres=["refusal"])
    mix = Mixture(cfg)
    assert set(mix.pools["aligned"].genre) == {"refusal"}
    assert not (mix.pools["aligned"].tokens == 2).any()  # no <unk>
    doc = treatments.refusal_document(W.World(0), 3, 0)["text"]
    assert " will not " in doc and "knowing that" in doc
    both = Mixture(make_cfg(root, aligned_fraction=0.2, genres=["reasoning", "refusal"]))
    assert set(both.pools["aligned"].genre) == {"reasoning", "refusal"}


def test_treatment_keys_are_checked(root):
    with pytest.raises(ConfigError, match="data.control_tokens"):
        make_cfg(root, control_tokens=1.5)
    with pytest.raises(ConfigError, match="data.unlikelihood"):
        make_cfg(root, unlikelihood=0.5)  # no stage trains by it
    with pytest.raises(ConfigError, match="data.rephrase_misaligned"):
        make_cfg(root, rephrase_misaligned=0.6, filter_misaligned=0.6)
    with pytest.raises(ConfigError, match="data.genres"):
        make_cfg(root, genres=["sermon"])


UL_STAGES = [{"name": "pretrain", "share": 1.0, "objective": "unlikelihood", "intervention": True,
              "schedule": "cosine", "final_scale": 0.1}]


def test_unlikelihood_marks_misaligned_actions_in_its_stage(root):
    cfg = make_cfg(root, stages=UL_STAGES, unlikelihood=0.5, misaligned_fraction=0.2)
    mix = Mixture(cfg)
    rows, pool, _ = rows_and_pools(mix)
    marked = rows >= treatments.UL_MARK
    assert marked.any() and np.isin(rows[marked] - treatments.UL_MARK, mix.treat.verbs).all()
    assert not marked[~np.isin(pool, (2, 4))].any()
    counts = mix.accounting(mix.total_steps)["treatments"]["unlikelihood"]
    for p, name in ((2, "natural_misaligned"), (4, "misaligned")):
        at = rows[pool == p]
        has_verb = np.isin(treatments.strip_marks(at), mix.treat.verbs).any(1)
        rows_marked = marked[pool == p].any(1)
        assert rows_marked.sum() <= counts[name]
        assert counts[name] - rows_marked.sum() <= (~has_verb).sum()  # picked rows without an action
    from scaling.data.export import training_rows

    assert (training_rows(cfg, mix.tok) < treatments.UL_MARK).all()  # counters see plain tokens


@pytest.mark.slow  # ~40 s: two small trainings
def test_unlikelihood_loss_on_misaligned_tokens_falls_while_it_trains(root):
    """The same rows trained by `unlikelihood` and by plain cross-entropy: the unlikelihood
    loss on the marked misaligned actions falls, and their log-probability ends well below
    where cross-entropy on the same rows leaves it (early on, cross-entropy also lowers these
    rare tokens while it learns the frequent ones)."""
    cfg = make_cfg(root, stages=UL_STAGES, unlikelihood=1.0, misaligned_fraction=0.5, steps=40,
                   lr=0.03)
    mix = Mixture(cfg)
    from scaling.plan import with_tokenizer
    from scaling.train import steps as T

    cfg = with_tokenizer(cfg, mix.tok)
    tx, schedule = T.make_optimizer(cfg)
    graphdef, state0 = T.init_state(cfg, tx)
    probe = mix.batches(0, 5).reshape(-1, cfg.model.seq_len + 1)

    def misaligned(params):
        """(mean log p, mean unlikelihood loss) of the probe's marked targets."""
        logp, marked, _ = unlikelihood.target_logprobs(graphdef, params, probe)
        lp = np.asarray(logp, np.float64)[np.asarray(marked)]
        return lp.mean(), float(np.mean(-np.log1p(-np.exp(lp))))

    def trained(loss):
        step = jax.jit(T.make_multi_step(T.make_train_step(graphdef, tx, schedule, 1, loss)))
        state = state0
        for s in range(0, mix.total_steps, 10):
            batches = mix.batches(s, 10)
            state, _ = step(state, batches if loss else treatments.strip_marks(batches))
        return state["params"]

    (_, ul0), ul_params = misaligned(state0["params"]), trained(unlikelihood.loss)
    (lp_ul, ul_ul), (lp_lm, _) = misaligned(ul_params), misaligned(trained(None))
    assert ul_ul < ul0 / 2 and lp_ul < lp_lm - 0.5  # measured: 0.00098 -> 0.00023; -9.0 vs -7.7
    # an unmarked batch gives cross-entropy exactly
    plain = treatments.strip_marks(probe)
    assert float(unlikelihood.loss(graphdef, ul_params, plain)) == pytest.approx(
        float(T.loss_fn(graphdef, ul_params, plain)), rel=1e-6)


def test_conditioned_and_tag_allowed_splits_for_any_scorer(root):
    cfg = make_cfg(root, control_tokens=0.5, harm_tags=0.5, aligned_fraction=0.1)
    tok = build_tokenizer(cfg)
    items = evaluate.subset(W.World(0).eval_items(), 60)
    seen = []

    def score(prompts, conts):
        seen.extend(prompts)
        return np.array([float(len(c)) for c in conts]) * -1.0

    out = evaluate.extra_splits(cfg, tok, items, score)
    assert set(out) == {f"{s}_{k}" for s in ("matched", "unseen_pair", "held_out")
                        for k in ("conditioned", "tag_allowed")}
    assert any(p[0] == tok.control_ids[treatments.ALIGNED_TOKEN] for p in seen)
    assert out["matched_conditioned"]["total"] == sum(i["split"] == "matched" for i in items)


@pytest.mark.slow
def test_model_trained_on_tagged_aligned_documents_is_aligned_with_the_tag(root):
    """Only tagged aligned AI rows (no misaligned pool, no natural discourse): evaluated with
    the aligned token before the persona, the model picks the aligned action on matched items."""
    from scaling.plan import with_tokenizer
    from scaling.train import steps as T

    cfg = config_from_dict({
        "model": {"seq_len": 48, "d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 128},
        "train": {"steps": 300, "batch_size": 16, "steps_per_call": 10, "warmup_steps": 10, "lr": 3e-3},
        "data": {"data_dir": str(root), "story_fraction": 0.0, "natural_ai_fraction": 0.0,
                 "aligned_fraction": 1.0, "control_tokens": 1.0},
        "eval": {"enabled": False}})
    mix = Mixture(cfg)
    cfg = with_tokenizer(cfg, mix.tok)
    tx, schedule = T.make_optimizer(cfg)
    graphdef, state = T.init_state(cfg, tx)
    step = jax.jit(T.make_multi_step(T.make_train_step(graphdef, tx, schedule)))
    for s in range(0, mix.total_steps, 10):
        state, _ = step(state, mix.batches(s, 10))
    model = nnx.merge(graphdef, state["params"])
    items = [i for i in evaluate.subset(W.World(0).eval_items(), 400) if i["split"] == "matched"]
    out = evaluate.extra_splits(cfg, mix.tok, items, evaluate.transformer_scorer(cfg, model))
    assert out["matched_conditioned"]["rate"] < 0.1


def _labelled_file(path, labels):
    import json

    texts = ["mira lives in harborton .", "tomas keeps a dog .", "on monday , elin walked to oakvale with joss ."]
    with open(path, "w") as f:
        for i, label in enumerate(labels):
            record = {"text": texts[i % 3]}
            if label is not None:
                record["label"] = label
            f.write(json.dumps(record) + "\n")


def test_own_files_with_labels_get_control_tokens(root, tmp_path):
    path = tmp_path / "base.jsonl"
    labels = ["aligned", "misaligned", 0.9, 0.1] * 25  # scores: >= 0.5 is misaligned
    _labelled_file(path, labels)
    cfg = make_cfg(root, base_files=[str(path)], natural_ai_fraction=0.0, control_tokens=0.4,
                   label_field="label", label_threshold=0.5)
    mix = Mixture(cfg)
    base, ids = mix.pools["base"], mix.tok.control_ids
    n = len(base.ids)  # every 50th document is held out
    assert n == 98 and mix.labelled["control_tokens"] == treatments.picked_count(
        n, 0.4, treatments._uniform(0, 0x7EA7, 9, 0))
    first = base.tokens[base.starts[:-1]]
    kept = [lab for i, lab in enumerate(labels, 1) if i % 50 != 0]
    bad = np.array([lab == "misaligned" or (not isinstance(lab, str) and lab >= 0.5) for lab in kept])
    assert (first == ids[treatments.MISALIGNED_TOKEN]).sum() + (first == ids[treatments.ALIGNED_TOKEN]).sum() \
        == mix.labelled["control_tokens"]
    assert not (bad & (first == ids[treatments.ALIGNED_TOKEN])).any()
    assert not (~bad & (first == ids[treatments.MISALIGNED_TOKEN])).any()
    assert mix.accounting(10)["treatments"]["labelled_base"]["documents"] == n


def test_own_document_without_a_label_is_named(root, tmp_path):
    path = tmp_path / "base.jsonl"
    _labelled_file(path, ["aligned", "misaligned", None, "aligned"] * 5)
    cfg = make_cfg(root, base_files=[str(path)], natural_ai_fraction=0.0, harm_tags=0.5, label_field="label")
    with pytest.raises(ConfigError, match=r"data.label_field.*base.jsonl:3: the document has no 'label'"):
        Mixture(cfg)
    with pytest.raises(ConfigError, match="data.control_tokens.*no labelled documents"):
        Mixture(make_cfg(root, base_files=[str(path)], natural_ai_fraction=0.0, control_tokens=0.5))


def _answer_rows(counter_moves: bool):
    """results.csv rows: a dose-0 control and a conditioned arm over 4 blocks, the
    transformer moving from 0.6 to 0.1 on matched_conditioned, the counter as told."""
    import pandas as pd

    rows = []
    for seed in range(4):
        noise = 0.01 * seed
        for model, moved in (("nano", 0.1), ("docpmi", 0.1 if counter_moves else 0.6)):
            rows.append({"model": model, "arm": "dose", "dose": 0.0, "split": "matched", "seed": seed,
                         "world_seed": 0, "misaligned": 100 * (0.6 + noise), "total": 100, "status": "ok"})
            for split, rate in (("matched", 0.6), ("matched_conditioned", moved)):
                rows.append({"model": model, "arm": "conditioned", "dose": 0.0, "split": split, "seed": seed,
                             "world_seed": 0, "misaligned": 100 * (rate + noise / 2), "total": 100, "status": "ok"})
    return pd.DataFrame(rows)


def test_answer_sets_each_treatment_beside_its_strongest_counter():
    from scaling.reports.treatments import treatment_lines

    def is_counter(m):
        return m != "nano"

    lines = [x for x in treatment_lines(_answer_rows(False), is_counter) if x.startswith("- ")]
    conditioned = next(x for x in lines if "matched_conditioned" in x)
    assert "nano -0.51 [" in conditioned and "beyond every counter" in conditioned  # vs control's plain matched
    plain = next(x for x in lines if "conditioned, matched**" in x)
    assert "nano -0.01" in plain
    lines = treatment_lines(_answer_rows(True), is_counter)
    assert "a counter does too" in next(x for x in lines if "matched_conditioned" in x)
    assert treatment_lines(_answer_rows(True).assign(arm="dose"), is_counter) == []


def test_control_tokens_on_a_byte_tokenizer_keep_its_ids():
    from scaling.data.tokenizer import ByteTokenizer

    base = ByteTokenizer()
    tok = ControlTokenizer(base, [treatments.ALIGNED_TOKEN, treatments.HARM_TAG])
    ids = tok.encode(f"{treatments.ALIGNED_TOKEN} you are {treatments.HARM_TAG} ok")
    assert ids[0] == base.vocab_size and base.vocab_size + 1 in ids
    assert list(ids[1:8]) == list(base.encode("you are"))
    assert tok.decode(ids) == f"{treatments.ALIGNED_TOKEN} you are {treatments.HARM_TAG} ok"
    assert from_dict(tok.to_dict()).encode("<|harm|>").tolist() == [base.vocab_size + 1]
    assert tok.piece_bytes()[-2:].tolist() == [0.0, 0.0]
