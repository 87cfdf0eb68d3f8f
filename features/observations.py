"""Observation points: which (customer, t) pairs exist, and what kind they are.

Points are counted from the start of each active run (signup, or a reactivation), so
they fall on different calendar days for different customers (definitions.md).
"""

from __future__ import annotations

import numpy as np

NONE, YOUNG, EARLY_LIFE, ONGOING, SCORING = 0, 1, 2, 3, 4
KIND_NAMES = {YOUNG: "young", EARLY_LIFE: "early_life", ONGOING: "ongoing", SCORING: "scoring"}


def grid_kind(
    age_days: np.ndarray, *, every_days: int, min_tenure_days: int, early_life_days: int
) -> np.ndarray:
    """Kind code of the grid point at `age_days` into an active run, or NONE if it is off-grid.

    Young points every `every_days` from `min_tenure_days` up to (not including) the early-life
    day; the early-life point itself; ongoing points every `every_days` after it.
    """
    age = np.asarray(age_days)
    young = (
        (age >= min_tenure_days)
        & (age < early_life_days)
        & ((age - min_tenure_days) % every_days == 0)
    )
    early = age == early_life_days
    ongoing = (age > early_life_days) & ((age - early_life_days) % every_days == 0)
    kind = np.full(age.shape, NONE, dtype=np.int8)
    kind[young] = YOUNG
    kind[early] = EARLY_LIFE
    kind[ongoing] = ONGOING
    return kind
