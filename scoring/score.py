"""One week's scores: every customer at risk on the as-of date, with probability, band, state,
value, expected profit of an offer, the list, the control group, reasons and an action.

Pure: it takes the feature rows, the model, its drift reference and each row's value, and
returns tables; reading files, MLflow and the terminal are the pipeline's (pipeline.stages.score).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.classifier import ChurnClassifier, ContractMismatch
from models.profit import expected_net, profit_list
from scoring import drift, expected, holdout, reasons
from scoring.config import ScoreConfig

STATES = ("renewal_due", "pending", "young", "ongoing")
REASON_COLUMNS = tuple(f"reason_{i}{suffix}" for i in (1, 2, 3)
                       for suffix in ("", "_family", "_direction"))


@dataclass
class Scored:
    scores: pd.DataFrame  # one row per customer at risk, ranked by expected profit
    drift: pd.DataFrame  # per feature: psi, bins, p_value, alarm
    expected: expected.Expected  # what the probabilities promise (with bands)


def states(at: pd.Series, tenure_days: pd.Series, early_life_days: int) -> pd.Series:
    """renewal_due and pending (features.observations.state) first: a renewal decides the
    week; otherwise young (the run is younger than the early-life day) or ongoing."""
    young = tenure_days.to_numpy(float) < early_life_days
    return pd.Series(np.where(at.isin(["renewal_due", "pending"]), at,
                              np.where(young, "young", "ongoing")), index=at.index)


def bands(p: np.ndarray, config: ScoreConfig) -> np.ndarray:
    edges = np.asarray(list(config.bands.values()), dtype=float)
    return np.asarray(config.band_names, dtype=object)[np.searchsorted(edges, p, side="right")]


def check_vocab(model: ChurnClassifier, seen: dict[str, list[str]]) -> None:
    """ContractMismatch naming the feature if the data hold a category the model never saw
    (its code would mean nothing to the trees)."""
    for name, known in model.contract.vocab.items():
        new = sorted(set(seen.get(name, [])) - set(known))
        if new:
            raise ContractMismatch(
                f"feature {name!r}: the data hold {new}, which the model was not trained on "
                f"(it knows {known})")


def score(frame: pd.DataFrame, model: ChurnClassifier, reference: drift.References,
          config: ScoreConfig, *, as_of: dt.date, state: pd.Series, value: pd.DataFrame,
          model_name: str, model_version: str, early_life_days: int) -> Scored:
    """Score the feature rows of the customers at risk on `as_of` (one row each).

    `state`: features.observations.state of each row; `value`: scoring.value.values of each
    row. Raises ContractMismatch (naming the feature) when the rows do not fit the model."""
    model.contract.check(frame)
    frame = frame.reset_index(drop=True)
    p = model.predict_proba(frame)
    v = value.reset_index(drop=True)
    st = states(state.reset_index(drop=True), frame["tenure_days"], early_life_days)
    control = holdout.in_control(frame["customer_id"], config.campaign, config.holdout_share)
    net = expected_net(p, v["value"].to_numpy(float), gamma=config.gamma,
                       offer_cost=config.offer_cost, contact_cost=config.contact_cost)
    rank, in_list = profit_list(net, capacity=config.capacity, eligible=~control)
    band = bands(p, config)
    out = pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(),
        "as_of": pd.Timestamp(as_of).date(),
        "churn_probability": p,
        "risk_band": band,
        "state": st.to_numpy(object),
        "young": st.to_numpy(object) == "young",
        "value": v["value"].to_numpy(float),
        "value_basis": v["value_basis"].to_numpy(object),
        "revenue_per_period": v["revenue_per_period"].to_numpy(float),
        "value_at_risk": p * v["value"].to_numpy(float),
        "expected_net": net,
        "rank": rank,
        "in_list": in_list,
        "holdout": control,
    })
    need = in_list | np.isin(
        band, config.band_names[config.band_names.index(config.reasons_from_band):])
    explained = reasons.reasons(model, frame.loc[need], out.loc[need, "state"],
                                reference.medians(), p=p[need])
    for column in explained.columns:
        blank = np.nan if explained[column].dtype.kind == "f" else ""
        out[column] = blank
        out.loc[need, column] = explained[column].to_numpy()
    out["suggested_action"] = out["suggested_action"].where(need, "")
    out["model_name"] = model_name
    out["model_version"] = model_version
    reason_cols = [f"reason_{i}{x}" for i in range(1, 4)
                   for x in ("", "_family", "_direction", "_contribution")]
    first = [c for c in out.columns if c not in reason_cols and c not in (
        "suggested_action", "p_if_typical", "model_name", "model_version")]
    out = out[[*first, *reason_cols, "suggested_action", "p_if_typical", "model_name",
               "model_version"]]
    out = out.sort_values("rank", kind="stable").reset_index(drop=True)
    week, week_name = reference.for_day(as_of)
    return Scored(scores=out,
                  drift=drift.psi(week, frame, alpha=config.drift_alpha,
                                  min_psi=config.drift_min_psi).assign(reference=week_name),
                  expected=expected.expected(p, draws=config.expected_draws,
                                             level_sd=model.calibrator.shift_sd,
                                             slope_sd=model.calibrator.slope_sd))
