# Run the package's CLI on a variant of the pointer world (fits/world_v4/probes.md, package rounds).
"""python benchmarks/world_v4/variant.py CROSS_SHARE scaling-cli-args...: the CLI with
scaling.world.pointer.CROSS_SHARE set, and the data version suffixed "-crossX" so its datasets and
token caches never mix with the default world's. Use its own --out: run ids hash the config,
which does not hold this module constant."""
import sys

from scaling.cli import main
from scaling.data import datasets
from scaling.world import pointer as P

cross = float(sys.argv[1])
P.CROSS_SHARE = cross
P.DATA_VERSION = datasets.POINTER_DATA_VERSION = f"{P.DATA_VERSION}-cross{cross:g}"
sys.exit(main(sys.argv[2:]))
