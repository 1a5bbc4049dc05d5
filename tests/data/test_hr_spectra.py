"""Heart-rate windows through the fixed-point front end: real TROIKA, synthetic, contracts."""
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.hr_spectra import as_model_input, frontend_cfg, hr_corpus
from sqtool.models import get_model_cfg

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "troika").is_dir(), reason="../shared/data absent")


@needs_data
def test_troika_corpus_has_twelve_subjects_and_leaves_out_s04_explicitly():
    said = []
    cfg = get_model_cfg("spec_student_s")
    c = hr_corpus(DATA, ("troika",), cfg, log=said.append)
    assert len(c) == 12 and len({r.key for r in c}) == 12
    assert any("DATA_S04_T01" in s and "left out" in s for s in said)
    r = c[0]
    F, C = cfg.input_shape[1], cfg.input_shape[0]
    assert r.x.dtype == np.int8 and r.x.shape[1:] == (F, C) and r.x.max() == 127 and r.x.min() >= -127
    assert len(r.y) == len(r.x) == len(r.t0) and np.isfinite(r.y).mean() > 0.95     # truth aligned to windows
    assert np.allclose(np.diff(r.t0), 2.0) and r.t0[0] == 0.0
    assert as_model_input(r.x).shape == (len(r.x), C, F)


def test_synthetic_corpus_is_only_what_was_asked_for():
    c = hr_corpus("synthetic", ("synthetic",), get_model_cfg("spec_student_xs"), synthetic_subjects=2)
    assert len(c) == 2 and all(r.dataset == "synthetic" for r in c)
    with pytest.raises(SqtoolError, match="no folder"):
        hr_corpus("/nonexistent-root", ("troika",), get_model_cfg("spec_student_xs"))


def test_frontend_cfg_follows_the_model_contract_and_refuses_time_domain_models():
    fe = frontend_cfg(get_model_cfg("spec_student_s"), 256.0)
    assert fe.fs_in == 256.0 and fe.fs == 16.0 and tuple(fe.bins_bpm) == (30.0, 229.5, 1.5) and fe.n_channels == 4
    assert frontend_cfg(get_model_cfg("spec_student_s_accsum"), 256.0).n_channels == 2    # ppg + the axes summed
    with pytest.raises(SqtoolError, match="no spectral front end"):
        frontend_cfg(get_model_cfg("cnn1d_student_s"), 125.0)


def _rec(signals, fs=125.0):
    from types import SimpleNamespace
    return SimpleNamespace(dataset="t", record_id="r", subject="s", signals=signals,
                           fs={k: fs for k in signals}, labels={}, meta={})


def test_ppg_sensors_come_from_the_recording_within_the_model_contract():
    """The model lists ppg, ppg2 (frontend ppg_sensors); a recording gives those it has: n_ppg is the device's."""
    from sqtool.data.hr_spectra import ppg_sensors, record_spectra, stream_channels
    cfg = get_model_cfg("spec_student_xs")
    assert cfg.frontend["ppg_sensors"] == ["ppg", "ppg2"] and cfg.channels[0] == "ppg"
    rng = np.random.default_rng(0)
    t = np.arange(125 * 20) / 125.0
    pulse = np.sin(2 * np.pi * 1.5 * t)
    acc = {a: 0.1 * rng.standard_normal(t.size) for a in ("acc_x", "acc_y", "acc_z")}
    two = _rec({"ppg": 100 * pulse + rng.standard_normal(t.size), "ppg2": 1000 * pulse, **acc})
    one = _rec({"ppg": 100 * pulse + rng.standard_normal(t.size), **acc})
    assert stream_channels(two, cfg) == (["ppg", "ppg2", "acc_x", "acc_y", "acc_z"], 2)
    assert stream_channels(one, cfg) == (["ppg", "acc_x", "acc_y", "acc_z"], 1)
    r2, r1 = record_spectra(two, cfg), record_spectra(one, cfg)
    assert r2.x.shape == r1.x.shape == (7, cfg.n_bins, cfg.in_channels)
    old = {**cfg.to_dict(), "frontend": {"type": "spectrum", "bins_bpm": list(cfg.arch["bins_bpm"])}}
    assert ppg_sensors(old) == ["ppg"] and stream_channels(two, old)[1] == 1       # models older than the key
    assert frontend_cfg(cfg, 125.0, 2).n_ppg == 2 and frontend_cfg(cfg, 125.0).n_ppg == 1
    with pytest.raises(SqtoolError, match=r"at most 1 PPG sensor.*a device with 2"):
        frontend_cfg(old, 125.0, 2)
    with pytest.raises(SqtoolError, match=r"t/r: the model needs a PPG channel \(ppg or ppg2\)"):
        stream_channels(_rec(acc), cfg)


