"""`sqtool export --model RUN --target onnx,tflite,c`: write each artifact, run it, compare, report.

    sqtool export --model runs/quantize/<run> --target onnx,tflite,c --out exports/xs
    sqtool export --model runs/quantize/<run> --target c --explain      # + per-layer LSB table

The export dir (shared contract): metadata.json, model_float.onnx, model_int8.onnx,
model_float.tflite, model_int8.tflite, c/sq_model.h + c/sq_model.c, heldout.npz (copied),
export_report.json/.md, config.yaml, MODEL_CARD.md and INTEGRATION.md (what must run around the network, every model
and target: a spectral model's front end and decoder, `kit.write_docs`, from metadata.json's frontend / gating /
decoder_spec; a time-domain model's preprocessing and outputs, `time_docs.write_time_docs`), and last manifest.json (core.manifest: every file written, the source
checkpoints and the parity verdict, by relative path and sha256; what bench and predict read). A
student_int8 checkpoint gives float AND int8 artifacts (the float ones from the run's student_float.pt); a float checkpoint (teacher, float student) gives float
artifacts only. Spectral models (model_cfg family "spec_cnn", `models.spectral.SpecNet`) export the
same way from the same checkpoint kinds; their inputs are int8 spectrum codes / 127 (N, C, F): the
run's heldout.npz when it has one (a final fit, which holds none out: its parity.npz of training windows), plus
`--random-windows` random code windows (32 when there is neither), so parity never depends on having held-out
spectra. Every artifact is checked against its source before the command reports success; a
missed tolerance keeps the report, writes `<artifact>.FAILED` next to the artifact, and exits with code 3.

The export folder is what ships. `--subjects` (export.subjects) decides how it names the training and held-out
subjects (card, metadata, every artifact's metadata, heldout.npz's groups): pseudonyms for a dataset of your own by
default. No file in it holds an absolute path or a path leaving it: config.yaml's paths are rewritten relative to
the folder (`shipped_config`; a path outside it: its name only), the manifest names source checkpoints by file name
and sha256 (core.manifest).
"""
from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path, PurePath

from sqtool.core import (SqtoolError, add_config_args, stream_filter, atomic_save_npz, atomic_write_text, resolve_config,
                         write_metrics)
from sqtool.core.model_cfg import device_rate_args
from sqtool.core.progress import bar, item, size_text
from sqtool.core.runs import (FORCE_HELP, check_out_dir, check_required, releases_run_dirs, shell_command,
                               torch_threads)
from sqtool.export.subjects import PSEUDONYM_FORM, PSEUDONYM_IDS, pseudonymised, renamed, subject_names

TARGETS = ("onnx", "tflite", "c")


@dataclass
class ExportConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"max_windows": {"min": 0}, "random_windows": {"min": -1}, "seed": {"min": 0},
        "tol_float_l2": {"min": 0}, "tol_lsb": {"min": 0}, "tol_mae_bpm": {"min": 0},
        "min_single_exact_pct": {"min": 0, "max": 100}, "device_fs": {"min": 0}, "device_acc_fs": {"min": 0},
        "ppg_sensors": {"min": 0}}
    model: str = field(default="", metadata={"help": "what to export: a `sqtool quantize` run folder (its model.pt) "
                                                     "or a checkpoint file", "required": True, "metavar": "RUN", "path": True})
    target: list[str] = field(default_factory=lambda: list(TARGETS),
                              metadata={"help": "comma-separated: onnx, tflite, c"})
    precision: str = field(default="auto", metadata={"help": "auto (int8 and float when the checkpoint allows) | "
                                                             "float | int8 | float,int8"})
    out: str | None = field(default=None, metadata={"help": "output dir (default: runs/export/<stamp>-<model>)",
                                                    "metavar": "DIR"})
    force: bool = field(default=False, metadata={"help": FORCE_HELP})
    progress: bool = field(default=True, metadata={"help": "show a progress bar over the targets on stderr (the "
                                                           "one line per artifact is always printed)"})
    heldout: str | None = field(default=None, metadata={"help": "held-out windows .npz for the parity checks "
                                                                "(default: RUN/heldout.npz)", "path": True})
    max_windows: int = field(default=0, metadata={"help": "use at most this many held-out windows (0 = all)"})
    random_windows: int = field(default=-1, metadata={
        "help": "spectral models: random int8 code windows added to the parity set (-1 = 32 without a held-out "
                "set, 0 with one)"})
    seed: int = field(default=0, metadata={"help": "seed of the random parity windows"})
    explain: bool = field(default=False, metadata={"help": "print per-layer LSB differences (ref vs Brevitas vs TFLite)"})
    tol_float_l2: float = field(default=1e-4, metadata={"help": "float artifacts: max L2 relative error"})
    tol_lsb: int = field(default=3, metadata={"help": "int8 artifacts: max |LSB| difference vs Brevitas at the output"})
    tol_mae_bpm: float = field(default=0.1, metadata={"help": "int8/float artifacts: max |HR MAE delta| (BPM)"})
    min_single_exact_pct: float | None = field(default=None, metadata={
        "help": "if set, C single rounding must equal Brevitas on at least this percentage of windows (Brevitas's own "
                "float32 arithmetic flips ~1e-5 of elements that lie within 1e-4 LSB of a rounding tie; "
                "default: not checked)"})
    cc: str = field(default="gcc", metadata={"help": "host C compiler for the C parity check"})
    device_fs: float = field(default=0.0, metadata={
        "help": "C target: the device sampling rate in Hz. Spectral models: the pipeline is built for it (0 = the "
                "model config's frontend.fs_in, 125 Hz for the registry's models whatever rate the training recordings "
                "had; the export says which it took). Time-domain models: adds c/sq_window.{h,c}, the preprocessing "
                "(resampling, band-pass, normalisation, int8 input) from that rate in C, for a heart-rate model "
                "c/sq_tracker.{h,c} (the tracker predict and bench run), and its kit (example/, Makefile, "
                "CMakeLists.txt, test_vectors/) (0 = none: the network only)"})
    device_filter: str = field(default="", metadata={
        "help": "time-domain models, C target with --device-fs: the band-pass of c/sq_window.c: window (zero phase over "
                "the window and its context: a few seconds of look-ahead, more RAM) | causal (a running filter, no "
                "look-ahead, little RAM) (default: the one the model was trained with, its band_phase; train "
                "finetune --band-phase causal trains for the causal one)"})
    device_acc_fs: float = field(default=0.0, metadata={
        "help": "spectral models reading the accelerometer, C target: its rate in Hz when it differs from the device "
                "rate (--device-fs): the kit adds c/<prefix>_acc_resampler.{h,c}, an integer filter bringing it to "
                "the device rate before the push (0 = the same rate, none)"})
    prefix: str = field(default="sq", metadata={
        "help": "spectral models, C target: symbol prefix of the pipeline sources (two prefixes link into one image)"})
    subjects: str = field(default="auto", metadata={
        "help": "how the card and the metadata of every artifact name the training / held-out subjects: names (their "
                f"ids: dataset.yaml subject values or file names), pseudonyms ({PSEUDONYM_FORM}), auto = names for "
                "sqtool's built-in public datasets, pseudonyms for any other"})
    ppg_sensors: int = field(default=0, metadata={
        "help": "spectral models, C target: PPG sensors on the device, 1 or 2 (their spectra are averaged into the "
                "ppg channel; compile-time SQ_FE_N_PPG). 0 = as many as the model's frontend ppg_sensors lists "
                "(as many as its training recordings had: 2 beside SP Cup / TROIKA, 1 for one-sensor data)"})


