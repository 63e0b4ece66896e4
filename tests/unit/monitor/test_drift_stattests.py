"""The drift statistics agree with scipy and numpy, and keep their invariants (Hypothesis)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon

from modelyard.monitor import _stattests as st

REL = 1e-9
FloatArray = np.ndarray


def scipy_ks(u: FloatArray, v: FloatArray) -> Any:
    with warnings.catch_warnings():  # "Exact calculation unsuccessful": scipy's own fallback
        warnings.simplefilter("ignore", RuntimeWarning)
        return scipy.stats.ks_2samp(u, v)


def close(a: float, b: float, rel: float = REL, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# Samples of 1..200 finite values; half of them drawn from a handful of values (ties).
values = hs.one_of(
    hs.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    hs.sampled_from([0.0, 1.0, 2.5, -3.0, 7.0]),
)
samples = hs.one_of(
    hnp.arrays(np.float64, hs.integers(1, 200), elements=values),
    hs.builds(
        lambda seed, n, loc, scale: np.random.default_rng(seed).normal(loc, scale, n),
        hs.integers(0, 2**32 - 1),
        hs.integers(1, 400),
        hs.floats(-100, 100),
        hs.floats(0.01, 50),
    ),
)


def sort(x: FloatArray) -> FloatArray:
    return np.sort(np.asarray(x, dtype=np.float64))


@settings(max_examples=200, deadline=None)
@given(u=samples, v=samples)
def test_wasserstein_matches_scipy(u: FloatArray, v: FloatArray) -> None:
    ours = st.wasserstein_distance(sort(u), sort(v))
    scale = max(1.0, float(np.abs(np.concatenate([u, v])).max()))
    assert math.isclose(
        ours, scipy.stats.wasserstein_distance(u, v), rel_tol=REL, abs_tol=1e-12 * scale
    )


@settings(max_examples=200, deadline=None)
@given(u=samples, v=samples)
def test_ks_matches_scipy(u: FloatArray, v: FloatArray) -> None:
    expected = scipy_ks(u, v)
    d = st.ks_statistic(sort(u), sort(v))
    assert close(d, float(expected.statistic))
    assert close(st.ks_pvalue(sort(u), sort(v), d), float(expected.pvalue))


@pytest.mark.parametrize(
    ("m", "n", "shift"), [(12_000, 700, 0.0), (30_000, 20_011, 0.02), (500, 50_000, 0.3)]
)
def test_ks_asymptotic_and_large_wasserstein_match_scipy(m: int, n: int, shift: float) -> None:
    rng = np.random.default_rng(m + n)
    u, v = rng.normal(0, 1, m), rng.normal(shift, 1.2, n)
    expected = scipy_ks(u, v)
    d = st.ks_statistic(sort(u), sort(v))
    assert close(d, float(expected.statistic))
    assert close(st.ks_pvalue(sort(u), sort(v), d), float(expected.pvalue))
    assert close(st.wasserstein_distance(sort(u), sort(v)), scipy.stats.wasserstein_distance(u, v))


@pytest.mark.parametrize(("m", "n"), [(1000, 1000), (1000, 250), (250, 1000), (999, 1000), (6, 4)])
def test_wasserstein_fast_paths_match_scipy(m: int, n: int) -> None:
    rng = np.random.default_rng(7)
    u, v = rng.exponential(2.0, m), rng.normal(1.0, 3.0, n)
    assert close(st.wasserstein_distance(sort(u), sort(v)), scipy.stats.wasserstein_distance(u, v))


def test_wasserstein_cdf_fallback_matches() -> None:
    rng = np.random.default_rng(3)
    u, v = sort(rng.normal(size=301)), sort(rng.normal(size=199))
    assert close(st._wasserstein_by_cdfs(u, v), st.wasserstein_distance(u, v))


@settings(max_examples=150, deadline=None)
@given(u=samples, v=samples)
def test_distances_are_symmetric_and_in_range(u: FloatArray, v: FloatArray) -> None:
    su, sv = sort(u), sort(v)
    w = st.wasserstein_distance(su, sv)
    assert w >= 0
    assert math.isclose(w, st.wasserstein_distance(sv, su), rel_tol=1e-9, abs_tol=1e-9)
    d = st.ks_statistic(su, sv)
    assert 0 <= d <= 1
    assert d == st.ks_statistic(sv, su)
    assert 0 <= st.ks_pvalue(su, sv, d) <= 1
    ref_c, cur_c = st.sturges_counts(su, sv)
    js = st.jensenshannon_distance(ref_c, cur_c)
    assert 0 <= js <= math.sqrt(math.log(2)) + 1e-12
    assert math.isclose(js, st.jensenshannon_distance(cur_c, ref_c), abs_tol=1e-12)
    assert st.psi(ref_c, cur_c) >= 0


@settings(max_examples=100, deadline=None)
@given(u=samples)
def test_identical_samples_show_no_difference(u: FloatArray) -> None:
    su = sort(u)
    assert st.wasserstein_distance(su, su) == 0
    assert st.ks_statistic(su, su) == 0
    assert st.ks_pvalue(su, su, 0.0) == 1
    ref_c, cur_c = st.sturges_counts(su, su)
    assert st.jensenshannon_distance(ref_c, cur_c) == 0
    assert st.psi(ref_c, cur_c) == 0
    _, counts = st.run_lengths(su)
    assert st.chisquare_pvalue(counts, counts) == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(u=samples, c1=hs.floats(0, 1e3), c2=hs.floats(0, 1e3))
def test_wasserstein_of_a_shift_is_the_shift_and_grows_with_it(
    u: FloatArray, c1: float, c2: float
) -> None:
    su = sort(u)
    lo, hi = sorted((c1, c2))
    w_lo = st.wasserstein_distance(su, su + lo)
    w_hi = st.wasserstein_distance(su, su + hi)
    tol = 1e-9 * max(1.0, float(np.abs(su).max()) + hi)
    assert math.isclose(w_lo, lo, abs_tol=tol)
    assert w_hi >= w_lo - tol


@settings(max_examples=100, deadline=None)
@given(u=samples, v=samples, c=hs.floats(-100, 100))
def test_wasserstein_moves_at_most_by_the_shift(u: FloatArray, v: FloatArray, c: float) -> None:
    su, sv = sort(u), sort(v)
    tol = 1e-9 * max(1.0, float(np.abs(np.concatenate([su, sv])).max()) + abs(c))
    moved = st.wasserstein_distance(su, sv + c)
    assert abs(moved - st.wasserstein_distance(su, sv)) <= abs(c) + tol
    assert moved >= abs(float(sv.mean()) + c - float(su.mean())) - tol


counts_vectors = hs.integers(2, 30).flatmap(
    lambda k: hs.tuples(
        hnp.arrays(np.int64, k, elements=hs.integers(1, 10_000)),
        hnp.arrays(np.int64, k, elements=hs.integers(0, 10_000)).filter(lambda a: a.sum() > 0),
    )
)


@settings(max_examples=200, deadline=None)
@given(pair=counts_vectors)
def test_chisquare_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = pair
    expected = scipy.stats.chisquare(cur, f_exp=ref * (cur.sum() / ref.sum()))
    assert close(st.chisquare_pvalue(ref, cur), float(expected.pvalue), abs_=1e-15)


def test_chisquare_unseen_category_and_single_category() -> None:
    assert st.chisquare_pvalue(np.array([10, 0]), np.array([5, 5])) == 0.0
    assert st.chisquare_pvalue(np.array([10]), np.array([5])) == 1.0


@settings(max_examples=200, deadline=None)
@given(pair=counts_vectors)
def test_jensenshannon_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = pair
    assert close(st.jensenshannon_distance(ref, cur), float(jensenshannon(ref, cur)), abs_=1e-12)


@settings(max_examples=200, deadline=None)
@given(pair=counts_vectors)
def test_psi_is_evidentlys_formula(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = pair

    def filled(shares: np.ndarray) -> np.ndarray:  # Evidently's get_binned_data(feel_zeroes)
        smallest = min(shares[shares != 0])
        fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
        return np.where(shares == 0, fill, shares)

    r, c = filled(ref / ref.sum()), filled(cur / cur.sum())
    assert close(st.psi(ref, cur), float(np.sum((r - c) * np.log(r / c))))


@settings(max_examples=200, deadline=None)
@given(
    ref=hnp.arrays(np.int64, 2, elements=hs.integers(0, 5000)).filter(lambda a: a.sum() > 0),
    cur=hnp.arrays(np.int64, 2, elements=hs.integers(0, 5000)).filter(lambda a: a.sum() > 0),
)
def test_z_test_is_the_two_proportion_test(ref: np.ndarray, cur: np.ndarray) -> None:
    ours = st.z_pvalue(ref, cur, 0)
    n1, n2 = ref.sum(), cur.sum()
    p1, p2 = ref[1] / n1, cur[1] / n2
    pooled = (ref[1] + cur[1]) / (n1 + n2)
    if (np.count_nonzero(ref) == 1 and np.count_nonzero(cur) == 1
            and np.argmax(ref) == np.argmax(cur)):  # fmt: skip
        assert ours == 1.0
        return
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert close(ours, float(2 * (1 - scipy.stats.norm.cdf(abs(z)))), abs_=1e-14)
    assert 0 <= ours <= 1


@settings(max_examples=150, deadline=None)
@given(u=samples, v=samples)
def test_sturges_counts_match_numpy_histogram(u: FloatArray, v: FloatArray) -> None:
    edges = np.histogram_bin_edges(np.concatenate([u, v]), bins="sturges")
    ref_c, cur_c = st.sturges_counts(sort(u), sort(v))
    assert ref_c.tolist() == np.histogram(u, edges)[0].tolist()
    assert cur_c.tolist() == np.histogram(v, edges)[0].tolist()


@settings(max_examples=100, deadline=None)
@given(u=samples)
def test_run_lengths_is_unique(u: FloatArray) -> None:
    values_, counts = st.run_lengths(sort(u))
    expected_values, expected_counts = np.unique(u, return_counts=True)
    assert values_.tolist() == expected_values.tolist()
    assert counts.tolist() == expected_counts.tolist()
    assert st.count_distinct(sort(u)) == expected_values.size


def test_finite_part_drops_nan_and_infinities() -> None:
    x = np.sort(np.array([np.nan, 1.0, -np.inf, 3.0, np.inf, np.nan, 2.0]))
    assert st.finite_part(x).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("test", "statistic", "threshold", "drifted"),
    [
        ("ks", 0.05, 0.05, True),  # Evidently: p <= threshold
        ("chisquare", 0.05, 0.05, False),  # p < threshold
        ("z", 0.0499, 0.05, True),
        ("wasserstein", 0.1, 0.1, True),  # distance >= threshold
        ("jensenshannon", 0.0999, 0.1, False),
        ("psi", 0.2, 0.1, True),
        ("ks", math.nan, 0.05, False),
    ],
)
def test_verdict_follows_evidently(
    test: str, statistic: float, threshold: float, drifted: bool
) -> None:
    assert st.drift_verdict(test, statistic, threshold) is drifted


def test_verdict_rejects_unknown_test() -> None:
    with pytest.raises(ValueError, match="unknown stattest"):
        st.drift_verdict("t-test", 0.1, 0.05)
