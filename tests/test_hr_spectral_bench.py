"""benchmarks/hr_spectral.py measures the recipe the CLI trains: its defaults are the commands' defaults."""
import argparse
from pathlib import Path

import numpy as np
import pytest

from sqtool.compress.cli import QuantizeConfig
from sqtool.compress.quantize_hr import SPEC_EPOCHS, SPEC_KD
from sqtool.train.finetune import FinetuneConfig
from bench_scripts import load_benchmark
from tests.strict_json import strict_loads


def bench_defaults() -> argparse.Namespace:
    mod = load_benchmark("hr_spectral")
    ap = argparse.ArgumentParser()
    mod.add_training_args(ap)
    return ap.parse_args([])


def test_the_benchmark_trains_what_finetune_and_quantize_train_by_default():
    b, q, f = bench_defaults(), QuantizeConfig(), FinetuneConfig()
    assert b.calibration_students == q.calibration_students == "subjects"
    assert b.stretch_frac == q.freq_stretch == f.freq_stretch
    assert b.motion_frac == q.motion_frac == f.motion_frac
    assert b.motion_axis_drop == q.motion_axis_drop == f.motion_axis_drop
    assert b.lr_schedule == q.lr_schedule == f.lr_schedule
    assert b.decoder_rule == q.decoder_rule
    assert b.kd == SPEC_KD and q.alpha is None and q.distill           # None = the family's default (SPEC_KD)
    assert b.kd_gate_bpm == q.kd_gate_bpm
    assert b.kd_float == 1 and b.student_stretch_frac < 0               # the float student distils, same stretch
    assert b.epochs == SPEC_EPOCHS and b.qat_epochs == q.qat_epochs
    assert b.student == "spec_student_s"


def test_the_benchmark_pretrains_as_the_demo_does():
    from sqtool.demo import DemoCfg
    from sqtool.models.hr_bins import BinTrainCfg
    b, d = bench_defaults(), DemoCfg()
    assert (b.pretrain == "real") == d.pretrain and b.pretrain_epochs == d.pretrain_epochs
    assert b.pretrain_lr == 0.05 and b.student == d.student and b.teacher == d.teacher
    c = BinTrainCfg()                                   # what finetune and quantize train with
    assert tuple(float(v) for v in b.motion_ppg_amp.split(",")) == c.motion_ppg_amp
    assert b.motion_ppg_dist == c.motion_ppg_dist and b.edge_fill == c.edge_fill


def test_recipe_inner_chooses_the_lowest_inner_error_among_the_a_priori_recipes():
    import numpy as np

    from sqtool.data.hr_spectra import hr_corpus
    from sqtool.models import get_model_cfg
    from sqtool.models.spectral import bin_grid
    mod = load_benchmark("hr_spectral")
    args = bench_defaults()
    args.student, args.teacher, args.inner_epochs, args.epochs = "spec_student_xs", "spec_student_xs", 1, 1
    scfg = get_model_cfg(args.student)
    train = hr_corpus("synthetic", model_cfg=scfg, synthetic_subjects=4)
    logs = []
    oof, dec, groups = mod.inner_oof(train, scfg, bin_grid(scfg), args, logs.append)
    best, scores, _ = mod.choose_recipe(train, groups, oof, dec, bin_grid(scfg), args, logs.append, {})
    assert set(scores) == set(mod.RECIPES) and all(np.isfinite(v) for v in scores.values())
    assert best == min(scores, key=scores.get) and best in logs[-1]
    a = mod.student_args(args, "labels_only")
    assert a.kd == 0 and a.motion_frac == 0 and args.kd == 0.5                   # the recipe, not the args, changed
    assert mod.student_args(args, None) is args


def test_a_time_domain_resnet_teacher_gives_out_of_fold_logits_on_the_students_bins():
    import numpy as np
    import torch

    from sqtool.data.hr_spectra import record_spectra
    from sqtool.data.synthetic import synth_corpus
    from sqtool.models import get_model_cfg
    from sqtool.models.spectral import bin_grid
    mod = load_benchmark("hr_spectral")
    mod.DATA = None                     # no unlabeled smartwatch recordings: the synthetic pairs alone, data or not
    args = bench_defaults()
    args.student, args.teacher, args.inner_epochs = "spec_student_xs", "resnet1d_siamq_tiny", 2
    scfg = get_model_cfg(args.student)
    recs = synth_corpus(n_subjects=3, duration_s=120.0, seed=0, af_fraction=0.0)    # 70 pairs: one batch of 64
    train = [record_spectra(r, scfg) for r in recs]
    records = {(r.dataset, str(r.record_id)): r for r in recs}
    tcfg = mod.teacher_cfg(args)
    assert tcfg.n_bins == len(bin_grid(scfg)) and tcfg.channels == ("ppg", "acc_x", "acc_y", "acc_z")
    assert mod.teacher_x(train[0], tcfg, records).shape == (len(train[0].y), 4, 200)   # 8 s at 25 Hz
    args.pretrain_epochs, said = 1, []
    enc = mod.pretrained_encoders(train, args, records, said.append, tcfg)     # the same real pairs, both inputs
    assert set(enc) == {"resnet1d_siamq_tiny", "spec_student_xs"} and "time-domain windows" in said[0]
    assert enc["resnet1d_siamq_tiny"]["model_cfg"]["channels"] == list(tcfg.channels)
    m = mod.fresh(tcfg, enc)
    assert all(torch.equal(v, enc["resnet1d_siamq_tiny"]["state_dict"]["encoder." + k])
               for k, v in m.encoder.state_dict().items())
    args.time_teacher_pretrain = "none"
    assert set(mod.pretrained_encoders(train, args, records, said.append, tcfg)) == {"spec_student_xs"}
    oof, dec, _ = mod.inner_oof(train, tcfg, bin_grid(scfg), args, print, enc, records)
    assert all(oof[r.record_id].shape == (len(r.y), len(bin_grid(scfg))) for r in train)
    assert all(np.isfinite(v).all() for v in oof.values()) and np.isfinite(dec["inner_mae"])
    assert get_model_cfg("spec_teacher_m") == mod.teacher_cfg(bench_defaults())      # spectral: as registered


def test_a_teacher_without_a_bin_head_is_one_line_before_any_data():
    import pytest
    mod = load_benchmark("hr_spectral")
    for flag, name, says in (("--teacher", "cnn1d_student_s", "no heart-rate-bin head"),
                             ("--teacher", "nosuch", "unknown model"), ("--student", "nosuch", "unknown model")):
        with pytest.raises(SystemExit, match=says):
            mod.main([flag, name, "--out", "/nonexistent/never-written"])


