"""The spectral bench's inputs beside the runtimes': the classic baseline reads the PPG sensors the model reads
(its frontend ppg_sensors, averaged), and the truth is the label at the model window's centre."""
from __future__ import annotations

import numpy as np

from sqtool.data.record import Label, Record
from sqtool.firmware_bench.cli import BenchConfig, run_bench

FS = 125.0


def _two_sensor_record(seconds: float = 60.0, hr: float = 90.0) -> Record:
    """ppg: the pulse at hr under a stronger 130 BPM artifact; ppg2: the pulse alone. ppg read alone tracks the
    artifact; the mean of the two normalised spectra tracks the pulse. HR labels: 8 s windows every 2 s."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * FS)) / FS
    pulse = np.sin(2 * np.pi * hr / 60 * t)
    sig = {"ppg": 0.6 * pulse + np.sin(2 * np.pi * 130 / 60 * t) + 0.05 * rng.standard_normal(t.size),
           "ppg2": pulse + 0.05 * rng.standard_normal(t.size),
           "acc_x": 0.001 * rng.standard_normal(t.size), "acc_y": 0.001 * rng.standard_normal(t.size),
           "acc_z": 1.0 + 0.001 * rng.standard_normal(t.size)}
    starts = np.arange(0.0, seconds - 8.0 + 1e-9, 2.0)
    lab = Label(values=np.full(len(starts), hr), times=starts, unit="bpm", kind="window", window_s=8.0)
    return Record("synthetic", "two", "two_a", sig, {c: FS for c in sig}, labels={"hr": lab})


def test_baseline_reads_the_sensors_the_model_averages(spec_export_dir, tmp_path):
    from sqtool.firmware_bench import spectral
    from sqtool.data.hr_baseline import BaselineCfg, baseline_hr
    from sqtool.firmware_bench.runtimes import load_artifacts
    rec = _two_sensor_record()
    art = load_artifacts(spec_export_dir)
    mc = art.metadata["model_cfg"]
    assert spectral.export_ppg_sensors(art) == 2 and tuple(mc["frontend"]["ppg_sensors"]) == ("ppg", "ppg2")
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="two", runtime=["onnx_int8"], callgrind_windows=0,
                                progress=False, out=str(out)), records=[rec])
    r = spectral.prepare(rec, mc, n_sensors=2)
    both = baseline_hr(rec, r.t0, 8.0, BaselineCfg(ppg_sensors=("ppg", "ppg2")))["hr"]
    first = baseline_hr(rec, r.t0, 8.0, BaselineCfg())["hr"]
    mae = spectral.hr_scores(both, r.truth)["mae"]
    assert mae < 3.0 < 20.0 < spectral.hr_scores(first, r.truth)["mae"]     # ppg alone tracks the artifact
    assert res["baseline"]["metrics"]["mae"] == mae and res["baseline"]["ppg_sensors"] == "ppg + ppg2"
    assert "baseline: PPG sensors read: ppg + ppg2, the sensors the model's front end reads" in (
        out / "bench.md").read_text()
    # a device replaying one sensor (the export's count): the baseline reads that one, as the runtimes do
    assert spectral.baseline_sensors(spectral.prepare(rec, mc, n_sensors=1), mc) == ("ppg",)
    one = Record("synthetic", "one", "one_a", {k: v for k, v in rec.signals.items() if k != "ppg2"},
                 {k: v for k, v in rec.fs.items() if k != "ppg2"}, labels=rec.labels)
    assert spectral.baseline_sensors(spectral.prepare(one, mc, n_sensors=2), mc) == ("ppg",)
    assert spectral.sensors_text([("ppg", "ppg2")] * 3 + [("ppg",)]) == "ppg + ppg2 (3 recordings), ppg (1 recording)"


def _label_16s_dataset(tmp_path):
    """A dataset file whose HR labels are 16 s windows every 2 s (the HR ramps 0.4 BPM/s, so a label is the HR at
    its window's centre), as tests/data/test_hr_spectra.py builds it; its one recording."""
    from label_windows import label_16s_dataset
    from sqtool.data.dataset_file import load_dataset_file
    ds = load_dataset_file(label_16s_dataset(tmp_path))
    rec, = ds.records()
    assert rec.labels["hr"].window_s == 16.0
    return ds, rec


def test_bench_truth_is_the_label_at_the_model_window_centre(spec_export_dir, tmp_path):
    """16 s label windows under 8 s model windows: both benches score the window [t0, t0 + 8) against the HR at
    t0 + 4, as training takes it (the time-domain bench matched the label STARTING at t0, centred at t0 + 8; the
    spectral bench matched labels as long as the model's window)."""
    from label_windows import assert_truth_at_centres
    from sqtool.firmware_bench import spectral
    from sqtool.firmware_bench.runtimes import load_artifacts
    from sqtool.firmware_bench.stream import StreamSpec, replay
    from sqtool.models import get_model_cfg
    ds, rec = _label_16s_dataset(tmp_path)
    # the time-domain bench's stream (an 8 s / 2 s student) against the time-domain training path
    rp = replay(rec, StreamSpec.from_model_cfg(get_model_cfg("cnn1d_student_xs")), chunk=25)
    assert_truth_at_centres(rp.t0, rp.truth, ds)
    # the spectral bench's front end at the export's model window
    mc = load_artifacts(spec_export_dir).metadata["model_cfg"]
    w = float(mc["window_s"])
    r = spectral.prepare(rec, mc)
    ok = np.isfinite(r.truth)
    assert ok.sum() >= 20 and np.allclose(r.truth[ok], 60.0 + 0.4 * (r.t0[ok] + w / 2), atol=1e-3)
