"""`sqtool bench`: stream real PPG through every runtime and the emulated MCU firmware.

    sqtool bench --model runs/export/<run> --data ../shared/data/troika/Training_data
    sqtool bench --model runs/demo/latest/export --data PATH --runtime tflm_int8,c_host,mcu_m4 --floor mae=8
    sqtool bench --compare runs/bench/v1,runs/bench/v2        # two runs side by side, paired by subject (compare.py)

For every recording under --data: replay it as a device stream (stream.py: device-rate chunks, a
streaming resampler to the model rate, a window every hop aligned with the truth windows, the
model's normalisation); run the same windows through each runtime (runtimes.py); decode the heart
rate, track it causally (tracker.py, optionally gated by the model's quality output) and score it
against the ECG truth; run the classic spectral baseline (baseline.py) on the same windows; check the
firmware's int8 outputs bit for bit (double rounding vs TFLite Micro, single rounding vs Brevitas);
measure instructions per inference (QEMU plugin / callgrind), flash, RAM and stack. Writes
bench.json, bench.md, windows.csv (one row per window) and plots into the run dir and prints the tables; where the
recordings carry an activity condition (`data.record.window_conditions`: wrist_exercise's file stems, a dataset.yaml's
`conditions:`), accuracy by condition too (MAE, MAPE, bias, limits of agreement; bench.json per_condition).

A time-domain model of another task (`report.Target`, `bench_target`): an rr, bp or custom-label model's first output
is scored, window by window without a tracker, against the label its recordings carry (as predict compares it), beside
the task's classic method on the same windows (`data.classic`: rr's respiratory spectral fusion; bp and a custom label
have none) and the trivial predictor (the training labels' mean, metadata target_mean); the last line is the skill
verdict of the primary runtime on the subjects the model was not trained on (`core.metrics.skill_test`, paired over
subjects, NO SKILL flagged). An af or quality model's logit is scored against the recordings' class label, as its
training reads it (`data.dataset_tasks.class_truth`: 1 = AF / good): AUROC, weighted F1 and accuracy at p 0.5 per
runtime, AUROC by subject (the subjects whose windows hold both classes), beside the classic method (af: the
beat-interval irregularity rule, its threshold fitted on the other subjects; quality: the signal quality index) and a
constant score (AUROC 0.5), with roc.png and the AUROC skill verdict last (`--floor auroc=0.85` gates on it).

An export built with `--device-fs HZ` holds its preprocessing in C (c/sq_window.c): runtime `c_window` streams each
recording's device samples through it into the C network on the host, `mcu_m4_window` runs that whole loop on the
emulated Cortex-M4 (instructions per window for the front end and the network, flash, RAM); both are compared with
the stream's int8 inputs (the "C front end" line) and skipped by default for recordings at another rate.

A recording the bench cannot score is left out with one `bench: left out <recording>: <why>` line (bench.json
provenance.skipped_records, bench.md's notes) and the rest benchmarked: shorter than one window, without the model's
channels, or a file of a --data folder the readers refuse (off the wrist throughout, `core.NoSignal`: PPG a flat
line, a channel with no finite sample; no time column and no rate; a damaged file), as predict leaves it out: it has
no window the network scores, so no accuracy or cost to add. None left is one error line; one file given alone is
read or refused as it is.

Recordings without heart-rate truth (labels['hr']) are benchmarked too: accuracy is then "not measured"
(said in the tables, bench.md, bench.json `labelled: false` / `accuracy`, and the command's last line), and
the report keeps every runtime's cost (latency, instructions, flash, RAM) and fidelity: each runtime's
decoded heart rate against its reference runtime's (mean / max |difference| in BPM, % of windows with the
same heart rate) and its int8 outputs' exact windows %. With truth, fidelity is reported as well.

--model is an export folder: its manifest.json (core.manifest) is the only place artifacts and source
checkpoints are looked up, by paths relative to it, each checked against its sha256; an export without
one, or whose parity failed (unless --allow-failed-parity), is refused. A runtime asked for by name or
group that cannot run is an error (after the report is written); `all` and the default skip what the
export does not allow.

`--floor metric=value[,...]` (metric: mae, mape (% of the reference), mae_tracked, gt10 (%), auroc (a class), exact
(%), insns, flash_kb, ram_kb; prefix `runtime:` to restrict to one runtime) makes the command exit with status 3 when
a metric misses its floor, or when no runtime that ran measured it (accuracy on unlabelled data, `exact` without its
reference runtime): a CI gate fails closed. An accuracy floor (mae, mape, mae_tracked, gt10, auroc) is checked on the
scored subjects the model was not trained on (bench.json `seen_in_training` names the others; the floor line says
"held-out N of M subjects"), and counts as not measured when every scored subject was seen in training, unless
`--floor-on-seen` lets it gate on them.
"""
from __future__ import annotations

import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from collections.abc import Sequence
from typing import ClassVar
from pathlib import Path

import numpy as np

from sqtool.core import (SqtoolError, add_config_args, make_run_dir, resolve_config, save_config, stream_filter,
                         write_metrics)
from sqtool.core.io import ScratchDir
from sqtool.core.manifest import TamperedArtifact
from sqtool.core.progress import bar, item
from sqtool.core.runs import FORCE_HELP, check_required, releases_run_dirs, shell_command
from sqtool.core.say import also_on_stderr
from sqtool.firmware_bench.spectral import ACC_FS_HELP, RECORDINGS_HELP
from sqtool.firmware_bench.report import (HEART_RATE, SAME_HR_BPM, Target, left_out_lines, long_enough,
                                          primary_runtime)
from sqtool.data.hr_tracker import MAX_FLAGGED, QUALITY_OUTPUT, tracker_ok


@dataclass
class BenchConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"chunk": {"min": 1}, "max_records": {"min": 0}, "max_seconds": {"min": 0},
        "mcu_windows": {"min": 0}, "callgrind_windows": {"min": 0}, "acc_fs": {"above": 0}}
    model: str = field(default="", metadata={"help": "what to benchmark: a `sqtool export` folder (its manifest.json "
                                                     "lists the artifacts)", "required": True, "metavar": "EXPORT", "path": True})
    data: str = field(default="", metadata={"help": "recordings: a dataset dir or file (e.g. troika/Training_data), "
                                                    "or 'synthetic' (embedded wrist PPG with known HR)",
                                            "required": True, "path": True})
    runtime: list[str] = field(default_factory=list, metadata={"help": "comma-separated runtimes or groups (torch, "
                                                                       "brevitas, onnx, litert, tflm, c, mcu, all); default: "
                                                                       "all that the artifacts allow"})
    floor: list[str] = field(default_factory=list, metadata={"help": "metric=value floors, e.g. mae=8,exact=100; "
                                                                     "exit code 3 when one is missed or "
                                                                     "not measured (default: none)"})
    floor_on_seen: bool = field(default=False, metadata={
        "help": "let accuracy floors (mae, mape, mae_tracked, gt10) count subjects the model was trained on; without "
                "it they are checked on held-out subjects only, and not measured (exit 3) when none was scored"})
    compare: list[str] = field(default_factory=list, metadata={
        "help": "instead of a bench: two bench runs (folders or bench.json) of the same recordings: per-subject MAE "
                "of A and B, B - A with its 95 % t-interval and sign-flip p over the subjects (compare.md, "
                "compare.json; --runtime: the one runtime compared, else A's primary)", "metavar": "A,B", "path": True})
    teacher: str = field(default="", metadata={"help": "teacher checkpoint / run dir (default: found via the "
                                                       "export's provenance)", "path": True})
    student_float: str = field(default="", metadata={"help": "float student checkpoint (default: found via the "
                                                             "export's provenance)", "path": True})
    student_int8: str = field(default="", metadata={"help": "QAT student checkpoint (default: found via the export's "
                                                            "provenance)", "path": True})
    output: str = field(default="", metadata={
        "help": "a time-domain model with several outputs (bp: sbp, dbp): the one scored (default: the first whose "
                "label the recordings carry)"})
    chunk: int = field(default=25, metadata={"help": "device samples per stream chunk (25 = 0.2 s at 125 Hz)"})
    filter: str = field(default="", metadata={
        "help": "a time-domain model's stream band-pass: window (zero phase over the window and its context) | causal "
                "(one running filter, what a sample-by-sample device runs) | none (default: the one the model was "
                "trained with, its band_phase)"})
    quality_gate: bool = field(default=False, metadata={"help": "hold the tracker when the model's quality_logit "
                                                                "output says poor (a model without one is "
                                                                "refused)"})
    max_records: int = field(default=0, metadata={"help": "use at most this many recordings (0 = all)"})
    recordings: list[str] = field(default_factory=list, metadata={"help": RECORDINGS_HELP, "metavar": "PATTERN"})
    max_seconds: float = field(default=0.0, metadata={"help": "spectral models: use only the first seconds of each "
                                                              "recording (0 = all)"})
    acc_fs: float | None = field(default=None, metadata={"help": ACC_FS_HELP, "metavar": "HZ"})
    data_root: str = field(default="", metadata={"help": "where a bare dataset name given as --data is looked up "
                                                         "(default: $SQTOOL_DATA or ../shared/data); without "
                                                         "--data, read as --data (its old spelling, as in train)"})
    mcu_windows: int = field(default=0, metadata={"help": "windows run on each emulated MCU (0 = all; the network-only "
                                                           "mcu_* runtimes: mcu_m4_window streams whole recordings)"})
    callgrind_windows: int = field(default=4, metadata={"help": "windows counted under valgrind (0 = skip)"})
    timeout: float = field(default=900.0, metadata={"help": "seconds before a firmware run counts as hung"})
    out: str | None = field(default=None, metadata={"help": "run dir (default: runs/bench/<stamp>-<model>)",
                                                    "metavar": "DIR"})
    force: bool = field(default=False, metadata={"help": FORCE_HELP})
    progress: bool = field(default=True, metadata={"help": "show progress bars on stderr (the one line per runtime "
                                                           "is always printed)"})
    allow_failed_parity: bool = field(default=False, metadata={
        "help": "benchmark an export whose parity check failed (refused by default)"})


