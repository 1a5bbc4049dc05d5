"""`sqtool demo` end to end on the embedded synthetic default, with a small budget (includes the M4 QEMU run).

Run from a relative output directory, as `make demo` does (runs/demo/<stamp>): every runtime must be ok.
"""
import json

import numpy as np

from sqtool.cli import main


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["demo", "--out", "demo", "--subjects", "4", "--batch-size", "8", "--pretrain-epochs", "1",
               "--finetune-epochs", "1", "--student-epochs", "2", "--qat-epochs", "1", "--refit-all", "true"])
    assert rc == 0
    out = tmp_path / "demo"
    for step in ("pairs", "pretrain", "pretrain_student", "finetune", "quantize", "refit_finetune", "refit_quantize",
                 "export", "bench"):
        assert (out / step / "config.yaml").is_file(), step
    # the networks start from their pretrained encoders: the runs name them
    assert "demo/pretrain/model.pt" in (out / "finetune" / "config.yaml").read_text()
    assert "demo/pretrain_student/model.pt" in (out / "quantize" / "config.yaml").read_text()
    # --refit-all: the exported model is the final fit on every subject; the evaluation's figures are its estimate
    final = json.loads((out / "refit_quantize" / "metrics.json").read_text())
    evaluated = json.loads((out / "quantize" / "metrics.json").read_text())
    assert final["final_fit"] and final["estimate"]["metrics"]["mae_bpm"] == evaluated["mae_bpm"]
    assert evaluated["heldout_subjects"] and set(evaluated["heldout_subjects"]) < set(final["train_subjects"])
    assert "refit_quantize" in (out / "export" / "config.yaml").read_text()
    assert "## Held-out estimate (the same recipe" in (out / "export" / "MODEL_CARD.md").read_text()
    bench = json.loads((out / "bench" / "bench.json").read_text())
    status = {r["runtime"]: r["status"] for r in bench["runtimes"]}
    assert {"mcu_m4", "tflm_int8", "c_host", "onnx_int8", "litert_int8"} <= set(status)
    assert all(s == "ok" for s in status.values()), status
    printed = capsys.readouterr().out
    assert "mcu_m4" in printed and "baseline" in printed
    # the subjects the fine-tune held out were left out of the pretraining pairs too (found before any step ran;
    # they were mined into the pairs, disclosed)
    ft = json.loads((out / "finetune" / "metrics.json").read_text())
    held = ft["heldout_subjects"]
    assert ft["heldout_rule"] == "--heldout-subjects"                # given the pairs' list: derived once, up front
    assert held and json.loads((out / "pairs" / "metrics.json").read_text())["exclude_subjects"] == held
    mined = set(json.loads((out / "pairs" / "index.json").read_text())["subjects"])
    assert mined and not mined & {h.replace(":", "/") for h in held}
    from sqtool.demo import mined_heldout
    assert mined_heldout(out) == [] and "WARNING: held-out subject" not in printed
    idx = json.loads((out / "pairs" / "index.json").read_text())             # had they been mined: said
    (out / "pairs" / "index.json").write_text(json.dumps({**idx, "subjects": idx["subjects"] + [held[0].replace(":", "/")]}))
    assert mined_heldout(out) == [held[0]]
    assert (f"demo: held out of the evaluation (pairs, fine-tuning, quantization): {', '.join(held)}; the final fit "
            "(refit_finetune, refit_quantize: the exported model) trains on them too") in printed