def register(sub, name: str, helptext: str) -> None:
    p = sub.add_parser(name, help=helptext, description=__doc__.split("\n\n")[0])
    add_config_args(p, ExportConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = resolve_config(ExportConfig, args)
    check_required("export", cfg)                   # a usage error (exit 2), before anything is read
    res = export(cfg)
    print(res["summary"])
    if res.get("explain_text"):
        print(res["explain_text"])
    print(next_step(res))
    return 0 if not res["failed"] else 3


def next_step(res: dict) -> str:
    """The last lines of `sqtool export`: where the report is and the command to run next."""
    out = Path(res["out"])
    lines = [f"report: {out / 'export_report.md'}"]
    if res["failed"]:
        lines.append(f"next: read {out / 'export_report.md'}; re-run with --explain for per-layer LSB differences")
    elif (res.get("metadata") or {}).get("task") == "hr":
        seen = (res["metadata"].get("training_data") or {})
        if seen.get("datasets", ["synthetic"]) == ["synthetic"]:
            lines.append(f"next: {shell_command('bench', '--model', out, '--data', 'synthetic')}   (or --data: "
                         "recordings with HR truth)")
        else:                                                  # a real model: score it on recordings it did not see
            held = in_house(seen.get("heldout_subjects") or [], res.get("names") or {})
            lines.append(f"next: {shell_command('bench', '--model', out, '--data', 'RECORDINGS')}   (recordings with HR truth"
                         + (f"; held out from its training: {', '.join(held)})" if held else ")"))
    elif (out / "c" / "sq_window.c").is_file():        # a time-domain model with its front end in C
        kit = (f"; check the port with the kit: make -C {shlex.quote(str(out))} check selftest"
               if (out / "Makefile").is_file() and (out / "test_vectors" / "expected.txt").is_file() else "")
        lines.append(f"next: build {out / 'c'}/*.c into the firmware (device samples -> sq_window_push -> "
                     f"sq_model_run: the loop in sq_window.h{kit}), then check both on your recordings: "
                     f"{shell_command('bench', '--model', out, '--data', 'RECORDINGS', '--runtime', 'c_window,c_host')}")
    elif (out / "c").is_dir():
        lines.append(f"next: build {out / 'c'}/*.c into the firmware (API in sq_model.h)"
                     + (f"; the preprocessing it needs before it: {out / 'INTEGRATION.md'}"
                        if (out / "INTEGRATION.md").is_file() else ""))
    elif (out / "INTEGRATION.md").is_file():           # a time-domain export without C: an app runs it
        lines.append(f"next: run it as {out / 'INTEGRATION.md'} says, and check your implementation against "
                     f"{shell_command('predict', '--model', out, '--data', 'RECORDINGS')}")
    return "\n".join(lines)


def in_house(keys: list[str], names: dict[str, str]) -> list[str]:
    """Subject `keys` as the export's files write them, each pseudonym with the id it stands for (`names`: {id:
    pseudonym}), for the user's own terminal only: 'my_watch:s6 (my_watch:subject-05 in the export)'. The
    folder keeps the pseudonyms; the terminal that ran the export is in-house, where the ids are (its source run)."""
    ids: dict[str, str] = {}
    for k, v in names.items():                       # "dataset:id" over a bare "id" of the same pseudonym
        if ":" in k or v not in ids:
            ids[v] = k
    return [f"{ids[k]} ({k} in the export)" if k in ids else k for k in keys]


def artifact_line(out: Path, f: str, rows: list[dict]) -> str:
    """`export: <path>  <size>  parity ok (ONNX float: L2 rel err 3.1e-07)`: one line per artifact."""
    p = Path(out) / f
    size = size_text(p.stat().st_size) if p.is_file() else "-"
    mine = [r for r in rows if r.get("file") == f]
    if not mine:
        verdict = ("written (checked with the C build)" if f.endswith(".h") and "_window" not in f else
                   "written (checked against the stream by sqtool bench, runtime c_window)" if "_window" in f else
                   "written")
    else:
        bad = [r for r in mine if r["status"] != "ok"]
        worst = ", ".join((f"{r['artifact']}: max {r['max_lsb']} LSB" if "max_lsb" in r
                           else f"{r['artifact']}: L2 rel err {r['l2_rel_err']:.1e}") for r in (bad or mine))
        verdict = f"parity {'FAILED' if bad else 'ok'} ({worst})"
    return f"export: {p}  {size}  {verdict}"


# ----------------------------------------------------------------------------- orchestration

def device_ppg(cfg: ExportConfig, model_cfg: dict) -> int:
    """--ppg-sensors, or (0) as many as the model's frontend ppg_sensors lists; a count the model cannot
    take is refused by frontend_config."""
    from sqtool.data.hr_spectra import ppg_sensors
    n = int(cfg.ppg_sensors)
    if n < 0:
        raise SqtoolError(f"--ppg-sensors {n}: must be 1 or 2 (0 = the model's ppg_sensors count)")
    return n or len(ppg_sensors(model_cfg))


def ppg_sensors_note(sensors: list[str], recorded: int | None, held_ds: list[str]) -> str:
    """The note of a default C export whose kit reads every one of the model's PPG `sensors` (over one): '' when
    the source run's own recordings (quantize's recorded_rates "ppg_sensors": the device that made them) have as
    many; --ppg-sensors N when they have fewer (the model read more beside another dataset); where the run did not
    record one count (an older run, recordings that differ), said as a condition on the device."""
    if recorded is not None and recorded >= len(sensors):
        return ""
    head = (f"the C kit reads {len(sensors)} PPG sensors per sample ({', '.join(sensors)}: the most a training "
            "recording had)")
    if recorded is not None:
        return (f"{head}; the source run's own recordings{' (' + ', '.join(held_ds) + ')' if held_ds else ''} have "
                f"{recorded}: a device like theirs needs --ppg-sensors {recorded}")
    return f"{head}: if your device has one PPG sensor, export with --ppg-sensors 1"


SHIPPED_PATHS_NOTE = ("paths are relative to this export folder; one outside it is given by its file or folder name "
                      "only (the export folder is what ships: no home folder, user name or run layout in it)")


def shipped_path(value, out: Path):
    """A path written into the export folder: relative to it when inside it ("." for the folder), else its last
    part only; a value that names no path (a program name like gcc, a number, '') as it is. Lists element-wise."""
    if isinstance(value, (list, tuple)):
        return [shipped_path(v, out) for v in value]
    if not isinstance(value, str) or not value:
        return value
    p = Path(value).expanduser()
    if not (p.is_absolute() or "/" in value or "\\" in value or p.exists()):
        return value
    try:
        rel = p.resolve().relative_to(out.resolve())
        return rel.as_posix() or "."
    except (OSError, ValueError):
        return PurePath(value.replace("\\", "/")).name or "."


def shipped_config(out: Path, saved: dict, **resolved) -> None:
    """Rewrite the export's config.yaml in its shipped form in one atomic write, without reading it back: `saved`
    (the record core.runs.save_config wrote and returned: the run folder and its inputs as absolute paths, as every
    in-house run keeps them) with what the export resolved added to its `resolved:` section (what
    core.runs.save_resolved would add), every path a `shipped_path`, and a note saying so."""
    import yaml
    d = {**saved, "resolved": {**(saved.get("resolved") or {}), **resolved}}
    d["source"] = shipped_path(d.get("source"), out)
    for section in ("config", "resolved"):
        if d.get(section):
            d[section] = {k: v if k in ("target", "targets") else shipped_path(v, out) for k, v in d[section].items()}
    d["paths_note"] = SHIPPED_PATHS_NOTE
    atomic_write_text(out / "config.yaml", yaml.safe_dump(d, sort_keys=False))


def source_metrics(path: Path) -> dict:
    """The metrics.json beside the source checkpoint `path` (its run's), or {} where there is none to read."""
    from sqtool.core.io import read_json
    try:
        m = read_json(Path(path).parent / "metrics.json")
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def source_subjects(ckpt: dict, path: Path) -> list[str]:
    """Every subject key the export may write (card, metadata, heldout.npz): the checkpoint's training and held-out
    subjects (a quantize run's), a fine-tune's held-out ones (its train_cfg) and the subjects its run scored out of
    fold (metrics.json per_subject: a teacher's checkpoint lists none of its own), so that each gets its pseudonym."""
    keys = [*(ckpt.get("train_subjects") or ()), *(ckpt.get("heldout_subjects") or ()),
            *((ckpt.get("train_cfg") or {}).get("heldout_subjects") or ())]
    m = source_metrics(path)
    if not m:
        return keys
    rows = m.get("per_subject")
    keys += [str(r["subject"]) for r in rows or [] if isinstance(r, dict) and "subject" in r]
    keys += [str(h) for h in (m.get("heldout_subjects") or [])]
    ds = m.get("dataset")                                        # a time-domain fine-tune: bare ids of one dataset,
    return keys + ([f"{ds}:{k}" for k in keys if ":" not in str(k)] if ds else [])   # named as its keys are


def classic_baseline_of(path: Path) -> dict | None:
    """The classic baseline's settings the source quantize run chose on its training subjects (its metrics.json
    classic_baseline: notch_bpm, ppg_sensors), for metadata.json: bench scores the baseline with them, so its
    held-out comparison is against the baseline the run's report and the model card quote. None where the run
    recorded none (a final fit or fine-tune, a run without raw recordings, a checkpoint outside its run)."""
    cb = source_metrics(path).get("classic_baseline")
    if not isinstance(cb, dict) or cb.get("notch_bpm") is None or not cb.get("ppg_sensors"):
        return None
    return {"notch_bpm": float(cb["notch_bpm"]), "ppg_sensors": [str(s) for s in cb["ppg_sensors"]],
            "chosen_on": "the training subjects (sqtool quantize, data.hr_baseline.NestedBaseline)"}


def device_rate_notes(cfg: ExportConfig, mcfg: dict, targets: list[str], recorded: list[str]) -> list[str]:
    """The `note:` lines on the rates a spectral export is built for. Without --device-fs: the model config's device
    rate (the front end resamples any rate), with the source run's recorded rates where they differ (`recorded`:
    `core.model_cfg.device_rate_args` of its metrics.json, e.g. ["--device-fs", "64", "--device-acc-fs", "32"]).
    With --device-fs but no --device-acc-fs, a C kit takes one accelerometer sample per PPG sample: where the
    recordings' accelerometer ran at another rate, one line says the option that adds the kit's resampler for it."""
    from sqtool.core.model_cfg import device_fs
    acc = recorded[recorded.index("--device-acc-fs") + 1] if "--device-acc-fs" in recorded else None
    if not cfg.device_fs:
        yours = f" (the source run's recordings: {' '.join(recorded)})" if recorded else ""
        return [f"built for a {device_fs(mcfg):g} Hz device (the model config's frontend.fs_in; the network reads "
                f"spectra, so the training recordings' rate does not set it): --device-fs HZ builds for yours{yours}"]
    if acc and "c" in targets and not cfg.device_acc_fs and len(mcfg.get("channels") or []) > 1:
        return [f"the C kit takes one accelerometer sample per PPG sample ({cfg.device_fs:g} Hz); the source run's "
                f"recordings had their accelerometer at {acc} Hz: --device-acc-fs {acc} adds the kit's resampler "
                "for it (predict and bench then stream your files through it)"]
    return []


def copy_heldout(src: Path, dst: Path, names: dict[str, str]) -> None:
    """The parity windows' heldout.npz into the export: as it is when every subject is named; else its `groups`
    (one subject key per window) written as pseudonyms and its `record_ids` (recording names) left out."""
    import numpy as np
    if not names:
        shutil.copyfile(src, dst)
        return
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "record_ids"}
    if "groups" in arrays:
        arrays["groups"] = np.asarray(renamed([str(g) for g in arrays["groups"]], names))
    atomic_save_npz(dst, **arrays)