def register(sub, name: str, helptext: str) -> None:
    p = sub.add_parser(name, help=helptext, description=__doc__.split("\n\n")[0])
    add_config_args(p, BenchConfig)
    p.set_defaults(func=run)


def data_from_flags(cfg):
    """bench's and predict's command lines: --data-root given alone is --data (its old spelling, one notice line);
    the library functions (run_bench, predict) take --data as given, --data-root only where a name is looked up."""
    from sqtool.core.runs import data_and_root
    data, root = data_and_root(cfg.data, cfg.data_root)
    return replace(cfg, data=data or "", data_root=root or "")


def run(args) -> int:
    cfg = resolve_config(BenchConfig, args)
    if cfg.compare:                                   # two finished runs side by side, no bench
        from sqtool.firmware_bench.compare import next_line, run_compare, tables as compare_tables
        c = run_compare(cfg)
        print(compare_tables(c))
        print(f"\ncompare -> {c['run_dir']}\nreport: {Path(c['run_dir']) / 'compare.md'}\n{next_line(c)}")
        return 0
    cfg = data_from_flags(cfg)
    check_required("bench", cfg)                      # a usage error (exit 2), before anything is read
    res = run_bench(cfg)
    if res.get("kind") == "spectral":
        from sqtool.firmware_bench.spectral import tables
    else:
        from sqtool.firmware_bench.report import tables
    print(tables(res))
    print(f"\nbench -> {res['run_dir']}")
    print(next_step(res))
    if any(not f["ok"] for f in res["floor"]):
        from sqtool.firmware_bench.report import floors_line
        print(f"sqtool: {floors_line(res['floor'])}", file=sys.stderr)      # the reason where a CI log shows errors
        return 3
    return 0


def next_step(res: dict) -> str:
    """The last lines of `sqtool bench`: the report and the command to run next."""
    export_dir = Path(res.get("provenance", {}).get("model_dir") or "EXPORT")
    lines = [f"report: {Path(res['run_dir']) / 'bench.md'}"]
    if res.get("kind") == "spectral":
        predict = shell_command("predict", "--model", export_dir, "--data", "RECORDING")
        lines.append(f"next: {predict}   (heart rate of your own "
                     f"recordings; firmware kit: {export_dir / 'c'})")
    elif (export_dir / "c" / "sq_window.c").is_file():     # the front end in C too: the whole loop on the device
        lines.append(f"next: build {export_dir / 'c'}/*.c into the firmware: device samples -> sq_window_push -> "
                     "sq_model_run (the loop in sq_window.h)")
    elif (export_dir / "c").is_dir():
        doc = export_dir / "INTEGRATION.md"
        lines.append(f"next: build {export_dir / 'c'}/sq_model.c into the firmware (API in sq_model.h)"
                     + (f"; the preprocessing it needs before it: {doc}" if doc.is_file() else ""))
    else:                                             # an export without C (--target onnx,tflite): an app runs it
        predict = shell_command("predict", "--model", export_dir, "--data", "RECORDING")
        lines.append(f"next: {predict}   (its outputs per recording; the preprocessing an app runs before the "
                     f"network: {export_dir / 'INTEGRATION.md'})")
    if res.get("labelled") is False:                  # label-free data: the last line says what was not measured
        from sqtool.firmware_bench.spectral import NOT_MEASURED
        lines.append(f"{res.get('accuracy') or NOT_MEASURED}; cost and fidelity only")
    elif (res.get("skill") or {}).get("line"):        # another regression task: skill, or NO SKILL, said last
        lines.append(res["skill"]["line"])
    return "\n".join(lines)


# ----------------------------------------------------------------------------- floors

_FLOOR = {"mae": ("metrics.mae", "max"), "mape": ("metrics.mape", "max"), "mae_tracked": ("metrics_tracked.mae", "max"),
          "gt10": ("gt10_pct", "max"), "auroc": ("metrics.auroc", "min"), "exact": ("exact_pct", "min"),
          "insns": ("instructions_per_inference", "max"), "flash_kb": ("flash_kb", "max"),
          "ram_kb": ("ram_kb", "max")}


def parse_floors(items: list[str]) -> list[tuple[str | None, str, float]]:
    out = []
    for it in items:
        if "=" not in it:
            raise SqtoolError(f"--floor '{it}': expected metric=value (metrics: {', '.join(_FLOOR)})")
        k, v = it.split("=", 1)
        rt, _, metric = k.rpartition(":")
        if metric not in _FLOOR:
            raise SqtoolError(f"--floor '{it}': unknown metric '{metric}' (known: {', '.join(_FLOOR)})")
        try:
            value = float(v)
        except ValueError:
            raise SqtoolError(f"--floor '{it}': '{v}' is not a number")
        if not math.isfinite(value):            # nan fails every run after the whole bench, inf passes every one
            raise SqtoolError(f"--floor '{it}': '{v}' is not a finite number")
        out.append((rt or None, metric, value))
    return out


def _get(row: dict, path: str):
    v = row
    for p in path.split("."):
        v = v.get(p) if isinstance(v, dict) else None
    return v


# accuracy floors depend on which subjects are scored: metric -> (per_subject value, its window count)
_SUBJECT_FLOOR = {"mae": ("mae", "n"), "mape": ("mape", "n"), "mae_tracked": ("mae_tracked", "n_tracked"),
                  "gt10": ("gt10_pct", "n")}
# ... and those that do not pool from subjects' values (an AUROC ranks windows across subjects): the row's metric over
# the held-out subjects' windows, which run_bench writes
_HELD_OUT_FLOOR = {"auroc": "metrics_held_out.auroc"}


