"""`churn backtest [--replay N]`: every week of a score history against the churn that followed.

Reads the score history (`<paths.weekly>/scores/<as_of>/`) and the newest export ingested
(the weekly job's or the pipeline's, whichever is later); judges each week whose outcome is
known by then (as_of + the scoring model's horizon + grace <= the export's as-of date) with the
label definition of the model that scored it (scoring.backtest); writes
`<paths.weekly>/backtest/` whole (weeks.csv, reliability.csv, plots, summary.json) and logs an
MLflow run. Outside DVC, like the history it reads.

With `--replay N` the history judged is a replayed one (pipeline/stages/replay.py: the last N
weeks, each scored by a model trained on the export cut at that week), written to
`<paths.weekly>/replay/<settings>/backtest/`; nobody was contacted from a replayed list, so it
has no campaign effect. On the simulated export the weeks are also compared with the
simulator's truth: the mean probability against the mean true churn probability of the
scored customers the truth covers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.markup import escape

from common.errors import UserError
from common.exact import round_floats, round_sig
from features import observations as obs
from models import level
from models.config import EvaluateConfig
from pipeline import artifacts, io, tables, tracking
from pipeline.params import Paths
from pipeline.stages import replay as replay_stage
from pipeline.stages import score as score_stage
from retention.config import ReportConfig
from scoring import backtest, cohort_check
from scoring.config import ScoreConfig

STAGE = "backtest"
WEEKS, RELIABILITY, COHORTS, SUMMARY = ("weeks.csv", "reliability.csv", "cohorts.csv",
                                        "summary.json")


@dataclass
class BacktestSummary:
    source: str  # live (the weekly history) or replay
    export: str  # the interim folder the outcomes come from
    export_as_of: str
    judged: list[dict]  # one row per judged week (weeks.csv)
    pending: list[dict]  # weeks whose outcome is not known yet: as_of, known_on
    folder: str
    mlflow_run_id: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return round_floats(dataclasses.asdict(self))


def outcome_source(paths: Paths) -> Paths:
    """The paths whose interim folder is the newest export ingested: the weekly job's or the
    pipeline's."""
    weekly = score_stage.weekly_paths(paths)
    best, best_day = None, None
    for candidate in (weekly, paths):
        if artifacts.StageRecord.read(Path(candidate.interim)) is None:
            continue
        day = tables.manifest(candidate).as_of
        if best_day is None or day > best_day:
            best, best_day = candidate, day
    if best is None:
        raise UserError(f"no ingested export in {weekly.interim} or {paths.interim}: run "
                        "`churn weekly <export>` (or `dvc repro`) first")
    return best


def _weeks(paths: Paths) -> list[tuple[Path, dict]]:
    root = Path(paths.weekly) / "scores"
    folders = [f for f in (sorted(root.glob("*/")) if root.is_dir() else [])
               if not f.name.startswith(".") and (f / score_stage.SUMMARY).is_file()]
    return _read_weeks(folders)


def _read_weeks(folders: list[Path]) -> list[tuple[Path, dict]]:
    out = []
    for folder in folders:
        artifacts.read(artifacts.Input("scores", folder, score_stage.STAGE))
        out.append((folder, json.loads((folder / score_stage.SUMMARY).read_text())))
    return out


def _truth(source: Paths) -> pd.DataFrame | None:
    """The simulator's truth (customer_id, t, truth), when the outcomes' export is the
    simulated one beside it."""
    found = tables.simulated_truth(source, tables.manifest(source))
    if found is None:
        return None
    t = pd.read_parquet(found[0], columns=["customer_id", "t", "truth"])
    t["t"] = pd.to_datetime(t["t"]).dt.date
    return t


