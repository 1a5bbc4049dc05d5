"""benchmarks/beliefppg_peer.py without TensorFlow: arguments, a bad data root, and the output alignment."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from bench_scripts import load_benchmark

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "beliefppg_peer.py"


def load():
    return load_benchmark("beliefppg_peer")


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_help_and_bad_data_root_install_nothing(tmp_path):
    r = run("--help")
    assert r.returncode == 0 and "--datasets" in r.stdout
    r = run("--data-root", str(tmp_path / "nope"), "--venv", str(tmp_path / "venv"))
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("beliefppg_peer:")
    assert "nope" in r.stderr and not (tmp_path / "venv").exists()
    assert run("--datasets", "bidmc").returncode != 0


def test_output_k_scores_truth_window_k_plus_frames_minus_one(tmp_path):
    m = load()
    fs, n_win, n_frames = 10, 20, 7
    n = int((n_win - 1) * 2 * fs + 8 * fs)                    # exactly n_win 8 s windows every 2 s
    truth = 60.0 + np.arange(n_win)                            # window i -> 60 + i BPM
    truth[3] = np.nan                                          # a doubtful window is left out
    hr = 60.0 + np.arange(n_frames - 1, n_win) + np.array([[1.0], [-3.0]])   # (2 draws, K): window k+6 +1 / -3
    npz = tmp_path / "r1.npz"
    np.savez(npz.with_suffix(".out.npz"), hr=hr, unc=hr * 0, n_frames=n_frames, seconds=0.5)
    rec = dict(dataset="troika", subject="01", record="r1", npz=npz, n_samples=n, fs=fs,
               idx=np.arange(n_win), truth=truth, ppg_channels=["ppg", "ppg2"])
    d = m.score([rec])["troika"]
    r = d["recordings"]["r1"]
    assert r["n_scored"] == n_win - 1 and r["n_doubtful"] == 1 and d["n_draws"] == 2
    assert np.isclose(r["mae_covered"], 2.0)                  # aligned windows: off by 1 and 3, mean over draws
    assert r["mae"] > 2.0                                     # the back-filled first 6 windows are worse
    assert r["truth"][3] is None and d["pooled_mae"] == r["mae"] == d["mean_of_subjects_mae"]
    assert np.isclose(np.mean(d["per_draw"]["pooled"]), d["pooled_mae"]) and np.ptp(d["per_draw"]["pooled"]) > 0.5
    np.savez(npz.with_suffix(".out.npz"), hr=hr[:, 1:], unc=hr[:, 1:], n_frames=n_frames, seconds=0.5)
    try:
        m.score([rec])
    except SystemExit as e:
        assert "outputs" in str(e)
    else:
        raise AssertionError("a wrong number of outputs must be refused")


def test_own_dataset_file_is_exported_for_the_peer(tmp_path):
    """--data FILE: a team's dataset.yaml (the README's CSV example) gives one npz per recording with its PPG, acc
    and their rates, and truth on the 2 s grid, before any environment is made; a bare folder (no labels) and a
    missing file are one line each, installing nothing."""
    import sys as _sys
    _sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_hr_spectral_bench import watch_dataset
    m = load()
    yaml = watch_dataset(tmp_path / "my_watch", subjects=("s01", "s02"))
    sets = m.sources(None, [], yaml)
    assert [(name, ch) for name, _, ch in sets] == [("my_watch", None)]
    recs = m.export(sets, tmp_path / "work")
    assert [r["subject"] for r in recs] == ["s01", "s02"] and all(r["ppg_channels"] == ["ppg"] for r in recs)
    z = np.load(recs[0]["npz"])
    assert z["ppg"].shape[1] == 1 and z["acc"].shape[1] == 3 and int(z["fs"]) == int(z["acc_fs"]) == 125
    assert np.array_equal(recs[0]["idx"], np.arange(len(recs[0]["truth"])))     # 8 s windows every 2 s from 0
    assert np.nanmin(recs[0]["truth"]) > 60
    for bad, says in ((str(tmp_path / "my_watch" / "recordings"), "no heart-rate labels"),
                      (str(tmp_path / "none.yaml"), "no such dataset file")):
        r = run("--data", bad, "--venv", str(tmp_path / "venv"), "--out", str(tmp_path / "o"))
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode != 0 and last.startswith("beliefppg_peer:") and says in last, r.stderr
        assert not (tmp_path / "venv").exists()


def test_rescore_scores_saved_predictions_against_the_truth_read_now(tmp_path):
    """--rescore JSON: a saved run's per-window predictions scored again against the truth the readers give now
    (the ECG reference's definition changed once), with no environment made and no runner; a saved run whose
    windows differ from the recording's now, and a file that is not a results file, are one line each."""
    import json
    import sys as _sys
    _sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_hr_spectral_bench import watch_dataset
    m = load()
    yaml = watch_dataset(tmp_path / "my_watch", subjects=("s01", "s02"))
    recs = m.export(m.sources(None, [], yaml), tmp_path / "work", write=False)
    assert not (tmp_path / "work" / "my_watch").exists() or not any((tmp_path / "work" / "my_watch").iterdir())
    shift = {"s01": 1.0, "s02": 3.0}
    entries = {r["record"]: dict(subject=r["subject"], seconds=1.0, offset=6,   # what the saved run predicted
                                 pred=[[None if np.isnan(v) else round(v + shift[r["subject"]] - 10.0, 2)
                                        for v in r["truth"]]] * 2) for r in recs}
    saved = dict(package=m.PACKAGE, decoding="sumproduct", seeds=2, when="then", command="python ...", peer_s=1.0,
                 wall_s=2.0, datasets={"my_watch": dict(recordings=entries)})
    (tmp_path / "saved.json").write_text(json.dumps(saved))
    out = tmp_path / "o"
    m.main(["--data", yaml, "--rescore", str(tmp_path / "saved.json"), "--out", str(out),
            "--venv", str(tmp_path / "venv")])
    res = json.loads((out / "beliefppg_peer_my_watch.json").read_text())
    d = res["datasets"]["my_watch"]
    # the saved predictions were 10 BPM under (truth + shift): scored against today's truth, |shift - 10|
    assert np.isclose(d["subjects"]["s01"]["mae"], 9.0, atol=0.01) and np.isclose(d["subjects"]["s02"]["mae"], 7.0,
                                                                                   atol=0.01)
    assert res["when"] == "then" and str(tmp_path / "saved.json") in res["rescored"]["command"]
    assert "Re-scored" in (out / "beliefppg_peer_my_watch.md").read_text() and not (tmp_path / "venv").exists()
    first = next(iter(entries))
    entries[first]["pred"] = [row[:-1] for row in entries[first]["pred"]]          # one window fewer than now
    (tmp_path / "short.json").write_text(json.dumps(saved))
    (tmp_path / "bad.json").write_text(json.dumps({"datasets": {"x": {"recordings": {"r": {}}}}}))
    for f, says in (("short.json", "needs the same windows"), ("bad.json", "not a beliefppg_peer results file"),
                    ("none.json", "no such file")):
        r = run("--data", yaml, "--rescore", str(tmp_path / f), "--out", str(out))
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode != 0 and last.startswith("beliefppg_peer:") and says in last, r.stderr
