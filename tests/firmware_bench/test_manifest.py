"""The export manifest contract: export lists every file it wrote and the checkpoints it came from (relative
paths + sha256, parity verdict); bench and predict find everything only through it, check each sha256, work
from any working directory, refuse an export without a manifest or whose parity failed, and a runtime the
user asked for that cannot run is an error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError, sha256_file
from sqtool.core.manifest import FILE_KINDS, MANIFEST, read_manifest
from sqtool.firmware_bench import runtimes as R


def _bench(capsys, *args):
    rc = main(["bench", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _check_manifest(export: Path) -> dict:
    m = json.loads((export / MANIFEST).read_text())
    listed = {f["path"]: f for f in m["files"]}
    on_disk = {p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()
               and p.name not in (MANIFEST, ".lock")}
    assert set(listed) == on_disk                                  # every file the export wrote, nothing else
    for rel, f in listed.items():
        assert f["kind"] in FILE_KINDS, rel
        assert f["sha256"] == sha256_file(export / rel) and f["bytes"] == (export / rel).stat().st_size, rel
    man = read_manifest(export)
    for key, s in m["sources"].items():
        assert "path" not in s and "/" not in s["file"], key      # outside the export: its name only, no path
        assert s["sha256"] == sha256_file(man.source(key)), key    # found beside the export by name and sha256
    assert m["parity"]["report"] == "export_report.json" and "export_report.json" in listed
    return m


def test_export_writes_a_manifest_of_every_file_and_its_sources(export_dir, spec_export_dir):
    m = _check_manifest(export_dir)
    kinds = {f["path"]: f["kind"] for f in m["files"]}
    assert kinds["model_int8.tflite"] == "tflite" and kinds["c/sq_model.c"] == "c-source"
    assert kinds["metadata.json"] == "metadata" and kinds["export_report.json"] == "report"
    assert kinds["heldout.npz"] == "test-vectors"
    assert m["parity"]["passed"] is True and m["parity"]["failed"] == []
    assert m["sources"]["student_int8"]["file"] == "model.pt"
    assert m["sources"]["student_float"]["file"] == "student_float.pt"
    assert "teacher" not in m["sources"]                           # the fixture's compress run names none
    s = _check_manifest(spec_export_dir)                           # the spectral kit: sources, kit, vectors
    kinds = {f["kind"] for f in s["files"]}
    assert {"onnx", "tflite", "c-source", "kit", "test-vectors", "report", "metadata"} <= kinds
    assert set(s["sources"]) == {"student_int8", "student_float"}


@pytest.fixture(scope="module")
def moved_export(tmp_path_factory):
    """An export (ONNX) of a compress run that names its teacher, then the whole tree moved elsewhere."""
    import torch

    from export_fixtures import make_int8_run

    from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
    from sqtool.export.cli import ExportConfig, export
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("mf")
    run = make_int8_run(root / "tree" / "quantize", n_heldout=8, steps=10)
    shutil.copyfile(run / "student_float.pt", root / "tree" / "teacher.pt")     # kind student_float: a teacher
    ck = load_checkpoint(run / "model.pt")
    save_checkpoint(run / "model.pt", kind=ck["kind"], model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    teacher_path=str((root / "tree" / "teacher.pt").resolve()),
                    teacher_sha256=sha256_file(root / "tree" / "teacher.pt"))
    res = export(ExportConfig(model=str(run), target=["onnx"], out=str(root / "tree" / "export")))
    assert res["failed"] == [], res["summary"]
    assert res["manifest"]["sources"]["teacher"]["file"] == "teacher.pt"
    shutil.move(str(root / "tree"), str(root / "moved"))           # the recorded absolute paths are gone now
    return root / "moved" / "export"


def test_bench_torch_runs_from_another_working_directory(moved_export, tmp_path, monkeypatch, capsys):
    _check_manifest(moved_export)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rel = Path("..") / Path(*[".."] * (len(cwd.parts) - 1)) / moved_export.relative_to("/")
    rc, _, err = _bench(capsys, "--model", rel, "--data", "synthetic", "--runtime", "torch",
                        "--out", tmp_path / "b")
    assert rc == 0, err
    rows = {r["runtime"]: r for r in json.loads((tmp_path / "b" / "bench.json").read_text())["runtimes"]}
    assert set(rows) == {"torch_teacher", "torch_student", "brevitas_int8"}
    assert all(r["status"] == "ok" and r["metrics"]["mae"] is not None for r in rows.values()), rows
    assert rows["torch_teacher"]["sha256"] == sha256_file(moved_export.parent / "teacher.pt")


def test_a_requested_runtime_that_cannot_run_is_an_error(moved_export, tmp_path, capsys):
    for asked in ("c_host", "c", "tflm_int8"):                     # by name and by group; ONNX-only export
        out = tmp_path / asked
        rc, _, err = _bench(capsys, "--model", moved_export, "--data", "synthetic", "--runtime", f"onnx,{asked}",
                            "--out", out)
        lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("bench: ", "export: "))]  # minus progress
        assert rc != 0 and len(lines) == 1, err
        assert "cannot run" in lines[0] and "not in its manifest.json" in lines[0], lines[0]
        rows = {r["runtime"]: r for r in json.loads((out / "bench.json").read_text())["runtimes"]}
        assert rows["onnx_int8"]["status"] == "ok"                 # the report is still written


def _copy_tree(export: Path, dst: Path) -> Path:
    """A copy of the export AND its source run (the manifest's relative paths still hold)."""
    shutil.copytree(export.parent, dst, symlinks=True)
    return dst / export.name


def test_bench_checks_the_sha256_of_what_it_loads(moved_export, tmp_path):
    """Every exported file is checked once when the export is loaded (a changed one: TamperedArtifact, whatever
    runtimes are asked for), and again by a runtime loading it (changed after the load); a source checkpoint only
    by the runtime that reads it."""
    from sqtool.core.manifest import TamperedArtifact
    exp = _copy_tree(moved_export, tmp_path / "t")
    art = R.load_artifacts(exp)
    ck = exp.parent / "quantize" / "student_float.pt"
    ck.write_bytes(ck.read_bytes() + b"\0")
    with pytest.raises(TamperedArtifact, match=r"student_float.pt: sha256 differs from .*manifest.json"):
        R.make_runtime("torch_student", art, tmp_path / "w")
    R.make_runtime("brevitas_int8", art, tmp_path / "w")           # the other checkpoint is untouched
    art = R.load_artifacts(exp)                                    # a source is not read at load
    with pytest.raises(TamperedArtifact, match=r"student_float.pt: sha256 differs"):
        R.make_runtime("torch_student", art, tmp_path / "w")
    art = R.load_artifacts(exp, {"student_float": str(exp.parent / "teacher.pt")})   # named instead: not read
    R.make_runtime("torch_student", art, tmp_path / "w")
    ck.unlink()                                                    # a missing one: left to the runtime needing it
    art = R.load_artifacts(exp)
    onnx = exp / "model_int8.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\1")
    with pytest.raises(SqtoolError, match=r"model_int8.onnx: sha256 differs"):
        R.make_runtime("onnx_int8", art, tmp_path / "w")
    with pytest.raises(TamperedArtifact, match=r"model_int8.onnx: sha256 differs"):
        R.load_artifacts(exp)
    (exp / "metadata.json").write_text((exp / "metadata.json").read_text() + " ")
    with pytest.raises(SqtoolError, match=r"metadata.json: sha256 differs"):
        R.load_artifacts(exp)


