"""benchmarks/hr_decoder_study.py: decoder variants on --logits-out dumps, pinned to the package's decoder."""
import json

import numpy as np
import pytest

from bench_scripts import assert_bad_dumps_refused, load_benchmark, write_dump
from sqtool.models.decoder import DecoderCfg, decode_float
from sqtool.models.hr_bins import select_decoder

def test_the_sum_forward_is_the_decoders_and_the_mean_rule_chooses_as_select_decoder(tmp_path):
    mod = load_benchmark("hr_decoder_study")
    train, oof, base = write_dump(tmp_path / "d")
    (path,) = sorted((tmp_path / "d").glob("*.npz"))
    dump = mod.load_dump(path)
    dec = {**base, "sigma_bpm": 4.0, "temperature": 2.0}
    lg = oof[train[0].record_id]
    assert np.allclose(mod.forward_hr(lg, dec, "sum"), decode_float(lg, dec)["hr"], atol=1e-9)
    mine = mod.choose(dump, "sum", "mean", {})
    ref = select_decoder([oof[r.record_id] for r in train], [r.y for r in train], [r.key for r in train], base,
                         calibrate=False)
    pick = lambda d: (d["sigma_bpm"], d["floor"], d["temperature"])                        # noqa: E731
    assert pick(mine) == pick(ref)
    assert mine["inner_score"] == pytest.approx(ref["inner_mae"])


def test_max_product_keeps_a_narrow_peak_that_a_broad_plateau_outweighs_in_the_sum():
    """Every window: a narrow peak at 90 BPM and a lower plateau over 60-80 BPM holding more mass. At
    temperature 3 the sum-product belief sits on the plateau; the max-product one on the peak."""
    mod = load_benchmark("hr_decoder_study")
    cfg = DecoderCfg()
    b = cfg.centres
    row = 10.0 * np.exp(-0.5 * ((b - 90.0) / 1.0) ** 2) + 7.0 * ((b >= 60) & (b <= 80))
    logits = np.tile(row, (30, 1))                                              # (W, F)
    dec = {**cfg.to_dict(), "sigma_bpm": 6.0, "floor": 1e-3, "temperature": 3.0}
    s, m = mod.forward_hr(logits, dec, "sum"), mod.forward_hr(logits, dec, "max")
    assert np.all((s[5:] >= 60) & (s[5:] <= 80))
    assert np.all(np.abs(m[5:] - 90.0) < 1.0)


