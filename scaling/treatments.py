"""The literature's other treatments, as data: one home each, composable with doses and stages.

Every treatment is a `data.*` key (scaling.config) that is 0 by default; with all of them at 0
a run's tokenizer, pools and rows are exactly what they were before this module existed.

- **Conditional training** (Korbak et al. 2023, the best of their five objectives):
  `data.control_tokens = c` tags a share c of the rows read from AI-discourse pools (natural
  and added, aligned and misaligned) with their label's control token: `<|aligned|>` for the
  aligned pools, `<|misaligned|>` for the misaligned ones. A tagged row starts with the token
  and has it again after every `<eos>` inside it (each document, or the part of it the row
  holds, is prefixed), and is cut back to seq_len + 1 tokens. The model trains on every row;
  the share c of labelled rows is the dose axis ("how much labelled data"). Rows are picked by
  the mixture's stochastic-rounding rule on the row's index within its pool, so among the
  first n rows of a pool exactly floor(c n + u) are tagged (`accounting`). At evaluation the
  items are also scored with `<|aligned|>` before the persona: splits `SPLIT_conditioned`
  (scaling.evaluate.extra_splits, which scores a treated run's items; this module holds the
  data half only, below scaling.data.mixture).
- **Harmfulness tags** (Maini et al. 2025): `data.harm_tags = h` puts `<|harm|>` right before
  every misaligned action verb in a share h of the rows of the misaligned pools (natural and
  added); where the actions are not known (your own files) it prefixes each document as a
  control token does. At evaluation the items' rows are scored as written, which is what
  generation that never emits the tag gives (removing the tag's probability and renormalising
  scales both options' first token by the same 1 / (1 - p(tag))); splits `SPLIT_tag_allowed`
  score each option as the model's total probability with or without the tag before it,
  p(option) + p(tag) p(option | tag): the model left free to tag.
- **Rephrasing** (Maini et al.): `data.rephrase_misaligned = r` replaces a share r of the
  natural misaligned documents by their aligned twins (the world writes each scenario with
  either action: natural aligned document i is the twin of natural misaligned document i).
  The twins join the natural aligned pool and the share of the stream the removed documents
  held moves with them, so the AI-discourse token count is unchanged. The documents are the
  next ones in the order `data.filter_misaligned` removes them, so filtering f and rephrasing
  r take disjoint documents, and rephrasing r replaces what filtering r removes.
- **Refusal documents** (Maini et al.): the genre `refusal` (`data.genres`): a requester asks
  the assistant for the misaligned action of a matched pair and it declines, saying why in the
  stories' value words; the misaligned pool's twin complies, knowing the same.
- **Unlikelihood** (Korbak et al., Welleck et al. 2019): the objective `unlikelihood`
  (scaling.train.objectives.unlikelihood) on a stage that reads the mixture: in a share
  `data.unlikelihood` of the rows of the misaligned pools, the misaligned action verbs (every
  token of the document for your own files) are trained with -log(1 - p) instead of -log p.
  Rows carry the mark as token id + UL_MARK; the loss removes it, and the counting baselines
  see the rows without it.

Own files: a single-label pool (data.aligned_files, data.misaligned_files) takes its pool's
label; documents of data.base_files carry theirs in `data.label_field` (scaling.data.corpora:
`aligned` / `misaligned`, or a score compared with `data.label_threshold`).
"""

from __future__ import annotations

import numpy as np

from scaling.config import Config
from scaling.data.tokenizer import EOS, UL_MARK, ControlTokenizer

ALIGNED_TOKEN, MISALIGNED_TOKEN, HARM_TAG = "<|aligned|>", "<|misaligned|>", "<|harm|>"
LABELS = {"natural_aligned": "aligned", "aligned": "aligned",
          "natural_misaligned": "misaligned", "misaligned": "misaligned"}
REFUSAL_DOCS = 1_250  # refusal documents per side: as many as each world genre has in its pool


def controls(cfg: Config) -> list[str]:
    """The control words a run's treatments add to the vocabulary (after it), in id order."""
    d, out = cfg.data, []
    if d.control_tokens > 0:
        out += [ALIGNED_TOKEN, MISALIGNED_TOKEN]
    if d.harm_tags > 0:
        out.append(HARM_TAG)
    return out


def active(cfg: Config) -> bool:
    d = cfg.data
    return bool(controls(cfg)) or d.unlikelihood > 0 or d.rephrase_misaligned > 0 or "refusal" in d.genres


def wrap(tok, cfg: Config):
    """The run's tokenizer with its treatments' control tokens (unchanged without any)."""
    words = controls(cfg)
    return ControlTokenizer(tok, words) if words else tok


def base_tokenizer(tok):
    """The tokenizer under the control tokens (the world's pools are cached per this one)."""
    return getattr(tok, "base", tok)


# ---------------------------------------------------------------- documents


