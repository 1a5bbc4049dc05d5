"""The block that names the model behind a result (`provenance.model_provenance`): bench.json and bench.md's
header name the model by its content id (model_sha256, the same for every rebuild of the same weights) and the
checkpoint file's hash, each under its own name; the hash of the artifact a runtime read is model_file_sha256."""
from __future__ import annotations

import json

from fwb_helpers import write_wrist_npz

from sqtool.firmware_bench.cli import BenchConfig, run_bench


def _ids(export_dir) -> tuple[dict, dict]:
    md = json.loads((export_dir / "metadata.json").read_text())
    man = json.loads((export_dir / "manifest.json").read_text())
    return md, {f["path"]: f["sha256"] for f in man["files"]}


def test_bench_names_the_model_by_its_content_id(spec_export_dir, tmp_path):
    md, man = _ids(spec_export_dir)
    rec = write_wrist_npz(tmp_path / "a.npz", seconds=20, ppg2=True)
    res = run_bench(BenchConfig(model=str(spec_export_dir), data=str(rec), runtime=["c"], callgrind_windows=0,
                                out=str(tmp_path / "bench")))
    p = res["provenance"]
    assert len(md["model_sha256"]) == 64 and p["model_sha256"] == md["model_sha256"]
    assert p["source_sha256"] == md["source_sha256"] and p["export_git_sha"] == md["git_sha"]
    assert p["model_file"] == "model_int8.tflite"
    assert p["model_file_sha256"] == man["model_int8.tflite"] != p["model_sha256"]
    head = next(ln for ln in (tmp_path / "bench" / "bench.md").read_text().splitlines() if ln.startswith("sqtool "))
    assert f"model_sha256 {md['model_sha256'][:16]}" in head and f"checkpoint file {md['source_sha256'][:16]}" in head
    assert p["model_file_sha256"][:16] not in head                 # the .tflite file's hash is not the model's name


def test_predict_outputs_say_which_model_made_them(spec_export_dir, tmp_path):
    """summary.json carries the same provenance block as bench.json (one function builds both)."""
    from sqtool.firmware_bench.predict import PredictConfig, predict
    from sqtool.firmware_bench.provenance import model_provenance
    from sqtool.firmware_bench.runtimes import load_artifacts
    md, _ = _ids(spec_export_dir)
    rec = write_wrist_npz(tmp_path / "a.npz", seconds=20, ppg2=True)
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(rec), runtime="c", out=str(tmp_path / "p")))
    saved = json.loads((tmp_path / "p" / "summary.json").read_text())
    p = saved["provenance"]
    assert p == res["provenance"] == model_provenance(load_artifacts(spec_export_dir))
    assert p["model_sha256"] == md["model_sha256"] and p["source_sha256"] == md["source_sha256"]
    assert p["sqtool_version"] and p["git_sha"] and p["export_git_sha"] == md["git_sha"]


def test_predict_reads_the_embedded_synthetic_recordings_as_bench_does(spec_export_dir, tmp_path, capsys):
    """`--data synthetic` (bench takes it, and bench's next line points to predict): the generated recordings with
    their truth, not an internal TypeError; an unknown runtime is still its own one line."""
    from sqtool.cli import main
    out = tmp_path / "p"
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "synthetic", "--max-seconds", "30",
               "--runtime", "c", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads((out / "summary.json").read_text())
    assert res["data"] == "synthetic" and len(res["recordings"]) == 4
    assert all(r["truth"] and r["metrics"]["mae"] is not None and r["windows"] == 12 for r in res["recordings"])
    assert all((out / r["csv"]).is_file() for r in res["recordings"])
    assert f"next: sqtool bench --model {spec_export_dir} --data synthetic" in cap.out
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "synthetic", "--runtime", "foo",
               "--out", str(tmp_path / "p2")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.splitlines() == [err] and "--runtime foo: unknown" in err


def test_time_domain_bench_names_the_model_by_its_content_id(export_dir, tmp_path):
    """The time-domain bench's provenance is the same block (model_provenance): model_sha256 is the model's content
    id, not the .tflite file's hash (that is model_file_sha256), and bench.md's header says both ids by name."""
    from sqtool.firmware_bench.provenance import model_provenance
    from sqtool.firmware_bench.runtimes import load_artifacts
    md, man = _ids(export_dir)
    res = run_bench(BenchConfig(model=str(export_dir), data="synthetic", runtime=["c_host"], max_records=1,
                                callgrind_windows=0, progress=False, out=str(tmp_path / "bench")))
    p = res["provenance"]
    assert len(md["model_sha256"]) == 64 and p["model_sha256"] == md["model_sha256"]
    assert p["model_file"] == "model_int8.tflite" and p["model_file_sha256"] == man["model_int8.tflite"]
    want = model_provenance(load_artifacts(export_dir), "model_int8.tflite")
    assert {k: p[k] for k in want} == want and p["data"] == "synthetic" and p["records"] == 1
    head = next(ln for ln in (tmp_path / "bench" / "bench.md").read_text().splitlines() if ln.startswith("sqtool "))
    assert f"model_sha256 {md['model_sha256'][:16]}" in head and f"checkpoint file {md['source_sha256'][:16]}" in head
    assert p["model_file_sha256"][:16] not in head


def test_spectral_bench_names_synthetic_data(spec_export_dir, tmp_path):
    """--data synthetic: bench.json and bench.md say 'synthetic', not 'records' (recordings a caller hands in)."""
    out = tmp_path / "bench"
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="synthetic", runtime=["onnx_int8"], max_records=1,
                                max_seconds=30, callgrind_windows=0, progress=False, out=str(out)))
    assert res["provenance"]["data"] == json.loads((out / "bench.json").read_text())["provenance"]["data"] == "synthetic"
    assert "\ndata synthetic: 1 recordings" in (out / "bench.md").read_text()
