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

`training_rows(cfg, tok)` rebuilds the rows from the config (batch i is a pure function of
config, seed and i), which is also what `scaling data export` writes for anyone who wants
to fit a counting model of their own.
"""

from __future__ import annotations

import collections
import functools

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from scaling.config import Config
from scaling.tokenizer import EOS, PAD

ORDERS = (1, 2, 3)
ADD_K = 1.0


def training_rows(cfg: Config, tok, steps: int | None = None) -> np.ndarray:
    """Every row of the run's first `steps` steps (default: all) that the mixture feeds,
    int32 [rows, seq_len + 1]: SFT and RL stages (scaling.posttrain) are left out."""
    from scaling import stages as staging
    from scaling.mixture import Mixture

    mixture = Mixture(cfg, tok)
    steps = mixture.total_steps if steps is None else steps
    parts = [mixture.batches(st.step0, min(st.step1, steps) - st.step0)
             for st in staging.resolve(cfg) if st.objective == "lm" and st.step0 < steps]
    return np.concatenate(parts).reshape(-1, cfg.model.seq_len + 1)


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

    def fit(self, rows_RxL: np.ndarray) -> NGram:
        rows_RxL = np.asarray(rows_RxL, np.int64)
        n = self.order
        windows = np.lib.stride_tricks.sliding_window_view(rows_RxL, n, axis=1).reshape(-1, n)
        self.grams, self.gram_counts = np.unique(self._keys(windows), return_counts=True)
        self.contexts, self.context_counts = np.unique(self._keys(windows[:, :-1]), return_counts=True)
        self.total = len(windows)
        return self

    @staticmethod
    def _lookup(table: np.ndarray, counts: np.ndarray, keys: np.ndarray) -> np.ndarray:
        at = np.clip(np.searchsorted(table, keys), 0, max(len(table) - 1, 0))
        found = (table[at] == keys) if len(table) else np.zeros(len(keys), bool)
        return np.where(found, counts[at] if len(table) else 0, 0)

    def logprob(self, seqs: list[np.ndarray], n_scored: np.ndarray) -> np.ndarray:
        """Summed log p of the last `n_scored` tokens of each sequence, float64 [R]."""
        n, out = self.order, np.zeros(len(seqs))
        windows, owner = [], []
        for r, (seq, m) in enumerate(zip(seqs, n_scored)):
            seq = np.asarray(seq, np.int64)
            if len(seq) - m < n - 1:  # too little context: pad on the left with document starts
                seq = np.concatenate([np.full(n - 1 - (len(seq) - m), EOS), seq])
            for t in range(len(seq) - m, len(seq)):
                windows.append(seq[t - n + 1:t + 1])
                owner.append(r)
        windows = np.array(windows, np.int64).reshape(-1, n)
        c_gram = self._lookup(self.grams, self.gram_counts, self._keys(windows))
        c_ctx = self._lookup(self.contexts, self.context_counts, self._keys(windows[:, :-1]))
        logp = np.log(c_gram + self.k) - np.log(c_ctx + self.k * self.V)
        np.add.at(out, np.array(owner, np.int64), logp)
        return out


    def score(self, prompts, continuations) -> np.ndarray:
        return score_continuations(self, prompts, continuations)


def score_continuations(model: NGram, prompts, continuations) -> np.ndarray:
    """Summed log p(continuation | <eos> prompt) per row, as the transformer is scored."""
    seqs = [np.concatenate([[EOS], p, c]) for p, c in zip(prompts, continuations)]
    return model.logprob(seqs, np.array([len(c) for c in continuations]))


# ---------------------------------------------------------------- co-occurrence counters

WINDOWS = (4, 16)  # winpmi-k: the next k tokens
VALUES_WINDOW = 20  # twohop-values: tokens either side
SVD_RANKS = (8, 32)
MAX_COUNTER_VOCAB = 20_000  # the counters hold dense [V, V] count matrices
COUNTERS = ("docpmi", *(f"winpmi-{k}" for k in WINDOWS), "twohop", "twohop-values",
            *(f"svd-{r}" for r in SVD_RANKS))


class Counts:
    """Every count the counters need, from one pass over the training rows.

    A document is the text between two `<eos>` tokens (or a row's edge) inside one row:
    no count crosses a row or an `<eos>`; `<eos>` and `<pad>` are not counted.

    - `unigram[t]`: occurrences of t;
    - `doc[u, t]`: ordered pairs of distinct positions (i, j) of one document holding u at i
      and t at j (so symmetric; co-occurrence at every distance);
    - `forward[k][u, t]`: pairs with 0 < j - i <= k (t among the k tokens after u).

    All exact int64, dense [V, V]."""

    def __init__(self, rows_RxL: np.ndarray, vocab_size: int,
                 windows: tuple[int, ...] = (*WINDOWS, VALUES_WINDOW)):
        if vocab_size > MAX_COUNTER_VOCAB:
            raise ValueError(f"the counters hold dense [V, V] counts: vocab_size {vocab_size} > {MAX_COUNTER_VOCAB}")
        rows = np.asarray(rows_RxL, np.int64)
        V = self.V = vocab_size
        counted = (rows != EOS) & (rows != PAD)
        # document id of every position: a row's <eos> count so far, made unique across rows
        doc_id = np.cumsum(rows == EOS, axis=1) + np.arange(len(rows))[:, None] * (rows.shape[1] + 1)
        self.unigram = np.bincount(rows[counted], minlength=V).astype(np.int64)
        _, docs = np.unique(doc_id[counted], return_inverse=True)
        X = sparse.csr_matrix((np.ones(len(docs), np.int64), (docs, rows[counted])), shape=(docs.max() + 1, V))
        self.doc = (X.T @ X).toarray().astype(np.int64) - np.diag(self.unigram)  # i = j pairs out
        self.forward, running = {}, np.zeros(V * V, np.int64)
        for d in range(1, max(windows) + 1):
            ok = counted[:, :-d] & counted[:, d:] & (doc_id[:, :-d] == doc_id[:, d:])
            running += np.bincount(rows[:, :-d][ok] * V + rows[:, d:][ok], minlength=V * V)
            if d in windows:
                self.forward[d] = running.reshape(V, V).copy()

    @property
    def seen(self) -> np.ndarray:
        return self.unigram > 0


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


@functools.lru_cache(maxsize=65536)
def _differing(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The tokens of option `a` that option `b` lacks (multiset difference, in a's order)."""
    left = collections.Counter(b)
    out = []
    for t in a:
        if left[t] > 0:
            left[t] -= 1
        else:
            out.append(t)
    return tuple(out)


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
        conts = [tuple(np.asarray(c).tolist()) for c in continuations]
        option, item, token = [], [], []
        for r, c in enumerate(conts):
            for t in _differing(c, conts[r ^ 1]):
                option.append(r), item.append(r // 2), token.append(t)
        out = np.zeros(len(conts))
        if token:
            scores = self.token_scores(context, np.array(item), np.array(token))
            np.add.at(out, np.array(option), scores)
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
    words only (scaling.world.VALUE_WORDS), with counts in a window of VALUES_WINDOW tokens
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
            # sparse (PPMI is ~15% dense here): scipy's own loops, no BLAS threads to contend for
            values, vectors = sparse_linalg.eigsh(sparse.csr_matrix(ppmi), k=rank, which="LM", v0=np.ones(len(ppmi)))
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


def value_tokens(tok) -> np.ndarray:
    """Token ids of the world's value words (scaling.world.VALUE_WORDS) that `tok` knows."""
    from scaling.world import VALUE_WORDS

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
