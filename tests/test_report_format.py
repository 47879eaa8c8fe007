"""report/format.py: the one place numbers become text, for both shapes a value arrives in (a
VariantSummary float, or summary.json's null / "inf")."""

from __future__ import annotations

import math

import pytest

from thinkcost.report.format import ci, finite, num, pct, sort_key


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (None, "–"),
        (math.nan, "–"),
        ("not a number", "–"),
        (math.inf, "∞"),
        ("inf", "∞"),
        (-math.inf, "-∞"),
        ("-inf", "-∞"),
        (1.005, "1.00"),  # str.format's rounding of the binary value, as every renderer did
        (3, "3.00"),
    ],
)
def test_num_prints_missing_and_infinite_values_the_same_way_in_both_shapes(x, text):
    assert num(x) == text


def test_scaled_percentages_and_intervals():
    assert num(0.125, "{:.1f}", 100) == "12.5"
    assert pct(0.125) == "12%" and pct(None) == "–%"
    assert ci((0.1, 0.9), "{:.0f}", 100) == " (10–90)"
    assert ci([1.0, None]) == "" and ci((math.nan, 2.0)) == "" and ci(None) == ""
    assert ci((1.0, math.inf)) == " (1.00–∞)"


def test_sort_keys_are_exact_and_put_missing_values_last():
    assert sort_key(0.1 + 0.2) == repr(0.1 + 0.2)  # not the rounded cell text
    assert sort_key(5) == "5.0"
    assert (sort_key("inf"), sort_key(-math.inf)) == ("Infinity", "-Infinity")
    assert sort_key(None) == sort_key(math.nan) == ""


def test_finite_drops_what_cannot_be_plotted():
    assert finite(2) == 2.0
    assert finite("inf") is finite(math.inf) is finite(None) is finite(math.nan) is None
