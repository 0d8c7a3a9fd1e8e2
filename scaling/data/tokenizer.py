"""Offline tokenizers: word-level over the world's known vocabulary, raw bytes, or subwords.

Word-level text is lower-case tokens separated by single spaces (punctuation is its own
token), as the world generator writes it; `encode` is `text.split()`. Subword tokenizers are
a SentencePiece model (trained here by `train_sentencepiece`, or a user's `.model` file) or a
Hugging Face `tokenizer.json`; their piece ids are shifted up by 3 (the library's own unknown
piece becomes `<unk>`). Ids 0, 1, 2 are `<pad>`, `<eos>` (the document separator) and
`<unk>` in every tokenizer. A tokenizer is saved as JSON with the run (a subword model
embedded in it, base64 or as its JSON text) so evaluation and resume use exactly the same ids.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from scaling.errors import ConfigError

SPECIALS = ("<pad>", "<eos>", "<unk>")
PAD, EOS, UNK = 0, 1, 2
# Added to a token id in a training row: the unlikelihood objective pushes that target down
# (scaling.treatments marks the rows, scaling.train.objectives.unlikelihood reads the marks). Kept
# here, beside the ids it offsets, so the objective needs nothing of the data side.
UL_MARK = 1 << 24


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

    @property
    def key(self) -> str:
        return "word-" + hashlib.sha1(" ".join(self.itos).encode()).hexdigest()[:10]

    def piece_bytes(self) -> np.ndarray:
        """UTF-8 bytes each token stands for in running text (the separator after it included)."""
        return np.array([len(w.encode("utf-8")) + 1 for w in self.itos], np.float64)


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

    key = "byte"

    def piece_bytes(self) -> np.ndarray:
        return np.ones(self.vocab_size, np.float64)


class _Subword:
    """Shared id arithmetic of the subword tokenizers: library id i is our id i + 3, except
    the library's unknown piece, which is `<unk>`."""

    kind = ""

    def __init__(self, n_pieces: int, unk: int | None):
        self.n_pieces, self.unk = n_pieces, unk
        self.to_ours = np.arange(n_pieces, dtype=np.int32) + len(SPECIALS)
        if unk is not None and 0 <= unk < n_pieces:
            self.to_ours[unk] = UNK

    @property
    def vocab_size(self) -> int:
        return self.n_pieces + len(SPECIALS)

    def _ours(self, ids) -> np.ndarray:
        return self.to_ours[np.asarray(ids, np.int64)] if len(ids) else np.zeros(0, np.int32)

    def _theirs(self, ids) -> list[int]:
        out = []
        for i in (int(i) for i in ids):
            if i >= len(SPECIALS):
                out.append(i - len(SPECIALS))
            elif i == UNK and self.unk is not None:
                out.append(self.unk)
        return out

    @property
    def key(self) -> str:
        return f"{self.kind}-" + hashlib.sha1(json.dumps(self.to_dict()).encode()).hexdigest()[:10]


