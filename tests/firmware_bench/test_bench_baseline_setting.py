"""bench's classic baseline is the one the model card quotes: the notch and PPG sensors the quantize run chose on
its training subjects (its metrics.json classic_baseline), which export carries into metadata.json; bench scored
the default notch (4 BPM) instead, so its held-out comparison was against another baseline than the card's."""
from __future__ import annotations

import json

import numpy as np

from sqtool.data.record import Label, Record
from sqtool.firmware_bench.cli import BenchConfig, run_bench

FS = 125.0


def _motion_record(seconds: float = 60.0, hr: float = 90.0, motion: float = 100.0) -> Record:
    """The pulse at hr beside arm motion at `motion` BPM (in the accelerometer and in both PPG sensors): a notch of
    +-12 BPM around the motion peak also removes the pulse, +-4 BPM does not."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * FS)) / FS
    pulse, mo = np.sin(2 * np.pi * hr / 60 * t), np.sin(2 * np.pi * motion / 60 * t)
    sig = {"ppg": pulse + 0.8 * mo + 0.05 * rng.standard_normal(t.size),
           "ppg2": 0.7 * pulse + 0.6 * mo + 0.05 * rng.standard_normal(t.size),
           "acc_x": 0.5 * mo + 0.01 * rng.standard_normal(t.size), "acc_y": 0.01 * rng.standard_normal(t.size),
           "acc_z": 1.0 + 0.01 * rng.standard_normal(t.size)}
    starts = np.arange(0.0, seconds - 8.0 + 1e-9, 2.0)
    lab = Label(values=np.full(len(starts), hr), times=starts, unit="bpm", kind="window", window_s=8.0)
    return Record("synthetic", "mo", "mo_a", sig, {c: FS for c in sig}, labels={"hr": lab})


def test_bench_scores_the_baseline_the_quantize_run_chose(tmp_path):
    import torch

    from export_fixtures import make_spec_int8_run
    from sqtool.data.hr_baseline import BaselineCfg, baseline_hr
    from sqtool.export.cli import ExportConfig, export
    from sqtool.firmware_bench import spectral
    torch.set_num_threads(1)
    run = make_spec_int8_run(tmp_path / "quantize", "spec_student_xs", n_heldout=0, n_calib=16)
    chosen = {"notch_bpm": 12.0, "ppg_sensors": ["ppg2"], "name": "spectral peak ... chosen on the training subjects"}
    (run / "metrics.json").write_text(json.dumps({"task": "hr", "classic_baseline": chosen}))
    ex = export(ExportConfig(model=str(run), target=["onnx"], out=str(tmp_path / "export"), random_windows=8))
    assert ex["failed"] == [], ex["summary"]
    md = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert (md["classic_baseline"]["notch_bpm"], md["classic_baseline"]["ppg_sensors"]) == (12.0, ["ppg2"])

    rec = _motion_record()
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(tmp_path / "export"), data="mo", runtime=["onnx_int8"],
                                callgrind_windows=0, progress=False, out=str(out)), records=[rec])
    r = spectral.prepare(rec, md["model_cfg"], n_sensors=2)
    at = {n: spectral.hr_scores(baseline_hr(rec, r.t0, 8.0, BaselineCfg(ppg_sensors=("ppg2",), notch_bpm=n))["hr"],
                                r.truth)["mae"] for n in (4.0, 12.0)}
    assert abs(at[12.0] - at[4.0]) > 1.0                         # the notch matters on this recording
    assert res["baseline"]["metrics"]["mae"] == at[12.0]
    assert (res["baseline"]["notch_bpm"], res["baseline"]["ppg_sensors"]) == (12.0, "ppg2")
    text = (out / "bench.md").read_text()
    assert "classic baseline: notch +-12 BPM, chosen on the training subjects" in text
    assert json.loads((out / "bench.json").read_text())["baseline"]["notch_bpm"] == 12.0


def test_bench_says_it_keeps_the_default_without_a_chosen_baseline(spec_export_dir, tmp_path):
    """An export whose metadata.json has no classic_baseline (older, a final fit): the default notch, said so."""
    from sqtool.firmware_bench.runtimes import load_artifacts
    from test_bench_spectral_inputs import _two_sensor_record
    assert "classic_baseline" not in load_artifacts(spec_export_dir).metadata
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="two", runtime=["onnx_int8"], callgrind_windows=0,
                                progress=False, out=str(out)), records=[_two_sensor_record()])
    assert res["baseline"]["notch_bpm"] == 4.0
    assert "classic baseline: notch +-4 BPM, the default" in (out / "bench.md").read_text()