def test_a_rate_the_front_end_cannot_take_names_the_recording():
    """A recording at a rate the polyphase resampler cannot take (8000.37 Hz, nor its whole-Hz neighbour) is one
    line naming its file and the rates that work (it named no file: the benchmark's own-data run died there without
    saying which)."""
    from sqtool.data.hr_spectra import record_spectra
    n = int(8000.37 * 20)               # 8000 Hz would not do either (ceil(8000 / 16) taps per phase > 255)
    rec = _rec({c: np.random.default_rng(1).standard_normal(n) for c in ("ppg", "acc_x", "acc_y", "acc_z")})
    rec.fs = {c: 8000.37 for c in rec.signals}
    rec.source = "my_watch/recordings/s01_walk.csv"
    with pytest.raises(SqtoolError, match=r"^my_watch/recordings/s01_walk.csv: the front end cannot take 8000.37 Hz "
                                          r"\(frontend: resampling ratio .* too awkward.*\); resample the recording"):
        record_spectra(rec, get_model_cfg("spec_student_xs"))


@pytest.mark.parametrize("fs", (19.581367, 125.37))
def test_a_clock_off_its_whole_hz_rate_is_resampled_to_it_and_read_as_before(fs):
    """A rate measured from a file's timestamps (a smartwatch's 19.58 Hz for its nominal 20; 125.37 for 125): the
    front end cannot resample from it, so the recording is resampled to the whole-Hz rate (time kept, said in its
    meta and in predict's note) and its pulse read at the same heart rate; a rate the front end takes stays as is."""
    import dataclasses

    from sqtool.data.frontend import bin_bpm
    from sqtool.data.hr_spectra import at_front_end_rate, record_spectra
    from sqtool.data.preprocess import at_whole_hz, whole_hz_note
    from sqtool.data.record import Record
    rng = np.random.default_rng(0)
    t = np.arange(int(fs * 40)) / fs
    sig = {"ppg": np.sin(2 * np.pi * 1.5 * t) + 0.05 * rng.standard_normal(t.size),
           **{a: 0.1 * rng.standard_normal(t.size) for a in ("acc_x", "acc_y", "acc_z")}}
    rec = Record("watch", "s1", "s1_walk", sig, {c: fs for c in sig})
    cfg = get_model_cfg("spec_student_xs")
    whole = at_front_end_rate(rec, cfg)
    assert whole.fs == {c: float(round(fs)) for c in sig} and whole.meta["resampled_from_hz"] == {c: fs for c in sig}
    assert abs(len(whole.signals["ppg"]) / round(fs) - 40.0) < 0.1                   # the same 40 s
    r = record_spectra(rec, cfg)
    assert r.meta["resampled_from_hz"]["ppg"] == fs and np.allclose(np.diff(r.t0), 2.0)
    bins = bin_bpm(frontend_cfg(cfg, float(round(fs))))
    assert np.all(np.abs(bins[r.x[..., 0].argmax(axis=1)] - 90.0) <= 1.5)             # the pulse, every window
    note = whole_hz_note([whole, rec])
    assert note == (f"note: 1 recording sampled off a whole-Hz rate (a device clock measured from its timestamps) "
                    f"resampled to it for the front end, e.g. s1_walk: ppg, acc_x, acc_y, acc_z {fs:g} -> "
                    f"{round(fs)} Hz; firmware that takes that clock for {round(fs)} Hz reads heart rates "
                    f"{100 * (round(fs) / fs - 1):+.1f} % off") and whole_hz_note([rec]) is None
    for ok in (float(round(fs)), 25.6):                        # whole, or a rate the front end takes (16 / 25.6 = 5 / 8)
        same = dataclasses.replace(rec, fs={c: ok for c in sig})
        assert at_front_end_rate(same, cfg) is same
    gap = dataclasses.replace(rec, signals={**sig, "ppg": np.where((t > 10) & (t < 11), np.nan, sig["ppg"])})
    held = at_whole_hz(gap).signals["ppg"]                     # a gap stays a gap at the new rate
    tw = np.arange(len(held)) / round(fs)
    assert np.isnan(held[(tw > 10.1) & (tw < 10.9)]).all() and np.isfinite(held[(tw < 9.5) | (tw > 11.5)]).all()


