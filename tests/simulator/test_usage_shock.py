"""The usage shock: from its day on every send carries fewer messages and the top-ups follow;
before it the world is the same, row for row (the drift alarms are tested against it)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from common.errors import ConfigError
from simulator.config import SimulateConfig
from simulator.engine import simulate
from tests.simulator.test_engine import ListSink
from tests.simulator.worlds import label_config, simulate_config

DAYS, SHOCK_DAY, FACTOR = 300, 180, 0.7
SHOCK_TS = np.datetime64(simulate_config().start, "ns") + np.timedelta64(SHOCK_DAY, "D")


def _config(**world) -> SimulateConfig:
    sim = simulate_config()
    return dataclasses.replace(sim, customers=400, days=DAYS, truth_samples=16,
                               world=dataclasses.replace(sim.world, **world))


def _world(**world) -> ListSink:
    sink = ListSink()
    simulate(_config(**world), label_config(), sink)
    return sink


@pytest.fixture(scope="module")
def worlds() -> tuple[ListSink, ListSink]:
    return _world(), _world(usage_shock_day=SHOCK_DAY, usage_shock_factor=FACTOR)


def _before(table, ts_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The table and which of its rows come before the shock day."""
    frame = table.to_pandas()
    return frame, pd.to_datetime(frame[ts_column]).to_numpy() < SHOCK_TS


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.reset_index(drop=True).equals(b.reset_index(drop=True))


def test_messages_per_send_drop_by_the_factor_from_the_shock_day(worlds):
    (plain, before), (shocked, shocked_before) = (_before(w.table("usage"), "ts") for w in worlds)
    assert 0 < before.sum() < len(before)
    # the shock adds no random draw: up to its day the usage is the same, row for row
    assert _same(plain[before], shocked[shocked_before])
    after, shocked_after = plain[~before], shocked[~shocked_before]
    raw = shocked_after["messages"].mean() / after["messages"].mean()
    assert raw == pytest.approx(FACTOR, abs=0.08)
    # after its day the draws fall differently (who sends when, who churns), so compare like
    # with like: each send of the shocked world against its customer's mean without the shock
    # (0.68 to 0.72 over nine seeds; 0.64 to 0.71 for the raw ratio above)
    unshocked = after.groupby("customer_id")["messages"].mean()
    both = shocked_after[shocked_after["customer_id"].isin(unshocked.index)]
    ratio = both["messages"].sum() / unshocked.reindex(both["customer_id"]).sum()
    assert ratio == pytest.approx(FACTOR, abs=0.04)


def test_top_ups_follow_usage_and_the_rest_is_untouched_before_the_shock(worlds):
    (charges, before), (shocked_charges, shocked_before) = (
        _before(w.table("charges"), "ts") for w in worlds)
    assert _same(charges[before], shocked_charges[shocked_before])
    bought = [c["amount"][~b].sum() for c, b in
              ((charges, before), (shocked_charges, shocked_before))]
    assert bought[1] < 0.85 * bought[0]  # less credit bought after the shock
    for name, ts in (("tickets", "opened_at"), ("nps", "ts"), ("truth", "t")):
        (a, ab), (b, bb) = (_before(w.table(name), ts) for w in worlds)
        assert ab.any() and _same(a[ab], b[bb]), name


def test_a_factor_of_one_is_no_shock(worlds):
    plain = worlds[0]
    same = _world(usage_shock_day=SHOCK_DAY, usage_shock_factor=1.0)
    for name in plain.batches:
        assert plain.table(name).equals(same.table(name)), name


@pytest.mark.parametrize(("field", "value"), [
    ("usage_shock_factor", 0.0), ("usage_shock_factor", -0.3), ("usage_shock_factor", 1.5),
    ("usage_shock_day", -1),
])
def test_bad_shock_names_its_key(field, value):
    world = simulate_config().world
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(world, **{field: value})
    assert err.value.key == field and str(value) in str(err.value)


def test_shock_day_within_the_simulated_days():
    with pytest.raises(ConfigError) as err:
        _config(usage_shock_day=DAYS, usage_shock_factor=FACTOR)
    assert err.value.key == "world.usage_shock_day" and str(DAYS) in str(err.value)
    assert _config(usage_shock_day=DAYS - 1, usage_shock_factor=FACTOR).world.usage_shock_day \
        == DAYS - 1
