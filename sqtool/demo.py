"""`sqtool demo`: the whole pipeline on the embedded synthetic default, end to end.

    data pairs (real (good, poor) pairs of front-end spectra, same recording)
    -> train pretrain x2 (SiamQuality: SimSiam on those pairs, the teacher's and the student's encoders)
    -> train finetune --init (hr: spectral teacher over heart-rate bins + HMM decoder, subject folds)
    -> quantize --student-init (distil on the bins + Brevitas QAT; held-out figures)
    -> with --refit-all: train finetune + quantize again on every subject, the held-out figures above its
       estimate (`--heldout-fraction 0 --estimate-from`); by default the evaluated model is exported
    -> export (onnx, tflite, c: model + streaming pipeline) -> bench (host runtimes + Cortex-M4 under QEMU)

The heart-rate chain is the spectral one (`models.spectral`): the fixed-point firmware front end feeds
a network over heart-rate bins and the decoder tracks the posterior. Both networks start from their
SiamQuality-pretrained encoders (`--pretrain false`: from scratch); pairs are mined over the recordings without
labels, so the teacher's out-of-fold figures are transductive in that one respect (the repository's heart-rate
benchmark pretrains per outer fold without the held-out subject).
The fine-tune holds out the subjects `quantize` evaluates on (`data.heldout`: a dataset file's split, else the last
0.2 of the sorted subjects; with --data ../shared/data wrist_exercise s4-s6): neither network is fine-tuned on
them, and the pairs step leaves them out too (`heldout_before_pairs`: the rule, applied once before any step runs; the
pairs step and the fine-tune are given its subjects, `--exclude-subjects` / `--heldout-subjects`, and quantize takes
the teacher's), so no step of the evaluation sees their PPG; the model card says so from the pairs' own record.
With --refit-all a final fit then fine-tunes and distils the same recipe on every subject, them included (from the
same pretrained encoders): the exported model, whose card quotes the evaluation as its held-out estimate.

Each step is the same command a user would type (printed before it runs), each writes its own run
directory under `runs/demo/<timestamp>/`, and `runs/demo/latest` points at the newest complete demo,
so `sqtool bench --model runs/demo/latest/export --data PATH` benchmarks its artifacts on real data.
With `--out DIR` the link updated is DIR/../latest, and only where it already is one (a folder of demos) or
DIR is under runs/demo; otherwise no link is touched, and the last line names none.
`--data DIR` (a data root such as ../shared/data) runs the same steps on real data (pairs from every
dataset under DIR, HR on TROIKA and wrist_exercise).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import ClassVar
from pathlib import Path

from sqtool.core import SqtoolError, add_config_args, lock_run_dir, resolve_config, save_config, write_metrics
from sqtool.core.config import DeprecatedAlias
from sqtool.core.runs import FORCE_HELP, check_out_dir, note_run, shell_command, unfinish

DEMO_ROOT = Path("runs") / "demo"        # default demo folders: DEMO_ROOT/<timestamp>, DEMO_ROOT/latest the newest


@dataclass
class DemoCfg:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"batch_size": {"min": 1}, "pretrain_epochs": {"min": 1}, "finetune_epochs": {"min": 1},
        "student_epochs": {"min": 1}, "qat_epochs": {"min": 0}, "seed": {"min": 0}}
    data_root: str = field(default="synthetic", metadata={"help": "'synthetic' (embedded default), a dataset.yaml or "
                                                                  "built-in name (every step reads it), or a data root "
                                                                  "folder (the bench step then streams DATA/troika)",
                                                          "flag": "--data", "aliases": ("--data-root",),
                                                          "metavar": "DATA", "path": True})
    bench_data: str | None = field(default=None, metadata={    # old --bench-data (BenchDataAlias) or a --config key
        "help": "recordings streamed by the bench step (default: synthetic wrist recordings, "
                "or DATA_ROOT/troika with a real data root)", "cli": False})
    pretrain: bool = field(default=True, metadata={
        "help": "SiamQuality-pretrain the teacher's and the student's encoders on real (good, poor) spectral pairs "
                "and fine-tune / distil from them (false: both from scratch)"})
    datasets: list[str] = field(default_factory=list, metadata={
        "help": "with --data DATASET.yaml: datasets the heart-rate models train on beside yours, built-in ones, e.g. "
                "troika (read under $SQTOOL_DATA, else ../shared/data), or other dataset files of your own, e.g. "
                "watch_v1/dataset.yaml; with a data root: its datasets to train on"})
    teacher: str = field(default="spec_teacher_m", metadata={"help": "heart-rate teacher from the registry"})
    student: str = field(default="spec_student_s", metadata={"help": "heart-rate student from the registry"})
    folds: int = field(default=4, metadata={"help": "subject folds of the teacher's fine-tuning"})
    subjects: int = field(default=8, metadata={"help": "synthetic subjects"})
    batch_size: int = field(default=64, metadata={"help": "pretraining batch size"})
    pretrain_epochs: int = field(default=10, metadata={"help": "SimSiam epochs"})
    finetune_epochs: int = field(default=30, metadata={"help": "teacher fine-tuning epochs"})
    student_epochs: int = field(default=60, metadata={"help": "float student epochs"})
    qat_epochs: int = field(default=6, metadata={"help": "QAT epochs"})
    refit_all: bool = field(default=False, metadata={
        "help": "after the held-out evaluation, fine-tune and quantize the same recipe again on every subject and "
                "export that model (its model card quotes the evaluation as its held-out estimate); default: "
                "export the evaluated model, trained without the held-out subjects"})
    mcu: bool = field(default=True, metadata={"help": "include the Cortex-M4 QEMU firmware in the bench"})
    out: str | None = field(default=None, metadata={"help": "demo directory (default: runs/demo/<timestamp>)",
                                                    "metavar": "DIR"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    force: bool = field(default=False, metadata={"help": FORCE_HELP})   # and each step gets --force for its own folder


class BenchDataAlias(DeprecatedAlias):
    """`--bench-data PATH`: still sets the bench step's recordings only. `--data` is no drop-in for it (it changes
    every step's data), so its one line says what --data changes and how to stream other recordings."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"sqtool: deprecated: {option_string} sets the bench step's recordings only; --data sets every step's "
              "data (the bench step then streams it, or DATA/troika for a data root folder); to stream other "
              "recordings, run `sqtool bench --model DEMO_DIR/export --data PATH` after the demo", file=sys.stderr)
        setattr(namespace, self.dest, values)


