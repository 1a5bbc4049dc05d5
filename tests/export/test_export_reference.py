"""TFLite's fixed-point arithmetic in reference.py, checked against exact integer definitions."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sqtool.export import reference as R


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-7, max_value=50.0, allow_nan=False))
def test_quantize_multiplier_represents_the_scale(m):
    q, shift = R.quantize_multiplier(m)
    assert (1 << 30) <= q < (1 << 31)
    assert abs(q * 2.0 ** (shift - 31) - m) <= 2.0 ** (shift - 32) * 1.0000001


def _single_exact(x, q, shift):
    """round-half-up of x * q / 2^(31 - shift), with Python integers."""
    return math.floor(Fraction(x * q, 1 << (31 - shift)) + Fraction(1, 2))


def _double_exact(x, q, shift):
    """gemmlowp's definition written with Python integers: round the doubled high half, then round the shift."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x * (1 << left)
    ab = a * q
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    hi = (abs(v) >> 31) * (1 if v >= 0 else -1)       # C division: truncation toward zero
    if right == 0:
        return hi
    r = Fraction(hi, 1 << right)                       # round half away from zero
    return math.floor(r + Fraction(1, 2)) if r >= 0 else -math.floor(-r + Fraction(1, 2))


@settings(max_examples=80, deadline=None)
@given(st.integers(-(1 << 24), 1 << 24), st.floats(min_value=1e-6, max_value=0.99))
def test_requantization_modes_match_their_definitions(x, m):
    q, shift = R.quantize_multiplier(m)
    assert int(R.multiply_by_quantized_multiplier(x, q, shift, "single")) == _single_exact(x, q, shift)
    assert int(R.multiply_by_quantized_multiplier(x, q, shift, "double")) == _double_exact(x, q, shift)


def test_double_rounding_differs_from_single_on_a_known_case():
    # m = 0.5 - 2^-32: for odd x, x * m lies just below a tie. Single rounding -> (x - 1) / 2. TFLite's
    # double rounding first rounds x * q / 2^31 up to exactly x, then rounds x / 2 half away -> (x + 1) / 2:
    # the mechanism behind the 1-LSB flips between stock TFLite and Brevitas.
    q, shift = (1 << 31) - 1, -1
    for x in (1, 3, 101, 12345):
        assert int(R.multiply_by_quantized_multiplier(x, q, shift, "single")) == (x - 1) // 2
        assert int(R.multiply_by_quantized_multiplier(x, q, shift, "double")) == (x + 1) // 2


def test_vectorised_over_channels():
    x = np.arange(-50, 50, dtype=np.int64).reshape(10, 10) * 1000
    q = np.array([R.quantize_multiplier(v)[0] for v in np.linspace(0.001, 0.01, 10)])
    sh = np.array([R.quantize_multiplier(v)[1] for v in np.linspace(0.001, 0.01, 10)])
    y = R.multiply_by_quantized_multiplier(x, q, sh, "double")
    for i in range(10):
        for j in range(10):
            assert y[i, j] == _double_exact(int(x[i, j]), int(q[j]), int(sh[j]))
