"""The README's "Your own data" walk-through, run as written (tiny epochs): a generated folder of CSV
recordings (time,ppg,acc_x,acc_y,acc_z,hr at 125 Hz, several subjects) described by the README's own
dataset.yaml -> inspect -> fine-tune -> quantize -> export (C pipeline kit) -> firmware image -> predict ->
bench, from another working directory; and a folder with an ECG channel only (HR derived from the ECG)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_yaml() -> str:
    """The dataset.yaml of the README's "Your own data" section (the block after its marker)."""
    s = README.read_text()
    m = re.search(r"<!-- own-data-yaml -->\s*```yaml\n(.*?)```", s, re.S)
    assert m, "README lost its own-data dataset.yaml example"
    return m.group(1)


def write_csv_folder(folder: Path, subjects=("s01", "s02", "s03", "s04"), seconds=60.0, ecg=False,
                     noisy_ecg: str | None = None) -> None:
    """Synthetic wrist recordings as CSV at 125 Hz: time, ppg, acc_x/y/z and an hr column (per sample, the
    window truth at the window centres) or, with ecg=True, an ECG channel (R spikes at the beats) instead."""
    from sqtool.data.synthetic import synth_record
    folder.mkdir(parents=True)
    for i, s in enumerate(subjects):
        r = synth_record(duration_s=seconds, fs=125.0, hr_bpm=70.0 + 12 * i, seed=i, subject=s)
        n = len(r.signals["ppg"])
        t = np.arange(n) / 125.0
        cols = {"time": t, **{c: r.signals[c] for c in ("ppg", "acc_x", "acc_y", "acc_z")}}
        if ecg:
            x = np.zeros(n)
            for b in r.meta["beats"]:
                k = int(round(b * 125.0))
                x[max(k - 2, 0):k + 3] += np.array([0.2, 0.6, 1.0, 0.6, 0.2])[:len(x[max(k - 2, 0):k + 3])]
            x += 0.01 * np.random.default_rng(i).standard_normal(n)
            if s == noisy_ecg:                                     # second half: noise, no beats
                x[n // 2:] = np.random.default_rng(99).standard_normal(n - n // 2)
            cols["ecg"] = x
        else:
            lab = r.labels["hr"]
            cols["hr"] = np.interp(t, np.asarray(lab.times) + 4.0, np.asarray(lab.values))
        head = ",".join(cols)
        np.savetxt(folder / f"{s}_walk.csv", np.column_stack(list(cols.values())), delimiter=",", header=head,
                   comments="", fmt="%.6f")


def run(*argv) -> str:
    rc = main(list(argv))
    assert rc == 0, argv
    return ""


@pytest.fixture(scope="module")
def watch_project(tmp_path_factory) -> Path:
    """The README's project, generated once per module: my_watch/recordings (4 subjects, 60 s CSV) and the
    README's my_watch/dataset.yaml. Tests write their runs under their own names inside it."""
    proj = tmp_path_factory.mktemp("own") / "proj"
    write_csv_folder(proj / "my_watch" / "recordings")
    (proj / "my_watch" / "dataset.yaml").write_text(readme_yaml())
    return proj


def test_readme_walkthrough_csv_to_firmware(watch_project, tmp_path, monkeypatch, capsys):
    proj = watch_project
    monkeypatch.chdir(proj)
    ds = "my_watch/dataset.yaml"

    run("data", "inspect", "--data", ds)
    out = capsys.readouterr().out
    assert "records 4, subjects 4" in out and "hr " in out and "ppg @ 125 Hz" in out

    capsys.readouterr()
    run("train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", ds, "--folds", "2",
        "--epochs", "1", "--progress", "false", "--out", "runs/mw_hr")
    ck = json.loads((proj / "runs/mw_hr/metrics.json").read_text())
    assert ck["subjects"] == 3 and ck["datasets"] == ["my_watch"]     # the file's split is held out of the teacher
    assert ck["heldout_subjects"] == ["my_watch:s04"] and "my_watch:s04" not in json.dumps(ck["per_subject"])
    out, err = capsys.readouterr()
    assert ("held out of every fold and of model.pt (the dataset file's split): my_watch:s04; quantize evaluates on "
            "them, never trained on") in out
    assert "note: 3 training subject(s) of my_watch alone: with few subjects of your own, train beside SP Cup's 12 " \
        "(--datasets troika" in err                                   # the README's advice, where it applies

    # the teacher's run names its dataset file by absolute path: quantize works from any directory
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    run("quantize", "--model", str(proj / "runs/mw_hr"), "--student", "spec_student_xs", "--epochs", "1",
        "--qat-epochs", "1", "--no-progress", "--out", str(proj / "runs/mw_q"))
    q = json.loads((proj / "runs/mw_q/metrics.json").read_text())
    assert q["heldout_subjects"] == ["my_watch:s04"]                  # the file's split, by subject
    assert q["heldout_in_teacher"] is False                           # ... which the teacher held out too
    monkeypatch.chdir(proj)

    # the default writes a dataset.yaml's subjects as pseudonyms in everything shipped; bench's "seen in training"
    # check below reads the real ids from the quantize run's checkpoint beside the export (in-house)
    run("export", "--model", "runs/mw_q", "--target", "c", "--device-fs", "125", "--out", "runs/mw_export")
    md = json.loads((proj / "runs/mw_export/metadata.json").read_text())
    assert md["frontend"]["ppg_sensors"] == ["ppg"]                # one-sensor recordings: a one-sensor firmware
    assert re.search(r"#define SQ_FE_N_PPG +1 ", (proj / "runs/mw_export/c/sq_frontend_tables.h").read_text())
    seen = md["training_data"]
    assert seen["datasets"] == ["my_watch"] and seen["heldout_subjects"] == ["my_watch:subject-04"]
    assert seen["pseudonymised"] == ["my_watch"]
    card = (proj / "runs/mw_export/MODEL_CARD.md").read_text()      # the card says what THIS model saw
    assert "- `my_watch`:" in card and "`troika`" not in card and "synthetic PPG only" not in card
    assert "trained on 3 subjects: my_watch:subject-01, my_watch:subject-02, my_watch:subject-03" in card
    assert "held out (never trained on; the metrics below): 1 subject: my_watch:subject-04" in card
    assert "subject-04; 27 scored windows), never in fine-tuning or quantization." in card
    skill = md["teacher_skill"]                                       # the fine-tune's verdict, for predict / bench
    assert skill == {k: ck["skill"]["skill"][k] for k in skill} and "skill" in skill
    assert "s01" not in card and "s04" not in card
    if shutil.which("arm-none-eabi-gcc"):
        r = subprocess.run(["make", "-C", "runs/mw_export", "mps2"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        assert (proj / "runs/mw_export/build/mps2/example.elf").is_file()

    run("predict", "--model", "runs/mw_export", "--data", "my_watch/recordings", "--out", "runs/mw_predict")
    s = json.loads((proj / "runs/mw_predict/summary.json").read_text())
    assert s["runtime"] == "c_pipeline" and len(s["recordings"]) == 4
    assert s["seen_in_training"] == []                               # the bare folder: no truth, a real device
    no_skill = [w for w in s["warnings"] if w.startswith("WARNING: this model's teacher in fine-tuning: hr: pooled mae")]
    assert s["warnings"] == no_skill and len(no_skill) == (0 if skill["skill"] else 1)   # 1 epoch: often no skill
    assert s["model_training_data"]["heldout_subjects"] == ["my_watch:subject-04"]

    capsys.readouterr()
    run("bench", "--model", "runs/mw_export", "--data", ds, "--runtime", "c,pipeline", "--out", "runs/mw_bench")
    b = json.loads((proj / "runs/mw_bench/bench.json").read_text())
    assert b["labelled"] and b["seen_in_training"] == ["my_watch:s01", "my_watch:s02", "my_watch:s03"]
    md = (proj / "runs/mw_bench/bench.md").read_text()
    assert "seen in training" in md and "my_watch:s01 (seen in training)" in md
    assert "my_watch:s04 (seen" not in md


def test_ecg_only_folder_derives_hr(tmp_path, monkeypatch, capsys):
    write_csv_folder(tmp_path / "ecg_watch" / "rec", subjects=("a1", "a2", "a3"), seconds=40.0, ecg=True,
                     noisy_ecg="a3")
    (tmp_path / "ecg_watch" / "dataset.yaml").write_text(
        "format: csv\nroot: rec\nfiles: '*.csv'\nfs: 125\ntime_column: time\n"
        "channels: {ppg: ppg, acc_x: acc_x, acc_y: acc_y, acc_z: acc_z, ecg: ecg}\n"
        "subject: {pattern: '^(a\\d)_'}\nlabels: {hr: {ecg: ecg}}\n")
    monkeypatch.chdir(tmp_path)
    from sqtool.data.dataset_file import load_dataset_file
    ds = load_dataset_file("ecg_watch/dataset.yaml")
    recs = {r.subject: r for r in ds.records()}
    clean = recs["a1"].labels["hr"].values
    assert np.isfinite(clean).mean() > 0.8 and abs(np.nanmedian(clean) - 70) < 5
    noisy = recs["a3"]
    assert noisy.meta["hr_doubtful"] > 0 and np.isnan(noisy.labels["hr"].values).sum() == noisy.meta["hr_doubtful"]
    assert ds.report["hr_doubtful"] >= noisy.meta["hr_doubtful"]

    run("data", "inspect", "--data", "ecg_watch")                    # a folder holding dataset.yaml
    assert "NaN: no or doubtful truth" in capsys.readouterr().out
    run("train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "ecg_watch/dataset.yaml",
        "--folds", "2", "--epochs", "1", "--no-final-fit", "--progress", "false", "--heldout-fraction", "0",
        "--out", "runs/ecg_hr")
    m = json.loads((tmp_path / "runs/ecg_hr/metrics.json").read_text())
    assert m["subjects"] == 3 and m["heldout_subjects"] == []        # none held out: the noisy a3 is scored
    # doubtful windows are never scored: the windows counted are the finite-truth ones
    assert m["windows"] == sum(int(np.isfinite(r.labels["hr"].values).sum()) for r in recs.values())


def test_task_without_its_label_is_refused(tmp_path, capsys):
    write_csv_folder(tmp_path / "w" / "rec", subjects=("s01", "s02"), seconds=20.0)
    (tmp_path / "w" / "dataset.yaml").write_text(
        "format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg}\nlabels: {hr: {column: hr}}\n")
    assert main(["train", "finetune", "--task", "rr", "--model", "cnn1d_student_xs", "--data",
                 str(tmp_path / "w" / "dataset.yaml"), "--epochs", "1", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task 'rr' needs label 'rr'" in err and "dataset.yaml" in err


@pytest.mark.slow
def test_demo_on_a_dataset_file(watch_project, monkeypatch, capsys):
    """`sqtool demo --data my_watch/dataset.yaml` at its quickest settings: every step reads the dataset file
    (pairs, pretraining, fine-tuning, quantization, export) and the bench streams its recordings."""
    monkeypatch.chdir(watch_project)
    assert main(["demo", "--data", "my_watch/dataset.yaml", "--out", "demo", "--teacher", "spec_student_xs",
                 "--student", "spec_student_xs", "--folds", "2", "--batch-size", "2", "--pretrain-epochs", "1",
                 "--finetune-epochs", "1", "--student-epochs", "1", "--qat-epochs", "1", "--mcu", "false"]) == 0
    out = watch_project / "demo"
    printed = capsys.readouterr().out
    data = watch_project / "my_watch" / "dataset.yaml"                    # each step's paths are absolute (ed5cd31)
    assert f"--data {data}" in printed and "records     3  subjects    3" in printed      # s04 is not mined
    assert "demo: held out of every step (pairs, fine-tuning, quantization): my_watch:s04" in printed
    assert json.loads((out / "pairs" / "metrics.json").read_text())["exclude_subjects"] == ["my_watch:s04"]
    ft = json.loads((out / "finetune" / "metrics.json").read_text())
    assert ft["datasets"] == ["my_watch"] and ft["subjects"] == 3 and ft["heldout_subjects"] == ["my_watch:s04"]
    assert json.loads((out / "quantize" / "metrics.json").read_text())["heldout_subjects"] == ["my_watch:s04"]
    bench = json.loads((out / "bench" / "bench.json").read_text())
    assert bench["labelled"] and bench["provenance"]["records"] == 4
    assert bench["seen_in_training"] == ["my_watch:s01", "my_watch:s02", "my_watch:s03"]
    assert not (out / "refit_quantize").exists()                # the evaluated model is exported by default
    assert all(r["status"] in ("ok", "skipped") for r in bench["runtimes"])
    assert {r["runtime"] for r in bench["runtimes"] if r["status"] == "ok"} >= {"c_pipeline", "c_host_single"}


def test_the_finetune_says_each_datasets_mean_beside_the_headline(watch_project, tmp_path, monkeypatch, capsys):
    """Trained beside other subjects (here 3 synthetic ones; SP Cup's 12 in the README's advice), the headline mean of
    subjects is mostly theirs: one line per dataset, yours first, each its own mean of subjects' MAE
    (metrics.json per_dataset); the file's split holds your s04 out, never one of the others."""
    monkeypatch.chdir(watch_project)
    capsys.readouterr()
    run("train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "my_watch/dataset.yaml",
        "--datasets", "synthetic", "--max-records", "7", "--folds", "2", "--epochs", "1", "--final-fit", "false",
        "--progress", "false", "--out", str(tmp_path / "hr"))
    out = capsys.readouterr().out.splitlines()
    m = json.loads((tmp_path / "hr" / "metrics.json").read_text())
    assert m["heldout_subjects"] == ["my_watch:s04"] and m["subjects"] == 6
    per = m["per_dataset"]
    assert list(per) == ["my_watch", "synthetic"] and [v["subjects"] for v in per.values()] == [3, 3]
    for d, v in per.items():
        mine = [p["mae_bpm"] for p in m["per_subject"] if p["subject"].startswith(d + ":")]
        assert v["mae_bpm"] == pytest.approx(np.mean(mine)) and len(v["ci95"]) == 2
    head = next(i for i, ln in enumerate(out) if ln.startswith("hr (2 subject folds, 6 subjects"))
    assert [ln.split(":")[0] for ln in out[head + 1:head + 3]] == ["  my_watch (3 subjects)", "  synthetic (3 subjects)"]
    assert f"decoded MAE {per['my_watch']['mae_bpm']:.2f} BPM (mean of subjects, 95 % CI" in out[head + 1]


@pytest.mark.realdata
def test_builtins_keep_their_record_counts(data_root):
    from sqtool.data.dataset_file import resolve_data
    ref = resolve_data("troika", data_root)
    recs = ref.dataset.records()
    assert len(recs) == 12 and len({r.subject for r in recs}) == 12 and all("hr" in r.labels for r in recs)
    assert list(ref.dataset.report["excluded"]) == ["DATA_S04_T01"]


def test_the_nested_benchmark_runs_on_your_own_dataset(watch_project, tmp_path, monkeypatch, capsys):
    """benchmarks/hr_spectral.py --protocol wrist --target my_watch/dataset.yaml: the nested LOSO protocol (inner
    folds, decoder choice, int8 student, nested classic baseline) on a team's own recordings, one report named
    after the dataset; a target that is not a dataset is one line."""
    from bench_scripts import load_benchmark
    mod = load_benchmark("hr_spectral")
    monkeypatch.chdir(watch_project)
    out = tmp_path / "res"
    tiny = ["--student", "spec_student_xs", "--teacher", "spec_student_xs", "--epochs", "1", "--teacher-epochs", "1",
            "--qat-epochs", "1", "--inner-epochs", "1", "--pretrain", "none", "--out", str(out)]
    mod.main(["--protocol", "wrist", "--target", "my_watch/dataset.yaml", "--train-also", "", "--folds", "s04",
              "--data-root", str(tmp_path), *tiny])                                # no built-in needed
    res = json.loads((out / "hr_spectral_wrist_my_watch_only_partial.json").read_text())
    md = (out / "hr_spectral_wrist_my_watch_only_partial.md").read_text()
    assert "my_watch, LOSO over 1 subject (trained on the other my_watch subjects)" in md
    assert res["loso"]["n_subjects"] == 1 and "my_watch:s04" in json.dumps(res["loso"]["subjects"])
    assert "my_watch:s01" not in json.dumps(res["loso"]["subjects"])                # trained on, never scored
    assert "| my_watch:s04 |" in md and "classic baseline" in md
    capsys.readouterr()
    with pytest.raises(SystemExit):
        mod.main(["--protocol", "wrist", "--target", "my_watch/recordings", "--train-also", "", *tiny])
    assert "expected a built-in dataset or a dataset.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.main(["--protocol", "wrist", "--target", "my_watch/dataset.yaml", "--train-also", "",
                  "--parts", "loso,sp2wr", *tiny])
    assert "need --train-also troika" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.main(["--protocol", "wrist", "--target", "troika", *tiny])
    assert "also in --train-also troika" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.main(["--protocol", "wrist", "--data-root", str(tmp_path / "nowhere"), *tiny])
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.realdata
def test_your_dataset_trains_beside_sp_cup(watch_project, data_root, tmp_path, monkeypatch, capsys):
    """`train finetune --data my_watch/dataset.yaml --datasets troika`: SP Cup's subjects trained on beside yours
    (the README's advice for a few subjects of your own); quantize holds out the file's split and calibrates the
    interval on your training subjects (the held-out subjects' dataset); bad names are one line."""
    monkeypatch.setenv("SQTOOL_DATA", str(data_root))
    monkeypatch.chdir(watch_project)
    ds = "my_watch/dataset.yaml"
    tiny = ["--folds", "2", "--epochs", "1", "--progress", "false"]
    for bad, says in ((["--datasets", "nosuch"], "nosuch is not a built-in dataset"),
                      (["--datasets", "my_watch"], "my_watch is --data itself"),    # the folder in the cwd
                      (["--datasets", "troika,troika"], "names troika twice")):
        assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", ds, *bad, *tiny,
                     "--out", str(tmp_path / "bad")]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0]
    assert main(["train", "finetune", "--task", "hr", "--model", "cnn1d_student_xs", "--data", ds, "--datasets",
                 "troika", "--epochs", "1", "--out", str(tmp_path / "bad")]) != 0       # never silently ignored
    assert "--datasets is for the spectral heart-rate models" in capsys.readouterr().err
    run("train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", ds, "--datasets", "troika",
        *tiny, "--out", str(tmp_path / "hr"))
    assert "train beside SP Cup" not in capsys.readouterr().err          # it does
    m = json.loads((tmp_path / "hr" / "metrics.json").read_text())
    assert m["datasets"] == ["my_watch", "troika"] and m["subjects"] == 3 + 12 and m["heldout_subjects"] == [
        "my_watch:s04"]
    assert list(m["per_dataset"]) == ["my_watch", "troika"] and m["per_dataset"]["troika"]["subjects"] == 12
    assert any(e.startswith("troika/DATA_S04_T01") for e in m["excluded_records"])
    run("quantize", "--model", str(tmp_path / "hr"), "--student", "spec_student_xs", "--epochs", "1",
        "--qat-epochs", "1", "--inner-epochs", "1", "--no-progress", "--out", str(tmp_path / "q"))
    q = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert q["heldout_subjects"] == ["my_watch:s04"]                  # your file's split, never SP Cup's
    import yaml
    cfg = yaml.safe_load((tmp_path / "q" / "config.yaml").read_text())
    assert cfg["config"]["calibrate_on"] == ["my_watch"]              # resolved: your device's training subjects
    dec = json.loads((tmp_path / "q" / "decoder.json").read_text())
    assert dec["key"].endswith(":calibrate-on=my_watch:calibration-students=subjects")
    assert dec["decoder"]["inner_calibration_datasets"] == ["my_watch"]       # travels with the model's decoder
    run("export", "--model", str(tmp_path / "q"), "--target", "c", "--device-fs", "125", "--out", str(tmp_path / "e"))
    card = (tmp_path / "e" / "MODEL_CARD.md").read_text()
    assert "out-of-fold windows of the training subjects of my_watch to hold the truth" in card


def test_quantize_on_another_dataset_file_than_its_teachers_says_so(tmp_path, capsys):
    """A teacher fine-tuned on my_watch, quantized with --data naming another dataset file: "--datasets my_watch beside
    .../dataset.yaml: my_watch is not a built-in dataset", though no --datasets was given. Now one line saying what
    the teacher was fine-tuned on and what --data is, before any data is read."""
    for name in ("a", "b"):
        write_csv_folder(tmp_path / name / "recordings", seconds=40.0)
        (tmp_path / name / "dataset.yaml").write_text(readme_yaml().replace("name: my_watch", f"name: watch_{name}"))
    teacher = tmp_path / "ft"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data",
                 str(tmp_path / "a" / "dataset.yaml"), "--folds", "2", "--epochs", "1", "--progress", "false",
                 "--out", str(teacher)]) == 0
    capsys.readouterr()
    assert main(["quantize", "--model", str(teacher), "--data", str(tmp_path / "b" / "dataset.yaml"), "--epochs", "1",
                 "--qat-epochs", "1", "--no-progress", "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: teacher {teacher / 'model.pt'} was fine-tuned on watch_a, and --data "
                   f"{tmp_path / 'b' / 'dataset.yaml'} is watch_b: give the dataset file it was fine-tuned on, or "
                   "fine-tune a teacher on watch_b first"] and not (tmp_path / "q").exists()


def test_max_records_that_cut_the_files_test_subject_say_so(tmp_path, capsys):
    """`--max-records 2` kept recordings without the dataset file's split.test subject: "split.test names 's04',
    neither a subject nor a recording of the data", though s04 is in the data. The line says --max-records cut it."""
    write_csv_folder(tmp_path / "recordings", seconds=40.0)
    (tmp_path / "dataset.yaml").write_text(readme_yaml())
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data",
                 str(tmp_path / "dataset.yaml"), "--max-records", "2", "--folds", "2", "--epochs", "1",
                 "--progress", "false", "--out", str(tmp_path / "ft")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("split.test names 's04', neither a subject nor a recording of the data: "
                                             "among the 2 recordings --max-records 2 keeps (give more, or name the "
                                             "held-out subjects with --heldout-subjects)"), err