def register(sub, name: str, helptext: str) -> None:
    p = sub.add_parser(name, help=helptext, description=__doc__)
    add_config_args(p, DemoCfg)
    p.add_argument("--bench-data", dest="bench_data", action=BenchDataAlias, new="--data", metavar="PATH",
                   default=argparse.SUPPRESS)
    p.set_defaults(func=run)


def heldout_before_pairs(cfg: DemoCfg) -> list[str]:
    """The subjects the fine-tune will hold out (`data.heldout.heldout_keys` on the heart-rate recordings' subject
    keys: a dataset file's split, else the last 0.2 of the sorted subjects), found before the first step so that
    the pairs step leaves them out of pretraining too. [] when the recordings cannot be listed here (the step that
    reads them then says why, and the fine-tune applies the rule itself); the model card reads what the pairs held."""
    from sqtool.core import resolve_data_root
    from sqtool.data.dataset_file import load_builtin
    from sqtool.data.dataset_tasks import beside_entries, dataset_of
    from sqtool.data.heldout import file_split, heldout_keys
    from sqtool.data.hr_spectra import SYNTHETIC_HR_SUBJECTS, default_datasets
    from sqtool.data.record import subject_key
    from sqtool.data.synthetic import synth_corpus_specs

    def keys_of(d, root) -> list[str]:                # one key per subject, in record order (d: a name or a file)
        if d == "synthetic":
            return [subject_key("synthetic", s["subject"]) for s in synth_corpus_specs(SYNTHETIC_HR_SUBJECTS)]
        f = load_builtin(d, root) if isinstance(d, str) else d
        return list(dict.fromkeys(subject_key(r.dataset, r.subject) for r in f.records()))
    try:
        if cfg.data_root == "synthetic":                  # the fine-tune's first --subjects of its synthetic corpus
            keys = keys_of("synthetic", None)[:cfg.subjects]
            return heldout_keys(keys)[0]
        ds = dataset_of(cfg.data_root)
        if ds is None:
            root = Path(cfg.data_root)
            return heldout_keys([k for n in (cfg.datasets or default_datasets(root))
                                 for k in keys_of(n, root)])[0]
        recs = ds.records()
        beside = [k for d in beside_entries(ds, cfg.datasets) for k in keys_of(d, resolve_data_root(None))]
        return heldout_keys(sorted({subject_key(r.dataset, r.subject) for r in recs} | set(beside)),
                            split=file_split(ds, recs), dataset=ds.name)[0]
    except SqtoolError:
        return []


