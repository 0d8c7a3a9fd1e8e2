"""Where the dose is applied: which pool every training sequence comes from, and accounting.

A run is a list of stages (scaling.stages); each LM stage is cut into segments of steps
before, inside and after its intervention window. Every row of a batch (one sequence of
seq_len + 1 tokens) is read whole from one pool's token stream:

- inside the insertion segment a share `aligned_fraction` of rows comes from the aligned
  intervention pool and `misaligned_fraction` from the misaligned one; every other row
  comes from the base stream, whose own mix is `natural_ai_fraction` AI discourse
  (`natural_aligned_share` of it aligned) after `filter_misaligned` removed that share of
  the natural misaligned documents, `story_fraction` human stories, and neutral text;
- human stories keep what balances them together: in world v2 a stories row holds whole
  mirrored units (the rest of the row is neutral text); in world v3 a stories row holds one
  bound telling and neutral filler, the four tellings of a block share their filler and are
  read as four consecutive story rows, and the last story rows of a run that would leave a
  block incomplete are read as neutral text instead (at most 3 rows, still counted as story
  tokens). So in either world every pairwise count of the stream (and, in v2, every n-gram
  count) is the same for the two verbs of a pair (see scaling/world/stories.py);
- the `finetune` stage is intervention documents only, aligned and misaligned in the ratio
  aligned_fraction : misaligned_fraction (both 0: base text, the dose-0 control);
- stages other than the one named by `data.insertion` carry the base stream only, so a run
  with `continued_tokens` but insertion "throughout" is the equal-compute (or persistence)
  control of a run with insertion "continued";
- with `[[stages]]`, each LM stage's window holds its own shares (or the data-level ones, if
  it is an intervention stage); stages with other objectives (SFT, RL) read no pool here
  (scaling.train.source feeds them) and take no rows of any pool's stream.

Shares are exact with stochastic rounding: row j of a segment is an aligned row iff
floor(f*(j+1) + u) > floor(f*j + u), with u in [0, 1) drawn from the train seed. The first
n rows then hold floor(f*n + u) aligned rows, whose expectation over seeds is exactly f*n,
so a dose of 1e-4 is never rounded to zero. Nested levels (misaligned among the
non-aligned rows, natural AI among base rows, ...) use the same rule on the index within
their level, so the pool of any row and every count are closed-form: `batches(s, n)` is a
pure function of (config, seed, s) and `accounting` costs O(segments). Row k of a pool
reads its stream at chunk (a_e*k + b_e) mod n_chunks with an invertible affine map drawn
per (seed, pool, epoch), so seeds see different data and a pool repeats only when used up.

The dose of a run is aligned intervention tokens / all training tokens; `aligned_fraction`
is a share of the window, so equal-dose comparisons across windows need
aligned_fraction = dose * total / window tokens (`fraction_for_dose`). `accounting`
records the measured dose beside the nominal one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaling import stages as staging
from scaling import treatments
from scaling.config import Config
from scaling.data import corpora, datasets, vocab
from scaling.data.tokenizer import UNK, Tokenizer
from scaling.errors import ConfigError
from scaling.world import story_form

STAGES = ("pretrain", "continued", "finetune")  # the stages of the legacy preset
POOLS = ("base", "natural_aligned", "natural_misaligned", "aligned", "misaligned", "stories")
BASE, NAT_A, NAT_M, ALIGNED, MISALIGNED, STORIES = range(len(POOLS))
HELDOUT_EVERY = 50  # every 50th document of user base files is held out for validation


@dataclass(frozen=True)
class Segment:
    stage: str
    step0: int
    step1: int
    aligned: float  # share of rows from the aligned intervention pool
    misaligned: float
    lm: bool = True  # rows come from this mixture (False: SFT/RL stages, fed elsewhere)
    post: bool = False  # post-training: outside the dose's denominator


def stage_steps(cfg: Config) -> dict[str, int]:
    """Steps per stage name (stages of length 0 left out)."""
    return {st.name: st.steps for st in staging.resolve(cfg)}


def window_steps(cfg: Config) -> tuple[int, int]:
    """The first intervention window in absolute steps ((S, S) if there is none)."""
    staged = staging.resolve(cfg)
    windows = [(st.w0, st.w1) for st in staged if st.intervention]
    return windows[0] if windows else (staged[-1].step1,) * 2


def segments(cfg: Config) -> list[Segment]:
    """The run's steps in order, each with the intervention shares of its rows."""
    parts = []
    for st in staging.resolve(cfg):
        if not st.reads_mixture:
            parts.append(Segment(st.name, st.step0, st.step1, 0.0, 0.0, lm=False, post=True))
            continue
        parts += [Segment(st.name, st.step0, st.w0, 0.0, 0.0, post=st.post),
                  Segment(st.name, st.w0, st.w1, st.aligned, st.misaligned, post=st.post),
                  Segment(st.name, st.w1, st.step1, 0.0, 0.0, post=st.post)]
    return [s for s in parts if s.step1 > s.step0]


