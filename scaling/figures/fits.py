"""Which fit.json entry a dose panel draws, and how its title says the halving dose."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from scaling.figures.tables import group_text
from scaling.stats import curve_band, predict
from scaling.stats.halving import text as halving_text
from scaling.stats.results import rises_text

# The curve a dose panel draws, first usable wins: the control-relative fits (their ED50
# halves the control's rate) before the drc-comparable LL.2 with limits 0 and 1.
CURVE_ORDER = (("LL.3", False), ("LL.4", False), ("LL.2", True), ("LL.2", False))


def choose_fit(fits: Sequence[dict], group: dict) -> dict | None:
    """The fit.json entry a dose panel draws (CURVE_ORDER: model, with a background)."""
    mine = [f for f in fits if f.get("usable") and f.get("vcov")
            and _matches(f.get("group") or {}, group)]
    for model, background in CURVE_ORDER:
        for f in mine:
            if f.get("model") == model and isinstance(f.get("background"), dict) == background:
                return f
    return None


def with_halving(fits: Sequence[dict], halvings: Sequence[dict]) -> list[dict]:
    """Each fit.json fit with its group's halving entry (scaling.stats.halving) under "halving":
    the panels say the halving dose as every other output does. Fits of an older fit.json
    (no "halving") are returned as they are."""
    by_group = {_group_key(h.get("group") or {}): h for h in halvings}
    return [{**f, "halving": by_group[_group_key(f.get("group") or {})]}
            if _group_key(f.get("group") or {}) in by_group else f for f in fits]


def _group_key(group: dict) -> tuple:
    return tuple(sorted((k, group_text(v)) for k, v in group.items()))


def halving_dose(entry: dict) -> dict | None:
    """The entry's control-relative ED50 {estimate, lower, upper}, if it has one (a curve that
    rises has none)."""
    ed = (entry.get("ed_control") or {}).get("50")
    bounded = ed and all(ed.get(k) is not None for k in ("estimate", "lower", "upper"))
    return ed if bounded else None  # an unbounded interval (overflow) marks nothing


def fit_label(entry: dict) -> str:
    bg = entry.get("background")
    axis = " on ln(x0+dose)" if isinstance(bg, dict) else ""
    if entry.get("halving"):
        return f"{entry['model']}{axis} fit; {halving_text(entry['halving'], short=True)}"
    ed, raw = halving_dose(entry), (entry.get("ed_control") or {}).get("50") or {}
    half = ""
    if raw.get("rises"):  # its control-relative ED50 is half-way up: no halving dose
        half = "; " + rises_text(raw, short=True)
    elif (ed or raw).get("extrapolated"):  # a number outside the doses tested says nothing
        half = "; halving dose beyond the doses"
    elif raw.get("estimate") is not None and not ed:
        half = f"; halving dose {raw['estimate']:.2g} (no CI)"
    elif ed:
        half = f"; halving dose {ed['estimate']:.2g} {interval_text(ed, entry.get('dose_range'))}"
    return f"{entry['model']}{axis} fit{half}"


UNBOUNDED_BELOW = 100.0  # a lower bound this many times below the lowest dose tested bounds nothing


def interval_text(ed: dict, dose_range=None) -> str:
    """A dose interval, with a side that bounds nothing said so: an upper bound above 1 (no
    dose exceeds all the tokens) or a lower bound more than UNBOUNDED_BELOW times below the
    lowest dose tested (carried by the log scale alone), printed as open: "[0.0017, ∞)", "(0, 0.31]"."""
    low_dose = (dose_range or [None])[0]
    open_low = low_dose is not None and low_dose > 0 and ed["lower"] < low_dose / UNBOUNDED_BELOW
    open_high = ed["upper"] > 1
    if open_low and open_high:
        return "(0, \u221e)"
    if open_high:
        return f"[{ed['lower']:.2g}, \u221e)"
    if open_low:
        return f"(0, {ed['upper']:.2g}]"
    return f"[{ed['lower']:.2g}, {ed['upper']:.2g}]"


# Group keys a panel may leave out, and the value they then stand for (pretraining curves).
IMPLIED_GROUP = {"post_training": "none", "world_variant": "normal"}


def _matches(fit_group: dict, group: dict) -> bool:
    return all(group_text(v) == group_text(group.get(k, IMPLIED_GROUP.get(k)))
               for k, v in fit_group.items())


def fitted_curve(entry: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The fitted curve with its band over the positive doses, and at dose 0 where the fit
    saw the controls (LL.3/LL.4) or has a background (then f(0) is a finite plateau)."""
    band = curve_band(entry)
    at_zero = None
    if entry.get("data") == "all doses" or isinstance(entry.get("background"), dict):
        at_zero = predict(entry, [0.0])
    return band, at_zero
