"""The DVC-tracked outputs do not depend on the CPU's vector instructions or thread counts.

The pipeline (simulate .. evaluate, on a small world) runs twice as subprocesses: once with
the machine's own kernels, once with numpy's AVX-512 kernels switched off, OpenBLAS told it
runs on a Haswell and one OpenMP thread. Every file of every stage folder must come out
byte-identical (each stage's `_stage.json` holds its files' md5s). The comparison needs a CPU
with AVX-512 (else both runs use the same kernels and prove nothing): elsewhere the test is
skipped, with the reason in pytest's summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline.helpers import write_params

STAGES = ("simulate", "ingest", "observe", "features", "train", "evaluate")
FOLDERS = {"simulate": "data/sim", "ingest": "data/interim", "observe": "data/observations",
           "features": "data/features", "train": "data/models",
           "evaluate": "reports/evaluation"}
# the second run: numpy without its AVX-512 kernels, OpenBLAS's Haswell kernels, one thread
OTHER_MACHINE = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL",
                 "OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1"}
# what the host may set that would make the two runs alike (or unlike) for another reason
CLEARED = ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "OPENBLAS_CORETYPE",
           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
           "MLFLOW_TRACKING_URI", "DVC_EXP_NAME", "DVC_ROOT")


def _has_avx512() -> bool:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get("AVX512F"))


def _pipeline(folder: Path, env_changes: dict[str, str]) -> dict[str, dict[str, str]]:
    """Run every stage in `folder`; each stage's files -> md5 (from its `_stage.json`)."""
    folder.mkdir()
    params = write_params(
        folder, simulate={"customers": 600, "days": 500},
        evaluate={"resamples": 20, "shap_sample": 300})
    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | env_changes
    for stage in STAGES:
        run = subprocess.run([sys.executable, "-m", "pipeline.cli", stage, "--params",
                              str(params)], cwd=folder, env=env, capture_output=True, text=True)
        assert run.returncode == 0, f"{stage}\n{run.stdout}\n{run.stderr}"
    return {stage: json.loads((folder / FOLDERS[stage] / "_stage.json").read_text())["files"]
            for stage in STAGES}


@pytest.mark.slow
def test_outputs_do_not_depend_on_cpu_kernels_or_threads(tmp_path):
    if not _has_avx512():
        pytest.skip("cannot compare: this CPU has no AVX-512")
    here = _pipeline(tmp_path / "default", {})
    there = _pipeline(tmp_path / "other", OTHER_MACHINE)
    differ = {stage: sorted(name for name in here[stage].keys() | there[stage].keys()
                            if here[stage].get(name) != there[stage].get(name))
              for stage in STAGES}
    differ = {stage: names for stage, names in differ.items() if names}
    assert not differ, f"files that differ with other CPU kernels and threads: {differ}"
    assert all(here[stage] for stage in STAGES)  # something was compared


def test_sigmoid_calibrator_without_blas_finds_sklearns_optimum():
    """The calibrator's own Newton fit (numpy sums, no BLAS) lands on the optimum sklearn's
    LogisticRegression reaches with a tight tolerance, and its parameters are rounded."""
    from sklearn.linear_model import LogisticRegression

    from models import calibration

    rng = np.random.default_rng(3)
    scores = rng.beta(2, 6, 20_000)
    y = (rng.random(20_000) < np.clip(1.3 * scores - 0.02, 0, 1)).astype(float)
    cal = calibration.fit(scores, y, "sigmoid")
    lr = LogisticRegression(C=1e6, tol=1e-12, max_iter=1000).fit(
        calibration.logit(scores)[:, None], y)
    np.testing.assert_allclose(cal.x, (lr.coef_[0, 0], lr.intercept_[0]), rtol=1e-7)
    assert all(v == float(f"{v:.9g}") for v in cal.x)
    assert calibration.Calibrator.from_dict(cal.to_dict()) == cal
    iso = calibration.fit(scores, y, "isotonic")
    assert all(v == float(f"{v:.9g}") for v in iso.y)