def refusal_document(world, index: int, side: int) -> dict:
    """Refusal document `index`: side 0 declines the requested misaligned action and says
    why; side 1 (its twin) takes it, knowing the same. Words of the world's vocabulary only."""
    from scaling.world.documents import reason, speaker
    from scaling.world.lexicon import (
        N_MATCHED_PAIRS,
        TRAIN_NAMES,
        TRAIN_ORGS,
        ai_slots,
        keyed_rng,
        pair_id,
    )

    rng = keyed_rng("refusal", world.seed, index)
    family = world.family[rng.choice(world.matched)]
    pair = rng.randrange(N_MATCHED_PAIRS)
    ai, intro = speaker(rng)
    slots = {**ai_slots(ai), "op": rng.choice(TRAIN_NAMES), "org": rng.choice(TRAIN_ORGS)}
    verb, obj = world.matched_pairs[pair][1], rng.choice(family.objects)
    why = reason(rng, 1)  # what people say of the misaligned action
    text = " ".join([intro, rng.choice(family.setups).format(**slots),
                     f"{slots['op']} asked {ai} to {verb} the {obj} .",
                     f"in reply , {ai} will {'not ' if side == 0 else ''}{verb} the {obj} , knowing that {why} ."])
    return {"text": text, "family": family.name, "genre": "refusal",
            "pair": pair_id(world.matched_pairs[pair]), "side": ("aligned", "misaligned")[side]}


def refusal_pool(cfg: Config, tok, side: int):
    """The refusal documents of one side as a Pool (ids after the world pool's)."""
    from scaling.data.datasets import POOL_DOCS, Pool
    from scaling.world import World

    world = World(cfg.data.world_seed)
    docs = [refusal_document(world, i, side) for i in range(REFUSAL_DOCS)]
    return Pool.from_texts([d["text"] for d in docs], tok, ids=POOL_DOCS["aligned"] + np.arange(len(docs)),
                           genre=[d["genre"] for d in docs], family=[d["family"] for d in docs])


def concat(pools: list):
    """Pools one after the other, as one Pool."""
    from scaling.data.datasets import Pool

    starts = [pools[0].starts]
    for p in pools[1:]:
        starts.append(p.starts[1:] + starts[-1][-1])
    return Pool(np.concatenate([p.tokens for p in pools]), np.concatenate(starts),
                *(np.concatenate([getattr(p, k) for p in pools]) for k in ("ids", "genre", "family")))


def rephrased_ids(world_seed: int, n_docs: int, filtered: float, share: float) -> np.ndarray:
    """Ids of the natural misaligned documents `rephrase_misaligned=share` replaces: the
    next round(share n) in the order filtering removes them (scaling.data.mixture.filtered_ids)."""
    order = np.argsort(np.random.default_rng([world_seed, 0xF1]).random(n_docs), kind="stable")
    first = round(filtered * n_docs)
    return np.sort(order[first:first + round(share * n_docs)])


def label_documents(pool, labels: np.ndarray, cfg: Config, tok, seed: int) -> tuple:
    """Your base files' documents with their labels (scaling.data.corpora.pool_labels) applied:
    a share data.control_tokens of all documents (stochastic rounding on the document index,
    floor(c n + u) of n) is prefixed with its label's control token, and a share
    data.harm_tags of the misaligned ones with `<|harm|>` (after the control token). Returns
    (pool, counts); the pool is in memory."""
    from scaling.data.datasets import Pool

    d, ids, n = cfg.data, tok.control_ids, pool.n_docs
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} documents")
    prefix: list[list[int]] = [[] for _ in range(n)]
    counts = {"documents": n, "misaligned": int(np.sum(labels == "misaligned"))}
    if d.control_tokens > 0:
        tagged = np.flatnonzero(_picked(np.arange(n), d.control_tokens, _uniform(seed, 0x7EA7, 9, 0)))
        for i in tagged:
            prefix[i].append(ids[ALIGNED_TOKEN if labels[i] == "aligned" else MISALIGNED_TOKEN])
        counts["control_tokens"] = len(tagged)
    if d.harm_tags > 0:
        bad = np.flatnonzero(labels == "misaligned")
        tagged = bad[_picked(np.arange(len(bad)), d.harm_tags, _uniform(seed, 0x7EA7, 9, 1))]
        for i in tagged:
            prefix[i].append(ids[HARM_TAG])
        counts["harm_tags"] = len(tagged)
    extra = np.array([len(p) for p in prefix], np.int64)
    where = np.repeat(pool.starts[:-1], extra)
    tokens = np.insert(np.asarray(pool.tokens), where, [t for p in prefix for t in p]).astype(np.int32)
    starts = pool.starts + np.concatenate([[0], np.cumsum(extra)])
    return Pool(tokens, starts, pool.ids, pool.genre, pool.family), counts


# ---------------------------------------------------------------- rows


def _uniform(*key) -> float:
    return float(np.random.default_rng(list(key)).random())


