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


def _negative_and_gradient(x, lost, t_lost, censored, t_cens):
    """Minus the log-likelihood at (log alpha, log beta) and its gradient (analytic, digamma):
    d/da log B(x, y) = psi(x) - psi(x + y), d/db likewise."""
    a, b = np.exp(x)
    psi = special.digamma
    base = special.betaln(a, b)
    psi_a, psi_b, psi_ab = psi(a), psi(b), psi(a + b)
    ll = ga = gb = 0.0
    if len(t_lost):
        logp = special.betaln(a + 1, b + t_lost - 1) - base
        end = psi(a + b + t_lost)
        ll += float(lost @ logp)
        ga += float(lost @ (psi(a + 1) - end - psi_a + psi_ab))
        gb += float(lost @ (psi(b + t_lost - 1) - end - psi_b + psi_ab))
    if len(t_cens):
        logs = special.betaln(a, b + t_cens) - base
        end = psi(a + b + t_cens)
        ll += float(censored @ logs)
        ga += float(censored @ (psi_ab - end))
        gb += float(censored @ (psi(b + t_cens) - end - psi_b + psi_ab))
    if not np.isfinite(ll):
        return np.inf, np.zeros(2)
    return -ll, -np.array([ga * a, gb * b])


def _start(lost: np.ndarray, censored: np.ndarray) -> tuple[float, float]:
    """(log alpha, log beta) matching the first two conditional churn rates: P(churn at 1) =
    a / (a + b) and P(churn at 2 | renewed once) = a / (a + b + 1); (0, 0) where they do not
    give positive parameters."""
    at_risk = [lost[i:].sum() + censored[i + 1:].sum() for i in range(min(2, len(lost)))]
    if len(at_risk) < 2 or min(at_risk) <= 0:
        return 0.0, 0.0
    p1, p2 = lost[0] / at_risk[0], lost[1] / at_risk[1]
    if not 0 < p2 < p1 < 1:
        return 0.0, 0.0
    s = p2 / (p1 - p2)
    a, b = p1 * s, (1 - p1) * s
    return (float(np.log(a)), float(np.log(b))) if a > 0 and b > 0 else (0.0, 0.0)


def fit(lost, censored) -> SbgFit:
    """Maximum-likelihood fit from churn counts per renewal and censored counts per tenure.

    L-BFGS-B on (log alpha, log beta) with the analytic gradient, from a moment start (the
    first two conditional churn rates) and from alpha = beta = 1; the better optimum wins.
    Raises ValueError when the data cannot identify the model (no churn at all, or nobody
    observed past a renewal); callers turn that into a reason.
    """
    lost = np.asarray(lost, dtype=float)
    censored = np.asarray(censored, dtype=float)
    if lost.sum() == 0:
        raise ValueError("no churn observed")
    # only the nonzero cells enter the likelihood
    t_lost = np.flatnonzero(lost) + 1.0
    t_cens = np.flatnonzero(censored).astype(float)
    args = (lost[lost > 0], t_lost, censored[censored > 0], t_cens)
    best = None
    for start in dict.fromkeys([_start(lost, censored), (0.0, 0.0)]):
        res = optimize.minimize(_negative_and_gradient, np.array(start), args=args, jac=True,
                                method="L-BFGS-B", bounds=[(-30.0, 30.0)] * 2,
                                options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
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