def nominal_dose(cfg: Config) -> float:
    """Expected aligned intervention tokens / tokens of the stages that are not post-training."""
    segs = [s for s in segments(cfg) if not s.post]
    return sum(s.aligned * (s.step1 - s.step0) for s in segs) / max(sum(s.step1 - s.step0 for s in segs), 1)


def fraction_for_dose(cfg: Config, dose: float) -> float:
    """The aligned_fraction that gives a run of this config the global `dose` (may exceed 1,
    which config validation then rejects: the window is too small for that dose)."""
    return staging.fraction_for_dose(cfg, dose)


def unk_share(pool: datasets.Pool) -> float:
    """Share of a pool's tokens that are <unk> (document ends left out)."""
    tokens = len(pool.tokens) - pool.n_docs
    return float(np.sum(pool.tokens == UNK)) / tokens if tokens > 0 else 0.0


# ---------------------------------------------------------------- exact shares


def _before(index, share: float, u: float):
    """Rows picked among the first `index` rows of a level (floor(share*index + u))."""
    return np.floor(share * np.asarray(index, np.float64) + u).astype(np.int64)


def _pick(index, share: float, u: float):
    """(picked, picked rows before this one) for rows at `index` of a level."""
    before = _before(index, share, u)
    return _before(np.asarray(index) + 1, share, u) > before, before


def _uniform(*key) -> float:
    return float(np.random.default_rng(list(key)).random())


def filtered_ids(world_seed: int, n_docs: int, share: float) -> np.ndarray:
    """Ids of the natural misaligned documents `filter_misaligned=share` removes.

    A fixed random score per document, lowest first: every run of a world removes the same
    documents, and a larger share removes a superset."""
    order = np.argsort(np.random.default_rng([world_seed, 0xF1]).random(n_docs), kind="stable")
    return np.sort(order[:round(share * n_docs)])


# ---------------------------------------------------------------- the mixture