def test_the_study_writes_every_variant_per_subject_and_bad_dumps_are_one_line(tmp_path, capsys):
    mod = load_benchmark("hr_decoder_study")
    write_dump(tmp_path / "d")
    assert mod.main(["--dumps", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--name", "s"]) == 0
    res = json.loads((tmp_path / "o" / "s.json").read_text())
    assert set(res) == {f"{p}/{r}" for p, r in mod.VARIANTS}
    assert all(set(v["subjects"]) == {"synthetic:s0"} and len(v["folds"]) == 1 for v in res.values())
    md = (tmp_path / "o" / "s.md").read_text()
    assert "10-BPM bands within 3 BPM" in md and "max/mean" in md                # synthetic keys: the band table
    assert_bad_dumps_refused(mod, tmp_path, capsys)


def test_the_prior_variant_divides_the_learned_prior_out_of_the_emission():
    """alpha 0 is the sum-product decoder itself; alpha 1 turns a window that the network splits between the
    pulse (50 BPM) and the heart rates it was trained on (120 BPM, its out-of-fold windows' favourite) towards the
    pulse."""
    mod = load_benchmark("hr_decoder_study")
    cfg = DecoderCfg()
    b = cfg.centres
    bump = lambda c, h: h * np.exp(-0.5 * ((b - c) / 3.0) ** 2)                   # noqa: E731
    dump = {"oof": [{"logits": np.tile(bump(120.0, 8.0), (50, 1))}]}            # the training windows: 120 BPM
    lp = mod.training_log_prior(dump)
    assert lp.shape == (len(b),) and b[int(np.argmax(lp))] == pytest.approx(120.0, abs=2.0)
    assert np.isclose(np.exp(lp).sum(), 1.0)
    logits = np.tile(bump(50.0, 6.0) + bump(120.0, 6.5), (20, 1))                # (W, F)
    dec = {**cfg.to_dict(), "sigma_bpm": 3.0, "floor": 1e-3, "temperature": 1.0}
    s = mod.forward_hr(logits, dec, "sum")
    assert np.allclose(mod.forward_hr(logits, {**dec, "prior_alpha": 0.0}, "prior", lp), s, atol=1e-9)
    assert np.all(np.abs(s - 120.0) < 2.0)
    assert np.all(np.abs(mod.forward_hr(logits, {**dec, "prior_alpha": 1.0}, "prior", lp) - 50.0) < 2.0)


def _with_check_sets(mod, tmp_path):
    """A written dump whose held-out recordings are two synthetic sets: 'evaluated' (seeds 2000...) and 'check'
    (seeds 4000...), each at 55 and 120 BPM: a narrow peak at the truth and a broad plateau at 90-130 BPM."""
    from sqtool.models.decoder import DecoderCfg
    write_dump(tmp_path / "d")
    dump = mod.load_dump(next((tmp_path / "d").glob("*.npz")))
    b = DecoderCfg().centres
    test = []
    for base in (2000, 4000):
        for i, hr in enumerate((55.0, 120.0)):
            row = np.where(np.abs(b - hr) < 0.6, 70, np.where((b >= 90) & (b <= 130), 52, -60))
            test.append({"logits": np.tile(row, (40, 1)).astype(np.int8), "y": np.full(40, hr),
                         "key": f"synthetic:hr{int(hr):03d}", "id": f"synthetic/hr{int(hr):03d}_s{base + 10 * i}"})
    return {**dump, "test": test}


def test_a_check_set_chooses_the_fewest_missed_bands_then_the_inner_mean_and_is_never_scored(tmp_path):
    mod = load_benchmark("hr_decoder_study")
    dump = mod.split_check(_with_check_sets(mod, tmp_path), (4000,))
    assert [r["id"][-5:] for r in dump["test"]] == ["s2000", "s2010"]
    assert [r["id"][-5:] for r in dump["check"]] == ["s4000", "s4010"]
    got = mod.choose(dump, "sum", "check", {})
    mean = mod.choose(dump, "sum", "mean", {})

    def inner(dec):                                   # mean over the inner subjects of their decoded MAE
        per = {}
        for r in dump["oof"]:
            per.setdefault(r["key"], []).append(mod.abs_err(decode_float(r["logits"], dec)["hr"], r["y"]))
        return float(np.mean([np.concatenate(v).mean() for v in per.values()]))

    # brute force over the same grid: (bands missed on the check set, inner mean), the lowest pair
    base = mod.fit_decoder([r["y"] for r in dump["oof"]], dump["decoder"]["bins_bpm"], 2.0)
    cands = [{**mean, "sigma_bpm": sg, "floor": fl, "temperature": T}
             for sg in {float(base["sigma_bpm"]), *mod.SIGMAS} for fl in {float(base["floor"]), *mod.FLOORS}
             for T in mod.TEMPERATURES]
    scored = [(mod.check_misses(dump, d), inner(d)) for d in cands]
    assert (got["inner_check_misses"], got["inner_score"]) == pytest.approx(min(scored))
    assert len({m for m, _ in scored}) > 1           # the plateau wins at some candidates: the check set tells
    assert got["inner_score"] >= mean["inner_score"] - 1e-12


def test_check_seeds_are_refused_where_they_name_no_recording_or_every_one(tmp_path, capsys):
    mod = load_benchmark("hr_decoder_study")
    dump = _with_check_sets(mod, tmp_path)
    with pytest.raises(Exception, match="needs recordings of those synthetic sets"):
        mod.split_check(dump, (7000,))
    with pytest.raises(Exception, match="needs recordings of those synthetic sets"):
        mod.split_check(dump, (2000, 4000))
    assert mod.record_seed("synthetic/hr055_s3021") == 3021 and mod.record_seed("troika/DATA_01_TYPE01") is None
    with pytest.raises(SystemExit):
        mod.main(["--dumps", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--check-seeds", "4k"])
    assert "--check-seeds must be comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):                         # two check sets sharing recordings: the same parser
        mod.main(["--dumps", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--check-seeds", "4000,4100"])
    assert "the sets seeded from 4000 and 4100 share recordings" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