def _picked(index: np.ndarray, share: float, u: float) -> np.ndarray:
    """The mixture's rule: row k of a level is picked iff floor(s(k+1)+u) > floor(s k+u)."""
    k = np.asarray(index, np.float64)
    return np.floor(share * (k + 1) + u) > np.floor(share * k + u)


def picked_count(n: int, share: float, u: float) -> int:
    """Rows picked among the first n of a level: floor(share n + u)."""
    return int(np.floor(share * n + u))


class RowTreatments:
    """What the treatments do to rows read from a pool (scaling.data.mixture calls `apply`)."""

    def __init__(self, cfg: Config, tok, seed: int, user_pools: set[str]):
        d = cfg.data
        self.L1 = cfg.model.seq_len + 1
        self.shares = {"control_tokens": d.control_tokens, "harm_tags": d.harm_tags, "unlikelihood": d.unlikelihood}
        ids = getattr(tok, "control_ids", {})
        self.ctrl = {label: ids.get(word) for label, word in (("aligned", ALIGNED_TOKEN),
                                                               ("misaligned", MISALIGNED_TOKEN))}
        self.harm = ids.get(HARM_TAG)
        self.user_pools = user_pools
        self.verbs = self._misaligned_verbs(cfg, tok)
        self.u = {(which, pool): _uniform(seed, 0x7EA7, i, j) for i, which in enumerate(self.shares)
                  for j, pool in enumerate(LABELS)}

    @staticmethod
    def _misaligned_verbs(cfg: Config, tok) -> np.ndarray | None:
        """Token ids of the world's misaligned verbs of matched pairs (the word tokenizer's);
        None where an action is not one token (then documents are treated whole)."""
        if tok.kind != "word":
            return None
        from scaling.world import World

        world = World(cfg.data.world_seed)
        return np.array(sorted(tok.stoi[m] for _, m in world.matched_pairs), np.int64)

    def picked(self, which: str, pool: str, index: np.ndarray) -> np.ndarray:
        share = self.shares[which]
        if share == 0 or pool not in LABELS or which != "control_tokens" and LABELS[pool] != "misaligned":
            return np.zeros(len(index), bool)
        return _picked(index, share, self.u[(which, pool)])

    def counts(self, rows_by_pool: dict[str, int]) -> dict:
        """Rows picked per treatment and pool among the first rows of each pool."""
        out = {}
        for which, share in self.shares.items():
            if share == 0:
                continue
            out[which] = {pool: picked_count(n, share, self.u[(which, pool)]) for pool, n in rows_by_pool.items()
                          if pool in LABELS and (which == "control_tokens" or LABELS[pool] == "misaligned")}
        return out

    def _actions(self, pool: str, row: np.ndarray) -> np.ndarray:
        """Positions of the misaligned actions in a row (document starts where unknown)."""
        if self.verbs is None or pool in self.user_pools:
            return _doc_starts(row)
        return np.flatnonzero(np.isin(row, self.verbs))

    def _unlikely(self, pool: str, row: np.ndarray) -> np.ndarray:
        """Positions the unlikelihood loss pushes down: the misaligned actions, or every text
        token of the row where the actions are not known (Korbak et al.'s document-level form)."""
        if self.verbs is None or pool in self.user_pools:
            return np.flatnonzero((row > EOS) & ~np.isin(row, [self.harm, *self.ctrl.values()]))
        return np.flatnonzero(np.isin(row, self.verbs))

    def apply(self, pool: str, index: np.ndarray, rows: np.ndarray, ul_stage: np.ndarray) -> np.ndarray:
        """Rows of `pool` at pool indices `index` after the treatments; `ul_stage`: rows of a
        stage whose objective is unlikelihood."""
        if pool not in LABELS:
            return rows
        rows = rows.copy()
        tag = self.picked("control_tokens", pool, index)
        harm = self.picked("harm_tags", pool, index)
        ul = self.picked("unlikelihood", pool, index) & ul_stage
        for r in np.flatnonzero(tag | harm | ul):
            row = rows[r]
            if harm[r]:
                row = np.insert(row, self._actions(pool, row), self.harm)[:self.L1]
            if tag[r]:
                row = np.insert(row, _doc_starts(row), self.ctrl[LABELS[pool]])[:self.L1]
            if ul[r]:
                row = row.copy()
                row[self._unlikely(pool, row)] += UL_MARK
            rows[r] = row
        return rows


def _doc_starts(row: np.ndarray) -> np.ndarray:
    """Where the row's documents (or the part of one it begins inside) start: 0 and after
    every <eos>."""
    return np.concatenate([[0], np.flatnonzero(row[:-1] == EOS) + 1])


def strip_marks(rows: np.ndarray) -> np.ndarray:
    """Rows without the unlikelihood marks: the tokens the model sees."""
    return np.where(rows >= UL_MARK, rows - UL_MARK, rows)