# The int8 rows that round twice (requantize, then the bias / rescale step: TFLite's reference kernels, TFLM, the C
# kit built with SQ_SINGLE_ROUNDING 0) and the ones that round once, as Brevitas QAT does.
DOUBLE_ROUNDING = ("numpy reference (double rounding)", "C double rounding (host gcc)",
                   "TFLite int8 (LiteRT reference kernels)", "TFLite Micro")
SINGLE_ROUNDING = ("numpy reference (single rounding)", "C single rounding (host gcc)")


def double_rounding_note(rows: list[dict], failed: list[str], tol_mae: float) -> str:
    """The sentence a PARITY FAILED line adds when only double-rounding rows failed, on their LSB tolerance alone
    (each equals its numpy twin, its metric delta within `tol_mae`), and every single-rounding row is exact: what
    differs, by how many LSB on this model, which runtimes match, and the --tol-lsb that accepts it."""
    single = [r for r in rows if r["artifact"] in SINGLE_ROUNDING]
    bad = [r for r in rows if r["artifact"] in failed]
    if not failed or not set(failed) <= set(DOUBLE_ROUNDING) or not single \
            or any(r.get("max_lsb") != 0 for r in single) \
            or any(r.get("exact_vs_pct", 100.0) != 100.0 or abs(r.get("delta_mae_bpm") or 0.0) > tol_mae for r in bad):
        return ""
    n = max(int(r["max_lsb"]) for r in bad)
    return (f". These runtimes round twice (TFLite's reference kernels, TFLM, the C kit's SQ_SINGLE_ROUNDING 0) and "
            f"differ from the QAT model's single rounding by up to {n} LSB on this model; the C kit with "
            f"SQ_SINGLE_ROUNDING 1 and onnxruntime match it; `--tol-lsb {n}` accepts it")