def check_floor_metrics(floors, target: Target, what: str) -> None:
    """One line for a --floor the target cannot measure: heart rate's (the tracker, > 10 BPM) on another task, an
    MAE or MAPE on a class's logit, an AUROC on a regression output."""
    own = (("mae", "mape", "mae_tracked", "gt10") if target.tracked else ("auroc",) if target.kind == "class" else
           ("mae", "mape"))
    cost = ("exact", "insns", "flash_kb", "ram_kb")
    for _, m, _ in floors:
        if m not in own + cost:
            whose = ("heart rate's (the tracker, > 10 BPM)" if m in ("mae_tracked", "gt10") else
                     "a regression output's (% of its reference)" if m == "mape" else
                     "a class's (its logit's ranking)" if m == "auroc" else "a regression output's")
            raise SqtoolError(f"--floor {m}: {whose}; {what}: its floors are {', '.join(own + cost)}")


def _held_out_value(row: dict, metric: str, seen: set[str]) -> float | None:
    """`metric` of a runtime over the windows of its scored subjects not in `seen`, pooled from its per_subject
    scores (window-weighted, as the metric over those windows); None when no such subject was scored."""
    key, n_key = _SUBJECT_FLOOR[metric]
    parts = [(s[n_key], s[key]) for k, s in (row.get("per_subject") or {}).items()
             if k not in seen and s.get(key) is not None and s.get(n_key)]
    n = sum(c for c, _ in parts)
    return sum(c * v for c, v in parts) / n if n else None


def _scored_subjects(rows: list[dict]) -> set[str]:
    return {k for r in rows for k, s in (r.get("per_subject") or {}).items() if s.get("n")}


def check_floors(rows: list[dict], floors, seen=(), on_seen: bool = False) -> list[dict]:
    """One entry per (runtime, floor): a floor for every runtime (no `runtime:` prefix) is checked on each runtime
    that measured its metric; a floor that no runtime measured (accuracy on unlabelled data, `exact` without its
    reference runtime, a runtime that did not run) is one FAILED entry, never a silent pass: a CI gate fails
    closed. `seen`: the scored subjects the model was trained on (bench's seen_in_training); an accuracy floor
    is then checked on the other subjects only (each entry's `scope` says so), so a floor met on training
    subjects alone is not measured, unless `on_seen` (--floor-on-seen) checks the metric over every subject."""
    seen = set(seen or ())
    scored = _scored_subjects(rows)
    res = []
    for rt, metric, limit in floors:
        path, op = _FLOOR[metric]
        scope = None
        if seen and (metric in _SUBJECT_FLOOR or metric in _HELD_OUT_FLOOR):
            n_held = len(scored - seen)
            scope = (f"{len(seen)} of {len(scored)} scored subjects seen in training, counted (--floor-on-seen)"
                     if on_seen else f"held-out {n_held} of {len(scored)} subjects" if n_held else
                     f"all {len(scored)} scored subjects were seen in training; --floor-on-seen counts them")
        for r in rows:
            if rt is not None and r["runtime"] != rt:
                continue
            v = _get(r, path)
            if scope is not None and not on_seen and v is not None:
                v = (_get(r, _HELD_OUT_FLOOR[metric]) if metric in _HELD_OUT_FLOOR else
                     _held_out_value(r, metric, seen))
            if v is None and rt is None:
                continue                                  # metric not measured by this runtime
            ok = r["status"] == "ok" and v is not None and (v <= limit if op == "max" else v >= limit)
            res.append({"runtime": r["runtime"], "metric": metric, "value": v, "limit": limit, "op": op,
                        "ok": bool(ok), **({"scope": scope} if scope else {})})
        if not any((rt is None or f["runtime"] == rt) and f["metric"] == metric for f in res):
            res.append({"runtime": rt or "any runtime", "metric": metric, "value": None, "limit": limit, "op": op,
                        "ok": False, **({"scope": scope} if scope else {})})
    return res


# ----------------------------------------------------------------------------- the benchmark

def _records(cfg: BenchConfig, channels, records=None):
    """(the recordings the model can use, read one at a time as the caller asks: a --data folder or dataset file is
    not read whole; a function giving, once they are read, the reasons the others were left out: a folder's files
    the readers refused, then the recordings without a channel or with a flat PPG, by record_id). The first
    cfg.max_records usable ones, in the order read; none usable is one line after the last."""
    left_out: list[str] = []                   # a folder's files the readers refuse: left out
    from sqtool.firmware_bench.spectral import reader_options
    if records is not None:
        reader_options(cfg.acc_fs, "records")
    elif cfg.data == "synthetic":                      # the embedded default: wrist PPG + acc with known HR
        from sqtool.firmware_bench.spectral import synthetic_records
        reader_options(cfg.acc_fs, "synthetic")
        records = synthetic_records()
    else:
        if not cfg.data:
            raise SqtoolError("--data is required (a recordings dir or file, e.g. "
                              "../shared/data/troika/Training_data, or 'synthetic')")
        from sqtool.data.dataset_file import one_dataset, pick_recordings, resolve_data
        from sqtool.firmware_bench.spectral import iter_load
        ref = pick_recordings(one_dataset(resolve_data(cfg.data, getattr(cfg, "data_root", "") or None), "bench"),
                              cfg.recordings)                                                  # the one resolver
        options = reader_options(cfg.acc_fs, ref.path if ref.kind == "path" else ref.dataset)
        records = iter_load(ref.path, left_out=left_out, options=options) if ref.kind == "path" else \
            ref.dataset.iter_records()
    kept: list[tuple[str, str]] = []                   # (record_id, reason) of a recording the model cannot use

    def refused() -> list[str]:
        return left_out + [why for _, why in sorted(kept, key=lambda k: k[0])]

    def usable():
        n = 0
        for r in records:
            miss = [c for c in channels if c not in r.signals]
            ppg = None if miss else np.asarray(r.signals[channels[0]], float)
            if miss:
                kept.append((r.record_id, f"{r.record_id}: no channel {', '.join(miss)}"))
            elif np.nanmax(ppg) - np.nanmin(ppg) < 1e-9:
                kept.append((r.record_id, f"{r.record_id}: {channels[0]} is flat (all-zero or saturated stream)"))
            else:
                n += 1
                yield r
            del r, ppg                           # not held while the next file is read
            if cfg.max_records and n >= cfg.max_records:
                return
        if not n:
            why = "; ".join(refused()[:3]) or "no recordings"
            raise SqtoolError(f"--data {cfg.data or 'records'}: no recording the model can use ({why})")
    return usable(), refused


