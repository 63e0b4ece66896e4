"""The statistical tests behind drift detection, on sorted arrays and aligned counts.

Every function here is pure and vectorised. Numeric tests take the *sorted, finite* values
of each side (sorting is the one O(n log n) step and is done once per column by the
caller, and once per reference for a prepared reference); categorical tests take the
counts of each category, aligned so that index ``k`` is the same category on both sides.

The definitions follow Evidently's stattests (``ks``, ``wasserstein``, ``chisquare``,
``z``, ``jensenshannon``, ``psi``), including their binning and zero handling, so that
the same data gives the same verdicts; the values agree with scipy's
``ks_2samp``, ``wasserstein_distance``, ``chisquare`` and ``jensenshannon``.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Final

import numpy as np
import scipy.special
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Every test by name, as Evidently names them.
TESTS: Final = ("ks", "wasserstein", "chisquare", "z", "jensenshannon", "psi")
#: Tests whose statistic is a p-value: drift when it is *below* the threshold.
P_VALUE_TESTS: Final = frozenset({"ks", "chisquare", "z"})
#: Evidently's default threshold per test.
DEFAULT_THRESHOLDS: Final[dict[str, float]] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
#: Which tests apply to which kind of column (Evidently's ``allowed_feature_types``).
NUMERIC_TESTS: Final = frozenset({"ks", "wasserstein", "jensenshannon", "psi"})
CATEGORICAL_TESTS: Final = frozenset({"chisquare", "z", "jensenshannon", "psi"})

#: Above this many values on either side, ``ks_2samp``'s "auto" mode uses the asymptotic
#: distribution (scipy's ``MAX_AUTO_N``).
KS_EXACT_MAX_N: Final = 10_000
#: A numeric column whose reference has at most this many distinct values is binned by
#: value for ``jensenshannon``/``psi``; above it, into Sturges bins (Evidently's rule).
VALUE_BINNING_MAX_UNIQUE: Final = 20
#: The normed Wasserstein distance divides by ``max(std(reference), WASSERSTEIN_MIN_STD)``.
WASSERSTEIN_MIN_STD: Final = 0.001

_SCIPY_WARNINGS = threading.Lock()


def drift_verdict(test: str, statistic: float, threshold: float) -> bool:
    """Whether ``statistic`` means drift for ``test`` at ``threshold``, as Evidently decides.

    ``ks``: p-value ``<=`` threshold; ``chisquare`` and ``z``: p-value ``<`` threshold;
    ``wasserstein``, ``jensenshannon`` and ``psi``: distance ``>=`` threshold. A NaN
    statistic never means drift.
    """
    if math.isnan(statistic):
        return False
    if test == "ks":
        return statistic <= threshold
    if test in P_VALUE_TESTS:
        return statistic < threshold
    if test in DEFAULT_THRESHOLDS:
        return statistic >= threshold
    raise ValueError(f"unknown stattest {test!r}")


# --- helpers on sorted arrays ------------------------------------------------------------

#: Long arrays are processed in blocks of this many values, so that temporaries stay in
#: the CPU cache and no array as long as the data is allocated (on these VMs, touching
#: fresh memory costs more than the arithmetic).
BLOCK: Final = 1 << 16


def _blocks(n: int) -> range:
    return range(0, n, BLOCK)


def finite_part(sorted_values: FloatArray) -> FloatArray:
    """The finite values of an ascending-sorted array (NaN sorts last, -inf first, inf last)."""
    lo = int(np.searchsorted(sorted_values, -np.inf, side="right"))
    hi = int(np.searchsorted(sorted_values, np.inf, side="left"))
    return sorted_values[lo:hi]


def distinct_upto(sorted_values: FloatArray, limit: int) -> tuple[FloatArray, IntArray] | None:
    """The distinct values of a sorted array and their counts, or None past ``limit`` of them.

    Jumps from run to run by binary search: O(limit · log n), no pass over the data.
    """
    n = sorted_values.size
    values: list[float] = []
    ends: list[int] = []
    i = 0
    while i < n:
        if len(values) == limit:
            return None
        value = sorted_values[i]
        i = int(np.searchsorted(sorted_values, value, side="right"))
        values.append(float(value))
        ends.append(i)
    counts: IntArray = np.diff(np.asarray([0, *ends], dtype=np.int64)).astype(np.int64)
    return np.asarray(values, dtype=np.float64), counts


def run_lengths(sorted_values: FloatArray) -> tuple[FloatArray, IntArray]:
    """The distinct values of a sorted array and how often each occurs (``np.unique``)."""
    n = sorted_values.size
    if n == 0:
        return sorted_values[:0], np.zeros(0, dtype=np.int64)
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts[1:])
    idx = np.flatnonzero(starts)
    counts = np.diff(np.append(idx, n)).astype(np.int64)
    return sorted_values[idx], counts


def count_distinct(sorted_values: FloatArray) -> int:
    """How many distinct values a sorted array holds."""
    n = sorted_values.size
    if n == 0:
        return 0
    changes = 0
    for i in _blocks(n - 1):
        j = min(i + BLOCK, n - 1)
        changes += int(np.count_nonzero(sorted_values[i + 1 : j + 1] != sorted_values[i:j]))
    return 1 + changes


def standard_deviation(values: FloatArray) -> float:
    """``np.std(values)`` (population, ddof 0), in blocks."""
    n = values.size
    mean = float(values.sum()) / n
    squares = 0.0
    for i in _blocks(n):
        block = values[i : i + BLOCK] - mean
        np.square(block, out=block)
        squares += float(block.sum())
    return math.sqrt(squares / n)


def align_value_counts(
    ref_values: FloatArray, ref_counts: IntArray, cur_values: FloatArray, cur_counts: IntArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """The union of two sorted distinct-value arrays, with each side's counts aligned to it."""
    keys = np.union1d(ref_values, cur_values)
    ref = np.zeros(keys.size, dtype=np.int64)
    cur = np.zeros(keys.size, dtype=np.int64)
    ref[np.searchsorted(keys, ref_values)] = ref_counts
    cur[np.searchsorted(keys, cur_values)] = cur_counts
    return keys, ref, cur


