"""Your own export, not the simulator's: `dvc repro` on a business's export that differs from
the simulated one in every way README "Running on your own export" allows, with only the
settings that section tells a user to change; the numbers must be the simulated world's.

A simulated world (500 customers over 600 days; its export is CSV) is rewritten the way a real
business's export differs. Each difference is deliberate; none changes what happened:

1. Formats: customers and usage are Parquet, subscriptions and charges gzipped CSV, tickets
   plain CSV; there is no nps file (the table is optional).
2. Column names: the business's own (`cust_id`, `joined_on`, `sent_at`, `sms_count`, ...),
   mapped with `data.rename`; tickets keep the contract's names (no mapping needed there), and
   customers carry a column the contract does not know (`city`: ignored, listed).
3. Ids: strings with a prefix, `ACME-100001` for 100001.
4. Plan and channel names: other ones; the plans in Persian (one with a zero-width
   non-joiner), the channels with capitals and spaces. Outcome and topic capitalised
   (`Renewed`, `Billing`: enums match case-insensitively).
5. Dates: every date and timestamp 1,461 days earlier. For every day of this world that is
   exactly four Gregorian and four Jalali years (same month and day, checked below), so the
   months of both calendars hold the same days and the world is the same one (only the
   weekdays move, and nothing may depend on them).
6. Calendar: every text date and timestamp is Jalali (`data.calendar: jalali`), the customers'
   sign-up days in Persian digits.
7. Time zone: the business is in Kabul (`data.timezone: Asia/Kabul`, +04:30 all year, so no
   wall-clock time of the shifted world falls in a DST gap). Usage timestamps are Parquet
   TIMESTAMPs in UTC (instants, as pandas and Spark write them); charges are text with the
   offset +03:30, `1398-01-05T09:34:52+03:30` (a billing server in Tehran: an hour earlier
   than Kabul); tickets are opened at naive local times and resolved at UTC times (`...Z`,
   4.5 hours earlier: for resolutions before 04:30 in Kabul, the text's date is the day
   before).
8. Missing values: empty strings in Parquet (`referrer_code` of customers nobody referred)
   mean missing exactly as an empty CSV field does (the open tickets' `resolved_at`).
9. One broken row per table, each with the rule it must get (BROKEN): a customer with an
   empty id (Parquet ""), a usage row with an empty id, a period starting on 31 Mehr (Mehr
   has 30 days), a top-up exported twice (the copy in UTC: the same instant), a ticket of an
   unknown customer.

The params change paths.raw, data.rename, data.calendar and data.timezone, nothing else
(`test_readme_steps_are_these_settings`), and `dvc repro` runs in a temp git repo.

The reference is the untouched simulated export through ingest, observe, features and the
report with the repo's params (in-process; the report also in Jalali months). One thing in the
product reads an id's text: the observation grid's phase (features.observations.phase hashes
it, so that every export of the same ids gives the same grid). A new id text is a new phase,
so the reference gives each customer the phase of their renamed id; nothing else is adapted.
Then: the interim tables, the observation points and labels, the feature table and the report
equal the reference's up to the renaming and the shift; the model trains; `churn score
--pipeline` scores every customer at risk, by their ACME- ids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import re
import sys
from pathlib import Path

import jdatetime
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from features import observations as obs
from pipeline.stages import report as report_stage
from tests.conftest import build_pipeline, build_world
from tests.pipeline.helpers import (
    ROOT,
    init_repo,
    project_repo,
    recommit,
    run_command,
    write_params,
)

pytestmark = pytest.mark.slow

CUSTOMERS, DAYS = 500, 600
SHIFT = pd.Timedelta(days=1461)  # four years in both calendars for this world's days
YEARS = 4
PREFIX = "ACME-"
TIMEZONE = "Asia/Kabul"
PLANS = {"basic": "پایه", "pro": "حرفه\u200cای", "business": "سازمانی"}
CHANNELS = {"organic": "Direct", "search_ads": "Google Ads", "social": "Instagram",
            "partner": "Reseller", "referral": "Friend referral"}
RENAME = {
    "customers": {"cust_id": "customer_id", "joined_on": "signup_date", "source": "channel",
                  "ref_code": "referral_code", "referrer_code": "referred_by"},
    "subscriptions": {"user": "customer_id", "start": "period_start", "renews_on": "period_end",
                      "tier": "plan", "price": "fee", "status": "outcome"},
    "usage": {"account": "customer_id", "sent_at": "ts", "sms_count": "messages"},
    "charges": {"customer": "customer_id", "paid_at": "ts"},
}
SETTINGS = {"paths": {"raw": "data/raw"},
            "data": {"rename": RENAME, "calendar": "jalali", "timezone": TIMEZONE}}
BROKEN = {"customers": {"missing_value": 1}, "subscriptions": {"bad_date": 1},
          "usage": {"missing_value": 1}, "charges": {"duplicate_row": 1},
          "tickets": {"unknown_customer": 1}}
TABLES = ("customers", "subscriptions", "usage", "charges", "tickets")
NPS_FEATURES = ("nps_last", "nps_band", "nps_answers")
NPS_FIGURES = ("answers", "promoters", "passives", "detractors", "nps")
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
STAGES = ("simulate", "ingest", "report", "observe", "features", "train", "evaluate",
          "register", "score")


# --------------------------------------------------------------------------- the rewrite


def _jalali(day: dt.date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y-%m-%d")


def jalali_days(days: pd.Series) -> pd.Series:
    """Gregorian days (datetime64) as Jalali text, YYYY-MM-DD."""
    table = {d: _jalali(pd.Timestamp(d).date()) for d in days.dropna().unique()}
    return days.map(table)


def jalali_times(wall: pd.Series, sep: str = " ", suffix: str = "") -> pd.Series:
    """Wall-clock times (naive datetime64) as Jalali text, with `suffix` (an offset)."""
    return jalali_days(wall.dt.normalize()) + sep + wall.dt.strftime("%H:%M:%S") + suffix


def _gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        frame.to_csv(f, index=False)


def rewrite(export: Path, raw: Path) -> None:
    """The simulated export (CSV) as the business exports it (the module docstring's list)."""
    raw.mkdir(parents=True)

    def read(name: str, dates: tuple[str, ...] = ()) -> pd.DataFrame:
        return pd.read_csv(export / f"{name}.csv", parse_dates=list(dates))

    def ident(ids: pd.Series) -> pd.Series:
        return PREFIX + ids.astype(str)

    c = read("customers", ("signup_date",))
    customers = pd.DataFrame({
        "cust_id": ident(c["customer_id"]),
        "joined_on": jalali_days(c["signup_date"] - SHIFT).str.translate(PERSIAN_DIGITS),
        "source": c["channel"].map(CHANNELS),
        "ref_code": c["referral_code"],
        "referrer_code": c["referred_by"].fillna(""),  # Parquet: "" = nobody referred them
        "city": "Kabul",
    })
    customers.loc[len(customers)] = ["", customers["joined_on"][0], "Direct", "RZZZZZZ", "", "Herat"]
    pq.write_table(pa.Table.from_pandas(customers, preserve_index=False),
                   raw / "customers.parquet")

    s = read("subscriptions", ("period_start", "period_end"))
    subs = pd.DataFrame({
        "user": ident(s["customer_id"]),
        "start": jalali_days(s["period_start"] - SHIFT),
        "renews_on": jalali_days(s["period_end"] - SHIFT),
        "tier": s["plan"].map(PLANS),
        "price": s["fee"],
        "status": s["outcome"].str.capitalize(),
    })
    subs.loc[len(subs)] = [subs["user"][0], "1398-07-31", "1398-08-30", PLANS["basic"], 290000,
                           "Open"]
    _gzip_csv(subs, raw / "subscriptions.csv.gz")

    u = read("usage", ("ts",))
    usage = pd.DataFrame({
        "account": ident(u["customer_id"]),
        "sent_at": (u["ts"] - SHIFT).dt.tz_localize(TIMEZONE).dt.tz_convert("UTC"),
        "sms_count": u["messages"],
    })
    usage.loc[len(usage)] = ["", usage["sent_at"][0], 5]
    pq.write_table(pa.Table.from_pandas(usage, preserve_index=False), raw / "usage.parquet")

    ch = read("charges", ("ts",))
    wall = ch["ts"] - SHIFT  # Kabul's wall clock; +03:30 is an hour earlier, UTC 4.5 hours
    charges = pd.DataFrame({
        "customer": ident(ch["customer_id"]),
        "paid_at": jalali_times(wall - pd.Timedelta(hours=1), "T", "+03:30"),
        "amount": ch["amount"],
    })
    again = charges.iloc[[3]].assign(paid_at=jalali_times(
        wall.iloc[[3]] - pd.Timedelta(hours=4, minutes=30), "T", "Z"))
    _gzip_csv(pd.concat([charges, again], ignore_index=True), raw / "charges.csv.gz")

    t = read("tickets", ("opened_at", "resolved_at"))
    resolved = t["resolved_at"] - SHIFT - pd.Timedelta(hours=4, minutes=30)
    assert (resolved.dt.normalize() < (t["resolved_at"] - SHIFT).dt.normalize()).any()
    tickets = pd.DataFrame({
        "customer_id": ident(t["customer_id"]),
        "opened_at": jalali_times(t["opened_at"] - SHIFT),
        "topic": t["topic"].str.capitalize(),
        "resolved_at": jalali_times(resolved, "T", "Z").where(resolved.notna()),  # empty: open
    })
    tickets.loc[len(tickets)] = [f"{PREFIX}999999", tickets["opened_at"][0], "Other", None]
    tickets.to_csv(raw / "tickets.csv", index=False)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sim_world(params, tmp_path_factory) -> Path:
    world = build_world(params, tmp_path_factory.mktemp("own-world"), customers=CUSTOMERS,
                        days=DAYS)
    # the shift is four years in both calendars on every day of the world: same month, day
    first = params.simulate.start
    for day in (first + dt.timedelta(days=k) for k in range(DAYS + 2)):
        old = (pd.Timestamp(day) - SHIFT).date()
        assert (old.month, old.day, old.year) == (day.month, day.day, day.year - YEARS), day
        j, k = jdatetime.date.fromgregorian(date=day), jdatetime.date.fromgregorian(date=old)
        assert (k.month, k.day, k.year) == (j.month, j.day, j.year - YEARS), day
    return world


@pytest.fixture(scope="module")
def original(params, sim_world, tmp_path_factory):
    """The untouched export through ingest, observe, features (each customer on the grid
    phase of their renamed id) and the report in Jalali months."""
    out = tmp_path_factory.mktemp("original")
    phase = obs.phase
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(obs, "phase", lambda ids, every_days: phase(
            [f"{PREFIX}{i}" for i in ids], every_days))
        paths = build_pipeline(params, sim_world, out)

    def jalali(folder: Path) -> None:
        manifest = folder / "_manifest.json"
        manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"calendar": "jalali"}))

    in_jalali = dataclasses.replace(paths, interim=str(out / "interim-jalali"),
                                    report=str(out / "report"))
    recommit(Path(paths.interim), Path(in_jalali.interim), jalali)
    report_stage.run(params.report, params.labels, in_jalali, log=lambda m: None)
    return in_jalali


