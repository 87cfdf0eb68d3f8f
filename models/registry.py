"""When the champion moves: the one rule, kept apart from MLflow so it can be tested alone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(*, has_champion: bool, experiment: str | None, same_contract: bool,
           new_auc: float | None, champion_auc: float | None) -> Decision:
    """Move `champion` to the new model only if there is none, or the new model beats it on the
    new test slice with the same label definition and feature contract. Experiments
    (`dvc exp run`) never move it; anything else needs `churn promote VERSION`."""
    if experiment:
        return Decision(False, f"DVC experiment {experiment!r}: champion is never moved by "
                               "experiments")
    if not has_champion:
        return Decision(True, "no champion yet")
    if not same_contract:
        return Decision(False, "the label definition or feature contract changed: scores are "
                               "not comparable; use `churn promote VERSION` to decide")
    if new_auc is None or champion_auc is None:
        return Decision(False, "no comparable test scores")
    if new_auc > champion_auc:
        return Decision(True, f"test AUC {new_auc:.4f} beats the champion's {champion_auc:.4f} "
                              "on the same test slice")
    return Decision(False, f"test AUC {new_auc:.4f} does not beat the champion's "
                           f"{champion_auc:.4f} on the same test slice")
