"""SOURCE_DATE_EPOCH (the reproducible-builds convention) makes a re-export of the same checkpoint byte-identical in
every deployable file (a pipeline caching on file hashes re-shipped an unchanged model: metadata.json, the ONNX and
TFLite files and the C differed by the `created` stamp alone), and a bad value is one line."""
from __future__ import annotations

import hashlib

import pytest

from sqtool.core import SqtoolError
from sqtool.core.io import created_stamp
from sqtool.export.cli import ExportConfig, export

SHIPPED = ("metadata.json", "model_int8.onnx", "model_int8.tflite", "model_float.onnx", "c/sq_model.h", "c/sq_model.c")


def _hashes(folder):
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in SHIPPED if (folder / f).is_file()}


def test_two_exports_of_one_checkpoint_are_byte_identical_under_source_date_epoch(int8_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1774728000")
    a = export(ExportConfig(model=str(int8_run), target=["onnx", "tflite", "c"], out=str(tmp_path / "a"),
                            progress=False))
    b = export(ExportConfig(model=str(int8_run), target=["onnx", "tflite", "c"], out=str(tmp_path / "b"),
                            progress=False))
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(ha) >= 5 and ha == hb, {k: (ha[k], hb.get(k)) for k in ha if ha[k] != hb.get(k)}
    assert '"created": "2026-03-28T20:00:00"' in (tmp_path / "a" / "metadata.json").read_text()
    assert a and b


def test_created_is_now_without_it_and_a_bad_value_is_one_line(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert created_stamp()[:2] == "20"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(SqtoolError, match=r"SOURCE_DATE_EPOCH='yesterday': must be whole seconds since 1970"):
        created_stamp()