def _write_kit(cfg: ExportConfig, out: Path, ckpt: dict, graph, md: dict, inp: dict, rows: list, artifacts: dict,
               extra: list) -> None:
    """Spectral models: the whole pipeline (front end + network + decoder) and its integration kit next to
    the network's C (sqtool.export.kit), checked on the host against the Python integer reference."""
    from sqtool.export.kit import check_kit, write_kit
    info = write_kit(out, ckpt["model_cfg"], graph, md, fs_in=cfg.device_fs or None, prefix=cfg.prefix,
                     run_dir=Path(inp["path"]).parent, n_ppg=device_ppg(cfg, ckpt["model_cfg"]), names=inp["names"],
                     acc_fs=cfg.device_acc_fs or None)
    if cfg.prefix != "sq":                     # the kit's network is <prefix>_model.*: drop the sq_ copy
        for f in ("c/sq_model.h", "c/sq_model.c"):
            (out / f).unlink(missing_ok=True)
            artifacts.pop(f, None)
        for r in rows:                         # the network's C rows were checked on the sq_ copy: name what ships
            if r.get("file") == "c/sq_model.c":
                r["file"] = f"c/{cfg.prefix}_model.c (checked as c/sq_model.c: the same code, its symbols renamed)"
    chk = check_kit(out)
    src = f"c/{cfg.prefix}_pipeline.c"
    rows.append({"artifact": "C pipeline (kit example, host, chunks " + " | ".join(chk["chunkings"]) + ")",
                 "file": src, "compared_with": "PipelineRef (Python integer reference)", "n": chk["n"],
                 "max_lsb": chk.get("max_abs_diff"), "exact_windows_pct": min(chk["chunkings"].values(), default=0.0),
                 "tolerance": "every result field equal, every chunking" + (f" ({chk['error']})" if chk["error"] else ""),
                 "status": "ok" if chk["ok"] else "FAILED"})
    for p in info["files"]:
        artifacts[str(p.relative_to(out))] = {}
    item(artifact_line(out, src, rows))
    fe = info["fe_cfg"]
    extra.append(f"C pipeline: device rate {fe.fs_in:g} Hz, {fe.n_ppg} PPG sensor(s), prefix {cfg.prefix}, "
                 f"{info['vectors']['results']} "
                 f"test-vector results ({info['vectors']['invalid_windows']} not scored), kit in this folder")