def mined_heldout(d: Path) -> list[str]:
    """The fine-tune's held-out subjects (d/finetune/metrics.json) whose recordings the pairs step mined
    (d/pairs/index.json subjects "dataset/subject"); [] when none, or when either step did not run."""
    import json
    try:
        held = json.loads((d / "finetune" / "metrics.json").read_text())["heldout_subjects"]
        mined = set(json.loads((d / "pairs" / "index.json").read_text())["subjects"])
    except (OSError, ValueError, KeyError):
        return []
    return [h for h in held if h.replace(":", "/", 1) in mined]


def check_models(cfg: DemoCfg) -> None:
    """--teacher / --student: heart-rate models over the spectral front end from the registry, refused in one
    line before the first step (the pairs, pretraining and fine-tune steps would otherwise run first)."""
    from sqtool.compress.distill import fitting_students
    from sqtool.models import get_model_cfg
    from sqtool.models.spectral import SPECTRAL_FAMILY
    for flag, name in (("--teacher", cfg.teacher), ("--student", cfg.student)):
        try:
            mc = get_model_cfg(name)
        except SqtoolError as e:                            # an unknown name: the known ones listed
            raise SqtoolError(f"demo {flag}: {e}") from None
        if mc.family != SPECTRAL_FAMILY or mc.task != "hr":
            raise SqtoolError(f"demo {flag} {name}: the demo builds the spectral heart-rate monitor, give a spec_* "
                              f"model (e.g. spec_teacher_m, spec_student_s); run the steps one by one for another "
                              f"model (README 'The pipeline, command by command')")
    fits = fitting_students(get_model_cfg(cfg.teacher))     # what quantize takes: refused here, not after 3 steps
    if cfg.student not in fits:
        raise SqtoolError(f"demo --student {cfg.student} does not read the inputs of --teacher {cfg.teacher} (its "
                          f"channels, rate, window or heart-rate bins): give {' or '.join(fits) or 'another teacher'}")


def steps(cfg: DemoCfg, d: Path, exclude=()) -> list[tuple[str, list[str]]]:
    from sqtool.data.dataset_tasks import dataset_of
    check_models(cfg)
    synthetic = cfg.data_root == "synthetic"
    if synthetic and cfg.datasets:
        raise SqtoolError("--datasets names real datasets to train on: give --data a dataset file or a data root")
    if synthetic and cfg.subjects < 3:      # 1 held out (0.2 x n, at least 1); subject folds need 2 more
        raise SqtoolError(f"--subjects {cfg.subjects}: the synthetic demo needs 3 or more (one is held out of "
                          "fine-tuning and quantize, and the teacher's subject folds need 2 others)")
    ds = None if synthetic else dataset_of(cfg.data_root)             # a dataset.yaml or a built-in name
    own = ds is not None
    bench_data = cfg.bench_data or ("synthetic" if synthetic else cfg.data_root if own
                                    else str(Path(cfg.data_root) / "troika"))
    pairs = ["data", "pairs", "--model", cfg.teacher, "--out", str(d / "pairs"), "--seed", str(cfg.seed),
             "--no-progress"]
    pairs += (["--data", "synthetic", "--synthetic-subjects", str(cfg.subjects),
               "--synthetic-duration-s", "600"] if synthetic else ["--data", cfg.data_root, "--on-error", "skip"])
    pairs += ["--exclude-subjects", ",".join(exclude)] if exclude else []
    runtimes = "torch,onnx,litert,tflm,c,pipeline" + (",mcu" if cfg.mcu else "")

    def pretrain(model, out):
        return ["train", "pretrain", "--model", model, "--pairs", str(d / "pairs"), "--epochs", str(cfg.pretrain_epochs),
                "--batch-size", str(cfg.batch_size), "--lr", "0.05", "--val-fraction", "0", "--seed", str(cfg.seed),
                "--progress", "false", "--out", str(d / out)]
    pre = [("mine real (good, poor) pairs of spectra", pairs),
           ("SimSiam pretraining of the teacher's encoder", pretrain(cfg.teacher, "pretrain")),
           ("SimSiam pretraining of the student's encoder", pretrain(cfg.student, "pretrain_student"))]
    def finetune(out, held):
        return (["train", "finetune", "--task", "hr", "--model", cfg.teacher, "--data", cfg.data_root,
                 "--folds", str(cfg.folds), "--epochs", str(cfg.finetune_epochs), "--seed", str(cfg.seed),
                 "--progress", "false", "--out", str(d / out)]
                + held
                + (["--max-records", str(cfg.subjects)] if synthetic else [])
                + (["--datasets", ",".join(cfg.datasets)] if cfg.datasets else [])
                + (["--init", str(d / "pretrain" / "model.pt")] if cfg.pretrain else []))

    def quantize(teacher, out, also=()):
        return (["quantize", "--model", str(d / teacher), "--student", cfg.student, "--data", cfg.data_root,
                 "--epochs", str(cfg.student_epochs), "--qat-epochs", str(cfg.qat_epochs), "--seed", str(cfg.seed),
                 "--no-progress", "--out", str(d / out), *also]
                + (["--student-init", str(d / "pretrain_student" / "model.pt")] if cfg.pretrain else []))
    final = [("final fit: fine-tune the teacher again on every subject",
              finetune("refit_finetune", ["--heldout-fraction", "0"])),
             ("final fit: distil + QAT on every subject (the held-out figures above are its estimate)",
              quantize("refit_finetune", "refit_quantize",
                       ["--heldout-fraction", "0", "--estimate-from", str(d / "quantize")]))]
    return [
        *(pre if cfg.pretrain else []),
        ("fine-tune the teacher on heart rate",
         finetune("finetune", ["--heldout-subjects", ",".join(exclude)] if exclude else [])),
        ("distil + quantization-aware training", quantize("finetune", "quantize")),
        *(final if cfg.refit_all else []),
        ("export ONNX, TFLite and C (each checked)", [
            "export", "--model", str(d / ("refit_quantize" if cfg.refit_all else "quantize")), "--target",
            "onnx,tflite,c", "--device-fs", f"{device_rate(ds):g}", "--out", str(d / "export")]),
        ("stream + benchmark every runtime", [
            "bench", "--model", str(d / "export"), "--data", bench_data, "--runtime", runtimes,
            "--out", str(d / "bench")]),
    ]