class OnDisk(Sequence):
    """Arrays saved one per file (np.save), read back one at a time as they are asked for: c_window's device samples
    of every recording (`WindowLoop.run_records`), not held at once."""

    def __init__(self, files):
        self.files = list(files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.load(self.files[i])


def select_runtimes(asked: list[str], known, aliases: dict, default) -> tuple[list[str], set[str]]:
    """(runtimes to run, those the user asked for). A runtime asked for by name or through a group
    (`torch`, `c`, ...) must run: one that cannot is an error. `all` and the default (nothing asked) run
    what the export allows and skip the rest with the reason in the report."""
    names, explicit = [], set()
    for n in list(asked) or list(default):
        members = aliases.get(n, (n,) if n in known else None)
        if members is None:
            raise SqtoolError(f"unknown runtime '{n}' (known: {', '.join(known)}; groups: {', '.join(aliases)})")
        names += [m for m in members if m not in names]
        if asked and n != "all":
            explicit.update(members)
    return names, explicit


PRIMARY_ORDER = ("mcu_m4", "mcu_m33", "mcu_m55", "c_host", "tflm_int8", "litert_int8", "brevitas_int8",
                 "onnx_float", "torch_student", "torch_teacher")     # the runtime the time-domain bench reports first


def hr_reference(name: str, present, bit_exact: bool = False) -> str | None:
    """The runtime a runtime is measured against, the first of its candidates present: double rounding (and
    LiteRT / ONNX int8) vs TFLite Micro (else c_host), single rounding vs Brevitas (else c_host_single), float
    runtimes vs the PyTorch student; for the decoded heart rate (and, in the spectral bench, the int8 logits).
    bit_exact: the int8 outputs of the time-domain bench, against the arithmetic's own reference only (TFLite
    Micro, Brevitas: no fallback), for the runtimes that implement one (LiteRT / ONNX int8 kernels round their
    own way). c_window (the C front end's inputs into c_host's network) is compared with c_host, not bit for bit;
    mcu_m4_window (and the M33's, M55's) bit for bit with c_window, whose float32 and integer arithmetic it runs. None: a reference itself
    (or none present)."""
    from sqtool.firmware_bench.runtimes import rounding_mode
    mode = rounding_mode(name)
    window_mcu = name.startswith("mcu_") and name.endswith("_window")
    if bit_exact and mode is None and not window_mcu:
        return None
    if mode == "single":
        cands = ("brevitas_int8", "c_host_single")
    elif mode == "double" or name in ("onnx_int8", "litert_int8"):
        cands = ("tflm_int8", "c_host")
    elif name in ("onnx_float", "litert_float"):
        cands = ("torch_student",)
    elif name == "c_window":                          # the same C network on the C front end's inputs
        cands = ("c_host", "tflm_int8")
    elif window_mcu:                                  # c_window's float32 and integer arithmetic on the MCU
        cands = ("c_window",)
    else:                                             # torch_teacher / torch_student: references
        cands = ()
    ref = next((c for c in cands[:1 if bit_exact else None] if c in present), None)
    return None if ref == name else ref


def front_end_fidelity(codes: np.ndarray, ref: np.ndarray, fs_in: float) -> dict:
    """The C front end's int8 input codes (W, T C) against the stream's, quantized as every int8 runtime is: its
    windows (a count that differs is one line), the % of codes and of windows equal, the largest difference."""
    if codes.shape != ref.shape:
        raise SqtoolError(f"c_window: the C front end made {len(codes)} windows of {codes.shape[1]} codes, the stream "
                          f"{len(ref)} of {ref.shape[1]}")
    d = np.abs(codes.astype(np.int16) - ref.astype(np.int16))
    return {"fs_in": fs_in, "windows": int(len(d)), "codes_equal_pct": float(100 * (d == 0).mean()) if d.size else None,
            "windows_equal_pct": float(100 * (d.max(axis=1) == 0).mean()) if d.size else None,
            "max_lsb": int(d.max()) if d.size else None}


def hr_fidelity(hr: np.ndarray, ref_hr: np.ndarray) -> dict:
    """Agreement of two runtimes' decoded heart rate over the windows both ran: mean / max |difference| (BPM) and
    the % of windows with the same HR, within SAME_HR_BPM (regression outputs of float runtimes differ in bits)."""
    both = np.isfinite(hr) & np.isfinite(ref_hr)
    if not both.any():
        return {"windows": 0, "hr_diff_mean": None, "hr_diff_max": None, "hr_equal_pct": None}
    d = np.abs(hr[both] - ref_hr[both])
    return {"windows": int(both.sum()), "hr_diff_mean": float(d.mean()), "hr_diff_max": float(d.max()),
            "hr_equal_pct": float(100 * (d <= SAME_HR_BPM).mean())}


def subject_scores(hr: np.ndarray, trk: np.ndarray, truth: np.ndarray, keys: np.ndarray,
                   target: Target = HEART_RATE) -> dict:
    """Per scored subject ("dataset:subject"): the spectral bench's per-subject scores (`spectral.hr_scores`: n,
    MAE, RMSE, bias, > 10 BPM %, ...) plus mae_tracked / n_tracked after the tracker (heart rate; another target
    has neither a tracker nor a > 10 BPM %); the time-domain bench's rows' per_subject, pooled by the accuracy
    floors as the spectral bench's."""
    from sqtool.firmware_bench.report import class_metrics
    from sqtool.firmware_bench.spectral import hr_scores
    out = {}
    for k in dict.fromkeys(keys.tolist()):
        m = keys == k
        d = class_metrics(hr[m], truth[m]) if target.kind == "class" else hr_scores(hr[m], truth[m], gt=target.gt)
        if target.tracked:
            t = hr_scores(trk[m], truth[m])
            d.update(mae_tracked=t["mae"], n_tracked=t["n"])
        out[str(k)] = d
    return out


# ----------------------------------------------------------------------------- what a time-domain bench scores

def bench_target(md: dict, records=None, output: str = "") -> Target:
    """The Target of a time-domain export (its metadata.json): heart rate for a task 'hr' model (its hr_bpm output,
    one line when it has none); a class task's logit (af, quality) against the recordings' class label (AUROC, F1;
    `data.dataset_tasks.class_truth`); another output in unit logit for cost and fidelity only; else a regression
    output against the recording's label predict compares (`predict.truth_labels`: rr_bpm from the breath marks,
    sbp / dbp, a dataset file's label): `output` (--output) when given, a name the model does not output or the
    quality head being one line; else the first output whose label one of `records` carries (bp recordings with dbp
    only: dbp), else the first such output (accuracy then not measured, said)."""
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.predict import CLASS_TRUTH, truth_labels
    task = md.get("task")
    window_s = float(md.get("window_s") or 8.0)
    if task == "hr":
        R.hr_column(md)                                    # one line when it has no hr_bpm output
        if output not in ("", HEART_RATE.output):
            raise SqtoolError(f"--output {output}: a heart-rate model is scored on its {HEART_RATE.output}")
        return replace(HEART_RATE, window_s=window_s)
    names = list(md.get("outputs") or [])
    units = list(md.get("units") or [])
    unit_of = dict(zip(names, units)) if len(units) == len(names) else {}
    outputs = [o for o in names if o != QUALITY_OUTPUT]
    if not outputs:
        raise SqtoolError(f"the model has no task output to benchmark (its outputs: {', '.join(map(str, names)) or 'none'})")
    if output and output not in outputs:
        why = ("the quality head steers the heart-rate tracker and has no truth to score" if output == QUALITY_OUTPUT
               else "not an output of the model")
        raise SqtoolError(f"--output {output}: {why} (the outputs bench scores: {', '.join(outputs)})")
    if task in CLASS_TRUTH:                               # AUROC / F1 against the recordings' class label
        from sqtool.core.metrics import CLASS_NAMES
        return Target(outputs[0], "logit", f"{task} ({CLASS_NAMES[task][1]} = 1)",
                      f"the '{CLASS_TRUTH[task]}' label", window_s=window_s, kind="class")
    if unit_of.get(outputs[0]) == "logit":                 # a logit without a class label to read: cost only
        return Target(outputs[0], "logit", outputs[0], "no truth", scored=False, window_s=window_s)
    truth = truth_labels(md)
    carried = {k for r in (records or ()) for k in (getattr(r, "labels", None) or {})}
    out = output or next((o for o in outputs if o in truth and truth[o] in carried),
                         next((o for o in outputs if o in truth), outputs[0]))
    label = f"the '{truth[out]}' label" if out in truth else f"a label for {out}"
    return Target(out, unit_of.get(out) or "units", out, label, window_s=window_s)


def target_truth(target: Target, md: dict, rec, rp, window_s: float) -> np.ndarray:
    """(W,) the truth of one streamed recording's windows: its heart rate (`replay`'s), its label per window
    (`predict.window_targets`, as predict compares it), a class's 1 / 0 (`dataset_tasks.class_truth`, as training
    reads it), or NaN (no truth)."""
    none = np.full(len(rp), np.nan)
    if target.tracked:
        return rp.truth if rp.truth is not None else none
    if not target.scored:
        return none
    if target.kind == "class":
        from sqtool.data.dataset_tasks import class_truth
        got = class_truth(str(md.get("task")), rec, rp.t0, window_s)
        return none if got is None else got
    from sqtool.firmware_bench.predict import truth_labels, window_targets
    got = window_targets(rec, truth_labels(md), rp.t0, window_s) or {}
    return np.asarray(got.get(target.output, none), np.float64)


def not_measured_line(target: Target, md: dict) -> str:
    """Why accuracy is not measured, when it is not: no recording carries the truth, or the task is a class."""
    if target.tracked:
        from sqtool.firmware_bench.spectral import NOT_MEASURED
        return NOT_MEASURED
    if not target.scored:
        return (f"accuracy not measured: '{md.get('task')}' is a class, its {target.output} a logit (its held-out "
                "AUROC and F1: the quantize run's report, the export's MODEL_CARD.md)")
    return f"accuracy not measured: no recording has {target.truth}"


def trivial_row(target: Target, md: dict, truth: np.ndarray) -> tuple[dict, np.ndarray] | None:
    """A regression target's trivial predictor, the training labels' mean (metadata.json's target_mean, the
    normalisation the model was trained with) on every window; a class's, one constant score (AUROC 0.5 whatever
    the constant; its F1 and accuracy depend on which, so they are not shown): (its accuracy-table row, its (N,)
    predictions). None for heart rate (its classic baseline is the reference), a logit without a class label, or
    metadata without target_mean."""
    from sqtool.firmware_bench.report import class_metrics, hr_metrics
    if target.tracked or not target.scored:
        return None
    if target.kind == "class":
        pred = np.zeros(len(truth))
        return {"runtime": "trivial", "status": "ok", "precision": "-",
                "method": "one constant score for every window (AUROC 0.5 whatever the constant)",
                "metrics": {**class_metrics(pred, truth), "f1": None, "accuracy": None}}, pred
    i = list(md.get("outputs") or []).index(target.output)
    means = list(md.get("target_mean") or [])
    if i >= len(means) or means[i] is None:
        return None
    pred = np.full(len(truth), float(means[i]))
    return {"runtime": "trivial", "status": "ok", "precision": "-",
            "method": f"the training labels' mean, {float(means[i]):.4g} {target.unit} (metadata.json target_mean)",
            "metrics": hr_metrics(pred, truth, target.gt)}, pred


def skill_vs(target: Target, md: dict, res: dict, estimates: dict, trivial: np.ndarray, classic, truth: np.ndarray,
             subj: np.ndarray) -> dict:
    """The primary runtime against the trivial predictor and the classic method, as a fine-tune's and quantize's
    reports test it (`core.metrics.skill_test`: paired over subjects), on the windows with truth of the subjects the
    model was not trained on: {line (NO SKILL flagged), vs_trivial, vs_classic, subjects}; the line says why it is
    not measured (no truth, no held-out subject)."""
    from sqtool.core.metrics import FEW_SUBJECTS, classic_flag, skill_line, skill_test
    task = str(md.get("task"))
    name = res.get("primary")
    if not np.isfinite(truth).any():
        return {"line": f"skill: not measured (no recording has {target.truth})"}
    if name is None or name not in estimates:
        return {"line": f"skill: not measured (no runtime scored every window with {target.truth})"}
    pred = estimates[name]
    keep = np.isfinite(truth) & np.isfinite(pred) & ~np.isin(subj, list(res.get("seen_in_training") or ()))
    if not keep.any():
        return {"line": "skill: not measured (every scored subject was seen in training)"}
    y, g = truth[keep][:, None], subj[keep]
    vs = skill_test(task, y, pred[keep][:, None], trivial[keep][:, None], g, (target.output,), few=FEW_SUBJECTS)
    out = {"runtime": name, "subjects": int(len(set(g.tolist()))), "vs_trivial": vs,
           "line": f"{name} on held-out subjects: " + skill_line(
               task, vs, label=f"pooled {vs['metric']} of {target.output}",
               unit="" if target.kind == "class" else target.unit, few=FEW_SUBJECTS)}
    if classic is not None and np.isfinite(classic[keep]).any():
        vc = skill_test(task, y, pred[keep][:, None], np.asarray(classic)[keep][:, None], g, (target.output,),
                        few=FEW_SUBJECTS)
        out["vs_classic"] = vc
        if flag := classic_flag(vc):
            u = "" if target.kind == "class" else f" {target.unit}"
            out["line"] += f"; {flag}: {vc['metric']} {vc['model']:.3f} vs classic {vc['reference']:.3f}{u}"
    return out


def subject_folds(subj: np.ndarray, truth: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave one subject out over the windows: per subject with truth, (the other subjects' windows with truth, its
    windows): where a classic method fits a threshold (af), it is fitted on the subjects it does not score."""
    has = np.isfinite(truth)
    return [(np.flatnonzero(has & (subj != s)), np.flatnonzero(subj == s)) for s in dict.fromkeys(subj[has].tolist())]


def classic_row(target: Target, md: dict, baselines: list, baseline_s: float, X: np.ndarray, truth: np.ndarray,
                subj: np.ndarray, signal_s: float, spec) -> tuple[dict, tuple[np.ndarray, np.ndarray] | None]:
    """The baseline row: the classic method on the same windows. Heart rate: the spectral baseline with
    accelerometer subtraction and peak tracking (`baseline.baseline_hr`, run on each recording as it was streamed:
    `baselines`, each its result or the SqtoolError it raised, in baseline_s seconds); another task: the
    fine-tunes' classic (`data.classic.classic_oof`, on the streamed windows: rr's respiratory spectral fusion, af's
    beat-interval irregularity rule with its threshold fitted on the other subjects (`subject_folds`), quality's
    signal quality index; none for bp or a dataset file's label: status 'none', its reason as the method), and its
    (raw, tracked) per-window estimates for the series (None without a method)."""
    from sqtool.firmware_bench.report import hr_metrics, target_metrics
    from sqtool.firmware_bench.spectral import _raised
    t = time.perf_counter() - baseline_s
    if target.tracked:
        bl = [_raised(o) for o in baselines]
        bl_hr, bl_raw = np.concatenate([o["hr"] for o in bl]), np.concatenate([o["raw"] for o in bl])
        method = "spectral + acc subtraction + peak tracking (TROIKA-like)"
        metrics, tracked = hr_metrics(bl_raw, truth), hr_metrics(bl_hr, truth)
    else:
        from types import SimpleNamespace
        from sqtool.data.classic import classic_oof
        pred, method = (None, "a logit without a class label is not scored") if not target.scored else classic_oof(
            str(md.get("task")), SimpleNamespace(x=X, y=truth[:, None], meta={"fs": spec.fs, "band": md.get("band")}),
            subject_folds(subj, truth))
        if pred is None:
            return {"runtime": "baseline", "status": "none", "precision": "-", "method": method,
                    "error": f"no classic method: {method}"}, None
        bl_raw = bl_hr = np.asarray(pred, np.float64)[:, 0]
        metrics, tracked = target_metrics(target, bl_raw, truth), None
    seconds = time.perf_counter() - t
    base = {"runtime": "baseline", "status": "ok", "precision": "float64", "method": method, "metrics": metrics,
            "realtime_factor": float(signal_s / (seconds + 1e-12)), "seconds": seconds}
    if tracked is not None:
        base["metrics_tracked"] = tracked
    base["gt10_pct"] = None if metrics["gt10"] is None else 100 * metrics["gt10"]
    return base, (bl_raw, bl_hr)


# a --force'd folder's earlier bench files (bench_run_dir), until this run's result is written; hidden
EARLIER = ".earlier_bench.json"
REPORTS = ("bench.json", "bench.md", "windows.csv", "compare.md")   # a bench's report (its plots: bench.json lists
                                                                     # them) or a --compare's


def bench_run_dir(cfg, name: str) -> Path:
    """The run folder of a bench or a --compare (make_run_dir, config.yaml). --force'd into an earlier one's, whose
    metrics.json or compare.json goes at once (core.runs.unfinish): that run's report and plots are noted
    (core.runs.note_earlier) and those this run does not rewrite go once it has written its own (`drop_bench_earlier`),
    so the folder holds one run's files, also after a kill and the --force run that redoes it."""
    from sqtool.core.runs import note_earlier, run_command
    run_dir = make_run_dir("bench", name, cfg.out, cfg.force)
    listed = set()
    if run_command(run_dir) == "bench":                   # an earlier bench's folder (not one of no sqtool run)
        listed = {n for n in REPORTS if (run_dir / n).is_file()}
        try:
            listed |= {str(p) for p in json.loads((run_dir / "bench.json").read_text()).get("plots") or ()}
        except (OSError, ValueError, AttributeError, TypeError):
            pass
    note_earlier(run_dir, listed, EARLIER, (".json", ".md", ".csv", ".png"))
    save_config(run_dir, cfg)
    return run_dir


def drop_bench_earlier(run_dir, written) -> None:
    """After a bench run's result: the earlier run's files it did not write (`bench_run_dir`) go, said in one line."""
    from sqtool.core.runs import drop_earlier
    gone = drop_earlier(run_dir, written, EARLIER)
    if gone:
        item(f"bench: removed {len(gone)} file{'s' if len(gone) != 1 else ''} of the earlier bench run in {run_dir} "
             f"that this one did not rewrite ({', '.join(gone)})")


def finish_bench(res: dict, metrics: dict) -> None:
    """The end of a bench run, time-domain or spectral, after its report (bench.json, bench.md, `plots`): config.yaml's
    `resolved:` (the export, data and recordings used and the runtimes that ran), then metrics.json, last: until it is
    there the folder reads as an unfinished run (core.runs.RESULT), so a kill in between leaves no finished bench
    without its resolved config; then the earlier run's files it did not rewrite go. A runtime that could not run is
    then the command's error."""
    from sqtool.core.runs import save_resolved
    p, run_dir = res.get("provenance") or {}, res["run_dir"]
    save_resolved(run_dir, model=p.get("model_dir"), data=p.get("data"), records=p.get("records"),
                  windows=p.get("windows"), runtimes=[r["runtime"] for r in res.get("runtimes", [])
                                                      if r.get("status") == "ok"])
    write_metrics(run_dir, metrics)
    drop_bench_earlier(run_dir, {"bench.json", "bench.md", "windows.csv", *res.get("plots", ())})
    failed = [r for r in res.get("runtimes", []) if r["status"] == "error"]
    if failed:
        raise SqtoolError(f"runtime {failed[0]['runtime']} cannot run: {failed[0]['error']} (report in {run_dir})")


COUNTS = (("max_records", 0, "0 = all"), ("max_seconds", 0, "0 = all"), ("mcu_windows", 0, "0 = all"),
          ("callgrind_windows", 0, "0 = skip"), ("chunk", 1, "samples per push"))


def check_counts(cfg, command: str) -> None:
    """Counts and durations refused in one line when negative (a negative --max-seconds cut the recording's
    last seconds, a negative --max-records kept one) or a --timeout that is not positive."""
    for k, lo, what in COUNTS:
        v = getattr(cfg, k, None)
        if v is not None and not v >= lo:
            raise SqtoolError(f"{command} --{k.replace('_', '-')} must be >= {lo} ({what}), got {v:g}")
    t = getattr(cfg, "timeout", None)
    if t is not None and not t > 0:
        raise SqtoolError(f"{command} --timeout must be > 0 seconds, got {t:g}")


@releases_run_dirs
def run_bench(cfg: BenchConfig, records=None) -> dict:
    """The benchmark behind `sqtool bench`; `records` (a list of Record) replaces --data when given."""
    from sqtool.firmware_bench import mcu
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.provenance import model_provenance, provenance_warnings
    from sqtool.firmware_bench.report import (class_metrics, condition_scores, hr_metrics, runtime_line,
                                              subjects_auroc, target_metrics, write_report)
    from sqtool.firmware_bench.stream import FILTERS, StreamSpec, at_stream_rate, record_matrix, replay
    from sqtool.data.hr_tracker import track

    check_counts(cfg, "bench")
    if cfg.out:
        from sqtool.core.runs import check_out_dir
        check_out_dir("bench", cfg.out, cfg.force)        # before the data and the front end
    if not cfg.model:
        raise SqtoolError("--model is required (an `sqtool export` dir, holding manifest.json)")
    if cfg.filter and cfg.filter not in FILTERS:
        raise SqtoolError(f"--filter must be one of {', '.join(FILTERS)}")
    floors = parse_floors(cfg.floor)
    art = R.load_artifacts(cfg.model, {"teacher": cfg.teacher, "student_float": cfg.student_float,
                                        "student_int8": cfg.student_int8},
                           allow_failed_parity=cfg.allow_failed_parity, flag="--allow-failed-parity")
    cfg.filter = cfg.filter or stream_filter(art.metadata)   # default: as the model was trained
    outputs = list(R.resp_view(art.metadata).get("outputs") or [])   # rr_spec: its decoded rr_bpm
    if cfg.quality_gate and art.metadata.get("task") != "hr":
        raise SqtoolError(f"--quality-gate holds the heart-rate tracker; {art.export_dir} is a "
                          f"'{art.metadata.get('task')}' model, scored window by window without one")
    if cfg.quality_gate and QUALITY_OUTPUT not in outputs:     # else the gate would silently gate nothing
        raise SqtoolError(f"--quality-gate reads the model's {QUALITY_OUTPUT} output; {art.export_dir} has none "
                          f"(its outputs: {', '.join(map(str, outputs)) or 'none'})")
    if art.metadata.get("task") == "hr" and R.is_spectral(art.metadata):     # int8 spectra + HMM decoder
        bench_target({"task": "hr", "outputs": [HEART_RATE.output]}, output=cfg.output)   # --output: hr_bpm only
        from sqtool.firmware_bench.spectral import run_spectral_bench
        return run_spectral_bench(cfg, art, records, log=item, warn_line=also_on_stderr)
    if cfg.max_seconds:       # a note, not a refusal: a --config or script that sets it for both kinds still runs
        item(f"note: --max-seconds {cfg.max_seconds:g} cuts recordings for spectral models only; this time-domain "
             "export is benchmarked on whole recordings (--max-records limits how many)")
    names, explicit = select_runtimes(cfg.runtime, R.RUNTIMES, R.ALIASES, R.DEFAULT_RUNTIMES)
    md = R.resp_view(art.metadata)                         # rr_spec: scored as its decoded rr_bpm (R.FrontEnd)
    if R.front_family(md):                                 # a float model: the runtimes that run it
        R.check_front_filter(md, cfg.filter, art.export_dir)
        front, named = R.front_runtimes(md), {n for n in cfg.runtime if n in R.RUNTIMES}
        names = [n for n in names if n in front or n in named]          # a group (onnx, torch): its members it ships
        explicit &= set(names)                                          # a runtime named alone must run
        if not names:
            raise SqtoolError(f"--runtime {','.join(cfg.runtime)}: this float {md.get('model')} export runs on "
                              f"{', '.join(front)} only")
    first = bench_target(md, output=cfg.output)            # a model without the output it is read by: one line now
    check_floor_metrics(floors, first, f"{art.export_dir} is a '{md.get('task')}' model")   # its kind is the target's
    spec = StreamSpec.from_model_cfg(md, filter=cfg.filter)
    read, refused = _records(cfg, list(spec.channels), records)
    short: list[tuple[str, str]] = []                      # (record_id, reason) of a recording shorter than a window
    from sqtool.data.record import TooShort, tile_record
    from sqtool.data import hr_baseline as B
    from sqtool.firmware_bench.spectral import no_signals
    tile = md.get("short_records") == "tile"               # shorter than a window: filled as training did (predict)
    fed = any(R.feeds_records(n) for n in names)           # c_window: fed each recording's device samples
    scratch = ScratchDir("sqtool-bench-") if fed else None
    numbers, aside = itertools.count(), {"baseline": 0.0, "scratch": 0.0}   # seconds not spent streaming

    # 1. stream every recording as it is read (timed: part of the host pipeline's real-time factor); it keeps its
    # model-input windows, not its samples (`no_signals`) nor its device-rate windows (`raw`, unread here): what the
    # rest reads of them is taken first, its duration, the classic baseline's heart rate (or the SqtoolError it
    # raised, raised in `classic_row`) and, for c_window, its device samples (float32, into a scratch file removed
    # after the runtimes), so the memory grows with the model's windows
    t = time.perf_counter()
    def streamed(r):
        key = r.record_id
        r = at_stream_rate(r, spec)                        # a clock off its whole-Hz rate: resampled to it
        r = tile_record(r, spec.window_s) if tile else r
        try:
            rp = replay(r, spec, chunk=cfg.chunk)
        except TooShort as e:
            short.append((key, str(e)))
            raise
        seconds = r.meta.get("tiled_from_s") or r.duration(spec.channels[0])     # not tiled
        baseline, samples, t_aside = None, None, time.perf_counter()
        if first.tracked:
            try:
                baseline = B.baseline_hr(r, rp.t0, spec.window_s)
            except SqtoolError as e:
                baseline = e
        aside["baseline"] += time.perf_counter() - t_aside
        if scratch is not None:
            t_aside, samples = time.perf_counter(), Path(scratch.name) / f"{next(numbers)}.npy"
            np.save(samples, np.asarray(record_matrix(r, spec.channels)[0], np.float32))
            aside["scratch"] += time.perf_counter() - t_aside
        return no_signals(r), replace(rp, raw=None), seconds, baseline, samples
    def left():                                            # long_enough reads it after the last recording
        yield from refused()
    done, _ = long_enough(bar(read, desc="stream", enabled=cfg.progress, unit="rec"), streamed, spec.window_s,
                          cfg.data or "records", left=left())   # left out and listed, after _records' own
    done.sort(key=lambda d: d[0].record_id)
    recs, reps, durations, baselines, streams = (list(c) for c in zip(*done))
    skipped = refused() + [why for _, why in sorted(short, key=lambda k: k[0])]
    stream_s = time.perf_counter() - t - sum(aside.values())
    target = bench_target(md, recs, cfg.output)            # heart rate, another task's output, or a class's logit
    column = list(md.get("outputs") or []).index(target.output)
    for line in left_out_lines(skipped, "bench"):
        item(line)
    X = np.concatenate([rp.x for rp in reps])                                 # (N, C, T)
    truth = np.concatenate([target_truth(target, md, rec, rp, spec.window_s) for rec, rp in zip(recs, reps)])
    flagged = np.concatenate([rp.flagged for rp in reps])
    bounds = np.cumsum([0] + [len(rp) for rp in reps])
    from sqtool.data.record import subject_key
    subj = np.concatenate([[subject_key(rec.dataset, rec.subject)] * len(rp) for rec, rp in zip(recs, reps)])
    from sqtool.data.record import window_conditions
    cond = np.concatenate([window_conditions(rec, rp.t0, spec.window_s) for rec, rp in zip(recs, reps)])  # "": none
    by_condition = target.scored and target.kind != "class"          # a value's per_condition (MAE, MAPE, bias, LoA)
    signal_s = float(sum(durations))
    labelled = bool(np.isfinite(truth).any())         # False: cost and fidelity only (accuracy not measured)
    not_measured = not_measured_line(target, md)
    if not labelled:
        item(f"bench: {len(recs)} recordings, {len(X)} windows; {not_measured}")

    run_dir = bench_run_dir(cfg, str(md.get("model", "model")))
    work = run_dir / "build"
    model_file = "model_int8.tflite" if art.has("model_int8.tflite") else "metadata.json"

    def per_record_track(hr, ok):
        return np.concatenate([track(hr[a:b], ok[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])

    rows, series_pred, series_trk, lat, hrs = [], {}, {}, {}, {}
    def finished(row: dict, t_rt: float) -> None:           # one progress line per runtime as it finishes
        row["seconds"] = time.perf_counter() - t_rt
        rows.append(row)
        item(runtime_line(row, target.unit))

    for name in names:
        row = {"runtime": name, "status": "ok"}
        t_rt = time.perf_counter()
        try:
            rt = R.make_runtime(name, art, work)
            if getattr(rt, "fed_records", False):         # built for one device rate and filter, or skipped
                rt.check_stream([(rp.record_id, rp.fs_in) for rp in reps], spec.filter if spec.band else "none")
        except TamperedArtifact:
            raise                                         # a changed file stops the bench: never a skipped runtime
        except SqtoolError as e:
            row.update(status="error" if name in explicit else "skipped", error=str(e))
            finished(row, t_rt)
            continue
        row["precision"] = rt.precision
        try:
            xs = X if not (name.startswith("mcu_") and cfg.mcu_windows) else X[:cfg.mcu_windows]
            if name.startswith("mcu_"):
                rt.timeout_s = cfg.timeout
            t = time.perf_counter()
            if getattr(rt, "fed_records", False):         # the C front end on the recordings' device samples
                y, codes = rt.run_records(OnDisk(streams), spec.n_samples)
                row["front_end"] = front_end_fidelity(codes, R.quantize(X, *art.input_qparams), rt.fs_in)
            else:
                y = rt.run_batch(xs)
            run_s = time.perf_counter() - t
        except SqtoolError as e:
            row.update(status="error", error=str(e), **rt.info())
            finished(row, t_rt)
            continue
        row.update(rt.info())
        hr = np.full(len(X), np.nan)                      # the target's estimate per window (heart rate: BPM)
        hr[:len(y)] = np.asarray(y, np.float64).reshape(len(y), -1)[:, column]
        trk = per_record_track(hr, tracker_ok(y, flagged, outputs, cfg.quality_gate)) if target.tracked else hr
        row["metrics"] = target_metrics(target, hr[:len(y)], truth[:len(y)])
        if target.tracked:
            row["metrics_tracked"] = hr_metrics(trk[:len(y)], truth[:len(y)])
        if len(y) < len(X) and row["metrics"]["coverage"]:  # an --mcu-windows subset: of every labelled window
            row["metrics"]["coverage"] *= row["metrics"]["n"] / max(1, int(np.isfinite(truth).sum()))
        row["windows"] = int(len(y))
        if row["metrics"]["gt10"] is not None:
            row["gt10_pct"] = 100 * row["metrics"]["gt10"]
        if rt.latencies_s:
            ms = np.asarray(rt.latencies_s) * 1e3
            row.update(latency_ms_p50=float(np.percentile(ms, 50)), latency_ms_p99=float(np.percentile(ms, 99)),
                       latency_ms_mean=float(ms.mean()))
            lat[name] = ms.tolist()
            per_window = stream_s / len(X) + run_s / len(y)
            row["realtime_factor"] = float(signal_s / len(X) / per_window)       # x real time
            row["signal_hours_per_s"] = row["realtime_factor"] / 3600.0
        for k in ("flash_bytes", "ram_bytes"):
            if row.get(k) is not None:
                row[k.replace("_bytes", "_kb")] = row[k] / 1024
        if rt.int8_outputs is not None:
            row["_int8"] = rt.int8_outputs
        if name == "c_host" and cfg.callgrind_windows:
            try:
                s, zp = art.input_qparams
                row["instructions_per_inference"] = rt.callgrind(R.quantize(X[:cfg.callgrind_windows], s, zp))
                row["instructions_tool"] = "valgrind callgrind (x86-64, sq_model_run only)"
            except SqtoolError as e:
                row["callgrind_error"] = str(e)
        if name.startswith("mcu_"):
            row["instructions_tool"] = "QEMU TCG plugin insn_count (between sq_bench_begin/end)"
        row["per_subject"] = subject_scores(hr[:len(y)], trk[:len(y)], truth[:len(y)], subj[:len(y)], target)
        if by_condition and (by := condition_scores(hr[:len(y)], truth[:len(y)], cond[:len(y)], subj[:len(y)],
                                                    target.gt)) is not None:
            row["per_condition"] = by
        if target.kind == "class":
            row["by_subject"] = subjects_auroc(row["per_subject"])
        hrs[name] = hr
        series_pred[name] = [hr[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
        series_trk[name] = [trk[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
        finished(row, t_rt)

    # 2. bit-exactness: double rounding vs TFLite Micro, single rounding vs Brevitas
    refs = {r["runtime"]: r.get("_int8") for r in rows if r.get("_int8") is not None}
    for r in rows:
        ref = hr_reference(r["runtime"], set(refs), bit_exact=True) if r["runtime"] in refs else None
        if ref is None:
            continue
        a, b = r["_int8"], refs[ref]
        n = min(len(a), len(b))
        r["exact_pct"] = float(100 * (a[:n] == b[:n]).all(axis=1).mean())
        r["exact_ref"] = ref
        r["max_lsb_diff"] = int(np.abs(a[:n].astype(int) - b[:n].astype(int)).max())
    for r in rows:
        r.pop("_int8", None)
    # fidelity: decoded heart rate against the reference runtime's (BPM), with or without truth
    for r in rows:
        ref = hr_reference(r["runtime"], set(hrs)) if r["runtime"] in hrs else None
        if ref is not None:
            r["fidelity"] = {"ref": ref, **hr_fidelity(hrs[r["runtime"]], hrs[ref])}
            if r.get("exact_ref") == ref:
                r["fidelity"]["exact_pct"] = r["exact_pct"]

    # 3. the classic baseline on the same windows
    if scratch is not None:
        scratch.cleanup()                                 # c_window's device samples
    base, bl = classic_row(target, md, baselines, aside["baseline"], X, truth, subj, signal_s, spec)
    item(runtime_line(base, target.unit))
    bl_raw = None
    if bl is not None:
        bl_raw, bl_hr = bl
        if by_condition and (by := condition_scores(bl_raw, truth, cond, subj, target.gt)) is not None:
            base["per_condition"] = by                    # before its tracker, as the runtimes' rows
        if target.kind == "class":                        # per patient, as the runtimes' rows
            base["per_subject"] = subject_scores(bl_raw, bl_hr, truth, subj, target)
            base["by_subject"] = subjects_auroc(base["per_subject"])
        series_pred["baseline"] = [bl_raw[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
        series_trk["baseline"] = [bl_hr[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
    trivial = trivial_row(target, md, truth)           # another regression task: the training labels' mean

    prov = {**model_provenance(art, model_file), "tools": mcu.tool_versions(), "data": str(cfg.data),
            "records": len(recs), "windows": int(len(X)), "signal_hours": signal_s / 3600, "skipped_records": skipped,
            "stream": f"{reps[0].fs_in:g} Hz -> {spec.fs:g} Hz, {spec.window_s:g} s / {spec.hop_s:g} s windows, "
                      f"chunks of {cfg.chunk}, filter {spec.filter}, latency {reps[0].latency_s:.2f} s",
            "stream_seconds": stream_s}
    res = {"provenance": prov, "runtimes": rows, "baseline": base, "run_dir": str(run_dir),
           "target": asdict(target),
           "notes": [("MAE over windows with ECG truth; 'tracked' = after the causal tracker "
                      f"(quality gate {'on' if cfg.quality_gate else 'off'}, windows with {100 * MAX_FLAGGED:g} % "
                      "or more of their samples flagged as dropouts held).") if target.tracked else
                     (f"AUROC of {target.output} over windows with {target.truth} (1: {target.what.split(' (')[0]} "
                      "classes), each window on its own; F1 (weighted) and accuracy at logit 0 (p 0.5); AUROC by "
                      "subject over the subjects whose windows hold both classes." if target.kind == "class" else
                      f"MAE of {target.output} ({target.unit}) over windows with {target.truth}, each window on its "
                      "own (no tracker)." if target.scored else not_measured + "."),
                     "Instruction counts are executed instructions (QEMU plugin on the MCU, callgrind on the "
                     "host), never cycles.",
                     *(["Latency (host, one thread): each runtime's call per window from Python; c_window's timed "
                        "inside its C process (the window's network call + the front end's time per window), "
                        "without that call overhead."] if "c_window" in lat else []),
                     "bit-exact %: windows whose int8 outputs equal the reference's exactly (double rounding "
                     "vs TFLite Micro, single rounding vs Brevitas).",
                     (f"fidelity: decoded heart rate (before the tracker) against the reference runtime's, over "
                      "the windows both ran: mean / max |difference| (BPM) and % of windows with the same HR "
                      f"(within {SAME_HR_BPM:g} BPM).") if target.tracked else
                     (f"fidelity: {target.output} against the reference runtime's, over the windows both ran: mean "
                      f"/ max |difference| ({target.unit}) and % of windows within {SAME_HR_BPM:g} {target.unit}.")],
           "series": {"records": [{"record_id": rp.record_id, "subject": str(rec.subject), "dataset": str(rec.dataset),
                                   "t0": rp.t0.tolist(), "truth": truth[a:b].tolist(), "condition": cond[a:b].tolist()}
                                  for rec, rp, a, b in zip(recs, reps, bounds[:-1], bounds[1:])],
                      "pred": series_pred, "pred_tracked": series_trk, "latency_ms": lat}}
    res["labelled"] = labelled
    if not labelled:
        res["accuracy"] = not_measured
        if target.scored:
            res["notes"].insert(0, not_measured + "; cost and fidelity only.")
    else:
        res["accuracy"] = "measured"
    if skipped:
        from sqtool.firmware_bench.report import left_out_note
        res["notes"].append(left_out_note(skipped))
    from sqtool.data.preprocess import whole_hz_note
    from sqtool.data.record import resampled_note
    for note in (resampled_note((r, list(spec.channels)) for r in recs), whole_hz_note(recs)):
        if note:                                            # acc slower than the PPG; a clock off its whole-Hz rate
            res["notes"].append(note)
            item(note)
    res["primary"] = primary_runtime(rows, PRIMARY_ORDER, labelled)
    res["seen_in_training"], warns = provenance_warnings(art, set(subj[np.isfinite(truth)].tolist()),
                                                         set(subj.tolist()))
    for warn in reversed(warns):                              # in the table and the notes, as the spectral bench
        res["notes"].insert(0, warn)
        also_on_stderr(warn)                                  # stdout has it in the tables: here once, 2>&1 or not
    if trivial is not None:
        res["trivial"], trivial_pred = trivial
        res["skill"] = skill_vs(target, md, res, hrs, trivial_pred, bl_raw, truth, subj)
        res["notes"].append(res["skill"]["line"])
    elif target.scored and not target.tracked and labelled:
        res["skill"] = {"line": f"skill: not measured (metadata.json has no target_mean for {target.output}: no "
                                "trivial predictor)"}
        res["notes"].append(res["skill"]["line"])
    held = ~np.isin(subj, list(res["seen_in_training"] or ()))
    for r in rows:                          # a class's AUROC over the held-out subjects' windows (its --floor auroc)
        if target.kind == "class" and r["runtime"] in hrs:
            r["metrics_held_out"] = class_metrics(np.where(held, hrs[r["runtime"]], np.nan), truth)
    res["floor"] = floor_res = check_floors(rows, floors, res["seen_in_training"], cfg.floor_on_seen)
    for s in res["series"]["records"]:
        s["key"] = subject_key(s.get("dataset", ""), s["subject"])
    res["plots"] = write_report(run_dir, res)
    finish_bench(res, {"runtimes": {r["runtime"]: {k: r.get(k) for k in
                                                   ("status", "metrics", "metrics_tracked", "exact_pct", "fidelity",
                                                    "instructions_per_inference", "flash_bytes", "ram_bytes",
                                                    "latency_ms_p50", "latency_ms_p99")}
                                    for r in rows},
                       "baseline": base.get("metrics"), "labelled": labelled, "accuracy": res["accuracy"],
                       "floor": floor_res})
    return res
