"""`sqtool quantize` end to end: the run directory the export stage consumes, and every bad input."""
import json

import numpy as np
import pytest
import yaml

from sqtool.cli import main
from sqtool.compress.cli import QuantizeConfig, check_budget, quantize
from sqtool.compress import distill as D
from sqtool.compress import qat as Q
from sqtool.core import SqtoolError
from sqtool.models import ModelCfg, create_model, get_model_cfg
from sqtool.core.checkpoint import load_checkpoint

from compress_fixtures import HR_TEACHER, make_teacher

FAST = dict(epochs=3, qat_epochs=1, batch_size=32, heldout_subjects=["syn005"])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, hr_teacher, hr_task):
    out = tmp_path_factory.mktemp("q") / "run"
    cfg = QuantizeConfig(teacher=str(hr_teacher), out=str(out), **FAST)
    return quantize(cfg, data=hr_task)


def test_run_dir_is_what_the_export_stage_reads(run_dir, hr_task):
    for f in ("model.pt", "student_float.pt", "heldout.npz", "metrics.json", "report.md", "config.yaml",
              "teacher_cache.npz"):
        assert (run_dir / f).is_file(), f
    ck = load_checkpoint(run_dir / "model.pt", expect_kind="student_int8")
    mcfg = ModelCfg.from_dict(ck["model_cfg"])
    assert mcfg.quant == "int8_w_per_channel_a_per_tensor"
    assert mcfg.outputs == ("hr_bpm", "quality_logit") and mcfg.fs == 40.0 and mcfg.window_s == 8.0
    assert (mcfg.target_mean[0], mcfg.target_std[0]) == (HR_TEACHER["target_mean"][0], HR_TEACHER["target_std"][0])
    q = create_model(mcfg)
    q.load_state_dict(ck["state_dict"], strict=True)
    fl = load_checkpoint(run_dir / "student_float.pt", expect_kind="student_float")
    f = create_model(ModelCfg.from_dict(fl["model_cfg"]))
    f.load_state_dict(fl["state_dict"], strict=True)
    assert ModelCfg.from_dict(fl["model_cfg"]).quant is None

    with np.load(run_dir / "heldout.npz") as z:
        x, y, g = z["x"], z["y"], z["groups"]
    assert x.dtype == np.float32 and x.shape[1:] == mcfg.input_shape and y.shape == (len(x), 1)
    assert set(g.tolist()) == {"syn005"} and len(x) == int(np.sum(hr_task.groups == "syn005"))

    m = json.loads((run_dir / "metrics.json").read_text())
    spec = D.output_spec(mcfg)
    # the reloaded int8 student reproduces the reported metric on heldout.npz
    mae = float(np.mean(np.abs(D.denormalise(D.predict(q, x), spec)[:, 0] - y[:, 0])))
    assert abs(mae - m["student_int8"]["metrics"]["mae"]) < 1e-4
    mae_f = float(np.mean(np.abs(D.denormalise(D.predict(f, x), spec)[:, 0] - y[:, 0])))
    assert abs(mae_f - m["student_float"]["metrics"]["mae"]) < 1e-4
    for k in ("teacher", "student_float", "student_int8"):
        assert np.isfinite(m[k]["metrics"]["mae"])
    assert m["size"]["int8_weight_bytes"] > 0 and m["size"]["macs_per_window"] > 0 and m["size"]["params"] > 0
    assert [r["layer"] for r in m["sqnr"]][-2:] == ["pool", "fc"]
    assert all(np.isfinite(r["sqnr_db"]) for r in m["sqnr"])
    assert m["coverage"]["by_coverage"][0]["coverage"] == 1.0
    assert m["timing"]["qat_s_per_epoch"] > 0 and m["timing"]["float_s_per_epoch"] > 0
    assert any("small" in w for w in m["warnings"])                        # 285 calibration windows < 300
    c = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert c["heldout_subjects"] == ["syn005"] and c["config"]["teacher"]
    # provenance for the bench's seen-subjects warning: "dataset:subject" keys, as the spectral quantize
    assert ck["heldout_subjects"] == ["synthetic:syn005"]
    assert ck["train_subjects"] == sorted(f"synthetic:{s}" for s in set(hr_task.groups.tolist()) - {"syn005"})
    assert "| student int8" in (run_dir / "report.md").read_text()
    # the int8 output reaches every training label (with headroom) and a confident quality logit
    r = m["student_int8"]["output_range"]
    top = 127 * r["scale"]
    y_tr = D.normalise_targets(hr_task.y[hr_task.groups != "syn005"], spec)
    assert top >= 1.25 * float(np.abs(y_tr[:, 0]).max()) - 1e-6 and top >= 4.0 - 1e-6
    assert r["threshold"] >= r["calibrated_threshold"]
    assert abs(Q.activation_scales(q)["fc"] - r["threshold"]) < 1e-5 * r["threshold"]     # held through QAT