def test_decoder_on_the_students_out_of_fold_logits(tmp_path):
    import json

    import numpy as np

    from sqtool.data.hr_spectra import hr_corpus
    from sqtool.models import get_model_cfg
    from sqtool.models.spectral import bin_grid
    mod = load_benchmark("hr_spectral")
    args = bench_defaults()
    assert args.decoder_on == "student"                                          # as sqtool quantize
    args.student, args.teacher, args.inner_epochs = "spec_student_xs", "spec_student_xs", 1
    scfg = get_model_cfg(args.student)
    train = hr_corpus("synthetic", model_cfg=scfg, synthetic_subjects=4)
    said = []
    oof, dec_t, groups = mod.inner_oof(train, scfg, bin_grid(scfg), args, said.append)
    soof = mod.student_oof(train, groups, oof, bin_grid(scfg), args, {})
    assert set(soof) == {r.record_id for r in train}
    assert all(soof[r.record_id].shape == oof[r.record_id].shape for r in train)
    assert not all(np.array_equal(soof[k], oof[k]) for k in soof)              # other networks, other logits
    dec_s = mod.decoder_on(soof, train, scfg, "student", said.append)
    assert set(dec_s) == set(dec_t) and "student's out-of-fold" in said[-1] and "teacher's" in said[0]
    # --calibration-students subjects: one student per calibration subject, only when they are a few of the keys
    keys = sorted({r.key for r in train})
    assert mod.calibration_oof(train, None, oof, bin_grid(scfg), args, {}, said.append) is None
    assert mod.calibration_oof(train, set(keys), oof, bin_grid(scfg), args, {}, said.append) is None
    coof = mod.calibration_oof(train, set(keys[:2]), oof, bin_grid(scfg), args, {}, said.append)
    assert set(coof) == {r.record_id for r in train if r.key in keys[:2]}
    assert "calibration students: 2 for 2 calibration subjects" in said[-1]
    dec_c = mod.decoder_on(soof, train, scfg, "student", said.append, cal=set(keys[:2]), cal_logits=coof)
    dec_i = mod.decoder_on(soof, train, scfg, "student", said.append, cal=set(keys[:2]))
    assert (dec_c["sigma_bpm"], dec_c["temperature"], dec_c["inner_mae"]) == (
        dec_i["sigma_bpm"], dec_i["temperature"], dec_i["inner_mae"])                  # the heart rates' decoder
    # --logits-out: what the decoder reads, to study decoders without training (held-out = the first subject)
    held = [r for r in train if r.key == train[0].key]
    rest = [r for r in train if r.key != train[0].key]
    lq = {f"test/{r.dataset}/{r.record_id}": np.zeros((len(r.y), len(bin_grid(scfg))), np.int8) for r in held}
    mod.save_logits(str(tmp_path / "lg"), held, rest, lq, soof, dec_s, 0.125)
    (f,) = sorted((tmp_path / "lg").glob("*.npz"))
    z = np.load(f)
    assert json.loads(str(z["decoder"])) == json.loads(json.dumps(dec_s)) and float(z["logit_scale"]) == 0.125
    for r in rest:
        assert np.array_equal(z[f"oof/{r.dataset}/{r.record_id}"], soof[r.record_id].astype(np.float32))
        assert str(z[f"key/{r.dataset}/{r.record_id}"]) == r.key
    assert all(f"test/{r.dataset}/{r.record_id}" in z and f"y/{r.dataset}/{r.record_id}" in z for r in held)


def test_calibrate_on_target_names_the_held_out_datasets_training_subjects():
    """--calibrate-on target (default): the wrist LOSO fold calibrates on the other wrist subjects; a cross-dataset
    fold (no training subject of the held-out dataset) and --calibrate-on all on every training subject (None)."""
    from types import SimpleNamespace
    mod = load_benchmark("hr_spectral")
    rec = lambda ds, s: SimpleNamespace(dataset=ds, subject=s, key=f"{ds}:{s}")     # noqa: E731
    train = [rec("troika", "01"), rec("troika", "02"), rec("wrist_exercise", "s2"), rec("wrist_exercise", "s3")]
    held = [rec("wrist_exercise", "s4")]
    assert bench_defaults().calibrate_on == "target"
    assert mod.fold_calibration(train, held, "target") == {"wrist_exercise:s2", "wrist_exercise:s3"}
    assert mod.fold_calibration(train, held, "all") is None
    assert mod.fold_calibration(train[:2], held, "target") is None
    assert mod.fold_calibration(train, [rec("troika", "03")], "target") == {"troika:01", "troika:02"}


def test_the_report_gives_each_subjects_interval_coverage():
    """summarise/markdown: a subject whose truth is always inside the interval reads 100 %, one always outside
    0 %, and the pooled figure is the windows' share."""
    import numpy as np
    mod = load_benchmark("hr_spectral")

    def row(subject, y, lo, hi):
        y = np.full(10, float(y))
        return {"dataset": "wrist_exercise", "subject": subject, "record": subject, "y": y, "int8": y + 1,
                "int8_lo": np.full(10, float(lo)), "int8_hi": np.full(10, float(hi)), "int8_conf": np.linspace(0.5, 1, 10),
                "conf_calibrated": False, "student": y, "teacher": y, "int8_raw": y, "baseline": y + 5,
                "interval": 0.9, "inner_coverage": 0.9, "conf_halfwidth_bpm": 3.0, "conf_measure": "mass",
                "evidence_weight": 0.0, "recipe": "fixed"}
    summ = mod.summarise([row("s2", 100, 90, 110), row("s3", 100, 120, 140)], "t")
    cov = {d["subject"]: d["interval_coverage"] for d in summ["subjects"]}
    assert cov == {"wrist_exercise:s2": 1.0, "wrist_exercise:s3": 0.0} and summ["interval_coverage"] == 0.5
    text = mod.markdown(summ)
    assert "| 100.0 % (20.0 BPM) |" in text and "| 0.0 % (20.0 BPM) |" in text
    # per wearer beside the pooled figure: coverage's mean / range / count inside 85-95 %, each subject's own gating
    assert summ["interval_coverage_per_subject"] == {"mean": 0.5, "min": 0.0, "max": 1.0, "in_85_95": 0, "n": 2}
    assert "0 of 2 subjects inside 85-95 %" in text and "95 % t-interval over the subjects" in text
    # the CI of a subject's MAE: single windows without an hop (rows of a report), one-minute blocks with it
    assert summ["ci_block_windows"] == 1 and "single windows, as if independent: too narrow" in text
    blocked = mod.summarise([row("s2", 100, 90, 110), row("s3", 100, 120, 140)], "t", hop_s=2.0)
    assert blocked["ci_block_windows"] == 30 and "batches of 30 (60 s)" in mod.markdown(blocked)