@needs_data
def test_troika_spectra_average_both_ppg_sensors():
    from sqtool.data.frontend import FrontEndCfg, spectra
    from sqtool.data.hr_spectra import device_stream, record_spectra
    from sqtool.data.readers import read_dataset
    cfg = get_model_cfg("spec_student_xs")
    rec = sorted(read_dataset(DATA / "troika" / "Training_data", kind="troika"), key=lambda r: r.record_id)[0]
    r = record_spectra(rec, cfg)
    x16, fs, gap = device_stream(rec, ["ppg", "ppg2", "acc_x", "acc_y", "acc_z"])
    fe = FrontEndCfg(bins_bpm=tuple(cfg.arch["bins_bpm"]), n_ppg=2, n_channels=cfg.in_channels)
    assert np.array_equal(r.x, spectra(fe, x16, gap)[0])
    single = spectra(FrontEndCfg(bins_bpm=tuple(cfg.arch["bins_bpm"]), n_channels=cfg.in_channels), x16[[0, 2, 3, 4]],
                     gap)[0]
    assert np.array_equal(r.x[..., 1:], single[..., 1:]) and not np.array_equal(r.x[..., 0], single[..., 0])


def _time_teacher_cfg():
    from sqtool.models import get_model_cfg as g
    return g("resnet1d_siamq_tiny", task="hr", fs=25.0, window_s=8.0, hop_s=2.0, norm="zscore", band=(0.5, 4.0),
             channels=("ppg", "acc_x", "acc_y", "acc_z"), outputs=("hr_logits",), units=("logit",),
             arch={**g("resnet1d_siamq_tiny").arch, "bins_bpm": [30.0, 229.5, 1.5]})


def test_record_waveforms_are_the_spectral_windows_in_time_domain():
    from sqtool.data.hr_spectra import record_spectra, record_waveforms
    from sqtool.data.synthetic import synth_record
    rec = synth_record(duration_s=60.0, fs=125.0, hr_bpm=[90.0], artifacts=0.0, seed=3, subject="s", record_id="r")
    r = record_spectra(rec, get_model_cfg("spec_student_xs"))
    cfg = _time_teacher_cfg()
    w = record_waveforms(rec, r.t0, cfg, extra_s=2.0)
    assert w.shape == (len(r.t0), 4, 250) and w.dtype == np.float32            # (W, C, 8 s + 2 s at 25 Hz)
    assert np.allclose(w.mean(axis=-1), 0, atol=1e-4) and np.allclose(w.std(axis=-1), 1, atol=1e-3)
    f = np.fft.rfftfreq(1000, 1 / 25.0)
    peak = f[np.abs(np.fft.rfft(w[3, 0, :200], 1000)).argmax()] * 60            # the PPG's rhythm: its HR
    assert abs(peak - 90.0) < 3.0
    rec.signals["ppg"] = rec.signals["ppg"].copy()
    rec.signals["ppg"][1000:1100] = np.nan                                       # a gap is bridged, not spread
    assert np.isfinite(record_waveforms(rec, r.t0, cfg)).all()
    rec.signals.pop("acc_x")
    with pytest.raises(SqtoolError, match="acc_x"):
        record_waveforms(rec, r.t0, cfg)


