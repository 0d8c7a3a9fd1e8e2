"""Model-size presets, shipped inside the package so a non-editable install has them.

`models/*.toml` at the repository root are the same files for people working in a checkout
(tests/test_sizes.py keeps the two copies identical). A sweep names one with `preset = "nano"`
or varies it as a grid axis (`preset = ["nano", "micro", "small"]`); `scaling train nano`
takes a preset name wherever a config path goes. The two look-ups live in scaling.config,
whose read_toml reads a preset by name (the ground floor imports nothing above it).
"""

from scaling.config import preset_names as names
from scaling.config import preset_path as path

__all__ = ["names", "path"]
