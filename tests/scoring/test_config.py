"""The `score` section's range checks, through params.yaml (file and dotted key named)."""

from __future__ import annotations

import pytest

from pipeline.params import ParamsError, load_params
from tests.pipeline.helpers import write_params


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"bands": {"medium": 0.3, "high": 0.3}}, "score.bands", "each above the last"),
    ({"bands": {"medium": 0.5, "high": 0.3}}, "score.bands", "lowest bound up"),
    ({"offer_cost": float("inf")}, "score.offer_cost", "finite"),
    ({"drift_min_psi": float("inf")}, "score.drift_min_psi", "finite"),
    ({"gamma_alpha": 1e308, "gamma_beta": 1e308}, "score.gamma_alpha", "too large"),
    ({"expected_draws": 100_000_000}, "score.expected_draws", "at most"),
    ({"bands": {"low": 0.1, "high": 0.2}}, "score.bands", "'low'"),
    ({"bands": {"high": 1.2}}, "score.bands", "(0, 1)"),
    ({"reasons_from_band": "urgent"}, "score.reasons_from_band", "'urgent'"),
    ({"capacity": 0}, "score.capacity", "at least 1"),
    ({"holdout_share": 1.0}, "score.holdout_share", "[0, 1)"),
    ({"offer_cost": -1}, "score.offer_cost", "0 or more"),
    ({"gamma_beta": 0}, "score.gamma_alpha", "Beta"),
    ({"campaign": " "}, "score.campaign", "name"),
    ({"drift_alpha": 0}, "score.drift_alpha", "(0, 1)"),
    ({"expected_draws": 30}, "score.expected_draws", "at least 40"),
    ({"capacity": "many"}, "score.capacity", "expected int"),
])
def test_bad_score_settings_name_the_key(tmp_path, change, key, words):
    with pytest.raises(ParamsError) as err:
        load_params(write_params(tmp_path, score=change))
    assert key in str(err.value) and words in str(err.value)


def test_the_defaults_load_and_no_cap_is_allowed(tmp_path):
    p = load_params(write_params(tmp_path, score={"capacity": None}))
    assert p.score.capacity is None and p.score.band_names[0] == "low"
    assert p.score.gamma == pytest.approx(0.3)
