"""`sqtool export --force` into an earlier export's folder: the earlier export's files are gone before this export
writes or builds anything (the kits' Makefiles compile c/*.c), so its build checks compile only what it wrote, a rerun
behaves as the first run, and the folder holds one model; a file edited since the earlier export wrote it stays."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from export_fixtures import make_spec_int8_run
from sqtool.core import SqtoolError
from sqtool.export.cli import ExportConfig, export

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="no gcc / make")


@pytest.fixture(scope="module")
def spec_run(tmp_path_factory):
    return make_spec_int8_run(tmp_path_factory.mktemp("force") / "run", "spec_student_xs", n_heldout=8)


@pytest.fixture(scope="module")
def spec_kit(spec_run, tmp_path_factory) -> Path:
    """A spectral model's C export with its kit (c/sq_pipeline.c, c/sq_frontend.c, ...)."""
    out = tmp_path_factory.mktemp("kit") / "e"
    assert export(ExportConfig(model=str(spec_run), target=["c"], out=str(out)))["failed"] == []
    assert (out / "c" / "sq_pipeline.c").is_file()
    return out


def _listed(out: Path) -> set[str]:
    return {f["path"] for f in json.loads((out / "manifest.json").read_text())["files"]}


def test_a_time_domain_model_over_a_spectral_kit_builds_only_its_own_c(spec_kit, int8_run, tmp_path):
    """The tester's `cp -r e1 mix; export --model q_td --target c --device-fs 64 --out mix --force` failed in the
    kit's host build on the spectral kit's c/sq_pipeline.c (#error single rounding), left no manifest, and every
    rerun failed the same way."""
    out = tmp_path / "mix"
    shutil.copytree(spec_kit, out)
    for _ in range(2):                                       # a rerun behaves as the first run
        res = export(ExportConfig(model=str(int8_run), target=["c"], device_fs=64.0, out=str(out), force=True,
                                  max_windows=4))
        assert res["failed"] == [] and (out / "manifest.json").is_file()
        assert not list((out / "c").glob("sq_pipeline*")) and not (out / "c" / "sq_frontend.c").exists()
        assert all((out / rel).is_file() for rel in _listed(out)) and "c/sq_window.c" in _listed(out)


def test_a_new_prefix_over_an_earlier_kit_passes_its_parity_at_once(spec_kit, spec_run, tmp_path):
    """`export --model q --target c --prefix hr2 --out mix3 --force` over an sq kit: exit 3 (the kit compiled the
    stale c/sq_pipeline.c, which includes an sq_model.h no longer there), passing only on the second run."""
    out = tmp_path / "mix3"
    shutil.copytree(spec_kit, out)
    res = export(ExportConfig(model=str(spec_run), target=["c"], prefix="hr2", out=str(out), force=True))
    assert res["failed"] == []
    assert sorted(p.name for p in (out / "c").glob("sq_*")) == [] and (out / "c" / "hr2_pipeline.c").is_file()


def test_an_unfinished_exports_files_go_with_the_next_forced_export(spec_run, int8_run, tmp_path, monkeypatch):
    """An export that failed (no manifest.json) kept its c/ files forever after a --force re-export: it now leaves
    a record of what it wrote (hidden, never shipped in a manifest), and the re-export removes those files."""
    from sqtool.export import window_kit

    def broken(out, make="make", codes=False):
        raise SqtoolError(f"{out}: the kit's host build failed: (test)")
    out = tmp_path / "unf"
    with monkeypatch.context() as m:
        m.setattr(window_kit, "run_example", broken)
        with pytest.raises(SqtoolError, match=r"host build failed: \(test\)"):
            export(ExportConfig(model=str(int8_run), target=["c"], device_fs=64.0, out=str(out), max_windows=4))
    assert not (out / "manifest.json").exists() and (out / "c" / "sq_window.c").is_file()
    (out / "mine.txt").write_text("x")                       # the user's own: never in a record, kept
    res = export(ExportConfig(model=str(spec_run), target=["c"], out=str(out), force=True))
    assert res["failed"] == [] and not list(out.glob(".unfinished*")) and (out / "mine.txt").is_file()
    left = [p.name for p in (out / "c").iterdir() if p.name.startswith(("sq_window", "sq_tracker"))]
    assert left == [] and all((out / rel).is_file() for rel in _listed(out))


