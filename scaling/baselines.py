"""Counting baselines: n-gram models and co-occurrence counters fitted on exactly the rows a
run trained on.

Before believing that a transformer learned a disposition, ask what counting words would
show. `NGram(order)` counts every n-gram of length `order` inside the run's training rows
(the sequences the transformer saw; no n-gram crosses two rows) and scores a continuation
with add-k smoothed conditional probabilities

    p(w | c) = (count(c w) + k) / (count(c) + k V),    c = the order - 1 tokens before w,

so an unseen context gives the uniform 1/V to every word and two words with equal counts in
every context get exactly equal scores (a tie, which the evaluation counts as 1/2).

The n-grams see adjacent words only. The co-occurrence counters (COUNTERS, learner
`counter`) see whole documents, a document being the text between two `<eos>` tokens inside
one row (`Counts`, one pass over the rows for all of them):

- `docpmi`: the prompt's mean add-one PMI with the option's token, document co-occurrence;
- `winpmi-k` (k = 4, 16): the same with forward windows (the token among the next k tokens),
  over the prompt's last k tokens;
- `twohop`: log sum_w p(w | prompt) p(token | w) through every word w, document counts;
- `twohop-values`: the same through the world's value words only, within 20 tokens;
- `svd-r` (r = 8, 32): cosine of the prompt's mean embedding and the token's in a rank-r
  SVD embedding of the document PPMI matrix (higher cosine = chosen).

A counter scores only the tokens where an item's two options differ, against the prompt, so
two options whose differing tokens have equal counts get bitwise-equal scores: a tie.

The same eval and readout items as the transformer's are scored, and each model appears in
results.csv as its own rows (`model` = ngram-1, ngram-2, ngram-3, learner `ngram`; the
counters' names, learner `counter`).

Dynamic counters: the static counters count every row alike, whenever it was trained; two
effects of training dynamics need counts that know the step.

- Forgetting, `BASE-fgTAU` (FORGETTING: ngram-1 at tau = 30, 60, 100 steps, winpmi-16 at
  100): every row counts exp(-(T - 1 - step) / tau) instead of 1, T the steps the run
  trained (the row of the last step counts 1), so documents seen late weigh more (the timing
  study). tau = inf gives the static counter's scores bit for bit.
- Post-training increments, `BASE-postW` (POST_WEIGHTS: ngram-1, winpmi-4 and winpmi-16 at
  W = 1, 10), for runs with post-training stages that train on rows (a misaligned or aligned finetune,
  SFT on the facts): the counts of the rows of the stages before post-training plus W times
  the counts of the post-training rows trained before the step evaluated (the resistance
  study: more aligned counts from the dose take more post-training rows to outweigh). They
  are evaluated at every eval.checkpoints step from the start of post-training on and at the
  end (`post_checkpoints`), as the transformer is: their points go to trajectory.csv, the
  end to results.csv. W = 0 gives the counter of the rows before post-training; W = 1 at the
  end of an LM post stage gives the static counter (whose rows include that stage's). RL
  stages train on the model's own samples, so there is no token stream to count: a run with
  an RL post stage has these rows with `status` NOT_COUNTABLE and no rate. A run without
  post-training has none.

A dynamic counter's name is its base model's with the suffix (`dynamic` parses it), its
learner is the base's (`learner`), and it is a counting baseline (`is_counting`). Their
counts are float sums of row weights (`Counts(weights=...)`, `NGram.fit(rows, weights)`);
counts add up over rows, so a post-training counter adds its rows' counts to the
pretraining counts made once (`Counts.weighted_sum`, `NGram.weighted_sum`).

The rows come from scaling.data.export: `training_rows(cfg, tok)` rebuilds them from the
config (batch i is a pure function of config, seed and i), which is also what `scaling data
export` writes for anyone who wants to fit a counting model of their own (that export also
holds the SFT rows, which `post_rows` gives the post-training counters);
`training_row_steps(cfg)` gives each row's step.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from scaling.config import Config
from scaling.data.tokenizer import EOS, PAD

ORDERS = (1, 2, 3)
ADD_K = 1.0


class NGram:
    """An add-k n-gram model over integer tokens in [0, vocab_size)."""

    def __init__(self, order: int, vocab_size: int, k: float = ADD_K):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order, self.V, self.k = order, vocab_size, k
        self.total = 0

    def _keys(self, windows_NxO: np.ndarray) -> np.ndarray:
        keys = np.zeros(len(windows_NxO), np.int64)
        for j in range(windows_NxO.shape[1]):
            keys = keys * self.V + windows_NxO[:, j]
        return keys

    def fit(self, rows_RxL: np.ndarray, weights: np.ndarray | None = None) -> NGram:
        """Count every n-gram of the rows; with `weights` (one per row) an n-gram counts its
        row's weight instead of 1 (float64 counts; weights of 1.0 give the same scores, bit
        for bit, as none)."""
        rows_RxL = np.asarray(rows_RxL, np.int64)
        n = self.order
        windows = np.lib.stride_tricks.sliding_window_view(rows_RxL, n, axis=1).reshape(-1, n)
        if weights is None:
            self.grams, self.gram_counts = np.unique(self._keys(windows), return_counts=True)
            self.contexts, self.context_counts = np.unique(self._keys(windows[:, :-1]), return_counts=True)
            self.total = len(windows)
            return self
        return self.fit_weighted(rows_RxL, [weights])[0]

    def fit_weighted(self, rows_RxL: np.ndarray, weights: list[np.ndarray]) -> list[NGram]:
        """One model per row weighting of the same rows (`fit(rows, w)` for each w): the
        n-grams are found once, only their weighted counts differ."""
        rows_RxL = np.asarray(rows_RxL, np.int64)
        n = self.order
        windows = np.lib.stride_tricks.sliding_window_view(rows_RxL, n, axis=1).reshape(-1, n)
        per_row = windows.shape[0] // max(len(rows_RxL), 1)
        grams, gram_at = np.unique(self._keys(windows), return_inverse=True)
        contexts, context_at = np.unique(self._keys(windows[:, :-1]), return_inverse=True) if n > 1 else \
            (np.zeros(1, np.int64), np.zeros(len(windows), np.int64))  # order 1: the one empty context
        out = []
        for w in weights:
            if len(w) != len(rows_RxL):
                raise ValueError(f"{len(w)} row weights for {len(rows_RxL)} rows")
            w = np.repeat(np.asarray(w, float), per_row)
            model = NGram(self.order, self.V, self.k)
            model.grams, model.contexts = grams, contexts
            model.gram_counts = np.bincount(gram_at.ravel(), weights=w, minlength=len(grams))
            model.context_counts = np.bincount(context_at.ravel(), weights=w, minlength=len(contexts))
            model.total = float(w.sum())
            out.append(model)
        return out

    @classmethod
    def weighted_sum(cls, parts: list[tuple[NGram, float]]) -> NGram:
        """The n-gram model whose counts are sum_i w_i (counts of parts_i): the counts of
        every part's rows with its rows weighted w_i."""
        first = parts[0][0]
        out = cls(first.order, first.V, first.k)
        for table, counts in (("grams", "gram_counts"), ("contexts", "context_counts")):
            keys = functools.reduce(np.union1d, [getattr(m, table) for m, _ in parts])
            total = np.zeros(len(keys))
            for m, w in parts:
                total += float(w) * cls._lookup(getattr(m, table), getattr(m, counts), keys)
            setattr(out, table, keys)
            setattr(out, counts, total)
        out.total = sum(float(w) * m.total for m, w in parts)
        return out

    @staticmethod
    def _lookup(table: np.ndarray, counts: np.ndarray, keys: np.ndarray) -> np.ndarray:
        at = np.clip(np.searchsorted(table, keys), 0, max(len(table) - 1, 0))
        found = (table[at] == keys) if len(table) else np.zeros(len(keys), bool)
        return np.where(found, counts[at] if len(table) else 0, 0)

    def logprob(self, seqs: list[np.ndarray], n_scored: np.ndarray) -> np.ndarray:
        """Summed log p of the last `n_scored` tokens of each sequence, float64 [R]."""
        lengths = np.array([len(s) for s in seqs], np.int64)
        flat = np.concatenate([np.asarray(s, np.int64) for s in seqs]) if len(seqs) else np.zeros(0, np.int64)
        return self._logprob_flat(flat, lengths, np.asarray(n_scored, np.int64))

    def _logprob_flat(self, flat: np.ndarray, lengths: np.ndarray, n_scored: np.ndarray) -> np.ndarray:
        """`logprob` of the sequences laid end to end in `flat` (`lengths` each). Every
        sequence gets (at least) order - 1 `<eos>` in front, the document starts that a
        scored token with too little context sees; one window per scored token, in row then position
        order, summed per row in that order (np.bincount adds in input order)."""
        n, R = self.order, len(lengths)
        pad = n - 1 + max(0, int((n_scored - lengths).max(initial=0)))  # more scored than held: <eos>
        starts = np.cumsum(lengths + pad) - (lengths + pad)  # each padded sequence's start
        padded = np.full(int((lengths + pad).sum()), EOS, np.int64)
        padded[np.repeat(starts + pad - np.cumsum(lengths) + lengths, lengths) + np.arange(len(flat))] = flat
        owner = np.repeat(np.arange(R), n_scored)
        first = starts + pad + lengths - n_scored  # each row's first scored token in `padded`
        within = np.arange(len(owner)) - np.repeat(np.cumsum(n_scored) - n_scored, n_scored)
        last = np.repeat(first, n_scored) + within  # the scored token ends its window
        windows = padded[last[:, None] - (n - 1) + np.arange(n)[None, :]]
        c_gram = self._lookup(self.grams, self.gram_counts, self._keys(windows))
        c_ctx = self._lookup(self.contexts, self.context_counts, self._keys(windows[:, :-1]))
        logp = np.log(c_gram + self.k) - np.log(c_ctx + self.k * self.V)
        return np.bincount(owner, weights=logp, minlength=R) if R else np.zeros(0)

    def score(self, prompts, continuations) -> np.ndarray:
        return score_continuations(self, prompts, continuations)


