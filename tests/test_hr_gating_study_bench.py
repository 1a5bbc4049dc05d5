"""benchmarks/hr_gating_study.py: confidence read-outs on --logits-out dumps, signs chosen on training windows."""
from types import SimpleNamespace

import numpy as np
import pytest

from bench_scripts import assert_bad_dumps_refused, assert_bad_root_refused, load_benchmark, write_dump


def records_of(folder, n_bins, seed=0):
    """Front-end stand-ins for every recording of a dump: random int8 spectra (W, F, 4), nothing flagged."""
    rng = np.random.default_rng(seed)
    out = {}
    for path in folder.glob("*.npz"):
        z = np.load(path)
        for k in z.files:
            if k.startswith("y/"):
                rid = k[2:]
                y = z[k]
                out[rid] = SimpleNamespace(dataset=rid.split("/")[0], record_id=rid.split("/")[1], y=y,
                                           flagged=np.zeros(len(y)), valid=np.ones(len(y), bool),
                                           x=rng.integers(0, 127, (len(y), n_bins, 4)).astype(np.int8))
    return out


def test_gating_is_the_kept_shares_error_cut_and_the_oracle_is_the_best():
    mod = load_benchmark("hr_gating_study")
    e = np.array([1.0, 2.0, 3.0, 4.0, 10.0])                                   # MAE 4
    assert mod.gating(-e, e) == pytest.approx(1 - 2.5 / 4.0)                 # drops the 10
    assert mod.gating(e, e) == pytest.approx(1 - 4.75 / 4.0)                 # drops the 1: worse
    assert mod.gating(np.zeros(5), e) == pytest.approx(0.0)                  # ties are all kept


def test_every_readout_is_scored_with_its_sign_from_the_training_windows(tmp_path):
    mod = load_benchmark("hr_gating_study")
    write_dump(tmp_path / "d", n_windows=60)
    (path,) = sorted((tmp_path / "d").glob("*.npz"))
    n_bins = np.load(path)["test/synthetic/r0"].shape[1]
    fold = mod.fold_windows(mod.load_dump(path), records_of(tmp_path / "d", n_bins), path.name)
    Ftr, etr, dtr, _ = fold["train"]
    Fte, ete, _, kte = fold["test"]
    assert Ftr.shape == (4 * 60, len(mod.READOUTS)) and Fte.shape == (60, len(mod.READOUTS))
    assert set(dtr) == {"synthetic"} and fold["subjects"] == ["synthetic:s0"]
    hr = Fte[:, mod.READOUTS.index("hr")]
    y = np.load(path)["y/synthetic/r0"]
    assert np.allclose(np.abs(hr - y)[np.isfinite(y)], ete[np.isfinite(y)])
    res = mod.study([fold])
    assert set(res["readouts"]) == {*mod.READOUTS, *mod.LEARNED} and len(mod.READOUTS) == 24
    w = res["readouts"]["width"]
    j = mod.READOUTS.index("width")
    sign = 1.0 if mod.gating(Ftr[:, j], etr) >= mod.gating(-Ftr[:, j], etr) else -1.0
    assert w["sign"] == ("+" if sign > 0 else "-")
    assert w["held_out"] == pytest.approx(mod.gating(sign * Fte[:, j], ete))    # never the held-out's own sign
    assert res["oracle"] >= max(v["held_out"] for v in res["readouts"].values()) - 1e-12
    assert set(kte) == {"synthetic:s0"} and list(res["subjects"]) == ["synthetic:s0"]      # one held-out subject:
    assert res["subjects"]["synthetic:s0"]["width"] == pytest.approx(w["held_out"])          # its row is the pool
    md = mod.report(res, "test", 1.0)
    assert "| synthetic:s0 | 60 |" in md and "learned / same dataset" in md
    (rid, v), = res["recordings"].items()                                       # one held-out recording
    assert rid == "synthetic/r0" and v["windows"] == np.isfinite(ete).sum()
    assert v["error_share"] == pytest.approx(1.0) and v["mae"] == pytest.approx(np.nanmean(ete))
    assert f"| synthetic/r0 | {v['windows']} |" in md


def test_pulse_visibility_reads_the_ppg_code_at_the_truth():
    """The PPG's power at the truth (+-1 bin) as a share of the strongest bin, and whether the strongest bin is
    the truth's (+-2 bins)."""
    mod = load_benchmark("hr_gating_study")
    centres = np.arange(30.0, 60.0, 1.5)                                        # 20 bins
    x = np.full((3, 20, 4), -127, np.int8)
    x[0, 10, 0] = 127                                                           # the pulse at bin 10 = 45 BPM
    x[1, 3, 0], x[1, 10, 0] = 127, 0                                            # strongest elsewhere, half power
    y = np.array([45.0, 45.0, np.nan])
    at, top = mod.pulse_visibility(x, y, centres)
    assert at[0] == 1.0 and at[1] == pytest.approx(0.5) and np.isnan(at[2])
    assert top.tolist() == [True, False, False]


def test_bad_dumps_and_roots_are_one_line(tmp_path, capsys):
    mod = load_benchmark("hr_gating_study")
    assert_bad_dumps_refused(mod, tmp_path, capsys)
    assert_bad_root_refused(mod, mod.fold_windows, tmp_path, capsys)
