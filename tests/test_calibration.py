import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from thinkcost.metrics.calibration import (
    auroc,
    brier,
    calibration_summary,
    ece,
    logprob_confidence,
    missing_share,
    reliability,
)

# ----------------------------------------------------------------------------- hand-computed cases


def test_ece_width_by_hand():
    # bins of width 0.5: [0, 0.5) holds 0.2, 0.4 (acc 0/2, conf 0.3); [0.5, 1] holds 0.6, 1.0 (acc 1/2, conf 0.8)
    conf, correct = [0.2, 0.4, 0.6, 1.0], [False, False, True, False]
    assert ece(conf, correct, n_bins=2) == pytest.approx(0.5 * 0.3 + 0.5 * 0.3)


def test_ece_width_edges_are_left_closed_and_the_last_bin_is_closed():
    # 0.3 belongs to [0.3, 0.4), 1.0 to the last bin, 0.0 to the first
    rows = reliability([0.0, 0.3, 1.0], [True, True, True], n_bins=10)
    assert [r["count"] for r in rows] == [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert rows[3]["lo"] == pytest.approx(0.3) and rows[3]["hi"] == pytest.approx(0.4)


def test_ece_perfectly_calibrated_is_zero():
    conf = [0.5, 0.5, 1.0, 0.0]
    correct = [True, False, True, False]
    assert ece(conf, correct, n_bins=10) == pytest.approx(0.0)
    # one sample per mass bin: ECE is the mean |correct - conf| = (0.5 + 0.5 + 0 + 0) / 4
    assert ece(conf, correct, n_bins=10, strategy="mass") == pytest.approx(0.25)
    # two mass bins {0.0, 0.5} and {0.5, 1.0}: |0.5-0.25| and |0.5-0.75|
    assert ece(conf, correct, n_bins=2, strategy="mass") == pytest.approx(0.25)


def test_ece_mass_by_hand():
    # sorted: 0.1(F) 0.2(T) 0.3(F) | 0.8(T) 0.9(T)  -> sizes 3, 2
    conf, correct = [0.9, 0.1, 0.8, 0.3, 0.2], [True, False, True, False, True]
    expected = 3 / 5 * abs(1 / 3 - 0.2) + 2 / 5 * abs(1.0 - 0.85)
    assert ece(conf, correct, n_bins=2, strategy="mass") == pytest.approx(expected)


def test_ece_mass_ties_are_cut_by_rank_in_input_order():
    # four ties at 0.5, two bins of two: input order decides, so bin 1 = (T, T), bin 2 = (F, F)
    conf, correct = [0.5, 0.5, 0.5, 0.5], [True, True, False, False]
    rows = reliability(conf, correct, n_bins=2, strategy="mass")
    assert [(r["count"], r["accuracy"]) for r in rows] == [(2, 1.0), (2, 0.0)]
    assert ece(conf, correct, n_bins=2, strategy="mass") == pytest.approx(0.5)


def test_brier_by_hand():
    assert brier([1.0, 0.0, 0.5, 0.8], [True, False, True, False]) == pytest.approx((0 + 0 + 0.25 + 0.64) / 4)


def test_auroc_by_hand_with_ties():
    # correct: 0.9, 0.5; incorrect: 0.5, 0.1 -> pairs (0.9>0.5)=1 (0.9>0.1)=1 (0.5=0.5)=1/2 (0.5>0.1)=1
    assert auroc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx(3.5 / 4)
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.7, 0.7, 0.7], [True, False, True]) == pytest.approx(0.5)


def test_auroc_is_nan_when_a_class_is_empty():
    assert math.isnan(auroc([0.2, 0.9], [True, True]))
    assert math.isnan(auroc([0.2, 0.9], [False, False]))
    assert math.isnan(auroc([None, 0.9], [False, True]))  # the only incorrect sample is missing


def test_missing_confidences_are_excluded_and_counted():
    conf = [0.9, None, float("nan"), 0.2]
    correct = [True, True, False, False]
    assert missing_share(conf) == pytest.approx(0.5)
    assert brier(conf, correct) == pytest.approx((0.01 + 0.04) / 2)
    assert ece(conf, correct, n_bins=10) == pytest.approx(0.5 * 0.1 + 0.5 * 0.2)
    assert auroc(conf, correct) == 1.0
    s = calibration_summary(conf, correct)
    assert (s["n"], s["n_scored"], s["missing_share"]) == (4, 2, 0.5)


def test_no_scored_samples_gives_nan():
    for value in (ece([None], [True]), ece([], []), brier([None], [True]), missing_share([])):
        assert math.isnan(value)
    s = calibration_summary([None, None], [True, False])
    assert s["n_scored"] == 0 and s["missing_share"] == 1.0 and math.isnan(s["ece_mass"])


