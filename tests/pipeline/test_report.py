"""`churn report` end to end: the documents' worked examples through `churn ingest` and
`churn report`, the stage on a small simulated world, and Jalali labels."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import jdatetime
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import artifacts, tables
from pipeline.cli import app
from pipeline.stages import ingest as ingest_stage
from pipeline.stages import report as report_stage
from retention import holdout
from tests.pipeline.helpers import write_params

runner = CliRunner()


def _day(d: dt.date, calendar: str) -> str:
    if calendar == "jalali":
        return jdatetime.date.fromgregorian(date=d).strftime("%Y-%m-%d")
    return d.isoformat()


def write_export(raw: Path, *, month: tuple[dt.date, dt.date], S: int, N: int, lost_start: int,
                 lost_new: int, calendar: str = "gregorian") -> None:
    """A hand-built export whose customers give exactly S, N and lost = lost_start + lost_new
    for the month [p0, p1): S customers signed up 20 days before p0 on 30-day plans (lost_start
    of them cancel at their renewal on p0 + 10, the rest renew), N sign up on p0 + 4 (lost_new
    of them on a 20-day period they cancel, the rest on a 30-day one still open at p1)."""
    p0, p1 = month
    assert (p1 - p0).days >= 29
    d = lambda x: _day(x, calendar)  # noqa: E731
    customers = ["customer_id,signup_date,channel"]
    subs = ["customer_id,period_start,period_end,plan,fee,outcome"]
    cid = 0
    old, renew, new = p0 - dt.timedelta(days=20), p0 + dt.timedelta(days=10), p0 + dt.timedelta(days=4)
    for i in range(S):
        cid += 1
        customers.append(f"{cid},{d(old)},organic")
        if i < lost_start:
            subs.append(f"{cid},{d(old)},{d(renew)},basic,100,cancelled")
        else:
            subs.append(f"{cid},{d(old)},{d(renew)},basic,100,renewed")
            subs.append(f"{cid},{d(renew)},{d(renew + dt.timedelta(days=30))},basic,100,open")
    for i in range(N):
        cid += 1
        customers.append(f"{cid},{d(new)},ads")
        days = 20 if i < lost_new else 30
        outcome = "cancelled" if i < lost_new else "open"
        subs.append(f"{cid},{d(new)},{d(new + dt.timedelta(days=days))},basic,100,{outcome}")
    ts = f"{d(p0 + dt.timedelta(days=5))} 10:00:00"
    raw.mkdir(parents=True)
    (raw / "customers.csv").write_text("\n".join(customers) + "\n")
    (raw / "subscriptions.csv").write_text("\n".join(subs) + "\n")
    (raw / "usage.csv").write_text(f"customer_id,ts,messages\n1,{ts},5\n")
    (raw / "charges.csv").write_text(f"customer_id,ts,amount\n1,{ts},50\n")
    (raw / "tickets.csv").write_text(f"customer_id,opened_at,topic,resolved_at\n1,{ts},billing,\n")


def _ingest_and_report(tmp_path: Path, monkeypatch, *, as_of: dt.date, calendar="gregorian",
                       extra: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str]:
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, paths={"raw": "raw"},
                          data={"as_of": as_of.isoformat(), "calendar": calendar})
    result = runner.invoke(app, ["ingest", "--params", str(params)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", "--params", str(params), *extra])
    assert result.exit_code == 0, result.output
    return pd.read_csv(_out(tmp_path, extra) / "figures.csv"), result.output


def _out(tmp_path: Path, extra: tuple[str, ...] = ()) -> Path:
    """reports/retention/<period>, or .../as-of-<date>/<period> with --as-of."""
    valued = [i for i, e in enumerate(extra) if e in ("--as-of", "--period")]
    flags = {extra[i]: extra[i + 1] for i in valued}
    root = tmp_path / "reports" / "retention"
    if "--as-of" in flags:
        root = root / f"as-of-{flags['--as-of']}"
    return root / flags.get("--period", "month")


# (S, N, lost, E) -> CRR, churn, the documents' worked examples; lost split into (of S, of N)
VECTORS = [
    ((1000, 200, 250, 950), (230, 20), 0.75, 0.25),
    ((20, 5, 1, 24), (1, 0), 0.95, 0.05),
    ((44, 12, 13, 43), (10, 3), 0.7045, 0.2955),
]


@pytest.mark.parametrize(("counts", "split", "crr", "churn"), VECTORS)
def test_worked_examples_end_to_end(tmp_path, monkeypatch, counts, split, crr, churn):
    S, N, lost, E = counts
    month = (dt.date(2024, 3, 1), dt.date(2024, 4, 1))
    write_export(tmp_path / "raw", month=month, S=S, N=N, lost_start=split[0], lost_new=split[1])
    figures, output = _ingest_and_report(tmp_path, monkeypatch, as_of=month[1])
    assert figures["label"].tolist() == ["2024-02", "2024-03"]
    feb, mar = figures.iloc[0], figures.iloc[1]
    assert np.isnan(feb["crr"]) and feb["S"] == 0  # S = 0: an empty CRR, not an error
    assert (mar["S"], mar["N"], mar["lost"], mar["E"]) == (S, N, lost, E)
    assert mar["status"] == "complete"
    assert round(100 * mar["crr"], 2) == round(100 * crr, 2)
    assert round(100 * mar["churn_rate"], 2) == round(100 * churn, 2)
    assert mar["crr"] == pytest.approx((E - N) / S, abs=1e-9)
    assert mar["churn_start"] == pytest.approx(split[0] / S, abs=1e-9)
    assert f"{100 * crr:.2f} %" in output
    summary = (_out(tmp_path) / "summary.md").read_text()
    assert f"| CRR | {100 * crr:.2f} % |" in summary


def test_jalali_labels(tmp_path, monkeypatch):
    farvardin = (dt.date(2025, 3, 21), dt.date(2025, 4, 21))  # 1 Farvardin 1404 .. 1 Ordibehesht
    write_export(tmp_path / "raw", month=farvardin, S=20, N=5, lost_start=1, lost_new=0,
                 calendar="jalali")
    figures, output = _ingest_and_report(tmp_path, monkeypatch, as_of=farvardin[1],
                                         calendar="jalali")
    assert figures["label"].tolist() == ["Esfand 1403", "Farvardin 1404"]
    row = figures.iloc[1]
    assert (row["S"], row["N"], row["E"], row["crr"]) == (20, 5, 24, 0.95)
    assert "Farvardin 1404" in output
    quarter, _ = _ingest_and_report(tmp_path, monkeypatch, as_of=farvardin[1], calendar="jalali",
                                    extra=("--period", "quarter"))
    assert quarter["label"].tolist() == ["Q4 1403", "Q1 1404"]
    assert quarter["status"].tolist() == ["complete", "partial"]


def test_bad_period_flag(tmp_path):
    params = write_params(tmp_path)
    result = runner.invoke(app, ["report", "--params", str(params), "--period", "week"])
    assert result.exit_code == 2
    assert "report.period" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def ingested(params, tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = dataclasses.replace(
        params.paths, raw=str(tiny_world / "export"), sim=str(tiny_world),
        interim=str(out / "interim"), observations=str(out / "observations"),
        features=str(out / "features"), models=str(out / "models"),
        evaluation=str(out / "evaluation"), registered=str(out / "registered.json"),
        report=str(out / "report"))
    ingest_stage.run(params.data, paths, Path(paths.raw))
    return paths


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def test_stage_on_a_simulated_world(params, ingested):
    summary = report_stage.run(params.report, params.labels, ingested, log=lambda m: None)
    folder = report_stage.folder(ingested, params.report.period)
    assert folder == Path(ingested.report) / "month"
    record = artifacts.StageRecord.read(folder)
    assert sorted(record.files) == sorted(report_stage.FILES)
    assert set(record.inputs) == {"interim"}
    figures = pd.read_csv(folder / "figures.csv")
    assert (figures["lost"] == figures["S"] + figures["N"] - figures["E"]).all()
    done = figures[figures["S"] > 0]
    assert np.allclose(done["crr"] + done["churn_rate"], 1.0)
    assert figures["status"].isin(["complete", "provisional", "partial"]).all()
    assert (figures["status"] == "partial").tolist() == figures["partial"].tolist()
    assert figures["partial"].iloc[-1] and not figures["partial"].iloc[:-1].any()
    # the terminal's table holds complete periods only
    assert summary.recent and all(r["status"] != "partial" for r in summary.recent)
    cohorts = pd.read_csv(folder / "cohorts.csv", keep_default_na=False)
    partial_labels = set(figures.loc[figures["partial"], "label"])
    label_at = dict(enumerate(figures["label"]))
    start_at = {lab: i for i, lab in label_at.items()}
    censored = [label_at[start_at[c] + k] in partial_labels
                for c, k in zip(cohorts["cohort"], cohorts["k"], strict=True)]
    assert any(censored)
    blank = cohorts.loc[censored, ["active", "share"]]
    assert (blank == "").all().all()  # censored: blank, not zero
    seen = cohorts.loc[[not c for c in censored], "share"]
    assert (seen != "").all()
    fits = pd.read_csv(folder / "fits.csv", keep_default_na=False)
    assert ((fits["reason"] == "") | (fits["alpha"] == "")).all()
    assert (fits["reason"] != "").any()  # the youngest cohorts are too short to fit
    projection = pd.read_csv(folder / "projection.csv")
    assert projection["projected"].any() and projection["actual"].notna().any()
    text = (folder / "summary.md").read_text()
    for words in ("CRR", "churn rate", "NRR", "NPS", "Lifetime value (LTV", "DERL",
                  "too short to fit", "Is the projection any good?"):
        assert words in text
    assert summary.ltv > 0
    back = pd.read_csv(folder / "holdout.csv", keep_default_na=False)
    assert list(back.columns) == list(holdout.COLUMNS)
    assert summary.holdout in text


def test_second_run_writes_the_same_bytes(params, ingested):
    first = report_stage.run(params.report, params.labels, ingested, log=lambda m: None)
    folder = report_stage.folder(ingested, params.report.period)
    before = _bytes(folder)
    second = report_stage.run(params.report, params.labels, ingested, log=lambda m: None)
    assert _bytes(folder) == before
    assert first == second


def _write(raw: Path, tables: dict[str, list[str]]) -> None:
    raw.mkdir(parents=True)
    for name, rows in tables.items():
        (raw / f"{name}.csv").write_text("\n".join(rows) + "\n")


def write_revenue_export(raw: Path) -> None:
    """Five customers signed up on 1 Jan 2024 on calendar-month periods of 100. In March:
    c1 pays 150 (expansion 50), c2 60 (contraction 40), c3 cancels after a 10-day period of 40
    (churned revenue 60), c4 pays 100 and tops up 30 (expansion 30); c5 cancelled at 1 Feb and
    comes back on 10 Mar (a reactivation: N of March). NPS: one answer in February (0), seven in
    March (10, 9, 9, 10: promoters; 8: passive; 6, 2: detractors)."""
    subs = ["customer_id,period_start,period_end,plan,fee,outcome"]
    months = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01"]
    march = {1: 150, 2: 60, 4: 100}
    for c in (1, 2, 4):
        subs += [f"{c},{months[0]},{months[1]},basic,100,renewed",
                 f"{c},{months[1]},{months[2]},basic,100,renewed",
                 f"{c},{months[2]},{months[3]},basic,{march[c]},renewed",
                 f"{c},{months[3]},{months[4]},basic,{march[c]},open"]
    subs += ["3,2024-01-01,2024-02-01,basic,100,renewed",
             "3,2024-02-01,2024-03-01,basic,100,renewed",
             "3,2024-03-01,2024-03-11,basic,40,cancelled",
             "5,2024-01-01,2024-02-01,basic,100,cancelled",
             "5,2024-03-10,2024-04-10,basic,31,renewed",
             "5,2024-04-10,2024-05-10,basic,31,open"]
    scores = [("2024-02-15", 0)] + [("2024-03-12", s) for s in (10, 9, 9, 10, 8, 6, 2)]
    _write(raw, {
        "customers": ["customer_id,signup_date,channel"]
                     + [f"{c},2024-01-01,organic" for c in range(1, 6)],
        "subscriptions": subs,
        "usage": ["customer_id,ts,messages", "1,2024-03-05 10:00:00,5"],
        "charges": ["customer_id,ts,amount", "4,2024-03-15 12:00:00,30"],
        "tickets": ["customer_id,opened_at,topic,resolved_at", "1,2024-03-05 10:00:00,billing,"],
        "nps": ["customer_id,ts,score"]
               + [f"{i % 5 + 1},{d} 1{i}:00:00,{s}" for i, (d, s) in enumerate(scores)],
    })


def test_nrr_nps_and_a_reactivation_end_to_end(tmp_path, monkeypatch):
    write_revenue_export(tmp_path / "raw")
    figures, output = _ingest_and_report(tmp_path, monkeypatch, as_of=dt.date(2024, 4, 20))
    assert figures["label"].tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert figures["status"].tolist() == ["complete", "complete", "complete", "partial"]
    jan, feb, mar = (figures.iloc[i] for i in range(3))
    # c5 cancelled at 1 Feb: lost in January; back on 10 Mar: counted in N of March
    assert (jan["S"], jan["N"], jan["E"], jan["lost"]) == (0, 5, 4, 1)
    assert (feb["S"], feb["N"], feb["E"], feb["lost"]) == (4, 0, 4, 0)
    assert (mar["S"], mar["N"], mar["E"], mar["lost"]) == (4, 1, 4, 1)
    assert mar["crr"] == pytest.approx(0.75) and mar["churn_start"] == pytest.approx(0.25)
    # NRR of March over the four customers of 1 March: (400 + 80 - 40 - 60) / 400
    assert feb["nrr"] == pytest.approx(1.0)
    assert mar["start_revenue"] == pytest.approx(400)
    assert mar["expansion"] == pytest.approx(80)  # c1 +50, c4's top-up +30
    assert mar["contraction"] == pytest.approx(40)  # c2
    assert mar["churned_revenue"] == pytest.approx(60)  # c3
    assert mar["nrr"] == pytest.approx(0.95)
    # all of March's revenue: 150 + 60 + 40 + 130 + c5's 22 days of 31 at 1 a day
    assert mar["revenue"] == pytest.approx(402)
    # NPS: February one detractor; March 4 promoters, 1 passive, 2 detractors of 7
    assert (feb["answers"], feb["promoters"], feb["detractors"], feb["nps"]) == (1, 0, 1, -100)
    assert (mar["answers"], mar["promoters"], mar["passives"], mar["detractors"]) == (7, 4, 1, 2)
    assert mar["nps"] == pytest.approx(100 * 2 / 7)
    assert np.isnan(figures.iloc[0]["nps"])
    assert "95.00 %" in output and "28.6" in output


def test_as_of_equals_the_report_of_an_export_cut_that_day(params, ingested, tmp_path):
    """`--as-of D` gives the bytes of a report of the interim folder cut at D (records.cut, the
    way a backtest sees the past): figures, cohorts, fits, projection, pictures and summary."""
    m = tables.manifest(ingested)
    day = m.as_of - dt.timedelta(days=200)
    cut_paths = dataclasses.replace(ingested, interim=str(tmp_path / "interim-cut"),
                                    report=str(tmp_path / "report-cut"))
    ingest_stage.cut(ingested, Path(cut_paths.interim), day, params.labels.grace_days)
    on_cut = report_stage.run(params.report, params.labels, cut_paths, log=lambda m: None)
    as_of = report_stage.run(params.report, params.labels, ingested, log=lambda m: None,
                             as_of=day)
    here = report_stage.folder(ingested, params.report.period, day)
    assert here == Path(ingested.report) / f"as-of-{day.isoformat()}" / "month"
    assert as_of.as_of == on_cut.as_of == day.isoformat()
    want = _bytes(report_stage.folder(cut_paths, params.report.period))
    got = _bytes(here)
    for name in report_stage.FILES:
        assert got[name] == want[name], name
    pd.testing.assert_frame_equal(pd.DataFrame(as_of.recent), pd.DataFrame(on_cut.recent))


def test_as_of_flag(tmp_path, monkeypatch):
    write_revenue_export(tmp_path / "raw")
    full, _ = _ingest_and_report(tmp_path, monkeypatch, as_of=dt.date(2024, 4, 20))
    early, output = _ingest_and_report(tmp_path, monkeypatch, as_of=dt.date(2024, 4, 20),
                                       extra=("--as-of", "2024-03-20"))
    assert "as of 2024-03-20" in output
    assert early["label"].tolist() == ["2024-01", "2024-02", "2024-03"]
    assert early["status"].tolist() == ["complete", "complete", "partial"]
    # complete periods agree with the full report; c3's 11 March cancellation is known by 20 March
    cols = ["S", "N", "E", "lost", "revenue", "nrr", "answers", "nps"]
    pd.testing.assert_frame_equal(early.iloc[:2][cols], full.iloc[:2][cols], check_dtype=False)
    assert (_out(tmp_path) / "figures.csv").is_file()  # the export's own report is untouched
    params = tmp_path / "params.yaml"
    late = runner.invoke(app, ["report", "--params", str(params), "--as-of", "2024-05-01"])
    assert late.exit_code == 2 and "after the export's as-of date" in late.output
    bad = runner.invoke(app, ["report", "--params", str(params), "--as-of", "March"])
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_track_logs_a_run_of_its_own(tmp_path, monkeypatch, mlflow_uri):
    """`churn report --track`: a run named report, tagged with the export's manifest hash and
    the period, the latest complete period's figures as metrics, every file as an artifact; the
    folder holds the same bytes as without --track (no run id in it)."""
    from mlflow import MlflowClient

    write_revenue_export(tmp_path / "raw")
    _ingest_and_report(tmp_path, monkeypatch, as_of=dt.date(2024, 4, 20))
    before = _bytes(_out(tmp_path))
    _, output = _ingest_and_report(tmp_path, monkeypatch, as_of=dt.date(2024, 4, 20),
                                   extra=("--track",))
    assert "run " in output and "'report'" in output
    assert _bytes(_out(tmp_path)) == before
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    interim = artifacts.StageRecord.read(tmp_path / "data" / "interim")
    assert run.info.run_name == "report"
    assert run.data.tags["export_manifest"] == interim.digest
    assert run.data.tags["period"] == "month"
    assert run.data.tags["latest_complete_period"] == "2024-03"
    assert run.data.tags["as_of"] == "2024-04-20"
    m = run.data.metrics
    assert (m["S"], m["N"], m["E"], m["crr"], m["nrr"]) == (4, 1, 4, 0.75, 0.95)
    assert m["nps"] == pytest.approx(100 * 2 / 7)
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert set(report_stage.FILES) <= logged


def test_track_fails_fast_on_a_dead_server(tmp_path, monkeypatch):
    write_revenue_export(tmp_path / "raw")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, paths={"raw": "raw"}, data={"as_of": "2024-04-20"})
    assert runner.invoke(app, ["ingest", "--params", str(params)]).exit_code == 0
    result = runner.invoke(app, ["report", "--params", str(params), "--track"])
    assert result.exit_code == 2 and "http://127.0.0.1:9" in result.output
    assert not (tmp_path / "reports" / "retention" / "month").exists()
