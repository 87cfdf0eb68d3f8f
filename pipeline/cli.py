"""`churn`: one subcommand per pipeline stage. The only place that reads params.yaml."""

from __future__ import annotations

import datetime as dt
import errno
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.errors import UserError
from pipeline.params import Params, load_params, replace

# OpenMP threads (LightGBM, scikit-learn) spin while they wait; on a machine whose cores are
# busy with other jobs that made training 5-10x slower here (docs/design.md). Let them sleep,
# unless the user chose a policy. Set before any OpenMP library loads (the commands import
# their libraries lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MLflow draws a progress bar per model download; the commands print their own status line
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

app = typer.Typer(
    help="Churn prediction and retention figures for a subscription business.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# logs and CI are not terminals: give tables room instead of the 80-column default
console = Console(stderr=True, soft_wrap=True, log_path=False,
                  width=None if sys.stderr.isatty() else 160)

ParamsOpt = Annotated[Path, typer.Option("--params", help="The params file to read.")]


def _load(path: Path) -> Params:
    try:
        return load_params(path)
    except UserError as err:
        _fail(str(err))


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    # a message quotes the user's names and values: `[usage]` is text, not a style tag
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _date(flag: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{flag} {value!r} is not a date (YYYY-MM-DD)")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True, disable=not sys.stderr.isatty(),
    )


@app.command()
def simulate(
    params: ParamsOpt = Path("params.yaml"),
    customers: Annotated[int | None, typer.Option(help="Customers to simulate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for export/ and truth/.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or parquet.")] = None,
) -> None:
    """Simulate the SMS-panel business: its export (contract tables) and, apart, the truth."""
    from pipeline.stages import simulate as stage

    p = _load(params)
    if out is None and not p.paths.raw_is_simulated:
        stage.render_skipped(p.paths.raw, p.paths.sim_export, console)
        _guard(lambda: stage.skip(Path(p.paths.sim), p.paths.raw))
        return
    overrides = {k: v for k, v in
                 {"customers": customers, "seed": seed, "format": fmt}.items() if v is not None}
    if fmt is not None and fmt not in ("csv", "parquet"):
        _fail(f"--format must be csv or parquet, not {fmt!r}")
    sim = _guard(lambda: replace(p.simulate, "simulate", **overrides))
    target = out if out is not None else Path(p.paths.sim)
    with _progress() as bar:
        task = bar.add_task("simulate", total=sim.days)
        summary = _guard(lambda: stage.run(
            sim, p.labels, target, progress=lambda done, total: bar.update(task, completed=done)))
    stage.render(summary, console, target=target)


@app.command()
def ingest(
    params: ParamsOpt = Path("params.yaml"),
    raw: Annotated[Path | None, typer.Option(help="Raw export folder (default paths.raw).")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Export date YYYY-MM-DD (default: data.as_of, "
                                 "else the day after the latest event).")
    ] = None,
) -> None:
    """Validate the export against the contract: clean tables, quarantined rows, a manifest."""
    from pipeline.stages import ingest as stage

    p = _load(params)
    data = p.data if as_of is None else _guard(
        lambda: replace(p.data, "data", as_of=_date("--as-of", as_of)))
    paths = p.paths if raw is None else _guard(lambda: replace(p.paths, "paths", raw=str(raw)))
    raw_dir = Path(paths.raw)
    report = _stage("ingest", lambda log: stage.run(data, paths, raw_dir, progress=log),
                    hint="Nothing was written; the previous outputs are unchanged.")
    stage.render(report, console, raw=raw_dir, paths=paths)


@app.command()
def observe(params: ParamsOpt = Path("params.yaml")) -> None:
    """Observation points (young, early-life, ongoing, scoring), labels and censoring."""
    from pipeline.stages import observe as stage

    p = _load(params)
    s = _stage("observe", lambda log: stage.run(p.labels, p.paths))
    stage.render(s, console, labels=p.labels, paths=p.paths)


EngineOpt = Annotated[str | None, typer.Option(
    help="duckdb or spark (features.engine): the same feature definitions on either.")]
SparkMasterOpt = Annotated[str | None, typer.Option(
    help="Spark's master when the engine is spark (features.spark.master): local[2], "
         "spark://host:7077, yarn, or a Spark Connect URL sc://host:15002.")]


def _engine(p: Params, engine: str | None, spark_master: str | None):
    """params.yaml's `features` section with the --engine and --spark-master flags applied,
    checked as params.yaml is."""
    import dataclasses

    feat = p.features
    if spark_master is not None:
        try:
            feat = dataclasses.replace(feat, spark=dataclasses.replace(feat.spark,
                                                                       master=spark_master))
        except UserError as err:
            _fail(f"--spark-master: features.spark.{err}")
    if engine is not None:
        feat = _guard(lambda: replace(feat, "features", engine=engine))
    if spark_master is not None and feat.engine != "spark":
        _fail(f"--spark-master {spark_master}: the engine is {feat.engine}, so no Spark would "
              "start; add --engine spark (or set features.engine: spark)")
    return feat


@app.command()
def features(
    params: ParamsOpt = Path("params.yaml"),
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    doc: Annotated[Path | None, typer.Option(help="Only write the feature catalogue here.")] = None,
) -> None:
    """Point-in-time features of every observation point (one definition, any engine)."""
    from features.catalogue import render
    from pipeline import io
    from pipeline.stages import features as stage

    if doc is not None:
        with io.atomic_path(doc) as tmp:
            tmp.write_text(render())
        console.print(f"wrote {doc}")
        return
    p = _load(params)
    feat = _engine(p, engine, spark_master)
    s = _stage(f"features on {feat.engine}", lambda log: stage.run(feat, p.labels, p.paths))
    stage.render(s, console, paths=p.paths)


@app.command()
def train(params: ParamsOpt = Path("params.yaml")) -> None:
    """Fit out of time (base rate, L1 logistic, the HistGradientBoosting peer, LightGBM +
    calibration), check the calibration forward in time, refit LightGBM for production."""
    from pipeline.stages import train as stage

    p = _load(params)
    r = _stage("train", lambda log: stage.run(p.train, p.labels, p.paths, log=log))
    stage.render(r, console, paths=p.paths)


@app.command()
def evaluate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Out-of-time metrics with customer-bootstrap intervals, and the plots."""
    from pipeline.stages import evaluate as stage

    p = _load(params)
    metrics = _stage("evaluate", lambda log: stage.run(p.evaluate, p.paths, log=log,
                                                         offer=p.score))
    stage.render(metrics, console, paths=p.paths)


@app.command()
def report(
    params: ParamsOpt = Path("params.yaml"),
    period: Annotated[str | None, typer.Option(
        help="month, quarter or year, in data.calendar (default: report.period).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Report as of an earlier day YYYY-MM-DD, as an export taken that day "
                        "would give it (default: the export's as-of date); written to "
                        "<paths.report>/as-of-<date>/<period>.")] = None,
    track: Annotated[bool, typer.Option(
        "--track", help="Also log the written report to MLflow as a run named 'report' "
                        "(MLFLOW_TRACKING_URI or the project's mlflow.db). Not in the DVC "
                        "stage: nothing of the run is written into the folder.")] = False,
) -> None:
    """The classic retention report: CRR, churn, NRR, NPS per period, cohorts, sBG, LTV."""
    from pipeline.stages import report as stage

    p = _load(params)
    config = p.report if period is None else _guard(
        lambda: replace(p.report, "report", period=period))
    day = _guard(lambda: _date("--as-of", as_of))
    uri = None
    if track:
        from pipeline import tracking

        uri = tracking.resolve_uri()
        _guard(lambda: tracking.check_reachable(uri))  # fail in seconds, before the work
    s = _stage(f"report per {config.period}",
               lambda log: stage.run(config, p.labels, p.paths, log=log, as_of=day))
    stage.render(s, console, holdout_months=p.report.holdout_months)
    if uri is not None:
        t = _stage(f"log the report to {uri}", lambda log: stage.track(
            Path(s.folder), uri, p.mlflow.experiment, as_of=s.as_of, log=log))
        stage.render_track(t, console, uri=uri)


@app.command()
def score(
    params: ParamsOpt = Path("params.yaml"),
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Score on this day YYYY-MM-DD (default: the export's as-of date); an "
                        "earlier day scores the past as an export taken then shows it.")] = None,
    model_uri: Annotated[str | None, typer.Option(
        "--model-uri", help="models:/<name>@<alias>, models:/<name>/<version> or a model "
                            "folder (default: models:/<mlflow.model_name>@champion).")] = None,
    allow_stale: Annotated[bool, typer.Option(
        "--allow-stale", help="Score on a day after the export's as-of date anyway.")] = False,
    pipeline: Annotated[bool, typer.Option(
        "--pipeline", help="The DVC stage: the model file `train` wrote and the `features` "
                           "stage's rows, into paths.score; no MLflow, no run ids.")] = False,
    track: Annotated[bool, typer.Option(
        "--track/--no-track", help="Log the scoring to MLflow as a run (weekly mode).")] = True,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Score every customer at risk: probability, band, value, the list, reasons, drift."""
    from pipeline.stages import score as stage

    p = _load(params)
    day = _guard(lambda: _date("--as-of", as_of))
    if pipeline:
        if day is not None or model_uri is not None or allow_stale:
            _fail("--pipeline scores the export's own as-of date with the model `train` wrote: "
                  "drop --as-of, --model-uri and --allow-stale (or drop --pipeline)")
        if engine is not None or spark_master is not None:
            _fail("--pipeline reads the `features` stage's rows and computes none: drop "
                  "--engine and --spark-master (the features stage takes them)")
        s = _stage("score (pipeline)", lambda log: stage.run_pipeline(
            p.score, p.report, p.paths, p.mlflow.model_name))
    else:
        feat = _engine(p, engine, spark_master)
        s = _weekly(p, p.paths, day, model_uri, allow_stale, track, feat)
    stage.render(s, console)


def _model_uri(p: Params, model_uri: str | None) -> str:
    return model_uri or f"models:/{p.mlflow.model_name}@champion"


def _weekly(p: Params, paths, day, model_uri, allow_stale: bool, track: bool, feat,
            loaded=None):
    from pipeline import tracking
    from pipeline.stages import score as stage

    uri = tracking.resolve_uri()
    model = _model_uri(p, model_uri)
    return _stage(f"score with {model} (features on {feat.engine})",
                  lambda log: stage.run_weekly(
                      p.score, p.report, paths, model_uri=model, tracking_uri=uri,
                      experiment=p.mlflow.experiment, as_of=day, allow_stale=allow_stale,
                      track=track, engine=feat.engine, spark=feat.spark, loaded=loaded,
                      log=log))


@app.command()
def weekly(
    export: Annotated[Path, typer.Argument(help="The new export's folder (as paths.raw).")],
    params: ParamsOpt = Path("params.yaml"),
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The export's date YYYY-MM-DD (default: data.as_of, else the day "
                        "after its latest event); also the scoring day.")] = None,
    model_uri: Annotated[str | None, typer.Option(
        "--model-uri", help="Default: models:/<mlflow.model_name>@champion.")] = None,
    track: Annotated[bool, typer.Option("--track/--no-track")] = True,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """The weekly job: ingest a new export into paths.weekly and score it with the champion
    (no retraining; the DVC workspace is not touched)."""
    import contextlib

    from pipeline import tracking
    from pipeline.stages import ingest as ingest_stage
    from pipeline.stages import score as stage

    p = _load(params)
    day = _guard(lambda: _date("--as-of", as_of))
    config = p.data if day is None else _guard(lambda: replace(p.data, "data", as_of=day))
    feat = _engine(p, engine, spark_master)
    paths = stage.weekly_paths(p.paths)
    if not export.is_dir():
        _fail(f"{export} is not a folder: give the folder of the new export")
    if track or (model_uri or "models:/").startswith("models:/"):
        # a server that does not answer stops the job in seconds, before the ingest
        _guard(lambda: tracking.check_reachable(tracking.resolve_uri()))
    _guard(lambda: stage.check_workspace(p.paths))
    # the model first: a wrong --model-uri stops the job before the new export replaces the
    # weekly workspace's last one
    loaded = _guard(lambda: stage.load_registered(_model_uri(p, model_uri),
                                                  tracking.resolve_uri()))
    with contextlib.ExitStack() as held:
        # a read-only or full paths.weekly fails here: a message, not a traceback
        _guard(lambda: held.enter_context(stage.weekly_lock(p.paths)))
        r = _stage(f"ingest {export} into {paths.interim}",
                   lambda log: ingest_stage.run(config, paths, export, progress=log))
        console.print(f"ingested the export of {r.as_of}: "
                      + ", ".join(f"{t.table} {t.kept:,} kept, {t.quarantined:,} quarantined"
                                  for t in r.tables.values() if t.present))
        s = _weekly(p, paths, None, model_uri, False, track, feat, loaded)
    stage.render(s, console)