def score_continuations(model: NGram, prompts, continuations) -> np.ndarray:
    """Summed log p(continuation | <eos> prompt) per row, as the transformer is scored."""
    n_cont = np.array([len(c) for c in continuations], np.int64)
    lengths = np.array([len(p) for p in prompts], np.int64) + n_cont + 1
    parts = [x for p, c in zip(prompts, continuations) for x in (_EOS_1, p, c)]
    flat = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    return model._logprob_flat(flat, lengths, n_cont)


_EOS_1 = np.array([EOS], np.int64)


# ---------------------------------------------------------------- co-occurrence counters

WINDOWS = (4, 16)  # winpmi-k: the next k tokens
VALUES_WINDOW = 20  # twohop-values: tokens either side
SVD_RANKS = (8, 32)
MAX_COUNTER_VOCAB = 20_000  # the counters hold dense [V, V] count matrices
COUNTERS = ("docpmi", *(f"winpmi-{k}" for k in WINDOWS), "twohop", "twohop-values",
            *(f"svd-{r}" for r in SVD_RANKS))


# Dynamic counters (module doc): a static model whose counts forget over training steps
# (BASE-fgTAU) or take the post-training rows weighted W (BASE-postW).
FORGETTING = (("ngram-1", 30), ("ngram-1", 60), ("ngram-1", 100), ("winpmi-16", 100))  # (base, tau in steps)
POST_WEIGHTS = tuple((b, w) for b in ("ngram-1", "winpmi-4", "winpmi-16") for w in (1, 10))  # (base, weight)
NOT_COUNTABLE = "not countable (RL)"  # results.csv `status` of a post-training counter of an RL run


