"""Statistics of the AE and DSMB reports (reports.md). Pure Python and SciPy, no Django import.

* Exact (Clopper-Pearson) 95% confidence interval of a proportion.
* The Bayesian beta-binomial stopping-rule monitor: with prior Beta(a, b) and k events in n
  subjects the posterior is Beta(a + k, b + n - k); the boundary is crossed when
  P(rate > threshold | data) > cutoff.
"""
from dataclasses import dataclass
from statistics import median

import numpy as np
from scipy.special import betainc, betaincc, betaincinv  # scipy.stats would cost a second at every start-up


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for k successes in n trials; (0, 1) for n = 0."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    # the quantiles of Beta(k, n - k + 1) and Beta(k + 1, n - k): the inverse regularized incomplete beta
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def posterior_exceeds(k: int, n: int, *, threshold: float, prior_a: float = 1.0, prior_b: float = 1.0) -> float:
    """P(rate > threshold | k events in n subjects) under a Beta(prior_a, prior_b) prior."""
    return float(betaincc(prior_a + k, prior_b + n - k, threshold))  # the posterior's survival function


@dataclass(frozen=True)
class StoppingStatus:
    n: int
    events: int
    probability: float  # P(rate > threshold | data)
    crossed: bool
    boundary: list[tuple[int, int | None]]  # (N, fewest events that cross; None: none can)


def stopping_boundary(max_n: int, *, threshold: float, cutoff: float, prior_a: float = 1.0,
                      prior_b: float = 1.0) -> list[tuple[int, int | None]]:
    """For each N = 1..max_n, the fewest events whose posterior probability exceeds the cutoff."""
    table = []
    for n in range(1, max_n + 1):
        k = np.arange(n + 1)
        # P(rate > t) under Beta(a, b) is I_{1-t}(b, a): every k of this N in one vectorized call
        hits = np.flatnonzero(betainc(prior_b + n - k, prior_a + k, 1 - threshold) > cutoff)
        table.append((n, int(hits[0]) if hits.size else None))
    return table


def stopping_status(events: int, n: int, *, threshold: float, cutoff: float, prior_a: float = 1.0,
                    prior_b: float = 1.0, table_to: int | None = None,
                    boundary: list[tuple[int, int | None]] | None = None) -> StoppingStatus:
    """The monitor for one toxicity; ``boundary`` may be passed when several share the settings."""
    probability = posterior_exceeds(events, n, threshold=threshold, prior_a=prior_a, prior_b=prior_b) if n else 0.0
    if boundary is None:
        boundary = stopping_boundary(max(table_to or 0, n, 1), threshold=threshold, cutoff=cutoff,
                                     prior_a=prior_a, prior_b=prior_b)
    return StoppingStatus(n=n, events=events, probability=probability, crossed=n > 0 and probability > cutoff,
                          boundary=boundary)


def median_range(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max), or None without values."""
    if not values:
        return None
    return median(values), min(values), max(values)