DEMO_DEVICE_FS = 125.0      # the synthetic default's and the shipped wrist datasets' rate (TROIKA: 125 Hz)


def device_rate(ds) -> float:
    """The rate the demo's firmware is built for: the PPG's of `ds`, a dataset file of your own (its `fs`, the ppg
    channel's own, else its first recording's: the bench streams that data into the pipeline), else (no dataset
    file, or a built-in layout) DEMO_DEVICE_FS."""
    if ds is None or ds.builtin:
        return DEMO_DEVICE_FS
    ppg = ds.channels.get("ppg")
    fs = (ppg.fs if ppg is not None else None) or ds.fs
    if not fs:
        recs = ds.records(max_records=1)
        fs = recs[0].fs.get("ppg") if recs else None
    return float(fs) if fs else DEMO_DEVICE_FS


def _fit_batch(argv: list[str], pairs_metrics: Path) -> list[str]:
    """A pretraining step's command with its batch lowered to the number of mined pairs when fewer were mined (a
    small dataset of your own), said in one line; unchanged otherwise."""
    import json
    try:
        n = int(json.loads(pairs_metrics.read_text())["pairs"])
    except (OSError, ValueError, KeyError):
        return argv
    k = argv.index("--batch-size") + 1
    if 2 <= n < int(argv[k]):
        print(f"demo: {n} pairs were mined, fewer than a batch of {argv[k]}: pretraining with batches of {n}")
        argv = argv[:k] + [str(n)] + argv[k + 1:]
    return argv


def _acc_rate(argv: list[str], quantize_metrics: Path) -> list[str]:
    """The export step's command with the quantize run's --device-acc-fs added where its `next:` line names one
    (`core.model_cfg.device_rate_args`: your recordings' accelerometer runs slower than their PPG, a 32 Hz one beside a
    64 Hz PPG), so that the kit holds its accelerometer resampler and the bench streams your files through it;
    unchanged otherwise. It was built for an accelerometer at the PPG's rate, the note of quantize's line lost."""
    import json

    from sqtool.core.model_cfg import device_rate_args
    try:
        args = device_rate_args(json.loads(quantize_metrics.read_text()))
    except (OSError, ValueError):
        return argv
    if "--device-acc-fs" not in args or "--device-acc-fs" in argv:
        return argv
    k = args.index("--device-acc-fs")
    return argv + args[k:k + 2]


def update_latest(d: Path) -> Path | None:
    """Point the `latest` link beside the demo folder `d` at it; returns the link, or None when no link was this
    run's to update: a run under runs/demo (the default folder, runs/demo/<stamp>, or an --out there) updates
    runs/demo/latest; any other `--out DIR` updates DIR/../latest only where that already is a link (a folder of
    demos). A `latest` that is no link (a folder or file so named), or `d` itself, is never replaced."""
    latest = d.parent / "latest"
    ours = latest.is_symlink() or d.parent.resolve() == DEMO_ROOT.resolve()
    if not ours or d.name == "latest" or (latest.exists() and not latest.is_symlink()):
        return None
    tmp = d.parent / ".latest.tmp"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(d.resolve())
        os.replace(tmp, latest)                           # the old link stays until the new one takes its place
    except OSError:                                       # a file system without links: the demo is still done
        return None
    return latest