def test_replay_never_saturates_a_signal_that_sits_on_a_level():
    """A PPG at ~1380 units with a 100-unit pulse (wrist_exercise's bikes) and an axis at 1 g with a faint
    swing: at the robust gain their level would saturate int16 for good (one constant, nothing for the front end
    to read); they are replayed without the level, and the pulse is read. A row that fits is replayed as before,
    to the bit."""
    from sqtool.data.frontend import bin_bpm, to_int16
    from sqtool.data.hr_spectra import device_stream, record_spectra
    rng = np.random.default_rng(0)
    t = np.arange(125 * 40) / 125.0
    rec = _rec({"ppg": 1380 + 100 * np.sin(2 * np.pi * 2.0 * t) + rng.normal(0, 2, t.size),
                "acc_x": 0.3 * np.sin(2 * np.pi * 1.4 * t), "acc_y": 0.2 * np.sin(2 * np.pi * 1.4 * t),
                "acc_z": 1.0 + 0.01 * np.sin(2 * np.pi * 1.4 * t) + rng.normal(0, 0.001, t.size)})
    chans = ["ppg", "acc_x", "acc_y", "acc_z"]
    x16, _, _ = device_stream(rec, chans)
    assert (np.abs(x16.astype(int)) < 32767).all() and np.ptp(x16, axis=1).min() > 1000
    x = np.stack([rec.signals[c] for c in chans])
    assert np.array_equal(x16[1:3], to_int16(x, "robust")[1:3])                  # the axes that fit: unchanged
    cfg = get_model_cfg("spec_student_xs")
    r = record_spectra(rec, cfg)
    bins = bin_bpm(frontend_cfg(cfg, 125.0))
    assert np.all(np.abs(bins[r.x[..., 0].argmax(axis=1)] - 120.0) <= 1.5)      # the pulse, every window


def test_spectral_truth_is_the_label_at_the_window_centre_like_the_time_domain_path(tmp_path):
    """A dataset file whose HR labels are 16 s windows (every 2 s) under 8 s model windows: the spectral path takes
    the label at the model window's centre, as the time-domain path does (one function, tasks._label_at_centres),
    not the 16 s label starting with the window (its HR centred 4 s later). HR ramps 0.4 BPM/s, so a label is the
    HR at its window's centre: the 8 s window [t0, t0 + 8) gets the HR at t0 + 4."""
    from label_windows import assert_truth_at_centres, label_16s_dataset
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.dataset_tasks import dataset_spectra
    ds = load_dataset_file(label_16s_dataset(tmp_path))
    r, = dataset_spectra(ds, get_model_cfg("spec_student_s"))
    assert_truth_at_centres(r.t0, r.y, ds)


@pytest.mark.parametrize("fs_in, near", [(64.0039, "64"), (32.7681, "32.8")])
def test_an_awkward_rate_near_a_workable_one_is_told_which_to_declare(fs_in, near):
    """A firmware engineer's 64.0039 Hz (a 32.768 kHz crystal's divider) was refused with no rate to use instead."""
    from sqtool.data.frontend import FrontEndCfg, _ratio
    with pytest.raises(SqtoolError, match=rf"too awkward .*; declare it as {near} Hz \(a 0\.\d+% rate error"):
        _ratio(FrontEndCfg(fs_in=fs_in, fs=16.0))
    assert _ratio(FrontEndCfg(fs_in=float(near), fs=16.0))                 # the rate it names is taken


def test_the_saturation_note_advises_per_channel_kind():
    """Past int16 under fixed gains: a PPG's advice is an optical front end's (counts per unit below 1, its DC
    removed); an accelerometer axis's is the unit (g, not m/s^2): the note spoke of an 18-bit optical front end
    when only acc_z, in m/s^2 at 4096 counts per g, was at its rail. Both kinds railed: both pieces of advice."""
    from sqtool.data.hr_spectra import saturation_note
    n = 1000
    ppg, acc = np.full(n, 120000.0), np.full(n, 9.80665)                   # 18-bit counts; gravity in m/s^2
    ok_ppg, ok_acc = np.full(n, 900.0), np.full(n, 1.0)
    gains, rows = [8, 4096, 4096, 4096], ["ppg", "acc_x", "acc_y", "acc_z"]
    acc_only = saturation_note(np.vstack([ok_ppg, ok_acc, ok_acc, acc]), gains, rows, "w")
    assert "100 % of acc_z's samples are past int16's +-32767" in acc_only and "9.80665" in acc_only
    assert "18-bit" not in acc_only and "PPG" not in acc_only and "DC" not in acc_only
    ppg_only = saturation_note(np.vstack([ppg, ok_acc, ok_acc, ok_acc]), gains, rows, "w")
    assert "100 % of ppg's" in ppg_only and "18-bit optical front end" in ppg_only and "below 1" in ppg_only
    assert "9.80665" not in ppg_only and "acceleration" not in ppg_only
    both = saturation_note(np.vstack([ppg, ok_acc, ok_acc, acc]), gains, rows, "w")
    assert "18-bit" in both and "9.80665" in both and "\n" not in both
    assert saturation_note(np.vstack([ok_ppg, ok_acc, ok_acc, ok_acc]), gains, rows, "w") is None
