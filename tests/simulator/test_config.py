"""The `simulate` config: the committed worlds pass, and each impossible value stops with a
ConfigError whose key names the field to change."""

from __future__ import annotations

import dataclasses

import pytest

from common.errors import ConfigError, UserError
from simulator.config import ChannelConfig, PlanConfig, SimulateConfig, WorldConfig
from simulator.rules import Rules
from tests.simulator.worlds import WORLDS, simulate_config


@pytest.fixture(scope="module")
def sim() -> SimulateConfig:
    return simulate_config()


@pytest.mark.parametrize("path", WORLDS)
def test_committed_worlds_pass(path):
    config = simulate_config(path)
    assert isinstance(config.world, WorldConfig)
    assert all(isinstance(p, PlanConfig) for p in config.world.plans)


@pytest.mark.parametrize(("field", "value"), [
    ("seed", -1), ("customers", 0), ("days", 0), ("truth_samples", 0), ("format", "xlsx"),
])
def test_bad_simulate_value_names_its_key(sim, field, value):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(sim, **{field: value})
    assert err.value.key == field
    assert isinstance(err.value, UserError) and str(value) in str(err.value)


@pytest.mark.parametrize(("field", "value"), [
    ("growth_per_year", -1.0),
    ("nowruz_dip", 1.5),
    ("weekly_seasonality", -0.1),
    ("engagement_sd", -1.0),
    ("daily_sd", -0.01),
    ("nps_sd", -1.0),
    ("settle_days", 0.5),
    ("batches_per_active_day", 0.9),
    ("price_per_message", -1.0),
    ("ticket_base_per_day", -0.001),
    ("referral_per_day", -0.001),
    ("resolve_days", -1.0),
    ("billing_issue_start", 1.2),
    ("delivery_issue_stay", -0.1),
    ("nps_first_day", -1),
    ("nps_every_days", 0),
    ("nps_response_rate", 1.01),
    ("churn_noise_floor", -0.01),
    ("cancel_share", 2.0),
    ("reactivation_share", -0.5),
    ("plan_change_rate", 1.5),
    ("onboarding_days", -1),
    ("business_grace_days", -1),
    ("late_payer_share", 1.5),
    ("late_payer_share", -0.1),
])
def test_bad_world_value_names_its_key(sim, field, value):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(sim.world, **{field: value})
    assert err.value.key == field


def test_a_problem_that_never_starts_nor_ends_is_refused(sim):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(sim.world, billing_issue_start=0.0, billing_issue_stay=1.0)
    assert err.value.key == "billing_issue_stay"
    dataclasses.replace(sim.world, billing_issue_start=0.0)  # never starts: fine
    dataclasses.replace(sim.world, billing_issue_stay=1.0)  # never ends once started: fine


@pytest.mark.parametrize(("field", "value"), [
    ("fee", -1.0), ("period_days", 0), ("share", 1.2), ("name", ""),
])
def test_bad_plan_value_names_its_key(sim, field, value):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(sim.world.plans[0], **{field: value})
    assert err.value.key == field


@pytest.mark.parametrize(("field", "value"), [("share", -0.1), ("name", "referral"), ("name", "")])
def test_bad_channel_value_names_its_key(sim, field, value):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(sim.world.channels[0], **{field: value})
    assert err.value.key == field


def test_shares_must_add_up_to_one(sim):
    w = sim.world
    plans = (dataclasses.replace(w.plans[0], share=w.plans[0].share - 0.05), *w.plans[1:])
    with pytest.raises(ConfigError, match="sum to 0.95") as err:
        dataclasses.replace(w, plans=plans)
    assert err.value.key == "plans"
    channels = (*w.channels, ChannelConfig("radio", 0.1, 0.0))
    with pytest.raises(ConfigError, match="sum to 1.1") as err:
        dataclasses.replace(w, channels=channels)
    assert err.value.key == "channels"
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(w, channels=())
    assert err.value.key == "channels"


def test_names_must_be_distinct(sim):
    w = sim.world
    twin = dataclasses.replace(w.plans[1], name=w.plans[0].name)
    with pytest.raises(ConfigError, match=repr(w.plans[0].name)) as err:
        dataclasses.replace(w, plans=(w.plans[0], twin, *w.plans[2:]))
    assert err.value.key == "plans"


def test_overpay_law_needs_paid_plans(sim):
    w = sim.world
    free = dataclasses.replace(w.plans[0], fee=0.0)
    Rules(dataclasses.replace(w, plans=(free, *w.plans[1:])))  # fine while the law is off
    with pytest.raises(ConfigError, match="needs every plan's fee above 0") as err:
        dataclasses.replace(w, plans=(free, *w.plans[1:]), churn_overpay=0.5)
    assert err.value.key == "churn_overpay"