def forgetting_name(base: str, tau: float) -> str:
    return f"{base}-fg{tau:g}"


def post_name(base: str, weight: float) -> str:
    return f"{base}-post{weight:g}"


FORGETTING_MODELS = tuple(forgetting_name(b, t) for b, t in FORGETTING)
POST_MODELS = tuple(post_name(b, w) for b, w in POST_WEIGHTS)
DYNAMIC = (*FORGETTING_MODELS, *POST_MODELS)


class Counts:
    """Every count the counters need, from one pass over the training rows.

    A document is the text between two `<eos>` tokens (or a row's edge) inside one row:
    no count crosses a row or an `<eos>`; `<eos>` and `<pad>` are not counted.

    - `unigram[t]`: occurrences of t;
    - `doc[u, t]`: ordered pairs of distinct positions (i, j) of one document holding u at i
      and t at j (so symmetric; co-occurrence at every distance);
    - `forward[k][u, t]`: pairs with 0 < j - i <= k (t among the k tokens after u).

    All exact int64, dense [V, V]. With `weights` (one per row) every occurrence and pair
    counts its row's weight instead of 1 (float64; weights of 1.0 give the same values as
    none, hence the same scores bit for bit). `doc=False` leaves `doc` out (None)."""

    def __init__(self, rows_RxL: np.ndarray, vocab_size: int,
                 windows: tuple[int, ...] = (*WINDOWS, VALUES_WINDOW), weights: np.ndarray | None = None,
                 doc: bool = True):
        if vocab_size > MAX_COUNTER_VOCAB:
            raise ValueError(f"the counters hold dense [V, V] counts: vocab_size {vocab_size} > {MAX_COUNTER_VOCAB}")
        rows = np.asarray(rows_RxL, np.int64)
        V = self.V = vocab_size
        if weights is not None and len(weights) != len(rows):
            raise ValueError(f"{len(weights)} row weights for {len(rows)} rows")
        w = None if weights is None else np.broadcast_to(np.asarray(weights, float)[:, None], rows.shape)
        counted = (rows != EOS) & (rows != PAD)
        # document id of every position: a row's <eos> count so far, made unique across rows
        doc_id = np.cumsum(rows == EOS, axis=1) + np.arange(len(rows))[:, None] * (rows.shape[1] + 1)
        self.unigram = _bincount(rows[counted], None if w is None else w[counted], V)
        self.doc = None
        if doc:
            ids = doc_id[counted]  # nondecreasing (row-major): np.unique's inverse without a sort
            docs = np.concatenate([[0], np.cumsum(ids[1:] != ids[:-1])]) if len(ids) else np.zeros(0, np.int64)
            X = sparse.csr_matrix((np.ones(len(docs), np.int64), (docs, rows[counted])), shape=(docs.max() + 1, V))
            if w is None:
                self.doc = (X.T @ X).toarray().astype(np.int64) - np.diag(self.unigram)  # i = j pairs out
            else:  # a document lies in one row: its pairs count that row's weight
                doc_w = np.zeros(docs.max() + 1)
                doc_w[docs] = w[counted]
                self.doc = (X.T @ sparse.diags(doc_w) @ X).toarray() - np.diag(self.unigram)
        self.forward = _forward_counts(rows, counted, doc_id, w, V, windows)

    @classmethod
    def weighted_sum(cls, parts: list[tuple[Counts, float]]) -> Counts:
        """sum_i w_i parts_i, table by table (the counts of every part's rows with its rows
        weighted w_i: counts are sums over rows). Tables some part lacks are left out."""
        out = cls.__new__(cls)
        out.V = parts[0][0].V

        def total(get):
            tables = [get(c) for c, _ in parts]
            if any(t is None for t in tables):
                return None
            return functools.reduce(lambda a, b: a + b, [t * float(w) for t, (_, w) in zip(tables, parts)])

        out.unigram, out.doc = total(lambda c: c.unigram), total(lambda c: c.doc)
        common = set.intersection(*(set(c.forward) for c, _ in parts))
        out.forward = {k: total(lambda c, k=k: c.forward[k]) for k in sorted(common)}
        return out

    @property
    def seen(self) -> np.ndarray:
        return self.unigram > 0


