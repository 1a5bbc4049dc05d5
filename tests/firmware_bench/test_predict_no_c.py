"""predict of an export without C (`export --target onnx,tflite`; audit: the default runtime failed "has no
c/sq_model.c", and --runtime onnx ended `next: build .../c/*.c` for a c/ that does not exist): the default falls back
to what the manifest has (c, else tflite int8, else onnx int8), said in one note line; summary.json lists only the
columns its CSVs have and the units of outputs with truth; a model output named as predict's own column is refused."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from test_predict_targets import export_student

from sqtool.core import SqtoolError
from sqtool.data.record import Label, Record
from sqtool.firmware_bench.predict import PredictConfig, output_columns, predict, print_results


def _rr_cfg():
    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    mc = task_model_cfg("rr", get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    return mc.replace(outputs=("rr_bpm", "quality_logit"), units=("breaths/min", "logit"),     # the quality head
                      target_mean=(15.0, 0.0), target_std=(5.0, 1.0))


def _export(root: Path, targets: list[str]) -> Path:
    return export_student(root, _rr_cfg(), targets)


@pytest.fixture(scope="module")
def no_c(tmp_path_factory):
    root = tmp_path_factory.mktemp("no_c")
    return {"onnx,tflite": _export(root / "ot", ["onnx", "tflite"]), "onnx": _export(root / "o", ["onnx"])}


def _record() -> Record:
    t = np.arange(90 * 40) / 40.0
    ppg = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 0.25 * t)
    rr = Label(np.full(7, 15.0), times=np.arange(7) * 10.0, unit="breaths/min", kind="window", window_s=30.0)
    return Record("icu", "p01", "p01_icu", {"ppg": ppg}, {"ppg": 40.0}, labels={"rr": rr})


@pytest.mark.parametrize("which,runtime", [("onnx,tflite", "litert_int8"), ("onnx", "onnx_int8")])
def test_the_default_runtime_is_what_the_export_has(no_c, tmp_path, capsys, which, runtime):
    res = predict(PredictConfig(model=str(no_c[which]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=[_record()])
    assert res["runtime"] == runtime and res["recordings"][0]["windows"] == 7
    assert [n for n in res["notes"] if n.startswith(f"runtime {runtime}: default: ")]     # one note line says so
    print_results(res)
    out = capsys.readouterr().out
    nxt = [ln for ln in out.splitlines() if ln.startswith("next: ")]
    assert len(nxt) == 1 and "/c/" not in nxt[0] and "model_int8.onnx" in nxt[0]
    assert ("model_int8.tflite" in nxt[0]) == (which == "onnx,tflite")


def test_the_summary_lists_the_csvs_columns_and_the_units_of_truth(no_c, tmp_path, capsys):
    res = predict(PredictConfig(model=str(no_c["onnx,tflite"]), data="icu", runtime="onnx",
                                out=str(tmp_path / "p"), progress=False), records=[_record()])
    with open(tmp_path / "p" / res["recordings"][0]["csv"]) as f:
        header = next(csv.reader(f))
    assert list(res["columns"]) == header == ["time_s", "rr_bpm", "p_quality", "flagged", "truth_rr_bpm"]
    assert res["truth_units"] == {"rr_bpm": "breaths/min"}                   # not quality_logit: no truth
    print_results(res)
    assert "/c/" not in capsys.readouterr().out


def test_a_model_output_named_as_a_predict_column_is_one_line():
    assert [c for c, _, _ in output_columns(["spo2", "quality_logit"], ["%", "logit"])] == ["spo2", "p_quality"]
    for outputs in (["flagged", "quality_logit"], ["time_s"], ["truth_x"], ["p_quality", "quality_logit"]):
        with pytest.raises(SqtoolError, match=f"the model's output '{outputs[0]}' is also a column sqtool predict"):
            output_columns(outputs, ["%", "logit"][:len(outputs)])


@pytest.mark.parametrize("targets,runtime", [(["onnx"], "onnx_float"), (["onnx", "tflite"], "litert_float")])
def test_a_float_only_export_runs_on_its_float_network(tmp_path, targets, runtime):
    """An export of float models only (a teacher, `--precision float`): the default runtime is its float network
    (an audit: it failed 'has none of c/sq_model.c, model_int8.tflite, model_int8.onnx', where INTEGRATION.md sends
    the integrator to predict to check an implementation)."""
    from export_fixtures import make_int8_run

    from sqtool.export.cli import ExportConfig, export
    run = make_int8_run(tmp_path / "q", _rr_cfg(), n_heldout=4, seed=1)
    exp = export(ExportConfig(model=str(run), target=targets, precision="float", out=str(tmp_path / "e")))
    assert exp["failed"] == [] and not (tmp_path / "e" / "model_int8.onnx").exists()
    res = predict(PredictConfig(model=str(exp["out"]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=[_record()])
    assert res["runtime"] == runtime and res["recordings"][0]["windows"] == 7
    assert [n for n in res["notes"] if n.startswith(f"runtime {runtime}: default: ")
            and "float network (a float-only export)" in n], res["notes"]


def test_the_filter_a_device_runs_is_an_option(no_c, tmp_path):
    """`--filter causal` runs a time-domain model's band-pass as a sample-by-sample device does (INTEGRATION.md sends
    the integrator to it to see what that costs): other outputs, recorded in summary.json; a value it does not know,
    or any but the default for a spectral model (its front end is the model's), is one line."""
    runs = {f: predict(PredictConfig(model=str(no_c["onnx"]), data="icu", filter=f, out=str(tmp_path / f),
                                     progress=False), records=[_record()]) for f in ("window", "causal", "none")}
    assert [runs[f]["filter"] for f in runs] == ["window", "causal", "none"]
    rows = {f: [r["rr_bpm"] for r in csv.DictReader(open(tmp_path / f / res["recordings"][0]["csv"]))]
            for f, res in runs.items()}
    assert [len(v) for v in rows.values()] == [7, 7, 7] and rows["causal"] != rows["window"]
    with pytest.raises(SqtoolError, match="--filter sideways: choose one of window, causal, none"):
        predict(PredictConfig(model=str(no_c["onnx"]), data="icu", filter="sideways", out=str(tmp_path / "x"),
                              progress=False), records=[_record()])
    assert not (tmp_path / "x").exists()


def test_a_spectral_model_takes_no_filter(tmp_path):
    from export_fixtures import make_spec_int8_run

    from sqtool.export.cli import ExportConfig, export
    run = make_spec_int8_run(tmp_path / "q", "spec_student_xs")
    exp = export(ExportConfig(model=str(run), target=["onnx"], out=str(tmp_path / "e"), progress=False))
    with pytest.raises(SqtoolError, match="is a spectral model, whose fixed-point front end"):
        predict(PredictConfig(model=str(exp["out"]), data="synthetic", filter="causal", out=str(tmp_path / "p"),
                              progress=False))


@pytest.mark.parametrize("family", ["beat_trees", "resp_spec"])
def test_a_front_end_models_next_line_names_every_step_an_app_runs(family, capsys):
    """af_beats / rr_spec: the network reads the front end's features or spectra of the preprocessed window, so
    the app must run INTEGRATION.md's steps 1-7 too (an audit: `next:` sent it to steps 8-10 only)."""
    res = {"warnings": [], "recordings": [], "runtime": "onnx_float", "run_dir": "/tmp/p", "task": "af",
           "model_family": family, "model_dir": "/tmp/export", "network_files": ["model_float.onnx"]}
    print_results(res)
    nxt = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next: ")]
    assert len(nxt) == 1 and "INTEGRATION.md" in nxt[0] and "steps 1-10" in nxt[0] and "steps 8" not in nxt[0]
