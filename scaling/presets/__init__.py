"""Model-size presets, shipped inside the package so a non-editable install has them.

`models/*.toml` at the repository root are the same files for people working in a checkout
(tests/test_sizes.py keeps the two copies identical). A sweep names one with `preset = "nano"`
or varies it as a grid axis (`preset = ["nano", "micro", "small"]`); `scaling train nano`
takes a preset name wherever a config path goes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def path(name: str) -> Path | None:
    """The preset's file, or None if there is no such preset."""
    if not isinstance(name, str) or "/" in name or "\\" in name:
        return None
    entry = resources.files(__name__) / f"{name}.toml"
    return Path(str(entry)) if entry.is_file() else None