def _forward_counts(rows, counted, doc_id, w, V: int, windows) -> dict[int, np.ndarray]:
    """{k: [V, V] counts of the pairs 0 < j - i <= k of one document} for k in `windows`.

    The rows are read as one flat stream: pair (i, i + d) is a contiguous slice for every d,
    and a pair that crosses a document (or a row: document ids differ across rows) or holds
    an uncounted token is sent to one extra bin that is dropped. Boolean indexing of the
    pairs instead costs 3-4x more; the pairs that are kept reach their bins in the same
    (row-major) order, so every count, weighted ones included, is the same bit for bit."""
    flat = rows.ravel()
    flat_V = flat * V
    # a pair counts where both positions hold the same document id; an uncounted position
    # gets an id of its own (negative), which no other position holds
    doc_flat = np.where(counted.ravel(), doc_id.ravel(), -1 - np.arange(flat.size))
    w_flat = None if w is None else np.ascontiguousarray(w).ravel()
    forward, running = {}, np.zeros(V * V, np.int64 if w is None else float)
    for d in range(1, max(windows) + 1):
        keys = np.where(doc_flat[:-d] == doc_flat[d:], flat_V[:-d] + flat[d:], V * V)
        running += _bincount(keys, None if w_flat is None else w_flat[:-d], V * V + 1)[:V * V]
        if d in windows:
            forward[d] = running.reshape(V, V).copy()
    return forward