def test_teacher_cache_reused_across_runs(run_dir, hr_teacher, hr_task, tmp_path):
    cfg = QuantizeConfig(teacher=str(hr_teacher), out=str(tmp_path / "r2"), distill=False, quality_head=False,
                         teacher_cache=str(run_dir / "teacher_cache.npz"), student="cnn1d_student_xs",
                         channels=["ppg", "acc_x", "acc_y", "acc_z"],
                         preset="int8_w_per_tensor_a_per_tensor", **{**FAST, "qat_epochs": 0})
    d = quantize(cfg, data=hr_task)
    m = json.loads((d / "metrics.json").read_text())
    assert m["teacher"]["cache"]["reused"] and not m["distill"]["enabled"]
    assert m["coverage"] == {} and load_checkpoint(d).get("model_cfg")["outputs"] == ["hr_bpm"]
    assert load_checkpoint(d)["model_cfg"]["quant"] == "int8_w_per_tensor_a_per_tensor"
    assert load_checkpoint(d)["model_cfg"]["channels"] == ["ppg", "acc_x", "acc_y", "acc_z"]   # added acc
    with np.load(d / "heldout.npz") as z:
        assert z["x"].shape[1] == 4


def test_over_budget_says_which_budget_and_by_how_much(hr_teacher, hr_task, tmp_path):
    cfg = QuantizeConfig(teacher=str(hr_teacher), out=str(tmp_path / "o"), width_mult=1.5, **FAST)
    with pytest.raises(SqtoolError, match=r"int8 weights [\d,]+ > 16,000 \(\+[\d,]+, [\d.]+ % over\)"):
        quantize(cfg, data=hr_task)
    assert not (tmp_path / "o").exists()                                  # refused before writing
    scfg = get_model_cfg("cnn1d_student_s")
    with pytest.raises(SqtoolError, match="MACs per window"):
        check_budget(scfg, QuantizeConfig(max_macs=100_000))
    b = check_budget(scfg, QuantizeConfig(max_macs=100_000, allow_over_budget=True))
    assert b["over"] and not b["checks"]["macs"]["ok"] and b["checks"]["int8_weights"]["ok"]


@pytest.mark.parametrize("bad,match", [
    (dict(kind="student_float"), "is a student_float checkpoint; expected teacher_task"),
    (dict(task="af", outputs=("logit_af",), units=("logit",), target_mean=(0.0,), target_std=(1.0,)),
     "fine-tuned for task 'af', not 'hr'"),
    (dict(fs=125.0), "runs at 125 Hz; the student is built for 40 Hz"),
    (dict(window_s=10.0), "takes 10 s windows"),
])
def test_wrong_teacher_is_refused(tmp_path, hr_task, bad, match):
    t = make_teacher(tmp_path / "t.pt", None, **bad)
    with pytest.raises(SqtoolError, match=match):                   # --task hr given: the af teacher is refused
        quantize(QuantizeConfig(teacher=str(t), task="hr", out=str(tmp_path / "o"), **FAST), data=hr_task)
    assert not (tmp_path / "o").exists()


