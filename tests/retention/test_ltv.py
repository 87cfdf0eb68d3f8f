"""The documents' LTV with a Kaplan-Meier lifespan, checked by hand."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from retention import ltv
from tests.imports import ROOT, imports


def test_kaplan_meier_by_hand():
    # durations 2, 3+, 4, 4, 6+ : S = 4/5 after 2, then 4/5 * (1 - 2/3) after 4
    times, surv = ltv.kaplan_meier([2, 3, 4, 4, 6], [True, False, True, True, False])
    assert times.tolist() == [2.0, 4.0]
    assert surv == pytest.approx([0.8, 0.8 / 3])
    # area to 6: 2 * 1 + 2 * 0.8 + 2 * 0.8 / 3
    assert ltv.restricted_mean([2, 3, 4, 4, 6], [True, False, True, True, False]) == pytest.approx(
        2 + 1.6 + 1.6 / 3)
    assert ltv.restricted_mean([5, 5], [False, False]) == 5.0  # nobody left: the whole span


def test_lifetime_value_multiplies_the_three_factors():
    runs = pd.DataFrame({"customer_id": ["a", "b"], "run": [0, 0],
                         "run_start": pd.to_datetime(["2024-01-01", "2024-01-01"]),
                         "churn": pd.to_datetime(["2024-01-31", None])})
    subs = pd.DataFrame({"customer_id": ["a", "b", "b"], "fee": [30.0, 30.0, 30.0],
                         "period_start": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-31"])})
    charges = pd.DataFrame({"customer_id": ["b"], "amount": [10.0],
                            "ts": pd.to_datetime(["2024-02-10 09:00"])})
    v = ltv.lifetime_value(runs, subs, charges, as_of=dt.date(2024, 3, 1))
    assert v.average_purchase_value == pytest.approx(100 / 4)
    assert v.purchases_per_day == pytest.approx(4 / (30 + 60))
    assert v.lifespan_days == pytest.approx(30 + 0.5 * 30)  # 1 to day 30, then 1/2 to day 60
    assert v.ltv == pytest.approx(25 * 4 / 90 * 45)
    assert (v.customers, v.churned) == (2, 1)


def test_retention_is_a_pure_library():
    edge = {"pipeline", "typer", "yaml", "rich", "mlflow", "matplotlib", "dvc"}
    bad = {(p.name, n) for p in (ROOT / "retention").rglob("*.py") for n in imports(p)
           if n.split(".")[0] in edge}
    assert not bad
    assert "features.observations" in imports(ROOT / "retention" / "figures.py")
