"""The layers: library packages are pure (never the edge's tools), features never use models."""

from __future__ import annotations

import pytest

from tests.imports import ROOT, imports

EDGE = ("pipeline", "typer", "yaml", "rich")
LIBRARIES = ("common", "records", "simulator", "features", "models", "retention", "scoring")


def _modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LIBRARIES)
def test_libraries_never_import_the_edge(package):
    bad = {(path.relative_to(ROOT).as_posix(), name)
           for path in _modules(package) for name in imports(path)
           if name.split(".")[0] in EDGE}
    assert not bad, f"{package} imports the edge: {sorted(bad)}"


def test_features_never_import_models():
    bad = {(path.relative_to(ROOT).as_posix(), name)
           for path in _modules("features") for name in imports(path)
           if name.split(".")[0] == "models"}
    assert not bad


def test_common_imports_no_other_package():
    bad = {name for path in _modules("common") for name in imports(path)
           if name.split(".")[0] in LIBRARIES[1:] + ("pipeline",)}
    assert not bad


def test_the_check_sees_imports():
    """The checker itself: it finds a known import, so a pass above means something."""
    assert "records.contract" in imports(ROOT / "features" / "catalogue.py")
    assert "pipeline.params" in imports(ROOT / "pipeline" / "cli.py")