def test_calibration_file_from_another_rate_is_refused(hr_teacher, hr_task, tmp_path):
    p = tmp_path / "cal.npz"
    np.savez(p, x=hr_task.x[:300], fs=np.float64(125.0), window_s=np.float64(8.0))
    with pytest.raises(SqtoolError, match="125 Hz"):
        quantize(QuantizeConfig(teacher=str(hr_teacher), calib_npz=str(p), out=str(tmp_path / "o"), **FAST),
                 data=hr_task)
    assert not (tmp_path / "o").exists()


def test_a_torn_calibration_file_is_one_line(hr_teacher, hr_task, tmp_path):
    p = tmp_path / "cal.npz"
    np.savez(p, x=hr_task.x[:300])
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(SqtoolError, match=rf"^calibration file {p} is not an npz with an 'x' array \(BadZipFile\)$"):
        quantize(QuantizeConfig(teacher=str(hr_teacher), calib_npz=str(p), out=str(tmp_path / "o"), **FAST),
                 data=hr_task)


def test_cli_errors_are_one_line(capsys, tmp_path):
    rc = main(["quantize", "--model", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert rc != 0 and "not found" in err and len(err.strip().splitlines()) == 1
    rc = main(["quantize", "--model", str(tmp_path), "--preset", "int4_magic"])
    assert rc != 0 and "unknown quantization preset" in capsys.readouterr().err


def test_decoder_options_of_a_time_domain_student_are_refused_not_ignored(hr_teacher, tmp_path, capsys):
    rc = main(["quantize", "--model", str(hr_teacher), "--calibrate-on", "troika", "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "a time-domain student has no decoder" in err[0]
    assert not (tmp_path / "q").exists()


def test_cli_on_real_troika(data_root, hr_teacher, tmp_path, capsys):
    """The command line on 3 real SP Cup recordings (tiny epochs): a complete run directory."""
    out = tmp_path / "real"
    rc = main(["quantize", "--model", str(hr_teacher), "--data", str(data_root), "--max-records", "3",
               "--epochs", "1", "--qat-epochs", "1", "--no-distill", "--heldout-subjects", "03",
               "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["heldout_subjects"] == ["03"] and not m["synthetic"] and not m["distill"]["enabled"]
    with np.load(out / "heldout.npz") as z:
        assert set(z["groups"].tolist()) == {"03"} and z["x"].shape[1:] == (1, 320)


def test_teacher_out_of_fold_metric_and_final_fit_warning(tmp_path, hr_task):
    """A `sqtool train finetune` run dir: model.pt fitted on all subjects + oof_predictions.npz."""
    from sqtool.core.checkpoint import save_checkpoint
    t = make_teacher(tmp_path / "ft" / "model.pt", None)
    ck = load_checkpoint(t)
    save_checkpoint(t, kind="teacher_task", model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    train_cfg={"final_fit": True, "max_records": 0})
    np.savez(tmp_path / "ft" / "oof_predictions.npz", groups=hr_task.groups, t0=hr_task.t0, y=hr_task.y,
             pred=hr_task.y + 1.5, record_ids=hr_task.record_ids, fold=np.zeros(len(hr_task), np.int32))
    d = quantize(QuantizeConfig(teacher=str(tmp_path / "ft"), out=str(tmp_path / "o"),
                                **{**FAST, "epochs": 1, "qat_epochs": 0}), data=hr_task)
    m = json.loads((d / "metrics.json").read_text())
    oof = m["teacher"]["out_of_fold"]
    assert oof["windows"] == m["heldout_windows"] and abs(oof["metrics"]["mae"] - 1.5) < 1e-4
    assert any("optimistic" in w for w in m["warnings"])
    assert "out-of-fold" in (d / "report.md").read_text()


def test_the_result_line_of_a_time_domain_run_carries_units():
    from sqtool.compress.cli import result_line
    m = {"task": "hr", "primary_metric": "mae", "teacher": {"metrics": {"mae": 8.108}},
         "student_float": {"metrics": {"mae": 9.0}}, "student_int8": {"metrics": {"mae": 9.251}}}
    assert result_line(m) == "held-out hr: teacher MAE 8.11 BPM | student float MAE 9.00 BPM | int8 MAE 9.25 BPM"



def test_the_cli_prints_the_result_line_of_the_metrics_it_wrote(hr_teacher, tmp_path, capsys):
    from sqtool.compress.cli import print_results, result_line
    out = tmp_path / "q"
    rc = main(["quantize", "--model", str(hr_teacher), "--data", "synthetic", "--epochs", "1", "--qat-epochs", "1",
               "--no-distill", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.strip().splitlines()
    m = json.loads((out / "metrics.json").read_text())
    at = lines.index(f"{result_line(m)} -> {out}")                                    # as written
    assert lines[-1].startswith("hr: student int8 mae model") and at < len(lines) - 4   # then the skill lines
    with pytest.raises(KeyError):                       # a broken result line is an error, not 'quantized -> RUN'
        print_results(out, {"task": "hr"})

def test_quantize_reads_the_teachers_own_data_by_default(hr_teacher, tmp_path, capsys, monkeypatch):
    """No --data: the data the teacher was fine-tuned on (its train_cfg's data_root: here 'synthetic'), not the
    default data root (a team's dataset file would otherwise be swapped for the built-in datasets)."""
    import torch
    ck = torch.load(hr_teacher / "model.pt" if hr_teacher.is_dir() else hr_teacher, weights_only=False)
    ck["train_cfg"] = {"data_root": "synthetic"}
    t = tmp_path / "teacher.pt"
    torch.save(ck, t)
    (tmp_path / "empty_root").mkdir()                   # the default data root holds nothing: only the teacher's works
    monkeypatch.setenv("SQTOOL_DATA", str(tmp_path / "empty_root"))
    rc = main(["quantize", "--model", str(t), "--epochs", "1", "--qat-epochs", "1", "--no-distill",
               "--out", str(tmp_path / "q"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "q" / "metrics.json").read_text())["synthetic"]


def test_a_window_the_default_student_cannot_take_names_one_that_can():
    from sqtool.models import create_model
    with pytest.raises(SqtoolError, match="400 samples is not divisible by the total stride 32; "
                                          "--student cnn1d_student_xs or cnn1d_student_s16 fits it"):
        create_model("cnn1d_student_s", window_s=10.0)                     # 10 s at 40 Hz
    teacher = get_model_cfg("resnet1d_siamq_tiny", task="hr")
    assert D.default_student(teacher.replace(window_s=10.0)) == "cnn1d_student_s16"
    assert D.default_student(teacher.replace(window_s=8.0)) == "cnn1d_student_s"


def test_no_registry_student_fitting_the_teacher_is_one_line_naming_its_window_and_rate():
    """The default student when none fits: one line naming the teacher's window and rate (it was the family's
    `_s`, silently, whose own mismatch was refused later, naming the student), for either family; an explicit
    --student is still the user's."""
    odd = get_model_cfg("resnet1d_siamq_tiny", task="hr", window_s=10.025)             # 401 samples at 40 Hz
    with pytest.raises(SqtoolError, match=r"^teacher resnet1d_siamq_tiny takes 10.025 s windows at 40 Hz \(401 "
                                          r"samples\): no registry cnn1d_student student fits it \(their total "
                                          r"strides 16, 32 must divide the window's samples\)$"):
        D.student_for(odd)
    assert D.student_for(odd, "cnn1d_student_xs") == "cnn1d_student_xs"
    spec = get_model_cfg("spec_teacher_m", fs=20.0)
    with pytest.raises(SqtoolError, match=r"^teacher run/x takes 8 s windows at 20 Hz \(channels ppg, acc_x, acc_y, "
                                          r"acc_z\): no registry spec_cnn student fits it \(a student reads"):
        D.student_for(spec, where="teacher run/x")


def test_finetunes_next_line_names_no_student_as_the_spectral_one(tmp_path):
    """`train finetune`'s next line names no --student, as the spectral fine-tune's: quantize's default is the
    student that fits the teacher's window (cnn1d_student_s16 for 10 s at 40 Hz, whose stride error the printed
    `--student cnn1d_student_s` once ran into), one rule, `compress.distill.default_student`."""
    from types import SimpleNamespace
    from sqtool.train.cli import quantize_next
    (tmp_path / "model.pt").touch()                         # the next line needs the run's model, not to read it
    assert quantize_next(SimpleNamespace(task="af"), tmp_path) == f"next: sqtool quantize --model {tmp_path} --task af"
    assert quantize_next(SimpleNamespace(task="hr"), tmp_path) == f"next: sqtool quantize --model {tmp_path}"


def test_the_default_student_is_the_teachers_familys_and_config_says_which(run_dir):
    c = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert c["config"]["student"] == "" and c["resolved"]["student"] == "cnn1d_student_s"     # asked / used
    assert load_checkpoint(run_dir / "model.pt")["model_cfg"]["name"] == "cnn1d_student_s"


def test_a_student_of_the_other_family_is_one_line_naming_the_family_and_the_students_that_fit(hr_teacher, tmp_path,
                                                                                                capsys):
    assert main(["quantize", "--model", str(hr_teacher), "--student", "spec_student_s", "--data", "synthetic",
                 "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        "is a time-domain model (resnet1d): --student spec_student_s (spec_cnn) is not a student for it, a "
        "cnn1d_student model is; students that fit it: cnn1d_student_xs, cnn1d_student_s16, cnn1d_student_s, "
        "cnn1d_student_m (default cnn1d_student_s)"), err
    assert not (tmp_path / "q").exists()
    tcfg = ModelCfg.from_dict(load_checkpoint(hr_teacher)["model_cfg"])
    assert D.student_cfg_from_teacher(tcfg, "").name == "cnn1d_student_s"                 # the library default


def test_the_default_student_fits_the_teachers_window():
    """No --student for a 10 s teacher at 40 Hz: cnn1d_student_s's stride 32 does not divide 400 samples, so the
    default is the largest registry student that does within cnn1d_student_s's budget: cnn1d_student_s16 (578 k
    MACs); at 30 s its 1.7 M MACs are over the budget, so cnn1d_student_xs (404 k). Not the first that fits: xs has
    a sixth of the weights (the af student's held-out AUROC 0.557 against s16's 0.864)."""
    teacher = get_model_cfg("resnet1d_siamq_tiny", task="hr")
    assert D.student_for(teacher.replace(window_s=10.0)) == "cnn1d_student_s16"
    assert D.student_for(teacher.replace(window_s=8.0)) == "cnn1d_student_s"
    assert D.student_for(teacher.replace(window_s=30.0)) == "cnn1d_student_xs"
    assert D.within_budget(teacher.replace(window_s=30.0), ["cnn1d_student_xs", "cnn1d_student_s16"],
                           "cnn1d_student_s") == ["cnn1d_student_xs"]
    assert D.stand_in(teacher.replace(window_s=10.0)) == (
        "cnn1d_student_s", "its total stride 32 does not divide the window's 400 samples (10 s at 40 Hz)")


def test_max_records_help_is_one_text_that_says_subjects():
    """--max-records keeps the first N subjects of a dataset file or a built-in dataset (every recording of each,
    data.dataset_tasks.load_task_from_dataset), not 'the first N records': quantize and train finetune give the one
    help text (models.hr_options.MAX_RECORDS_HELP), which says so and names the paths that count recordings."""
    from cli_options import option_helps
    from sqtool.models.hr_options import MAX_RECORDS_HELP
    helps = option_helps("--max-records")
    assert helps["quantize"].startswith(MAX_RECORDS_HELP) and helps["train finetune"].startswith(MAX_RECORDS_HELP)
    assert "the first N subjects, every recording of each" in MAX_RECORDS_HELP
    assert "spectral heart-rate model: the first N recordings" in MAX_RECORDS_HELP


def test_a_student_that_cannot_take_the_teachers_window_is_refused_before_any_data_is_read(hr_teacher, tmp_path,
                                                                                           capsys, monkeypatch):
    """--student cnn1d_student_s for an 8 s teacher at 50 Hz (400 samples, its stride 32): one line naming the
    student that fits, before the task is loaded, the teacher run over it or a run directory made (it was refused
    only when the student was built, after a minute of loading and teacher outputs, leaving a run directory)."""
    import torch
    ck = torch.load(hr_teacher / "model.pt" if hr_teacher.is_dir() else hr_teacher, weights_only=False)
    ck["model_cfg"]["fs"] = 50.0
    t = tmp_path / "teacher50.pt"
    torch.save(ck, t)
    import sqtool.data.tasks as tasks
    monkeypatch.setattr(tasks, "load_task", lambda *a, **k: pytest.fail("the task was loaded"))
    assert main(["quantize", "--model", str(t), "--student", "cnn1d_student_s", "--fs", "50", "--data", "synthetic",
                 "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sqtool: error: cnn1d_student_s: window of 400 samples is not divisible by the total stride 32; "
                   "--student cnn1d_student_xs or cnn1d_student_s16 fits it"], err
    assert not (tmp_path / "q").exists()
    teacher = ModelCfg.from_dict(ck["model_cfg"])
    assert D.student_cfg_from_teacher(teacher, "").name == "cnn1d_student_s16"         # the default takes it
    with pytest.raises(SqtoolError, match="window of 400 samples is not divisible by the total stride 32"):
        D.student_cfg_from_teacher(teacher, "cnn1d_student_s")


def test_no_progress_keeps_quantizes_per_item_lines_and_drops_only_the_epochs(capsys):
    """README: --no-progress turns off the per-epoch lines, never the per-item ones (each step's summary, the
    decoder chosen)."""
    import argparse
    from sqtool.compress.cli import _epoch_lines, _log
    off, on = argparse.Namespace(progress=False), argparse.Namespace(progress=True)
    _log(off)("decoder on the students' out-of-fold logits: sigma 4")
    assert "decoder on the students' out-of-fold logits" in capsys.readouterr().err
    assert not _epoch_lines(off) and _epoch_lines(on)


@pytest.mark.parametrize("given, loaded", [(None, 3), (4, 4), (0, None)])
def test_quantize_reads_the_teachers_max_records_unless_given(tmp_path, monkeypatch, given, loaded):
    """A teacher fine-tuned with --max-records 3 was quantized on every record (the time-domain path read
    cfg.max_records, None), so its student, held-out split and the trivial predictor beside it came from another
    record set than the teacher's. --max-records left out now takes the teacher run's, a given one (0 = all) wins,
    and config.yaml records the value the run read."""
    import sqtool.data.tasks as T
    from compress_fixtures import synthetic_hr_task
    from sqtool.core.checkpoint import save_checkpoint
    t = make_teacher(tmp_path / "ft" / "model.pt", None)
    ck = load_checkpoint(t)
    save_checkpoint(t, kind="teacher_task", model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    train_cfg={"data_root": "synthetic", "max_records": 3})
    asked = []

    def load_task(task, root, model_cfg, *, max_records=None, seed=0):
        asked.append(max_records)
        return synthetic_hr_task(n_subjects=max_records or 5, duration_s=60.0)
    monkeypatch.setattr(T, "load_task", load_task)
    d = quantize(QuantizeConfig(teacher=str(tmp_path / "ft"), out=str(tmp_path / "q"), epochs=1, qat_epochs=0,
                                batch_size=32, max_records=given))
    assert asked == [loaded]
    saved = yaml.safe_load((d / "config.yaml").read_text())["config"]
    assert saved["max_records"] == (loaded or 0)
    m = json.loads((d / "metrics.json").read_text())
    assert m["heldout_windows"] + m["train_windows"] == len(synthetic_hr_task(n_subjects=loaded or 5, duration_s=60.0))


def test_the_result_line_of_a_spectral_run_flags_an_int8_student_worse_than_the_classic_baseline():
    """A heart-rate student at 3.69 BPM on the held-out subjects against the classic baseline's 1.81 printed both
    numbers and no flag, where a time-domain run's last line says WORSE THAN THE CLASSIC METHOD."""
    from sqtool.compress.cli import result_line
    m = {"task": "hr", "heldout_subjects": ["my_watch:u11", "my_watch:u12"],
         "mae_bpm": {"teacher": 2.43, "float": 3.51, "int8": 3.69, "classic": 1.81}}
    assert result_line(m) == ("held-out MAE (mean of subjects): teacher 2.43, float 3.51, int8 3.69 BPM; classic "
                              "baseline (no learned model) 1.81 BPM; WORSE THAN THE CLASSIC METHOD (point comparison, "
                              "2 held-out subjects)")
    m["mae_bpm"]["classic"] = 5.0
    assert result_line(m).endswith("; classic baseline (no learned model) 5.00 BPM")


def test_the_next_export_line_builds_for_the_rates_the_recordings_share():
    """A spectral run on a 64 Hz watch (acc at 32 Hz) suggested `export` without --device-fs: the export built its C
    pipeline for 125 Hz, and bench / predict then skipped it on the watch's own files."""
    from types import SimpleNamespace as NS

    from sqtool.compress.cli import device_rate_args
    from sqtool.compress.quantize_hr import recorded_rates

    def rec(dataset, ppg, acc=None, sensors=None):
        fs = {"ppg": ppg, **({a: acc for a in ("acc_x", "acc_y", "acc_z")} if acc else {})}
        return NS(dataset=dataset, source=NS(fs=fs), meta={"ppg_sensors_recorded": sensors} if sensors else {})
    watch = [rec("my_watch", 64.0, 32.0), rec("my_watch", 64.0, 32.0), rec("troika", 125.0, 125.0)]
    assert recorded_rates(watch, "my_watch") == {"ppg": 64.0, "acc": 32.0}       # the other dataset's not counted
    assert recorded_rates(watch, None) == {}                                       # rates that vary: none
    assert recorded_rates([rec("my_watch", 64.0)], "my_watch") == {"ppg": 64.0}    # no accelerometer
    assert recorded_rates(watch, "my_watch", reads_acc=False) == {"ppg": 64.0}   # a PPG-only student: export
                                                                                   # refuses --device-acc-fs for it
    two = [rec("my_watch", 100.0, 50.0, 2), rec("my_watch", 100.0, 50.0, 2), rec("troika", 125.0, 125.0, 1)]
    assert recorded_rates(two, "my_watch") == {"ppg": 100.0, "acc": 50.0, "ppg_sensors": 2}   # the watch's LEDs
    assert "ppg_sensors" not in recorded_rates(two, None)                          # counts that vary: none
    assert device_rate_args({"recorded_rates": {"ppg": 64.0, "acc": 32.0}, "device_fs": 125.0}) == \
        ["--device-fs", "64", "--device-acc-fs", "32"]
    assert device_rate_args({"recorded_rates": {"ppg": 125.0, "acc": 125.0}, "device_fs": 125.0}) == []
    assert device_rate_args({"recorded_rates": {"ppg": 125.0, "acc": 25.0}, "device_fs": 125.0}) == \
        ["--device-acc-fs", "25"]
    assert device_rate_args({"mae_bpm": {}}) == []                                 # a time-domain run's metrics
