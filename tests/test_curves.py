import math
import random
from collections import Counter
from itertools import combinations

import pytest

from thinkcost.metrics.curves import CurvePoint, expected_tokens_curve, maj_at_k_curve, pass_at_k_curve
from thinkcost.strategies.vote import Attempt, majority_vote


def random_problems(rng: random.Random, n_problems: int, n_min: int, n_max: int) -> list[list[Attempt]]:
    """Attempts with answers from a small pool (so votes tie often), some None, and finish
    keys (tokens, sample) with repeated token counts (so the sample id tie-break is exercised).
    Answer "0" is the correct one."""
    problems = []
    for _ in range(n_problems):
        n = rng.randint(n_min, n_max)
        attempts = []
        for s in range(n):
            ans = rng.choice(["0", "0", "1", "2", None])
            attempts.append(Attempt(s, ans, ans == "0", (rng.randint(1, 4), s)))
        problems.append(attempts)
    return problems


def brute_vote_correct(subset: tuple[Attempt, ...]) -> bool:
    """Majority vote written independently: answers here are already canonical strings."""
    voted = [a for a in subset if a.answer is not None]
    if not voted:
        return False
    counts = Counter(a.answer for a in voted)
    top = max(counts.values())
    first = min((a for a in voted if counts[a.answer] == top), key=lambda a: a.finish_key)
    return first.correct


def brute_maj(problems: list[list[Attempt]], k: int) -> float:
    per_problem = []
    for attempts in problems:
        subsets = list(combinations(attempts, k))
        per_problem.append(sum(brute_vote_correct(s) for s in subsets) / len(subsets))
    return sum(per_problem) / len(per_problem)


# --- pass@k -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_pass_at_k_curve_matches_enumeration(seed):
    rng = random.Random(seed)
    problems = [[rng.random() < 0.3 for _ in range(rng.randint(1, 8))] for _ in range(5)]
    curve = pass_at_k_curve(problems)
    assert list(curve) == list(range(1, min(len(p) for p in problems) + 1))
    for k, value in curve.items():
        per_problem = [sum(any(s) for s in combinations(p, k)) / math.comb(len(p), k) for p in problems]
        brute = sum(per_problem) / len(problems)
        assert value == pytest.approx(brute, abs=1e-12), k


def test_pass_at_k_curve_explicit_ks_and_errors():
    problems = [[True, False, False, False], [False, False, True]]
    assert pass_at_k_curve(problems, ks=[3, 1]) == {
        1: pytest.approx((1 / 4 + 1 / 3) / 2),
        3: pytest.approx((3 / 4 + 1.0) / 2),
    }
    with pytest.raises(ValueError, match=r"k=4 exceeds n=3"):
        pass_at_k_curve(problems, ks=[4])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        pass_at_k_curve(problems, ks=[0])
    with pytest.raises(ValueError, match="no problems"):
        pass_at_k_curve([])


# --- maj@k ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_maj_at_k_exact_matches_brute_force(seed):
    problems = random_problems(random.Random(seed), 4, 3, 8)
    curve = maj_at_k_curve(problems)
    assert list(curve) == list(range(1, min(len(p) for p in problems) + 1))
    for k, point in curve.items():
        assert point.exact is True
        assert point.k == k
        assert point.subsets == sum(math.comb(len(p), k) for p in problems)
        assert point.accuracy == pytest.approx(brute_maj(problems, k), abs=1e-12), k


def test_maj_at_1_is_the_mean_single_sample_accuracy():
    problems = random_problems(random.Random(11), 5, 2, 7)
    mean_acc = sum(sum(a.correct for a in p) / len(p) for p in problems) / len(problems)
    assert maj_at_k_curve(problems, ks=[1])[1].accuracy == pytest.approx(mean_acc, abs=1e-12)


def test_maj_at_n_is_the_plain_majority_vote():
    problems = random_problems(random.Random(5), 6, 5, 5)
    point = maj_at_k_curve(problems, ks=[5])[5]
    plain = sum(majority_vote(p).correct for p in problems) / len(problems)
    assert point == CurvePoint(5, pytest.approx(plain, abs=1e-12), True, 6)