def run(evaluate: EvaluateConfig, offer: ScoreConfig, report: ReportConfig, paths: Paths, *,
        replay: int = 0,
        replay_config: replay_stage.ReplayConfig | None = None, prune: bool = False,
        track: bool = True,
        tracking_uri: str = "", experiment: str = "",
        log: Callable[[str], None] = print) -> BacktestSummary:
    """Judge the live score history, or (`replay` > 0) replay the last `replay` weeks first
    and judge those."""
    score_stage.check_workspace(paths)  # a file at paths.weekly stops here, not later
    if track:
        tracking.check_reachable(tracking_uri)  # in seconds, before any replay or judging
    source = outcome_source(paths)
    if replay:
        if replay_config is None:
            raise ValueError("a replay needs its settings (replay_config)")
        with replay_stage.in_use(paths, replay_config):
            summary = _run(evaluate, offer, report, paths, source, replay, replay_config, track,
                           tracking_uri, experiment, log)
        if prune:
            removed, kept = replay_stage.prune(paths, replay_config)
            summary.notes += [f"removed the replay under other settings or code {f} ({_mb(size)})"
                              for f, size in removed] + kept
        else:
            others = replay_stage.older(paths, replay_config)
            if others:
                summary.notes.append(
                    f"{len(others)} replay(s) under other settings or code take "
                    f"{_mb(sum(size for _, size in others))} in "
                    f"{replay_stage.root(paths, replay_config).parent}: remove them with "
                    "`churn backtest --replay N --prune`")
        return summary
    return _run(evaluate, offer, report, paths, source, 0, None, track, tracking_uri, experiment,
                log)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def _run(evaluate: EvaluateConfig, offer: ScoreConfig, report: ReportConfig, paths: Paths,
         source: Paths, replay: int, replay_config: replay_stage.ReplayConfig | None,
         track: bool, tracking_uri: str, experiment: str,
         log: Callable[[str], None]) -> BacktestSummary:
    if replay:
        target = artifacts.claim(replay_stage.root(paths, replay_config) / "backtest", STAGE)
        replayed = replay_stage.run(replay, replay_config, source, paths, log=log)
        weeks = _read_weeks([Path(w.folder) for w in replayed])
    else:
        target = artifacts.claim(Path(paths.weekly) / "backtest", STAGE)
        weeks = _weeks(paths)
        if not weeks:
            raise UserError(f"the score history ({Path(paths.weekly) / 'scores'}) is empty: run "
                            "`churn score` or `churn weekly <export>` first, or replay past "
                            "weeks with `churn backtest --replay N`")
    record = artifacts.read_all(*tables.inputs(source, "interim"))["interim"]
    data = score_stage.read_data(source)
    now = data.manifest.as_of
    truth = _truth(source)
    log(f"outcomes from the export of {now} ({source.interim}); {len(weeks)} week(s) "
        f"{'replayed' if replay else 'scored'}")
    rows, pending, curves, notes, inputs = [], [], [], [], {"interim": record}
    by_cohort = []
    runs_now = {}
    for folder, summary in weeks:
        day = pd.Timestamp(summary["as_of"]).date()
        label = summary.get("model_label") or {}
        horizon, grace = int(label.get("horizon_days", 60)), int(label.get("grace_days", 14))
        known = day + pd.Timedelta(days=horizon + grace)
        if known > now:
            pending.append({"as_of": day.isoformat(), "known_on": known.isoformat()})
            continue
        inputs[f"week {day}"] = artifacts.StageRecord.read(folder)
        scores = pd.read_parquet(folder / score_stage.SCORES)
        if grace not in runs_now:
            runs_now[grace] = obs.runs(data.customers, data.subs, view=now, grace_days=grace)
        runs_day = obs.runs(data.customers, data.subs, view=day, grace_days=grace)
        points = obs.scoring_points(runs_day, day=day)
        matched = scores[["customer_id"]].merge(points, on="customer_id", how="left")
        missing = int(matched["run"].isna().sum())
        if missing:
            notes.append(f"{day}: {missing:,} scored customers are not at risk on that day in "
                         f"the export of {now} (a different export?): left out")
        keep = matched["run"].notna().to_numpy()
        scores, matched = scores[keep].reset_index(drop=True), matched[keep].reset_index(drop=True)
        matched["run"] = matched["run"].astype("int64")
        churned = obs.label(matched, runs_now[grace], as_of=now, horizon_days=horizon,
                            grace_days=grace)
        y = churned.to_numpy(dtype=float)
        # per signup cohort: the model's expected churners against the sBG's and Kaplan-Meier's
        # (fitted on the export as it was on the week's day) and what happened
        cohorts = cohort_check.compare(
            scores, data.customers, data.subs, y, as_of=day, days=horizon,
            calendar=data.manifest.calendar, grace_days=grace, config=report, runs=runs_day)
        by_cohort.append(cohorts.assign(as_of=day.isoformat()))
        row = {"as_of": day.isoformat(), "model_version": summary.get("model_version", ""),
               "left_out": missing}
        row |= backtest.judge(scores, y, summary.get("expected", {}), clv=evaluate.empc_clv,
                              offer_cost=offer.offer_cost, contact_cost=offer.contact_cost,
                              alpha=offer.gamma_alpha, beta=offer.gamma_beta)
        live = bool(summary.get("live", True)) and not replay
        if not live:
            # a look at the past or a replay: nobody was contacted from that list
            for key in ("campaign_effect", "campaign_effect_lo", "campaign_effect_hi"):
                row[key] = np.nan
            if not replay:
                notes.append(f"{day}: scored after the fact (--as-of before its export's date):"
                             " no campaign effect")
        row["live"] = live
        pooled = cohorts[cohorts["cohort"] == cohort_check.ALL].iloc[0]
        row |= {f"cohort_{m}_error": float(pooled[f"{m}_error"]) for m in ("model", "sbg", "km")}
        row["cohort_churned"] = int(pooled["churned"])
        true_p = _truth_of(scores, truth, day)
        row |= _against_truth(scores, true_p)
        if replay:
            row |= _level_candidates(folder, scores, true_p)
        rows.append(row)
        curves.append(backtest.reliability(scores["churn_probability"].to_numpy(float),
                                           y.astype(np.int64)).assign(as_of=day.isoformat()))
        log(f"{day}: AUC {row['auc']:.3f} (expected {row['auc_expected']:.3f}), mean p "
            f"{row['mean_probability']:.3f} vs churn {row['churn']:.3f}")
    table = pd.DataFrame(rows)
    reliability = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if replay:
        notes.append("replayed weeks: each scored by a model trained on the export cut at that "
                     "week; nobody was contacted from their lists (no campaign effect)")
        agreement = _against_evaluate(paths, table)
        if agreement:
            notes.append(agreement)
    summary = BacktestSummary(source="replay" if replay else "live",
                              export=str(source.interim), export_as_of=now.isoformat(),
                              judged=table.to_dict("records"), pending=pending,
                              folder=str(target), notes=notes)
    with artifacts.stage_output(target, STAGE, inputs) as tmp:
        _csv(table, tmp / WEEKS)
        _csv(reliability, tmp / RELIABILITY)
        _csv(pd.concat(by_cohort, ignore_index=True) if by_cohort else pd.DataFrame(),
             tmp / COHORTS)
        if len(table):
            plots = tmp / "plots"
            plots.mkdir()
            for name, fig in _figures(table, reliability).items():
                fig.savefig(plots / f"{name}.png", format="png", metadata={"Software": None})
        io.write_json(summary.to_dict(), tmp / SUMMARY)
    if track and len(table):
        with tracking.logged_after_writing("the backtest is", target):
            summary.mlflow_run_id = _track(target, table, summary, tracking_uri, experiment)
    return summary


