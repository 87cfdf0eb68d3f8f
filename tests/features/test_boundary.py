"""Point in time at the boundary: a point at t sees exactly what an export taken on day t holds.

Cut the export at a day D the way the business would have exported it that day. Every point
with t < D gets the same features from the cut as from the full export, and the points at
t = D from the cut are exactly the customers at risk at D, with the same features as the full
export gives them at D. The product's cut is checked against one written here, apart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import observations as obs
from pipeline import artifacts, io, tables
from pipeline.stages import features as features_stage
from pipeline.stages import ingest as ingest_stage
from pipeline.stages import observe as observe_stage
from records.contract import TABLES
from tests.conftest import build_pipeline

KEYS = ["customer_id", "t"]
NOT_COMPARED = ["label", "truth"]  # censoring depends on the export date, truth on the sim


@pytest.fixture(scope="module")
def full(params, tiny_world, tmp_path_factory):
    """The tiny world through ingest, observe and features, with its interim frames."""
    paths = build_pipeline(params, tiny_world, tmp_path_factory.mktemp("full"))
    m = tables.manifest(paths)
    interim = {name: pd.read_parquet(path) for name, path in tables.interim_files(paths, m).items()}
    return paths, m, interim, pd.read_parquet(paths.features_table)


def independent_cut(interim: dict[str, pd.DataFrame], day: dt.date, grace: int) -> dict:
    """The rule of definitions.md, written again with pandas."""
    d = pd.Timestamp(day)
    out = {"customers": interim["customers"][interim["customers"]["signup_date"] < d.date()]}
    subs = interim["subscriptions"].sort_values(["customer_id", "period_start"])
    ps, pe = pd.to_datetime(subs["period_start"]), pd.to_datetime(subs["period_end"])
    nxt = ps.groupby(subs["customer_id"]).shift(-1)
    known = ((subs["outcome"] == "cancelled") & (pe < d)) | (
        (subs["outcome"] == "lapsed") & (pe + pd.Timedelta(days=grace) < d)) | (
        (subs["outcome"] == "renewed") & (nxt < d))
    subs = subs.assign(outcome=subs["outcome"].where(known, "open"))
    out["subscriptions"] = subs[ps < d]
    for name, frame in interim.items():
        if name in out:
            continue
        ts = TABLES[name].event_ts
        kept = frame[frame[ts] < d].copy()
        if name == "tickets":
            kept["resolved_at"] = kept["resolved_at"].where(kept["resolved_at"] < d)
        out[name] = kept
    return out


def _named(paths) -> pd.DataFrame:
    """The feature table with category codes turned back into names: codes number the values
    an export holds, and a cut may hold fewer (the model's contract pins them at scoring)."""
    table = pd.read_parquet(paths.features_table)
    vocab = io.read_json(paths.feature_meta)["vocab"]
    for column, values in vocab.items():
        table[column] = table[column].map(lambda code, v=values: v[code] if code >= 0 else None)
    return table


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _check_day(params, full, day: dt.date, tmp: Path) -> None:
    paths, m, interim, _ = full
    grace = params.labels.grace_days
    cut_paths = dataclasses.replace(paths, interim=str(tmp / "interim"),
                                    observations=str(tmp / "observations"),
                                    features=str(tmp / "features"))
    ingest_stage.cut(paths, Path(cut_paths.interim), day, grace)

    # the product's cut is the rule written apart
    expected = independent_cut(interim, day, grace)
    for name in m.tables:
        got = pd.read_parquet(Path(cut_paths.interim) / f"{name}.parquet")
        pd.testing.assert_frame_equal(_sorted(got), _sorted(expected[name]), check_dtype=False)

    observe_stage.run(params.labels, cut_paths)
    features_stage.run(params.features, params.labels, cut_paths)
    cut_table = _named(cut_paths)
    full_table = _named(paths)
    d = pd.Timestamp(day)

    # every point before D: the same points, the same features
    before = [frame[pd.to_datetime(frame["t"]) < d].drop(columns=NOT_COMPARED)
              .sort_values(KEYS).reset_index(drop=True) for frame in (cut_table, full_table)]
    pd.testing.assert_frame_equal(before[0], before[1])

    # the points at D: the customers at risk at D in the full export, seen as of D
    customers, subs = observe_stage.interim_frames(paths, m)
    runs = obs.runs(customers, subs, view=day, grace_days=grace)
    at_d = obs.scoring_points(runs, day=day)
    at_d["state"] = obs.state(at_d, subs)
    at_d["label"] = pd.array([pd.NA] * len(at_d), dtype="Int8")
    full_at_d = dataclasses.replace(paths, observations=str(tmp / "full_obs"),
                                    features=str(tmp / "full_feat"))
    inputs = artifacts.read_all(*tables.inputs(paths, "interim"))
    with artifacts.stage_output(Path(full_at_d.observations), "observe", inputs) as out:
        table = observe_stage.arrow(at_d, pd.Series(float("nan"), index=at_d.index))
        pq.write_table(table, out / paths.observations_table.name)
    features_stage.run(params.features, params.labels, full_at_d)
    want = _named(full_at_d)
    got = cut_table[pd.to_datetime(cut_table["t"]) == d]
    assert len(got) == len(want) == runs.loc[obs.at_risk(runs, day), "customer_id"].nunique()
    cols = [c for c in want.columns if c not in NOT_COMPARED]
    pd.testing.assert_frame_equal(got[cols].sort_values(KEYS).reset_index(drop=True),
                                  want[cols].sort_values(KEYS).reset_index(drop=True))


def _days(full) -> dict[str, dt.date]:
    """Days where the boundary bites: a renewal, a signup, a ticket resolution, the ends."""
    _, m, interim, _ = full
    subs = interim["subscriptions"]
    customers = interim["customers"]
    tickets = interim["tickets"].dropna(subset=["resolved_at"])
    mid = lambda s: sorted(s)[len(s) // 2]  # noqa: E731
    first = min(customers["signup_date"])
    return {
        "renewal": mid(list(subs["period_end"])),
        "period start": mid(list(subs["period_start"])),
        "signup": mid(list(customers["signup_date"])),
        "ticket resolved": mid(list(pd.to_datetime(tickets["resolved_at"]).dt.date)),
        "first month": first + dt.timedelta(days=30),
        "export day": m.as_of,
    }


@pytest.mark.parametrize("which", ["renewal", "period start", "signup", "ticket resolved",
                                   "first month", "export day"])
def test_boundary_days(params, full, tmp_path, which):
    _check_day(params, full, _days(full)[which], tmp_path)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(offset=st.integers(min_value=20, max_value=400))
def test_any_day(params, full, tmp_path_factory, offset):
    _, m, interim, _ = full
    first = min(interim["customers"]["signup_date"])
    day = min(first + dt.timedelta(days=offset), m.as_of)
    _check_day(params, full, day, tmp_path_factory.mktemp("cut"))
