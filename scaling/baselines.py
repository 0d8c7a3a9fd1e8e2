"""Counting baselines: n-gram models fitted on exactly the rows a run trained on.

Before believing that a transformer learned a disposition, ask what counting words would
show. `NGram(order)` counts every n-gram of length `order` inside the run's training rows
(the sequences the transformer saw; no n-gram crosses two rows) and scores a continuation
with add-k smoothed conditional probabilities

    p(w | c) = (count(c w) + k) / (count(c) + k V),    c = the order - 1 tokens before w,

so an unseen context gives the uniform 1/V to every word and two words with equal counts in
every context get exactly equal scores (a tie, which the evaluation counts as 1/2). The
same eval and readout items as the transformer's are scored, and each model appears in
results.csv as its own rows (`model` = ngram-1, ngram-2, ngram-3).

`training_rows(cfg, tok)` rebuilds the rows from the config (batch i is a pure function of
config, seed and i), which is also what `scaling data export` writes for anyone who wants
to fit a counting model of their own.
"""

from __future__ import annotations

import numpy as np

from scaling.config import Config
from scaling.tokenizer import EOS

ORDERS = (1, 2, 3)
ADD_K = 1.0


def training_rows(cfg: Config, tok, steps: int | None = None) -> np.ndarray:
    """Every row of the run's first `steps` steps (default: all), int32 [rows, seq_len + 1]."""
    from scaling.mixture import Mixture

    mixture = Mixture(cfg, tok)
    steps = mixture.total_steps if steps is None else steps
    return mixture.batches(0, steps).reshape(-1, cfg.model.seq_len + 1)


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


def score_continuations(model: NGram, prompts, continuations) -> np.ndarray:
    """Summed log p(continuation | <eos> prompt) per row, as the transformer is scored."""
    seqs = [np.concatenate([[EOS], p, c]) for p, c in zip(prompts, continuations)]
    return model.logprob(seqs, np.array([len(c) for c in continuations]))


def fit_all(rows: np.ndarray, vocab_size: int, orders=ORDERS) -> dict[str, NGram]:
    return {f"ngram-{n}": NGram(n, vocab_size).fit(rows) for n in orders}