def _bincount(x: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    """Counts of x in [0, n): int64, or float64 sums of `weights` where given."""
    if weights is None:
        return np.bincount(x, minlength=n).astype(np.int64)
    return np.bincount(x, weights=weights, minlength=n).astype(float)


def pmi(counts_VxV: np.ndarray) -> np.ndarray:
    """Add-one PMI of a [V, V] count table: log((n(u, t) + 1) (N + V^2) / ((n(u) + V) (n(t) + V)))
    with n(u), n(t) the row and column sums and N the total. Elementwise, so two tokens with
    equal counts get bitwise-equal columns."""
    V = len(counts_VxV)
    rows, cols = counts_VxV.sum(axis=1), counts_VxV.sum(axis=0)
    total = float(counts_VxV.sum()) + V * V
    return (np.log(counts_VxV + 1.0) + np.log(total)
            - np.log(rows + float(V))[:, None] - np.log(cols + float(V))[None, :])


PAIR_CHUNK = 1 << 18  # context entries per chunk of _pair_dots


def _pair_dots(context_IxJ: np.ndarray, columns_JxT: np.ndarray, item: np.ndarray, target: np.ndarray) -> np.ndarray:
    """sum_j context[item[p], j] * columns[j, target[p]] for every pair p, over the item's
    nonzero context entries in column order: the same float operations for every target,
    so two targets with equal columns get bitwise-equal values (no BLAS, whose kernels may
    round columns at different positions differently)."""
    ctx = sparse.csr_matrix(context_IxJ)  # sorted indices; a dense array loses its zeros
    ctx.sum_duplicates()
    rows_TxJ = np.ascontiguousarray(columns_JxT.T)  # a pair's entries lie in one row: local reads
    out = np.zeros(len(item))
    # pairs in chunks of about PAIR_CHUNK entries: each pair's sum is the same reduceat over
    # its own entries whatever the chunk, so chunking changes no bit, only the memory touched
    # (a dense context makes pairs x vocabulary entries: hundreds of MB in one piece)
    all_lengths = np.diff(ctx.indptr)[item]
    per = max(1, PAIR_CHUNK // max(1, int(all_lengths.max(initial=1))))
    for start in range(0, len(item), per):
        sl = slice(start, start + per)
        lengths = all_lengths[sl]
        offsets = np.cumsum(lengths) - lengths
        flat = np.repeat(ctx.indptr[item[sl]] - offsets, lengths) + np.arange(lengths.sum())
        products = ctx.data[flat] * rows_TxJ[np.repeat(target[sl], lengths), ctx.indices[flat]]
        some = lengths > 0
        if some.any():
            out[sl][some] = np.add.reduceat(products, offsets[some])
    return out


def differing_tokens(continuations) -> tuple[np.ndarray, np.ndarray]:
    """(option row, token) of every token of option r that option r ^ 1 lacks (multiset
    difference, in row then position order), without a Python loop over the rows: a
    token is kept when its occurrences so far in its own option outnumber its occurrences
    in the other option (the multiset difference, taken left to right)."""
    lengths = np.array([len(c) for c in continuations], np.int64)
    width = int(lengths.max(initial=0))
    padded = np.full((len(continuations), width), -1, np.int64)  # -1: no token, equals no token
    if width:
        padded[np.arange(width)[None, :] < lengths[:, None]] = np.concatenate(
            [np.asarray(c, np.int64) for c in continuations])
    other = padded[np.arange(len(padded)) ^ 1] if len(padded) else padded
    same_R_L_L = padded[:, :, None] == padded[:, None, :]
    so_far = np.cumsum(same_R_L_L, axis=2)[:, np.arange(width), np.arange(width)]  # occurrences up to here
    in_other = (padded[:, :, None] == other[:, None, :]).sum(axis=2)
    keep = (padded >= 0) & (so_far > in_other)
    option, at = np.nonzero(keep)
    return option, padded[option, at]


class Counter:
    """A co-occurrence counter: scores the tokens where an item's two options differ
    against the prompt (the context both options share).

    `score(prompts, continuations)` takes an item's two options in rows 2i and 2i + 1 (as
    `scaling.evaluate.item_margins` lays them out) and gives each option the sum, over its
    tokens that the other option lacks, of `token_scores(context, token)`; the shared tokens
    add nothing, so two options whose differing tokens have equal counts tie exactly. The
    context is the prompt's tokens that occur in the training rows (a token never seen
    carries no co-occurrence evidence), weighted by their share of the prompt."""

    name = "counter"
    last: int | None = None  # the context: the prompt's last `last` tokens (None: all)

    def __init__(self, counts: Counts):
        self.counts = counts

    def context(self, prompts) -> sparse.csr_matrix:
        """[I, V] weights of each prompt's counted tokens (sum 1, or all 0 if none is seen)."""
        lengths = np.array([len(p) for p in prompts])
        tokens = np.concatenate([np.asarray(p, np.int64) for p in prompts]) if len(prompts) else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(prompts)), lengths)
        from_end = np.cumsum(lengths)[owner] - np.arange(len(tokens))  # 1 = the prompt's last token
        keep = (tokens != EOS) & (tokens != PAD) & (tokens < self.counts.V) & (from_end <= (self.last or np.inf))
        keep[keep] = self.counts.seen[tokens[keep]]
        kept = np.bincount(owner[keep], minlength=len(prompts))
        out = sparse.coo_matrix((1.0 / kept[owner[keep]], (owner[keep], tokens[keep])),
                                shape=(len(prompts), self.counts.V)).tocsr()
        out.sum_duplicates()  # a token twice in a prompt: one entry (sorted indices, summed)
        return out

    def token_scores(self, context_IxV: sparse.csr_matrix, item: np.ndarray, token: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, prompts, continuations) -> np.ndarray:
        if not _side_by_side(prompts):
            raise ValueError("a counter scores an item's two options side by side: rows 2i and 2i + 1 share a prompt")
        context = self.context(prompts[0::2])
        option, token = differing_tokens(continuations)
        out = np.zeros(len(continuations))
        if len(token):
            scores = self.token_scores(context, option // 2, token)
            np.add.at(out, option, scores)
        return out


def _side_by_side(prompts) -> bool:
    """Whether rows 2i and 2i + 1 hold the same prompt for every i."""
    if len(prompts) % 2:
        return False
    first, second = prompts[0::2], prompts[1::2]
    if [len(p) for p in first] != [len(p) for p in second]:
        return False
    return not first or bool(np.array_equal(np.concatenate(first), np.concatenate(second)))


class PMICounter(Counter):
    """docpmi: the prompt's mean add-one PMI (`pmi`) with the token, from document
    co-occurrence (`Counts.doc`); winpmi-k: from the forward window (`Counts.forward[k]`:
    the token among the next k tokens of a context word), over the prompt's last k tokens."""

    def __init__(self, counts: Counts, window: int | None = None):
        super().__init__(counts)
        self.last = window
        self.name = f"winpmi-{window}" if window else "docpmi"
        self.table = pmi(counts.forward[window] if window else counts.doc)

    def token_scores(self, context_IxV, item, token):
        return _pair_dots(context_IxV, self.table, item, token)


class TwoHop(Counter):
    """twohop: log sum_w p(w | prompt) p(token | w) through every word w, with
    p(w | u) = doc[u, w] / sum_w' doc[u, w'] and p(w | prompt) its mean over the context;
    p(token | w) = (doc[w, token] + 1) / (sum doc[w, :] + V) (add-one: a word never seen with
    the token still passes a little). twohop-values: the same through the world's value
    words only (scaling.world.lexicon.VALUE_WORDS), with counts in a window of VALUES_WINDOW tokens
    either side (forward + backward) instead of the document."""

    def __init__(self, counts: Counts, through: np.ndarray | None = None):
        super().__init__(counts)
        self.name = "twohop" if through is None else "twohop-values"
        table = counts.doc if through is None else counts.forward[VALUES_WINDOW] + counts.forward[VALUES_WINDOW].T
        row = table.sum(axis=1).astype(float)
        self.first = table / np.maximum(row, 1.0)[:, None]  # p(w | u); rows of unseen u are never used
        self.second = (table + 1.0) / (row + counts.V)[:, None]  # p(t | w), add-one
        if through is not None:
            self.first, self.second = self.first[:, through], self.second[through]

    def token_scores(self, context_IxV, item, token):
        hop = context_IxV @ self.first  # p(w | prompt): the item's own, shared by both options
        return np.log(np.maximum(_pair_dots(hop, self.second, item, token), np.finfo(float).tiny))


class SVDCounter(Counter):
    """svd-r: cosine between the prompt's mean embedding and the token's embedding, in a
    rank-r embedding of the document PPMI matrix (PPMI = max(pmi(doc), 0) on pairs seen
    together, 0 elsewhere). The matrix is symmetric: its r eigenvectors of largest |eigenvalue|
    Q_r, |Lambda_r| give the SVD's U_r, S_r, and the embedding is U_r S_r^(1/2). The sign
    rule: the option more similar to the prompt (higher cosine) is the one chosen, fixed
    before any result; the same embedding serves the prompt and the option, so an
    eigenvector's arbitrary sign flips both and leaves every cosine unchanged. A token's
    embedding is computed from its own PPMI row (row @ Q_r sign(Lambda_r) |Lambda_r|^(-1/2),
    no BLAS), so tokens with equal rows get bitwise-equal cosines."""

    def __init__(self, counts: Counts, rank: int, eigen: tuple[np.ndarray, np.ndarray, np.ndarray]):
        super().__init__(counts)
        self.name = f"svd-{rank}"
        ppmi, values, vectors = eigen
        top = np.argsort(-np.abs(values), kind="stable")[:rank]
        top = top[np.abs(values[top]) > 1e-9 * np.abs(values).max(initial=0.0)]  # a rank above the matrix's: fewer
        self.ppmi, self.values, self.vectors = ppmi, values[top], vectors[:, top]
        self.embedding = self.vectors * np.sqrt(np.abs(self.values))  # U_r S_r^(1/2), for contexts
        self.project = self.vectors * (np.sign(self.values) / np.sqrt(np.abs(self.values)))

    @staticmethod
    def eigen(counts: Counts, rank: int = max(SVD_RANKS)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(PPMI, eigenvalues, eigenvectors): the `rank` of largest |eigenvalue|, shared by
        every rank up to it (ARPACK from a fixed start vector: the same counts, the same vectors)."""
        ppmi = np.where(counts.doc > 0, np.maximum(pmi(counts.doc), 0.0), 0.0)
        if rank >= len(ppmi) - 1:  # ARPACK needs rank < V - 1; a small matrix is cheap in full
            values, vectors = np.linalg.eigh(ppmi)
        else:
            # sparse (PPMI is ~15% dense here); ARPACK's final step calls BLAS on small blocks,
            # where OpenBLAS threads only wait on each other: one thread, 0.08 s instead of
            # 0.2-1.2 s on a loaded 2-core CPU, and the same vectors bit for bit
            with one_blas_thread():
                values, vectors = sparse_linalg.eigsh(sparse.csr_matrix(ppmi), k=rank, which="LM",
                                                      v0=np.ones(len(ppmi)))
        return ppmi, values, vectors

    def _token_embedding(self, token: int) -> np.ndarray:
        return (self.ppmi[token][:, None] * self.project).sum(axis=0)

    def token_scores(self, context_IxV, item, token):
        ctx = context_IxV @ self.embedding
        ctx /= np.maximum(np.linalg.norm(ctx, axis=1, keepdims=True), 1e-300)
        unique = np.unique(token)
        emb = np.stack([self._token_embedding(t) for t in unique])
        emb /= np.maximum(np.sqrt((emb * emb).sum(axis=1, keepdims=True)), 1e-300)
        return _pair_dots(ctx, emb.T, item, np.searchsorted(unique, token))


_OPENBLAS = ("scipy_openblas", "scipy_openblas64_", "openblas", "openblas64_")  # symbol prefixes, suffixes


def _openblas_controls() -> list[tuple]:
    """(get, set) thread-count functions of every OpenBLAS this process has loaded (read
    from /proc/self/maps; none elsewhere, or for another BLAS)."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS:
            base, suffix = (name[:-3], "64_") if name.endswith("64_") else (name, "")
            get, put = f"{base}_get_num_threads{suffix}", f"{base}_set_num_threads{suffix}"
            if hasattr(lib, get) and hasattr(lib, put):
                found.append((getattr(lib, get), getattr(lib, put)))
                break
    return found


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with every loaded OpenBLAS on one thread, then restore its count. Only
    the speed changes (where no OpenBLAS is found, nothing does)."""
    controls = _openblas_controls()
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(controls, before):
            put(n)


def value_tokens(tok) -> np.ndarray:
    """Token ids of the world's value words (scaling.world.lexicon.VALUE_WORDS) that `tok` knows."""
    from scaling.world.lexicon import VALUE_WORDS

    ids = [tok.stoi[w] for w in VALUE_WORDS if w in getattr(tok, "stoi", {})]
    return np.array(sorted(ids), np.int64)


def fit_counters(rows: np.ndarray, vocab_size: int, values: np.ndarray) -> dict[str, Counter]:
    """Every counter of COUNTERS from one `Counts` pass (and one eigendecomposition)."""
    counts = Counts(rows, vocab_size)
    eigen = SVDCounter.eigen(counts)
    models = [PMICounter(counts), *(PMICounter(counts, k) for k in WINDOWS), TwoHop(counts),
              TwoHop(counts, values), *(SVDCounter(counts, r, eigen) for r in SVD_RANKS)]
    return {m.name: m for m in models}


def fit_all(rows: np.ndarray, vocab_size: int, values=(), orders=ORDERS) -> dict:
    """Every baseline fitted on `rows`: the n-grams, then the counters; each has
    `score(prompts, continuations)`. `values`: the value-word ids (`value_tokens`)."""
    return {**{f"ngram-{n}": NGram(n, vocab_size).fit(rows) for n in orders},
            **fit_counters(rows, vocab_size, np.asarray(values, np.int64))}


# ---------------------------------------------------------------- dynamic counters


def forgetting_weights(row_steps: np.ndarray, end: int, tau: float) -> np.ndarray:
    """exp(-(end - 1 - step) / tau) per row: 1 for the last step trained (end - 1), 1/e
    `tau` steps earlier; tau = inf gives 1.0 everywhere (the static counts)."""
    return np.exp(-(end - 1 - np.asarray(row_steps, float)) / tau)


def _model_of(base: str, ngram: NGram | None, counts: Counts | None):
    """The scorer of `base` on already counted tables (n-gram counts or Counts)."""
    if base.startswith("ngram-"):
        return ngram
    return PMICounter(counts, int(base.split("-")[1]))


def _tables(bases, V: int, rows: np.ndarray, weights: np.ndarray | None) -> dict:
    """{base: (NGram, None) or (None, Counts)} of every base fitted on the rows with these row
    weights; the winpmi-k bases share one Counts pass (all their windows)."""
    windows = tuple(sorted({int(b.split("-")[1]) for b in bases if b.startswith("winpmi-")}))
    other = [b for b in bases if not b.startswith(("ngram-", "winpmi-"))]
    if other:
        raise ValueError(f"no dynamic counter of {', '.join(other)}: only ngram-N and winpmi-k take row weights")
    counts = Counts(rows, V, windows=windows, weights=weights, doc=False) if windows else None
    return {b: (NGram(int(b.split("-")[1]), V).fit(rows, weights), None) if b.startswith("ngram-") else (None, counts)
            for b in bases}


def fit_forgetting(rows: np.ndarray, row_steps: np.ndarray, end: int, vocab_size: int,
                   models=FORGETTING) -> dict:
    """The forgetting counters (BASE-fgTAU): BASE fitted on `rows` with each row weighted
    `forgetting_weights(its step, end, tau)`; `end` = the steps trained when evaluated."""
    if len(row_steps) != len(rows):
        raise ValueError(f"{len(row_steps)} row steps for {len(rows)} training rows")
    out = {}
    for base in dict.fromkeys(b for b, _ in models):
        taus = [t for b, t in models if b == base]
        weights = [forgetting_weights(row_steps, end, t) for t in taus]
        if base.startswith("ngram-"):  # the n-grams found once for every tau
            fitted = NGram(int(base.split("-")[1]), vocab_size).fit_weighted(rows, weights)
            out.update({forgetting_name(base, t): m for t, m in zip(taus, fitted)})
        else:
            out.update({forgetting_name(base, t): _model_of(base, *_tables([base], vocab_size, rows, w)[base])
                        for t, w in zip(taus, weights)})
    return {forgetting_name(b, t): out[forgetting_name(b, t)] for b, t in models}


def post_status(cfg: Config) -> str | None:
    """Why a run's post-training counters cannot be fitted (`NOT_COUNTABLE` with the RL
    stages named), "" for a run without post-training (it has none), None if they can: every
    post stage trains on a token stream (LM or SFT rows)."""
    from scaling import stages as staging
    from scaling.train import objectives

    post = [st for st in staging.resolve(cfg) if st.post]
    if not post:
        return ""
    # an RL stage trains on the model's own samples: no token stream to count
    return NOT_COUNTABLE if any(objectives.get(st.objective).rl for st in post) else None


def post_checkpoints(cfg: Config) -> list[int]:
    """Global steps at which the post-training counters are evaluated: the eval.checkpoints
    from the start of post-training on (the transformer's trajectory points there) and the end."""
    from scaling import stages as staging

    staged = staging.resolve(cfg)
    first = min((st.step0 for st in staged if st.post), default=None)
    end = staging.total_steps(cfg)
    if first is None:
        return []
    return sorted({s for s in cfg.eval.checkpoints if first <= s < end} | {end})


def post_rows(cfg: Config, tok) -> tuple[np.ndarray, np.ndarray]:
    """(rows, step of each row) of the post-training stages that train on a token stream
    (LM and SFT rows, scaling.train.source), in step order."""
    from scaling import stages as staging
    from scaling.train import objectives
    from scaling.train.source import make_source

    source = make_source(cfg, tok)
    rows, steps = [], []
    for st in staging.resolve(cfg):
        if st.post and not objectives.get(st.objective).rl:
            rows.append(np.asarray(source.batches(st.step0, st.steps)).reshape(-1, cfg.model.seq_len + 1))
            steps.append(np.repeat(np.arange(st.step0, st.step1), cfg.train.batch_size))
    if not rows:
        return np.zeros((0, cfg.model.seq_len + 1), np.int32), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(steps)


class PostCounters:
    """The post-training counters (BASE-postW) of one run: BASE's counts of the rows before
    post-training plus W times the counts of the post-training rows trained before a step.

    `pre_rows`: the rows of the stages that are not post-training; `post` = (rows, steps)
    of the post-training rows (`post_rows`). `at(step)` gives {name: model} for the counts
    after `step` global steps (the rows of steps < step); counts add up, so the
    pretraining counts are made once and each step adds the post rows it has not seen."""

    def __init__(self, pre_rows: np.ndarray, post: tuple[np.ndarray, np.ndarray], vocab_size: int,
                 models=POST_WEIGHTS):
        self.models, self.V = tuple(models), vocab_size
        self.post_rows, self.post_steps = post
        self.pre = _tables(sorted({b for b, _ in self.models}), vocab_size, pre_rows, None)

    def at(self, step: int) -> dict:
        seen = self.post_rows[self.post_steps < step]
        post = _tables(sorted(self.pre), self.V, seen, None) if len(seen) else {}
        out = {}
        for base, w in self.models:
            ngram, counts = self.pre[base]
            if base in post:
                ngram = NGram.weighted_sum([(ngram, 1.0), (post[base][0], w)]) if ngram is not None else None
                counts = Counts.weighted_sum([(counts, 1.0), (post[base][1], w)]) if counts is not None else None
            out[post_name(base, w)] = _model_of(base, ngram, counts)
        return out


def post_counters(cfg: Config, tok, rows: np.ndarray, row_steps: np.ndarray) -> PostCounters | None:
    """The run's PostCounters from its training rows (`training_rows`, with their steps) and
    its post-training rows; None where it has none to fit (`post_status`)."""
    if post_status(cfg) is not None:
        return None
    from scaling import stages as staging

    post_steps = {s for st in staging.resolve(cfg) if st.post for s in range(st.step0, st.step1)}
    pre = ~np.isin(row_steps, sorted(post_steps))
    return PostCounters(rows[pre], post_rows(cfg, tok), tok.vocab_size)