@pytest.fixture(scope="module")
def repo(sim_world, tmp_path_factory) -> Path:
    """A user's clone with the business's export in data/raw, the README's settings, and one
    `dvc repro`."""
    repo = project_repo(tmp_path_factory.mktemp("business"))
    rewrite(sim_world / "export", repo / "data" / "raw")
    write_params(repo, **SETTINGS)
    init_repo(repo)
    out = run_command([sys.executable, "-m", "dvc", "repro"], repo)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out.stdout
    return repo


# --------------------------------------------------------------------------- comparing


def _read(folder: Path | str, name: str) -> pd.DataFrame:
    return pd.read_parquet(Path(folder) / name)


def _day(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[s]")


def as_rewritten(frame: pd.DataFrame, dates: tuple[str, ...]) -> pd.DataFrame:
    """The original's rows as the business names them: ids, plans, channels, dates shifted."""
    frame = frame.copy()
    frame["customer_id"] = PREFIX + frame["customer_id"].astype(str)
    for col in dates:
        frame[col] = (_day(frame[col]) - SHIFT).astype("datetime64[s]")
    if "plan" in frame:
        frame["plan"] = frame["plan"].map(PLANS)
    if "channel" in frame:
        frame["channel"] = frame["channel"].map(CHANNELS)
    return frame


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame, keys: list[str],
                dates: tuple[str, ...]) -> None:
    ours = ours.copy()
    for col in dates:
        ours[col] = _day(ours[col])
    ours = ours.sort_values(keys, kind="stable").reset_index(drop=True)
    theirs = theirs.sort_values(keys, kind="stable").reset_index(drop=True)
    ours["customer_id"] = ours["customer_id"].astype(object)
    theirs["customer_id"] = theirs["customer_id"].astype(object)
    pd.testing.assert_frame_equal(ours, theirs[ours.columns], check_dtype=False)


