"""Stage `report`: the classic retention report (issue 11) from the interim tables.

Writes one folder per period length, `<paths.report>/<period>` (`reports/retention/month`; with
`--as-of D`, `<paths.report>/as-of-D/<period>`, the tables cut at D as records.cut cuts them):
`figures.csv` (S, N, E, lost, CRR, churn, churn_start,
NRR and its parts, NPS and its counts, referrals and revenue per customer, per period, each row
marked complete, provisional or partial), `cohorts.csv` (the share of each signup cohort
active after k periods; censored cells blank), `fits.csv` (the sBG fit per cohort and plan
clock, or why there is none), `projection.csv` (the fitted survival per renewal beside the
Kaplan-Meier actual), three PNGs and `summary.md` (one page for a manager). All of it comes
from `retention` (pure); this module only reads, draws and writes. No clock, no run id, floats
rounded: a second run over the same interim folder writes the same bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from common.errors import UserError
from common.exact import round_sig
from features import observations as obs
from features.config import LabelConfig
from pipeline import artifacts, tables, tracking
from pipeline.params import Paths
from pipeline.stages import observe as observe_stage
from retention import cohorts, holdout, ltv, sbg
from retention.config import ReportConfig
from retention.figures import DEFINITIONS, period_figures
from retention.periods import periods

STAGE = "report"
DIGITS = 9  # significant digits of every float written (as the other stages)

FILES = ("figures.csv", "cohorts.csv", "fits.csv", "projection.csv", "holdout.csv",
         "cohort_heatmap.png",
         "cohort_curves.png", "retention.png", "summary.md")

# the columns of figures.csv, in the order a reader wants them
FIGURE_COLUMNS = (
    "label", "start", "end", "status", "partial", "provisional", "pending_renewals",
    "S", "N", "E", "lost", "lost_of_start", "crr", "churn_rate", "churn_start",
    "revenue", "start_revenue", "expansion", "contraction", "churned_revenue", "nrr",
    "answers", "promoters", "passives", "detractors", "nps",
    "referrals", "referrals_per_customer", "revenue_per_customer",
)


@dataclass
class ReportSummary:
    as_of: str
    calendar: str
    period: str
    folder: str
    recent: list[dict]  # the last few complete periods (figures.csv rows)
    partial: list[str]  # labels of periods not over at the as-of date
    provisional: list[str]  # complete periods with renewals still pending at the as-of date
    cohorts: int
    fitted: int  # (cohort, clock) sBG fits with a number
    not_fitted: int  # ... and with a reason instead
    ltv: float  # the documents' LTV (average purchase x frequency x lifespan)
    holdout: str  # the backtest's verdict: sBG or Kaplan-Meier carried forward, and by how much
    forward_value: dict[int, float] = field(default_factory=dict)  # clock -> value of a new customer
    files: tuple[str, ...] = FILES


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def status(figures: pd.DataFrame) -> pd.Series:
    """partial (not over at the as-of date), provisional (over, but a renewal due in it is
    still pending) or complete."""
    return pd.Series(np.where(figures["partial"], "partial",
                              np.where(figures["provisional"], "provisional", "complete")),
                     index=figures.index)


def _round(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = round_sig(out[c].to_numpy(), DIGITS)
    return out


def _csv(frame: pd.DataFrame, path: Path) -> None:
    """Floats rounded to 9 significant digits, NaN as an empty cell, dates as YYYY-MM-DD."""
    out = _round(frame)
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False, float_format=f"%.{DIGITS}g", na_rep="", lineterminator="\n")


def revenue_per_period(histories: pd.DataFrame, subs: pd.DataFrame, charges: pd.DataFrame
                       ) -> dict[int, float]:
    """Per plan clock: (fees + top-ups of its customers) / their billing periods, as of the
    export (periods that started before it): what a customer on that clock brings per period."""
    out = {}
    fees = subs.groupby("customer_id")["fee"].agg(["sum", "size"])
    tops = charges.groupby("customer_id")["amount"].sum()
    for clock, g in histories.groupby("period_days", sort=True):
        ids = g["customer_id"].to_numpy()
        f = fees.reindex(ids)
        n = float(f["size"].sum())
        total = float(f["sum"].sum()) + float(tops.reindex(ids).fillna(0.0).sum())
        out[int(clock)] = total / n if n else float("nan")
    return out


def actual_survival(histories: pd.DataFrame, fits_: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier survival per renewal t of every fitted (cohort, clock): what happened, with
    the customers still here censored (cohort, period_days, t, actual)."""
    rows = []
    for f in fits_[fits_["reason"] == ""].itertuples(index=False):
        g = histories[histories["period_days"] == f.period_days]
        if f.cohort != cohorts.POOLED:
            g = g[g["cohort"] == f.cohort]
        times, surv = ltv.kaplan_meier(g["renewals"], g["churned"])
        t = np.arange(f.periods_observed + 1)
        at = np.searchsorted(times, t, side="right") - 1
        s = np.where(at >= 0, surv[np.clip(at, 0, None)], 1.0)
        rows.append(pd.DataFrame({"cohort": f.cohort, "period_days": f.period_days, "t": t,
                                  "actual": s}))
    cols = ["cohort", "period_days", "t", "actual"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


# --------------------------------------------------------------------------- pictures


def _fig(width: float = 7.0, height: float = 4.5):
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def heatmap(matrix: pd.DataFrame, period: str) -> Figure:
    """Cohort x k shares; censored (and not yet reached) cells blank."""
    fig, ax = _fig(8.0, max(3.0, 0.22 * len(matrix) + 1.5))
    values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
    im = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
                   interpolation="nearest")
    ax.set_yticks(range(len(matrix)), [str(c) for c in matrix.index], fontsize=7)
    ax.set_xlabel(f"{period}s after signup (0 = end of the signup {period})")
    ax.set_ylabel("signup cohort")
    ax.set_title("share of each cohort active (blank: not observed yet)")
    ax.set_facecolor("white")
    fig.colorbar(im, ax=ax, label="share active")
    return fig