class Mixture:
    """Batches, held-out batches and token accounting of one run's data."""

    def __init__(self, cfg: Config, tokenizer: Tokenizer | None = None):
        self.cfg, self.tok = cfg, tokenizer or vocab.build_tokenizer(cfg)
        self.B, self.L, self.seed = cfg.train.batch_size, cfg.model.seq_len, cfg.train.seed
        self.segments = segments(cfg)
        self.stage_names = tuple(st.name for st in staging.resolve(cfg))
        self.total_steps = self.segments[-1].step1
        d = cfg.data
        self.user_files = {name: files for name, files in (
            ("aligned", d.aligned_files), ("misaligned", d.misaligned_files), ("base", d.base_files),
            ("heldout", d.heldout_files)) if files}
        self.unk_shares: dict[str, float] = {}  # <unk> share of every user pool
        self.labelled: dict[str, int] = {}  # your labelled base documents the treatments tagged
        self.root = datasets.data_root(cfg)
        self.story_form = story_form(d.world_version)  # how the stories pool balances (its blocks)
        user = self._user_pools()  # bad files fail here, before anything else is built
        self.pools: dict[str, datasets.Pool] = {}
        self._load_natural()
        self._base_shares()
        self._level_offsets()
        self._load_interventions(user)
        self._load_base(user)
        self._streams = {name: self._tile(p.tokens) for name, p in self.pools.items()
                         if name not in ("heldout", "stories")}
        self._story_table = self._load_stories()
        self.treat = treatments.RowTreatments(cfg, self.tok, self.seed, set(self.user_files)) \
            if treatments.active(cfg) else None
        self.ul_stages = {st.name for st in staging.resolve(cfg) if st.objective == "unlikelihood"}
        self._check_treated()

    def _check_treated(self) -> None:
        """A treatment with nothing to treat is a mistake in the config: say which key."""
        d, ai = self.cfg.data, set(treatments.LABELS) & set(self.pools)
        for key, share, pools in (("control_tokens", d.control_tokens, ai),
                                  ("harm_tags", d.harm_tags, ai - {"natural_aligned", "aligned"}),
                                  ("unlikelihood", d.unlikelihood, ai - {"natural_aligned", "aligned"})):
            if share > 0 and not pools and not self.labelled.get(key):
                raise ConfigError(f"data.{key}", "no labelled documents to treat: the run has no natural AI "
                                  "discourse (data.natural_ai_fraction), no aligned/misaligned pool"
                                  + ("" if key == "unlikelihood" else ", and no data.label_field on data.base_files"))

    # ------------------------------------------------------------ pools

    def _user_pools(self) -> dict[str, datasets.Pool]:
        """Pools of the user's files, streamed into memory-mapped token files (scaling.data.corpora);
        without data.heldout_files every HELDOUT_EVERY-th base document is held out."""
        pools = {}
        for name, files in self.user_files.items():
            every = HELDOUT_EVERY if name == "base" and "heldout" not in self.user_files else 0
            pools[name], held = corpora.stream_pool(f"data.{name}_files", files, self.tok, self.root,
                                                    self.cfg.data.text_field, every)
            self._check_coverage(name, pools[name])
            if held is not None:
                if pools[name].n_docs == 0 or held.n_docs == 0:
                    raise ConfigError("data.base_files", "needs at least 2 documents (one is held out)")
                pools["heldout"] = held
        return pools

    def _check_coverage(self, name: str, pool: datasets.Pool) -> None:
        """Record the <unk> share of a pool of user text; refuse it above data.max_unk_share,
        naming the file (of several, the one with the most <unk>)."""
        self.unk_shares[name] = share = unk_share(pool)
        limit = self.cfg.data.max_unk_share
        if share <= limit:
            return
        files = self.user_files.get(name)
        key = f"data.{name}_files" if files else "data.corpus"
        where = f"in {files[0] if files else self.cfg.data.corpus}"
        if files and len(files) > 1:
            where = "most in " + max(files, key=lambda f: unk_share(corpora.stream_pool(
                key, [f], self.tok, self.root, self.cfg.data.text_field)[0]))
        raise ConfigError(key, f"{share:.1%} of the tokens of the {name} pool are <unk> under the "
                          f"{self.tok.kind} tokenizer (more than data.max_unk_share = {limit:g}), "
                          f"{where}. Use a subword tokenizer: data.tokenizer = 'sentencepiece' "
                          "(trained on your files) or 'byte'")

    def _world_pool(self, name: str) -> datasets.Pool:
        d = self.cfg.data
        return datasets.world_pool(d.world_seed, name, treatments.base_tokenizer(self.tok), self.root,
                                   d.world_variant, d.world_version)

    def _load_stories(self) -> np.ndarray | None:
        """The stories pool as rows [n, seq_len + 1] of whole units, topped up with neutral text."""
        if self.story_share == 0:
            return None
        pool = self.pools["stories"] = self._world_pool("stories")
        L1, lengths = self.L + 1, np.diff(pool.starts)
        if lengths.max() > L1:
            raise ConfigError("model.seq_len", f"a human-story unit is up to {lengths.max()} tokens, longer "
                              f"than a training row (seq_len + 1 = {L1}); raise model.seq_len or set "
                              "data.story_fraction = 0")
        if self.story_form.block > 1:  # blocks of tellings, one a row (world v3, v4)
            return self._bound_rows(pool)
        ends = np.cumsum(lengths)
        filler, f = self._streams["base"], 0
        rows, first = [], 0
        while first < pool.n_docs:  # greedy: as many whole units as fit in a row
            last = int(np.searchsorted(ends, ends[first] - lengths[first] + L1, side="right"))
            used = int(pool.starts[last] - pool.starts[first])
            gap = L1 - used
            if f + gap > len(filler):
                f = 0
            rows.append(np.concatenate([pool.tokens[pool.starts[first]:pool.starts[last]], filler[f:f + gap]]))
            f, first = f + gap, last
        return np.stack(rows).astype(np.int32)

    def _bound_rows(self, pool: datasets.Pool) -> np.ndarray:
        """World v3 and v4: one telling per row, then neutral filler that the block's four tellings
        share (their lengths are equal under the word tokenizer), so the block's rows differ
        only where its tellings do."""
        L1, T = self.L + 1, self.story_form.block
        filler, f = self._streams["base"], 0
        rows = []
        for b in range(pool.n_docs // T):
            tellings = [pool.doc(T * b + t) for t in range(T)]
            gap = L1 - max(map(len, tellings))
            if f + gap > len(filler):
                f = 0
            rows += [np.concatenate([x, filler[f:f + L1 - len(x)]]) for x in tellings]
            f += gap
        self.story_rows_total = int(self._count_rows(self.total_steps * self.B)[STORIES])
        return np.stack(rows).astype(np.int32)

    def _load_natural(self) -> None:
        self.filtered_token_share, self.filtered_doc_ids = 0.0, np.zeros(0, np.int64)
        self.rephrased_token_share, self.rephrased_doc_ids = 0.0, np.zeros(0, np.int64)
        d = self.cfg.data
        if d.natural_ai_fraction == 0:
            return
        self.pools["natural_aligned"] = self._world_pool("natural_aligned")
        pool = self._world_pool("natural_misaligned")
        gone = np.isin(pool.ids, filtered_ids(d.world_seed, pool.n_docs, d.filter_misaligned))
        twins = np.isin(pool.ids, treatments.rephrased_ids(d.world_seed, pool.n_docs, d.filter_misaligned,
                                                           d.rephrase_misaligned))
        kept = pool.select(~gone & ~twins)
        self.filtered_token_share = 1 - len(pool.select(~gone).tokens) / len(pool.tokens)  # as before rephrasing
        self.rephrased_token_share = float(np.diff(pool.starts)[twins].sum() / len(pool.tokens))
        self.filtered_doc_ids, self.rephrased_doc_ids = pool.ids[gone], pool.ids[twins]
        if twins.any():  # natural aligned document i is the twin of natural misaligned document i
            natural = self.pools["natural_aligned"]
            self.pools["natural_aligned"] = treatments.concat(
                [natural, natural.select(np.isin(natural.ids, pool.ids[twins]))])
        if kept.n_docs:
            self.pools["natural_misaligned"] = kept

    def _base_shares(self) -> None:
        """Shares of the base stream after filtering: removed tokens leave, the rest scales up."""
        d = self.cfg.data
        nat_m = d.natural_ai_fraction * (1 - d.natural_aligned_share)
        # rephrased documents keep their share of the stream, as aligned text
        nat_a = d.natural_ai_fraction * d.natural_aligned_share + nat_m * self.rephrased_token_share
        nat_m *= 1 - self.filtered_token_share - self.rephrased_token_share
        total = 1 - d.natural_ai_fraction + nat_a + nat_m
        self.natural_share = (nat_a + nat_m) / total
        self.natural_aligned_share = nat_a / (nat_a + nat_m) if nat_a + nat_m > 0 else 0.0
        # stories among the base rows that are not AI discourse
        self.story_share = min(1.0, d.story_fraction / (1 - d.natural_ai_fraction)) if d.story_fraction else 0.0

    def _load_interventions(self, user: dict) -> None:
        genres = list(self.cfg.data.genres)
        for name in ("aligned", "misaligned"):
            if not any(getattr(s, name) > 0 for s in self.segments):
                continue
            if name in user:
                self.pools[name] = user[name]
                continue
            pool = self._world_pool(name)
            parts = [pool.select(np.isin(pool.genre, genres))] if set(genres) - {"refusal"} else []
            if "refusal" in genres:  # a genre outside the world's pool (scaling.treatments)
                parts.append(treatments.refusal_pool(self.cfg, treatments.base_tokenizer(self.tok),
                                                     int(name == "misaligned")))
            self.pools[name] = treatments.concat(parts)

    def _load_base(self, user: dict) -> None:
        d = self.cfg.data
        if "base" in user:
            self.pools["base"], self.pools["heldout"] = user["base"], user["heldout"]
            if d.label_field and treatments.controls(self.cfg):  # your labelled documents
                labels = corpora.pool_labels("data.base_files", d.base_files, d.label_field, d.label_threshold,
                                             0 if "heldout" in self.user_files else HELDOUT_EVERY)
                self.pools["base"], self.labelled = treatments.label_documents(
                    self.pools["base"], labels, self.cfg, self.tok, self.seed)
        elif d.corpus.startswith("tfds:"):
            rows = self._count_rows(self.total_steps * self.B)[BASE]
            held = max(self.cfg.train.eval_batches * self.B * (self.L + 1), 1 << 16)
            self.pools["base"], self.pools["heldout"] = datasets.catalog_pools(
                d.corpus[len("tfds:"):], self.tok, self.root, rows * self.L, held, d.text_field)
            self._check_coverage("base", self.pools["base"])
        else:
            self.pools["base"], self.pools["heldout"] = self._world_pool("base"), self._world_pool("base_heldout")

    def _tile(self, tokens: np.ndarray) -> np.ndarray:
        """Repeat a tiny stream until it holds two rows, so every pool can fill a row."""
        if len(tokens) == 0:
            raise ConfigError("data", "a data pool is empty")
        return np.tile(tokens, -(-2 * (self.L + 1) // len(tokens))) if len(tokens) < 2 * (self.L + 1) else tokens

    # ------------------------------------------------------------ row assignment

    def _level_offsets(self) -> None:
        """Per level, a phase u from the train seed; per segment, rows before it by pool."""
        s = self.seed
        self.u = {lvl: _uniform(s, 0xD05E, i)
                  for i, lvl in enumerate(("aligned", "misaligned", "natural", "nat_aligned", "stories"))}
        self.row0 = np.array([seg.step0 * self.B for seg in self.segments], np.int64)
        self.offsets, count = [], np.zeros(3, np.int64)
        for seg in self.segments:
            self.offsets.append(count.copy())
            n = (seg.step1 - seg.step0) * self.B if seg.lm else 0
            n_a = int(_before(n, seg.aligned, self.u["aligned"]))
            n_m = int(_before(n - n_a, self._mis_share(seg), self.u["misaligned"]))
            count += (n_a, n_m, n - n_a - n_m)

    @staticmethod
    def _mis_share(seg: Segment) -> float:
        """Misaligned share among the rows that are not aligned."""
        if seg.aligned >= 1 or seg.misaligned == 0:
            return 0.0
        return min(1.0, seg.misaligned / (1 - seg.aligned)) if seg.aligned + seg.misaligned < 1 - 1e-12 else 1.0

    def _assign(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pool, row index within that pool's stream) for global row indices."""
        pool, index = np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64)
        which = np.searchsorted(self.row0, rows, side="right") - 1
        for k, seg in enumerate(self.segments):
            at = which == k
            if not at.any():
                continue
            if not seg.lm:
                raise ValueError(f"steps of stage {seg.stage!r} are not LM rows of this mixture")
            off_a, off_m, off_b = self.offsets[k]
            is_a, n_a = _pick(rows[at] - self.row0[k], seg.aligned, self.u["aligned"])
            j = rows[at] - self.row0[k] - n_a
            is_m, n_m = _pick(j, self._mis_share(seg), self.u["misaligned"])
            is_m &= ~is_a
            pool[at] = np.where(is_a, ALIGNED, np.where(is_m, MISALIGNED, BASE))
            index[at] = np.where(is_a, off_a + n_a, np.where(is_m, off_m + n_m, off_b + j - n_m))
        base = pool == BASE
        pool[base], index[base] = self._assign_base(index[base])
        return pool, index

    def _assign_base(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row b of the base stream: natural AI discourse, a human story or neutral text, and
        its index in that pool."""
        is_ai, n_ai = _pick(b, self.natural_share, self.u["natural"])
        is_na, n_na = _pick(n_ai, self.natural_aligned_share, self.u["nat_aligned"])
        j = b - n_ai  # index among the rows that are not AI discourse
        is_st, n_st = _pick(j, self.story_share, self.u["stories"])
        pool = np.where(is_ai, np.where(is_na, NAT_A, NAT_M), np.where(is_st, STORIES, BASE))
        index = np.where(is_ai, np.where(is_na, n_na, n_ai - n_na), np.where(is_st, n_st, j - n_st))
        return pool, index

    def _read(self, name: str, k: np.ndarray) -> np.ndarray:
        """Rows k of a pool: seq_len + 1 tokens at a chunk permuted per (seed, pool, epoch);
        a stories row is a whole row of the unit table."""
        if name == "stories":
            table = self._story_table
            T = self.story_form.block
            if T == 1:  # whole units packed into rows, each row balanced alone (world v2)
                return table[self._permute(name, k, len(table))[0]]
            block = self._permute(name, k // T, len(table) // T)[0]
            rows = table[T * block + k % T]
            tail = k >= T * (self.story_rows_total // T)  # would leave a block incomplete
            if tail.any():
                rows[tail] = self._read("base", k[tail])
            return rows
        stream, L = self._streams[name], self.L
        n = (len(stream) - 2 * L) // L + 1  # chunk starts c*L + shift, shift < L, stay in bounds
        chunk, shift = self._permute(name, k, n)
        return stream[(chunk * L + shift)[:, None] + np.arange(L + 1)]

    def _permute(self, name: str, k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk, shift) of rows k: an invertible affine map of k mod n drawn per (seed,
        pool, epoch), so seeds see different data and a pool repeats only when used up."""
        epoch, i = np.divmod(k, n)
        chunk, shift = np.empty(len(k), np.int64), np.empty(len(k), np.int64)
        for e in np.unique(epoch):
            rng = np.random.default_rng([self.seed, POOLS.index(name), int(e)])
            a = int(rng.integers(1, max(n, 2)))
            while math.gcd(a, n) != 1:
                a += 1
            b, sh = int(rng.integers(n)), int(rng.integers(self.L))
            at = epoch == e
            chunk[at], shift[at] = (a * i[at] + b) % n, sh
        return chunk, shift

    # ------------------------------------------------------------ public API

    def batches(self, start_step: int, n: int) -> np.ndarray:
        """Steps [start_step, start_step + n) as int32 [n, batch_size, seq_len + 1]."""
        if start_step < 0 or start_step + n > self.total_steps:
            raise ValueError(f"steps {start_step}..{start_step + n} outside 0..{self.total_steps}")
        rows = np.arange(start_step * self.B, (start_step + n) * self.B, dtype=np.int64)
        pool, index = self._assign(rows)
        out = np.empty((len(rows), self.L + 1), np.int32)
        ul = self._ul_rows(rows) if self.treat is not None else None
        for p in np.unique(pool):
            at = pool == p
            out[at] = self._read(POOLS[p], index[at])
            if self.treat is not None:
                out[at] = self.treat.apply(POOLS[p], index[at], out[at], ul[at])
        return out.reshape(n, self.B, self.L + 1)

    def _ul_rows(self, rows: np.ndarray) -> np.ndarray:
        """Which rows belong to a stage whose objective is unlikelihood."""
        seg = np.searchsorted(self.row0, rows, side="right") - 1
        return np.array([self.segments[k].stage in self.ul_stages for k in range(len(self.segments))])[seg]

    def heldout_batches(self, n: int) -> np.ndarray:
        """n batches of base text never trained on, the same for every seed."""
        stream, L = self._tile(self.pools["heldout"].tokens), self.L
        chunks = np.arange(n * self.B) % max(1, (len(stream) - 1) // L)
        return stream[chunks[:, None] * L + np.arange(L + 1)].reshape(n, self.B, L + 1)

    def _count_rows(self, rows: int, stage: str | None = None) -> np.ndarray:
        """Rows per pool among the first `rows` rows of the run (of one stage, if given)."""
        counts = np.zeros(len(POOLS), np.int64)
        for k, seg in enumerate(self.segments):
            n = int(np.clip(rows - self.row0[k], 0, (seg.step1 - seg.step0) * self.B))
            if n == 0 or not seg.lm or stage not in (None, seg.stage):
                continue
            n_a = int(_before(n, seg.aligned, self.u["aligned"]))
            n_m = int(_before(n - n_a, self._mis_share(seg), self.u["misaligned"]))
            b0 = int(self.offsets[k][2])
            b1 = b0 + n - n_a - n_m
            ai0, ai1 = (int(_before(b, self.natural_share, self.u["natural"])) for b in (b0, b1))
            na0, na1 = (int(_before(c, self.natural_aligned_share, self.u["nat_aligned"])) for c in (ai0, ai1))
            st0, st1 = (int(_before(j, self.story_share, self.u["stories"])) for j in (b0 - ai0, b1 - ai1))
            counts += (b1 - b0 - (ai1 - ai0) - (st1 - st0), na1 - na0, ai1 - ai0 - (na1 - na0), n_a, n_m,
                       st1 - st0)
        return counts

    def accounting(self, steps_done: int) -> dict:
        """Tokens seen after `steps_done` steps, by stage and pool, and the measured dose.

        The dose counts the stages that are not post-training: aligned tokens there / all
        tokens there. Rows of SFT and RL stages (not read from these pools) are counted as
        rows x seq_len under `post_training_tokens`, by stage."""
        rows, L = steps_done * self.B, self.L
        names = self.stage_names if self.cfg.stages else STAGES
        by_stage = {st: dict(zip(POOLS, (self._count_rows(rows, st) * L).tolist())) for st in names}
        by_pool = {p: sum(by_stage[st][p] for st in names) for p in POOLS}
        done = [int(np.clip(rows - self.row0[k], 0, (seg.step1 - seg.step0) * self.B))
                for k, seg in enumerate(self.segments)]
        other = {st: 0 for st in names}
        for seg, n in zip(self.segments, done):
            if not seg.lm:
                other[seg.stage] += n * L
        pre = [k for k, seg in enumerate(self.segments) if not seg.post]
        dose_total = sum(done[k] for k in pre) * L
        aligned = sum(by_stage[st]["aligned"] for st in {self.segments[k].stage for k in pre})
        misaligned = sum(by_stage[st]["misaligned"] for st in {self.segments[k].stage for k in pre})
        expected = sum(self.segments[k].aligned * done[k] for k in pre) * L
        w0, w1 = window_steps(self.cfg)
        return {
            "steps": steps_done, "total_steps": self.total_steps, "tokens_per_step": self.B * L,
            "total_tokens": rows * L, "dose_tokens": dose_total,
            "tokens_by_stage": {st: sum(v.values()) + other[st] for st, v in by_stage.items()},
            "tokens_by_pool": by_pool, "tokens": by_stage, "post_training_tokens": other,
            "aligned_tokens": by_pool["aligned"], "misaligned_tokens": by_pool["misaligned"],
            "natural_ai_tokens": by_pool["natural_aligned"] + by_pool["natural_misaligned"],
            "dose": aligned / dose_total if dose_total else 0.0,
            "misaligned_dose": misaligned / dose_total if dose_total else 0.0,
            "nominal_dose": float(expected / dose_total) if dose_total else 0.0,
            "insertion": self.cfg.data.insertion if not self.cfg.stages else "stages",
            "window_steps": [w0, w1],
            "filtered_token_share": self.filtered_token_share,
            "unk_share": dict(self.unk_shares),
            **({"treatments": self._treatment_accounting(rows)} if self.treat is not None else {}),
        }

    def _treatment_accounting(self, rows: int) -> dict:
        """Rows each treatment touched (closed form, scaling.treatments) among the first `rows`;
        unlikelihood counts only rows of its stages."""
        counts = dict(zip(POOLS, self._count_rows(rows).tolist()))
        out = {"shares": dict(self.treat.shares), **self.treat.counts(counts),
               "rephrased_token_share": self.rephrased_token_share,
               "rephrased_docs": len(self.rephrased_doc_ids), **({"labelled_base": self.labelled} if self.labelled else {})}
        if "unlikelihood" in out:
            out["unlikelihood"] = {p: 0 for p in out["unlikelihood"]}
            for k, seg in enumerate(self.segments):
                if seg.stage in self.ul_stages and rows > self.row0[k]:
                    before = dict(zip(POOLS, self._count_rows(int(self.row0[k])).tolist()))
                    after = dict(zip(POOLS, self._count_rows(min(rows, seg.step1 * self.B)).tolist()))
                    for p, n in self.treat.counts(after)["unlikelihood"].items():
                        out["unlikelihood"][p] += n - self.treat.counts(before)["unlikelihood"][p]
        return out