def test_the_report_gives_each_wearers_own_gating():
    """Confidence that ranks windows only across subjects (one subject all confident and right, one all unsure and
    wrong) cuts the pooled MAE but no wearer's own: the per-subject gating says so."""
    import numpy as np
    mod = load_benchmark("hr_spectral")
    rng = np.random.default_rng(0)

    def row(subject, err, conf):
        y = np.full(50, 100.0)
        return {"dataset": "troika", "subject": subject, "record": subject, "y": y, "int8": y + err,
                "int8_lo": y - 5, "int8_hi": y + 5, "int8_conf": conf, "conf_calibrated": False, "student": y,
                "teacher": y, "int8_raw": y, "baseline": y + 3, "interval": 0.9, "inner_coverage": 0.9,
                "conf_halfwidth_bpm": 3.0, "conf_measure": "mass", "evidence_weight": 0.0, "recipe": "fixed"}
    good = row("01", rng.uniform(0, 2, 50), rng.uniform(0.8, 1.0, 50))       # conf random within each subject
    bad = row("02", rng.uniform(5, 15, 50), rng.uniform(0.0, 0.2, 50))
    summ = mod.summarise([good, bad], "t")
    assert summ["gating_reduction"] > 0.15                                   # pooled: drops 02's windows
    g = summ["gating_reduction_per_subject"]
    assert abs(g["mean"]) < 0.15 and g["at_least_30"] == 0 and g["n"] == 2
    assert "0 of 2 subjects cut it by 30 % or more" in mod.markdown(summ)


def test_the_report_sets_the_truths_hmm_and_the_oracle_beside_the_chosen_decoder():
    """Rows with the truth's-HMM decode (int8_truth_hmm) get its per-subject MAE and one line beside the chosen
    decoder's; rows written before the column (merged files of earlier runs) get neither, and no error. The oracle
    gating keeps the windows with the smallest error."""
    import numpy as np
    mod = load_benchmark("hr_spectral")

    def row(subject, err, err_truth_hmm):
        y = np.full(10, 100.0)
        r = {"dataset": "troika", "subject": subject, "record": subject, "y": y, "int8": y + err,
             "int8_lo": y - 5, "int8_hi": y + 5, "int8_conf": np.linspace(0.5, 1, 10), "conf_calibrated": False,
             "student": y, "teacher": y, "int8_raw": y, "baseline": y + 3, "interval": 0.9, "inner_coverage": 0.9,
             "conf_halfwidth_bpm": 3.0, "conf_measure": "mass", "evidence_weight": 0.0, "recipe": "fixed"}
        if err_truth_hmm is not None:
            r.update(int8_truth_hmm=y + err_truth_hmm, truth_hmm={"sigma_bpm": 1.1, "floor": 1e-3})
        return r
    err = np.r_[np.zeros(8), 10.0, 10.0]                    # 2 windows of 10 carry all the error
    summ = mod.summarise([row("01", err, 2.0), row("02", err, 4.0)], "t")
    assert [d["int8_truth_hmm"] for d in summ["subjects"]] == [2.0, 4.0]
    assert summ["int8_truth_hmm_pooled"] == 3.0 and summ["int8_truth_hmm_wins_vs_baseline"] == 1
    assert summ["gating_reduction_oracle"] == 1.0          # the 80 % with the smallest error have none
    text = mod.markdown(summ)
    assert "mean of subjects 3.00 (chosen 2.00), pooled 3.00 (2.00), better than the baseline on 1 of 2" in text
    assert "per subject 01 2.00, 02 4.00" in text and "The oracle (keeping the 80 %" in text
    old = mod.summarise([row("01", err, None), row("02", err, 4.0)], "t")
    assert "int8_truth_hmm_pooled" not in old and "What the decoder choice does" not in mod.markdown(old)


