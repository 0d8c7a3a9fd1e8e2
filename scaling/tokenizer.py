"""Offline tokenizers: word-level over the world's known vocabulary, or raw bytes.

Word-level text is lower-case tokens separated by single spaces (punctuation is its own
token), as the world generator writes it; `encode` is `text.split()`. Ids 0, 1, 2 are
`<pad>`, `<eos>` (the document separator) and `<unk>` in both tokenizers. A tokenizer is
saved as JSON with the run so evaluation and resume use exactly the same ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPECIALS = ("<pad>", "<eos>", "<unk>")
PAD, EOS, UNK = 0, 1, 2


class WordTokenizer:
    kind = "word"

    def __init__(self, words: list[str]):
        words = [w for w in words if w not in SPECIALS]
        if len(set(words)) != len(words):
            raise ValueError("vocabulary has duplicate words")
        self.itos = list(SPECIALS) + list(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> np.ndarray:
        get = self.stoi.get
        return np.fromiter((get(w, UNK) for w in text.split()), dtype=np.int32)

    def decode(self, ids) -> str:
        return " ".join(self.itos[int(i)] for i in ids if int(i) != PAD)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "words": self.itos[len(SPECIALS):]}


class ByteTokenizer:
    kind = "byte"
    vocab_size = 256 + len(SPECIALS)

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32) + len(SPECIALS)

    def decode(self, ids) -> str:
        data = bytes(int(i) - len(SPECIALS) for i in ids if int(i) >= len(SPECIALS))
        return data.decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return {"kind": self.kind}


Tokenizer = WordTokenizer | ByteTokenizer


def from_dict(d: dict) -> Tokenizer:
    if d["kind"] == "word":
        return WordTokenizer(d["words"])
    if d["kind"] == "byte":
        return ByteTokenizer()
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}")


def save(tok: Tokenizer, path: str | Path) -> None:
    Path(path).write_text(json.dumps(tok.to_dict()))


def load(path: str | Path) -> Tokenizer:
    return from_dict(json.loads(Path(path).read_text()))
