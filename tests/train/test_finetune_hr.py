"""`sqtool train finetune` and `sqtool quantize` for spectral heart-rate models (tiny synthetic runs)."""
import json

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft") / "teacher"
    rc = main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
               "--folds", "2", "--epochs", "1", "--max-records", "3", "--out", str(d)])
    assert rc == 0
    return d


def test_finetune_writes_out_of_fold_logits_metrics_and_a_model_with_its_decoder(teacher_run):
    m = json.loads((teacher_run / "metrics.json").read_text())
    assert m["subjects"] == 3 and m["folds"] == "2 subject folds" and np.isfinite(m["mae_bpm"])
    assert len(m["per_subject"]) == 3 and all(len(p["ci95"]) == 2 for p in m["per_subject"])
    oof = np.load(teacher_run / "oof_logits.npz")
    assert len(oof.files) == 3 and oof[oof.files[0]].shape[1] == 134
    ck = load_checkpoint(teacher_run / "model.pt", expect_kind="teacher_task")
    dec = ck["model_cfg"]["decoder"]
    assert {"sigma_bpm", "floor", "temperature", "bins_bpm"} <= set(dec) and ck["train_cfg"]["datasets"] == ["synthetic"]


def test_quantize_a_spectral_teacher(teacher_run, tmp_path):
    out = tmp_path / "q"
    rc = main(["quantize", "--model", str(teacher_run), "--student", "spec_student_xs", "--data", "synthetic",
               "--epochs", "1", "--qat-epochs", "1", "--no-progress", "--out", str(out)])
    assert rc == 0
    ck = load_checkpoint(out / "model.pt", expect_kind="student_int8")
    assert ck["model_cfg"]["quant"] and ck["model_cfg"]["decoder"]["temperature"] > 0
    h = np.load(out / "heldout.npz")
    assert h["x"].shape[1:] == (4, 134) and len(h["y"]) == len(h["x"]) == len(h["groups"])
    m = json.loads((out / "metrics.json").read_text())
    assert m["teacher_logits"] == "out-of-fold" and set(m["mae_bpm"]) == {"teacher", "float", "int8", "int8_raw"}


def test_quantize_chooses_the_decoder_on_its_own_students_out_of_fold_logits(teacher_run, tmp_path, capsys):
    """--decoder-on student (default): the int8 model's decoder is the one chosen on the inner float students'
    out-of-fold logits (decoder.json), not the teacher's; --decoder-on teacher keeps the teacher's as is."""
    tdec = load_checkpoint(teacher_run / "model.pt")["model_cfg"]["decoder"]
    common = ["quantize", "--model", str(teacher_run), "--student", "spec_student_xs", "--data", "synthetic",
              "--epochs", "2", "--qat-epochs", "1", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "s")]) == 0
    saved = json.loads((tmp_path / "s" / "decoder.json").read_text())["decoder"]
    sdec = load_checkpoint(tmp_path / "s" / "model.pt")["model_cfg"]["decoder"]
    assert sdec == saved and sdec != tdec
    assert 0.05 <= sdec["interval"] <= 0.9999 and sdec["conf_halfwidth_bpm"] > 0
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert m["decoder_on"] == "student" and m["decoder"] == sdec
    u = m["uncertainty_int8"]                                            # held-out windows, int8 firmware decoder
    assert u["n"] > 0 and 0.0 <= u["interval_coverage"] <= 1.0 and u["mae_all"] == pytest.approx(m["mae_bpm"]["int8"])
    assert "the truth lies in the interval on" in (tmp_path / "s" / "report.md").read_text()
    tt, ht = m["training_truth"], m["heldout_truth"]                    # what the model card says of the truth
    assert tt["windows"] > 0 and tt["without_truth"] == 0 and 30 <= tt["bpm_p1"] <= tt["bpm_median"] <= tt["bpm_p99"]
    assert ht["windows"] - ht["without_truth"] == u["n"]
    assert sdec["inner_rule"] == "min" and sdec["inner_mae"] == sdec["inner_mae_min"]

    # --decoder-rule one_se: never below the lowest inner MAE, under its own resume key (not the min run's decoder)
    assert main(common + ["--decoder-rule", "one_se", "--out", str(tmp_path / "o")]) == 0
    odec = json.loads((tmp_path / "o" / "decoder.json").read_text())
    assert odec["key"].endswith(":one_se") and odec["decoder"]["inner_rule"] == "one_se"
    assert odec["decoder"]["inner_mae"] >= odec["decoder"]["inner_mae_min"] == sdec["inner_mae_min"]

    # --calibrate-on the (only) dataset: its own resume key; the interval is calibrated on every training window
    assert main(common + ["--calibrate-on", "synthetic", "--out", str(tmp_path / "c")]) == 0
    cdec = json.loads((tmp_path / "c" / "decoder.json").read_text())
    assert cdec["key"].endswith(":calibrate-on=synthetic")
    assert cdec["key"].startswith(json.loads((tmp_path / "s" / "decoder.json").read_text())["key"])
    assert cdec["decoder"]["inner_calibration_windows"] == sdec["inner_calibration_windows"] > 0

    assert main(common + ["--decoder-on", "teacher", "--out", str(tmp_path / "t")]) == 0
    assert load_checkpoint(tmp_path / "t" / "model.pt")["model_cfg"]["decoder"] == tdec
    assert not (tmp_path / "t" / "decoder.json").exists()
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["decoder_on"] == "teacher"

    # a fixed weight of the motion-subtracted PPG spectrum: in the shipped decoder, and decoded with it
    assert main(common + ["--evidence", "0.5", "--out", str(tmp_path / "e")]) == 0
    edec = load_checkpoint(tmp_path / "e" / "model.pt")["model_cfg"]["decoder"]
    assert edec["evidence_weight"] == 0.5 and np.isfinite(json.loads((tmp_path / "e" / "metrics.json").read_text())
                                                             ["mae_bpm"]["int8"])

    capsys.readouterr()
    for bad, says in ((["--decoder-on", "both"], "--decoder-on must be"), (["--inner-folds", "1"], "--inner-folds"),
                      (["--evidence", "strong"], "--evidence must be"), (["--evidence", "0"], "--evidence must be"),
                      (["--decoder-rule", "best"], "--decoder-rule must be one of min, one_se"),
                      (["--motion-axis-drop", "2"], "--motion-axis-drop must be a fraction"),
                      (["--lr-schedule", "step"], "--lr-schedule must be one of constant, cosine"),
                      (["--calibrate-on", "wrist_exercise"], "--calibrate-on: no training recording of wrist_exercise")):
        assert main(common + bad + ["--out", str(tmp_path / "bad")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "bad").exists()                               # refused before any run folder


def test_spectral_paths_refuse_what_does_not_apply(teacher_run, tmp_path, capsys):
    assert main(["train", "finetune", "--task", "rr", "--model", "spec_student_xs", "--data", "synthetic",
                 "--out", str(tmp_path / "a")]) != 0
    assert "--task must be hr" in capsys.readouterr().err
    assert main(["quantize", "--model", str(teacher_run), "--student", "cnn1d_student_xs", "--data",
                 "synthetic", "--no-progress", "--out", str(tmp_path / "b")]) != 0
    assert "--student cnn1d_student_xs (cnn1d_student) is not a student for it, a spec_cnn model is" \
        in capsys.readouterr().err
    for bad, says in ((["--motion-frac", "-0.1"], "--motion-frac must be a fraction"),
                      (["--lr-schedule", "step"], "--lr-schedule must be one of constant, cosine"),
                      (["--calibrate-on", "troika"], "--calibrate-on: no training recording of troika (the training "
                                                     "data has synthetic)")):
        assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
                     *bad, "--out", str(tmp_path / "c")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "c").exists()                                 # refused before any run folder