def cohort_curves(proj: pd.DataFrame, actual: pd.DataFrame, clocks: list[int]) -> Figure:
    """Per plan clock: the actual survival (Kaplan-Meier, solid) and the sBG fit (dashed,
    projected beyond the last observed renewal) of all cohorts together and of a few cohorts."""
    fig = Figure(figsize=(7.0, 3.6 * max(1, len(clocks))), dpi=110, layout="constrained")
    axes = fig.subplots(max(1, len(clocks)), 1, squeeze=False)[:, 0]
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    for ax, clock in zip(axes, clocks, strict=False):
        p = proj[proj["period_days"] == clock]
        names = [c for c in pd.unique(p["cohort"]) if c != cohorts.POOLED]
        pick = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, min(len(names), 5))
                                           .astype(int))] if names else []
        for color, name in zip(colors, [cohorts.POOLED, *pick], strict=False):
            a = actual[(actual["period_days"] == clock) & (actual["cohort"] == name)]
            s = p[p["cohort"] == name]
            label = "all cohorts" if name == cohorts.POOLED else str(name)
            ax.plot(a["t"], a["actual"], color=color, lw=2 if name == cohorts.POOLED else 1,
                    label=f"{label} actual")
            ax.plot(s["t"], s["survival"], color=color, ls="--", lw=1, label=f"{label} sBG")
        ax.set(xlabel="renewals", ylabel="share still a customer", ylim=(0, 1.02),
               title=f"{clock}-day plans: actual (solid) and sBG fit and projection (dashed)")
        ax.legend(fontsize=6, ncol=2, loc="upper right")
    if not clocks:
        axes[0].set_title("no cohort could be fitted")
    return fig


