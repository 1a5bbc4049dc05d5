"""No file of a shipped export folder holds an absolute path or a path leaving it (privacy review, find_priv 2: the
developer's home folder and user name were in config.yaml, manifest.json and export_report.md), while bench still
finds the source checkpoints beside the export by file name and sha256."""
from __future__ import annotations

import json

import pytest

from privacy_fixtures import shipped_files


def test_no_shipped_file_holds_an_absolute_path_or_leaves_the_folder(hospital):
    root, run, out, res = hospital
    home = str(root / "home")
    for p in shipped_files(out):
        data = p.read_bytes()
        assert str(root).encode() not in data and b"alice" not in data, p
        assert b"../" not in data or p.suffix not in (".json", ".yaml", ".md"), p
    import yaml
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["resolved"]["run_dir"] == "." and cfg["config"]["out"] == "." and cfg["source"] == "model.pt"
    assert cfg["config"]["model"] == "q" and cfg["resolved"]["heldout"] == "heldout.npz" and cfg["paths_note"]
    assert "kit in this folder" in (out / "export_report.md").read_text()
    assert home not in json.dumps(res["manifest"])


def test_bench_finds_the_sources_by_name_and_sha256_beside_the_export(hospital, tmp_path):
    """The manifest names a source checkpoint by file name + sha256: found in-house beside the export (the default
    runs/<command>/<run> layout and a sibling run folder), a changed one refused, one not beside it: one line."""
    import shutil

    from sqtool.core.manifest import MissingArtifact, TamperedArtifact, read_manifest
    from sqtool.core.io import sha256_file
    _, run, out, res = hospital
    src = res["manifest"]["sources"]["student_int8"]
    assert src == {"sha256": sha256_file(run / "model.pt"), "bytes": (run / "model.pt").stat().st_size,
                   "file": "model.pt"}
    with pytest.raises(MissingArtifact, match=r"source student_int8 model.pt not found beside the export"):
        read_manifest(out).source("student_int8")                 # shipped alone
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / "quantize" / "20260301-spec_student_xs")
    shutil.copytree(run, runs / "quantize" / "20260302-spec_student_xs")       # another run, same file name
    (runs / "quantize" / "20260302-spec_student_xs" / "model.pt").write_bytes(b"another model")
    shutil.copytree(out, runs / "export" / "20260303-spec_student_xs")
    m = read_manifest(runs / "export" / "20260303-spec_student_xs")
    assert m.source("student_int8") == (runs / "quantize" / "20260301-spec_student_xs" / "model.pt").resolve()
    assert m.source("student_float").name == "student_float.pt"
    shutil.copytree(run, tmp_path / "side" / "q")                              # a sibling run folder
    shutil.copytree(out, tmp_path / "side" / "export")
    p = tmp_path / "side" / "q" / "model.pt"
    assert read_manifest(tmp_path / "side" / "export").source("student_int8") == p.resolve()
    p.write_bytes(p.read_bytes() + b"\0")                                      # changed since the export
    with pytest.raises(TamperedArtifact, match=r"model.pt: sha256 differs"):
        read_manifest(tmp_path / "side" / "export").source("student_int8")
