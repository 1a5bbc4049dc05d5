"""An export that ships the kit's accelerometer resampler (`sqtool export --device-acc-fs`, metadata acc_resampler):
`sqtool predict`, `sqtool bench` and `sqtool.load_model(...).predict` bring an accelerometer at its own rate to the
PPG's with that integer filter, as the device does (int16 counts at the accelerometer's rate, then
c/sq_acc_resampler.c), not with the host's float polyphase filter, so their heart rate is the device's."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz
from test_api import _csv_rows
from test_predict_inputs import AXES, _half_rate_acc, api_hr

from sqtool.cli import main
from sqtool.data.acc_resampler import resample_acc
from sqtool.data.frontend import to_int16
from sqtool.data.hr_spectra import shared_acc_gain

HARNESS = Path(__file__).resolve().parent.parent / "export" / "ar_harness.c"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
INTEGER_NOTE = ("note: 1 recording with channels at another rate than the PPG: resampled to the PPG's rate on the "
                "host by the export's integer accelerometer resampler (bit-exact with its C, as the device does), "
                "e.g. half: acc_x, acc_y, acc_z 62.5 Hz -> 125 Hz")


def _c_acc_resampler(c_dir: Path, acc: np.ndarray, work: Path) -> np.ndarray:
    """acc (M, 3) int16 through the export's own c/sq_acc_resampler.c (one push) -> (K, 3) int16."""
    work.mkdir(parents=True, exist_ok=True)
    exe = work / "ar"
    subprocess.run(["gcc", "-std=c99", "-O2", f"-I{c_dir}", str(c_dir / "sq_acc_resampler.c"), str(HARNESS), "-o",
                    str(exe)], check=True, capture_output=True, text=True)
    payload = struct.pack("<iii", len(acc), 1, len(acc)) + np.ascontiguousarray(acc, "<i2").tobytes()
    r = subprocess.run([str(exe)], input=payload, capture_output=True, timeout=60)
    assert r.returncode == 0, r.returncode
    return np.frombuffer(r.stdout, "<i2").reshape(-1, 3)


def _device_stream(export: Path, half: Path, work: Path) -> np.ndarray:
    """(5, N) int16: what the device pushes into its pipeline for `half`'s samples: the two PPG sensors' counts at
    125 Hz, the accelerometer's counts at 62.5 Hz through the kit's C resampler (robust gains per recording, as
    predict gives every recording)."""
    md = json.loads((export / "metadata.json").read_text())
    z = np.load(half)
    ppg16 = to_int16(np.stack([z["ppg"], z["ppg2"]]), "robust")                        # (2, N)
    shared = [0, 1, 2] if shared_acc_gain(md["model_cfg"]) else []
    a16 = to_int16(np.stack([z[a] for a in AXES]), "robust", share=shared)             # (3, N / 2)
    acc = _c_acc_resampler(export / "c", a16.T, work)                                   # (N, 3)
    assert np.array_equal(acc, resample_acc(a16.T, 62.5, 125.0))                        # the reference, bit for bit
    n = min(ppg16.shape[1], len(acc))
    return np.vstack([ppg16[:, :n], acc[:n].T])


@needs_gcc
def test_predict_and_the_api_give_the_devices_heart_rate(acc_export, tmp_path, capsys):
    """Before: predict resampled the 62.5 Hz accelerometer with the float filter whatever the export shipped, so its
    windows were not the device's. Now the samples it streams are the device's (the C resampler's outputs), its CSV
    is what the C pipeline gives on them, the note says which resampler ran, and the api gives the same numbers."""
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.predict import PredictConfig, prepare_spectral
    from sqtool.firmware_bench.spectral import CPipelineHost
    from sqtool.data.readers import read_npz
    half = _half_rate_acc(write_wrist_npz(tmp_path / "full.npz", seconds=30, ppg2=True), tmp_path / "half.npz")
    x16 = _device_stream(acc_export, half, tmp_path / "ar")

    prep = prepare_spectral(PredictConfig(model=str(acc_export), progress=False), R.load_artifacts(acc_export),
                            [read_npz(half)])
    assert np.array_equal(prep["recs"][0].x16, x16)                     # predict streams the device's samples

    rc = main(["predict", "--model", str(acc_export), "--data", str(half), "--out", str(tmp_path / "p"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert [ln for ln in out.splitlines() if ln.startswith("note:")] == [INTEGER_NOTE]
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["runtime"] == "c_pipeline" and s["recordings"][0]["resampled_from_hz"] == {a: 62.5 for a in AXES}
    rows = _csv_rows(tmp_path / "p" / s["recordings"][0]["csv"])
    device, _ = CPipelineHost(acc_export / "c", tmp_path / "pl").run(x16, None, 125.0, n_ppg=2)
    assert len(rows) == len(device["hr_mbpm"]) == 12
    assert [row["hr_bpm"] for row in rows] == [f"{v / 1000:.3f}" for v in device["hr_mbpm"]]
    assert api_hr(acc_export, half) == [row["hr_bpm"] for row in rows]


@needs_gcc
def test_bench_says_the_kits_resampler_ran(acc_export, tmp_path, capsys):
    """bench replays through the same samples (`spectral.prepare_all`) and says so in bench.json."""
    data = tmp_path / "data"
    data.mkdir()
    _half_rate_acc(write_wrist_npz(tmp_path / "full.npz", seconds=30, ppg2=True), data / "half.npz")
    rc = main(["bench", "--model", str(acc_export), "--data", str(data), "--runtime", "c_pipeline", "--no-progress",
               "--out", str(tmp_path / "b")])
    assert rc == 0, capsys.readouterr().err
    assert INTEGER_NOTE in json.loads((tmp_path / "b" / "bench.json").read_text())["notes"]