def test_the_skill_verdict_says_its_mae_is_pooled(tmp_path, capsys):
    """The headline is the mean of subjects' MAE; the skill test pools the windows: its verdict line (and the
    trivial row) say 'pooled mae', and its model value is metrics.json's mae_bpm_pooled."""
    rc = main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic", "--folds",
               "2", "--epochs", "1", "--max-records", "3", "--final-fit", "false", "--progress", "false",
               "--out", str(tmp_path / "ft")])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    m = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert any(ln.startswith("hr (") and "(mean of subjects" in ln for ln in out)
    assert any(ln.startswith("hr: trivial pooled mae ") for ln in out)
    assert out[-1].startswith(f"hr: pooled mae model {m['mae_bpm_pooled']:.3f} vs trivial "), out[-1]


def test_the_skill_rows_label_the_classic_value_pooled_too(capsys):
    """The classic predictor is scored on the same pooled windows as the trivial one: both say 'pooled mae'."""
    from sqtool.train.cli import _print_skill
    sk = {"skill": {"metric": "mae", "model": 5.0, "reference": 9.0, "diff": -4.0, "diff_ci95": [-5.0, -3.0],
                    "skill": True},
          "trivial": {"mae": 9.0}, "classic": {"name": "spectral peak", "metrics": {"mae": 7.0}},
          "spread": {"pred_std": [3.0]}}
    _print_skill("hr", {"skill": sk}, pooled=True)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("hr: trivial pooled mae 9.000; classic pooled mae 7.000 (spectral peak);"), first
    _print_skill("hr", {"skill": sk})                                    # a pooled headline: plain 'mae' both
    assert capsys.readouterr().out.startswith("hr: trivial mae 9.000; classic mae 7.000 (spectral peak);")


def test_a_run_without_final_fit_is_not_sent_to_quantize(tmp_path, capsys):
    """--final-fit false keeps the folds' predictions only (no model.pt): the spectral fine-tune's next line asks
    for --final-fit true, as the time-domain one's does (it said 'sqtool quantize --model RUN', which fails)."""
    rc = main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic", "--folds",
               "2", "--epochs", "1", "--max-records", "3", "--final-fit", "false", "--progress", "false",
               "--out", str(tmp_path / "ft")])
    out = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next: ")]
    assert rc == 0 and not (tmp_path / "ft" / "model.pt").exists()
    assert out == ["next: sqtool train finetune ... --final-fit true   (this run kept the folds' predictions only)"]


def test_a_subjects_mae_ci_is_batch_means_inside_each_recording():
    """mae_ci of one subject's windows: batches of one recording each (a wrist subject's walk and run are not
    joined into one batch), the interval of core.metrics.batch_means_ci; block 1 is the t over single values."""
    import numpy as np
    import pytest

    from sqtool.core.metrics import ratio_t_interval, t_interval
    from sqtool.train.finetune_hr import mae_ci
    e = np.r_[np.full(90, 1.0), np.full(30, 9.0)]
    rec = np.repeat(["walk", "run"], [90, 30])
    lo, hi = ratio_t_interval([1, 1, 1, 9], [30] * 4)
    assert mae_ci(e, 30, rec) == pytest.approx((3.0, max(0.0, lo), hi)) and lo < 0     # clipped at 0
    assert mae_ci(np.r_[e[:75], e[90:], e[75:90]], 30)[1:] != mae_ci(e, 30, rec)[1:]   # one recording: mixed
    assert mae_ci([5.0, 6.0, 7.5])[1:] == pytest.approx(t_interval([5.0, 6.0, 7.5]))