DATES = {"customers": ("signup_date",), "subscriptions": ("period_start", "period_end"),
         "usage": ("ts",), "charges": ("ts",), "tickets": ("opened_at", "resolved_at")}
KEYS = {"customers": ["customer_id"], "subscriptions": ["customer_id", "period_start"],
        "usage": ["customer_id", "ts", "messages"], "charges": ["customer_id", "ts", "amount"],
        "tickets": ["customer_id", "opened_at", "topic", "resolved_at"]}


def test_ingest_keeps_every_row_but_the_broken_ones(repo, original):
    ours = json.loads((repo / "data" / "interim" / "_manifest.json").read_text())
    theirs = json.loads((Path(original.interim) / "_manifest.json").read_text())
    assert (ours["calendar"], ours["timezone"], ours["id_type"]) == ("jalali", TIMEZONE, "string")
    as_of = dt.date.fromisoformat(theirs["as_of"]) - SHIFT.to_pytimedelta()
    assert ours["as_of"] == as_of.isoformat()
    assert ours["tables"]["nps"]["file"] is None and theirs["tables"]["nps"]["kept"] > 0
    for name in TABLES:
        t, ref = ours["tables"][name], theirs["tables"][name]
        assert ref["quarantined"] == 0 and ref["kept"] == ref["rows_in"]
        assert t["rows_in"] == t["kept"] + t["quarantined"] == ref["rows_in"] + 1, name
        assert t["kept"] == ref["kept"] and t["by_rule"] == BROKEN[name], name
        assert t["extra_columns"] == (["city"] if name == "customers" else [])
        q = _read(repo / "data" / "interim" / "quarantine", f"{name}.parquet")
        assert q["rule"].tolist() == list(BROKEN[name]), name
    files = {name: ours["tables"][name]["file"] for name in TABLES}
    assert files == {"customers": "customers.parquet", "subscriptions": "subscriptions.csv.gz",
                     "usage": "usage.parquet", "charges": "charges.csv.gz",
                     "tickets": "tickets.csv"}


