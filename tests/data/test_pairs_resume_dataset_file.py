"""`data pairs --resume` and the inputs' dataset.yaml: the resume state records each dataset file's parsed document,
so one edited between the kill and --resume (another PPG column, gain, unit, glob) is refused in one line naming the
file and the key, instead of mining the rest of the recordings as other signals into the same pairs folder; a touch
or a comment is no change; a state saved before the record existed resumes as before."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.pairs import PairsConfig, mine_pairs
from sqtool.data.synthetic import synth_record
from test_pairs import _interrupt_after_shard, _same_run

YAML = ("name: watch\nformat: npz\nroot: recordings\nchannels: {ppg: green}\n"
        "subject: {pattern: '^(?P<subject>p[0-9]+)_'}\n")


def _watch(root, n: int = 4):
    """A dataset.yaml of n npz recordings holding two PPG wavelengths, `green` (the one read) and `red`."""
    rec = root / "watch" / "recordings"
    rec.mkdir(parents=True)
    for i in range(n):
        g, r = (synth_record(300, artifacts=0.3, seed=s) for s in (i, 100 + i))
        np.savez(rec / f"p{i + 1:02d}_wrist.npz", green=g.signals["ppg"], red=r.signals["ppg"], fs=np.array(g.fs["ppg"]))
    (root / "watch" / "dataset.yaml").write_text(YAML)
    return root / "watch" / "dataset.yaml"


def _rewrite(f, text: str) -> None:
    """f rewritten with `text`, its modification time a second later (as an editor saves it)."""
    ns = f.stat().st_mtime_ns
    f.write_text(text)
    os.utime(f, ns=(ns + 10**9, ns + 10**9))


def _killed(tmp_path, monkeypatch, ds) -> list[str]:
    """The command line of a `data pairs` run into tmp_path/cut, interrupted after its first shard."""
    cmd = ["data", "pairs", "--data", str(ds), "--out", str(tmp_path / "cut"), "--workers", "1", "--shard-mb", "0.02",
           "--max-gap-s", "120", "--no-progress"]
    _interrupt_after_shard(monkeypatch, 1)
    assert main(cmd) == 130
    assert (tmp_path / "cut" / "resume" / "state.json").is_file() and not (tmp_path / "cut" / "index.json").exists()
    return cmd


@pytest.mark.parametrize("edit, said", [
    (("{ppg: green}", "{ppg: red}"), "channels.ppg: green -> red"),
    (("{ppg: green}", "{ppg: {column: green, gain: 2}}"), "channels.ppg: green -> (none), channels.ppg.column: "
                                                          "(none) -> green, channels.ppg.gain: (none) -> 2"),
    (("root: recordings\n", "root: recordings\nfiles: 'p0[1-4]_*.npz'\n"), "files: (none) -> p0[1-4]_*.npz"),
    (("name: watch", "name: watch2"), "name: watch -> watch2"),
], ids=["ppg_column", "gain", "files_glob", "name"])
def test_a_dataset_file_edited_since_the_kill_refuses_the_resume(tmp_path, monkeypatch, capsys, edit, said):
    """The recordings are untouched (the units' fingerprint matches), but the file now reads other signals from them:
    one line naming the file, the key and what to do, exit 1, the kept shards untouched."""
    ds = _watch(tmp_path)
    _killed(tmp_path, monkeypatch, ds)
    out = tmp_path / "cut"
    shards = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    _rewrite(ds, YAML.replace(*edit))
    capsys.readouterr()
    assert main(["data", "pairs", "--resume", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"cannot resume {out}: its dataset file {ds.resolve()} changed since it started ({said})" in err[0]
    assert "restore the file, or start again with --force" in err[0]
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == shards
    with pytest.raises(SqtoolError, match="changed since it started"):                # the library call alike
        mine_pairs(PairsConfig(input=[str(ds)], out=str(out), workers=1, shard_mb=0.02, max_gap_s=120),
                   progress=False, resume=True)
    _rewrite(ds, YAML)                                          # restored: the resume goes on
    assert main(["data", "pairs", "--resume", str(out), "--no-progress"]) == 0


def test_a_touch_or_a_comment_is_no_change(tmp_path, monkeypatch):
    """The record is the parsed document, not the bytes nor the time: the file saved again with a comment and other
    spacing resumes to the pairs of an uninterrupted run."""
    ds = _watch(tmp_path)
    cmd = _killed(tmp_path, monkeypatch, ds)
    monkeypatch.undo()
    out = tmp_path / "cut"
    [saved] = json.loads((out / "resume" / "state.json").read_text())["dataset_files"]
    assert saved["path"] == str(ds.resolve()) and saved["document"]["channels"] == {"ppg": "green"}
    _rewrite(ds, "# my watch, both wavelengths\n" + YAML.replace("{ppg: green}", "\n  ppg:   green  # 530 nm"))
    assert main(["data", "pairs", "--resume", str(out), "--no-progress"]) == 0
    assert main([*cmd[:4], "--out", str(tmp_path / "full"), *cmd[6:]]) == 0
    _same_run(tmp_path / "full", out)


def test_a_state_saved_before_dataset_files_were_recorded_resumes(tmp_path, monkeypatch):
    """A resume state without `dataset_files` (a run killed before this record existed): the file is unknown, not
    refused: it resumes as it did before the record."""
    ds = _watch(tmp_path)
    cmd = _killed(tmp_path, monkeypatch, ds)
    monkeypatch.undo()
    out = tmp_path / "cut"
    state = json.loads((out / "resume" / "state.json").read_text())
    del state["dataset_files"]
    (out / "resume" / "state.json").write_text(json.dumps(state))
    _rewrite(ds, YAML)
    assert main(["data", "pairs", "--resume", str(out), "--no-progress"]) == 0
    assert main([*cmd[:4], "--out", str(tmp_path / "full"), *cmd[6:]]) == 0
    _same_run(tmp_path / "full", out)