def run(args) -> int:
    from sqtool.cli import main as sqtool_main

    from sqtool.data.dataset_tasks import beside_paths
    cfg = resolve_config(DemoCfg, args)
    cfg = replace(cfg, datasets=beside_paths(cfg.datasets))   # your own dataset files: absolute
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    d = Path(cfg.out) if cfg.out else DEMO_ROOT / stamp
    check_out_dir("demo", d, cfg.force)                   # non-empty without --force, another command's run: refused
    held = heldout_before_pairs(cfg) if cfg.pretrain else []
    todo = steps(cfg, Path(os.path.abspath(d)), held)     # (refused before any folder: a bad combination) absolute
                                                          # paths, links kept: a step's config.yaml works from anywhere
    if held and cfg.refit_all:
        print(f"demo: held out of the evaluation (pairs, fine-tuning, quantization): {', '.join(held)}; the final fit "
              "(refit_finetune, refit_quantize: the exported model) trains on them too")
    elif held:
        print(f"demo: held out of every step (pairs, fine-tuning, quantization): {', '.join(held)}")
    elif cfg.pretrain:
        print("demo: note: the subjects the fine-tune holds out could not be listed before the pairs step: the pairs "
              "are mined over every subject (the model card says which held-out subjects they hold)")
    d.mkdir(parents=True, exist_ok=True)
    lock_run_dir(d)
    unfinish(d, "demo")                                   # a --force'd earlier demo's metrics.json: not done until this is
    note_run(d, "demo")                                   # config.yaml names the command (command: demo)
    save_config(d, cfg)
    timings = {}
    t_all = time.time()
    for i, (what, argv) in enumerate(todo, 1):
        argv = argv + ["--force"] if cfg.force else argv
        if argv[:2] == ["train", "pretrain"]:
            argv = _fit_batch(argv, d / "pairs" / "metrics.json")
        if argv[0] == "export":                           # the model it exports: quantize's (or the refit's)
            argv = _acc_rate(argv, Path(argv[argv.index("--model") + 1]) / "metrics.json")
        print(f"\n=== [{i}/{len(todo)}] {what}\n$ {shell_command(*argv)}", flush=True)
        t0 = time.time()
        rc = sqtool_main(argv)
        timings[what] = round(time.time() - t0, 1)
        if rc != 0:
            write_metrics(d, {"failed_step": what, "exit_code": rc, "seconds": timings})
            if rc in (130, 143):                          # Ctrl-C / SIGTERM: the step said what it kept
                again = shell_command("demo", "--config", d / "config.yaml", "--out", d, "--force")
                raise SqtoolError(f"demo interrupted at step {i} ({what}), exit {rc}; what it made is in {d}; the "
                                  f"demo has no --resume: run it again (every step) with: {again}", code=rc)
            hint = ("; the demo does not mine synthetic partners: without real (good, poor) pairs in your data, "
                    "run it with --no-pretrain" if argv[:2] == ["data", "pairs"] else "")
            raise SqtoolError(f"demo step {i} ({what}) failed with exit code {rc}; its output is in {d}{hint}",
                              code=rc)
    if mined := mined_heldout(d):
        print(f"WARNING: held-out subject(s) {', '.join(mined)} of the fine-tune were mined into the pretraining pairs "
              "(their unlabelled PPG; the model card says so)")
    write_metrics(d, {"seconds": timings, "total_s": round(time.time() - t_all, 1)})
    latest = update_latest(d)
    report = d / "bench" / "bench.md"
    print(f"\n=== demo done in {time.time() - t_all:.0f} s: {d}" + (f" (latest: {latest})" if latest else ""))
    if report.is_file():
        print(f"report: {report}")
    if cfg.data_root == "synthetic":      # the embedded default: a model of generated PPG, not of a wrist
        print("note: this model was trained on synthetic PPG only; for heart rates of real recordings run "
              "`sqtool demo --data ../shared/data` (or your dataset file) first")
    print(f"next: {shell_command('predict', '--model', d / 'export', '--data', 'RECORDING')}   (heart rate of your "
          f"own recordings; firmware kit: {d / 'export' / 'c'})")
    return 0


if __name__ == "__main__":
    sys.exit(os.EX_USAGE)
