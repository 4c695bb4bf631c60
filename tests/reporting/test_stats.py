"""reporting.stats: exact Clopper-Pearson intervals and the beta-binomial stopping monitor (reports.md).

Reference values: Clopper-Pearson from the beta quantiles (as in R's binom.test); the posterior
probabilities in closed form for a uniform prior.
"""
import pytest

from reporting.stats import clopper_pearson, median_range, posterior_exceeds, stopping_boundary, stopping_status


@pytest.mark.parametrize(
    "k, n, low, high",
    [
        (0, 10, 0.0, 0.3085),
        (3, 10, 0.0667, 0.6525),
        (10, 10, 0.6915, 1.0),
        (1, 2, 0.0126, 0.9874),
        (1, 6, 0.0042, 0.6412),
        (0, 0, 0.0, 1.0),  # no subjects: the whole unit interval
    ],
)
def test_clopper_pearson_matches_known_values(k, n, low, high):
    got = clopper_pearson(k, n)
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


@pytest.mark.parametrize("k, n", [(-1, 5), (6, 5)])
def test_clopper_pearson_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError):
        clopper_pearson(k, n)


def test_posterior_probability_with_a_uniform_prior():
    # Beta(2, 1) after 1 event in 1 subject: P(rate > t) = 1 - t^2
    assert posterior_exceeds(1, 1, threshold=0.3) == pytest.approx(0.91)
    # Beta(1, 2) after 0 events in 1 subject: P(rate > t) = (1 - t)^2
    assert posterior_exceeds(0, 1, threshold=0.3) == pytest.approx(0.49)
    assert posterior_exceeds(0, 0, threshold=0.3) == pytest.approx(0.7)  # the prior itself


BOUNDARY = {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 10: 5, 20: 9}


def test_stopping_boundary_for_threshold_030_cutoff_090_uniform_prior():
    table = dict(stopping_boundary(20, threshold=0.30, cutoff=0.90, prior_a=1, prior_b=1))
    assert list(table) == list(range(1, 21))
    assert {n: table[n] for n in BOUNDARY} == BOUNDARY
    # the boundary never decreases with N and each entry is the fewest events that cross
    assert all(table[n] <= table[n + 1] for n in range(1, 20))
    for n, k in table.items():
        assert posterior_exceeds(k, n, threshold=0.3) > 0.9
        assert k == 0 or posterior_exceeds(k - 1, n, threshold=0.3) <= 0.9


def test_no_number_of_events_crosses_an_unreachable_cutoff():
    assert stopping_boundary(3, threshold=0.99, cutoff=0.999) == [(1, None), (2, None), (3, None)]


def test_stopping_status():
    status = stopping_status(4, 6, threshold=0.3, cutoff=0.9)
    assert (status.n, status.events, status.crossed) == (6, 4, True)
    assert status.probability > 0.9 and len(status.boundary) == 6
    quiet = stopping_status(1, 6, threshold=0.3, cutoff=0.9, table_to=20)
    assert not quiet.crossed and round(quiet.probability, 3) == 0.329 and len(quiet.boundary) == 20
    nobody = stopping_status(0, 0, threshold=0.3, cutoff=0.9)
    assert (nobody.probability, nobody.crossed, nobody.boundary) == (0.0, False, [(1, 1)])


def test_median_range():
    assert median_range([]) is None
    assert median_range([3, 1, 2, 10]) == (2.5, 1, 10)