def test_demo_trains_your_dataset_beside_the_built_ins_it_names(tmp_path, monkeypatch, capsys):
    """--datasets reaches the fine-tuning step (a dataset file's built-ins beside it); with the synthetic default
    it is one line, before any folder is made."""
    from pathlib import Path

    from sqtool.demo import DemoCfg, steps
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "dataset.yaml").write_text("format: csv\nroot: .\nfs: 125\nchannels: {ppg: ppg}\n"
                                                 "labels: {hr: {column: hr}}\n")
    todo = dict(steps(DemoCfg(data_root="w/dataset.yaml", datasets=["troika"]), Path("d")))
    ft = todo["fine-tune the teacher on heart rate"]
    assert ft[ft.index("--data") + 1] == "w/dataset.yaml" and ft[ft.index("--datasets") + 1] == "troika"
    assert "--datasets" not in todo["distil + quantization-aware training"]       # quantize reads the teacher's
    assert main(["demo", "--datasets", "troika", "--out", "demo"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--datasets names real datasets" in err[0] and not (tmp_path / "demo").exists()


def test_demo_pretrains_a_small_datasets_few_pairs_in_one_batch(tmp_path, capsys):
    from sqtool.demo import _fit_batch
    argv = ["train", "pretrain", "--batch-size", "64", "--seed", "0"]
    m = tmp_path / "metrics.json"
    assert _fit_batch(argv, m) == argv                                         # no pairs step ran: as given
    for n, want in ((52, "52"), (64, "64"), (500, "64"), (1, "64")):
        m.write_text(json.dumps({"pairs": n}))
        assert _fit_batch(argv, m)[3] == want and _fit_batch(argv, m)[4:] == ["--seed", "0"]
    assert "52 pairs were mined" in capsys.readouterr().out


def test_bench_data_says_what_data_would_change_and_what_to_use(tmp_path, capsys):
    """`demo --bench-data PATH` still sets the bench step's recordings only, so its one deprecation line does not
    say 'use --data instead' (--data changes every step's data): it says what --data changes and names the
    command that streams other recordings. Old configs keep working (the value lands in bench_data)."""
    from pathlib import Path

    from sqtool.cli import build_parser
    from sqtool.core import resolve_config
    from sqtool.demo import DemoCfg, steps
    args = build_parser().parse_args(["demo", "--bench-data", "recs"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bench-data sets the bench step's recordings only; --data sets every step's data" \
        in err[0] and "`sqtool bench --model DEMO_DIR/export --data PATH` after the demo" in err[0], err
    assert "use --data instead" not in err[0]
    todo = dict(steps(resolve_config(DemoCfg, args), Path(tmp_path)))
    bench = todo["stream + benchmark every runtime"]
    assert bench[bench.index("--data") + 1] == "recs"
    assert all(a[a.index("--data") + 1] == "synthetic" for w, a in todo.items() if "--data" in a and a is not bench)


def test_the_demo_builds_the_firmware_for_your_datasets_rate(tmp_path):
    """The export step's --device-fs is the rate of a dataset file of your own (its fs, or the time column of
    its first recording), so that the bench can stream that data into the pipeline; 125 Hz otherwise."""
    from sqtool.data.dataset_tasks import dataset_of
    from sqtool.demo import DEMO_DEVICE_FS, DemoCfg, device_rate, steps
    rec = tmp_path / "rec"
    rec.mkdir()
    t = np.arange(0, 30, 1 / 50.0)                                                      # 50 Hz, 30 s
    np.savetxt(rec / "p01_walk.csv", np.column_stack([t, np.sin(2 * np.pi * 1.2 * t)]), delimiter=",",
               header="time,ppg", comments="", fmt="%.5f")
    timed = tmp_path / "timed.yaml"
    timed.write_text("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time\nchannels:\n  ppg: ppg\n"
                     "subject:\n  pattern: '^(?P<subject>p\\d+)_'\n")
    declared = tmp_path / "declared.yaml"
    declared.write_text("format: csv\nroot: rec\nfiles: '*.csv'\nfs: 64\nchannels:\n  ppg: ppg\n")
    assert device_rate(dataset_of(str(timed))) == 50.0
    assert device_rate(dataset_of(str(declared))) == 64.0
    assert device_rate(dataset_of("synthetic")) == DEMO_DEVICE_FS == 125.0
    todo = dict(steps(DemoCfg(data_root=str(timed)), tmp_path / "d"))
    export = next(v for k, v in todo.items() if k.startswith("export"))
    assert export[export.index("--device-fs") + 1] == "50"


def test_the_demo_builds_the_kits_accelerometer_resampler_when_quantize_names_its_rate(tmp_path, monkeypatch):
    """Your PPG at 64 Hz, its accelerometer at 32 Hz: quantize's next line says `export ... --device-fs 64
    --device-acc-fs 32`, but the demo's export step ran `--device-fs 64` alone: a kit that takes the accelerometer at
    64 Hz, without the resampler the device needs. Each step here only records its command; quantize writes the
    metrics its next line is built from."""
    import json
    from pathlib import Path

    import sqtool.cli
    from sqtool.cli import main
    ran = []

    def step(argv):
        ran.append(argv)
        if argv[0] == "quantize":
            out = Path(argv[argv.index("--out") + 1])
            out.mkdir(parents=True)
            (out / "metrics.json").write_text(json.dumps({"recorded_rates": {"ppg": 64.0, "acc": 32.0},
                                                          "device_fs": 125.0}))
        return 0
    (tmp_path / "watch").mkdir()
    (tmp_path / "watch" / "dataset.yaml").write_text("format: csv\nroot: .\nfs: 64\nchannels: {ppg: ppg, acc_x: "
                                                     "{column: ax, fs: 32}, acc_y: {column: ay, fs: 32}, acc_z: "
                                                     "{column: az, fs: 32}}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sqtool.cli, "main", step)
    assert main(["demo", "--data", "watch/dataset.yaml", "--no-pretrain", "--no-mcu", "--out", "d"]) == 0
    export = next(a for a in ran if a[0] == "export")
    assert export[export.index("--device-fs") + 1] == "64" and export[export.index("--device-acc-fs") + 1] == "32"
