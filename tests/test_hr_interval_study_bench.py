"""benchmarks/hr_interval_study.py: the posterior interval against the spread interval on --logits-out dumps, the
spread interval fitted on the inner windows only."""
import numpy as np
import pytest

from bench_scripts import assert_bad_dumps_refused, assert_bad_root_refused, load_benchmark, write_dump
from test_hr_gating_study_bench import records_of


def test_each_fold_fits_on_its_inner_windows_and_scores_both_intervals_on_the_held_out_ones(tmp_path, monkeypatch):
    mod = load_benchmark("hr_interval_study")
    write_dump(tmp_path / "d", n_windows=60)
    (path,) = sorted((tmp_path / "d").glob("*.npz"))
    dump = mod.load_dump(path)
    n_bins = np.load(path)["test/synthetic/r0"].shape[1]
    seen, real = [], mod.fit_spread_interval

    def spy(hr, am, ys, gs, *a, **kw):
        seen.append(set(gs))
        return real(hr, am, ys, gs, *a, **kw)
    monkeypatch.setattr(mod, "fit_spread_interval", spy)
    fold = mod.fold(dump, records_of(tmp_path / "d", n_bins), path.name)
    assert seen == [{"synthetic:s1", "synthetic:s2", "synthetic:s3", "synthetic:s4"}]     # never the held-out s0
    (key, row), = fold["subjects"].items()
    assert key == "synthetic:s0" and row["windows"] == int(np.isfinite(np.load(path)["y/synthetic/r0"]).sum())
    assert 0 <= row["coverage_spread"] <= 1 and row["width_spread"] > 0 and fold["fit"]["coverage"] >= 0.9
    # the posterior column is the dump's own decoder, as the firmware decodes it
    from sqtool.models.decoder import decode_int
    r = records_of(tmp_path / "d", n_bins)["synthetic/r0"]
    out = decode_int(dump["test"][0]["logits"], dump["decoder"], dump["scale"], r.valid, r.x)
    ok = np.isfinite(r.y)
    cov = (out["lo"][ok] <= r.y[ok] + 0.5) & (out["hi"][ok] >= r.y[ok] - 0.5)
    assert row["coverage_posterior"] == pytest.approx(cov.mean())
    s = mod.summary([fold])
    assert s["subjects"] == 1 and s["posterior"]["pooled"] == pytest.approx(cov.mean())
    md = mod.report({"folds": [fold], "summary": s, "wall_s": 1.0}, "test")
    assert "| synthetic:s0 | 60 |" in md and "Subjects inside 85-95 %" in md


def test_bad_dumps_and_roots_are_one_line(tmp_path, capsys):
    mod = load_benchmark("hr_interval_study")
    assert_bad_dumps_refused(mod, tmp_path, capsys)
    assert_bad_root_refused(mod, mod.fold, tmp_path, capsys)