def test_a_prefix_without_the_c_target_is_refused_before_any_folder(spec_run, tmp_path):
    """A spectral model's --prefix names its C pipeline: with no C target it would be recorded in config.yaml and
    applied nowhere."""
    with pytest.raises(SqtoolError, match=r"^--prefix hr2: for the C target of a spectral model \(its pipeline's "
                                          r"symbol prefix\); this export writes no C$"):
        export(ExportConfig(model=str(spec_run), target=["onnx"], prefix="hr2", out=str(tmp_path / "e")))
    assert not (tmp_path / "e").exists()


def test_a_prefix_starting_with_a_digit_is_told_so(spec_run, tmp_path, capsys):
    """`--prefix 2hr` was refused with 'must be lower-case letters and digits', which it is: the rule it breaks
    (a C identifier starts with a letter) is said now."""
    from sqtool.cli import main
    assert main(["export", "--model", str(spec_run), "--target", "c", "--prefix", "2hr",
                 "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "C prefix '2hr' must be lower-case letters and digits, starting with a letter" in err[0]
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("where", ["remove_leftovers", "save_config"])
def test_a_forced_export_killed_before_or_after_removing_the_earlier_files_is_redone_clean(
        spec_kit, int8_run, tmp_path, monkeypatch, where):
    """A Ctrl-C in a --force export between make_run_dir and the removal of the earlier export's files (the earlier
    manifest.json still lists them: it goes only in begin_export, after the removal), or once this export has begun
    (its files recorded, core.manifest.record_unfinished): the --force redo leaves this export's files only."""
    import sqtool.core as C
    from sqtool.core import manifest as M
    out = tmp_path / "k"
    shutil.copytree(spec_kit, out)
    owner = M if where == "remove_leftovers" else C

    def killed(*a, **k):
        raise KeyboardInterrupt
    cfg = ExportConfig(model=str(int8_run), target=["c"], device_fs=64.0, out=str(out), force=True, max_windows=4)
    with monkeypatch.context() as m:
        m.setattr(owner, where, killed)
        with pytest.raises(KeyboardInterrupt):
            export(cfg)
    assert export(cfg)["failed"] == []
    there = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert there == _listed(out) | {"manifest.json"} and not list((out / "c").glob("sq_pipeline*"))


def test_a_prefix_too_long_for_a_file_name_is_refused_before_any_folder(spec_run, tmp_path, capsys):
    """`--prefix` of 300 letters failed after the parity checks, as 'aaaa..._model.c: file name too long'."""
    from sqtool.cli import main
    assert main(["export", "--model", str(spec_run), "--target", "c", "--prefix", "a" * 300,
                 "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sqtool: error: C prefix 'aaaaaaaaaaaa...' is 300 characters: at most 32 (it starts every file "
                   "name and C symbol of the kit)"], err
    assert not (tmp_path / "e").exists()


def test_a_sigkilled_exports_files_go_with_the_next_forced_export(int8_run, tmp_path, monkeypatch):
    """An export killed outright (SIGKILL, power loss: no handler runs, so it records nothing when it dies) after
    writing its TFLite files: a --force re-export to ONNX only left those files in the folder, listed nowhere. What
    an export writes is found from the snapshot it keeps on disk from the moment it begins (core.manifest), so the
    re-export removes them and says so."""
    from sqtool.core import manifest as M
    from sqtool.export import tflite

    def killed(*a, **k):
        raise SystemExit(137)                               # the process is gone: nothing after this runs
    out = tmp_path / "k"
    (tmp_path / "k").mkdir()
    (out / "mine.txt").write_text("x")                      # the user's own, there before: kept
    with monkeypatch.context() as m:
        m.setattr(tflite, "check_int8_params", killed)      # model_int8.tflite written, then the kill
        m.setattr(M, "record_unfinished", lambda: None)     # a SIGKILL runs no except clause
        with pytest.raises(SystemExit):
            export(ExportConfig(model=str(int8_run), target=["onnx", "tflite"], out=str(out), force=True,
                                max_windows=4))
    assert (out / "model_int8.tflite").is_file() and not (out / "manifest.json").exists()
    res = export(ExportConfig(model=str(int8_run), target=["onnx"], out=str(out), force=True, max_windows=4))
    assert res["failed"] == [] and not list(out.rglob("*.tflite")) and (out / "mine.txt").is_file()
    assert any("model_int8.tflite" in n for n in res["summary"].splitlines() if "removed" in n), res["summary"]
    there = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert there == _listed(out) | {"manifest.json", "mine.txt"} and not list(out.glob(".unfinished*"))