def retention_plot(figures: pd.DataFrame) -> Figure:
    """CRR and churn rate over the complete periods (provisional ones hollow)."""
    fig, ax = _fig()
    done = figures[~figures["partial"] & figures["crr"].notna()]
    x = np.arange(len(done))
    for col, color, name in (("crr", "#1f77b4", "CRR"), ("churn_rate", "#d62728", "churn rate")):
        y = 100 * done[col].to_numpy(float)
        ax.plot(x, y, color=color, label=name)
        prov = done["provisional"].to_numpy(bool)
        ax.scatter(x[~prov], y[~prov], color=color, s=12)
        ax.scatter(x[prov], y[prov], facecolors="none", edgecolors=color, s=24,
                   label=f"{name}, provisional")
    step = max(1, len(done) // 12)
    ax.set_xticks(x[::step], done["label"].to_numpy()[::step], rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="%", ylim=(0, 100), title="CRR and churn rate per complete period")
    ax.legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------- summary


def _pct(x: float) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.2f} %"


def _num(x: float, fmt: str = ",.0f") -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, fmt)


def summary_md(fig_: pd.DataFrame, fits_: pd.DataFrame, value: dict[int, float],
               derl_new: dict[int, float], rpp: dict[int, float], life: ltv.LifetimeValue, *,
               as_of: dt.date, calendar: str, config: ReportConfig) -> str:
    done = fig_[fig_["status"] != "partial"]
    lines = [f"# Retention report, per {config.period}",
             "",
             f"Export as of {as_of.isoformat()} ({calendar} calendar). Periods not over at that "
             "date are **partial** and left out below; periods whose renewals were still pending "
             "then are **provisional** (their figures may still move).",
             ""]
    if not len(done):
        lines += ["No complete period yet.", ""]
    else:
        r = done.iloc[-1]
        flag = " (provisional: renewals still pending)" if r["status"] == "provisional" else ""
        lines += [f"## {r['label']}, the latest complete period{flag}", "",
                  "| figure | value | definition |", "|---|---|---|"]
        rows = [("S (start)", _num(r["S"]), DEFINITIONS["S"]),
                ("N (new)", _num(r["N"]), DEFINITIONS["N"]),
                ("E (end)", _num(r["E"]), DEFINITIONS["E"]),
                ("lost", _num(r["lost"]), DEFINITIONS["lost"]),
                ("CRR", _pct(r["crr"]), DEFINITIONS["crr"]),
                ("churn rate", _pct(r["churn_rate"]), DEFINITIONS["churn_rate"]),
                ("churn of the start (churn_start)", _pct(r["churn_start"]),
                 DEFINITIONS["churn_start"]),
                ("NRR", _pct(r["nrr"]), DEFINITIONS["nrr"]
                 + f" (expansion {_num(r['expansion'])}, contraction {_num(r['contraction'])}, "
                   f"churned {_num(r['churned_revenue'])})"),
                ("NPS", _num(r["nps"], ".1f"), DEFINITIONS["nps"]
                 + f" ({_num(r['answers'])} answers: {_num(r['promoters'])} promoters, "
                   f"{_num(r['passives'])} passives, {_num(r['detractors'])} detractors)"),
                ("revenue per customer", _num(r["revenue_per_customer"]),
                 DEFINITIONS["revenue_per_customer"]),
                ("referrals per customer", _num(r["referrals_per_customer"], ".4f"),
                 DEFINITIONS["referrals_per_customer"])]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        lines += ["", f"### The last {min(len(done), 6)} complete periods", "",
                  "| period | S | N | E | lost | CRR | churn | NRR | NPS | status |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in done.tail(6).iterrows():
            lines.append(f"| {r['label']} | {_num(r['S'])} | {_num(r['N'])} | {_num(r['E'])} | "
                         f"{_num(r['lost'])} | {_pct(r['crr'])} | {_pct(r['churn_rate'])} | "
                         f"{_pct(r['nrr'])} | {_num(r['nps'], '.1f')} | {r['status']} |")
    partial = fig_.loc[fig_["status"] == "partial", "label"].tolist()
    if partial:
        lines += ["", f"Partial (not shown above; in figures.csv with status partial): "
                      f"{', '.join(partial)}."]
    lines += ["", "## What a customer is worth: two different numbers", "",
              f"- **Lifetime value (LTV, the documents' definition)**: {_num(life.ltv)} = "
              f"average purchase {_num(life.average_purchase_value)} x "
              f"{_num(life.purchases_per_day * 30, '.3f')} purchases per 30 days x average "
              f"lifespan {_num(life.lifespan_days, '.0f')} days (Kaplan-Meier mean up to the "
              f"longest run; {life.customers:,} runs, {life.churned:,} ended). Backward-looking.",
              f"- **Forward value of a new customer (sBG)**: revenue per billing period x DERL, "
              f"the discounted expected number of periods still to be paid (discount "
              f"{config.discount_rate:g} per period), from the fit over all cohorts of the "
              "plan clock:"]
    for clock in sorted(rpp):
        if clock in value:
            lines.append(f"  - {clock}-day plans: {_num(rpp[clock])} per period x DERL "
                         f"{derl_new[clock]:.3f} = **{_num(value[clock])}**")
        else:
            lines.append(f"  - {clock}-day plans: no fit (see below)")
    missing = fits_[fits_["reason"] != ""]
    fitted = fits_[(fits_["reason"] == "") & (fits_["cohort"] != cohorts.POOLED)]
    lines += ["", "## Cohorts and the sBG projection", "",
              f"{len(fitted)} (cohort, plan clock) pairs fitted; {len(missing)} without a "
              "number, with the reason:", ""]
    lines += [f"- {r.cohort}, {r.period_days}-day plans: {r.reason}"
              for r in missing.itertuples(index=False)] or ["- none"]
    lines += ["", "Files: figures.csv, cohorts.csv, fits.csv, projection.csv, holdout.csv, "
                  "cohort_heatmap.png, cohort_curves.png, retention.png.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- backtest


def backtest(config: ReportConfig, grace_days: int, customers: pd.DataFrame, subs: pd.DataFrame,
             charges: pd.DataFrame, histories: pd.DataFrame, *, first_day: dt.date,
             as_of: dt.date, calendar: str) -> tuple[pd.DataFrame, dt.date]:
    """sBG and Kaplan-Meier fitted on the tables cut `holdout_months` before `as_of`, against
    what happened since (`histories`: the renewal histories as of `as_of`). Returns the
    holdout.csv table and the holdout day."""
    day = (pd.Timestamp(as_of) - pd.DateOffset(months=config.holdout_months)).date()
    if day <= first_day:
        return pd.DataFrame(columns=list(holdout.COLUMNS)), day
    c, s, _, _ = cut(day, customers, subs, charges, None, grace_days=grace_days)
    runs = obs.runs(c, s, view=day, grace_days=grace_days)
    per = periods(first_day, day, period=config.period, calendar=calendar)
    before = cohorts.renewal_histories(runs, s, per, as_of=day, grace_days=grace_days)
    fits_ = cohorts.fits(before, min_cohort_size=config.min_cohort_size,
                         min_cohort_periods=config.min_cohort_periods)
    return holdout.compare(before, histories, fits_, held_out_days=(as_of - day).days), day


def backtest_md(table: pd.DataFrame, verdict: str, day: dt.date, config: ReportConfig) -> str:
    done = table[table["mae_sbg"].notna()]
    pooled = done[done["cohort"] == cohorts.POOLED]
    lines = ["## Is the projection any good?", "",
             f"Fitted only on the export as it was on {day.isoformat()} ({config.holdout_months} "
             "months before), each cohort's surviving share projected over the renewals of the "
             "months since, against what happened (Kaplan-Meier of the same customers now): "
             f"**{verdict}**.", ""]
    for r in pooled.itertuples(index=False):
        lines.append(f"- all {r.period_days}-day cohorts together, renewals {r.first_t}..{r.last_t}:"
                     f" sBG {100 * r.mae_sbg:.2f}, Kaplan-Meier carried forward "
                     f"{100 * r.mae_km:.2f} percentage points")
    lines += ["", "Per cohort: holdout.csv.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the stage


def folder(paths: Paths, period: str, as_of: dt.date | None = None) -> Path:
    """Where a report goes: `<paths.report>/<period>` for the export's own as-of date (the DVC
    stage's output), `<paths.report>/as-of-<date>/<period>` for an earlier day (`--as-of`)."""
    root = Path(paths.report)
    return root / period if as_of is None else root / f"as-of-{as_of.isoformat()}" / period


def cut(day: dt.date, customers: pd.DataFrame, subs: pd.DataFrame, charges: pd.DataFrame,
        nps: pd.DataFrame | None, *, grace_days: int
        ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The tables as an export taken on `day` would hold them, as records.cut writes them:
    customers who signed up before `day`, periods that started before it with each outcome only
    if known before it (features.observations.as_seen), top-ups and answers dated before it."""
    v = pd.Timestamp(day)
    customers = customers[customers["signup_date"] < v].reset_index(drop=True)
    subs = obs.as_seen(subs, view=day, grace_days=grace_days)
    charges = charges[charges["ts"] < v].reset_index(drop=True)
    nps = None if nps is None else nps[nps["ts"] < v].reset_index(drop=True)
    return customers, subs, charges, nps


def run(config: ReportConfig, labels: LabelConfig, paths: Paths,
        log: Callable[[str], None] = print, as_of: dt.date | None = None) -> ReportSummary:
    """The report of the interim folder, as of the export's day or of an earlier `as_of` (the
    tables cut there: the same figures as a report of an export taken that day)."""
    target = artifacts.claim(folder(paths, config.period, as_of), STAGE)
    inputs = artifacts.read_all(*tables.inputs(paths, "interim"))
    m = tables.manifest(paths)
    if as_of is not None and as_of > m.as_of:
        raise UserError(f"--as-of {as_of} is after the export's as-of date {m.as_of}: a report "
                        "can only look back")
    files = tables.interim_files(paths, m)
    customers, subs = observe_stage.interim_frames(paths, m)
    charges = _read(files["charges"])
    nps = _read(files["nps"]) if "nps" in files else None
    if as_of is not None:
        log(f"the tables as of {as_of} (the export is of {m.as_of})")
        customers, subs, charges, nps = cut(as_of, customers, subs, charges, nps,
                                            grace_days=labels.grace_days)
    as_of = m.as_of if as_of is None else as_of
    log(f"runs of {len(customers):,} customers")
    runs = obs.runs(customers, subs, view=as_of, grace_days=labels.grace_days)
    first = customers["signup_date"].min()
    first_day = as_of - dt.timedelta(days=1) if pd.isna(first) else pd.Timestamp(first).date()
    per = periods(first_day, as_of, period=config.period, calendar=m.calendar)
    log(f"figures for {len(per)} {config.period}s")
    fig_ = period_figures(per, runs, subs, charges, customers, nps, as_of=as_of,
                          grace_days=labels.grace_days)
    fig_["status"] = status(fig_)
    fig_ = fig_[list(FIGURE_COLUMNS)]
    log("cohort curves")
    curves = cohorts.curves(runs, per)
    matrix = cohorts.curve_matrix(curves) if len(curves) else pd.DataFrame()
    log("sBG fits per cohort and plan clock")
    hist = cohorts.renewal_histories(runs, subs, per, as_of=as_of, grace_days=labels.grace_days)
    fits_ = cohorts.fits(hist, min_cohort_size=config.min_cohort_size,
                         min_cohort_periods=config.min_cohort_periods)
    proj = cohorts.projection(fits_, config.horizon_periods)
    actual = actual_survival(hist, fits_)
    proj = proj.merge(actual, on=["cohort", "period_days", "t"], how="left")
    proj = proj[["cohort", "period_days", "t", "projected", "survival", "actual"]]
    rpp = revenue_per_period(hist, subs, charges)
    pooled = fits_[(fits_["cohort"] == cohorts.POOLED) & (fits_["reason"] == "")]
    derl_new, value = {}, {}
    for f in pooled.itertuples(index=False):
        v = cohorts.customer_value(cohorts.POOLED, f.period_days, 0, rpp[f.period_days], fits_,
                                   config.discount_rate)
        derl_new[int(f.period_days)], value[int(f.period_days)] = v.derl, v.value
    fits_out = fits_.assign(
        revenue_per_period=fits_["period_days"].map(rpp),
        derl_new=[float(sbg.derl(a, b, 1, config.discount_rate)) if r == "" else np.nan
                  for a, b, r in zip(fits_["alpha"], fits_["beta"], fits_["reason"], strict=True)])
    fits_out["forward_value_new"] = fits_out["revenue_per_period"] * fits_out["derl_new"]
    life = ltv.lifetime_value(runs, subs, charges, as_of=as_of)
    log(f"backtest: sBG and Kaplan-Meier fitted {config.holdout_months} months back")
    back, back_day = backtest(config, labels.grace_days, customers, subs, charges, hist,
                              first_day=first_day, as_of=as_of, calendar=m.calendar)
    verdict = holdout.verdict(back)
    log("plots and summary")
    clocks = sorted(int(c) for c in pd.unique(proj["period_days"])) if len(proj) else []
    pictures = {"cohort_heatmap.png": heatmap(matrix, config.period),
                "cohort_curves.png": cohort_curves(proj, actual, clocks),
                "retention.png": retention_plot(fig_)}
    text = summary_md(fig_, fits_, value, derl_new, rpp, life, as_of=as_of,
                      calendar=m.calendar, config=config)
    text += backtest_md(back, verdict, back_day, config)
    with artifacts.stage_output(target, STAGE, inputs) as tmp:
        _csv(fig_, tmp / "figures.csv")
        _csv(curves, tmp / "cohorts.csv")
        _csv(fits_out, tmp / "fits.csv")
        _csv(proj, tmp / "projection.csv")
        _csv(back, tmp / "holdout.csv")
        for name, picture in pictures.items():
            picture.savefig(tmp / name, format="png", metadata={"Software": None})
        (tmp / "summary.md").write_text(text, encoding="utf-8")
    done = fig_[fig_["status"] != "partial"]
    recent = _round(done.tail(6)).to_dict("records")
    return ReportSummary(
        as_of=as_of.isoformat(), calendar=m.calendar, period=config.period,
        folder=str(target), recent=recent,
        partial=fig_.loc[fig_["status"] == "partial", "label"].tolist(),
        provisional=done.loc[done["status"] == "provisional", "label"].tolist(),
        cohorts=int(curves["cohort"].nunique()) if len(curves) else 0,
        fitted=int(((fits_["reason"] == "") & (fits_["cohort"] != cohorts.POOLED)).sum()),
        not_fitted=int(((fits_["reason"] != "") & (fits_["cohort"] != cohorts.POOLED)).sum()),
        ltv=float(life.ltv), holdout=verdict, forward_value=value)


def render(s: ReportSummary, console, *, holdout_months: int) -> None:
    """The one-screen summary: the last complete periods' figures, then the cohorts, the sBG
    fits, LTV, the backtest's verdict and the files written."""
    from rich.table import Table

    def pct(x: float) -> str:
        return "-" if x != x else f"{100 * x:.2f} %"

    table = Table(title=f"retention per {s.period} ({s.calendar}), complete periods, "
                        f"as of {s.as_of}")
    for col in ("period", "S", "N", "E", "lost", "CRR", "churn", "NRR", "NPS", "status"):
        table.add_column(col, justify="left" if col in ("period", "status") else "right")
    for r in s.recent:
        table.add_row(r["label"], f"{r['S']:,}", f"{r['N']:,}", f"{r['E']:,}", f"{r['lost']:,}",
                      pct(r["crr"]), pct(r["churn_rate"]), pct(r["nrr"]),
                      "-" if r["nps"] != r["nps"] else f"{r['nps']:.1f}", r["status"])
    console.print(table)
    value = ", ".join(f"{clock}-day plans {v:,.0f}" for clock, v in s.forward_value.items())
    console.print(
        f"CRR = (E - N) / S, churn = lost / S, lost = S + N - E. "
        f"Partial (left out): {', '.join(s.partial) or 'none'}; provisional (renewals still "
        f"pending): {', '.join(s.provisional) or 'none'}.\n"
        f"{s.cohorts} signup cohorts; sBG fitted for {s.fitted} (cohort, plan clock) pairs, "
        f"{s.not_fitted} too small or too short (reasons in summary.md). LTV (documents) "
        f"{s.ltv:,.0f}; forward value of a new customer (sBG DERL) {value or '-'}.\n"
        f"Backtest ({holdout_months} months held out): {s.holdout}.\n"
        f"{s.folder}/: {', '.join(s.files)}"
    )


# --------------------------------------------------------------------------- MLflow

# the headline figures of the latest complete period that become the run's metrics
HEADLINE = ("S", "N", "E", "lost", "crr", "churn_rate", "churn_start", "revenue", "nrr",
            "expansion", "contraction", "churned_revenue", "answers", "nps",
            "referrals_per_customer", "revenue_per_customer")


@dataclass
class TrackSummary:
    run_id: str
    period: str  # the label of the period whose figures are the metrics ('' if none)
    metrics: int


def track(folder: Path, uri: str, experiment: str, *, as_of: str,
          log: Callable[[str], None] = print) -> TrackSummary:
    """Log a written report folder to MLflow as its own run named "report": tagged with the
    export's manifest hash (the digest of the interim folder's `_stage.json` the report was
    made from), the report's own digest, period, as-of date and calendar; the latest complete
    period's headline figures as metrics (and the backtest's mean errors); every file as an
    artifact. Nothing is written into the folder (its bytes stay those of the DVC stage)."""
    with tracking.logged_after_writing("the report is", folder):
        return _track(folder, uri, experiment, as_of=as_of, log=log)


def _track(folder: Path, uri: str, experiment: str, *, as_of: str,
           log: Callable[[str], None]) -> TrackSummary:
    with tracking.server_errors(uri):
        tracking.check_reachable(uri)
        record = artifacts.read(artifacts.Input("report", Path(folder), STAGE))
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        fig_ = pd.read_csv(Path(folder) / "figures.csv")
        back = pd.read_csv(Path(folder) / "holdout.csv")
        done = fig_[fig_["status"] != "partial"]
        latest = done.iloc[-1] if len(done) else None
        metrics = {} if latest is None else {
            k: float(latest[k]) for k in HEADLINE if np.isfinite(float(latest[k]))}
        compared = back[(back["cohort"] != cohorts.POOLED) & back["mae_sbg"].notna()]
        if len(compared):
            metrics |= {"holdout_mae_sbg": float(compared["mae_sbg"].mean()),
                        "holdout_mae_km": float(compared["mae_km"].mean())}
        tags = tracking.git_state() | {
            "export_manifest": record.inputs.get("interim", ""), "report_digest": record.digest,
            "period": str(Path(folder).name), "as_of": as_of,
            "latest_complete_period": "" if latest is None else str(latest["label"]),
            "latest_status": "" if latest is None else str(latest["status"]),
            "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "")}
        tracking.setup(uri, experiment)
        with mlflow.start_run(run_name="report", tags=tags) as run:
            if metrics:
                mlflow.log_metrics(metrics)
            artifacts.kill_point("tracked", STAGE)  # the run started, not ended
            for name in sorted(record.files):
                mlflow.log_artifact(str(Path(folder) / name))
        log(f"logged {len(record.files)} files and {len(metrics)} metrics to run {run.info.run_id}")
        return TrackSummary(run.info.run_id, tags["latest_complete_period"], len(metrics))


def render_track(t: TrackSummary, console, *, uri: str) -> None:
    """One sentence: the run the report was logged to."""
    console.print(f"MLflow {uri}: run {t.run_id} ('report', {t.metrics} metrics of "
                  f"{t.period or 'no complete period'}), tagged with the export's manifest "
                  "hash.")
