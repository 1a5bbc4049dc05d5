"""`sqtool train finetune --task af --model af_beats` -> `sqtool export --target onnx` -> `sqtool predict` / `bench`:
the AF model with skill (benchmarks/downstream_skill.py's nested af_beats) as a command, on the embedded synthetic
recordings (their rhythm label is known).

- the fine-tune: subject folds with the trees' cfg chosen inside each fold's training subjects, the skill block,
  the held-out subjects scored by the final model, model.pt (family beat_trees: the features it reads, by name),
  heldout.npz of float64 features; its refusals are one line each;
- the export: ONNX only (float64 features in), equal to the checkpoint; TFLite, int8 and C refused in one line;
- predict and bench: the stream's windows -> data.beats features -> the ONNX / torch trees -> p_af, the same on
  both runtimes and equal to the checkpoint on those features.
"""
import json

import numpy as np
import pytest
import torch

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint
from sqtool.models import load_model

ARGS = ["train", "finetune", "--task", "af", "--model", "af_beats", "--data", "synthetic", "--max-records", "10",
        "--folds", "3", "--bootstrap", "20", "--progress", "false"]


@pytest.fixture(scope="module")
def af_run(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("af") / "run"
    assert main(ARGS + ["--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def af_export(af_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("af_exp") / "exp"
    assert main(["export", "--model", str(af_run), "--target", "onnx", "--out", str(out), "--progress", "false"]) == 0
    return out


def test_finetune_is_nested_and_ships_its_features(af_run, monkeypatch):
    m = json.loads((af_run / "metrics.json").read_text())
    assert m["task"] == "af" and m["model"] == "af_beats" and m["n_folds"] == 3 and m["subjects"] == 8
    assert m["skill"]["classic"]["name"].startswith("normalised RMSSD") and "auroc" in m["metrics"]
    h = m["heldout"]
    assert h["subjects"] == m["heldout_subjects"] and h["metric"] == "f1_weighted" and "auroc" in h["metrics"] and h["windows"] > 0
    assert len(h["subjects"]) == 2 and h["ci95"] is None and "fewer than 5 spans their range" in h["ci_note"]  # was min-max
    ck = load_checkpoint(af_run)
    mc = ck["model_cfg"]
    assert mc["family"] == "beat_trees" and mc["frontend"]["type"] == "beat_features"
    assert (mc["fs"], mc["window_s"]) == (100.0, 10.0) and mc["arch"]["trees_cfg"]["max_iter"] == 200
    with np.load(af_run / "heldout.npz") as z:
        x, pred = z["x"], z["pred"]
    assert x.dtype == np.float64 and x.shape[1:] == (1, len(mc["frontend"]["features"]))
    with torch.no_grad():
        np.testing.assert_allclose(load_model(ck)(torch.from_numpy(x)).numpy(), pred, rtol=0, atol=1e-5)


def test_each_fold_chooses_on_its_training_subjects_only(monkeypatch, tmp_path):
    """select_af_beats sees exactly the fold's training subjects (and, for the final model, every training subject),
    never a subject the fold scores."""
    import sqtool.train.af_beats as AB
    seen, real = [], AB.select_af_beats

    def spy(F, y, groups, *a, **kw):
        seen.append(set(np.asarray(groups).tolist()))
        return real(F, y, groups, *a, **kw)
    monkeypatch.setattr(AB, "select_af_beats", spy)
    assert main(ARGS + ["--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    every = {r["subject"] for r in m["per_subject"]}
    assert len(seen) == 4 and seen[-1] == every                         # 3 folds + the final model
    for fold, s in zip(m["per_fold"], seen):
        assert s == every - set(fold["test_subjects"])
    assert not set(m["heldout_subjects"]) & set().union(*seen)


def test_a_one_class_heldout_set_is_said_to_measure_no_skill(af_run, af_export):
    """The default held-out subjects here (syn008, syn009) have no AF window: the final model's weighted F1 on them
    scores the non-AF class alone (a constant predictor gets 1.000). metrics.json, and the export's MODEL_CARD.md
    beside the figure, say so as quantize's report does; they gave the F1 as the held-out result with no word."""
    h = json.loads((af_run / "metrics.json").read_text())["heldout"]
    assert h["metrics"]["positives"] == 0
    assert h["one_class"].startswith(f"the held-out windows hold one class only (0 of {h['windows']} AF)")
    card = (af_export / "MODEL_CARD.md").read_text()
    assert f"These figures are no measure of skill: {h['one_class']}" in card


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    """A run at --seed 3 holding 5 of its 10 subjects out (enough for a held-out CI), with the seeds every random
    step received: the inner CV's split, the trees', the held-out bootstrap's."""
    import sqtool.core.metrics as CM
    import sqtool.train.af_beats as AB
    seeds = {"select": [], "fit": [], "heldout_ci": []}
    real_select, real_fit, real_ci = AB.select_af_beats, AB.fit_af_beats, CM.bootstrap_ci

    def select(*a, seed=0, **kw):
        seeds["select"].append(seed)
        return real_select(*a, seed=seed, **kw)

    def fit(F, y, seed=0, cfg=None):
        seeds["fit"].append(seed)
        return real_fit(F, y, seed, cfg)

    def ci(*a, seed=0, **kw):
        seeds["heldout_ci"].append(seed)
        return real_ci(*a, seed=seed, **kw)
    run = tmp_path_factory.mktemp("af_seed") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AB, "select_af_beats", select)
        mp.setattr(AB, "fit_af_beats", fit)
        mp.setattr(CM, "bootstrap_ci", ci)
        assert main(ARGS[:-6] + ["--folds", "2", "--bootstrap", "20", "--progress", "false", "--seed", "3",
                                 "--heldout-fraction", "0.5", "--out", str(run)]) == 0
    return run, seeds


def test_seed_reaches_the_inner_split_and_the_trees(seeded_run):
    """--seed 3 splits every inner CV and grows every ensemble with seed 3 (each fold's and the final model's), as
    the benchmark's --af-inner-seed does; they were seed 0 whatever --seed said, so a user's seed sweep moved the
    outer folds only and never the inner choice or a forest's bootstrap."""
    run, seeds = seeded_run
    assert len(seeds["select"]) == 3 and set(seeds["select"]) == {3}           # 2 folds + the final model
    assert seeds["fit"] and set(seeds["fit"]) == {3}


def test_seed_reaches_the_heldout_bootstrap(seeded_run):
    """The held-out subjects' CI (5 subjects: a bootstrap) resamples with the run's seed; it was seed 0 always."""
    run, seeds = seeded_run
    m = json.loads((run / "metrics.json").read_text())
    assert len(m["heldout"]["subjects"]) == 5 and m["heldout"]["ci95"] is not None
    assert seeds["heldout_ci"] and set(seeds["heldout_ci"]) == {3}


@pytest.mark.parametrize("extra,match", [
    (["--init", "runs/x"], "no pretrained encoder"),
    (["--mode", "linear"], "no encoder to freeze"),
    (["--band-phase", "causal"], "zero-phase windows"),
    (["--channels", "ppg,acc_x"], "one PPG channel"),
    (["--fs", "10"], "at least 20 Hz"),
    (["--window-s", "3"], "windows of at least 8 s"),
])
def test_refusals_are_one_line_before_a_folder(tmp_path, capsys, extra, match):
    out = tmp_path / "never"
    assert main(ARGS + extra + ["--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and not out.exists()


def test_export_onnx_equals_the_checkpoint(af_run, af_export):
    rep = json.loads((af_export / "export_report.json").read_text())
    assert {r["artifact"] for r in rep["rows"]} == {"ONNX float", "ONNX float (batch axis)"}
    assert all(r["status"] == "ok" and r["l2_rel_err"] < 1e-12 for r in rep["rows"])
    md = json.loads((af_export / "metadata.json").read_text())
    assert md["input_features"] == load_checkpoint(af_run)["model_cfg"]["frontend"]["features"]
    assert md["quant_scheme"] == "float64" and "int8_twin" not in md            # its trees, end to end
    text = (af_export / "INTEGRATION.md").read_text()
    for s in ("`sqtool.data.beats.interval_features(x', 100)`", "`features` (1, 1,", "p(AF) = 1 / (1 + exp(-logit_af))",
              "keep it NaN"):
        assert s in text, s
    assert "@" not in text.replace("@VERSION", "")
    card = (af_export / "MODEL_CARD.md").read_text()
    assert "- held out (never trained on; its own sentence below): 2 subjects" in card and "float64 tree thresholds" in card


@pytest.mark.parametrize("extra", [["--target", "tflite"], ["--target", "c"], ["--target", "onnx", "--precision",
                                                                               "int8"]])
def test_export_refuses_tflite_int8_and_c(af_run, tmp_path, capsys, extra):
    assert main(["export", "--model", str(af_run), *extra, "--out", str(tmp_path / "e")]) != 0
    err = capsys.readouterr().err.strip()
    assert "a tree ensemble (boosted trees or a forest) over beat features" in err and len(err.splitlines()) == 1 and not (tmp_path / "e").exists()


def test_predict_and_bench_read_the_trees(af_run, af_export, tmp_path):
    from sqtool.data.beats import FEATURES, interval_features
    from sqtool.data.synthetic import synth_corpus
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    from sqtool.firmware_bench.predict import PredictConfig, predict
    from sqtool.firmware_bench.stream import StreamSpec, replay
    recs = synth_corpus(n_subjects=2, duration_s=60, seed=5, af_fraction=0.5)
    md = json.loads((af_export / "metadata.json").read_text())
    spec = StreamSpec.from_model_cfg(md, filter="window")
    x = np.concatenate([replay(r, spec).x for r in recs])
    F = interval_features(x[:, 0], 100.0)[:, None, [FEATURES.index(f) for f in md["input_features"]]]
    with torch.no_grad():
        want = torch.sigmoid(load_model(load_checkpoint(af_run))(torch.from_numpy(F))).numpy()[:, 0]
    for rt in ("onnx", "torch"):
        res = predict(PredictConfig(model=str(af_export), data="records", runtime=rt, progress=False,
                                    out=str(tmp_path / rt)), records=recs)
        got = np.concatenate([np.genfromtxt(tmp_path / rt / d["csv"], delimiter=",", names=True)["p_af"]
                              for d in res["recordings"]])
        np.testing.assert_allclose(got, want, rtol=0, atol=6e-4)       # the CSV's 3 decimals
    b = run_bench(BenchConfig(model=str(af_export), out=str(tmp_path / "b"), progress=False), records=recs)
    assert {r["runtime"] for r in b["runtimes"]} == {"torch_teacher", "onnx_float"}
    assert all(r["status"] == "ok" for r in b["runtimes"])
    with pytest.raises(SqtoolError, match="no int8, no C"):
        run_bench(BenchConfig(model=str(af_export), out=str(tmp_path / "c"), progress=False,
                              runtime=["litert_float"]), records=recs)


def test_export_writes_the_subjects_as_pseudonyms_when_asked(af_run, tmp_path):
    """--subjects pseudonyms: no subject id of the run in metadata.json, the card or the ONNX's metadata (the
    feature list once took the pseudonym map's name in build_metadata, and every id was written as it was)."""
    ck = load_checkpoint(af_run)
    ids = {s.split(":", 1)[1] for s in ck["train_subjects"] + ck["heldout_subjects"]}
    out = tmp_path / "exp"
    assert main(["export", "--model", str(af_run), "--target", "onnx", "--subjects", "pseudonyms", "--out", str(out),
                 "--progress", "false"]) == 0
    md = json.loads((out / "metadata.json").read_text())
    assert md["training_data"]["pseudonymised"] and md["input_features"] == ck["model_cfg"]["frontend"]["features"]
    assert all(":subject-" in s for s in md["training_data"]["train_subjects"] + md["training_data"]["heldout_subjects"])
    shipped = (out / "metadata.json").read_text() + (out / "MODEL_CARD.md").read_text() + (out / "model_float.onnx").read_bytes().decode("latin-1")
    assert ids and not [i for i in ids if i in shipped]


def test_few_patients_fall_back_to_the_a_priori_trees_with_a_note(tmp_path, capsys):
    """The default synthetic recordings in 2 folds: an inner CV whose scored windows hold one class gives no AUROC;
    that fold takes the a-priori cfg with a note, as one without enough subjects does (it ended in
    'ValueError: All-NaN slice encountered' after the first fold)."""
    import sqtool.train.af_beats as AB
    from sqtool.data.beats import FEATURES
    F = np.random.default_rng(0).normal(size=(40, len(FEATURES)))
    y, g = np.r_[np.zeros(30), np.ones(10)], np.repeat(np.arange(4), 10)     # subject 3 alone holds the AF windows
    with pytest.raises(SqtoolError, match="one class only"):
        AB.select_af_beats(F, y, g, k=4)
    run = tmp_path / "r"
    assert main(["train", "finetune", "--task", "af", "--model", "af_beats", "--data", "synthetic", "--folds", "2",
                 "--bootstrap", "20", "--progress", "false", "--out", str(run)]) == 0
    said = capsys.readouterr()
    assert "inner CV not possible" in said.out + said.err
    assert json.loads((run / "metrics.json").read_text())["n_folds"] == 2


def test_bench_runtime_groups_run_what_the_float_export_ships(af_export, tmp_path):
    """--runtime onnx / torch (groups) run the export's own members (onnx_float, torch_teacher), not the int8 ones it
    has none of (they failed the bench after it had run); a group with none of them is one line."""
    from sqtool.data.synthetic import synth_corpus
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    recs = synth_corpus(n_subjects=2, duration_s=40, seed=5, af_fraction=0.5)
    for group, want in (("onnx", {"onnx_float"}), ("torch", {"torch_teacher"})):
        b = run_bench(BenchConfig(model=str(af_export), out=str(tmp_path / group), progress=False, runtime=[group]),
                      records=recs)
        assert {r["runtime"] for r in b["runtimes"]} == want and all(r["status"] == "ok" for r in b["runtimes"])
    with pytest.raises(SqtoolError, match="runs on torch_teacher, onnx_float only"):
        run_bench(BenchConfig(model=str(af_export), out=str(tmp_path / "c"), progress=False, runtime=["c"]),
                  records=recs)
