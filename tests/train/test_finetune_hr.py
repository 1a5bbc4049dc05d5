"""`sqtool train finetune` and `sqtool quantize` for spectral heart-rate models (tiny synthetic runs)."""
import json

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint


TINY = ["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic", "--folds", "2",
        "--epochs", "1", "--max-records", "4", "--progress", "false"]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A tiny teacher on 4 synthetic subjects: the last one (0.2 x 4, rounded) held out, 3 in its folds."""
    d = tmp_path_factory.mktemp("ft") / "teacher"
    rc = main(TINY + ["--out", str(d)])
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


def test_finetune_holds_out_the_subjects_quantize_evaluates_on(teacher_run, tmp_path, monkeypatch, capsys):
    """The fine-tune leaves its held-out subjects (quantize's rule, data.heldout: here the last 0.2 of the sorted
    subjects) out of its folds, decoder, skill test and model.pt, names them in one line and records them; quantize
    takes them, so the card's 'never in fine-tuning or quantization' is true. Every fit sees training subjects only."""
    import sqtool.models.hr_bins as HB
    m = json.loads((teacher_run / "metrics.json").read_text())
    held = ["synthetic:syn003"]
    assert m["heldout_subjects"] == held and "--heldout-fraction" in m["heldout_rule"]
    assert held[0] not in {p["subject"] for p in m["per_subject"]} and m["skill"]["skill"]["subjects"] == 3
    assert not any("syn003" in f for f in np.load(teacher_run / "oof_logits.npz").files)
    teacher = load_checkpoint(teacher_run / "model.pt")
    assert teacher["train_cfg"]["heldout_subjects"] == held
    # at the top level too, where an export of the float teacher reads what it saw (its card's training_data)
    assert teacher["heldout_subjects"] == held and teacher["train_subjects"] == [
        p["subject"] for p in sorted(m["per_subject"], key=lambda p: p["subject"])]

    seen, real = [], HB.train_bins                                       # the windows each fit trains on
    monkeypatch.setattr(HB, "train_bins", lambda m_, x, y, *a, **k: seen.append(len(y)) or real(m_, x, y, *a, **k))
    capsys.readouterr()
    assert main(TINY + ["--out", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln for ln in out if "held out" in ln] == [
        "held out of every fold and of model.pt (the last 0.2 of the sorted subjects (--heldout-fraction)): "
        "synthetic:syn003; quantize evaluates on them, never trained on"]
    assert seen[-1] == m["windows"] and max(seen) == m["windows"]       # the final fit: the training windows only

    rc = main(["quantize", "--model", str(teacher_run), "--student", "spec_student_xs", "--epochs", "1",
               "--qat-epochs", "1", "--inner-epochs", "1", "--no-progress", "--out", str(tmp_path / "q")])
    assert rc == 0 and "WARNING" not in capsys.readouterr().out
    q = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert q["heldout_subjects"] == held and q["heldout_in_teacher"] is False and q["heldout_note"] is None
    assert q["teacher_logits"] == "out-of-fold"
    assert "held out of the teacher's fine-tuning too" in (tmp_path / "q" / "report.md").read_text()
    student = load_checkpoint(tmp_path / "q" / "model.pt")
    assert student["heldout_subjects"] == held and held[0] not in student["train_subjects"]
    ts = student["teacher_skill"]                                        # the fine-tune's verdict travels on
    assert {"skill", "diff", "diff_ci95"} <= set(ts) and ts == {k: m["skill"]["skill"][k] for k in ts}


def test_quantize_refuses_a_held_out_subject_the_teacher_trained_on(teacher_run, tmp_path, capsys):
    """--heldout-subjects naming a subject of the teacher's folds is one line, before any run folder."""
    capsys.readouterr()
    assert main(["quantize", "--model", str(teacher_run), "--student", "spec_student_xs", "--heldout-subjects",
                 "syn000", "--no-progress", "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--heldout-subjects synthetic:syn000: teacher" in err[0]
    assert "was fine-tuned on it (it held out synthetic:syn003)" in err[0] and not (tmp_path / "q").exists()


def test_a_teacher_holding_none_out_or_older_ones_are_said_to_have_trained_on_them(tmp_path, capsys):
    """--heldout-fraction 0: every subject in the teacher (said in its line); quantize then holds out by the shared
    rule and says, in a WARNING line, metrics.json and the card, that the teacher was fine-tuned on them. A teacher
    from before the fine-tune recorded its held-out subjects keeps that behaviour, and 'may have' trained on them."""
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.export.kit import metrics_sections
    all_in = tmp_path / "all_in"
    assert main(TINY + ["--heldout-fraction", "0", "--out", str(all_in)]) == 0
    out = capsys.readouterr().out
    assert ("held out: none (--heldout-fraction 0: none): every subject is in the teacher; a final fit for shipping: "
            "`quantize --heldout-fraction 0 --estimate-from RUN`") in out
    assert "quantize without it evaluates on subjects this teacher trained on" in out
    m = json.loads((all_in / "metrics.json").read_text())
    assert m["subjects"] == 4 and m["heldout_subjects"] == []
    q = ["quantize", "--student", "spec_student_xs", "--epochs", "1", "--qat-epochs", "1", "--decoder-on", "teacher",
         "--no-progress"]
    assert main(q + ["--model", str(all_in), "--out", str(tmp_path / "q1")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("WARNING: teacher ") and "held no subject out (--heldout-fraction 0)" in out[0]
    qm = json.loads((tmp_path / "q1" / "metrics.json").read_text())
    assert qm["heldout_subjects"] == ["synthetic:syn003"] and qm["heldout_in_teacher"] is True
    assert "never in quantization; the teacher was fine-tuned on them" in "\n".join(metrics_sections(qm))

    old = tmp_path / "old"                                               # a teacher from before the record
    old.mkdir()
    ck = load_checkpoint(all_in / "model.pt")
    tcfg = {k: v for k, v in ck["train_cfg"].items() if k not in ("heldout_subjects", "heldout_fraction")}
    save_checkpoint(old / "model.pt", kind="teacher_task", model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    train_cfg=tcfg)
    assert main(q + ["--model", str(old), "--heldout-subjects", "syn001", "--out", str(tmp_path / "q2")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("WARNING: teacher ") and "recorded no held-out subjects" in out[0]
    qm = json.loads((tmp_path / "q2" / "metrics.json").read_text())
    assert qm["heldout_subjects"] == ["synthetic:syn001"] and qm["heldout_in_teacher"] is None
    held = "\n".join(metrics_sections(qm))
    assert "never in quantization; the teacher's fine-tuning may have trained on them" in held
    assert "never in fine-tuning" not in held


def test_the_held_out_options_are_checked_before_any_folder(tmp_path, capsys):
    """Bad held-out options are one line before a run folder: an unknown subject, a fraction out of range (a
    time-domain fine-tune's too: it holds subjects out by the same rule); too few training subjects left."""
    for extra, says in ((["--heldout-subjects", "nobody"], "--heldout-subjects nobody not in the data"),
                        (["--heldout-fraction", "1"], "--heldout-fraction must be in [0, 1)"),
                        (["--heldout-subjects", "syn000,syn001,syn002"], "subject folds need >= 2 training subjects")):
        assert main(TINY + extra + ["--out", str(tmp_path / "a")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert main(["train", "finetune", "--task", "af", "--model", "cnn1d_student_xs", "--data", "synthetic",
                 "--heldout-fraction", "1.5", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--heldout-fraction must be in [0, 1) (0 = hold none out), got 1.5" in err[0]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


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
    assert m["teacher_logits"] == "out-of-fold"
    assert set(m["mae_bpm"]) == {"teacher", "float", "int8", "int8_raw", "classic"}
    # the classic baseline on the same held-out windows, its notch chosen on the training recordings alone
    from sqtool.data.hr_baseline import NOTCHES
    cb = m["classic_baseline"]
    assert cb["notch_bpm"] in NOTCHES and cb["ppg_sensors"] == ["ppg"] and "hr" not in cb
    assert set(m["per_subject"]["classic"]) == set(m["heldout_subjects"])
    assert m["mae_bpm"]["classic"] == pytest.approx(np.mean(list(m["per_subject"]["classic"].values())))


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
        err = capsys.readouterr().err.strip().splitlines()          # (--no-progress keeps the per-item lines)
        assert err[-1].startswith("sqtool: error:") and says in err[-1]
        assert sum(line.startswith("sqtool: error:") for line in err) == 1
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
    rc = main(TINY + ["--final-fit", "false", "--out", str(tmp_path / "ft")])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    m = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert any(ln.startswith("hr (") and "(mean of subjects" in ln for ln in out)
    assert any(ln.startswith("hr: trivial pooled mae ") for ln in out)
    assert out[-1].startswith(f"hr: pooled mae model {m['mae_bpm_pooled']:.3f} vs trivial "), out[-1]
    c = m["skill"]["classic"]                          # the classic baseline's row, out of fold like the model
    row = next(ln for ln in out if ln.startswith("hr: trivial pooled mae "))
    assert f"classic pooled mae {c['metrics']['mae']:.3f} (spectral peak" in row
    assert len(c["per_fold"]) == m["n_folds"] and all(f["notch_bpm"] >= 0 for f in c["per_fold"])
    assert m["skill"]["vs_classic"]["reference"] == pytest.approx(c["metrics"]["mae"])


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
    rc = main(TINY + ["--final-fit", "false", "--out", str(tmp_path / "ft")])
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


def test_label_fraction_trains_the_spectral_model_on_that_share_of_its_windows():
    """An audit: the spectral fine-tune ignored --label-fraction (0.1 and 1 gave the same folds) while config.yaml
    recorded it. Each fit now takes a random subset of its training windows, at least one batch, seeded per fit."""
    from types import SimpleNamespace
    from sqtool.train.finetune_hr import labelled
    recs = [SimpleNamespace(x=np.full((100, 20, 3), i, np.int8), y=np.arange(100.0) + 1000 * i) for i in range(3)]
    full = labelled(recs, SimpleNamespace(label_fraction=1.0, batch_size=16, seed=0), 0)
    assert full[0].shape == (300, 3, 20) and full[1].size == 300
    x, y = labelled(recs, SimpleNamespace(label_fraction=0.1, batch_size=16, seed=0), 0)
    assert len(x) == len(y) == 30 and len(set(y)) == 30 and set(y) <= set(full[1])
    assert np.all(np.round(x[:, 0, 0] * 127) == (y // 1000))                # each window keeps its own label
    other = labelled(recs, SimpleNamespace(label_fraction=0.1, batch_size=16, seed=0), 1)[1]
    assert not np.array_equal(other, y)                                     # another fit, another subset
    assert len(labelled(recs, SimpleNamespace(label_fraction=0.01, batch_size=16, seed=0), 0)[1]) == 16


def test_out_of_fold_figures_are_decoded_with_a_decoder_chosen_without_the_scored_subject(tmp_path, monkeypatch):
    """A helper's sweep: the fine-tune chose its decoder (sigma, floor, temperature) on every subject's out-of-fold
    logits and truth, then scored those same subjects with it (per-subject MAE, the skill test against the classic
    baseline, whose notch IS chosen per fold on the other subjects). Each fold's subjects are now decoded with a
    decoder chosen on the other folds' recordings only; the shipped decoder is still chosen on all of them."""
    import sqtool.models.decoder as D
    import sqtool.models.hr_bins as HB
    chosen_on, inside, scored = {}, [False], []
    real_sel, real_dec = HB.select_decoder, D.decode_float

    def sel(logits, truth, groups, base, **kw):
        inside[0] = True
        try:
            d = real_sel(logits, truth, groups, base, **kw)
        finally:
            inside[0] = False
        chosen_on[id(d)] = set(groups)
        return d

    def dec(lg, d, *a, **k):
        if not inside[0]:
            scored.append((np.asarray(lg).copy(), id(d)))
        return real_dec(lg, d, *a, **k)
    monkeypatch.setattr(HB, "select_decoder", sel)
    monkeypatch.setattr(D, "decode_float", dec)
    assert main(TINY + ["--final-fit", "false", "--out", str(tmp_path / "ft")]) == 0
    oof = np.load(tmp_path / "ft" / "oof_logits.npz")
    subject = {rid: f"synthetic:{rid.split('_')[0]}" for rid in oof.files}   # syn000_r0: a recording of syn000
    m = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert sorted(subject.values()) == sorted(p["subject"] for p in m["per_subject"])
    seen = {}
    for lg, d in scored:
        rid = next(r for r in oof.files if oof[r].shape == lg.shape and np.array_equal(oof[r], lg))
        seen[subject[rid]] = chosen_on[d]
    assert set(seen) == set(subject.values())                         # every scored subject decoded once at least
    assert all(s not in on for s, on in seen.items()), seen


def test_fold_decoders_decode_each_recording_once_under_the_candidates_every_fold_shares(monkeypatch):
    """The out-of-fold figures choose one decoder per subject fold on the other folds' recordings: each fold decoded
    every other recording under the same grid of candidates again (a leave-one-subject-out fine-tune of N subjects:
    N x N decodes of each candidate, most of its decoder time). Now a recording is decoded once under each candidate
    the folds share (only those built on a fold's own fitted sigma or floor are decoded per fold), and every fold's
    decoder is the one it was."""
    import sys
    from types import SimpleNamespace

    import sqtool.models.hr_bins as HB
    from sqtool.models import get_model_cfg
    from sqtool.models.spectral import bin_grid
    from sqtool.train.finetune_hr import fold_decoders
    mcfg = get_model_cfg("spec_student_xs")
    bins = bin_grid(mcfg)
    rng = np.random.default_rng(0)
    corpus, oof = [], {}
    for s in range(4):
        hr = 80 + 10 * s + np.cumsum(rng.normal(0, 1.0, 40))
        oof[f"r{s}"] = (-0.5 * ((bins[None] - hr[:, None] - rng.normal(0, 4, (40, 1))) / 4.0) ** 2).astype(np.float32)
        corpus.append(SimpleNamespace(key=f"d:s{s}", record_id=f"r{s}", y=hr, valid=np.ones(40, bool)))
    groups = [{f"d:s{s}"} for s in range(4)]                               # leave one subject out
    want = [HB.select_decoder([oof[r.record_id] for r in corpus if r.key not in g],          # each fold on its own
                              [r.y for r in corpus if r.key not in g], [r.key for r in corpus if r.key not in g],
                              HB.fit_decoder([r.y for r in corpus if r.key not in g], mcfg.arch["bins_bpm"], mcfg.hop_s),
                              valid=[r.valid for r in corpus if r.key not in g]) for g in groups]

    step1 = []                                                              # (recording, decoder) of step 1's decodes
    real = HB.decode_float

    def counted(lg, dec, *a, **k):
        if sys._getframe(1).f_code.co_name == "subject_maes":
            step1.append((next(r for r, v in oof.items() if v is lg), dec["sigma_bpm"], dec["floor"],
                          dec["temperature"]))
        return real(lg, dec, *a, **k)
    monkeypatch.setattr(HB, "decode_float", counted)
    assert fold_decoders(corpus, groups, oof, mcfg, None) == want
    grid = [d for d in step1 if d[1] in (2.0, 3.0, 4.0, 6.0) and d[2] in (1e-4, 1e-3, 1e-2)]   # select_decoder's
    assert len(grid) == 4 * 4 * 3 * 3 == len(set(grid))       # each recording once under each of the grid's candidates


def test_a_folds_progress_line_names_a_few_subjects_and_counts_the_rest():
    """A 5-fold run of 192 subjects listed every subject of each fold on its progress line (302+ characters)."""
    from sqtool.train.finetune_hr import subjects_text
    assert subjects_text({"b", "a"}) == "a, b" and subjects_text({"d", "c", "b", "a"}) == "a, b, c, d"
    many = {f"s{i:03d}" for i in range(40)}
    assert subjects_text(many) == "s000, s001, s002, ... (40 subjects)"
