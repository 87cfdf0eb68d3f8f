"""The `score` settings: bands, the retention offer's economics, the control group, drift."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from common.errors import check


@dataclass(frozen=True)
class ScoreConfig:
    """How a week's scores become a list for the retention team (README: weekly scoring)."""

    # lower bound of each band above "low", from the lowest up: {medium: 0.15, ...}
    bands: dict[str, float] = field(default_factory=lambda: {
        "medium": 0.15, "high": 0.30, "very_high": 0.50})
    reasons_from_band: str = "high"  # reason codes for the list and for this band and above
    offer_cost: float = 100_000.0  # what an accepted retention offer costs, in the currency
    contact_cost: float = 20_000.0  # what contacting one customer costs
    gamma_alpha: float = 6.0  # the share of contacted churners an offer keeps ~ Beta(a, b)
    gamma_beta: float = 14.0
    capacity: int | None = 500  # the most customers the team can contact in a week (null: any)
    holdout_share: float = 0.10  # the control group: never listed, measured against the list
    campaign: str = "retention-1"  # the control group's salt: a new name draws a new group
    drift_alpha: float = 0.01  # family-wise false-alarm rate of the weekly drift check
    drift_min_psi: float = 0.10  # and the PSI a shift needs to matter
    expected_draws: int = 1000  # simulated outcomes behind the expected-performance bands

    def __post_init__(self) -> None:
        for key in ("offer_cost", "contact_cost", "gamma_alpha", "gamma_beta", "holdout_share",
                    "drift_alpha", "drift_min_psi"):
            value = getattr(self, key)
            check(math.isfinite(value), key, f"must be a finite number, not {value}")
        check(self.gamma_alpha <= 1e6 and self.gamma_beta <= 1e6, "gamma_alpha",
              f"Beta({self.gamma_alpha}, {self.gamma_beta}) is too large to mean anything "
              "(at most 1e6 each)")
        check(self.expected_draws <= 100_000, "expected_draws",
              f"must be at most 100,000 (1,000 give a stable 2.5..97.5 % band), not "
              f"{self.expected_draws}")
        edges = list(self.bands.values())
        check(len(edges) > 0 and all(0 < e < 1 for e in edges), "bands",
              f"each band's lower bound must be in (0, 1), not {self.bands}")
        check(edges == sorted(edges) and len(set(edges)) == len(edges), "bands",
              f"list the bands from the lowest bound up, each above the last: {self.bands}")
        check("low" not in self.bands, "bands",
              "'low' is the band below the first bound: do not list it")
        check(self.reasons_from_band in self.band_names, "reasons_from_band",
              f"{self.reasons_from_band!r} is not one of {list(self.band_names)}")
        check(self.offer_cost >= 0, "offer_cost", f"must be 0 or more, not {self.offer_cost}")
        check(self.contact_cost >= 0, "contact_cost",
              f"must be 0 or more, not {self.contact_cost}")
        check(self.gamma_alpha > 0 and self.gamma_beta > 0, "gamma_alpha",
              f"Beta(gamma_alpha, gamma_beta) needs both above 0, not "
              f"({self.gamma_alpha}, {self.gamma_beta})")
        check(self.capacity is None or self.capacity >= 1, "capacity",
              f"must be at least 1 customer (or null for no cap), not {self.capacity}")
        check(0 <= self.holdout_share < 1, "holdout_share",
              f"must be in [0, 1), not {self.holdout_share}")
        check(bool(str(self.campaign).strip()), "campaign", "must name the campaign")
        check(0 < self.drift_alpha < 1, "drift_alpha", f"must be in (0, 1), not {self.drift_alpha}")
        check(self.drift_min_psi >= 0, "drift_min_psi",
              f"must be 0 or more, not {self.drift_min_psi}")
        check(self.expected_draws >= 40, "expected_draws",
              f"must be at least 40 (a 2.5..97.5 % band), not {self.expected_draws}")

    @property
    def band_names(self) -> tuple[str, ...]:
        return ("low", *self.bands)

    @property
    def gamma(self) -> float:
        """The mean share of contacted churners an offer keeps."""
        return self.gamma_alpha / (self.gamma_alpha + self.gamma_beta)
