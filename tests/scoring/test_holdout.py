"""The control group: fixed by the campaign's salt, about its share, the same on any machine."""

from __future__ import annotations

import hashlib

import numpy as np

from scoring.holdout import bucket, in_control


def test_a_known_vector():
    """SHA-256 of "<campaign>:<id>", first 8 bytes big-endian, mod 10,000."""
    want = int.from_bytes(hashlib.sha256(b"spring:42").digest()[:8], "big") % 10_000
    assert bucket([42], "spring")[0] == want
    assert bucket(["42"], "spring")[0] == want  # the id's text: an export's 42 and "42" agree


def test_the_share_and_its_stability_across_weeks_and_campaigns():
    ids = np.arange(100_000)
    a = in_control(ids, "retention-1", 0.1)
    assert abs(a.mean() - 0.1) < 0.005
    # next week: some customers gone, new ones in; those in both weeks keep their flag
    week2 = np.concatenate([ids[5000:], np.arange(200_000, 210_000)])
    b = in_control(week2, "retention-1", 0.1)
    assert (b[: len(ids) - 5000] == a[5000:]).all()
    other = in_control(ids, "retention-2", 0.1)
    assert 0.05 < (other & a).sum() / a.sum() < 0.15  # a new campaign draws a new group
    assert not in_control(ids, "retention-1", 0.0).any()
    # a bigger share keeps everyone who was already in control
    assert (in_control(ids, "retention-1", 0.2) >= a).all()


def test_string_ids():
    ids = [f"C-{i:06d}" for i in range(20_000)]
    assert abs(in_control(ids, "x", 0.25).mean() - 0.25) < 0.02