def test_bench_refuses_an_export_without_manifest_or_failed_parity(moved_export, tmp_path, capsys):
    from export_fixtures import make_int8_run

    from sqtool.export.cli import ExportConfig, export
    exp = _copy_tree(moved_export, tmp_path / "t")
    (exp / MANIFEST).unlink()                                      # a failed / interrupted export
    rc, _, err = _bench(capsys, "--model", exp, "--data", "synthetic", "--runtime", "torch_student",
                        "--out", tmp_path / "b0")
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("bench: ", "export: "))]  # minus progress
    assert rc != 0 and len(lines) == 1 and f"{exp} has no manifest.json" in lines[0], err
    run = make_int8_run(tmp_path / "q", n_heldout=8, steps=0)
    res = export(ExportConfig(model=str(run), target=["onnx"], precision="int8", tol_lsb=-1, out=str(tmp_path / "e")))
    assert res["failed"] and res["manifest"]["parity"]["passed"] is False
    rc, _, err = _bench(capsys, "--model", tmp_path / "e", "--data", "synthetic", "--runtime", "onnx_int8",
                        "--out", tmp_path / "b1")
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("bench: ", "export: "))]  # minus progress
    assert rc != 0 and len(lines) == 1 and "did not pass parity; re-export or pass --allow-failed-parity" in lines[0]
    assert not (tmp_path / "b1" / "bench.json").exists()
    rc, _, err = _bench(capsys, "--model", tmp_path / "e", "--data", "synthetic", "--runtime", "onnx_int8",
                        "--allow-failed-parity", "true", "--out", tmp_path / "b2")
    assert rc == 0, err
    # a report edited to say "passed" does not fool it: the report's sha256 is in the manifest
    rep = tmp_path / "e" / "export_report.json"
    rep.write_text(json.dumps({**json.loads(rep.read_text()), "failed": []}))
    with pytest.raises(SqtoolError, match="export_report.json: sha256 differs"):
        read_manifest(tmp_path / "e").require_parity()


