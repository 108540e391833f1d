"""The statistics of the published benchmark tables: a success rate's Wilson interval and the summaries of a
set of runs, as the authors' export scripts compute them (stable-nalu, ``export/_compute_summary.r``).

Pure functions of plain numbers; NumPy only.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import numpy as np

__all__ = ["wilson_interval", "median", "mean"]


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a success rate (the interval the NAU and NALM papers report).

    Parameters
    ----------
    successes : int
        Number of successes, ``0 <= successes <= n``.
    n : int
        Number of trials, ``n >= 1``.
    confidence : float
        Coverage, in (0, 1).

    Returns
    -------
    (lower, upper) : tuple of float
        Within [0, 1].

    Notes
    -----
    With ``p = successes / n`` and ``z`` the ``(1 + confidence) / 2`` quantile of the standard normal:
    ``(p + z**2 / (2 n) -+ z sqrt(p (1 - p) / n + z**2 / (4 n**2))) / (1 + z**2 / n)``.  This is
    ``binom::binom.confint(successes, n, conf.level = 0.95, method = "wilson")``, which Madsen & Johansen's
    ``export/_compute_summary.r`` calls (``z = qnorm(0.975) = 1.959964``, no continuity correction).
    """
    for v, name in ((successes, "successes"), (n, "n")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need n >= 1 and 0 <= successes <= n, got successes={successes}, n={n}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    z = statistics.NormalDist().inv_cdf(0.5 + float(confidence) / 2.0)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    # exact ends at 0 and n (the formula gives them up to rounding)
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def median(values: Sequence[float]) -> float | None:
    """R's ``median``: the middle value, or the mean of the two middle values; None for no values.

    The authors' "solved at, median" column is this over the successful runs' first solved steps.
    """
    return float(statistics.median(values)) if len(values) else None


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean; None for no values.

    Notes
    -----
    The authors' "solved at, mean" column is the mean of a gamma distribution fitted by maximum likelihood
    (``compute.gamma.stat``), whose exact optimum is the sample mean (the gamma's likelihood equations give
    ``alpha / beta = mean(x)``); their L-BFGS-B fit in ``bbmle::mle2`` is not always converged, so the
    published value can differ from this one.  Their "sparsity error, mean" column (``compute.beta.stat``)
    fits ``Beta(2 mu v, (1 - 2 mu) v)`` to the errors themselves, not to ``2 x``, so where that fit runs
    (standard deviation above 1e-10) the published ``mu`` is about half the mean; below it they fall back to
    the sample mean (``compute.normal.stat``).  This function is the sample mean in every case.
    """
    return float(statistics.fmean(values)) if len(values) else None
