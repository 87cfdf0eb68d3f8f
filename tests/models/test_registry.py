"""The champion rule, case by case."""

from __future__ import annotations

from models.registry import decide

BASE = dict(has_champion=True, experiment=None, same_contract=True, new_auc=0.80,
            champion_auc=0.79)


def test_first_model_becomes_champion():
    assert decide(**BASE | {"has_champion": False, "new_auc": 0.5}).promote


def test_better_model_moves_champion_worse_or_equal_does_not():
    assert decide(**BASE).promote
    assert not decide(**BASE | {"new_auc": 0.79}).promote
    assert not decide(**BASE | {"new_auc": 0.70}).promote


def test_experiments_never_move_champion():
    d = decide(**BASE | {"experiment": "magic-yawl"})
    assert not d.promote and "magic-yawl" in d.reason
    assert not decide(**BASE | {"experiment": "x", "has_champion": False}).promote


def test_changed_contract_needs_a_human():
    d = decide(**BASE | {"same_contract": False, "new_auc": 0.99})
    assert not d.promote and "churn promote" in d.reason