def _load_inputs(cfg: ExportConfig):
    import numpy as np
    from sqtool.core.checkpoint import file_sha256, load_checkpoint
    if not cfg.model:
        raise SqtoolError("export: --model RUN is required (a quantize run folder or checkpoint) "
                          "(see sqtool export --help)", code=2)
    targets = [t.strip().lower() for t in cfg.target if t.strip()]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise SqtoolError(f"export: unknown target {', '.join(bad) or '(none)'} (known: {', '.join(TARGETS)})")
    if "c" in targets and shutil.which(cfg.cc) is None:       # before any folder: the C parity check compiles
        raise SqtoolError(f"--cc {cfg.cc}: no such compiler (the C target's parity check builds the model with it)")
    ckpt = load_checkpoint(cfg.model, finished=True)      # killed after model.pt: no held-out check yet, refused
    path = Path(ckpt["path"])
    names = subject_names(source_subjects(ckpt, path), cfg.subjects)
    from sqtool.export.metadata import check_model_cfg
    check_model_cfg(ckpt["model_cfg"], f"checkpoint {path}")
    kind = ckpt["kind"]
    if kind == "teacher_pretrain" or ckpt["model_cfg"].get("task") == "pretrain":    # an encoder: no output to ship
        task = "hr" if (ckpt["model_cfg"].get("frontend") or {}).get("type") == "spectrum" else "TASK"
        raise SqtoolError(f"checkpoint {path} is a pretraining run (a SimSiam encoder, no task output): fine-tune it "
                          f"first ({shell_command('train', 'finetune', '--task', task, '--init', path.parent, '--data', 'DATA')}"
                          ", then sqtool quantize) and export that")
    from sqtool.models import shipped_as
    from sqtool.models.af_trees import is_beat_trees
    from sqtool.models.rr_spec import check_frontend, is_resp_spec
    if is_resp_spec(ckpt["model_cfg"]):
        check_frontend(ckpt["model_cfg"], f"checkpoint {path}")
    shipped = shipped_as(ckpt["model_cfg"])            # rr_spec, af_beats: the float targets it ships as, only
    if shipped and (set(targets) - set(shipped.targets.split(",")) or "int8" in cfg.precision):
        raise SqtoolError(f"checkpoint {path} is {ckpt['model_cfg']['name']}, {shipped.what} with no int8 twin and no "
                          f"C front end: export it with --target {shipped.targets} --precision float (INTEGRATION.md "
                          "says what must run around it)")
    prec = {p.strip() for p in cfg.precision.split(",") if p.strip()}
    if not prec or not prec <= {"auto", "float", "int8"}:
        raise SqtoolError(f"export: --precision {cfg.precision!r}: use auto, float, int8 or float,int8")
    is_int8 = kind == "student_int8"
    if "int8" in prec and not is_int8:
        raise SqtoolError(f"checkpoint {path} is a {kind} checkpoint: int8 targets need a student_int8 "
                          "checkpoint (run `sqtool quantize`); use --precision float for float targets")
    if "c" in targets and not is_int8:
        raise SqtoolError(f"checkpoint {path} is a {kind} checkpoint: the C target is int8 only and needs a "
                          "student_int8 checkpoint (run `sqtool quantize`)")
    want_int8 = is_int8 and (prec & {"auto", "int8"})
    want_float = bool(prec & {"auto", "float"})
    if "c" in targets and not want_int8:
        raise SqtoolError("the C target is int8 only: add int8 to --precision (or use auto)")
    float_ckpt = ckpt if not is_int8 else None
    if is_int8 and want_float:
        fpath = path.parent / "student_float.pt"
        if fpath.is_file():
            float_ckpt = load_checkpoint(fpath, expect_kind="student_float")
        elif "float" in prec:
            raise SqtoolError(f"float targets of an int8 run need {fpath} (the float student), not found")
    mcfg = ckpt["model_cfg"]
    spectral = mcfg.get("family") == SPECTRAL_FAMILY
    c_expect, t_expect = expected_input_shape(mcfg)
    hpath = Path(cfg.heldout) if cfg.heldout else path.parent / "heldout.npz"
    notes = []
    if not cfg.heldout and not hpath.is_file() and (path.parent / "parity.npz").is_file():    # a final fit's
        hpath = path.parent / "parity.npz"
        notes.append("parity windows: parity.npz, training windows of the run (a final fit holds no subject out; a "
                     "fine-tune keeps the held-out ones for quantize)")
    x = y = None
    if hpath.is_file():
        try:
            with np.load(hpath, allow_pickle=False) as z:
                x = np.asarray(z["x"], np.float64 if is_beat_trees(mcfg) else np.float32)   # trees: features f64
                y = np.asarray(z["y"], np.float32) if "y" in z.files else None
        except Exception as e:  # noqa: BLE001 - missing key, corrupt archive
            raise SqtoolError(f"held-out windows {hpath} unreadable or lacking 'x' ({type(e).__name__})")
        if x.ndim != 3 or x.shape[1:] != (c_expect, t_expect) or len(x) == 0:
            raise SqtoolError(f"held-out windows {hpath} have shape {x.shape}; the model expects (N, {c_expect}, "
                              f"{t_expect})")
        if np.isinf(x).any() or (np.isnan(x).any() and not is_beat_trees(mcfg)):   # a feature may be undefined
            raise SqtoolError(f"held-out windows {hpath} contain NaN or Inf")
        if cfg.max_windows and len(x) > cfg.max_windows:
            x = x[:cfg.max_windows]
            y = None if y is None else y[:cfg.max_windows]
    elif cfg.heldout or not spectral:
        raise SqtoolError(f"held-out windows {hpath} not found: parity needs them (`sqtool quantize` writes "
                          "them into its run folder: export a quantize run, or pass --heldout FILE.npz, e.g. the "
                          "heldout.npz of a quantize run of the same model)")
    else:
        hpath = None
    n_random = cfg.random_windows if cfg.random_windows >= 0 else (0 if x is not None else 32)
    if n_random and not spectral:
        raise SqtoolError("--random-windows: random parity windows are for spectral models (int8 codes / 127) only")
    if n_random:
        xr = random_code_windows(n_random, c_expect, t_expect, cfg.seed)
        notes.append(f"{n_random} random int8 code windows (seed {cfg.seed}) in the parity set")
        if x is None:
            x, y = xr, None
        else:
            yr = None if y is None else np.full((n_random,) + y.shape[1:], np.nan, np.float32)
            x, y = np.concatenate([x, xr]), (None if y is None else np.concatenate([y, yr]))
    if want_float and float_ckpt is None:
        notes.append(f"float artifacts skipped: {path.parent / 'student_float.pt'} not found")
    if is_int8 is False and "auto" in prec:
        from sqtool.models import shipped_as
        shipped = shipped_as(mcfg)
        notes.append(f"{kind} checkpoint: float artifacts only ("
                     + (f"{mcfg.get('name')} ships as it is: {shipped.targets}, no int8" if shipped else
                        "int8 needs a student_int8 from `sqtool quantize`") + ")")
    from sqtool.core.checkpoint import datasets_of
    from sqtool.data.hr_spectra import ppg_sensors
    sensors = ppg_sensors(mcfg) if spectral else []
    if "c" in targets and int(cfg.ppg_sensors) == 0 and len(sensors) > 1:   # the default: the model's count
        if note := ppg_sensors_note(sensors, (source_metrics(path).get("recorded_rates") or {}).get("ppg_sensors"),
                                    datasets_of(ckpt.get("heldout_subjects"))):
            notes.append(note)
    if spectral:
        notes += device_rate_notes(cfg, mcfg, targets, device_rate_args(source_metrics(path)))
    if cfg.device_acc_fs:                   # refused before any folder: the kit could not honour it
        if not spectral or "c" not in targets or len(mcfg.get("channels") or []) < 2:
            raise SqtoolError(f"--device-acc-fs {cfg.device_acc_fs:g}: for the C target of a spectral model that reads "
                              "the accelerometer (it adds the kit's accelerometer resampler)")
        top_bpm = max((mcfg.get("frontend") or {}).get("bins_bpm") or [0.0])
        if cfg.device_acc_fs <= 2 * top_bpm / 60.0:           # the network reads motion up to the grid's top bin
            raise SqtoolError(f"--device-acc-fs {cfg.device_acc_fs:g}: an accelerometer at {cfg.device_acc_fs:g} Hz "
                              f"holds motion up to {cfg.device_acc_fs / 2:g} Hz only, under the top of the model's "
                              f"heart-rate grid ({top_bpm:g} BPM = {top_bpm / 60:.3g} Hz), where the network compares "
                              f"motion with the pulse: sample it faster than {2 * top_bpm / 60:.3g} Hz")
        from sqtool.data.acc_resampler import design_acc
        from sqtool.core.model_cfg import device_fs
        design_acc(cfg.device_acc_fs, cfg.device_fs or device_fs(mcfg))            # an awkward ratio: one line
    if cfg.prefix != "sq" and (not spectral or "c" not in targets):   # refused: config.yaml never records one unapplied
        raise SqtoolError(f"--prefix {cfg.prefix}: for the C target of a spectral model (its pipeline's symbol prefix); "
                          + ("a time-domain model's C keeps sq_*" if not spectral else "this export writes no C"))
    if spectral and cfg.device_fs:                           # the front end resamples down, never up
        from sqtool.export.pipeline import frontend_config
        net_fs = float(frontend_config(mcfg).fs)
        if cfg.device_fs < net_fs:
            raise SqtoolError(f"--device-fs {cfg.device_fs:g}: below the {net_fs:g} Hz the network reads; the "
                              f"device's PPG must be sampled at {net_fs:g} Hz or faster (the front end resamples "
                              "down, never up)")
    if cfg.device_fs and not spectral and "c" in targets:      # refused before any folder, in one line
        from sqtool.export.c_window import FILTERS, check_device_rate
        check_device_rate(mcfg, cfg.device_fs)
        if cfg.device_filter and cfg.device_filter not in FILTERS:
            raise SqtoolError(f"--device-filter {cfg.device_filter}: choose one of {', '.join(FILTERS)}")
        trained = stream_filter(mcfg)
        cfg.device_filter = cfg.device_filter or trained
        if cfg.device_filter != trained:
            notes.append(f"--device-filter {cfg.device_filter}: the network was trained with the {trained} band-pass "
                         f"(band_phase {mcfg.get('band_phase', 'zero')}); the C front end feeds it another input, with "
                         f"another phase (sqtool predict --filter {cfg.device_filter} measures what it costs; train "
                         f"finetune --band-phase {'causal' if cfg.device_filter == 'causal' else 'zero'} trains for it)")
    if cfg.device_fs and not spectral and "c" not in targets:   # a note: a script passing it for every model runs
        notes.append(f"--device-fs {cfg.device_fs:g} builds the C front end (c/sq_window.c) of the C target, which "
                     "this export does not write (--target c)")
    if names:
        notes.append(f"subjects of {', '.join(pseudonymised(names))} written as pseudonyms ({PSEUDONYM_FORM}; "
                     f"--subjects {cfg.subjects}; source run {path}): {PSEUDONYM_IDS}")
    return dict(path=path, ckpt=ckpt, sha=file_sha256(path), names=names, targets=targets, want_int8=bool(want_int8),
                notes=notes, want_float=want_float and float_ckpt is not None, float_ckpt=float_ckpt, hpath=hpath,
                x=x, y=y)


def _teacher_of(ckpt: dict, notes: list[str]) -> Path | None:
    """The teacher a compress checkpoint names (teacher_path / teacher), when it is still there and, if the
    checkpoint recorded its sha256, still the same file; else None with a note."""
    from sqtool.core.checkpoint import file_sha256
    t = ckpt.get("teacher_path") or ckpt.get("teacher")
    if not isinstance(t, str) or not t:
        return None
    p = Path(t)
    if p.is_dir():
        p = p / "model.pt"
    if not p.is_file():
        notes.append(f"teacher {t} (named by {ckpt['path']}) not found: the manifest records no teacher")
        return None
    want = ckpt.get("teacher_sha256")
    if want and file_sha256(p) != want:
        notes.append(f"teacher {p} changed since {ckpt['path']} was made: the manifest records no teacher")
        return None
    return p