def test_merge_reports_the_recipe_its_files_were_run_with_and_refuses_a_mix(tmp_path):
    """A merged report names the models and recipe of the processes it merges, not the merge call's defaults;
    files of two recipes are one line."""
    import json

    import numpy as np
    import pytest
    mod = load_benchmark("hr_spectral")
    args = bench_defaults()
    args.teacher, args.student, args.seed = "spec_teacher_m_accsum", "spec_student_s_accsum", 1
    row = lambda s: {"dataset": "troika", "subject": s, "record": f"r{s}", "n": 3,                  # noqa: E731
                     **{k: np.array([90.0, 91.0, 92.0]) for k in ("y", "int8", "student", "teacher", "baseline",
                                                                 "int8_raw", "student_raw", "int8_lo", "int8_hi")},
                     "int8_conf": np.array([0.9, 0.8, 0.7]), "int8_conf_raw": np.array([0.9, 0.8, 0.7]),
                     "conf_calibrated": True, "notch": 6.0, "sigma": 4.0, "floor": 1e-3, "temperature": 1.0,
                     "interval": 0.4, "inner_coverage": 0.9, "conf_halfwidth_bpm": 5.0, "conf_measure": "mass",
                     "evidence_weight": 0.0, "evidence_mode": "off", "decoder_rule": "min", "logit_scale": 0.08,
                     "recipe": "fixed", "recipe_scores": {}}
    mod.dump_rows({"loso": [row("01")]}, tmp_path / "a.json", 1.0, mod.recipe_args(args))
    mod.dump_rows({"loso": [row("02")]}, tmp_path / "b.json", 2.0, mod.recipe_args(args))
    assert json.loads((tmp_path / "a.json").read_text())["args"]["teacher"] == "spec_teacher_m_accsum"
    _, _, recipe = mod.load_rows(tmp_path / "a.json")
    assert "folds" not in recipe and recipe["seed"] == 1
    merged = argparse.Namespace(**{**vars(bench_defaults()), "protocol": "spcup", "out": str(tmp_path / "out"),
                                   "merge": f"{tmp_path / 'a.json'},{tmp_path / 'b.json'}", "folds": "", "parts": "",
                                   "rows_out": ""})
    mod.merge(merged, [])
    assert "teacher spec_teacher_m_accsum" in (tmp_path / "out" / "hr_spectral_spcup.md").read_text()
    assert merged.teacher == "spec_teacher_m_accsum" and merged.student == "spec_student_s_accsum" and merged.seed == 1
    args.seed = 2
    mod.dump_rows({"loso": [row("03")]}, tmp_path / "c.json", 1.0, mod.recipe_args(args))
    merged.merge = f"{tmp_path / 'a.json'},{tmp_path / 'c.json'}"
    with pytest.raises(SystemExit, match=r"another recipe .*\(seed differ\)"):
        mod.merge(merged, [])
    # a file written before the machine and pretrain_unlabeled were kept: merged alone it says so, not "None";
    # beside a newer file (pretrain_unlabeled 0) it is the same recipe, and the report does not claim the corpus
    args.seed, args.pretrain = 1, "real"
    old = mod.recipe_args(args)
    mod.dump_rows({"loso": [row("04")]}, tmp_path / "old.json", 1.0, old)
    d = json.loads((tmp_path / "old.json").read_text())
    del d["machine"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    mod.dump_rows({"loso": [row("05")]}, tmp_path / "new.json", 1.0, {**old, "pretrain_unlabeled": 0})
    merged.merge = str(tmp_path / "old.json")
    mod.merge(merged, [])
    md = (tmp_path / "out" / "hr_spectral_spcup.md").read_text()
    assert "None" not in md and "(threads and CPU cores not recorded)" in md
    for files in ("old.json,new.json", "new.json,old.json"):
        merged.merge = ",".join(str(tmp_path / f) for f in files.split(","))
        mod.merge(merged, [])
        md = (tmp_path / "out" / "hr_spectral_spcup.md").read_text()
        assert "SiamQuality pretraining per outer fold: real;" in md and "pairs of the training" not in md, files
    mod.dump_rows({"loso": [row("06")]}, tmp_path / "new2.json", 1.0, {**old, "pretrain_unlabeled": 3})
    merged.merge = f"{tmp_path / 'new.json'},{tmp_path / 'new2.json'}"
    with pytest.raises(SystemExit, match=r"\(pretrain_unlabeled differ\)"):
        mod.merge(merged, [])


def test_compare_reports_the_paired_difference_of_two_arms_per_subject(tmp_path):
    """--compare A --against B (a pair per seed): per subject the arms' MAE difference averaged over the pairs,
    the mean over subjects with a t-interval and a sign-flip permutation p, a claim only when p < 0.05 and the CI
    excludes zero; --restate recomputes a saved comparison; a --compare without its --against is one line."""
    import json

    import numpy as np
    import pytest
    mod = load_benchmark("hr_spectral")
    args = bench_defaults()

    def rows_file(name, errs, pretrain, **recipe):
        rows = []
        for s, e in errs.items():
            y = np.full(4, 100.0)
            rows.append({"dataset": "wrist_exercise", "subject": s, "record": f"{s}_run", "y": y, "int8": y + e,
                         "student": y + e, "teacher": y - e})
        a = mod.recipe_args(args)
        a.update(pretrain=pretrain, **recipe)
        mod.dump_rows({"loso": rows}, tmp_path / name, 1.0, a)
        return str(tmp_path / name)
    subj = [f"s{i}" for i in range(1, 8)]                                      # 7 subjects: p can reach 2/128
    err_a = dict(zip(subj, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]))
    a1 = rows_file("a1.json", err_a, "real")
    b1 = rows_file("b1.json", {k: v + [1, 1, 2, 1, 1, 2, 1][i] for i, (k, v) in enumerate(err_a.items())}, "none")
    a2 = rows_file("a2.json", err_a, "real")
    b2 = rows_file("b2.json", {k: v + [3, 1, 2, 1, 1, 2, 1][i] for i, (k, v) in enumerate(err_a.items())}, "none")
    mod.main(["--protocol", "wrist", "--compare", a1, "--against", b1, "--compare", a2, "--against", b2,
              "--out", str(tmp_path / "out")])
    d = json.loads((tmp_path / "out" / "hr_spectral_wrist_compare.json").read_text())["loso"]
    assert d["pairs"] == 2 and d["subjects"] == [f"wrist_exercise:{k}" for k in subj]
    assert list(d["int8"]["per_subject"].values()) == [-2.0, -1.0, -2.0, -1.0, -1.0, -2.0, -1.0]
    assert abs(d["int8"]["diff"] + 10 / 7) < 1e-9 and d["int8"]["ci95"][1] < 0 and d["int8"]["claim"] == "A lower"
    assert d["int8"]["p"] == pytest.approx(2 / 128)                             # every subject lower: the least p
    text = (tmp_path / "out" / "hr_spectral_wrist_compare.md").read_text()
    assert "| int8 | 1.86 | 3.29 | -1.43 [" in text and "pretrain real" in text and "pretrain none" in text
    assert "sign-flip permutation" in text and "t-interval over subjects" in text
    # 3 subjects all lower: a percentile bootstrap would exclude zero; 3 subjects cannot (p >= 2/8)
    a3 = rows_file("a3.json", {"s2": 1.0, "s3": 2.0, "s4": 3.0}, "real")
    b3 = rows_file("b3.json", {"s2": 2.0, "s3": 3.0, "s4": 5.0}, "none")
    mod.main(["--protocol", "wrist", "--compare", a3, "--against", b3, "--out", str(tmp_path / "o3s")])
    d3 = json.loads((tmp_path / "o3s" / "hr_spectral_wrist_compare.json").read_text())["loso"]["int8"]
    assert d3["p"] == pytest.approx(0.25) and d3["claim"] == "no difference shown"
    # --restate recomputes a comparison JSON's statistics from its per-subject differences, same stem
    saved = tmp_path / "out" / "hr_spectral_wrist_compare.json"
    old = json.loads(saved.read_text())
    old["loso"]["int8"].update(ci95=[-9.0, -8.0], claim="B lower", p=0.5)          # as an older test wrote it
    del old["titles"], old["arms"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x.json").write_text(json.dumps(old))
    mod.main(["--restate", str(tmp_path / "old" / "x.json"), "--out", str(tmp_path / "re")])
    re = json.loads((tmp_path / "re" / "x.json").read_text())["loso"]["int8"]
    assert re["claim"] == "A lower" and re["ci95"] == d["int8"]["ci95"] and re["p"] == d["int8"]["p"]
    assert "### wrist_exercise, LOSO over 5 subjects" in (tmp_path / "re" / "x.md").read_text()
    (tmp_path / "old" / "y.json").write_text(json.dumps({"loso": {"subjects": []}}))
    with pytest.raises(SystemExit, match="not a --compare JSON"):
        mod.main(["--restate", str(tmp_path / "old" / "y.json"), "--out", str(tmp_path / "re")])
    with pytest.raises(SystemExit, match="not a readable comparison JSON"):
        mod.main(["--restate", str(tmp_path / "old" / "none.json"), "--out", str(tmp_path / "re")])
    same = rows_file("c.json", {"s2": 1.0, "s3": 2.0, "s4": 3.0}, "none")
    mod.main(["--protocol", "wrist", "--compare", a1, "--against", same, "--out", str(tmp_path / "o2")])
    assert json.loads((tmp_path / "o2" / "hr_spectral_wrist_compare.json").read_text())["loso"]["int8"]["claim"] == \
        "no difference shown"
    # a recipe key the arms differ in is named, whatever it is; process arguments (where a file was written) are not
    moved = rows_file("m.json", {"s2": 1.0, "s3": 2.0, "s4": 3.0}, "real", motion_on_truth=0.3, logits_out="/x")
    mod.main(["--protocol", "wrist", "--compare", moved, "--against", a1, "--out", str(tmp_path / "o4")])
    arms = (tmp_path / "o4" / "hr_spectral_wrist_compare.md").read_text().split("Arms")[-1]
    assert "motion_on_truth 0.3" in arms and "motion_on_truth 0.0" in arms and "/x" not in arms
    with pytest.raises(SystemExit, match="1 arm A list"):
        mod.main(["--protocol", "wrist", "--compare", a1, "--out", str(tmp_path / "o3")])


def test_acc_rotations_turn_only_the_accelerometer_of_training_copies():
    """--acc-rotations K: K copies of each training recording, the acc axes turned by a rotation (per-sample norm
    kept), the PPG, truth and subject unchanged, new record ids registered in `records`; the copies' per-axis
    spectra differ, their summed-acc spectra (orientation-free, replayed with one gain for the three axes) agree
    within one code."""
    import numpy as np

    from sqtool.data.hr_spectra import device_stream, record_spectra, stream_channels
    from sqtool.data.synthetic import synth_record
    from sqtool.models import get_model_cfg
    mod = load_benchmark("hr_spectral")
    src = synth_record(duration_s=60.0, fs=125.0, hr_bpm=100.0, artifacts=0.0, seed=0, subject="s", record_id="r")
    t = np.arange(len(src.signals["acc_x"])) / 125.0
    rng = np.random.default_rng(1)
    for c, d in zip(("acc_x", "acc_y", "acc_z"), (0.8, 0.6, 0.0)):                  # a swing the z axis misses
        src.signals[c] = src.signals[c] + 0.4 * d * np.sin(2 * np.pi * 1.3 * t) + 0.01 * rng.standard_normal(t.size)
    scfg, summed = get_model_cfg("spec_student_xs"), get_model_cfg("spec_student_xs_accsum")
    records = {(src.dataset, src.record_id): src}
    train = [record_spectra(src, scfg)]
    out = mod.rotated_copies(train, records, 2, scfg, seed=0)
    assert len(out) == 2 and len(records) == 3 and {o.key for o in out} == {train[0].key}
    a0 = np.stack([src.signals[c] for c in ("acc_x", "acc_y", "acc_z")])
    for o in out:
        rot = records[(o.dataset, o.record_id)]
        a1 = np.stack([rot.signals[c] for c in ("acc_x", "acc_y", "acc_z")])
        assert o.record_id.startswith(src.record_id + "~rot")
        assert np.allclose(np.linalg.norm(a0, axis=0), np.linalg.norm(a1, axis=0)) and not np.allclose(a0, a1)
        assert np.array_equal(rot.signals["ppg"], src.signals["ppg"]) and np.array_equal(o.y, train[0].y, equal_nan=True)
        assert np.array_equal(o.x[..., 0], train[0].x[..., 0]) and not np.array_equal(o.x[..., 1:], train[0].x[..., 1:])
        d = record_spectra(rot, summed).x[..., 1].astype(int) - record_spectra(src, summed).x[..., 1]
        assert np.abs(d).max() <= 1
    chans, _ = stream_channels(src, summed)
    shared, own = device_stream(src, chans, True)[0], device_stream(src, chans, False)[0]
    amp = lambda x: np.percentile(np.abs(x - np.median(x, axis=1, keepdims=True)), 99.9, axis=1)   # noqa: E731
    assert amp(shared)[3] < 0.2 * amp(shared)[1]                     # z keeps its small share: x's gain, not its own
    assert np.array_equal(shared[0], own[0]) and not np.array_equal(shared[3], own[3])          # the PPG: its own


def test_emission_floors_reach_the_decoder_choice_and_bad_ones_are_one_line(capsys):
    """--emission-floors: the floors the inner windows choose among (default 0 only, as select_decoder's)."""
    import inspect

    import pytest

    from sqtool.models.hr_bins import select_decoder
    mod = load_benchmark("hr_spectral")
    assert bench_defaults().emission_floors == (0.0,) == inspect.signature(select_decoder).parameters[
        "emission_floors"].default
    ap = argparse.ArgumentParser()
    mod.add_training_args(ap)
    assert ap.parse_args(["--emission-floors", "0,0.003,0.03"]).emission_floors == (0.0, 0.003, 0.03)
    for bad in ("0.9", "x", "-0.1", "nan"):
        with pytest.raises(SystemExit):
            ap.parse_args(["--emission-floors", bad])
        assert "--emission-floors: needs comma-separated floors" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--merge", "--compare", "--against"])
def test_merge_and_compare_inputs_that_are_missing_or_foreign_are_one_line(tmp_path, flag):
    """--merge / --compare / --against files: a missing file, one that is not JSON, and a JSON of another kind (a
    report, not --rows-out rows) stop with one line naming the option and the file, not a traceback."""
    import json
    mod = load_benchmark("hr_spectral")
    good = tmp_path / "good.json"
    mod.dump_rows({"loso": [{"dataset": "troika", "subject": "01", "y": np.full(2, 90.0)}]}, good, 1.0,
                  mod.recipe_args(bench_defaults()))
    (tmp_path / "report.json").write_text(json.dumps({"protocol": "spcup", "loso": {"mae_all": 5.0}}))
    (tmp_path / "text.json").write_text("not json")
    for bad, says in (("missing.json", "cannot read"), ("text.json", "cannot read"),
                      ("report.json", "is not a --rows-out file")):
        files = f"{good},{tmp_path / bad}"
        argv = {"--merge": ["--merge", files], "--compare": ["--compare", files, "--against", str(good)],
                "--against": ["--compare", str(good), "--against", files]}[flag]
        with pytest.raises(SystemExit) as e:
            mod.main(["--protocol", "spcup", *argv, "--out", str(tmp_path / "out")])
        msg = str(e.value.code)
        assert msg.startswith(f"{flag}: ") and says in msg and bad in msg and "\n" not in msg, msg


def watch_dataset(folder, subjects=("s01", "s02", "s03"), nan_subject: str | None = None) -> str:
    """A small dataset.yaml of the README's kind (60 s CSV per subject); `nan_subject`'s heart-rate column all NaN."""
    from test_own_data import readme_yaml, write_csv_folder
    write_csv_folder(folder / "recordings", subjects=subjects)
    if nan_subject:
        f = folder / "recordings" / f"{nan_subject}_walk.csv"
        head, *lines = f.read_text().splitlines()
        f.write_text("\n".join([head, *(ln.rsplit(",", 1)[0] + ",nan" for ln in lines)]) + "\n")
    (folder / "dataset.yaml").write_text(readme_yaml())
    return str(folder / "dataset.yaml")


TINY = ["--student", "spec_student_xs", "--teacher", "spec_student_xs", "--epochs", "1", "--teacher-epochs", "1",
        "--qat-epochs", "1", "--inner-epochs", "1", "--pretrain", "none"]


def test_folds_and_subject_counts_are_checked_before_any_training(tmp_path, monkeypatch, capsys):
    """A --folds name that is no subject lists the valid keys; a fold left with one training subject and a subject
    without a scorable window are said before training (one line each), never a late traceback."""
    mod = load_benchmark("hr_spectral")
    monkeypatch.setattr(mod, "run_fold", lambda *a: pytest.fail("trained"))
    three = watch_dataset(tmp_path / "three", nan_subject="s03")
    two = watch_dataset(tmp_path / "two", subjects=("s01", "s02"))
    base = ["--protocol", "wrist", "--train-also", "", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), *TINY]
    with pytest.raises(SystemExit):
        mod.main([*base, "--target", three, "--folds", "s1"])
    err = capsys.readouterr()
    assert "--folds s1: s1 is not a held-out subject" in err.err and "valid: my_watch:s01, my_watch:s02" in err.err
    assert "left out: subject my_watch:s03 has no scorable window" in err.out       # the NaN subject, one line
    with pytest.raises(SystemExit):
        mod.main([*base, "--target", three])                 # s01, s02 left: each fold trains on one subject
    assert "fewer than 2 training subjects" in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(SystemExit):
        mod.main([*base, "--target", two, "--folds", "s02"])
    assert "my_watch:s02: fewer than 2 training subjects" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_report_of_a_subject_without_a_scored_window_does_not_crash():
    mod = load_benchmark("hr_spectral")
    y = np.full(5, np.nan)
    row = {"dataset": "my_watch", "subject": "s03", "record": "r", "y": y, "int8": y + 1, "int8_lo": y, "int8_hi": y,
           "int8_conf": np.full(5, 0.5), "conf_calibrated": False, "student": y, "teacher": y, "int8_raw": y,
           "baseline": y, "interval": 0.9, "inner_coverage": 0.9, "conf_halfwidth_bpm": 3.0, "conf_measure": "mass",
           "evidence_weight": 0.0, "recipe": "fixed"}
    text = mod.markdown(mod.summarise([row], "t"))
    assert "| my_watch:s03 | 0 (few) |" in text and "| - |" in text