# --- numeric tests -----------------------------------------------------------------------


def ks_statistic(u: FloatArray, v: FloatArray) -> float:
    """The two-sided two-sample Kolmogorov-Smirnov statistic D of two sorted samples.

    Evaluated exactly as ``scipy.stats.ks_2samp`` does (empirical CDFs, right-continuous,
    at every observation of either sample), so the float result is the same.
    """
    n1, n2 = u.size, v.size
    d = 0.0
    for points in (u, v):
        for i in _blocks(points.size):
            block = points[i : i + BLOCK]
            diff = np.searchsorted(u, block, side="right") / n1 - (
                np.searchsorted(v, block, side="right") / n2
            )
            d = max(d, float(diff.max()), float(np.clip(-diff.min(), 0.0, 1.0)))
    return d


def ks_pvalue(u: FloatArray, v: FloatArray, d: float) -> float:
    """The two-sided p-value of ``ks_2samp`` in its default ("auto") mode.

    Exact when both samples have at most 10,000 values (delegated to scipy, which has the
    exact path-counting algorithms and falls back to the asymptotic distribution where
    they overflow), else Smirnov's asymptotic distribution ``kstwo.sf(D, round(m·n/(m+n)))``
    (the same formula scipy uses), computed here from D without re-sorting.
    """
    import scipy.stats  # slow to import: only when needed

    n1, n2 = u.size, v.size
    if max(n1, n2) <= KS_EXACT_MAX_N:
        with _SCIPY_WARNINGS, warnings.catch_warnings():
            # "Exact calculation unsuccessful. Switching to method=asymp." is not news here.
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(scipy.stats.ks_2samp(u, v).pvalue)
    m, n = float(max(n1, n2)), float(min(n1, n2))
    en = m * n / (m + n)
    return float(np.clip(scipy.stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def wasserstein_distance(u: FloatArray, v: FloatArray) -> float:
    """The first Wasserstein distance between two sorted samples (``wasserstein_distance``).

    Computed as the integral over t in [0, 1] of |Q_u(t) - Q_v(t)|, the step quantile
    functions: the breakpoints ``i/m`` and ``j/n`` are walked in integer units of
    ``1/lcm(m, n)``, so no merge, search or second sort is needed, in blocks. When one size
    divides the other it is a mean of absolute differences of (repeated) values.
    """
    m, n = u.size, v.size
    if m < n:
        u, v, m, n = v, u, n, m  # symmetric; let u be the longer one
    g = math.gcd(m, n)
    a, b = n // g, m // g  # length of one u-step and one v-step, in units of 1/(m*a)
    total = m * a
    if total > (1 << 62):  # integer units would overflow: merge the CDFs instead
        return _wasserstein_by_cdfs(u, v)
    part = 0.0
    if a == 1:  # every v-breakpoint is a u-breakpoint: |u[i] - v[i // b]|
        for i in _blocks(m):
            block = u[i : i + BLOCK]
            other = v[i : i + BLOCK] if b == 1 else v[np.arange(i, i + block.size) // b]
            part += float(np.abs(block - other).sum())
        return part / m
    # Intervals that start at a u-breakpoint i*a: u-index i, v-index floor(i*a / b).
    for i in _blocks(m):
        s = np.arange(i, min(i + BLOCK, m), dtype=np.int64) * a
        iv = s // b
        length = np.minimum(s + a, (iv + 1) * b) - s
        part += _weighted_abs_diff(length, u[i : i + BLOCK], v[iv])
    # Intervals that start at a v-breakpoint j*b that is not also a u-breakpoint.
    for j in _blocks(n - 1):
        s = np.arange(j + 1, min(j + 1 + BLOCK, n), dtype=np.int64) * b
        iu = s // a
        length = np.minimum(s + b, (iu + 1) * a) - s
        length[s % a == 0] = 0
        part += _weighted_abs_diff(length, u[iu], v[j + 1 : j + 1 + BLOCK])
    return part / total


def _weighted_abs_diff(weights: IntArray, x: FloatArray, y: FloatArray) -> float:
    """``sum(weights * |x - y|)`` without BLAS (whose threads only get in the way here)."""
    diff = x - y
    np.abs(diff, out=diff)
    diff *= weights
    return float(diff.sum())


def _wasserstein_by_cdfs(u: FloatArray, v: FloatArray) -> float:
    values = np.sort(np.concatenate([u, v]), kind="stable")
    deltas = np.diff(values)
    u_cdf = np.searchsorted(u, values[:-1], side="right") / u.size
    v_cdf = np.searchsorted(v, values[:-1], side="right") / v.size
    return float((np.abs(u_cdf - v_cdf) * deltas).sum())


def normed_wasserstein(u: FloatArray, v: FloatArray, reference_std: float) -> float:
    """Evidently's "Wasserstein distance (normed)": W₁ / max(std(reference), 0.001)."""
    return wasserstein_distance(u, v) / max(reference_std, WASSERSTEIN_MIN_STD)


def sturges_counts(u: FloatArray, v: FloatArray) -> tuple[IntArray, IntArray]:
    """Counts of each sorted sample in Sturges bins over both samples together.

    The bins are ``np.histogram_bin_edges(concat(u, v), bins="sturges")``, computed from
    the extremes and the size alone; each sample is counted with ``np.histogram``'s rule
    (half-open bins, the last one closed) by searching the edges in the sorted sample.
    """
    size = u.size + v.size
    first = min(float(u[0]), float(v[0]))
    last = max(float(u[-1]), float(v[-1]))
    if first == last:
        first, last, bins = first - 0.5, last + 0.5, 1
    else:
        width = (last - first) / (np.log2(size) + 1.0)
        bins = int(np.ceil((last - first) / width)) if width else 1
    edges = np.linspace(first, last, bins + 1, endpoint=True)
    return _histogram_sorted(u, edges), _histogram_sorted(v, edges)


def _histogram_sorted(values: FloatArray, edges: FloatArray) -> IntArray:
    cum = np.concatenate(
        [
            np.searchsorted(values, edges[:-1], side="left"),
            np.searchsorted(values, edges[-1:], side="right"),
        ]
    )
    return np.diff(cum).astype(np.int64)


# --- tests on counts ---------------------------------------------------------------------


def chisquare_pvalue(ref_counts: IntArray, cur_counts: IntArray) -> float:
    """Evidently's chi-squared test: current counts against reference shares.

    Expected counts are the reference counts scaled to the current size; the p-value is
    ``scipy.stats.chisquare(f_obs=current, f_exp=expected).pvalue`` (k - 1 degrees of
    freedom). A category that the reference never saw but the current has gives an
    infinite statistic (p = 0), as in scipy; a single category gives p = 1.
    """
    if ref_counts.size < 2:
        return 1.0
    n_ref = float(ref_counts.sum())
    n_cur = float(cur_counts.sum())
    expected = ref_counts * (n_cur / n_ref)
    observed = cur_counts.astype(np.float64)
    if np.any((expected == 0) & (observed > 0)):
        return 0.0
    seen = expected > 0
    stat = float((((observed[seen] - expected[seen]) ** 2) / expected[seen]).sum())
    return float(scipy.special.chdtrc(ref_counts.size - 1, stat))


def z_pvalue(ref_counts: IntArray, cur_counts: IntArray, first: int) -> float:
    """Evidently's two-proportion z-test (two-sided) for a binary column.

    The column is reduced to "is not category ``first``" (Evidently takes the smallest
    value of the union), and the shares in reference and current are compared with the
    pooled-variance z statistic. One and the same single value on both sides gives p = 1.
    """
    n1 = float(ref_counts.sum())
    n2 = float(cur_counts.sum())
    if (
        np.count_nonzero(ref_counts) == 1
        and np.count_nonzero(cur_counts) == 1
        and int(np.argmax(ref_counts)) == int(np.argmax(cur_counts))
    ):
        return 1.0
    p1 = (n1 - float(ref_counts[first])) / n1
    p2 = (n2 - float(cur_counts[first])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if denom == 0.0:
        return math.nan
    z = (p1 - p2) / denom
    return float(2.0 * scipy.special.ndtr(-abs(z)))


def jensenshannon_distance(ref_counts: NDArray[np.int64], cur_counts: NDArray[np.int64]) -> float:
    """The Jensen-Shannon distance (natural log) of two aligned count vectors.

    As ``scipy.spatial.distance.jensenshannon(p, q)``: both are normalised, then
    ``sqrt((KL(p‖m) + KL(q‖m)) / 2)`` with ``m = (p + q) / 2``; it lies in [0, √ln 2].
    Evidently computes it on raw shares (no zero filling).
    """
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    m = (p + q) / 2.0
    js = _rel_entr_sum(p, m) + _rel_entr_sum(q, m)
    return math.sqrt(max(js, 0.0) / 2.0)


def _rel_entr_sum(x: FloatArray, y: FloatArray) -> float:
    keep = x > 0  # where x > 0, y = (x + other) / 2 > 0 too
    return float(np.sum(x[keep] * np.log(x[keep] / y[keep])))


def fill_zero_shares(shares: FloatArray) -> FloatArray:
    """Evidently's zero filling for PSI: empty bins get a small share.

    The share is the smallest non-zero share / 10⁶ when that is at most 10⁻⁴, else 10⁻⁴.
    """
    out = shares.copy()
    nonzero = out[out != 0]
    if nonzero.size == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out


def psi(ref_counts: NDArray[np.int64], cur_counts: NDArray[np.int64]) -> float:
    """The population stability index of two aligned count vectors, as Evidently computes it.

    ``Σ (r - c) · ln(r / c)`` over the shares of each bin, after :func:`fill_zero_shares`.
    """
    r = fill_zero_shares(ref_counts / ref_counts.sum())
    c = fill_zero_shares(cur_counts / cur_counts.sum())
    return float(np.sum((r - c) * np.log(r / c)))