@pytest.mark.parametrize(
    "conf, correct",
    [([0.5, 1.2], [True, False]), ([-0.1], [True]), ([0.5], [True, False]), ([0.5], [2])],
)
def test_bad_inputs_raise(conf, correct):
    with pytest.raises(ValueError):
        brier(conf, correct)


def test_bad_options_raise():
    with pytest.raises(ValueError):
        ece([0.5], [True], n_bins=0)
    with pytest.raises(ValueError):
        ece([0.5], [True], strategy="quantile")


def test_logprob_confidence_is_the_geometric_mean_token_probability():
    lp = [math.log(0.5), math.log(0.125)]
    assert logprob_confidence(lp) == pytest.approx(0.25)  # sqrt(0.5 * 0.125)
    assert logprob_confidence([0.0, 0.0]) == 1.0
    assert logprob_confidence([-math.inf]) == 0.0
    assert logprob_confidence([]) is None
    with pytest.raises(ValueError):
        logprob_confidence([0.5])


# ----------------------------------------------------------------------------- against references


def _random_case(seed: int, n: int = 300, missing: float = 0.1, rounded: bool = False):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n)
    if rounded:  # many ties, like verbal confidences in steps of 5%
        conf = np.round(conf * 20) / 20
    correct = rng.uniform(0, 1, n) < conf**1.5
    conf_with_missing = [None if rng.uniform() < missing else float(c) for c in conf]
    return conf_with_missing, correct


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rounded", [False, True])
def test_auroc_and_brier_match_sklearn(seed, rounded):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    conf, correct = _random_case(seed, rounded=rounded)
    keep = [c is not None for c in conf]
    c = np.array([x for x in conf if x is not None])
    y = np.asarray(correct)[keep]
    assert auroc(conf, correct) == pytest.approx(sklearn_metrics.roc_auc_score(y, c), abs=1e-12)
    assert brier(conf, correct) == pytest.approx(sklearn_metrics.brier_score_loss(y, c), abs=1e-12)


def _brute_force_mass_ece(conf, correct, n_bins):
    """Equal-mass ECE written out: stable sort, first n % B groups one larger."""
    pairs = sorted(
        ((c, y, i) for i, (c, y) in enumerate(zip(conf, correct, strict=True)) if c is not None),
        key=lambda t: (t[0], t[2]),
    )
    n = len(pairs)
    base, extra = divmod(n, n_bins)
    total, start = 0.0, 0
    for b in range(n_bins):
        size = base + (1 if b < extra else 0)
        group = pairs[start : start + size]
        start += size
        if group:
            acc = sum(y for _, y, _ in group) / size
            mean_conf = sum(c for c, _, _ in group) / size
            total += size / n * abs(acc - mean_conf)
    return total


def _brute_force_width_ece(conf, correct, n_bins):
    """Equal-width ECE written out with the bin rule i/B <= c < (i+1)/B, c = 1 in the last bin."""
    kept = [(c, y) for c, y in zip(conf, correct, strict=True) if c is not None]
    total = 0.0
    for i in range(n_bins):
        lo, hi = i / n_bins, (i + 1) / n_bins
        group = [(c, y) for c, y in kept if lo <= c < hi or (i == n_bins - 1 and c == 1.0)]
        if group:
            acc = sum(y for _, y in group) / len(group)
            mean_conf = sum(c for c, _ in group) / len(group)
            total += len(group) / len(kept) * abs(acc - mean_conf)
    return total


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_bins", [1, 3, 10, 15])
@pytest.mark.parametrize("rounded", [False, True])
def test_ece_matches_brute_force(seed, n_bins, rounded):
    conf, correct = _random_case(seed, n=97, rounded=rounded)
    assert ece(conf, correct, n_bins, "mass") == pytest.approx(_brute_force_mass_ece(conf, correct, n_bins))
    assert ece(conf, correct, n_bins, "width") == pytest.approx(_brute_force_width_ece(conf, correct, n_bins))


@pytest.mark.parametrize("strategy", ["width", "mass"])
@pytest.mark.parametrize("n", [0, 3, 50])
def test_reliability_bins_sum_to_n_scored(strategy, n):
    conf, correct = _random_case(7, n=n, missing=0.3)
    rows = reliability(conf, correct, n_bins=10, strategy=strategy)
    assert sum(r["count"] for r in rows) == calibration_summary(conf, correct)["n_scored"]
    for r in rows:
        assert r["lo"] <= r["hi"] or math.isnan(r["lo"])
        if r["count"]:
            assert r["lo"] <= r["confidence"] <= r["hi"]
            assert 0 <= r["accuracy"] <= 1
    if strategy == "width":
        assert len(rows) == 10


def test_summary_fields():
    conf, correct = _random_case(3)
    s = calibration_summary(conf, correct)
    assert set(s) == {"ece_width", "ece_mass", "brier", "auroc", "missing_share", "n", "n_scored"}
    assert s["ece_width"] == ece(conf, correct) and s["ece_mass"] == ece(conf, correct, strategy="mass")