def _against_evaluate(paths: Paths, table: pd.DataFrame) -> str:
    """The replayed weeks' AUC against `churn evaluate`'s test-slice AUC and its interval (the
    pipeline's model, when its metrics are there): do the two tell the same story?"""
    path = Path(paths.metrics)
    if not path.is_file() or table.empty:
        return ""
    lgbm = json.loads(path.read_text()).get("lightgbm", {})
    auc, lo, hi = (lgbm.get(k) for k in ("roc_auc", "roc_auc_lo", "roc_auc_hi"))
    if None in (auc, lo, hi):
        return ""
    mean = float(table["auc"].mean())
    inside = int(((table["auc"] >= lo) & (table["auc"] <= hi)).sum())
    verdict = "inside" if lo <= mean <= hi else "outside"
    return (f"`churn evaluate`'s test-slice AUC {auc:.4f} [{lo:.4f}, {hi:.4f}]: the replayed "
            f"weeks' mean AUC {mean:.4f} is {verdict} it; {inside} of {len(table)} weeks fall "
            "inside")


def _truth_of(scores: pd.DataFrame, truth: pd.DataFrame | None, day) -> np.ndarray | None:
    """Each scored customer's true churn probability on the week's day, NaN where the truth
    has no point (it covers the product's observation points only); None without a truth."""
    if truth is None:
        return None
    on = truth[truth["t"] == day][["customer_id", "truth"]]
    return scores[["customer_id"]].merge(on, on="customer_id", how="left")["truth"].to_numpy(
        dtype=float)


