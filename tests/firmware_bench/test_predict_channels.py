"""predict says which of a recording's channels fed each model input row (summary.json channels_fed): an audit could
not tell which PPG sensor a two-sensor recording fed a model (the first, the model's frontend ppg_sensors in their
order) nor which accelerometer of a device with two."""
from __future__ import annotations

import json

import numpy as np

from sqtool.data.record import Record
from sqtool.firmware_bench.predict import FED_NOTE, PredictConfig, predict
from sqtool.firmware_bench.runtimes import load_artifacts


def _record(rid: str, ppg: tuple[str, ...]) -> Record:
    """30 s at 125 Hz: the PPG channels `ppg` (each its own pulse), acc_x..z and a second accelerometer."""
    rng = np.random.default_rng(0)
    t = np.arange(3750) / 125.0
    sig = {c: np.sin(2 * np.pi * (1.2 + 0.3 * i) * t) + 0.1 * rng.standard_normal(t.size) for i, c in enumerate(ppg)}
    sig.update({f"{a}_{x}": 0.05 * rng.standard_normal(t.size) for a in ("acc", "acc_wide") for x in "xyz"})
    return Record("mine", "s1", rid, sig, {c: 125.0 for c in sig})


def test_summary_names_the_channel_fed_to_each_row(spec_export_dir, tmp_path):
    sensors = load_artifacts(spec_export_dir).metadata["model_cfg"]["frontend"]["ppg_sensors"]
    assert sensors == ["ppg", "ppg2"]                                   # the fixture's device: two PPG sensors
    recs = [_record("two", ("ppg", "ppg2")), _record("one", ("ppg",)), _record("swap", ("ppg2", "ppg3", "ppg"))]
    res = predict(PredictConfig(model=str(spec_export_dir), runtime="torch", out=str(tmp_path / "p"),
                                progress=False), records=recs)
    acc = {f"acc_{x}": f"acc_{x}" for x in "xyz"}                       # by name: acc_wide_* is never read
    fed = {r["record_id"]: r["channels_fed"] for r in res["recordings"]}
    assert fed == {"two": {"ppg": "ppg", "ppg2": "ppg2", **acc},
                   "one": {"ppg": "ppg", "ppg2": "ppg", **acc},         # a missing second sensor repeats the first
                   "swap": {"ppg": "ppg", "ppg2": "ppg2", **acc}}       # ppg_sensors' order; ppg3 left out
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["recordings"][0]["channels_fed"] == fed["two"] and s["channels_fed"] == FED_NOTE


def test_a_one_sensor_export_reads_the_first_of_the_models_sensors(spec_export_dir):
    """The rows of a device with fewer sensors than the recording: the first of ppg_sensors (an extra one left
    out), as the front end's samples are fitted (`spectral.fit_sensors`)."""
    from sqtool.data.frontend import to_int16
    from sqtool.firmware_bench import spectral as S
    from sqtool.firmware_bench.predict import fed_channels
    mc = load_artifacts(spec_export_dir).metadata["model_cfg"]
    rec = _record("two", ("ppg2", "ppg"))
    one = S.prepare(rec, mc, n_sensors=1)
    assert fed_channels(one) == {"ppg": "ppg", **{f"acc_{x}": f"acc_{x}" for x in "xyz"}}
    assert np.array_equal(one.x16[0], to_int16(rec.signals["ppg"][None], "robust")[0])     # the row it names


def test_a_recording_off_its_whole_hz_clock_is_predicted_with_a_note(spec_export_dir, tmp_path):
    """A smartwatch's timestamps give 19.58 Hz for its nominal 20: the front end cannot resample from that rate,
    so predict resamples the recording to 20 Hz (time kept), reads its pulse and says so in one note line (it was
    refused, and the user had to resample the file by hand)."""
    def record(rid, fs):                               # the same 60 s of pulse and arm swing, sampled at fs
        t = np.arange(int(60 * fs)) / fs
        sig = {"ppg": np.sin(2 * np.pi * 1.5 * t) + 0.3 * np.sin(2 * np.pi * 0.9 * t + 1.0),
               **{f"acc_{x}": (0.1 + 0.05 * i) * np.sin(2 * np.pi * 0.9 * t + i) for i, x in enumerate("xyz")}}
        return Record("mine", "s1", rid, sig, {c: fs for c in sig})
    res = predict(PredictConfig(model=str(spec_export_dir), runtime="torch", out=str(tmp_path / "p"),
                                progress=False), records=[record("watch", 19.581367), record("nominal", 20.0)])
    assert [n for n in res["notes"] if "whole-Hz" in n] == [
        "note: 1 recording sampled off a whole-Hz rate (a device clock measured from its timestamps) resampled to it "
        "for the front end, e.g. watch: ppg, acc_x, acc_y, acc_z 19.5814 -> 20 Hz; firmware that takes that clock "
        "for 20 Hz reads heart rates +2.1 % off"]
    off, nominal = res["recordings"]
    assert off["windows"] == nominal["windows"] and abs(off["hr_median"] - nominal["hr_median"]) <= 1.5