@app.command()
def backtest(
    params: ParamsOpt = Path("params.yaml"),
    track: Annotated[bool, typer.Option(
        "--track/--no-track", help="Log the backtest to MLflow as a run.")] = True,
    replay: Annotated[int, typer.Option(
        "--replay", min=0, help="Replay the last N weeks whose outcome is known: each scored by "
                                "a model trained on the export cut at that week.")] = 0,
    prune: Annotated[bool, typer.Option(
        "--prune", help="With --replay: remove the replays made under other settings or code "
                        "(each change of settings replays into a new folder).")] = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """How did last weeks' scores do? Each scored week against the churn that followed."""
    from pipeline import tracking
    from pipeline.stages import backtest as stage
    from pipeline.stages.replay import ReplayConfig

    if prune and not replay:
        _fail("--prune removes the replays made under other settings than this replay's: give "
              "--replay N as well")
    p = _load(params)
    feat = _engine(p, engine, spark_master)
    settings = ReplayConfig(p.labels, feat, p.train, p.score, p.report)
    uri = tracking.resolve_uri() if track else ""
    s = _stage("backtest" + (f" (replay of {replay} weeks)" if replay else ""),
               lambda log: stage.run(
                   p.evaluate, p.score, p.report, p.paths, replay=replay,
                   replay_config=settings, prune=prune,
                   track=track, tracking_uri=uri, experiment=p.mlflow.experiment, log=log))
    stage.render(s, console)


@app.command()
def register(params: ParamsOpt = Path("params.yaml")) -> None:
    """Log the trained model to MLflow, register it, and apply the champion rule."""
    from pipeline import tracking
    from pipeline.stages import register as stage

    p = _load(params)
    uri = tracking.resolve_uri()
    s = _stage(f"register in {uri}", lambda log: stage.run(p, uri, log=log))
    stage.render(s, console, uri=uri, model_name=p.mlflow.model_name)


@app.command()
def promote(version: str, params: ParamsOpt = Path("params.yaml")) -> None:
    """Make a registered model version the champion by hand."""
    from pipeline import tracking
    from pipeline.stages import register as stage

    p = _load(params)
    console.print(_guard(lambda: stage.promote(p, tracking.resolve_uri(), version)))


def _guard(work, hint: str = ""):
    """Run `work`; a mistake the user can fix (UserError) or a disk that cannot take the
    outputs ends the command with a message and exit code 2. Anything else is a bug and keeps
    its traceback."""
    try:
        return work()
    except UserError as err:
        _fail(f"{err}\n{hint}" if hint else str(err))
    except OSError as err:
        if err.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            _fail(f"cannot write {err.filename or 'an output'}: {err.strerror} (a file stands "
                  "where a folder is needed, or the other way round). Move it away or point "
                  "the paths.* setting elsewhere; the previous outputs are unchanged.")
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
            raise
        _fail(f"cannot write {err.filename or 'an output'}: {err.strerror}. Free some space or "
              "fix the permissions; the previous outputs are unchanged.")
    except Exception as err:  # DuckDB's own I/O errors are not OSErrors
        import duckdb

        if not (isinstance(err, duckdb.IOException) and "No space left on device" in str(err)):
            raise
        _fail(f"the disk is full: {str(err).splitlines()[0][:300]}. Free some space; the "
              "previous outputs are unchanged.")


def _stage(title: str, work, hint: str = ""):
    """Run a stage under a status line that shows its steps (see `_guard` for errors)."""
    def run():
        with console.status(title) as status:
            def log(message: str) -> None:
                from rich.markup import escape

                status.update(escape(f"{title}: {message}"))
                console.log(escape(message))

            return work(log)

    return _guard(run, hint)


@app.command()
def contract(
    out: Annotated[Path, typer.Option(help="Where to write the contract page.")] = Path(
        "docs/contract.md"),
) -> None:
    """Write the input contract (tables, columns, rules) as Markdown."""
    from pipeline import artifacts
    from records.contract_doc import render

    def write() -> None:
        try:
            with artifacts.write_file(out, "contract") as tmp:
                tmp.write_text(render())
        except UserError as err:
            raise UserError(f"--out {out}: {err}") from None
        except OSError as err:
            # render() reads no file: the folder, or the lock or temp file beside the page,
            # cannot be made there (under /proc or /sys, below a file such as /dev/null, on a
            # read-only disk, a name too long)
            raise UserError(f"cannot write {out}: {err.strerror} ({err.filename}). Give --out a "
                            "path in a folder you can write to") from None

    _guard(write)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    app()