# ------------------------------------------------------- ECE against an exact, independent computation
# scikit-learn has no ECE, so ECE is checked here against a recomputation that shares nothing with the
# implementation: confidences on the 1/100 grid (what verbal confidences are) held as integers k, bins
# found by integer arithmetic (k/100 lies in width bin floor(k*B/100), k = 100 in the last), group
# sizes of equal-mass bins from a closed formula, and the score summed exactly in Fractions as
# sum over bins of |sum(correct - confidence)| / n, which equals sum of share * |accuracy - confidence|.


def _grid_case(seed: int, n: int) -> tuple[list[int | None], list[bool]]:
    """Confidences as integer percents (None = missing), with ties and both ends 0 and 100."""
    rng = np.random.default_rng(seed)
    ks = [int(k) for k in rng.integers(0, 101, n)]
    ks[:2] = [0, 100][:n]
    correct = [bool(rng.uniform() < k / 100) for k in ks]
    return [None if i >= 2 and rng.uniform() < 0.1 else k for i, k in enumerate(ks)], correct


def _exact_ece(ks: list[int | None], correct: list[bool], n_bins: int, strategy: str) -> Fraction:
    scored = [(k, y, i) for i, (k, y) in enumerate(zip(ks, correct, strict=True)) if k is not None]
    n = len(scored)
    groups: dict[int, list[tuple[int, bool]]] = {}
    if strategy == "width":
        for k, y, _ in scored:
            groups.setdefault(min(k * n_bins // 100, n_bins - 1), []).append((k, y))
    else:  # rank r -> group: the first n % B groups hold one more sample than the others
        big, extra = -(-n // n_bins), n % n_bins
        for r, (k, y, _) in enumerate(sorted(scored, key=lambda t: (t[0], t[2]))):
            g = r // big if extra == 0 or r < extra * big else extra + (r - extra * big) // (big - 1)
            groups.setdefault(g, []).append((k, y))
    gaps = [abs(sum(Fraction(int(y)) - Fraction(k, 100) for k, y in g)) for g in groups.values()]
    return sum(gaps, Fraction(0)) / n


@pytest.mark.parametrize("strategy", ["width", "mass"])
@pytest.mark.parametrize("n_bins", [1, 2, 3, 4, 7, 10, 15, 20, 64, 100, 250])
@pytest.mark.parametrize("seed, n", [(0, 1), (1, 5), (2, 37), (3, 200), (4, 1001)])
def test_ece_matches_exact_integer_recomputation(strategy, n_bins, seed, n):
    ks, correct = _grid_case(seed, n)
    conf = [None if k is None else k / 100 for k in ks]
    expected = float(_exact_ece(ks, correct, n_bins, strategy))
    assert ece(conf, correct, n_bins, strategy) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("n_bins", [1, 2, 10, 30])
def test_ece_width_bins_of_grid_confidences_are_exact(n_bins):
    # every percent 0..100 in its own sample: bin counts follow floor(k * B / 100) exactly
    rows = reliability([k / 100 for k in range(101)], [True] * 101, n_bins=n_bins)
    expected = Counter(min(k * n_bins // 100, n_bins - 1) for k in range(101))
    assert [r["count"] for r in rows] == [expected[i] for i in range(n_bins)]


@pytest.mark.parametrize("strategy", ["width", "mass"])
def test_ece_closed_forms(strategy):
    conf, correct = _random_case(11, n=60)
    c = np.array([x for x in conf if x is not None])
    y = np.asarray(correct)[[x is not None for x in conf]]
    # one bin: |accuracy - mean confidence| over all scored samples
    assert ece(conf, correct, 1, strategy) == pytest.approx(abs(y.mean() - c.mean()), abs=1e-12)
    # constant confidence q with a share a correct: |a - q| at any bin count
    for n_bins in (1, 5, 10, 13):
        assert ece([0.35] * 8, [True] * 6 + [False] * 2, n_bins, "width") == pytest.approx(0.4)
        assert ece([0.9] * 5, [True] * 5, n_bins, strategy) == pytest.approx(0.1)
    # at least as many mass bins as samples: every sample alone, ECE = mean |correct - confidence|
    assert ece(conf, correct, len(c), "mass") == pytest.approx(np.abs(y - c).mean(), abs=1e-12)
    assert ece(conf, correct, 10 * len(c), "mass") == pytest.approx(np.abs(y - c).mean(), abs=1e-12)


def test_readme_claims_only_what_is_tested():
    # the Trust section once said ECE was "tested against scikit-learn", which has no ECE
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    this_file = Path(__file__).read_text()
    assert "are tested against scikit-learn." not in readme
    assert "scikit-learn has no\nECE" in readme or "scikit-learn has no ECE" in readme
    for reference in ("brier_score_loss", "roc_auc_score"):
        assert f"`{reference}`" in readme and f"sklearn_metrics.{reference}" in this_file
