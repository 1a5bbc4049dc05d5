"""A model trained with the causal band-pass (`band_phase` causal) runs with it everywhere by default: its export
says so (metadata, INTEGRATION.md's step 4), `export --target c --device-fs HZ` builds the causal C front end, and
bench / predict stream it causally, so that the C front end on the device agrees with the stream they score; the
other filter stays available by name, with a note (export) or a one-line refusal where it cannot be compared."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_bench_tasks import _beats
from test_predict_targets import export_student

from sqtool.core import SqtoolError
from sqtool.data.tasks import task_model_cfg
from sqtool.export.c_window import front_end_info
from sqtool.firmware_bench.cli import BenchConfig, run_bench
from sqtool.firmware_bench.predict import PredictConfig, predict
from sqtool.models import get_model_cfg


@pytest.fixture(scope="module")
def causal_export(tmp_path_factory) -> Path:
    mc = task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",)).replace(band_phase="causal")
    return export_student(tmp_path_factory.mktemp("causal_af"), mc, ["c"], device_fs=40.0)


def _records():
    return [_beats(f"p0{i}", af, seed=10 * i + j) for i in range(3) for j, af in enumerate((True, False))]


def test_the_export_carries_the_phase_and_builds_the_causal_c_front_end(causal_export):
    md = json.loads((causal_export / "metadata.json").read_text())
    assert md["band_phase"] == "causal" and md["model_cfg"]["band_phase"] == "causal"
    assert front_end_info(causal_export / "c")["filter"] == "causal"          # --device-filter's default
    text = (causal_export / "INTEGRATION.md").read_text()
    assert "**Band-pass 0.5-8 Hz, causal** (the model was trained so" in text
    assert "sosfiltfilt(sos, seg" not in text                                  # not the zero-phase recipe
    assert "band-passed 0.5-8 Hz causally" in (causal_export / "MODEL_CARD.md").read_text()


def test_bench_and_predict_stream_it_causally_and_the_c_front_end_agrees(causal_export, tmp_path):
    recs = _records()
    res = run_bench(BenchConfig(model=str(causal_export), data="arr", runtime=["c_host", "c_window"],
                                callgrind_windows=0, progress=False, out=str(tmp_path / "b")), records=recs)
    assert "filter causal" in res["provenance"]["stream"]
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert rows["c_window"]["status"] == "ok"
    fe = rows["c_window"]["front_end"]
    assert fe["max_lsb"] <= 1 and fe["codes_equal_pct"] > 99.5 and fe["windows"] == 18
    p = predict(PredictConfig(model=str(causal_export), data="arr", runtime="c_window", out=str(tmp_path / "p"),
                              progress=False), records=recs)
    assert p["filter"] == "causal"
    # the zero-phase stream by name: the C front end, built causal, cannot be compared with it
    with pytest.raises(SqtoolError, match="band-passes 'causal'.*this stream 'window'"):
        run_bench(BenchConfig(model=str(causal_export), data="arr", runtime=["c_window"], filter="window",
                              callgrind_windows=0, progress=False, out=str(tmp_path / "w")), records=recs)


def test_the_other_device_filter_by_name_is_built_with_a_note(causal_export, tmp_path):
    from sqtool.export.cli import ExportConfig, export
    run = causal_export.parent / "quantize"
    exp = export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "e"), device_fs=40.0,
                              device_filter="window"))
    assert exp["failed"] == [] and front_end_info(Path(exp["out"]) / "c")["filter"] == "window"
    assert "note: --device-filter window: the network was trained with the causal band-pass" in exp["summary"]
