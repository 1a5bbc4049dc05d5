"""An export made with `--prefix hr2` (every C symbol and file renamed, so two models link into one image) runs on
every host path as the same model exported without one: predict (the C pipeline, the C network), bench (c_host,
c_host_single, c_pipeline, the Cortex-M4 under QEMU) and the pipeline firmware harness give the same heart rates and
int8 outputs bit for bit, built from exactly the files the export ships (c/hr2_*.c)."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

from sqtool.firmware_bench import spectral as S
from sqtool.firmware_bench.cli import BenchConfig, run_bench
from sqtool.firmware_bench.predict import PredictConfig, predict
from sqtool.firmware_bench.runtimes import load_artifacts

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{prefix: export folder} of one spectral int8 model exported for the C target as sq (default) and hr2."""
    import torch

    from export_fixtures import make_spec_int8_run
    from sqtool.export.cli import ExportConfig, export
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("prefix")
    run = make_spec_int8_run(root / "quantize", "spec_student_xs", n_heldout=0, n_calib=16)
    out = {}
    for prefix in ("sq", "hr2"):
        res = export(ExportConfig(model=str(run), target=["c"], prefix=prefix, out=str(root / prefix),
                                  random_windows=8))
        assert res["failed"] == [], res["summary"]
        out[prefix] = root / prefix
    assert not list((out["hr2"] / "c").glob("sq_*")) and (out["hr2"] / "c" / "hr2_pipeline.c").is_file()
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("prefix_data")
    write_wrist_npz(d / "a.npz", seconds=30, ppg2=True)
    write_wrist_npz(d / "b.npz", seconds=20, hr_bpm=120, seed=1, ppg2=True)
    return d


def _csvs(res, out) -> list[list[list[str]]]:
    return [list(csv.reader(open(out / r["csv"]))) for r in res["recordings"]]


def test_the_prefix_is_recorded_and_found_from_the_file_names(exports):
    art = load_artifacts(exports["hr2"])
    assert art.metadata["c_prefix"] == "hr2" and art.c_prefix == "hr2" and art.c_name("model.c") == "c/hr2_model.c"
    art.metadata.pop("c_prefix")                 # an export made before metadata.json recorded it
    assert art.c_prefix == "hr2" and art.c_dir() == exports["hr2"] / "c"
    assert load_artifacts(exports["sq"]).c_prefix == "sq"


def test_the_export_report_names_the_file_a_prefixed_export_ships(exports):
    """The C network's parity rows were checked on the sq_ copy the kit then deletes: the report names what ships."""
    import json
    files = [r["file"] for r in json.loads((exports["hr2"] / "export_report.json").read_text())["rows"]
             if "C single rounding" in r["artifact"]]
    assert files == ["c/hr2_model.c (checked as c/sq_model.c: the same code, its symbols renamed)"]


@pytest.mark.parametrize("runtime", ["", "c"])
def test_predict_on_a_prefixed_export_gives_the_unprefixed_heart_rates(exports, data, runtime, tmp_path):
    got = {}
    for prefix, model in exports.items():
        res = predict(PredictConfig(model=str(model), data=str(data), runtime=runtime, out=str(tmp_path / prefix)))
        assert res["runtime"] == ("c_pipeline" if not runtime else "c_host_single")
        got[prefix] = _csvs(res, tmp_path / prefix)
    assert len(got["sq"]) == 2 and got["hr2"] == got["sq"]


def _bench(exports, monkeypatch, tmp_path, **kw) -> tuple[dict, dict]:
    """Bench each export: ({prefix: {runtime: row}}, {prefix: {runtime: per-window heart rate}})."""
    hrs, rows = {}, {}
    report = S.write_spectral_report

    def keep(run_dir, res, recs, hr):                  # the per-window heart rate of every runtime
        hrs[run_dir.name] = hr
        return report(run_dir, res, recs, hr)
    monkeypatch.setattr(S, "write_spectral_report", keep)
    for prefix, model in exports.items():
        res = run_bench(BenchConfig(model=str(model), out=str(tmp_path / prefix), **kw))
        rows[prefix] = {r["runtime"]: r for r in res["runtimes"]}
        assert all(r["status"] == "ok" for r in rows[prefix].values()), rows[prefix]
    assert set(hrs["hr2"]) == set(hrs["sq"]) == {*rows["sq"], "baseline"}     # the classic baseline too
    for k in hrs["sq"]:
        assert np.array_equal(hrs["hr2"][k], hrs["sq"][k], equal_nan=True), k
    return rows, hrs


def test_bench_on_a_prefixed_export_gives_the_unprefixed_heart_rates(exports, data, tmp_path, monkeypatch):
    rows, hrs = _bench(exports, monkeypatch, tmp_path, data=str(data), runtime=["c", "c_pipeline"],
                       callgrind_windows=2)
    assert set(rows["hr2"]) == {"c_host", "c_host_single", "c_pipeline"} and np.isfinite(hrs["hr2"]["c_host"]).all()
    hr2 = rows["hr2"]
    assert hr2["c_pipeline"]["exact_hops_pct"] == 100.0 and hr2["c_pipeline"]["file"].endswith("c/hr2_pipeline.c")
    assert hr2["c_host"]["file"].endswith("c/hr2_model.c") and "hr2_model_run" in hr2["c_host"]["instructions_tool"]
    assert hr2["c_host"]["instructions_per_inference"] > 0                # callgrind counted hr2_model_run
    assert hr2["c_host"]["arena_bytes"] == rows["sq"]["c_host"]["arena_bytes"]


def test_the_pipeline_harness_builds_a_prefixed_export(exports, tmp_path):
    """mcu/pipeline_bench.c (written against sq_pipeline.h) on the hr2 pipeline, with the per-stage brackets
    (SQ_PL_BENCH in the harness, HR2_PL_BENCH in the export's C): the results of the sq export's."""
    from sqtool.firmware_bench import pipeline_fw as PF
    frames = np.fromfile(exports["sq"] / "test_vectors" / "recording.bin", "<i2").reshape(-1, 2 + 3 + 1).T
    x16, gap = frames[:-1], frames[-1]                                  # ppg, ppg2, acc x, y, z; the gap flag
    got = {}
    for prefix, model in exports.items():
        fw = PF.build_pipeline(model / "c", "host", tmp_path / prefix, staged=True, chunk=50, prefix=prefix)
        got[prefix] = PF.run_pipeline(fw, x16, gap, count=False).results
    assert got["hr2"].keys() == got["sq"].keys() and len(got["sq"]["hr_mbpm"]) > 0
    assert all(np.array_equal(got["hr2"][k], got["sq"][k]) for k in got["sq"])


def test_bench_on_the_m4_runs_a_prefixed_export(exports, data, cross_tools, tmp_path, monkeypatch):
    """The firmware harness (mcu/harness_main.c calls sq_model_run) on the hr2 network under QEMU."""
    rows, hrs = _bench(exports, monkeypatch, tmp_path, data=str(data / "a.npz"), runtime=["c_host", "mcu_m4"],
                       mcu_windows=3, callgrind_windows=0)
    m4 = rows["hr2"]["mcu_m4"]
    assert m4["exact_pct"] == 100.0 and m4["instructions_per_inference"] > 1e4
    assert m4["instructions_per_inference"] == rows["sq"]["mcu_m4"]["instructions_per_inference"]
    assert np.isfinite(hrs["hr2"]["mcu_m4"][:3]).all()