def _against_truth(scores: pd.DataFrame, true_p: np.ndarray | None) -> dict:
    """The level against the simulator's truth: the scored customers it covers, their mean
    true churn probability and their mean predicted one."""
    if true_p is None:
        return {}
    on = ~np.isnan(true_p)
    if not on.any():
        return {"truth_customers": 0, "mean_truth": np.nan, "mean_probability_truth": np.nan}
    return {"truth_customers": int(on.sum()), "mean_truth": float(true_p[on].mean()),
            "mean_probability_truth": float(scores["churn_probability"].to_numpy(float)[on]
                                            .mean())}


def _level_candidates(folder: Path, scores: pd.DataFrame, true_p: np.ndarray | None) -> dict:
    """A replayed week's mean probability under each level candidate its model's training
    computed (models.level; train_summary.json beside the week's model), so the candidates
    are compared on the same models and weeks."""
    path = Path(folder).parents[2] / "models" / "train_summary.json"
    fit = json.loads(path.read_text())["calibration"].get("level") if path.is_file() else None
    if not fit:
        return {}
    out = {"level_applied": fit["method"]}
    p = scores["churn_probability"].to_numpy(float)
    on = None if true_p is None else ~np.isnan(true_p)
    for name, shift in fit["candidates"].items():
        q = level.shifted(p, float(shift) - float(fit["shift"]))
        out[f"mean_probability_{name}"] = float(q.mean())
        if on is not None and on.any():
            out[f"mean_probability_truth_{name}"] = float(q[on].mean())
    return out