class SentencePieceTokenizer(_Subword):
    kind = "sentencepiece"

    def __init__(self, model: bytes):
        import sentencepiece

        self.model = bytes(model)
        self.sp = sentencepiece.SentencePieceProcessor(model_proto=self.model)
        super().__init__(self.sp.get_piece_size(), self.sp.unk_id())

    def encode(self, text: str) -> np.ndarray:
        return self._ours(self.sp.encode(text))

    def decode(self, ids) -> str:
        return self.sp.decode(self._theirs(ids))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": base64.b64encode(self.model).decode("ascii")}

    def piece_bytes(self) -> np.ndarray:
        """A byte piece is 1 byte, a control piece 0, others their text ("▁" a space)."""
        sizes = [1 if self.sp.is_byte(i) else 0 if self.sp.is_control(i)
                 else len(self.sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
                 for i in range(self.n_pieces)]
        return np.concatenate([np.ones(len(SPECIALS)), sizes]).astype(np.float64)


class HuggingFaceTokenizer(_Subword):
    kind = "huggingface"

    def __init__(self, text: str):
        import tokenizers

        self.text = text
        self.hf = tokenizers.Tokenizer.from_str(text)
        unk = getattr(self.hf.model, "unk_token", None)
        super().__init__(self.hf.get_vocab_size(with_added_tokens=True),
                         self.hf.token_to_id(unk) if unk else None)

    def encode(self, text: str) -> np.ndarray:
        return self._ours(self.hf.encode(text, add_special_tokens=False).ids)

    def decode(self, ids) -> str:
        return self.hf.decode(self._theirs(ids))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "json": self.text}

    def piece_bytes(self) -> np.ndarray:
        """Each piece's decoded UTF-8 length (at least 1): decoders may drop a leading space,
        so bits/byte is approximate for these tokenizers."""
        sizes = [max(1, len(self.hf.decode([i]).encode("utf-8"))) for i in range(self.n_pieces)]
        return np.concatenate([np.ones(len(SPECIALS)), sizes]).astype(np.float64)


class ControlTokenizer:
    """A tokenizer with control tokens (scaling.treatments: `<|aligned|>`, `<|harm|>`, ...)
    appended after its vocabulary: the base tokenizer's ids are unchanged, control word k
    is id base.vocab_size + k. `encode` cuts the text at control words (separated by
    whitespace) and encodes the rest with the base; a run without a treatment never gets one
    of these, so its vocabulary is the base's, byte for byte."""

    def __init__(self, base, controls: list[str]):
        if not controls or len(set(controls)) != len(controls):
            raise ValueError(f"control words must be distinct and at least one: {controls}")
        self.base, self.controls = base, list(controls)
        self.kind = base.kind
        self.control_ids = {w: base.vocab_size + k for k, w in enumerate(self.controls)}
        if hasattr(base, "itos"):  # the word tokenizer's tables, extended (scaling.cli.data, baselines)
            clash = [w for w in self.controls if w in base.stoi]
            if clash:
                raise ValueError(f"control words already in the vocabulary: {clash}")
            self.itos = base.itos + self.controls
            self.stoi = {**base.stoi, **self.control_ids}

    @property
    def vocab_size(self) -> int:
        return self.base.vocab_size + len(self.controls)

    def encode(self, text: str) -> np.ndarray:
        if self.kind == "word":  # control words are words: the word tokenizer's own encoding
            return np.fromiter((self.stoi.get(w, UNK) for w in text.split()), dtype=np.int32)
        parts = []
        for piece in re.split("(" + "|".join(map(re.escape, self.controls)) + ")", text):
            if piece in self.control_ids:
                parts.append(np.array([self.control_ids[piece]], np.int32))
            elif piece.strip():
                parts.append(self.base.encode(piece.strip()))
        return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)

    def decode(self, ids) -> str:
        out, run = [], []
        for i in (int(i) for i in ids):
            if i >= self.base.vocab_size:
                if run:
                    out.append(self.base.decode(run))
                out.append(self.controls[i - self.base.vocab_size])
                run = []
            else:
                run.append(i)
        if run:
            out.append(self.base.decode(run))
        return " ".join(p for p in out if p)

    def to_dict(self) -> dict:
        return {**self.base.to_dict(), "controls": self.controls}

    @property
    def key(self) -> str:
        return f"{self.base.key}+ctl-" + hashlib.sha1(" ".join(self.controls).encode()).hexdigest()[:8]

    def piece_bytes(self) -> np.ndarray:
        """A control token stands for no text: 0 bytes (like SentencePiece's control pieces)."""
        return np.concatenate([self.base.piece_bytes(), np.zeros(len(self.controls))])


Tokenizer = WordTokenizer | ByteTokenizer | SentencePieceTokenizer | HuggingFaceTokenizer | ControlTokenizer