def test_predict_reads_only_the_manifest(spec_export_dir, tmp_path):
    from fwb_helpers import write_wrist_npz

    from sqtool.firmware_bench.predict import PredictConfig, predict
    exp = _copy_tree(spec_export_dir, tmp_path / "t")
    rec = write_wrist_npz(tmp_path / "rec.npz", seconds=30)
    c = exp / "c" / "sq_pipeline.c"
    c.write_text(c.read_text() + "\n")
    with pytest.raises(SqtoolError, match=r"sq_pipeline.c: sha256 differs"):
        predict(PredictConfig(model=str(exp), data=str(rec), out=str(tmp_path / "p0")))
    (exp / MANIFEST).unlink()
    with pytest.raises(SqtoolError, match="has no manifest.json"):
        predict(PredictConfig(model=str(exp), data=str(rec), out=str(tmp_path / "p1")))


def test_a_forced_re_export_lists_only_its_own_files(moved_export, tmp_path, monkeypatch):
    from sqtool.export import parity as P
    from sqtool.export.cli import ExportConfig, export
    exp = _copy_tree(moved_export, tmp_path / "t")
    (exp / "model_int8.tflite").write_bytes(b"left over from an older export")
    cfg = ExportConfig(model=str(exp.parent / "quantize"), target=["onnx"], precision="int8", out=str(exp),
                       force=True)

    def boom(*a, **kw):
        raise KeyboardInterrupt                                    # killed before the export finished
    monkeypatch.setattr(P, "write_report", boom)
    with pytest.raises(KeyboardInterrupt):
        export(cfg)
    assert not (exp / MANIFEST).exists()                           # an unfinished export has no manifest
    with pytest.raises(SqtoolError, match="has no manifest.json"):
        R.load_artifacts(exp)
    monkeypatch.undo()
    res = export(cfg)
    listed = {f["path"] for f in res["manifest"]["files"]}
    assert "model_int8.onnx" in listed and "model_int8.tflite" not in listed
    assert "model_float.onnx" not in listed                        # the first export's, not written again:
    assert not (exp / "model_float.onnx").exists()                 # gone with --force (the folder holds one model)
    assert (exp / "model_int8.tflite").is_file()                   # edited since that export wrote it: kept
    _ = R.load_artifacts(exp)


def test_a_tampered_file_stops_the_bench_even_when_its_runtime_was_not_asked_for(moved_export, tmp_path):
    """`--runtime all` (and the default) skip a runtime whose tool is missing, but a file whose sha256 differs from
    the manifest is an error: what would be measured is not what was exported."""
    from sqtool.core.manifest import TamperedArtifact
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    exp = _copy_tree(moved_export, tmp_path / "t")
    onnx = exp / "model_int8.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\1")
    with pytest.raises(TamperedArtifact, match=r"model_int8.onnx: sha256 differs"):
        run_bench(BenchConfig(model=str(exp), data="synthetic", runtime=["all"], max_records=1, mcu_windows=1,
                              callgrind_windows=0, progress=False, out=str(tmp_path / "b")))


