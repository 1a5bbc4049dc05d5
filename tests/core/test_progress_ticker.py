"""Where progress is asked for but stderr is no terminal (a CI log, `2> run.log`), a long command prints a plain
line at most every 30 s instead of nothing between its first and last line (`core.progress.Ticker`)."""
from __future__ import annotations

import pytest

from sqtool.core import progress


def test_a_ticker_prints_plain_lines_only_where_no_bar_draws(capsys, monkeypatch):
    t = progress.Ticker("pretrain m", 100, enabled=True, every_s=0.0)
    t(25, "loss -0.5")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("pretrain m: 25/100 steps (25 %), loss -0.5, ETA") and "\r" not in err[0]
    progress.Ticker("x", 10, enabled=False, every_s=0.0)(5)                  # --no-progress: nothing
    monkeypatch.setattr(progress, "bars_on", lambda enabled=True: bool(enabled))
    progress.Ticker("x", 10, enabled=True, every_s=0.0)(5)                   # a terminal: the bar draws instead
    assert capsys.readouterr().err == ""


def test_a_ticker_waits_its_interval(capsys):
    t = progress.Ticker("x", 10, every_s=3600.0)
    for n in range(10):
        t(n)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("s, said", [(5, "5 s"), (125, "2 min 05 s"), (7500, "2 h 05 min")])
def test_durations_read_as_people_say_them(s, said):
    assert progress._duration(s) == said


def test_pretrain_into_a_log_file_says_where_it_is(tmp_path, capsys, monkeypatch):
    from sqtool.train.pretrain import PretrainConfig, run_pretrain
    class EveryStep(progress.Ticker):
        def __init__(self, *a, **k):
            super().__init__(*a, **{**k, "every_s": 0.0})
    monkeypatch.setattr(progress, "Ticker", EveryStep)                   # a line per step, for the test
    run_pretrain(PretrainConfig(model="resnet1d_siamq_tiny", synthetic_pairs=64, batch_size=16, epochs=2,
                                device="cpu", progress=True), tmp_path / "pt")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pretrain resnet1d_siamq_tiny: ")]
    assert len(lines) >= 4 and lines[0].startswith("pretrain resnet1d_siamq_tiny: 1/") and "epoch 1, loss " in lines[0]
    assert "epoch 2, loss" in lines[-1]
