"""`sqtool train finetune --task rr --model rr_spec` -> `sqtool export --target onnx,tflite` -> `sqtool predict`: the
respiratory-rate model with skill (benchmarks/downstream_skill.py's rr_spec) as a command a user runs, on the
embedded synthetic recordings (their breathing label is known).

- the fine-tune: subject folds, the skill block (trivial and classic beside it), per_subject.csv, the held-out
  subjects scored by the final model, model.pt (family resp_spec, its front end in the cfg), heldout.npz of spectra;
  resume after a kill is bit for bit; its refusals are one line each, before a folder is made;
- the export: float ONNX and TFLite equal PyTorch on the held-out spectra; INTEGRATION.md states the front end and
  the decoding with the model's numbers; the C target and int8 are refused in one line;
- predict: the stream's windows -> `data.resp` spectra -> the exported network -> breaths/min, the same on every
  runtime, equal to the checkpoint run by hand on the same spectra; its truth column and MAE come from the
  recordings' breathing label.
"""
import json

import numpy as np
import pytest
import torch

import sqtool.train.finetune_rr as FR
from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint
from sqtool.core.trainlog import LOG_FILE, read_log
from test_trainlog import same_log

ARGS = ["train", "finetune", "--task", "rr", "--model", "rr_spec", "--data", "synthetic", "--epochs", "2",
        "--max-records", "8", "--folds", "3", "--bootstrap", "20", "--progress", "false"]