def test_maj_at_k_tie_break_uses_the_attempts_own_finish_keys():
    # n=3, k=2. Subsets {0,1} and {1,2} are 1-1 ties won by sample 1 (finished first, correct);
    # {0,2} agrees on the wrong answer. Exact maj@2 = 2/3; a tie-break by position would differ.
    attempts = [
        Attempt(0, "7", False, (30, 0)),
        Attempt(1, "5", True, (10, 1)),
        Attempt(2, "7", False, (20, 2)),
    ]
    assert maj_at_k_curve([attempts], ks=[2])[2].accuracy == pytest.approx(2 / 3)


def test_exact_switches_to_resampling_above_max_subsets():
    problems = random_problems(random.Random(3), 2, 8, 8)  # C(8, 4) = 70 subsets each
    assert maj_at_k_curve(problems, ks=[4], max_subsets=70)[4].exact is True
    point = maj_at_k_curve(problems, ks=[4], max_subsets=69, n_resamples=300)[4]
    assert (point.exact, point.subsets) == (False, 600)


def test_resampled_maj_at_k_is_close_to_exact_and_deterministic():
    problems = random_problems(random.Random(7), 4, 6, 8)
    ks = [2, 3, 5]
    resamples = 4000
    exact = maj_at_k_curve(problems, ks)
    approx = maj_at_k_curve(problems, ks, max_subsets=0, n_resamples=resamples, seed=123)
    for k in ks:
        # Per problem the resampled value is a mean of `resamples` iid Bernoulli(p_i) draws
        # (p_i = the exact subset average), so the curve point has standard error
        # sqrt(sum p_i (1 - p_i) / R) / P. 4 standard errors: a wrong sampler (non-uniform
        # subsets, wrong k, lost finish keys) would be off by far more than ~0.015.
        p = [maj_at_k_curve([attempts], [k])[k].accuracy for attempts in problems]
        se = math.sqrt(sum(x * (1 - x) for x in p) / resamples) / len(p)
        assert not approx[k].exact
        assert approx[k].subsets == resamples * len(problems)
        assert abs(approx[k].accuracy - exact[k].accuracy) <= 4 * se + 1e-12, (k, se)
    again = maj_at_k_curve(problems, ks, max_subsets=0, n_resamples=resamples, seed=123)
    assert again == approx
    other = maj_at_k_curve(problems, ks, max_subsets=0, n_resamples=resamples, seed=124)
    assert other != approx  # the seed is actually used
    # A point does not depend on which other ks were asked for.
    alone = maj_at_k_curve(problems, [3], max_subsets=0, n_resamples=resamples, seed=123)
    assert alone[3] == approx[3]


def test_resampling_a_unanimous_problem_is_exact_in_value():
    attempts = [Attempt(s, "4", True, (s, s)) for s in range(10)]
    point = maj_at_k_curve([attempts], ks=[5], max_subsets=0, n_resamples=50)[5]
    assert (point.accuracy, point.exact, point.subsets) == (1.0, False, 50)


def test_maj_at_k_errors():
    problems = random_problems(random.Random(0), 2, 3, 3)
    with pytest.raises(ValueError, match=r"k=4 exceeds n=3"):
        maj_at_k_curve(problems, ks=[4])
    with pytest.raises(ValueError, match="n_resamples"):
        maj_at_k_curve(problems, ks=[2], n_resamples=0)


# --- expected tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_expected_tokens_matches_enumeration(seed):
    rng = random.Random(seed)
    tokens = [[rng.randint(1, 500) for _ in range(rng.randint(2, 8))] for _ in range(4)]
    ks = range(1, min(len(t) for t in tokens) + 1)
    curve = expected_tokens_curve(tokens, ks)
    assert list(curve) == list(ks)
    for k in ks:
        per_problem = [sum(sum(s) for s in combinations(t, k)) / math.comb(len(t), k) for t in tokens]
        brute = sum(per_problem) / len(tokens)
        assert curve[k] == pytest.approx(brute, rel=1e-12), k


def test_expected_tokens_errors():
    with pytest.raises(ValueError, match=r"k=3 exceeds n=2"):
        expected_tokens_curve([[1, 2, 3], [4, 5]], [3])
    with pytest.raises(ValueError, match="no samples"):
        expected_tokens_curve([[1, 2], []], [1])
