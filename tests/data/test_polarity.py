"""PPG polarity detector (sqtool.data.polarity): a warning for a PPG that looks upside down, the data unchanged.
Derivative skew on the still windows: a pulse rises faster than it falls (benchmarks/results/ppg_polarity.md)."""
import dataclasses

import numpy as np
import pytest

from sqtool.data import polarity as P
from sqtool.data.synthetic import synth_record


def flipped(rec, ch="ppg"):
    return dataclasses.replace(rec, signals={**rec.signals, ch: -np.asarray(rec.signals[ch], float)})


@pytest.fixture(scope="module")
def synth():
    return synth_record(duration_s=120.0, fs=64.0, seed=3)             # ppg + acc_x/y/z, motion bursts


def test_a_synthetic_ppg_reads_normal_and_its_negative_inverted(synth):
    up, down = P.record_polarity(synth, "ppg"), P.record_polarity(flipped(synth), "ppg")
    assert up.chosen_by == down.chosen_by == "motion" and up.windows == down.windows >= P.MIN_WINDOWS
    assert up.verdict == "normal" and up.skew >= P.MIN_SKEW
    assert down.verdict == "inverted" and down.skew == pytest.approx(-up.skew)   # the same windows, mirrored
    assert P.polarity_warning("syn", "ppg", up) is None
    line = P.polarity_warning("syn", "ppg", down)
    assert line.startswith("WARNING: syn PPG looks inverted") and "gain: -1" in line and len(line) < 130


def test_without_an_accelerometer_the_periodic_windows_decide(synth):
    ppg_only = dataclasses.replace(synth, signals={"ppg": synth.signals["ppg"]}, fs={"ppg": synth.fs["ppg"]})
    up, down = P.record_polarity(ppg_only, "ppg"), P.record_polarity(flipped(ppg_only), "ppg")
    assert up.chosen_by == "periodicity" and (up.verdict, down.verdict) == ("normal", "inverted")


def test_noise_or_motion_throughout_is_undetermined(synth):
    rng = np.random.default_rng(0)
    noise = P.ppg_polarity(rng.standard_normal(64 * 120), 64.0)        # no pulse: no verdict either way
    assert noise.verdict == "undetermined" and abs(noise.skew) < P.MIN_SKEW
    shaking = {c: synth.signals[c] + 0.5 * np.sin(2 * np.pi * 2.5 * np.arange(len(synth.signals[c])) / 64.0)
               for c in P.ACC}                                         # never still: the skew is not read
    moving = dataclasses.replace(flipped(synth), signals={**flipped(synth).signals, **shaking})
    p = P.record_polarity(moving, "ppg")
    assert p.verdict == "undetermined" and p.windows < P.MIN_WINDOWS
    short = P.ppg_polarity(-synth.signals["ppg"][: 64 * 12], 64.0)     # 3 windows: too few to say
    assert short.verdict == "undetermined"


def test_inspect_summary_warns_on_the_inverted_recording_only(synth, tmp_path):
    from sqtool.data.readers.summary import format_summary, summarise
    inv = dataclasses.replace(flipped(synth), record_id="syn_inv", subject="syn1")
    s = summarise(tmp_path, records=[synth, inv])
    assert s["polarity"]["normal"] == 1 and [b["record"] for b in s["polarity"]["inverted"]] == ["syn_inv"]
    text = format_summary(s)
    warn = [ln for ln in text.splitlines() if ln.startswith("WARNING:")]
    assert len(warn) == 1 and "syn_inv PPG looks inverted" in warn[0] and "gain: -1" in warn[0]
    assert "PPG polarity: 1 normal, 1 inverted, 0 undetermined (of 2 channels)" in text
    assert "WARNING" not in format_summary(summarise(tmp_path, records=[synth]))


def test_a_real_recording_as_delivered_has_no_warning_flipped_one(data_root):
    from sqtool.data.readers import iter_records
    for name, rid in (("troika", "DATA_01_TYPE01"), ("bidmc", "bidmc01")):
        rec = next(r for r in iter_records(data_root / name) if r.record_id == rid)
        up, down = P.record_polarity(rec, "ppg"), P.record_polarity(flipped(rec), "ppg")
        assert up.verdict == "normal", (name, up)
        assert down.verdict == "inverted", (name, down)
        assert P.polarity_warning(rid, "ppg", down) and not P.polarity_warning(rid, "ppg", up)
