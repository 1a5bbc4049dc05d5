"""JSON files sqtool writes are RFC 8259 JSON: a non-finite float is null, never the bare NaN / Infinity tokens that
strict parsers (JavaScript's JSON.parse, Go, serde_json) reject; files written before that read the same."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import write_metrics
from sqtool.core.io import dumps_json, finite_number, finite_or_none, nan_if_none, read_json
from tests.strict_json import strict_loads


@dataclasses.dataclass
class Cell:
    value: float
    ci: tuple


def test_write_metrics_writes_every_non_finite_value_as_null(tmp_path):
    nan, inf = float("nan"), float("inf")
    m = {"auroc": nan, "sqnr_db": [inf, 31.5, -inf], "ci95": (nan, 0.25), "f32": np.float32("nan"),
         "f64": np.float64(inf), "arr": np.array([[1.0, np.nan], [np.inf, 2.0]]), "int": np.int64(3),
         "ok": np.float32(0.5), "nested": {"per_subject": {"s1": {"mae": nan, "n": 0}}}, "cell": Cell(nan, (1.0, inf)),
         "path": Path("/runs/x"), "none": None, "text": "NaN", "flag": np.bool_(True)}
    write_metrics(tmp_path, m)
    got = strict_loads((tmp_path / "metrics.json").read_text())
    assert got == {"auroc": None, "sqnr_db": [None, 31.5, None], "ci95": [None, 0.25], "f32": None, "f64": None,
                   "arr": [[1.0, None], [None, 2.0]], "int": 3, "ok": 0.5,
                   "nested": {"per_subject": {"s1": {"mae": None, "n": 0}}}, "cell": {"value": None, "ci": [1.0, None]},
                   "path": "/runs/x", "none": None, "text": "NaN", "flag": True}
    assert m["auroc"] != m["auroc"] and isinstance(m["arr"], np.ndarray)          # the caller's dict is untouched


def test_a_value_the_conversion_misses_fails_loudly_instead_of_writing_nan(tmp_path):
    with pytest.raises(ValueError):
        dumps_json({float("nan"): 1})                           # a NaN key: json would write "NaN" unchecked
    with pytest.raises(TypeError, match="not JSON serialisable: set"):
        write_metrics(tmp_path, {"x": {1, 2}})
    assert not (tmp_path / "metrics.json").exists()


def test_old_files_with_nan_tokens_and_new_files_with_null_read_the_same(tmp_path):
    (tmp_path / "old.json").write_text('{"auroc": NaN, "ci": [-Infinity, Infinity], "mae": 1.5}')
    write_metrics(tmp_path, {"auroc": float("nan"), "ci": [-math.inf, math.inf], "mae": 1.5}, "new.json")
    assert read_json(tmp_path / "old.json") == read_json(tmp_path / "new.json") == {"auroc": None, "ci": [None, None],
                                                                                  "mae": 1.5}
    assert math.isnan(nan_if_none(None)) and nan_if_none(2) == 2.0
    assert [finite_number(v) for v in (None, math.nan, np.float32("inf"), 0, np.float64(1.5))] == [
        False, False, False, True, True]
    assert np.isnan(np.asarray(read_json(tmp_path / "new.json")["ci"], float)).all()     # arrays: NaN again
    assert finite_or_none((np.float32(1.5), [math.nan])) == [1.5, [None]]