_LOAD = R.load_artifacts


def _changed_after_load(monkeypatch, path: Path) -> None:
    """The bench's load_artifacts, then `path` changed (a run writing into its folder while the bench runs)."""
    def load(*a, **kw):
        art = _LOAD(*a, **kw)
        path.write_bytes(path.read_bytes() + b"\0")
        return art
    monkeypatch.setattr(R, "load_artifacts", load)


def test_a_checkpoint_changed_after_load_stops_the_bench(moved_export, spec_export_dir, tmp_path, monkeypatch):
    """A TamperedArtifact raised when a runtime loads its checkpoint is never a skipped row, not in the default
    runtimes (which skip what cannot run) nor in the C pipeline's reference (left out only when its student_int8 is
    missing): the bench stops, time-domain and spectral."""
    from sqtool.core.manifest import TamperedArtifact
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    exp = _copy_tree(moved_export, tmp_path / "t")
    _changed_after_load(monkeypatch, exp.parent / "teacher.pt")
    with pytest.raises(TamperedArtifact, match=r"teacher.pt: sha256 differs"):
        run_bench(BenchConfig(model=str(exp), data="synthetic", max_records=1, mcu_windows=1, callgrind_windows=0,
                              progress=False, out=str(tmp_path / "b0")))
    for i, (asked, ck) in enumerate((([], "student_float.pt"), (["c_pipeline"], "model.pt"))):
        spec = _copy_tree(spec_export_dir, tmp_path / f"s{i}")
        _changed_after_load(monkeypatch, spec.parent / "quantize" / ck)
        with pytest.raises(TamperedArtifact, match=ck + r": sha256 differs"):
            run_bench(BenchConfig(model=str(spec), data="synthetic", runtime=asked, max_records=1, max_seconds=40,
                                  mcu_windows=1, callgrind_windows=0, out=str(tmp_path / f"b{i + 1}")))


def test_a_changed_source_checkpoint_stops_only_a_runtime_that_reads_it(moved_export, spec_export_dir, tmp_path,
                                                                        capsys):
    """A teacher re-trained into its folder after the export (or a student checkpoint rewritten) changes no exported
    file: bench runs the runtimes that never read it (ONNX, C, TFLite), and stops with the TamperedArtifact line
    when one that reads it is asked for; time-domain and spectral."""
    exp = _copy_tree(moved_export, tmp_path / "t")
    teacher = exp.parent / "teacher.pt"
    teacher.write_bytes(teacher.read_bytes() + b"\0")
    rc, _, err = _bench(capsys, "--model", exp, "--data", "synthetic", "--max-records", 1, "--runtime", "onnx",
                        "--progress", "false", "--out", tmp_path / "b0")
    assert rc == 0, err
    rc, _, err = _bench(capsys, "--model", exp, "--data", "synthetic", "--max-records", 1, "--runtime",
                        "onnx,torch_teacher", "--progress", "false", "--out", tmp_path / "b1")
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("bench: ", "export: "))]  # minus progress
    assert rc != 0 and len(lines) == 1 and "teacher.pt: sha256 differs from" in lines[0], err
    assert "cannot run" not in lines[0]                            # stopped, not a runtime that could not run
    spec = _copy_tree(spec_export_dir, tmp_path / "s")
    for ck in ("model.pt", "student_float.pt"):                    # student_int8 and student_float
        p = spec.parent / "quantize" / ck
        p.write_bytes(p.read_bytes() + b"\0")
    rc, _, err = _bench(capsys, "--model", spec, "--data", "synthetic", "--max-records", 1, "--max-seconds", 40,
                        "--runtime", "c_host,tflm,litert", "--callgrind-windows", 0, "--out", tmp_path / "b2")
    assert rc == 0, err
    rc, _, err = _bench(capsys, "--model", spec, "--data", "synthetic", "--max-records", 1, "--max-seconds", 40,
                        "--runtime", "c_host,torch_student", "--callgrind-windows", 0, "--out", tmp_path / "b3")
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("bench: ", "export: ", "note: "))]
    assert rc != 0 and len(lines) == 1 and "student_float.pt: sha256 differs from" in lines[0], err
