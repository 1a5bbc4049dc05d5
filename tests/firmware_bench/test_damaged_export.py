"""An export folder whose metadata.json or manifest.json lacks a key a reader takes, or holds another type there (an
export of an older sqtool; a file edited by hand and the manifest's sha256 written again to match): one line naming
the file and what to do, never a KeyError / ValueError line."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from sqtool.cli import main


def _rehash(d):
    """manifest.json's sha256 and bytes of every listed file, written again for the files as they are now."""
    m = json.loads((d / "manifest.json").read_text())
    for f in m["files"]:
        b = (d / f["path"]).read_bytes()
        f["sha256"], f["bytes"] = hashlib.sha256(b).hexdigest(), len(b)
    (d / "manifest.json").write_text(json.dumps(m))


def _predict(capsys, d, tmp_path) -> tuple[int, str]:
    rc = main(["predict", "--model", str(d), "--data", "synthetic", "--out", str(tmp_path / "p")])
    return rc, capsys.readouterr().err.strip()


@pytest.mark.parametrize("key, value", [("window_s", None), ("fs", "125"), ("task", None), ("hop_s", 0),
                                        ("channels", None)])
def test_metadata_without_a_key_or_of_another_type_is_one_line_naming_it(spec_export_dir, tmp_path, capsys, key,
                                                                          value):
    d = tmp_path / "export"
    shutil.copytree(spec_export_dir, d)
    md = json.loads((d / "metadata.json").read_text())
    if value is None:
        del md[key]
    else:
        md[key] = value
    (d / "metadata.json").write_text(json.dumps(md))
    _rehash(d)
    rc, err = _predict(capsys, d, tmp_path)
    assert rc == 1 and "\n" not in err, err
    assert err.startswith(f"sqtool: error: {d / 'metadata.json'}: '{key}' is ") and "export the model again" in err, err
    assert not (tmp_path / "p").exists()


def test_a_manifest_entry_without_its_kind_is_read(spec_export_dir, tmp_path, capsys):
    """`kind` is what a file is, for the messages: an entry without it (a manifest written by hand) is read by its
    path, not a KeyError."""
    d = tmp_path / "export"
    shutil.copytree(spec_export_dir, d)
    m = json.loads((d / "manifest.json").read_text())
    for f in m["files"]:
        f.pop("kind")
    (d / "manifest.json").write_text(json.dumps(m))
    (d / "c" / "sq_model.c").write_text((d / "c" / "sq_model.c").read_text() + "// edited\n")
    rc, err = _predict(capsys, d, tmp_path)
    assert rc == 1 and err == f"sqtool: error: {d / 'c' / 'sq_model.c'}: sha256 differs from {d / 'manifest.json'} " \
                              "(changed after export): refused", err


@pytest.mark.parametrize("prefix", ["zz", "../evil", 7])
def test_a_c_prefix_naming_no_c_file_of_the_export_is_one_line(spec_export_dir, tmp_path, capsys, prefix):
    """metadata.json's c_prefix edited to one the export's c/ does not hold (or to no prefix at all): predict ran
    LiteRT instead, saying the export had no C pipeline (c/zz_pipeline.c); now one line naming the key."""
    d = tmp_path / "export"
    shutil.copytree(spec_export_dir, d)
    md = json.loads((d / "metadata.json").read_text())
    md["c_prefix"] = prefix
    (d / "metadata.json").write_text(json.dumps(md))
    _rehash(d)
    rc, err = _predict(capsys, d, tmp_path)
    assert rc == 1 and "\n" not in err, err
    assert err.startswith(f"sqtool: error: {d / 'metadata.json'}: 'c_prefix' is {prefix!r}, but its C is c/sq_*"), err
    assert "export the model again" in err and not (tmp_path / "p").exists()


@pytest.mark.parametrize("key, value", [("bins_bpm", [40.0, 239.5, 1.5]), ("n_bins", 100),
                                        ("decoder", {"bins_bpm": [30.0, 229.5, 3.0]})])
def test_a_decoder_grid_other_than_the_networks_is_one_line(spec_export_dir, tmp_path, capsys, key, value):
    """metadata.json's grid edited to another one of as many bins (40-239.5 BPM for the network's 30-229.5): LiteRT's
    heart rates came out 10 BPM higher without a word, the C pipeline's (its tables compiled) not; now one line."""
    d = tmp_path / "export"
    shutil.copytree(spec_export_dir, d)
    md = json.loads((d / "metadata.json").read_text())
    md[key] = value
    (d / "metadata.json").write_text(json.dumps(md))
    _rehash(d)
    rc = main(["predict", "--model", str(d), "--data", "synthetic", "--runtime", "tflite", "--max-seconds", "20",
               "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    name = "decoder.bins_bpm" if key == "decoder" else key
    assert rc == 1 and "\n" not in err, err
    assert err.startswith(f"sqtool: error: {d / 'metadata.json'}: '{name}' is ") and "not the network's grid" in err, err
    assert not (tmp_path / "p").exists()


def test_an_export_of_another_format_is_one_line(spec_export_dir, tmp_path, capsys):
    """metadata.json saying "sqtool-export/9" (a newer sqtool's export) was read as this sqtool's, every key taken
    at its word; now one line naming the format this sqtool reads."""
    d = tmp_path / "export"
    shutil.copytree(spec_export_dir, d)
    md = json.loads((d / "metadata.json").read_text())
    assert md["format"] == "sqtool-export/1"
    md["format"] = "sqtool-export/9"
    (d / "metadata.json").write_text(json.dumps(md))
    _rehash(d)
    rc = main(["predict", "--model", str(d), "--data", "synthetic", "--max-seconds", "20", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err, err
    assert err.startswith(f"sqtool: error: {d / 'metadata.json'}: format 'sqtool-export/9'") and "export the model " \
        "again" in err, err
    assert not (tmp_path / "p").exists()