def _csv(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = round_sig(out[c].to_numpy())
    out.to_csv(path, index=False, lineterminator="\n")


def _figures(table: pd.DataFrame, reliability: pd.DataFrame) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = pd.to_datetime(table["as_of"])
    out = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ax = axes[0]
    ax.fill_between(days, table["auc_band_low"], table["auc_band_high"], alpha=0.25,
                    label="expected 2.5..97.5 %")
    ax.plot(days, table["auc"], "o-", label="realised AUC")
    ax.plot(days, table["auc_expected"], "s--", label="expected AUC")
    ax.set_title("AUC per week")
    ax.legend()
    ax = axes[1]
    ax.errorbar(days, table["churn"], yerr=[table["churn"] - table["churn_lo"],
                                            table["churn_hi"] - table["churn"]],
                fmt="o", label="realised churn (95 % Wilson)")
    ax.plot(days, table["mean_probability"], "s--", label="mean probability")
    ax.set_title("Level per week")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    out["weeks"] = fig
    fig, ax = plt.subplots(figsize=(5, 5))
    for day, g in reliability.groupby("as_of", sort=True):
        ax.plot(g["mean_probability"], g["churn"], "o-", alpha=0.6, label=day)
    top = float(max(reliability["mean_probability"].max(), reliability["churn"].max(), 0.05))
    ax.plot([0, top], [0, top], "k:", label="calibrated")
    ax.set_xlabel("mean probability (decile)")
    ax.set_ylabel("realised churn")
    ax.set_title("Reliability per week")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out["reliability"] = fig
    return out


def _track(folder: Path, table: pd.DataFrame, summary: BacktestSummary, uri: str,
           experiment: str) -> str:
    with tracking.server_errors(uri):
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        tracking.setup(uri, experiment)
        tags = tracking.git_state() | {"kind": "backtest", "source": summary.source,
                                       "export_as_of": summary.export_as_of,
                                       "weeks_judged": str(len(table))}
        metric_cols = ["auc", "brier", "lift_top_decile", "empc", "mean_probability", "churn",
                       "mean_truth", "mean_probability_truth",
                       "list_precision", "campaign_effect"]
        name = "backtest" if summary.source == "live" else "backtest (replay)"
        with mlflow.start_run(run_name=name, tags=tags) as run:
            for step, row in enumerate(table.to_dict("records")):
                values = {c: float(row[c]) for c in metric_cols
                          if row.get(c) is not None and np.isfinite(float(row[c]))}
                mlflow.log_metrics(values, step=step)
            inside = {f"share_{m}_inside": float(table[f"{m}_inside"].mean())
                      for m in ("auc", "brier", "lift_top_decile")}
            inside["share_level_inside"] = float(table["level_inside"].mean())
            mlflow.log_metrics(inside)
            mlflow.log_artifacts(str(folder))
        return run.info.run_id


def render(s: BacktestSummary, console) -> None:
    from rich.table import Table

    title = "backtest" if s.source == "live" else "backtest of replayed weeks"
    table = Table(title=f"{title}: outcomes from the export of {s.export_as_of}")
    truth = any(r.get("truth_customers") for r in s.judged)
    for col in ("week", "customers", "AUC", "expected", "in band", "Brier", "mean p", "churn",
                *(["mean p | truth (customers)"] if truth else []), "list precision",
                "campaign effect"):
        table.add_column(col, justify="left" if col == "week" else "right")

    def f(x, fmt=".3f"):
        return "-" if x is None or x != x else format(x, fmt)

    for r in s.judged:
        table.add_row(r["as_of"], f"{r['customers']:,}", f(r["auc"]), f(r["auc_expected"]),
                      "yes" if r["auc_inside"] else "no", f(r["brier"], ".4f"),
                      f(r["mean_probability"]), f"{f(r['churn'])} [{f(r['churn_lo'])}, "
                      f"{f(r['churn_hi'])}]",
                      *([f"{f(r.get('mean_probability_truth'))} | {f(r.get('mean_truth'))} "
                         f"({r.get('truth_customers', 0):,})"] if truth else []),
                      f(r["list_precision"]),
                      f"{f(r['campaign_effect'], '+.3f')} [{f(r['campaign_effect_lo'], '+.3f')}, "
                      f"{f(r['campaign_effect_hi'], '+.3f')}]")
    console.print(table)
    if s.pending:
        console.print("not known yet: " + ", ".join(
            f"{w['as_of']} (on {w['known_on']})" for w in s.pending))
    for note in s.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if s.judged:
        err = {m: np.nanmean([abs(r[f"cohort_{m}_error"]) for r in s.judged])
               for m in ("model", "sbg", "km")}
        console.print("churners in the next horizon, all cohorts, mean absolute error per week: "
                      f"model {err['model']:.1f}, sBG {err['sbg']:.1f}, Kaplan-Meier carried "
                      f"forward {err['km']:.1f} ({COHORTS}: per signup cohort)")
    plots = "plots/, " if s.judged else ""  # drawn only when a week was judged
    console.print(f"{escape(s.folder)}/: {WEEKS}, {RELIABILITY}, {COHORTS}, {plots}{SUMMARY}"
                  + (f"; MLflow run {s.mlflow_run_id}" if s.mlflow_run_id else ""))