def test_target_without_the_wrist_protocol_is_one_line(tmp_path, capsys):
    mod = load_benchmark("hr_spectral")
    for extra in (["--target", "my_watch/dataset.yaml"], ["--train-also", ""]):
        with pytest.raises(SystemExit):
            mod.main([*extra, "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])
        assert "apply to --protocol wrist only" in capsys.readouterr().err


def test_yours_only_needs_no_data_root_and_names_its_pretraining_corpus(tmp_path, monkeypatch, capsys):
    """--train-also "" reads no project data: it runs without any data root; the pretraining log counts the
    training subjects apart from the unlabeled recordings (a data root's unlabeled/, the docstring's corpus), and
    the recipe line says which corpus the pairs came from."""
    import sqtool.core.runs as runs
    from sqtool.data.hr_spectra import record_spectra
    from sqtool.data.synthetic import synth_corpus
    from sqtool.models import get_model_cfg
    mod = load_benchmark("hr_spectral")
    ds = watch_dataset(tmp_path / "w")
    monkeypatch.delenv("SQTOOL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "PROJECT_ROOT", tmp_path / "a" / "project")
    seen = []

    def stop(train, test, args, records, log):
        seen.append((sorted({r.key for r in train}), args.data_root, mod.pretrain_corpus_text(args)))
        raise KeyboardInterrupt
    monkeypatch.setattr(mod, "run_fold", stop)
    with pytest.raises(KeyboardInterrupt):
        mod.main(["--protocol", "wrist", "--target", ds, "--train-also", "", "--folds", "s01",
                  "--out", str(tmp_path / "o"), *TINY[:-2]])
    assert seen == [(["my_watch:s02", "my_watch:s03"], "", " (pairs of the training recordings only; a partner may "
                                                           "overlap its good window)")]
    scfg = get_model_cfg("spec_student_xs")
    recs = synth_corpus(n_subjects=3, duration_s=240.0, seed=0, af_fraction=0.0)
    train = [record_spectra(r, scfg) for r in recs[:2]]
    monkeypatch.setattr(mod, "unlabeled_wrist", lambda: (recs[2],))
    args = bench_defaults()
    args.student = args.teacher = "spec_student_xs"
    args.pretrain_epochs, said = 1, []
    mod.DATA = tmp_path
    mod.pretrained_encoders(train, args, {(r.dataset, str(r.record_id)): r for r in recs}, said.append,
                            get_model_cfg(args.teacher))
    assert "of 2 training subjects and 1 unlabeled smartwatch recordings" in said[0], said
    assert "SimSiam loss " in said[0] and "{" not in said[0], said          # the loss is printed, not its f-string


def test_each_finished_folds_rows_are_kept_before_the_run_ends(tmp_path, monkeypatch, capsys):
    """Without --rows-out the rows go to <out>/<stem>_rows.json, rewritten atomically after each fold: a run killed
    in its second fold keeps the first for --merge; a whole run's last line names the file."""
    mod = load_benchmark("hr_spectral")
    ds = watch_dataset(tmp_path / "w")
    folds = []

    def fold(train, test, args, records, log):
        if folds:
            raise KeyboardInterrupt                                    # killed in the second fold
        folds.append(test[0].key)
        return [{"dataset": r.dataset, "subject": r.subject, "record": r.record_id, "y": r.y} for r in test]
    monkeypatch.setattr(mod, "run_fold", fold)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        mod.main(["--protocol", "wrist", "--target", ds, "--train-also", "", "--out", str(out), *TINY])
    runs, _, recipe = mod.load_rows(out / "hr_spectral_wrist_my_watch_only_rows.json")
    assert folds == ["my_watch:s01"] and {r["subject"] for r in runs["loso"]} == {"s01"} and recipe["epochs"] == 1
    assert not list(out.glob("*.md"))
    capsys.readouterr()

    monkeypatch.setattr(mod, "run_fold", fold_off_by_one(sigma=4.0, temperature=1.0))
    mod.main(["--protocol", "wrist", "--target", ds, "--train-also", "", "--out", str(out), *TINY])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "exists; it is rewritten" not in last and str(out / "hr_spectral_wrist_my_watch_only_rows.json") in last
    runs, _, _ = mod.load_rows(out / "hr_spectral_wrist_my_watch_only_rows.json")
    assert len(runs["loso"]) == 3 and (out / "hr_spectral_wrist_my_watch_only.md").exists()


def test_a_subject_scored_on_a_few_windows_is_marked_not_dropped():
    """A subject with fewer than FEW_WINDOWS scored windows (one 9 s recording) is marked in the table and named in
    one line under it; the mean of subjects still counts it as any other."""
    mod = load_benchmark("hr_spectral")

    def row(subject, n, err):
        y = np.full(n, 100.0)
        return {"dataset": "my_watch", "subject": subject, "record": subject, "y": y, "int8": y + err, "int8_lo": y - 5,
                "int8_hi": y + 5, "int8_conf": np.full(n, 0.5), "conf_calibrated": False, "student": y, "teacher": y,
                "int8_raw": y, "baseline": y, "interval": 0.9, "inner_coverage": 0.9, "conf_halfwidth_bpm": 3.0}
    summ = mod.summarise([row("s01", 40, 2.0), row("s02", 1, 10.0)], "t")
    assert summ["few_windows"] == {"below": 10, "subjects": ["my_watch:s02"]} and summ["int8_mean_of_subjects"] == 6.0
    text = mod.markdown(summ)
    assert "| my_watch:s02 | 1 (few) |" in text and "| my_watch:s01 | 40 |" in text
    assert "(few): my_watch:s02 scored on fewer than 10 windows" in text


def fold_off_by_one(sigma: float, temperature: float):
    """A run_fold stand-in: every held-out window read 1 BPM off by every method, the fold's choices as given."""
    def run_fold(train, test, args, records, log):
        return [{"dataset": r.dataset, "subject": r.subject, "record": r.record_id, "y": r.y, "int8_conf": r.y * 0 + .5,
                 **{k: r.y + 1 for k in ("int8", "student", "teacher", "baseline", "int8_raw", "int8_lo", "int8_hi")},
                 "conf_calibrated": False, "interval": 0.9, "inner_coverage": 0.9, "conf_halfwidth_bpm": 3.0,
                 "notch": 3.0, "sigma": sigma, "floor": 1e-3, "temperature": temperature} for r in test]
    return run_fold


def test_the_report_states_units_choices_version_and_the_command_as_run(tmp_path, monkeypatch):
    """The table says its numbers are MAE in BPM; each fold's baseline notch and decoder are in the JSON and one MD
    line; the JSON has units, the git sha, the resolved data root and the machine; the command line keeps its
    quotes; a merge of files from one machine names its threads and cores."""
    import json
    import os
    mod = load_benchmark("hr_spectral")
    ds = watch_dataset(tmp_path / "w")

    monkeypatch.setattr(mod, "run_fold", fold_off_by_one(sigma=4.25, temperature=1.5))
    monkeypatch.setenv("SQTOOL_DATA", str(tmp_path))
    out = tmp_path / "o"
    mod.main(["--protocol", "wrist", "--target", ds, "--train-also", "", "--out", str(out), *TINY])
    md = (out / "hr_spectral_wrist_my_watch_only.md").read_text()
    res = json.loads((out / "hr_spectral_wrist_my_watch_only.json").read_text())
    assert "MAE in BPM per held-out subject" in md
    assert "s01 3 / 4.25, 1e-03, 1.5; s02 3 / 4.25" in md
    assert res["loso"]["subjects"][0]["fold_choices"] == {"notch": 3.0, "sigma": 4.25, "floor": 1e-3, "temperature": 1.5,
                                                          "interval": 0.9}
    assert "BPM" in json.dumps(res["units"]) and res["git_sha"] and res["data_root"] == str(tmp_path.resolve())
    assert res["args"]["data_root"] == str(tmp_path.resolve())
    assert res["machine"] == {"cpu_count": os.cpu_count(), "threads": 1}
    assert f"--train-also '' --out {out}" in md and f"1 thread(s) on a machine of {os.cpu_count()} CPU cores" in md
    assert "2 shared CPU cores" not in md
    rows = str(out / "hr_spectral_wrist_my_watch_only_rows.json")
    mod.main(["--protocol", "wrist", "--merge", rows, "--out", str(tmp_path / "m")])
    merged = (tmp_path / "m" / "hr_spectral_wrist_my_watch_only.md").read_text()
    assert f"on a machine of {os.cpu_count()} CPU cores" in merged


def test_help_shows_the_defaults_and_what_out_holds(capsys):
    mod = load_benchmark("hr_spectral")
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (("--epochs EPOCHS", "60"), ("--teacher-epochs TEACHER_EPOCHS", "40"),
                          ("--qat-epochs QAT_EPOCHS", "8"), ("--inner-epochs INNER_EPOCHS", "30"),
                          ("--seed SEED", "0"), ("--inner-folds INNER_FOLDS", "3"),
                          ("--student STUDENT", "spec_student_s"), ("--pretrain-epochs PRETRAIN_EPOCHS", "10")):
        after = text.split(flag, 2)[-1].split(" --", 1)[0]
        assert f"(default: {default})" in after, (flag, after)
    out = text.split("--out OUT")[-1].split(" --rows-out ROWS_OUT", 1)[0]
    assert ".json" in out and ".md" in out and "_rows.json" in out and "benchmarks/results" in out
    assert "(default: )" not in text


def test_processes_over_other_folds_in_one_out_folder_keep_their_own_files(tmp_path, monkeypatch, capsys):
    """Two processes of other --folds, one --out and no --rows-out write other default files (the stem names the
    folds; a crc32 when they would make a long name), and --merge of the two reports all three subjects."""
    mod = load_benchmark("hr_spectral")
    ds = watch_dataset(tmp_path / "w")

    monkeypatch.setattr(mod, "run_fold", fold_off_by_one(sigma=4.0, temperature=1.0))
    monkeypatch.setenv("SQTOOL_DATA", str(tmp_path))
    out = tmp_path / "o"
    for folds in ("s01", "my_watch:s03,s02"):
        mod.main(["--protocol", "wrist", "--target", ds, "--train-also", "", "--folds", folds, "--out", str(out),
                  *TINY])
    stem = out / "hr_spectral_wrist_my_watch_only_partial"
    a, b = Path(f"{stem}_s01_rows.json"), Path(f"{stem}_s02-s03_rows.json")
    assert {r["subject"] for r in mod.load_rows(a)[0]["loso"]} == {"s01"}
    assert {r["subject"] for r in mod.load_rows(b)[0]["loso"]} == {"s02", "s03"}
    assert "exists; it is rewritten" not in capsys.readouterr().out
    mod.main(["--protocol", "wrist", "--merge", f"{a},{b}", "--out", str(tmp_path / "m")])
    assert {r["subject"] for r in mod.load_rows(a)[0]["loso"] + mod.load_rows(b)[0]["loso"]} == {"s01", "s02", "s03"}
    assert "| my_watch:s03 |" in (tmp_path / "m" / "hr_spectral_wrist_my_watch_only.md").read_text()
    args = bench_defaults()
    args.protocol, args.folds = "spcup", ",".join(f"{i:02d}" for i in range(1, 13, 2))
    assert mod.part_tag(args, ["loso"]) == "01-03-05-07-09-11"
    args.folds = ",".join(f"subject_{i:02d}" for i in range(12))
    long = mod.part_tag(args, ["loso"])
    args.folds = "subject_00"
    assert len(long) < 20 and long != mod.part_tag(args, ["loso"]) == "subject_00"


def test_the_baseline_notch_and_ppg_sensors_are_chosen_together_by_training_mae(monkeypatch):
    """The benchmark's classic row is the fine-tune's (`hr_baseline.NestedBaseline`, one per sensor options): every
    (notch, PPG sensors) pair scored on the training recordings, read from their raw records once per sensors, the
    lowest mean MAE kept; the sensor choices are the student's first sensor alone and its ppg_sensors' mean; the
    fold's choice is one line of the report."""
    from types import SimpleNamespace

    import sqtool.data.hr_baseline as B
    from sqtool.models import get_model_cfg
    mod = load_benchmark("hr_spectral")
    assert mod.baseline_sensor_options(get_model_cfg("spec_student_s")) == [("ppg",), ("ppg", "ppg2")]
    one = get_model_cfg("spec_student_s").replace(frontend={**get_model_cfg("spec_student_s").frontend,
                                                            "ppg_sensors": ["ppg"]})
    assert mod.baseline_sensor_options(one) == [("ppg",)]
    err = {(0.0, ("ppg",)): 4.0, (0.0, ("ppg", "ppg2")): 3.0, (3.0, ("ppg",)): 2.0, (3.0, ("ppg", "ppg2")): 1.0,
           (6.0, ("ppg",)): 5.0, (6.0, ("ppg", "ppg2")): 6.0, (9.0, ("ppg",)): 7.0, (9.0, ("ppg", "ppg2")): 8.0,
           (12.0, ("ppg",)): 9.0, (12.0, ("ppg", "ppg2")): 1.5}     # training MAE of each pair (NOTCHES: 0-12)
    asked = []

    def fake_grid(record, t0, window_s, notches, cfg):
        asked.append((record, cfg.ppg_sensors))
        return {n: {"hr": np.full(len(t0), 80.0 + err[(n, cfg.ppg_sensors)])} for n in notches}
    monkeypatch.setattr(B, "baseline_grid", fake_grid)
    monkeypatch.setattr(mod, "_CLASSIC", {})
    classic = mod.nested_baseline(get_model_cfg("spec_student_s"))
    assert mod.nested_baseline(get_model_cfg("spec_student_s")) is classic          # its cache lives across folds
    train = [SimpleNamespace(dataset="troika", record_id=f"r{i}", source=f"raw{i}", t0=np.arange(3) * 2.0,
                             y=np.full(3, 80.0)) for i in range(2)]
    notch, sensors, scores = classic.choose(train)
    assert (notch, sensors) == (3.0, ("ppg", "ppg2")) and scores == err
    assert sorted(asked) == sorted((f"raw{i}", s) for i in range(2) for s in (("ppg",), ("ppg", "ppg2")))
    assert classic.choose(train)[:2] == (notch, sensors) and len(asked) == 4          # the next fold: cached
    y = np.full(20, 100.0)
    rows = [{"dataset": "troika", "subject": s, "record": s, "y": y, "int8": y + 1, "int8_lo": y - 5, "int8_hi": y + 5,
             "int8_conf": np.full(20, 0.5), "conf_calibrated": False, "student": y, "teacher": y, "int8_raw": y,
             "baseline": y, "interval": 0.9, "inner_coverage": 0.9, "conf_halfwidth_bpm": 3.0, "notch": 3.0,
             "baseline_ppg": ppg, "sigma": 4.0, "floor": 1e-3, "temperature": 1.0} for s, ppg in (("01", "ppg+ppg2"),
                                                                                             ("02", "ppg"))]
    summ = mod.summarise(rows, "t")
    assert summ["subjects"][0]["fold_choices"]["baseline_ppg"] == "ppg+ppg2"
    assert "(baseline notch BPM, PPG sensors / decoder" in mod.markdown(summ)
    assert "01 3, ppg+ppg2 / 4.00, 1e-03, 1; 02 3, ppg / 4.00" in mod.markdown(summ)


def test_rows_and_comparisons_with_nan_are_strict_json_and_old_files_with_nan_tokens_still_merge(tmp_path):
    """A window without truth (NaN) is null in a --rows-out file, read back as NaN; a file an older run wrote with
    the bare NaN token merges the same. A --compare JSON whose subject has no scored window (a null difference,
    a null arm mean) restates to the same report as its NaN-token original, and what it writes is strict JSON."""
    import json
    mod = load_benchmark("hr_spectral")
    args = bench_defaults()

    def row(s, y):
        return {"dataset": "troika", "subject": s, "record": f"r{s}", "n": int(np.isfinite(y).sum()), "y": y,
                **{k: np.array([90.0, 91.0, 92.0]) for k in ("int8", "student", "teacher", "baseline", "int8_raw",
                                                             "student_raw", "int8_lo", "int8_hi")},
                "int8_conf": np.array([0.9, 0.8, 0.7]), "conf_calibrated": False, "sigma": 4.0, "floor": 1e-3,
                "temperature": 1.0, "interval": 0.4, "inner_coverage": 0.9, "conf_halfwidth_bpm": 5.0,
                "evidence_weight": 0.0, "recipe": "fixed", "recipe_scores": {"fixed": np.float32(np.nan)}}
    mod.dump_rows({"loso": [row("01", np.array([90.0, np.nan, 93.0]))]}, tmp_path / "a.json", 1.0,
                  mod.recipe_args(args))
    d = strict_loads((tmp_path / "a.json").read_text())
    assert d["runs"]["loso"][0]["y"] == [90.0, None, 93.0] and d["runs"]["loso"][0]["recipe_scores"] == {"fixed": None}
    runs, _, _ = mod.load_rows(tmp_path / "a.json")
    assert np.array_equal(runs["loso"][0]["y"], [90.0, np.nan, 93.0], equal_nan=True)
    old = dict(d, runs={"loso": [dict(d["runs"]["loso"][0], subject="02",
                                      y=[float("nan")] * 3)]})                          # no scored window at all
    (tmp_path / "old.json").write_text(json.dumps(old))                                  # NaN tokens, as before
    assert "NaN" in (tmp_path / "old.json").read_text()
    assert np.isnan(mod.load_rows(tmp_path / "old.json")[0]["loso"][0]["y"]).all()
    merged = argparse.Namespace(**{**vars(bench_defaults()), "protocol": "spcup", "out": str(tmp_path / "out"),
                                   "merge": f"{tmp_path / 'a.json'},{tmp_path / 'old.json'}", "folds": "",
                                   "parts": "", "rows_out": ""})
    mod.merge(merged, [])
    res = strict_loads((tmp_path / "out" / "hr_spectral_spcup.json").read_text())
    assert {s["subject"]: s["int8"] for s in res["loso"]["subjects"]} == {"troika:01": 0.5, "troika:02": None}

    per = {"wrist_exercise:s1": -1.0, "wrist_exercise:s2": float("nan"), "wrist_exercise:s3": -2.0,
           "wrist_exercise:s4": -1.5}
    cmp = {"protocol": "wrist", "titles": {"loso": "t"}, "arms": "A: x / B: y",
           "loso": {"subjects": list(per), "pairs": 1, **{m: mod.paired_row(float("nan"), 3.0, per)
                                                            for m in mod.COMPARED}}}
    (tmp_path / "nan").mkdir()
    (tmp_path / "nan" / "c.json").write_text(json.dumps(cmp))                            # NaN tokens
    mod.write_compare(cmp, tmp_path / "null", "c")                                       # null, as written now
    assert strict_loads((tmp_path / "null" / "c.json").read_text())["loso"]["int8"]["per_subject"]["wrist_exercise:s2"] \
        is None
    for src in ("nan", "null"):
        mod.main(["--restate", str(tmp_path / src / "c.json"), "--out", str(tmp_path / f"re_{src}")])
        strict_loads((tmp_path / f"re_{src}" / "c.json").read_text())
    assert (tmp_path / "re_nan" / "c.md").read_text() == (tmp_path / "re_null" / "c.md").read_text()
    assert "| int8 | nan | 3.00 | -1.50 [" in (tmp_path / "re_null" / "c.md").read_text()
