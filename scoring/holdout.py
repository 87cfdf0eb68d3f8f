"""The control group: a fixed share of customers the retention team leaves alone.

Drawn by a salted hash of the customer id, not at random, so a customer stays in control week
after week until the campaign (the salt) changes, reruns never re-draw it, and the same id
gives the same answer on every machine. The team then measures what the campaign changes by
comparing the churn of contacted and control customers with the same scores.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

BUCKETS = 10_000


def bucket(customer_ids, campaign: str) -> np.ndarray:
    """SHA-256 of "<campaign>:<id>" mod 10,000: each customer's fixed place in [0, 10,000)."""
    ids = pd.Series(customer_ids)
    uniq = pd.unique(ids)
    table = {u: int.from_bytes(hashlib.sha256(f"{campaign}:{u}".encode()).digest()[:8], "big")
             % BUCKETS for u in uniq}
    return ids.map(table).to_numpy(dtype=np.int64)


def in_control(customer_ids, campaign: str, share: float) -> np.ndarray:
    """True for the customers in the campaign's control group (about `share` of all ids)."""
    return bucket(customer_ids, campaign) < round(share * BUCKETS)
