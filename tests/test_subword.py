"""Subword tokenizers: SentencePiece trained on the run's pools and cached by content hash,
SentencePiece and Hugging Face files, and the run directory's copy used on resume."""

import json

import numpy as np
import pytest
import sentencepiece

from scaling.data import tokenizer as T
from scaling.data import vocab
from scaling.data.mixture import Mixture
from scaling.data.vocab import build_tokenizer
from scaling.errors import ConfigError
from scaling.plan import config_from_dict

TEXTS = ["the helpful assistant answered the question kindly .",
         "a careless assistant ignored the question and left .",
         "people in the town praised the baker for the bread ."] * 30


def _sp_cfg(root, tmp_path, **data):
    return config_from_dict({"data": {"data_dir": str(root), "story_fraction": 0.0, "tokenizer": "sentencepiece",
                                      "tokenizer_vocab_size": 400, **data},
                             "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16},
                             "train": {"steps": 20, "batch_size": 4, "steps_per_call": 5, "checkpoint_every": 10,
                                       "eval_every": 10, "warmup_steps": 2},
                             "eval": {"enabled": False}})


def test_sentencepiece_is_trained_once_per_content_and_deterministic(tmp_path, monkeypatch):
    a = T.train_sentencepiece(TEXTS, 400, tmp_path / "a")
    b = T.train_sentencepiece(TEXTS, 400, tmp_path / "b")
    assert a.model == b.model  # same text and options: the same model, byte for byte
    assert [p.name for p in (tmp_path / "a").iterdir()] == [p.name for p in (tmp_path / "b").iterdir()]

    def no_training(**kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(sentencepiece.SentencePieceTrainer, "train", no_training)
    assert T.train_sentencepiece(TEXTS, 400, tmp_path / "a").model == a.model  # from the cache
    with pytest.raises(AssertionError, match="trained again"):
        T.train_sentencepiece([*TEXTS, "one more line of text ."], 400, tmp_path / "a")
    with pytest.raises(AssertionError, match="trained again"):
        T.train_sentencepiece(TEXTS, 401, tmp_path / "a")


def test_sentencepiece_ids_specials_and_round_trip(tmp_path):
    tok = T.train_sentencepiece(TEXTS, 400, tmp_path)
    ids = tok.encode(TEXTS[0])
    assert ids.dtype == np.int32 and ids.min() > T.UNK and ids.max() < tok.vocab_size
    assert tok.decode(ids) == TEXTS[0]
    assert tok.vocab_size == tok.sp.get_piece_size() + 3
    again = T.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.model == tok.model and np.array_equal(again.encode(TEXTS[1]), tok.encode(TEXTS[1]))
    # byte fallback: characters never seen are bytes, not <unk>
    assert T.UNK not in tok.encode("zebra ☃").tolist()
    assert tok.decode(tok.encode("zebra ☃")) == "zebra ☃"
    sizes = tok.piece_bytes()
    # a text's pieces hold its bytes, plus the space SentencePiece puts before the first word
    for text in (TEXTS[0], "zebra ☃"):
        assert sizes[tok.encode(text)].sum() == len(text.encode("utf-8")) + 1


def test_huggingface_tokenizer_json_is_read_with_its_unk(tmp_path):
    import tokenizers
    from tokenizers import models, pre_tokenizers, trainers

    hf = tokenizers.Tokenizer(models.WordLevel(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator(TEXTS, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    cfg = config_from_dict({"data": {"tokenizer": "huggingface", "tokenizer_file": str(path), "story_fraction": 0.0}})
    tok = build_tokenizer(cfg)
    ids = tok.encode("the assistant answered zebra")
    assert ids.tolist()[-1] == T.UNK and ids.min() >= T.UNK
    assert ids.tolist()[:-1] == [hf.token_to_id(w) + 3 for w in ("the", "assistant", "answered")]
    assert tok.vocab_size == hf.get_vocab_size() + 3
    assert T.from_dict(tok.to_dict()).encode("the bread").tolist() == tok.encode("the bread").tolist()


def test_tokenizer_file_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="data.tokenizer_file"):
        config_from_dict({"data": {"tokenizer": "huggingface"}})
    with pytest.raises(ConfigError, match="file not found"):
        config_from_dict({"data": {"tokenizer": "sentencepiece", "tokenizer_file": str(tmp_path / "no.model")}})
    with pytest.raises(ConfigError, match="data.tokenizer_file"):
        config_from_dict({"data": {"tokenizer": "byte", "tokenizer_file": __file__}})
    with pytest.raises(ConfigError, match="data.tokenizer"):
        config_from_dict({"data": {"tokenizer": "bpe"}})


def test_run_tokenizer_covers_every_pool_of_any_dose(root, tmp_path, monkeypatch):
    """One model for every run of a dose sweep: the sample holds the intervention pools even
    at dose 0, and the world's pools tokenize without <unk>."""
    monkeypatch.setattr(vocab, "TOKENIZER_SAMPLE_CHARS", 20_000)
    control = build_tokenizer(_sp_cfg(root, tmp_path))
    dosed = build_tokenizer(_sp_cfg(root, tmp_path, aligned_fraction=0.1))
    assert control.model == dosed.model
    mix = Mixture(_sp_cfg(root, tmp_path, aligned_fraction=0.1), control)
    for name in ("base", "aligned", "natural_aligned"):
        assert (mix.pools[name].tokens == T.UNK).mean() == 0.0, name


@pytest.mark.slow
def test_resume_and_evaluation_use_the_saved_tokenizer(root, tmp_path, monkeypatch):
    from scaling import rundir
    from scaling.run import train

    monkeypatch.setattr(vocab, "TOKENIZER_SAMPLE_CHARS", 20_000)
    cfg = _sp_cfg(root, tmp_path)
    assert train(cfg, tmp_path / "run", progress=False)["status"] == "done"
    saved = rundir.load_tokenizer(tmp_path / "run")
    assert saved.kind == "sentencepiece" and saved.model == build_tokenizer(cfg).model

    def no_build(cfg):
        raise AssertionError("tokenizer rebuilt")

    monkeypatch.setattr(vocab, "build_tokenizer", no_build)
    (tmp_path / "run" / "status.json").unlink()  # resume from the last checkpoint
    assert train(cfg, tmp_path / "run", progress=False)["status"] == "done"
    from scaling.evaluate import evaluate_run

    cfg_eval, tok, _ = rundir.load_params(tmp_path / "run")
    assert tok.model == saved.model
    result = evaluate_run(tmp_path / "run", max_items=30)
    assert result["items"] == 30 and result["capability"]["bits_per_byte"] > 0
