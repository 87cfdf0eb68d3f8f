"""What a retention campaign earns: each customer's expected net, the contact list, and EMPC.

The economics are those of Verbraken, Verbeke and Baesens (2013), "A novel profit maximizing
metric for measuring classification performance of customer churn prediction models", IEEE
TKDE 25(5): 961-973. A contacted customer costs `contact_cost` (f). A churner accepts the
offer with probability gamma: then the firm keeps their value V and pays the offer (d); a
churner who declines costs only the contact. A non-churner always accepts the offer (d + f
spent, nothing gained). So one contacted customer with churn probability p is worth

    p * gamma * V - d * (gamma * p + (1 - p)) - f,

and EMPC is the profit per customer of the best cutoff on the ROC convex hull, averaged over
gamma ~ Beta(alpha, beta) because nobody knows an offer's take-up rate in advance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class EmpcResult:
    empc: float  # expected maximum profit per customer scored, in the unit of clv
    contact_share: float  # expected fraction of customers contacted at that maximum


def expected_net(p: np.ndarray, value: np.ndarray, *, gamma: float, offer_cost: float,
                 contact_cost: float) -> np.ndarray:
    """Each customer's expected net if contacted (gamma: the mean share of churners an offer
    keeps). A NaN value gives a NaN net: whether an unknown value means 0 is the caller's call."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma is a share of churners kept, in [0, 1]; got {gamma}")
    p = np.asarray(p, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    return p * gamma * value - offer_cost * (gamma * p + (1.0 - p)) - contact_cost


def profit_list(expected_net: np.ndarray, *, capacity: int | None,
                eligible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rank, in_list): whom to call, best first.

    rank is 1..n by expected net, highest first; equal nets keep their input order (a stable
    sort of -net, so the list is the same on every run) and NaN nets rank last. in_list marks
    the customers worth a call: net > 0 and eligible (False for the control holdout, who must
    stay untouched to measure the campaign), taken in rank order up to `capacity` calls
    (None: no cap). A NaN net is never in the list.
    """
    net = np.asarray(expected_net, dtype=np.float64)
    if net.ndim != 1:
        raise ValueError(f"expected_net must be one value per customer (1-D); got shape {net.shape}")
    if capacity is not None and capacity < 0:
        raise ValueError(f"capacity is a number of calls, at least 0; got {capacity}")
    if eligible is None:
        eligible = np.ones(net.shape, dtype=bool)
    else:
        eligible = np.asarray(eligible)
        if eligible.dtype != bool or eligible.shape != net.shape:
            raise ValueError(f"eligible must be a boolean mask of shape {net.shape}; "
                             f"got {eligible.dtype} of shape {eligible.shape}")
    order = np.argsort(-net, kind="stable")  # numpy sorts NaN last
    rank = np.empty(net.size, dtype=np.int64)
    rank[order] = np.arange(1, net.size + 1)
    worth = (net > 0) & eligible  # NaN > 0 is False
    seat = np.cumsum(worth[order])  # each worthwhile customer's place in the queue
    cap = net.size if capacity is None else capacity
    in_list = np.zeros(net.size, dtype=bool)
    in_list[order] = worth[order] & (seat <= cap)
    return rank, in_list


def empc(scores: np.ndarray, labels: np.ndarray, clv: float, *, offer_cost: float,
         contact_cost: float, alpha: float = 6.0, beta: float = 14.0) -> EmpcResult:
    """Expected Maximum Profit for customer churn (EMPC), per customer, with a constant CLV.

    Follows the R package EMP, `empChurn` (Bravo, vanden Broucke, Verbraken; CRAN, file
    R/empChurn.R), which implements Verbraken et al. (2013), section 4: the ROC convex hull
    (`empRocInfo`, ROCR's "rch"), on each hull segment the gamma above which moving along it
    pays, and the Beta integral in closed form with the regularized incomplete beta function.
    Labels: 1 = churner (the paper's class 0); a higher score means more likely to churn.
    Tied scores are one cutoff: the hull crosses them on a diagonal, the expected profit of
    calling a random part of the tie, never the tie broken in the model's favour.
    """
    s, y = _check(scores, labels)
    if not (np.isfinite(clv) and clv > 0):
        raise ValueError(f"clv must be a positive number; got {clv}")
    if not 0 <= offer_cost < clv:
        raise ValueError(f"offer_cost must be in [0, clv): an offer worth the customer never "
                         f"pays; got offer_cost={offer_cost}, clv={clv}")
    if not contact_cost >= 0:
        raise ValueError(f"contact_cost must be at least 0; got {contact_cost}")
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"alpha and beta must be positive; got {alpha}, {beta}")
    fp, tp = _roc_hull(s, y)
    n = s.size
    delta, phi = offer_cost / clv, contact_cost / clv
    # Moving from hull point i to i+1 adds dtp churners and dfp non-churners; it pays when
    # dtp * (gamma * (1 - delta) - phi) > dfp * (delta + phi), i.e. above this gamma (the
    # paper's gamma_i; pi_1 dF_1 / (pi_0 dF_0) = dfp / dtp in counts). The hull's slopes fall,
    # so these rise; a flat segment (dtp = 0) never pays.
    dtp, dfp = np.diff(tp).astype(np.float64), np.diff(fp).astype(np.float64)
    ratio = np.divide(dfp, dtp, out=np.full(dtp.shape, np.inf), where=dtp > 0)
    cut = (phi + (delta + phi) * ratio) / (1.0 - delta)
    # hull point i is optimal for gamma in [lo_i, hi_i); gammas above 1 are impossible
    lo = np.minimum(np.r_[0.0, cut], 1.0)
    hi = np.r_[lo[1:], 1.0]
    weight = special.betainc(alpha, beta, hi) - special.betainc(alpha, beta, lo)  # P(gamma)
    # the partial first moment, E[gamma; lo <= gamma < hi] = alpha / (alpha + beta) * dI_{alpha+1}
    moment = alpha / (alpha + beta) * (special.betainc(alpha + 1, beta, hi)
                                       - special.betainc(alpha + 1, beta, lo))
    # profit at point i: CLV * [(gamma (1 - delta) - phi) pi0 F0_i - (delta + phi) pi1 F1_i]
    tp_share, fp_share = tp / n, fp / n  # pi0 F0_i, pi1 F1_i
    gain = clv * (1.0 - delta) * tp_share * moment
    cost = clv * (phi * tp_share + (delta + phi) * fp_share) * weight
    return EmpcResult(empc=float(np.sum(gain - cost)),
                      contact_share=float(np.sum(weight * (tp_share + fp_share))))


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be 1-D and the same length; "
                         f"got shapes {s.shape} and {y.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores must be finite; {int((~np.isfinite(s)).sum())} are not")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (stayed) or 1 (churned)")
    y = y.astype(np.int64)
    churners = int(y.sum())
    if churners in (0, y.size):
        raise ValueError(f"EMPC needs both churners and non-churners: all {y.size} labels are "
                         f"{int(churners > 0)} (an ROC curve has no meaning with one class)")
    return s, y


def _roc_hull(scores: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The upper convex hull of the ROC curve as integer counts (false, true positives), from
    (0, 0) to (non-churners, churners). Counts keep the turn test exact: collinear points go."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], churned[order]
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the end of each group of tied scores
    tp = np.r_[0, np.cumsum(y)[last]]
    fp = np.r_[0, last + 1 - tp[1:]]
    hx: list[int] = []
    hy: list[int] = []
    for x, t in zip(fp.tolist(), tp.tolist(), strict=True):  # points rise in both counts
        while len(hx) >= 2 and (hx[-1] - hx[-2]) * (t - hy[-2]) >= (hy[-1] - hy[-2]) * (x - hx[-2]):
            hx.pop()  # the last point lies on or under the chord to the new one
            hy.pop()
        hx.append(x)
        hy.append(t)
    return np.array(hx, dtype=np.int64), np.array(hy, dtype=np.int64)