def _sources(inp: dict) -> dict[str, Path | None]:
    """The checkpoints an export came from, for its manifest: the compress run's model.pt (student_int8) and
    student_float.pt, or the float checkpoint exported, and the teacher when known."""
    ckpt, kind = inp["ckpt"], inp["ckpt"]["kind"]
    src: dict[str, Path | None] = {}
    if kind == "student_int8":
        src["student_int8"] = Path(inp["path"])
        fpath = Path(inp["path"]).parent / "student_float.pt"
        if inp["float_ckpt"] is not None:
            src["student_float"] = Path(inp["float_ckpt"]["path"])
        elif fpath.is_file():
            src["student_float"] = fpath
    elif kind == "student_float":
        src["student_float"] = Path(inp["path"])
    else:                                                     # a teacher exported as it is
        src["teacher"] = Path(inp["path"])
    if "teacher" not in src:
        src["teacher"] = _teacher_of(ckpt, inp["notes"])
        if src["teacher"] is None and inp["float_ckpt"] is not None and inp["float_ckpt"] is not ckpt:
            src["teacher"] = _teacher_of(inp["float_ckpt"], [])
    return src


SPECTRAL_FAMILY = "spec_cnn"


def graph_spectral(ckpt: dict) -> bool:
    """Whether a checkpoint is a spectral heart-rate model (front end, decoder and kit of `export.kit`)."""
    return (ckpt.get("model_cfg") or {}).get("family") == SPECTRAL_FAMILY


def expected_input_shape(model_cfg: dict) -> tuple[int, int]:
    """(C, T) of a model's float input: T = fs * window_s samples, or (C, F) spectra for a spectral model
    (`ModelCfg.input_shape`)."""
    from sqtool.models import ModelCfg
    return tuple(ModelCfg.from_dict(model_cfg).input_shape)


def random_code_windows(n: int, c: int, f: int, seed: int = 0):
    """(n, C, F) float32 spectra: uniform int8 codes in [-127, 127] / 127, as the front end delivers them;
    the first window is all -127 (empty bins) and the second all 127 (saturated)."""
    import numpy as np
    codes = np.random.default_rng(seed).integers(-127, 128, (n, c, f))
    codes[:1] = -127
    codes[1:2] = 127
    return (codes / 127.0).astype(np.float32)


def leftovers_note(out: Path, gone: list[str], edited: list[str]) -> str:
    """The note on a --force'd folder: the previous export's files removed that this one did not write, and, each
    named, those kept because they were edited since it wrote them (the user's now: no reader checks them, and a
    kit's Makefile still compiles an edited c/*.c)."""
    s = "s" if len(gone) != 1 else ""
    text = (f"removed {len(gone)} file{s} of the previous export in {out} that this one did not write "
            f"({', '.join(gone[:4])}{', ...' if len(gone) > 4 else ''})") if gone else ""
    if not edited:
        return text + ": the folder holds one model"
    kept = (f"kept {len(edited)} file{'s' if len(edited) != 1 else ''} of the previous export"
            f"{'' if gone else f' in {out}'} edited since it wrote {'it' if len(edited) == 1 else 'them'}: "
            f"{', '.join(edited)} (yours now, not this model's)")
    return f"{text}; {kept}" if text else kept


@releases_run_dirs
def export(cfg: ExportConfig) -> dict:
    """Write and verify every requested artifact; returns {"out", "rows", "failed", "summary", ...}. Torch runs on
    one thread meanwhile (reproducible parity numbers); the caller's thread count is back when it returns."""
    from sqtool.core.manifest import record_unfinished
    with torch_threads(1):
        try:
            return _export(cfg)
        except BaseException:            # what it wrote so far, so a --force re-run clears it (core.manifest)
            record_unfinished()
            raise


