"""Math whose results do not depend on the CPU: the same bits on every x86-64 machine.

numpy picks its kernels for `np.exp`, `np.log`, `np.log1p`, `np.expm1`, `np.power` (and `**`
on arrays) at run time by the CPU's vector instructions: with AVX-512 (Intel's SVML) the
results differ in their last bits from the AVX2 kernels another machine runs. A committed
`dvc.lock` must be reproduced elsewhere, so every transcendental function the simulator (and
the models' calibrator) applies to arrays comes from here instead, built on scipy.special
functions that are compiled once, without run-time dispatch:

* exp(x) = exp2(x * log2(e)) (cephes' exp2: polynomial arithmetic only). The product costs
  about |x| * 1e-16 of relative accuracy, nothing at the magnitudes a simulation uses.
* log(x) = xlogy(1, x) (the C library's log, one implementation per binary).
* power(a, b) = exp(b * log(a)), with numpy's answers for a zero exponent, a zero base and a
  negative base (whole exponents keep their sign).
* sigmoid(x) = expit(x); log1p = scipy.special.log1p.

Sums, means, cumsum, sqrt, division, squaring (`x**2` squares exactly) and tanh were measured
to be identical under both sets of kernels, and so are Python's scalar `math` functions.

`round_sig` rounds the floats the pipeline writes (truth, predictions, metrics, calibrator
parameters) to 9 significant digits. It removes what differences remain from sources not
routed through here (BLAS dot products, a library's own kernels): such a difference is in the
last one or two of a float's ~17 digits, and rounding maps both values to the same 9-digit
number unless they straddle a rounding edge (a chance of about 1e-7 per value and last-bit
difference), so rounding removes the rest in practice, not in principle.
"""

from __future__ import annotations

import numpy as np
from scipy import special

LOG2_E = 1.4426950408889634  # log2(e), correctly rounded
SIGNIFICANT = 9  # digits kept of the floats written to DVC outputs


def exp(x):
    """e**x, the same bits on every CPU."""
    return special.exp2(np.multiply(x, LOG2_E))


def log(x):
    """Natural log (log(0) = -inf, negative: nan), the same bits on every CPU."""
    return special.xlogy(1.0, x)


def log1p(x):
    """log(1 + x), the same bits on every CPU."""
    return special.log1p(x)


def sigmoid(x):
    """1 / (1 + e**-x), the same bits on every CPU."""
    return special.expit(x)


def power(base, exponent):
    """base ** exponent (elementwise, broadcasting), the same bits on every CPU."""
    base = np.asarray(base, dtype=np.float64)
    exponent = np.asarray(exponent, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = exp(exponent * log(np.abs(base)))  # 0 * -inf (0 ** 0) is fixed below
        negative = base < 0
        if negative.any():  # whole exponents keep the sign, others have no real power
            whole = exponent == np.floor(exponent)
            odd = whole & (np.fmod(exponent, 2.0) != 0.0)
            out = np.where(negative, np.where(whole, np.where(odd, -out, out), np.nan), out)
    zero = exponent == 0.0
    if zero.any():
        out = np.where(zero, 1.0, out)
    return out[()] if out.ndim == 0 else out


def round_sig(x, digits: int = SIGNIFICANT):
    """`x` rounded to `digits` significant digits, exactly as `float(f"{v:.{digits}g}")` does
    each value (correct decimal rounding; 0, -0.0, nan and inf stay what they are).

    An array comes back as a new float64 array of the same shape, a scalar as a Python float.
    Each distinct value is formatted once (about 1 s a million).
    """
    fmt = f"{{:.{digits}g}}".format
    if np.ndim(x) == 0:
        return float(fmt(float(x)))
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return a.copy()
    values, inverse = np.unique(a.ravel(), return_inverse=True)
    rounded = np.array([float(fmt(v)) for v in values.tolist()], dtype=np.float64)
    # np.unique takes -0.0 for 0.0: zeros keep their own sign
    return np.where(a == 0.0, a, rounded[inverse].reshape(a.shape))


def round_floats(obj, digits: int = SIGNIFICANT):
    """`obj` (dicts, lists and tuples of JSON-like values) with every float in it, numpy's
    included, rounded by `round_sig`; other values as they are, tuples become lists."""
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, digits) for v in obj]
    if isinstance(obj, float | np.floating):
        return round_sig(obj, digits)
    return obj
