"""The eval splits, declared once: what each draws from, how it is labelled and drawn.

A split is a set of eval items, the `split` column of results.csv. The world's splits
(`SPLITS`, in their order) are defined by which verb pairs and which scenario families
their items use (scaling.world: `World.pairs`, `World.families`):

  matched      the pairs the AI documents use, in the families they use
  unseen_pair  transfer pairs (only in human stories), in the same families
  held_out     transfer pairs, in the families no AI document uses

A transfer split asks about actions no AI document shows, so counting cannot move it.

World version 4 (the pointer world, scaling.world.pointer) has splits of its own
(`POINTER`), defined by which verbs and which value framing the item's document uses:

  matched           verbs the AI documents use, values stated as kind / cruel (their framing)
  unseen_verb       verbs only human text uses, kind / cruel
  held_out_framing  matched verbs, values stated as praised / blamed (no AI document's framing)

Its comprehension readout (can the model answer which act a story called kind?) is reported
under the same three names (`pairs`: which verbs, `families`: which framing).

Post-training with RL on part of the families adds `rl_trained` and `rl_other`
(`POST_TRAINING`, scaling.results). Scenario files (scaling.data.scenarios) may bring their own
split names (default `custom`): they are ordered after the world's, in order of first
appearance. Nothing here imports JAX or another module of the package.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    name: str
    label: str  # what a drop in misalignment on it means, in words
    transfer: bool  # its verb pairs are in no AI document
    pairs: str  # the world's verb pairs it draws from: "matched" or "transfer"
    families: str  # the world's scenario families it draws from: "matched" or "held_out"
    marker: str  # figure marker and line style
    line: str


WORLD = (
    Split("matched", "familiar actions in familiar situations", False, "matched", "matched", "o", "-"),
    Split("unseen_pair", "new actions in familiar situations", True, "transfer", "matched", "^", "--"),
    Split("held_out", "new actions in new situations", True, "transfer", "held_out", "s", ":"),
)
POINTER = (
    WORLD[0],
    Split("unseen_verb", "new actions, the AI documents' framing", True, "unseen", "ai", "^", "--"),
    Split("held_out_framing", "familiar actions, values framed as no AI document frames them", True,
          "matched", "held_out", "s", ":"),
)
BY_NAME = {s.name: s for s in WORLD + POINTER}
SPLITS = tuple(s.name for s in WORLD)  # the world's splits, in order
POINTER_SPLITS = tuple(s.name for s in POINTER)  # world version 4's
MAIN = "matched"  # the split the dose-response headline is fitted on
TRANSFER = tuple(s.name for s in WORLD if s.transfer)
POST_TRAINING = ("rl_trained", "rl_other")  # RL on part of the families: its families, the others
CUSTOM = "custom"  # a scenario file's split when its records name none
# A treated run (scaling.treatments) scores its items again as SPLIT + suffix: with the aligned
# control token before the persona (conditional training), or with the harm tag allowed
# before each option (harmfulness tags).
TREATMENT_SUFFIXES = ("_conditioned", "_tag_allowed")
OTHER_STYLE = ("D", "-.")  # figure marker and line style of a split not of the world


def get(name: str) -> Split:
    """The world's split `name`; KeyError naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown split {name!r} (the world's: {', '.join(SPLITS)})") from None


def order(names: Iterable[str]) -> list[str]:
    """The world's splits in their order, then the others in order of first appearance."""
    names = list(dict.fromkeys(names))
    return [s for s in SPLITS if s in names] + [s for s in names if s not in SPLITS]


def rank(name: str) -> int:
    """A split's place among the world's; every other split after them."""
    return SPLITS.index(name) if name in SPLITS else len(SPLITS)


def unknown(rows: Iterable[tuple[str, object]]) -> list[str]:
    """The splits of (split, input_files) rows (results.csv) that no source brings: neither
    the world's, nor post-training's, nor the row's run read scenario files (its input_files
    names eval.files, whose records may name any split). In order of first appearance."""
    return list(dict.fromkeys(split for split, files in rows
                              if split not in SPLITS and split not in POINTER_SPLITS and split not in POST_TRAINING
                              and not is_treatment(split, files)
                              and "eval.files=" not in (files if isinstance(files, str) else "")))


def is_treatment(name: str, files=None) -> bool:
    """A treatment's scoring of a split (TREATMENT_SUFFIXES) of the world or of a scenario file."""
    for suffix in TREATMENT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[:-len(suffix)]
            return base in SPLITS or not unknown([(base, files)])
    return False


def style(name: str) -> tuple[str, str]:
    """(marker, line style) of a split in the figures."""
    s = BY_NAME.get(name)
    return (s.marker, s.line) if s else OTHER_STYLE