@pytest.mark.parametrize("name", TABLES)
def test_the_interim_tables_are_the_original_ones(repo, original, name):
    """Every kept value, typed: the same as the untouched export's, renamed and shifted."""
    ours = _read(repo / "data" / "interim", f"{name}.parquet")
    theirs = as_rewritten(_read(original.interim, f"{name}.parquet"), DATES[name])
    assert list(ours.columns) == list(theirs.columns)
    assert_same(ours, theirs, KEYS[name], DATES[name])


def test_the_same_points_and_labels(repo, original):
    cols = ["customer_id", "t", "kind", "run", "run_start", "state", "label"]
    ours = _read(repo / "data" / "observations", "observations.parquet")[cols]
    theirs = _read(original.observations, "observations.parquet")[cols]
    assert len(ours) == len(theirs)
    assert (ours["label"].notna().sum(), ours["label"].sum()) == (
        theirs["label"].notna().sum(), theirs["label"].sum())
    assert ours["customer_id"].nunique() == theirs["customer_id"].nunique() == CUSTOMERS
    assert_same(ours, as_rewritten(theirs, ("t", "run_start")), ["customer_id", "t"],
                ("t", "run_start"))


def _decoded(folder: Path | str) -> pd.DataFrame:
    """The feature table with plan and channel codes as names (codes follow the names' order)."""
    frame = _read(folder, "features.parquet")
    vocab = json.loads((Path(folder) / "feature_meta.json").read_text())["vocab"]
    for col in ("plan_code", "channel_code"):
        names = pd.Series(vocab[col])
        frame[col] = frame[col].map(names).where(frame[col] >= 0)
    return frame


def test_the_same_features(repo, original):
    """Every feature at every point equals the original's, but NPS (no file: no answers)."""
    ours = _decoded(repo / "data" / "features")
    theirs = _decoded(original.features)
    theirs["plan_code"] = theirs["plan_code"].map(PLANS)
    theirs["channel_code"] = theirs["channel_code"].map(CHANNELS)
    assert ours["nps_answers"].fillna(0).eq(0).all() and ours["nps_last"].isna().all()
    assert theirs["nps_answers"].gt(0).any()
    drop = [*NPS_FEATURES, "truth"]
    assert_same(ours.drop(columns=drop), as_rewritten(theirs.drop(columns=drop),
                                                      ("t", "run_start")),
                ["customer_id", "t"], ("t", "run_start"))