@pytest.fixture(scope="module")
def rr_run(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("rr") / "run"
    assert main(ARGS + ["--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def rr_export(rr_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("rr_exp") / "exp"
    assert main(["export", "--model", str(rr_run), "--target", "onnx,tflite", "--out", str(out),
                 "--progress", "false"]) == 0
    return out


def test_finetune_reports_skill_and_ships_the_front_end(rr_run):
    m = json.loads((rr_run / "metrics.json").read_text())
    assert m["task"] == "rr" and m["model"] == "rr_spec" and m["n_folds"] == 3
    assert m["subjects"] == 6 and len(m["heldout_subjects"]) == 2             # 8 records: the last 0.2 held out
    with np.load(rr_run / "oof_predictions.npz") as z:
        assert np.isfinite(z["pred"]).all() and z["pred"].shape == z["y"].shape
        assert 4.0 <= z["pred"].min() and z["pred"].max() <= 40.0            # decoded rates on the grid's span
    sk = m["skill"]
    assert sk["classic"]["name"] and "mae" in sk["trivial"] and m["flag"] in ("", "no skill")
    assert (rr_run / "per_subject.csv").read_text().count("\n") == 1 + m["subjects"]
    h = m["heldout"]
    assert h["subjects"] == m["heldout_subjects"] and h["windows"] > 0 and np.isfinite(h["mae"])
    ck = load_checkpoint(rr_run)
    mc = ck["model_cfg"]
    assert ck["kind"] == "teacher_task" and mc["family"] == "resp_spec" and mc["frontend"]["type"] == "resp_spectrum"
    assert (mc["fs"], mc["window_s"], mc["hop_s"], list(mc["band"])) == (40.0, 30.0, 10.0, [0.05, 8.0])
    assert ck["train_subjects"] == sorted(f"synthetic:{r['subject']}" for r in m["per_subject"])
    assert ck["heldout_subjects"] == [f"synthetic:{h}" for h in m["heldout_subjects"]]
    with np.load(rr_run / "heldout.npz") as z:
        assert z["x"].shape[1:] == (4, 73) and len(z["x"]) == h["windows"]
        net = FR.predict_rr(_net(ck), z["x"])
        np.testing.assert_allclose(net, z["pred"][:, 0], rtol=0, atol=1e-4)    # the scored model is model.pt
        assert abs(np.abs(net - z["y"][:, 0]).mean() - h["mae"]) < 1e-4


def test_each_folds_rows_carry_its_held_out_mae_in_breaths_per_min(rr_run):
    """log.csv: after each epoch of a fold, its held-out subjects' decoded rate (MAE, breaths/min) and the training
    cross-entropy on them; the last epoch's MAE is the fold's out-of-fold figure in metrics.json."""
    rows, m = read_log(rr_run / LOG_FILE), json.loads((rr_run / "metrics.json").read_text())
    for f, pf in enumerate(m["per_fold"]):
        fold = [r for r in rows if r["fit"] == f"fold {f + 1}"]
        assert [r["metric"] for r in fold] == ["mae_breaths_per_min"] * 2
        assert all(float(r["val_loss"]) > 0 for r in fold)
        assert float(fold[-1]["val_metric"]) == pytest.approx(pf["mae"], rel=1e-5)


def _net(ck):
    from sqtool.models import load_model
    return load_model(ck).eval()


def test_resume_after_a_kill_is_bit_exact(tmp_path, monkeypatch):
    calls, real, kill = [], FR.fit_rr, {"at": None}

    def fit(*a, **kw):
        calls.append(kw["seed"])
        if len(calls) == kill["at"]:
            raise KeyboardInterrupt                                  # Ctrl-C / a kill while fold 2 trains
        return real(*a, **kw)
    monkeypatch.setattr(FR, "fit_rr", fit)
    assert main(ARGS + ["--out", str(tmp_path / "full")]) == 0
    kill["at"], calls[:] = 2, []
    run = tmp_path / "killed"
    assert main(ARGS + ["--out", str(run)]) == 130
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["fold_000.npz"]
    kill["at"], calls[:] = None, []
    assert main(["train", "finetune", "--resume", str(run), "--progress", "false"]) == 0
    assert calls == [1, 2, 1000]                                    # fold 1 reused; folds 2, 3 and the final fit
    a, b = (json.loads((p / "metrics.json").read_text()) for p in (tmp_path / "full", run))
    assert b["resumed_folds"] == [0]
    for k in set(a) - {"elapsed_s", "resumed_folds"}:
        assert a[k] == b[k], k
    sa, sb = load_checkpoint(tmp_path / "full")["state_dict"], load_checkpoint(run)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    same_log(tmp_path / "full", run)                                # log.csv: a row per epoch per fit, as if whole


@pytest.mark.parametrize("extra,match", [
    (["--init", "runs/x"], "no pretrained encoder"),
    (["--mode", "linear"], "no encoder to freeze"),
    (["--band-phase", "causal"], "zero-phase windows"),
    (["--window-s", "5"], "at least 10 s"),
    (["--channels", "ppg,acc_x"], "one PPG channel"),
    (["--fs", "8"], "at least 12 Hz"),
])
def test_refusals_are_one_line_before_a_folder(tmp_path, capsys, extra, match):
    out = tmp_path / "never"
    assert main(ARGS + extra + ["--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_task_other_than_rr_is_refused(tmp_path, capsys):
    args = [a if a != "rr" else "af" for a in ARGS]
    assert main(args + ["--out", str(tmp_path / "x")]) != 0
    assert "use --task rr" in capsys.readouterr().err


def test_export_float_parity_and_docs(rr_run, rr_export):
    rep = json.loads((rr_export / "export_report.json").read_text())
    rows = {r["artifact"]: r for r in rep["rows"]}
    assert {"ONNX float", "TFLite float (LiteRT)"} <= set(rows) and all(r["status"] == "ok" for r in rows.values())
    md = json.loads((rr_export / "metadata.json").read_text())
    assert md["bins_rpm"] == [4.0, 40.0, 0.5] and md["n_bins"] == 73 and md["outputs"] == ["rr_logits"]
    assert md["input_channels"] == ["baseline", "riiv", "riav", "rifv"]
    text = (rr_export / "INTEGRATION.md").read_text()
    for s in ("## Front end (`sqtool.data.resp.resp_window`", "find_peaks(xf, distance=13", "numpy.hanning(n)", "<= 3 breaths/min",
              "Band-pass 0.05-8 Hz", "`spectra` (1, 4, 73)"):
        assert s in text, s
    assert "@" not in text.replace("@VERSION", "")                     # every placeholder filled
    card = (rr_export / "MODEL_CARD.md").read_text()
    assert "scored by this model (never trained on them)" in card and "- held out (never trained on;" in card


@pytest.mark.parametrize("extra", [["--target", "c"], ["--target", "onnx", "--precision", "int8"]])
def test_export_refuses_c_and_int8(rr_run, tmp_path, capsys, extra):
    assert main(["export", "--model", str(rr_run), *extra, "--out", str(tmp_path / "e")]) != 0
    err = capsys.readouterr().err.strip()
    assert "no int8 twin and no C front end" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_predict_every_runtime_equals_the_checkpoint(rr_run, rr_export, tmp_path, capsys):
    from sqtool.data.resp import resp_spectra
    from sqtool.data.synthetic import synth_corpus
    from sqtool.firmware_bench.predict import PredictConfig, predict
    from sqtool.firmware_bench.stream import StreamSpec, replay
    recs = synth_corpus(n_subjects=2, duration_s=90, seed=7)
    md = json.loads((rr_export / "metadata.json").read_text())
    spec = StreamSpec.from_model_cfg(md, filter="window")
    S = resp_spectra(np.concatenate([replay(r, spec).x for r in recs]), 40.0)
    want = FR.predict_rr(_net(load_checkpoint(rr_run)), S)             # the checkpoint on the stream's spectra
    got = {}
    for rt in ("tflite", "onnx", "torch"):
        res = predict(PredictConfig(model=str(rr_export), data="records", runtime=rt, progress=False,
                                    out=str(tmp_path / rt)), records=recs)
        rows = [np.genfromtxt(tmp_path / rt / d["csv"], delimiter=",", names=True) for d in res["recordings"]]
        got[rt] = np.concatenate([r["rr_bpm"] for r in rows])
        assert all("truth_rr_bpm" in r.dtype.names for r in rows) and all(d["metrics"]["mae"] is not None
                                                                             for d in res["recordings"])
        np.testing.assert_allclose(got[rt], want, rtol=0, atol=2e-3)       # the CSV's 3 decimals
    assert res["columns"]["rr_bpm"] == "rr_bpm (breaths/min)"


def test_predict_refuses_an_int8_runtime(rr_export, tmp_path, capsys):
    assert main(["predict", "--model", str(rr_export), "--data", "synthetic", "--runtime", "c",
                 "--out", str(tmp_path / "p"), "--progress", "false"]) != 0
    err = capsys.readouterr().err.strip()
    assert "choose tflite, onnx, torch" in err and len(err.splitlines()) == 1


def test_predict_truth_is_trainings_on_bidmc(data_root):
    """predict's truth_rr_bpm of a BIDMC recording is the rr label training reads (its shipped dataset file: annotator
    1's breath marks, breaths/min in the window), not the monitor's numerics rr the reader also gives: on the same
    windows, equal (bidmc46: the numerics' rr is far from the annotations' in its first minutes, 21 vs 9.5)."""
    from sqtool.data.dataset_file import builtin_label
    from sqtool.data.readers import iter_records
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.firmware_bench.predict import truth_labels, window_targets
    from sqtool.models import get_model_cfg
    if not (data_root / "bidmc").is_dir():
        pytest.skip("bidmc absent")
    assert builtin_label("bidmc", "rr") == ["breaths_ann1"] and builtin_label("no_such_set", "rr") == []
    cfg = task_model_cfg("rr", get_model_cfg("rr_spec"))
    td = load_task("rr", data_root, cfg)
    rec = next(r for r in iter_records(data_root / "bidmc", "bidmc") if str(r.subject) == "bidmc46")
    m = np.asarray(td.groups).astype(str) == "bidmc46"
    y = window_targets(rec, truth_labels({"task": "rr", "outputs": ["rr_bpm"]}), td.t0[m], cfg.window_s)
    np.testing.assert_allclose(y["rr_bpm"], td.y[m, 0], rtol=0, atol=1e-5)          # td.y is float32
    from sqtool.firmware_bench.stream import window_truth
    numerics = window_truth(rec, td.t0[m], cfg.window_s, "rr")    # the monitor's rr, what predict read before
    assert np.nanmean(np.abs(numerics - td.y[m, 0])) > 2


def test_bench_scores_every_runtime_beside_the_classic_and_trivial(rr_export, tmp_path):
    """`sqtool bench` of the rr_spec export: its three float runtimes (front end + network + decoding) read the same
    rates, beside the classic estimator and the training rates' mean (metadata's train_target_mean); the int8 and C
    runtimes are not offered, and asking for one is refused in one line."""
    from sqtool.data.synthetic import synth_corpus
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    recs = synth_corpus(n_subjects=2, duration_s=90, seed=11)
    res = run_bench(BenchConfig(model=str(rr_export), out=str(tmp_path / "b"), progress=False), records=recs)
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert set(rows) == {"torch_teacher", "onnx_float", "litert_float"}
    maes = [rows[n]["metrics"]["mae"] for n in rows]
    assert all(r["status"] == "ok" for r in rows.values()) and max(maes) - min(maes) < 1e-3
    assert res["baseline"]["status"] == "ok" and np.isfinite(res["baseline"]["metrics"]["mae"])
    with pytest.raises(SqtoolError, match="no int8, no C"):
        run_bench(BenchConfig(model=str(rr_export), out=str(tmp_path / "c"), progress=False, runtime=["c_host"]),
                  records=recs)
    md = json.loads((rr_export / "metadata.json").read_text())
    assert res["trivial"]["method"].startswith(f"the training labels' mean, {md['train_target_mean'][0]:.4g}")


def test_a_deep_rr_fine_tune_without_skill_names_rr_spec(tmp_path, capsys):
    """The deep model's rr fine-tune, flagged no skill (or worse than the classic), names the rr model with skill in
    a hint line before its verdict; with skill it says nothing more. The verdict stays the last line."""
    args = ["train", "finetune", "--task", "rr", "--model", "resnet1d_siamq_tiny", "--data", "synthetic", "--epochs",
            "1", "--max-records", "6", "--folds", "2", "--bootstrap", "20", "--progress", "false"]
    assert main(args + ["--out", str(tmp_path / "deep")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    m = json.loads((tmp_path / "deep" / "metrics.json").read_text())
    hinted = [line for line in out if line.startswith("hint: --model rr_spec")]
    assert bool(hinted) == bool(m["flag"] or m["classic_flag"])
    assert out[-1].startswith("rr: mae model")


def test_a_teams_own_dataset_file(tmp_path):
    """A ward's own recordings (CSV at 125 Hz) and rr labels (one file of window starts and rates per recording),
    described by a dataset.yaml: rr_spec trains on it, the export names its subjects by pseudonym (in-house ids
    never leave), and predict reads the file's rr label as the truth column."""
    from sqtool.data.synthetic import synth_corpus
    root = tmp_path / "ward"
    (root / "rec").mkdir(parents=True)
    (root / "rr").mkdir()
    for r in synth_corpus(n_subjects=6, duration_s=120, seed=3):
        t = np.arange(len(r.signals["ppg"])) / 125.0
        np.savetxt(root / "rec" / f"{r.subject}_a.csv", np.c_[t, r.signals["ppg"]], delimiter=",", header="time,ppg",
                   comments="")
        lab = r.labels["rr"]
        np.savetxt(root / "rr" / f"{r.subject}_a.csv", np.c_[lab.times, lab.values], delimiter=",", header="start,rr",
                   comments="")
    (root / "dataset.yaml").write_text(
        "name: ward\nformat: csv\nfiles: \"rec/*.csv\"\nfs: 125\ntime_column: time\nchannels: {ppg: ppg}\n"
        "subject: {pattern: \"^rec/(?P<subject>[^_]+)_\"}\nwindows: {window_s: 8, hop_s: 2}\n"
        "labels:\n  rr: {file: \"rr/{stem}.csv\"}\n")
    yaml, run, exp = str(root / "dataset.yaml"), tmp_path / "run", tmp_path / "exp"
    assert main(["train", "finetune", "--task", "rr", "--model", "rr_spec", "--data", yaml, "--epochs", "2", "--folds",
                 "2", "--bootstrap", "20", "--progress", "false", "--out", str(run)]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["dataset"] == "ward" and m["subjects"] + len(m["heldout_subjects"]) == 6
    assert all(s.startswith("ward:syn") for s in load_checkpoint(run)["train_subjects"])
    assert main(["export", "--model", str(run), "--target", "onnx", "--out", str(exp), "--progress", "false"]) == 0
    md = json.loads((exp / "metadata.json").read_text())
    assert all(s.startswith("ward:subject-") for s in md["training_data"]["train_subjects"])
    assert "syn00" not in (exp / "MODEL_CARD.md").read_text() + (exp / "metadata.json").read_text()
    assert main(["predict", "--model", str(exp), "--data", yaml, "--out", str(tmp_path / "p"),
                 "--progress", "false"]) == 0
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert all(d["truth"] and d["metrics"]["mae"] is not None for d in s["recordings"])
    # bench on every recording of the file: the training subjects are found through the export's source checkpoint
    # (its fine-tune's model.pt: the export itself writes them as pseudonyms) and left out of the held-out verdict
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    b = run_bench(BenchConfig(model=str(exp), data=yaml, out=str(tmp_path / "b"), progress=False))
    assert set(b["seen_in_training"]) == set(load_checkpoint(run)["train_subjects"])


def test_quantize_refuses_it_naming_the_export(rr_run, tmp_path, capsys):
    """rr_spec ships as it is: quantize refuses its run in one line naming the export command, before a folder."""
    assert main(["quantize", "--model", str(rr_run), "--out", str(tmp_path / "q")]) != 0
    err = capsys.readouterr().err.strip()
    assert f"sqtool export --model {rr_run} --target onnx,tflite" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("command", ["predict", "bench"])
def test_another_stream_filter_is_refused_in_one_line(rr_export, tmp_path, capsys, command):
    """rr_spec's front end reads the zero-phase windows its fine-tune cut: predict / bench --filter causal fed it
    others silently (its rate moved by breaths/min); now one line before any output."""
    assert main([command, "--model", str(rr_export), "--data", "synthetic", "--filter", "causal", "--out",
                 str(tmp_path / "o"), "--progress", "false"]) == 1
    err = capsys.readouterr().err.strip()
    assert "whose front end reads the windows its fine-tune cut (--filter window)" in err and len(err.splitlines()) == 1
