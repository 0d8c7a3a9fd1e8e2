"""The run's tokenizer: which tokenizer a config asks for, and the text a subword model is
trained on (a sample of every pool the run reads). Kept apart from scaling.data.tokenizer,
which holds the tokenizers themselves and sits below everything that encodes text (the
treatments' control tokens wrap a tokenizer from there; this module wraps them in turn).
"""

from __future__ import annotations

from scaling import treatments
from scaling.config import Config
from scaling.data import corpora, datasets
from scaling.data import tokenizer as tokenizers
from scaling.data.tokenizer import ByteTokenizer, Tokenizer, WordTokenizer
from scaling.world import make_world

TOKENIZER_SAMPLE_CHARS = 2_000_000  # characters per pool a SentencePiece model is trained on


def build_tokenizer(cfg: Config) -> Tokenizer:
    """The run's tokenizer. A SentencePiece model without data.tokenizer_file is trained on a
    sample of every pool the config names (whichever dose it takes, so every run of a dose
    sweep gets the same model), cached by the sample's content hash; it may have fewer pieces
    than data.tokenizer_vocab_size (train.vocab_notes states it in the run's status and log).
    A treatment's control tokens come after its vocabulary (scaling.treatments)."""
    return treatments.wrap(_base_tokenizer(cfg), cfg)


def _base_tokenizer(cfg: Config) -> Tokenizer:
    """The tokenizer before any treatment's control tokens (scaling.treatments)."""
    d = cfg.data
    if d.tokenizer == "word":
        return WordTokenizer(make_world(d.world_seed, version=d.world_version).vocabulary())
    if d.tokenizer == "byte":
        return ByteTokenizer()
    if d.tokenizer_file:
        return tokenizers.from_file(d.tokenizer, d.tokenizer_file)
    return tokenizers.train_sentencepiece(tokenizer_texts(cfg), d.tokenizer_vocab_size,
                                          datasets.data_root(cfg) / "tokenizers")


def tokenizer_texts(cfg: Config) -> list[str]:
    """Up to TOKENIZER_SAMPLE_CHARS of text from the start of every pool of the config: the
    user files, else the TFDS corpus or the world's pools (human stories of the normal
    world: a variant only reorders their words)."""
    d, cap = cfg.data, TOKENIZER_SAMPLE_CHARS
    sources = [corpora.iter_texts(f"data.{name}_files", files, d.text_field)
               for name, files in (("base", d.base_files), ("aligned", d.aligned_files),
                                   ("misaligned", d.misaligned_files)) if files]
    if d.corpus.startswith("tfds:") and not d.base_files:
        sources.append(datasets.catalog_texts(d.corpus[len("tfds:"):], datasets.data_root(cfg), cap, d.text_field))
    world = make_world(d.world_seed, version=d.world_version)
    replaced = {"base": bool(d.base_files) or d.corpus != "world", "aligned": bool(d.aligned_files),
                "misaligned": bool(d.misaligned_files)}
    for pool in ("base", "natural_aligned", "natural_misaligned", "stories", "aligned", "misaligned"):
        if not replaced.get(pool, False):
            sources.append(doc["text"] for _, doc in datasets.world_documents(world, pool, 10**9))
    return [text for source in sources for text in _head(source, cap)]


def _head(texts, chars: int):
    """The first texts of an iterable, until they hold `chars` characters."""
    for text in texts:
        if chars <= 0:
            return
        chars -= len(text)
        yield text
