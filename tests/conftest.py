import json
import os

# Tests run on the CPU; tests of sharding code set their own device count.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One build of the world datasets per checkout, shared by tests and their subprocesses.
os.environ.setdefault("SCALING_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "test-data"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scaling.plan import config_from_dict  # noqa: E402


class TextSource:
    """A minimal BatchSource over a fixed text, for testing the trainer alone."""

    def __init__(self, cfg, tok, text: str, total_steps: int | None = None):
        self.cfg, self.total_steps = cfg, total_steps or cfg.train.steps
        self.data = tok.encode(text)

    def batches(self, start, n):
        B, L = self.cfg.train.batch_size, self.cfg.model.seq_len
        out = np.empty((n, B, L + 1), np.int32)
        for i in range(n):
            starts = np.random.default_rng([self.cfg.train.seed, start + i]).integers(
                0, len(self.data) - L - 1, B)
            out[i] = np.stack([self.data[j:j + L + 1] for j in starts])
        return out

    def heldout_batches(self, n):
        return self.batches(10**9, n)

    def accounting(self, steps_done):
        return {"steps": steps_done}


def _tiny_raw(**sections) -> dict:
    """The tiny model's config as sections; `sections` update them (train={"steps": 10})."""
    raw = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16},
           "train": {"steps": 20, "batch_size": 4, "steps_per_call": 5, "checkpoint_every": 5,
                     "eval_every": 10, "warmup_steps": 2},
           "data": {"story_fraction": 0.0},  # rows of 17 tokens cannot hold a story unit
           "eval": {"enabled": False}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return raw


def tiny_config(**sections):
    return config_from_dict(_tiny_raw(**sections))


def tiny_sweep(grid: str = "", **sections) -> str:
    """A sweep file's text for the tiny model (the `tiny_config` sections as `[config.*]`
    tables on the nano preset), followed by `grid` (its `[[grid]]` tables)."""
    def value(v) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else json.dumps(v)

    lines = ['preset = "nano"']
    for section, values in _tiny_raw(**sections).items():
        lines += [f"[config.{section}]", *(f"{k} = {value(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n" + grid


@pytest.fixture
def tiny():
    return tiny_config


SMALL_POOLS = {"base": 2000, "base_heldout": 100, "natural_aligned": 300, "natural_misaligned": 300,
               "aligned": 400, "misaligned": 400}
SMALL_STORY_UNITS = 1024  # 8 units per verb pair


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A data dir holding a small world (the real pools are ~15x larger; same generator)."""
    from scaling.data import datasets
    from scaling.world.stories import MirroredStories

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "POOL_DOCS", SMALL_POOLS)
        mp.setattr(MirroredStories, "pool_size", SMALL_STORY_UNITS)
        path = tmp_path_factory.mktemp("data")
        datasets.prepare(datasets.AlignmentWorld, 0, path)
        for variant in ("normal", "flipped"):
            datasets.prepare(datasets.AlignmentStories, 0, path, variant)
        yield path
