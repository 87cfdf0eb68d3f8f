"""The shifted-beta-geometric (sBG) model of contractual retention (Fader and Hardie 2007).

Each customer has a churn probability theta at every renewal, constant for them; theta varies
across customers as Beta(alpha, beta). It explains why cohort retention rises with tenure (the
churn-prone leave first), so it projects survival better than a constant rate. Fitted by maximum
likelihood on log alpha and log beta (both must stay positive); no sampler.

Periods are renewal opportunities: "survived t periods" means renewed t times. A customer in
period n has survived n - 1 renewals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class SbgFit:
    """A maximum-likelihood sBG fit and what it was fitted on."""

    alpha: float
    beta: float
    log_likelihood: float
    customers: int  # how many customers the fit saw
    periods: int  # the last period with an observation (churn or censoring)


def churn_probability(alpha, beta, t):
    """P(T = t): churn at the t-th renewal, t >= 1 (B(alpha + 1, beta + t - 1) / B(alpha, beta))."""
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta))


def survival(alpha, beta, t):
    """S(t) = P(T > t): still a customer after t renewals, t >= 0 (B(alpha, beta + t) / B(alpha, beta))."""
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def log_likelihood(alpha: float, beta: float, lost, censored) -> float:
    """Log-likelihood of `lost[t - 1]` customers churning at renewal t and `censored[t]` still
    customers after t renewals with nothing known beyond (t = 0..T)."""
    lost = np.asarray(lost, dtype=float)
    censored = np.asarray(censored, dtype=float)
    t_lost = np.arange(1, len(lost) + 1)
    t_cens = np.arange(len(censored))
    ll = 0.0
    if lost.sum() > 0:
        ll += float(np.sum(lost * np.log(churn_probability(alpha, beta, t_lost))))
    if censored.sum() > 0:
        ll += float(np.sum(censored * np.log(survival(alpha, beta, t_cens))))
    return ll


def fit(lost, censored) -> SbgFit:
    """Maximum-likelihood fit from churn counts per renewal and censored counts per tenure.

    Raises ValueError when the data cannot identify the model (no churn at all, or nobody
    observed past a renewal); callers turn that into a reason.
    """
    lost = np.asarray(lost, dtype=float)
    censored = np.asarray(censored, dtype=float)
    if lost.sum() == 0:
        raise ValueError("no churn observed")

    def negative(x):
        return -log_likelihood(np.exp(x[0]), np.exp(x[1]), lost, censored)

    best = None
    for start in ((0.0, 0.0), (-1.0, 1.0), (1.0, 2.0)):
        res = optimize.minimize(negative, np.array(start), method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000})
        res = optimize.minimize(negative, res.x, method="L-BFGS-B")
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None or not np.all(np.abs(best.x) < 20):
        raise ValueError("the likelihood has no interior maximum (too little churn variation)")
    alpha, beta = (float(v) for v in np.exp(best.x))
    periods = max(len(lost), int(np.flatnonzero(censored).max()) if censored.sum() else 0)
    return SbgFit(alpha, beta, -float(best.fun), int(lost.sum() + censored.sum()), periods)


def from_survivors(survivors) -> tuple[np.ndarray, np.ndarray]:
    """(lost, censored) from survivor counts s_0..s_T of one cohort, right-censored at T."""
    s = np.asarray(survivors, dtype=float)
    lost = s[:-1] - s[1:]
    censored = np.zeros(len(s))
    censored[-1] = s[-1]
    return lost, censored


def fit_survivors(survivors) -> SbgFit:
    """Fit to survivor counts s_0..s_T of one cohort (the Fader-Hardie layout)."""
    return fit(*from_survivors(survivors))


def project(fit_: SbgFit, periods: int, start: int | None = None) -> np.ndarray:
    """Projected survival S(t) for the `periods` renewals after `start` (default: the last
    observed period), as shares of the cohort's starting size."""
    first = (fit_.periods if start is None else start) + 1
    return survival(fit_.alpha, fit_.beta, np.arange(first, first + periods))


def derl(alpha, beta, n, discount):
    """Discounted expected residual lifetime, in periods, of a customer in period n (who has
    renewed n - 1 times), counting the current period's payment undiscounted (Fader and
    Hardie 2010): (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n;
    1 / (1 + d)). Vectorised over its arguments."""
    alpha, beta, n = np.asarray(alpha, float), np.asarray(beta, float), np.asarray(n, float)
    return ((beta + n - 1) / (alpha + beta + n - 1)
            * special.hyp2f1(1.0, beta + n, alpha + beta + n, 1.0 / (1.0 + discount)))


def derl_value(revenue_per_period, alpha, beta, n, discount):
    """Forward-looking value = revenue per period x DERL. Not the documents' LTV (ltv.py)."""
    return np.asarray(revenue_per_period, float) * derl(alpha, beta, n, discount)