def _export(cfg: ExportConfig) -> dict:
    import numpy as np
    import torch
    from sqtool.core import make_run_dir, save_config
    from sqtool.export import parity as P
    from sqtool.export.metadata import build_metadata, float_metadata
    from sqtool.models import load_model
    if cfg.out:
        check_out_dir("export", cfg.out, cfg.force)     # a taken or unwritable --out: before any checkpoint is read
    inp = _load_inputs(cfg)
    ckpt, x, y = inp["ckpt"], inp["x"], inp["y"]
    graph = qmodel = brev = None
    if inp["want_int8"]:
        from sqtool.export.intgraph import brevitas_int_outputs, extract_int_graph
        qmodel = load_model(ckpt)
        graph = extract_int_graph(qmodel)
    spectral = graph_spectral(ckpt)
    from sqtool.models import shipped_as
    front = shipped_as(ckpt["model_cfg"]) is not None   # rr_spec, af_beats: its front end is numpy / scipy
    n_ppg = device_ppg(cfg, ckpt["model_cfg"]) if spectral else None
    md = build_metadata(ckpt, inp["sha"], graph, inp["names"], cfg.subjects, fs_in=cfg.device_fs or None,
                        n_ppg=n_ppg)     # a spectral model's: designs its front end, so a bad --device-fs is refused here
    if (classic := classic_baseline_of(inp["path"])) is not None:     # bench's baseline: the card's settings
        md["classic_baseline"] = classic
    fmodel = load_model(inp["float_ckpt"]) if inp["want_float"] else None
    from sqtool.export.tflite import FLOAT_WRITABLE
    if "tflite" in inp["targets"] and fmodel is not None and type(fmodel).__name__ not in FLOAT_WRITABLE:
        raise SqtoolError(f"tflite export: layer 'encoder' op {type(fmodel).__name__} (residual ResNet) is not "
                          "supported by sqtool's TFLite writer; export it with --target onnx")
    if "c" in inp["targets"] and graph is not None and graph.spectral:    # refuse a bad prefix / decoder early
        from sqtool.export.pipeline import check_prefix, decoder_config
        check_prefix(cfg.prefix)
        decoder_config(ckpt["model_cfg"], graph)
    out = make_run_dir("export", ckpt["model_cfg"]["name"], cfg.out, cfg.force, clear_result=False)   # begin_export
    from sqtool.core.manifest import begin_export, earlier_export, remove_leftovers, write_manifest
    # a --force'd folder: the previous export's files go before this one writes or builds anything (the kit's
    # Makefile compiles c/*.c), those edited since it wrote them stay
    gone, edited = remove_leftovers(out, earlier_export(out))
    before = begin_export(out)                     # no manifest until this export has passed through
    saved = save_config(out, cfg, source=str(inp["path"]), source_sha256=inp["sha"])
    shipped_config(out, saved, model=str(inp["path"]), targets=inp["targets"], heldout=str(inp["hpath"] or ""),
                   parity_windows=int(len(x)), float_artifacts=inp["want_float"], int8_artifacts=inp["want_int8"])
    if cfg.device_acc_fs and float(cfg.device_acc_fs) != float(md["fs_in"]):   # the kit's accelerometer resampler
        from sqtool.data.acc_resampler import design_acc
        tab = design_acc(cfg.device_acc_fs, float(md["fs_in"]))
        md["acc_resampler"] = {"fs_acc_in": float(cfg.device_acc_fs), "fs_in": float(md["fs_in"]), "up": tab.up,
                               "down": tab.down, "taps_per_phase": tab.taps,
                               "files": f"c/{cfg.prefix}_acc_resampler.h, .c",
                               "reference": "sqtool.data.acc_resampler (bit-exact)"}
    if "c" in inp["targets"] and graph is not None:   # the C's file and symbol prefix: what bench / predict build
        md["c_prefix"] = cfg.prefix
    write_metrics(out, md, name="metadata.json")
    kit = "c" in inp["targets"] and graph is not None and graph.spectral      # firmware kit: no subject data
    if inp["hpath"] is not None and not kit:
        copy_heldout(inp["hpath"], out / ("parity.npz" if inp["hpath"].name == "parity.npz" else "heldout.npz"),
                     inp["names"])
    if any("random int8 code windows" in n for n in inp["notes"]) and not (kit and inp["hpath"] is not None):
        atomic_save_npz(out / "parity_windows.npz", x=x)                   # the exact parity inputs (held-out + random)

    rows, artifacts, extra = [], {}, []

    def done(f: str) -> None:                      # one progress line per artifact as it is written and checked
        artifacts[f] = {}
        item(artifact_line(out, f, rows))
    from sqtool.export.metadata import from_units, to_units
    y_float = None
    if fmodel is not None:                                   # in units, as the exported float models emit
        with torch.no_grad():
            y_float = fmodel(torch.as_tensor(x)).numpy()
        if not graph_spectral(ckpt):                         # (no target_mean, as rr_spec's logits: unchanged)
            y_float = to_units(y_float, md)
    deq = None
    if graph is not None:
        from sqtool.export import reference as R
        brev = brevitas_int_outputs(qmodel, x)
        xq = brev["input"]
        ref = {m: R.run(graph, xq, m) for m in R.MODES}
        oname = graph.output_name                                          # "fc" or the spectral "head"
        brev_out = brev[oname].reshape(len(x), -1)
        ref_out = {m: r[oname].reshape(len(x), -1) for m, r in ref.items()}

        def deq(q):                                           # int8 codes -> units
            return R.dequantize(graph, q) if graph.spectral else to_units(R.dequantize(graph, q), md)
        base = P.task_mae(md, deq(brev_out), y)
        extra.append(f"Brevitas int8 HR MAE {P._fmt(base)} BPM"
                     + (f", PyTorch float {P._fmt(P.task_mae(md, y_float, y))} BPM" if y_float is not None else ""))
        rows.append(P.int8_row("numpy reference (double rounding)", "-", md, brev_out, ref_out["double"], y,
                               deq, cfg.tol_lsb, cfg.tol_mae_bpm))
        rows.append(P.int8_row("numpy reference (single rounding)", "-", md, brev_out, ref_out["single"], y,
                               deq, cfg.tol_lsb, cfg.tol_mae_bpm))

    tfl_layers = None
    for target in bar(inp["targets"], desc="export", enabled=cfg.progress, unit="target"):
        if target == "onnx":
            from sqtool.export import onnx as O
            if fmodel is not None:
                for name, dyn in (("model_float.onnx", False), ("model_float_batch.onnx", True)):
                    O.export_float(fmodel, float_metadata(md), out / name, dynamic_batch=dyn)
                    got = O.run(out / name, x, batch=len(x) if dyn else 1)
                    rows.append(P.float_row(f"ONNX float{' (batch axis)' if dyn else ''}", name, md, y_float, got,
                                            y, cfg.tol_float_l2))
                    done(name)
            if graph is not None:
                O.export_int8(qmodel, md, out / "model_int8.onnx")
                for opt in (False, True):
                    got = O.run(out / "model_int8.onnx", x, batch=1, optimize=opt)     # units
                    got = got if graph.spectral else from_units(got, md)
                    gq = np.clip(np.round(got / np.float32(graph.output_scale)) + graph.output_zp, -128, 127)
                    if opt:
                        rows.append(P.int8_row("ONNX int8 (onnxruntime integer kernels)", "model_int8.onnx", md,
                                               brev_out, gq, y, deq, cfg.tol_lsb, cfg.tol_mae_bpm))
                    else:
                        rows.append(P.int8_row("ONNX int8 QCDQ graph (onnxruntime, no fusion)", "model_int8.onnx",
                                               md, brev_out, gq, y, deq, cfg.tol_lsb, cfg.tol_mae_bpm))
                done("model_int8.onnx")
        elif target == "tflite":
            from sqtool.export import tflite as TF
            if fmodel is not None:
                TF.write_float(fmodel, float_metadata(md), out / "model_float.tflite")
                got = TF.run_litert(out / "model_float.tflite", x.transpose(0, 2, 1)[:, None], reference=False)
                rows.append(P.float_row("TFLite float (LiteRT)", "model_float.tflite", md, y_float,
                                        got.reshape(len(x), -1), y, cfg.tol_float_l2))
                done("model_float.tflite")
            if graph is not None:
                TF.write_int8(graph, md, out / "model_int8.tflite")
                TF.check_int8_params(out / "model_int8.tflite", graph)
                xin = xq[:, None]                                          # (N, 1, T, C)
                f = "model_int8.tflite"
                got = TF.run_litert(out / f, xin, reference=False).reshape(len(x), -1)
                rows.append(P.int8_row("TFLite int8 (LiteRT default kernels)", f, md, brev_out, got, y, deq,
                                       cfg.tol_lsb, cfg.tol_mae_bpm))
                got, tfl_layers = TF.run_litert(out / f, xin, reference=True, graph=graph)
                rows.append(P.int8_row("TFLite int8 (LiteRT reference kernels)", f, md, brev_out,
                                       got.reshape(len(x), -1), y, deq, cfg.tol_lsb, cfg.tol_mae_bpm,
                                       exact_ref=ref_out["litert_ref"], exact_name="numpy ref litert_ref"))
                got = TF.run_tflm(out / f, xin).reshape(len(x), -1)
                rows.append(P.int8_row("TFLite Micro", f, md, brev_out, got, y, deq, cfg.tol_lsb, cfg.tol_mae_bpm,
                                       exact_ref=ref_out["double"], exact_name="numpy ref double"))
                done(f)
        elif target == "c":
            from sqtool.export import c as C
            info = C.generate_c(graph, md, out / "c")
            extra.append(f"C: arena {info['arena_bytes']} B, weights {info['weight_bytes']} B, "
                         f"{info['macs']} MACs per window")
            build = out / "c" / "build"
            try:
                for single in (False, True):
                    lib = C.build_shared_lib(out / "c", build, single, cc=cfg.cc)
                    got = C.run_shared_lib(lib, xq, graph.output_size)
                    if single:
                        rows.append(P.int8_row("C single rounding (host gcc)", "c/sq_model.c", md, brev_out, got,
                                               y, deq, cfg.tol_lsb, cfg.tol_mae_bpm,
                                               exact_ref=ref_out["single"], exact_name="numpy ref single",
                                               min_exact_pct=cfg.min_single_exact_pct))
                    else:
                        rows.append(P.int8_row("C double rounding (host gcc)", "c/sq_model.c", md, brev_out, got,
                                               y, deq, cfg.tol_lsb, cfg.tol_mae_bpm,
                                               exact_ref=ref_out["double"], exact_name="numpy ref double"))
            finally:
                shutil.rmtree(build, ignore_errors=True)
            done("c/sq_model.h")
            done("c/sq_model.c")
            if not spectral and cfg.device_fs:                 # the preprocessing in C, from the device's rate
                from sqtool.export.c_window import render_window, window_design
                wd = window_design(md, cfg.device_fs, cfg.device_filter)
                for p in render_window(md, cfg.device_fs, out / "c", filter=cfg.device_filter):
                    done(str(p.relative_to(out)))
                from sqtool.export.c_tracker import has_tracker, remove_tracker, render_tracker
                tracked = has_tracker(md)                      # a heart-rate model: bench's tracker in C too
                if tracked:
                    for p in render_tracker(md, out / "c"):
                        done(str(p.relative_to(out)))
                else:                                          # a re-export (--force) of another task's model
                    remove_tracker(out / "c")
                from sqtool.export.window_kit import write_window_kit
                kit_info = write_window_kit(out, md, cfg.device_fs)      # example, Makefile, test vectors
                for p in kit_info["files"]:
                    done(str(p.relative_to(out)))
                extra.append(f"C front end (c/sq_window.c): {wd['fs_in']:g} Hz device samples -> {wd['fs']:g} Hz "
                             f"windows of {wd['T']} x {wd['nch']}, band-pass {wd['filter']}, every {wd['hop_s']:g} s, "
                             f"{wd['latency_s']:.2f} s after a window's last sample; state about {wd['ram_bytes']} B "
                             f"RAM, tables {wd['table_bytes']} B; checked against the stream by sqtool bench "
                             "(runtime c_window) on recordings at that rate")
                if tracked:
                    extra.append("C tracker (c/sq_tracker.c): the heart-rate tracker sqtool bench scores and predict "
                                 "writes as hr_tracked_bpm, on the int8 hr_bpm (and quality) outputs, float64, bit "
                                 "for bit; the kit's example ends each line with it")
                vec = kit_info["vectors"]
                extra.append(f"C device-loop kit: example/main.c and selftest.c, Makefile (host, check, selftest, "
                             "mps2, check-mps2 (M4), check-an505 (M33), check-an547 (M55), selftest-an386 ...), "
                             f"test_vectors/ (a synthetic {vec['seconds']:g} s recording; " + (
                                 f"expected.txt: the host build's {vec['windows']} windows, which `make check` on "
                                 "your target must reproduce exactly)" if vec["windows"] is not None else
                                 f"expected.txt {vec['expected']})"))
                if wd["ram_bytes"] > 32 * 1024 and wd["filter"] == "window":   # a low cut-off: a long history
                    small = window_design(md, cfg.device_fs, "causal")["ram_bytes"]
                    extra.append(f"C front end: its {wd['ram_bytes'] / 1024:.0f} KB of state are more than a 32 KB "
                                 f"RAM budget: the band's low cut-off ({wd['band'][0]:g} Hz) takes "
                                 f"{wd['ctx_pre'] / wd['fs']:g} s of history and {wd['ctx_post'] / wd['fs']:g} s of "
                                 f"look-ahead around each window; the causal filter needs {small / 1024:.0f} KB "
                                 "(train finetune --band-phase causal trains a model for it)")
            elif not spectral:                                 # a re-export (--force) without it: none left behind
                from sqtool.export.window_kit import remove_window_kit
                remove_window_kit(out)
            if kit:
                _write_kit(cfg, out, ckpt, graph, md, inp, rows, artifacts, extra)
    docs = []                                                # MODEL_CARD.md, INTEGRATION.md
    if spectral and not kit:                                 # the kit wrote them with the C; graph None: float only
        from sqtool.export.kit import write_docs
        docs = write_docs(out, ckpt["model_cfg"], graph, md, fs_in=cfg.device_fs or None, n_ppg=n_ppg,
                          run_dir=Path(inp["path"]).parent, names=inp["names"])
    elif front:                                              # rr_spec, af_beats: window, front end, reading
        from sqtool.export.front_docs import write_front_docs
        docs = write_front_docs(out, ckpt["model_cfg"], md, run_dir=Path(inp["path"]).parent, names=inp["names"])
    elif not spectral:                                       # a time-domain model: its preprocessing is the reader's
        from sqtool.export.time_docs import write_time_docs
        docs = write_time_docs(out, ckpt["model_cfg"], graph, md, run_dir=Path(inp["path"]).parent,
                               names=inp["names"])
    for p in docs:
        done(str(p.relative_to(out)))

    for f, a in artifacts.items():
        a["bytes"] = (out / f).stat().st_size
        bad = [r["artifact"] for r in rows if r.get("file") == f and r["status"] != "ok"]
        a["status"] = "FAILED" if bad else "ok"
        a["checked_by"] = [r["artifact"] for r in rows if r.get("file") == f]
        marker = out / f"{f}.FAILED"
        if bad:
            atomic_write_text(marker, "parity failed: " + ", ".join(bad) + " (see export_report.md)\n")
        elif marker.exists():
            marker.unlink()
    ex = ex_text = None
    if cfg.explain and graph is not None:
        ex = P.explain(graph, brev, tfl_layers)
        ex_text = "per-layer |LSB| (max | histogram) on the parity windows\n" + P.explain_text(ex)
    failed = P.write_report(out, md, rows, artifacts, "\n\n".join(extra), ex)
    from sqtool import __version__
    manifest = write_manifest(out, model=md["model"], sources=_sources(inp), failed=failed,
                              sqtool_version=__version__, before=before)    # last: it hashes every file above
    now = {f["path"] for f in manifest["files"]}
    gone = [f for f in gone if f not in now]                  # the previous export's files this one did not write
    edited = [f for f in edited if f not in now]              # (one this export wrote again is this one's)
    if gone or edited:
        inp["notes"].append(leftovers_note(out, gone, edited))
    lines = [f"export -> {out}"] + [f"  note: {n}" for n in inp["notes"]]
    for r in rows:
        key = (f"max LSB {r['max_lsb']}, exact {r['exact_windows_pct']:.1f} %" if "max_lsb" in r
               else f"L2 rel err {r['l2_rel_err']:.2e}")
        lines.append(f"  {r['status']:<6} {r['artifact']:<42} {key}")
    if failed:
        lines.append(f"PARITY FAILED: {', '.join(failed)} (report kept in {out / 'export_report.md'})"
                     + double_rounding_note(rows, failed, cfg.tol_mae_bpm))
    return {"out": out, "rows": rows, "failed": failed, "artifacts": artifacts, "metadata": md, "manifest": manifest,
            "summary": "\n".join(lines), "explain": ex, "explain_text": ex_text, "names": inp["names"]}
