"""The coverage power-law fit recovers known (a, b); weak-verifier resampling against hand computations."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pandas as pd
import pytest

from thinkcost.metrics.accuracy import pass_at_k
from thinkcost.metrics.curves import accept_until_verified, fit_coverage_power_law, pass_at_k_curve
from thinkcost.metrics.scaling import coverage_fit, coverage_fits, weak_verifier_curves
from thinkcost.strategies import parse_strategy

KS = list(range(1, 65))


@pytest.mark.parametrize(("a", "b"), [(-1.3, -0.4), (-0.2, -0.9), (-3.0, -0.15), (-0.7, -0.5)])
def test_fit_recovers_exact_power_law(a, b):
    fit = fit_coverage_power_law(KS, [math.exp(a * k**b) for k in KS])
    assert fit.a == pytest.approx(a, rel=1e-9) and fit.b == pytest.approx(b, rel=1e-9)
    assert fit.points == len(KS)
    assert fit.coverage(1000) == pytest.approx(math.exp(a * 1000**b))


def test_fit_recovers_noisy_power_law():
    rng = np.random.default_rng(7)
    a, b = -1.1, -0.35
    noisy = [min(0.9999, max(1e-6, math.exp(a * k**b) + rng.normal(0, 0.004))) for k in KS]
    fit = fit_coverage_power_law(KS, noisy)
    assert fit.a == pytest.approx(a, abs=0.05) and fit.b == pytest.approx(b, abs=0.05)


def test_fit_drops_points_without_a_double_log():
    a, b = -1.0, -0.5
    cov = [math.exp(a * k**b) for k in (1, 2, 4)]
    fit = fit_coverage_power_law([1, 2, 4, 8, 16], [*cov, 1.0, 0.0])
    assert fit.points == 3 and fit.b == pytest.approx(b)
    assert fit_coverage_power_law([1, 2, 3], [1.0, 1.0, 0.3]) is None  # one usable point
    assert fit_coverage_power_law([], []) is None
    with pytest.raises(ValueError, match="2 ks but 1"):
        fit_coverage_power_law([1, 2], [0.5])


def test_coverage_fit_of_stored_samples():
    correct = [[True, False, False, False, False, False, False, False]] * 3 + [
        [True, True, False, False] * 2
    ] * 2
    correct += [[False] * 7 + [True]]
    fit = coverage_fit(correct, (100,), n_boot=200)
    obs = pass_at_k_curve(correct)
    assert [p["coverage"] for p in fit["observed"]] == pytest.approx([obs[k] for k in range(1, 9)])
    expected = np.mean([[pass_at_k(8, sum(c), k) for k in range(1, 9)] for c in correct], axis=0)
    ref = fit_coverage_power_law(list(range(1, 9)), expected.tolist())
    assert (fit["a"], fit["b"]) == pytest.approx((ref.a, ref.b))
    assert fit["a"] < 0 and fit["b"] < 0
    (ext,) = fit["extrapolated"]
    assert ext["k"] == 100 and ext["coverage"] == pytest.approx(math.exp(fit["a"] * 100 ** fit["b"]))
    assert ext["ci"][0] <= ext["coverage"] <= ext["ci"][1]
    assert fit["a_ci"][0] <= fit["a"] <= fit["a_ci"][1]
    assert fit["boot_fitted"] <= 200 and fit["problems"] == len(correct)
    assert coverage_fit([[True, True]], n_boot=10) is None  # solved at every k: no slope
    with pytest.raises(ValueError, match="same number"):
        coverage_fit([[True], [True, False]])


def _gens(correct_by_problem, variant="base", recipe="sample:t=0.7,p=0.95"):
    rows = []
    for i, cs in enumerate(correct_by_problem):
        for s, c in enumerate(cs):
            rows.append(
                {"variant": variant, "recipe": recipe, "problem_id": f"p{i}", "sample": s, "correct": c}
            )
    return pd.DataFrame(rows)


def test_coverage_fits_per_sample_set():
    correct = [[True, False, False, False], [False, True, True, False], [False, False, False, False]]
    fits = coverage_fits(_gens(correct), [parse_strategy("maj@4")], (50,), n_boot=50)
    assert len(fits) == 1 and fits[0]["variant"] == "base" and fits[0]["n"] == 4
    assert coverage_fits(_gens(correct), [parse_strategy("greedy")], n_boot=10) == []


def test_accept_until_verified_hand_computation():
    weak = [[True, True, False, False], [False, False, False, True]]
    strong = [[True, False, False, False], [False, False, False, False]]
    got = accept_until_verified(weak, strong, [1, 2, 4])
    # k=1: P1 accepts w.p. 2/4, returns a correct one w.p. 1/2; P2 accepts w.p. 1/4, never correct
    assert got[1]["accepted"] == pytest.approx((0.5 + 0.25) / 2)
    assert got[1]["accuracy"] == pytest.approx(0.25 / 2)
    assert got[1]["precision"] == pytest.approx(1 / 3)
    assert got[1]["samples"] == pytest.approx(1.0)
    # k=2: P1 accepts w.p. 1 - C(2,2)/C(4,2) = 5/6, P2 w.p. 1 - C(3,2)/C(4,2) = 1/2
    assert got[2]["accepted"] == pytest.approx((5 / 6 + 0.5) / 2)
    assert got[2]["accuracy"] == pytest.approx((5 / 12) / 2)
    assert got[2]["precision"] == pytest.approx(5 / 16)
    assert got[2]["samples"] == pytest.approx(((1 + 2 / 4) + (1 + 3 / 4)) / 2)
    assert got[4] == pytest.approx(
        {"accepted": 1.0, "accuracy": 0.25, "precision": 0.25, "samples": (5 / 3 + 2.5) / 2}
    )


def _enumerate(weak, strong, k):
    """Brute force over every sample order: draw until weak accepts or k are spent."""
    acc = cor = draws = 0.0
    orders = list(permutations(range(len(weak))))
    for order in orders:
        for j, i in enumerate(order[:k]):
            if weak[i]:
                acc += 1
                cor += strong[i]
                draws += j + 1
                break
        else:
            draws += k
    m = len(orders)
    return acc / m, cor / m, draws / m


@pytest.mark.parametrize("seed", range(5))
def test_accept_until_verified_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    weak = rng.random(5) < 0.4
    strong = weak & (rng.random(5) < 0.6) | (rng.random(5) < 0.2)
    for k in range(1, 6):
        got = accept_until_verified([weak.tolist()], [strong.tolist()], [k])[k]
        a, c, d = _enumerate(weak.tolist(), strong.tolist(), k)
        assert (got["accepted"], got["accuracy"], got["samples"]) == pytest.approx((a, c, d))


def test_weak_verifier_curves_need_every_weak_verdict():
    correct = [[True, False], [False, False]]
    gens = _gens(correct)
    key = "sample:t=0.7,p=0.95"
    weak = {("base", "p0", key, 0): True, ("base", "p0", key, 1): True, ("base", "p1", key, 0): False}
    assert weak_verifier_curves(gens, [parse_strategy("maj@2")], weak) == []
    weak[("base", "p1", key, 1)] = True
    pts = weak_verifier_curves(gens, [parse_strategy("maj@2")], weak)
    assert [p["k"] for p in pts] == [1, 2]
    assert pts[1]["precision"] == pytest.approx(0.25)  # P1 returns right half the time, P2 never


def test_weak_first_test_verdict():
    from thinkcost.verify.weak import weak_tests, weak_verdict

    meta = {"test_list": ["assert f(1) == 2", "assert f(2) == 4"], "test_imports": ["import math"]}
    assert weak_tests(meta) == "import math\nassert f(1) == 2"
    fitted = "```python\ndef f(x):\n    return 2\n```"  # passes the shown test only
    assert weak_verdict(fitted, meta) is True
    assert weak_verdict("```python\ndef f(x):\n    return 3\n```", meta) is False
    assert weak_verdict(fitted, {"tests": "assert f(1) == 2"}) is None


def test_report_sections_plot_the_fit_and_the_weak_verifier():
    from thinkcost.report.levels import coverage_figure, levels_html, weak_verifier_figure

    correct = [[True, False, False, False], [False, True, True, False], [False, False, False, False]]
    gens = _gens(correct)
    fits = coverage_fits(gens, [parse_strategy("maj@4")], (64,), n_boot=50)
    fig = coverage_figure(fits)
    observed, line, ext = fig["data"]
    assert observed["y"] == pytest.approx([p["coverage"] for p in fits[0]["observed"]])
    assert line["x"][-1] == 64 and line["y"][-1] == pytest.approx(fits[0]["extrapolated"][0]["coverage"])
    assert ext["x"] == [64]
    key = "sample:t=0.7,p=0.95"
    weak = {("base", f"p{i}", key, s): s == 0 for i in range(3) for s in range(4)}
    pts = weak_verifier_curves(gens, [parse_strategy("maj@4")], weak)
    wf = weak_verifier_figure(pts)
    assert [t["name"].split()[-1] for t in wf["data"]] == ["accuracy", "precision"]
    assert wf["data"][0]["y"][-1] == pytest.approx(1 / 3)  # only p0's first sample is accepted and right
    page = levels_html({"coverage_fits": fits, "weak_verifier": pts}, js=True)
    assert 'id="sec-coverage-fit"' in page and 'id="sec-weak-verifier"' in page
    assert levels_html({}, js=True) == ""


@pytest.mark.parametrize(("text", "want"), [("100,1000", (100, 1000)), (" 64 ", (64,)), ("5, 7", (5, 7))])
def test_extrapolate_k_option(text, want):
    from thinkcost.cli import _extrapolate_ks

    assert _extrapolate_ks(text) == want


@pytest.mark.parametrize("text", ["", "0", "ten", "100,-1", "1.5"])
def test_extrapolate_k_option_errors(text):
    from thinkcost.cli import _extrapolate_ks
    from thinkcost.errors import UserError

    with pytest.raises(UserError, match="--extrapolate-k"):
        _extrapolate_ks(text)