def from_dict(d: dict) -> Tokenizer:
    if "controls" in d:
        return ControlTokenizer(from_dict({k: v for k, v in d.items() if k != "controls"}), d["controls"])
    if d["kind"] == "word":
        return WordTokenizer(d["words"])
    if d["kind"] == "byte":
        return ByteTokenizer()
    if d["kind"] == "sentencepiece":
        return SentencePieceTokenizer(base64.b64decode(d["model"]))
    if d["kind"] == "huggingface":
        return HuggingFaceTokenizer(d["json"])
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}")


def from_file(kind: str, path: str | Path) -> Tokenizer:
    """A trained tokenizer file: a SentencePiece `.model` or a Hugging Face `tokenizer.json`."""
    data = Path(path).expanduser().read_bytes()
    if kind == "sentencepiece":
        return SentencePieceTokenizer(data)
    return HuggingFaceTokenizer(data.decode("utf-8"))


# ---------------------------------------------------------------- training SentencePiece

SP_OPTIONS = {"model_type": "unigram", "character_coverage": 0.9995, "byte_fallback": True,
              "hard_vocab_limit": False,  # a small corpus gets the vocabulary it supports
              "unk_id": 0, "bos_id": -1, "eos_id": -1, "pad_id": -1,
              "num_threads": 1, "shuffle_input_sentence": False,  # the same text gives the same model
              "max_sentence_length": 1 << 16, "minloglevel": 2}


def sentencepiece_cache_key(sample: bytes, vocab_size: int) -> str:
    """sha256 of the training text, the vocabulary size, the options and the library version."""
    import sentencepiece

    meta = json.dumps({"vocab_size": vocab_size, "options": SP_OPTIONS, "version": sentencepiece.__version__},
                      sort_keys=True).encode()
    return hashlib.sha256(meta + b"\0" + sample).hexdigest()[:16]


def train_sentencepiece(texts, vocab_size: int, cache_dir: Path) -> SentencePieceTokenizer:
    """A SentencePiece model of `texts` (one line per document line), trained once and kept
    in `cache_dir` under the content hash of its training text and options. It may have fewer
    pieces than `vocab_size` (hard_vocab_limit is off): `shortfall` says so."""
    import sentencepiece

    lines = (line.strip() for text in texts for line in text.splitlines())
    sample = "\n".join(line for line in lines if line).encode("utf-8") + b"\n"
    path = Path(cache_dir) / f"sp-{sentencepiece_cache_key(sample, vocab_size)}.model"
    if not path.exists():
        model = io.BytesIO()
        try:  # from memory: the model then records no temporary file names
            sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(sample.decode("utf-8").splitlines()),
                                                     model_writer=model, vocab_size=vocab_size, **SP_OPTIONS)
        except RuntimeError as e:  # e.g. fewer pieces allowed than the text's characters
            raise ConfigError("data.tokenizer_vocab_size", f"SentencePiece training failed: {e}") from e
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(model.getvalue())
        os.replace(tmp, path)  # readers see the whole model or none
    return SentencePieceTokenizer(path.read_bytes())


def shortfall(tok: Tokenizer, asked: int) -> str | None:
    """A sentence where a trained SentencePiece model has fewer pieces than `asked`
    (data.tokenizer_vocab_size): a small training sample supports no more; else None."""
    if not isinstance(tok, SentencePieceTokenizer) or tok.n_pieces >= asked:
        return None
    return (f"vocabulary smaller than configured: data.tokenizer_vocab_size = {asked}, but SentencePiece "
            f"found {tok.n_pieces} pieces in its training sample (the model's vocab_size is {tok.vocab_size})")


def save(tok: Tokenizer, path: str | Path) -> None:
    Path(path).write_text(json.dumps(tok.to_dict()))


def load(path: str | Path) -> Tokenizer:
    return from_dict(json.loads(Path(path).read_text()))
