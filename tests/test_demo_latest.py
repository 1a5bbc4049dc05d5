"""`sqtool demo`'s `latest` link: the one beside the folder it wrote, updated, and named only when it was."""
from __future__ import annotations

import os

import pytest

import sqtool.cli
from sqtool.cli import main


@pytest.fixture
def steps_pass(monkeypatch, tmp_path):
    """Every demo step succeeds at once (the demo's own bookkeeping is what is tested), in an empty folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sqtool.cli, "main", lambda argv: 0)


def _demo(capsys, *args) -> str:
    assert main(["demo", "--no-mcu", *args]) == 0
    return next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("=== demo done"))


def test_demo_out_elsewhere_leaves_runs_demo_latest_alone_and_says_no_link(steps_pass, tmp_path, capsys):
    old = tmp_path / "runs" / "demo" / "20260101-000000"
    old.mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "latest").symlink_to(old)
    line = _demo(capsys, "--out", "mine/v1")
    assert "latest" not in line                                    # it said "(latest: runs/demo/latest)"
    assert os.readlink(tmp_path / "runs" / "demo" / "latest") == str(old)
    assert not (tmp_path / "mine" / "latest").exists()             # no new link in a folder that had none


def test_demo_updates_the_latest_link_beside_the_folder_it_wrote(steps_pass, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "latest").symlink_to(tmp_path / "mine" / "v0")          # a folder of demos
    line = _demo(capsys, "--out", "mine/v1")
    assert line.endswith("(latest: mine/latest)")
    assert (tmp_path / "mine" / "latest").resolve() == (tmp_path / "mine" / "v1").resolve()
    line = _demo(capsys, "--out", str(tmp_path / "runs" / "demo" / "x"))         # under runs/demo, spelled absolute
    assert line.endswith(f"(latest: {tmp_path / 'runs' / 'demo' / 'latest'})")
    assert (tmp_path / "runs" / "demo" / "latest").resolve() == tmp_path / "runs" / "demo" / "x"
    line = _demo(capsys)                                                         # the default folder
    new = (tmp_path / "runs" / "demo" / "latest").resolve()
    assert line.endswith("(latest: runs/demo/latest)") and new.parent == tmp_path / "runs" / "demo" and new.name != "x"


def test_a_latest_folder_is_never_replaced(steps_pass, tmp_path, capsys):
    (tmp_path / "runs" / "demo" / "latest").mkdir(parents=True)
    line = _demo(capsys, "--out", "runs/demo/v1")
    assert "latest" not in line and (tmp_path / "runs" / "demo" / "latest").is_dir()
