"""The product model: a feature contract, the LightGBM booster and its calibrator, as one object.

Saved as three plain files (booster text, calibrator JSON, contract JSON) so the DVC-tracked
copy is byte-identical across runs and MLflow logs exactly the same files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import Calibrator


class ContractMismatch(ValueError):
    """The frame handed to the model does not match what it was trained on."""


@dataclass(frozen=True)
class FeatureContract:
    features: tuple[str, ...]
    dtypes: dict[str, str]
    categorical: tuple[str, ...]
    vocab: dict[str, list[str]]  # category code -> value, per categorical feature
    families: dict[str, str]
    label: dict[str, int] = field(default_factory=dict)  # horizon, grace, early-life days

    def check(self, frame: pd.DataFrame) -> None:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ContractMismatch(f"feature {missing[0]!r} is missing "
                                   f"({len(missing)} of {len(self.features)} missing)")
        for name in self.features:
            got = str(frame[name].dtype)
            if got != self.dtypes[name]:
                raise ContractMismatch(
                    f"feature {name!r} has dtype {got}, the model expects {self.dtypes[name]}")

    def check_vocab(self, vocab: dict[str, list[str]]) -> None:
        for name, values in self.vocab.items():
            if list(vocab.get(name, [])) != list(values):
                raise ContractMismatch(
                    f"feature {name!r} codes differ: the model knows {values}, "
                    f"the features were built with {vocab.get(name)}")

    def same_as(self, other: FeatureContract) -> bool:
        """Same features, dtypes, codes and label definition: scores are comparable."""
        return asdict(self) == asdict(other)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> FeatureContract:
        return cls(tuple(d["features"]), dict(d["dtypes"]), tuple(d["categorical"]),
                   {k: list(v) for k, v in d["vocab"].items()}, dict(d["families"]),
                   dict(d.get("label", {})))


class ChurnClassifier:
    """Calibrated churn probability, and the booster's per-feature contributions."""

    def __init__(self, booster: lgb.Booster, calibrator: Calibrator,
                 contract: FeatureContract) -> None:
        self.booster, self.calibrator, self.contract = booster, calibrator, contract

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.contract.check(frame)
        return frame.loc[:, list(self.contract.features)]

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.matrix(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator(self.raw(frame))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the raw log-odds (LightGBM pred_contrib), plus bias."""
        values = self.booster.predict(self.matrix(frame), pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.contract.features, "bias"], index=frame.index)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "booster.txt").write_text(self.booster.model_to_string())
        (folder / "calibrator.json").write_text(
            json.dumps(self.calibrator.to_dict(), indent=1) + "\n")
        (folder / "contract.json").write_text(
            json.dumps(self.contract.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: Path) -> ChurnClassifier:
        folder = Path(folder)
        booster = lgb.Booster(model_str=(folder / "booster.txt").read_text())
        calibrator = Calibrator.from_dict(json.loads((folder / "calibrator.json").read_text()))
        contract = FeatureContract.from_dict(json.loads((folder / "contract.json").read_text()))
        return cls(booster, calibrator, contract)