def test_the_model_trains_and_scores_everyone_at_risk(repo, original):
    summary = json.loads((repo / "data" / "models" / "train_summary.json").read_text())
    points = _read(original.observations, "observations.parquet")
    assert summary["points"]["all_labelled"] == points["label"].notna().sum()
    metrics = json.loads((repo / "reports" / "evaluation" / "metrics.json").read_text())
    assert metrics["lightgbm"]["roc_auc"] > 0.6
    assert json.loads((repo / "data" / "registered.json").read_text())
    at_risk = PREFIX + points.loc[points["kind"] == "scoring", "customer_id"].astype(str)
    scores = _read(repo / "data" / "score", "scores.parquet")
    assert sorted(scores["customer_id"]) == sorted(at_risk)
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["churn_probability"].nunique() > 10
    score = json.loads((repo / "data" / "score" / "summary.json").read_text())
    assert score["scored"] == score["at_risk"] == len(at_risk)
    manifest = json.loads((repo / "data" / "interim" / "_manifest.json").read_text())
    assert score["as_of"] == score["export_as_of"] == manifest["as_of"]
    listed = pd.read_csv(repo / "data" / "score" / "list.csv", dtype={"customer_id": str})
    assert len(listed) > 0 and listed["customer_id"].str.startswith(PREFIX).all()
    assert (repo / "data" / "sim" / "NOT_SIMULATED.txt").is_file()


def _shift_text(value: str) -> str:
    """A report cell of the original as the rewritten export's report writes it: dates 1,461
    days earlier, Jalali years ("Esfand 1401", "Q4 1401") four earlier."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return (dt.date.fromisoformat(value) - SHIFT.to_pytimedelta()).isoformat()
    if m := re.fullmatch(r"(\D+) (1\d{3})", value):
        return f"{m.group(1)} {int(m.group(2)) - YEARS}"
    return value


REPORT_FILES = ("figures.csv", "cohorts.csv", "fits.csv", "projection.csv", "holdout.csv")


@pytest.mark.parametrize("name", REPORT_FILES)
def test_the_report_equals_the_original(repo, original, name):
    """Every figure of the retention report, per Jalali month, cohort and plan clock, equals
    the original export's, but NPS (no file)."""
    ours = pd.read_csv(repo / "reports" / "retention" / "month" / name, dtype=str,
                       keep_default_na=False)
    theirs = pd.read_csv(Path(original.report) / "month" / name, dtype=str,
                         keep_default_na=False)
    assert len(ours) == len(theirs) > 0
    if name == "figures.csv":
        assert ours["label"].str.fullmatch(r"\D+ 13\d\d").all()  # Jalali months
        assert set(ours["answers"]) == {"0"} and set(ours["nps"]) == {""}
        assert (theirs["answers"] != "0").any()
        ours, theirs = ours.drop(columns=list(NPS_FIGURES)), theirs.drop(columns=list(NPS_FIGURES))
    pd.testing.assert_frame_equal(ours, theirs.map(_shift_text))


def _setting_keys(tree: dict, prefix: str = "") -> dict[str, object]:
    keys = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key != "rename":
            keys |= _setting_keys(value, f"{prefix}{key}.")
        else:
            keys[f"{prefix}{key}"] = value
    return keys


def test_readme_steps_are_these_settings(repo):
    """The README's steps name exactly the settings this test changes, and its example
    mapping is a real one (the usage table's, as this test maps it)."""
    ours = _setting_keys(yaml.safe_load((repo / "params.yaml").read_text()))
    default = _setting_keys(yaml.safe_load((ROOT / "params.yaml").read_text()))
    changed = {key for key in ours if ours[key] != default.get(key)}
    assert changed == {"paths.raw", "data.rename", "data.calendar", "data.timezone"}
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running on your own export\n", 1)[1].split("\n## ", 1)[0]
    steps = section.strip().split("\n\n")[0]  # the numbered steps
    assert steps.startswith("1. ")
    named = set(re.findall(r"`((?:paths|data|train|labels|features)\.[a-z_]+)", steps))
    assert named == changed, steps
    assert "rename: {usage: {sent_at: ts, sms_count: messages}}" in steps
    assert {"sent_at": "ts", "sms_count": "messages"}.items() <= RENAME["usage"].items()
    assert "dvc repro" in steps
