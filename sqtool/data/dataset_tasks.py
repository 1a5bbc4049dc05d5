"""Tasks from a dataset file: what `train finetune` / `quantize` read when --data is a dataset.yaml, a
built-in name, or a data root (each built-in folder through its shipped dataset file).

    dataset_of(data, data_root)                    -> DatasetFile | None   (None: a data root / plain path)
    load_task_from_dataset(task, ds, model_cfg)    -> tasks.TaskData       (time-domain models)
    hr_corpus_from_dataset(ds, model_cfg, log)     -> [hr_spectra.HrRecording]  (spectral heart-rate models)
    hr_corpus_beside(ds, ("troika",), model_cfg)   -> (yours + the built-ins' recordings, their data root)

`tasks.load_task` and `hr_spectra.hr_corpus` on a data root (a folder of dataset folders) come here too,
through the shipped dataset file of each built-in dataset: one loading path for every kind of --data.

A task needs its label (`DatasetFile.require_label`: one line naming it); recordings its label table has no row
for are one warning line (and meta["no_label_row"]). Targets per window, from the label's kind, one loader per
task (`TASK_LOADERS`; an unknown task is one line listing them), as `data.tasks` does for the built-in loaders:

    hr, rr   kind "window" (a custom label of the file too, `task_loader`): the value at the window centre (exact
             when windows coincide); NaN (doubtful ECG reference, no truth) is left out. rr kind "events" (breath
             times): breaths/min in the window.
             A window whose label is NaN (hr, rr, bp: an empty cell, no row in its label file, no or doubtful
             truth; or, when the task's windows differ from the file's, a window centred before the first or
             after the last label window's centre) is left out and counted: meta["missing_target_windows"], one
             warning line.
    af       label "rhythm" (class): 1 when the class is one of the file's `af` classes; per recording, or
             per segment (a window inside [start_s, end_s)); segments shorter than the window are tiled.
    bp       labels "sbp", "dbp": one window per recording (tiled when shorter than the window).
    quality  per-sample flags: poor when > 10 % of the window is flagged, good when none, else left out;
             a per-recording value / class: every window of the recording.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data import tasks as T          # tasks imports this module lazily (load_task), never at import


def dataset_of(data, data_root: str | os.PathLike | None = None):
    """The DatasetFile that --data names (a yaml file, a folder holding dataset.yaml, a built-in name that is
    not an existing path), else None."""
    from sqtool.data.dataset_file import builtin_names, is_dataset_file, load_builtin, load_dataset_file
    if data is None or str(data) in ("", "synthetic"):
        return None
    if not isinstance(data, (str, os.PathLike)):
        return data if hasattr(data, "records") else None
    p = Path(data).expanduser()
    if p.exists():
        return load_dataset_file(p, data_root) if is_dataset_file(p) else None
    if str(data).endswith((".yaml", ".yml")):
        raise SqtoolError(f"{p}: no such dataset file")
    return load_builtin(str(data), data_root) if str(data) in builtin_names() else None


def load_task_from_dataset(task: str, ds, cfg, max_records: int | None = None):
    """TaskData of `task` from the dataset file `ds`: each recording through the task's loader (`TASK_LOADERS`);
    max_records keeps the first max_records SUBJECTS in record order (every recording of each: segments of one
    patient stay together)."""
    from sqtool.data.dataset_file import TASK_LABELS
    loader = task_loader(task, ds)
    ds.require_label(task)
    load = _TaskLoad(task, ds, cfg, T._Acc(task))
    recs = ds.records()                          # fills ds.report (no_label_row) read next
    extra = {}
    if u := (ds.report.get("no_label_row") or {}).get(TASK_LABELS.get(task, task)):     # recordings its table has no row for
        extra["no_label_row"] = u["records"]
        warn(f"{ds.name}: {u['records']} of {u['of']} recordings have no row in {u['table']}, e.g. {u['example']}: "
             "left out")
    for rec in recs:
        if max_records and str(rec.subject) not in load.acc.subjects and len(load.acc.subjects) >= max_records:
            continue
        loader(rec, load)
    gaps, untrue = load.gaps, load.untrue
    if gaps["windows"]:
        extra["nonfinite_windows"] = ds.report["nonfinite_windows"] = gaps["windows"]
        warn(f"{ds.name}: {gaps['windows']} windows of {gaps['records']} recording(s) hold NaN/Inf samples (gaps): "
             "left out")
    if untrue["windows"]:
        extra["missing_target_windows"] = ds.report["missing_target_windows"] = untrue["windows"]
        warn(f"{ds.name}: {untrue['windows']} windows of {untrue['records']} recording(s) have no {task} target "
             "(NaN in the label: an empty cell, no row in its label file, no or doubtful truth; or a centre outside "
             "the label windows' first..last centre, when the task's windows differ from the file's): left out of "
             "training and scoring")
    from sqtool.data.dataset_file import dataset_layouts, file_record
    from sqtool.data.heldout import file_split
    kept = set(load.acc.rid)                     # the recordings with windows, and the file each was read from
    return load.acc.build(dataset=ds.name, dataset_layouts=dataset_layouts([ds]), label=f"{task} from {ds.path}",
                          dataset_file=str(ds.path), dataset_files=[file_record(ds)],     # what a resume refusal names
                          record_files={str(r.record_id): str(r.source) for r in recs
                                        if r.source and str(r.record_id) in kept},
                          excluded=dict(ds.report.get("excluded") or {}),
                          split_test=file_split(ds, recs), **extra)   # the file's test subjects, from these recordings


# ----------------------------------------------------------------------------- one loader per task

@dataclass
class _TaskLoad:
    """What the task loaders share while load_task_from_dataset walks the recordings: the task, the dataset
    file, the model cfg, the windows kept so far (tasks._Acc), and the windows left out, {windows, records}:
    `gaps` for holding a NaN/Inf sample, `untrue` for a NaN label (an empty cell, no truth)."""
    task: str
    ds: object
    cfg: object
    acc: object
    gaps: dict = field(default_factory=lambda: {"windows": 0, "records": 0})
    untrue: dict = field(default_factory=lambda: {"windows": 0, "records": 0})

    def windows(self, rec):
        """The recording's model windows (tasks._windows); those holding a NaN/Inf sample are counted in gaps. A
        recording shorter than one window (a task that does not tile it: hr, rr) has none: left out, one warning
        line, as the spectral fine-tune, predict and bench leave it out."""
        from sqtool.data.preprocess import Windows
        from sqtool.data.record import TooShort
        try:
            w = T._windows(rec, self.cfg)
        except TooShort as e:
            warn(f"left out {e}")
            return Windows(x=np.zeros((0, len(self.cfg.channels), 1), np.float32), t0=np.zeros(0),
                           subject=str(rec.subject), record_id=str(rec.record_id), fs=float(self.cfg.fs))
        _left_out(self.gaps, w.meta.get("nonfinite_windows", 0))
        return w


def _left_out(counter: dict, n) -> None:
    """n windows of one recording left out, counted in `counter` (gaps or untrue)."""
    if n:
        counter["windows"] += int(n)
        counter["records"] += 1


def _hr_rr(rec, load: _TaskLoad) -> None:
    """hr, rr, a custom label: kind "window", the value at each window's centre (a NaN label, or a centre before the first / after
    the last label window's centre: left out, counted); rr kind "events" (breath times): breaths/min in the window
    (under 3 breaths: left out)."""
    lab = rec.labels.get(load.task)
    if lab is None:
        return
    T._require_channels(rec, load.cfg, load.task)
    w = load.windows(rec)
    if len(w.t0) == 0:                          # shorter than one window: left out (said by load.windows)
        return
    if lab.kind == "events":
        y = T.breaths_per_min_windows(lab.times, w.t0, load.cfg.window_s)
        ok = np.isfinite(y)                     # NaN: under 3 breaths in the window
    else:
        y, ok = T._label_at_centres(lab, w.t0, load.cfg.window_s)   # ok: centre within the label windows' centres
        _left_out(load.untrue, np.sum(~(ok & np.isfinite(y))))      # NaN, or before the first / after the last
        ok &= np.isfinite(y)
    load.acc.add(w.x[ok], y[ok], rec.subject, w.t0[ok], rec.record_id)


def class_truth(task: str, rec, t0: np.ndarray, window_s: float, positive=None) -> np.ndarray | None:
    """(W,) a class task's truth per window [t0, t0 + window_s) of `rec`, as its training takes it: 1.0, 0.0, or NaN
    where the window has none; None when the recording has no such label. `positive`: the classes that count as 1
    where the label names none itself (`Label.positive`, set by a dataset file): af's `af` list, quality's `good`
    list (default: the dataset file's defaults, `LabelSource`).

    af       label "rhythm": 1 when its class is an AF class; per recording, or per segment (a window wholly
             inside one [start_s, end_s), else NaN).
    quality  label "quality": per-sample flags, 1 (good) when none of the window is flagged, 0 (poor) when more
             than 10 %, else NaN; a per-recording class or value (> 0 good) on every window."""
    from sqtool.data.dataset_file import LabelSource
    t0 = np.asarray(t0, np.float64)
    if task == "af":
        lab = rec.labels.get("rhythm")
        if lab is None:
            return None
        pos = set(lab.positive or positive or LabelSource().af)      # as the data spells them
        names = lab.classes or ()
        hit = np.array([(names[int(v)] if names else str(int(v))) in pos for v in np.atleast_1d(lab.values)])
        if lab.times is None:
            return np.full(len(t0), float(hit[0]))
        starts, ends = np.asarray(lab.times, float), np.asarray(rec.meta.get("rhythm_end_s"), float)
        seg = [np.flatnonzero((starts <= t + 1e-9) & (t + window_s <= ends + 1e-9))[:1] for t in t0]
        return np.array([float(hit[s[0]]) if len(s) else np.nan for s in seg])
    if task == "quality":
        lab = rec.labels.get("quality")
        if lab is None:
            return None
        if lab.kind == "flags":
            frac = T.flagged_fraction(lab.values, lab.fs, t0, window_s)
            return np.where(frac <= T.GOOD_FLAGGED, 1.0, np.where(frac > T.POOR_FLAGGED, 0.0, np.nan))
        v = np.atleast_1d(lab.values)[0]
        good = (lab.classes[int(v)] in (lab.positive or positive or LabelSource().good) if lab.classes
                else float(v) > 0)
        return np.full(len(t0), float(good))
    raise SqtoolError(f"class_truth: '{task}' is not a class task (af, quality)")


def _af(rec, load: _TaskLoad) -> None:
    """af: 1 when the "rhythm" class is one of the file's af classes (`class_truth`); per recording, or per segment
    (a window inside [start_s, end_s)); a recording shorter than the window is tiled."""
    if rec.labels.get("rhythm") is None:
        return
    T._require_channels(rec, load.cfg, load.task)
    w = load.windows(load.acc.filled(rec, load.cfg.window_s))
    y = class_truth("af", rec, w.t0, load.cfg.window_s, load.ds.labels["rhythm"].af)
    ok = np.isfinite(y)
    load.acc.add(w.x[ok], y[ok], rec.subject, w.t0[ok], rec.record_id)


def _bp(rec, load: _TaskLoad) -> None:
    """bp: labels "sbp", "dbp", one window per recording (tiled when shorter than the window)."""
    if "sbp" not in rec.labels or "dbp" not in rec.labels:
        return
    T._require_channels(rec, load.cfg, load.task)
    y = np.array([[float(rec.labels["sbp"].values), float(rec.labels["dbp"].values)]])
    # An empty cell of the bp table (no truth): the recording is left out here, said once as a missing
    # target, before it is tiled or windowed, so it is not preprocessed at all and counts neither among
    # the tiled segments nor among the NaN/Inf (gap) windows: none of its windows was a candidate.
    if not np.isfinite(y).all():
        _left_out(load.untrue, 1)
        return
    w = load.windows(load.acc.filled(rec, load.cfg.window_s))
    load.acc.add(w.x[:1], y, rec.subject, w.t0[:1], rec.record_id)


def _quality(rec, load: _TaskLoad) -> None:
    """quality: per-sample flags, poor when > 10 % of the window is flagged, good when none, else left out; a
    per-recording value / class: every window of the recording (tiled when shorter than the window); `class_truth`."""
    if rec.labels.get("quality") is None:
        return
    T._require_channels(rec, load.cfg, load.task)
    w = load.windows(load.acc.filled(rec, load.cfg.window_s))
    y = class_truth("quality", rec, w.t0, load.cfg.window_s, load.ds.labels["quality"].good)
    ok = np.isfinite(y)
    load.acc.add(w.x[ok], y[ok], rec.subject, w.t0[ok], rec.record_id)


# task -> its loader: one recording's windows and targets into load.acc (hr and rr read a label the same way)
TASK_LOADERS = {"hr": _hr_rr, "rr": _hr_rr, "af": _af, "bp": _bp, "quality": _quality}


def task_loader(task: str, ds):
    """The loader of `task` on dataset file `ds`: TASK_LOADERS', or for a custom label of the file (declared with
    unit:) hr's and rr's, its per-window value; else one line naming the tasks."""
    if task in TASK_LOADERS:
        return TASK_LOADERS[task]
    if task in ds.custom_labels:
        return _hr_rr
    raise T.unknown_task(task, tuple(TASK_LOADERS), ds)


def warn(msg: str) -> None:
    """One warning line on stderr (training goes on), 'sqtool: warning: ...' as the data layer's other warnings
    (data pairs'); core.progress carries progress lines, not warnings. After what stdout was given (flushed first)."""
    import sys

    from sqtool.core.say import stdout_first
    stdout_first()
    print(f"sqtool: warning: {msg}", file=sys.stderr)


def dataset_spectra(ds, model_cfg, log=None, cache: dict | None = None, skip=frozenset()) -> list:
    """The recordings of `ds` with heart-rate truth through the device front end (`hr_spectra.record_spectra`),
    in record order; those without truth (and record ids in `skip`) are reported, never silent. May be empty."""
    from sqtool.data.hr_spectra import record_spectra, stream_channels
    from sqtool.data.preprocess import whole_hz_note
    from sqtool.data.record import resampled_note
    ds.require_label("hr")
    out, cache, streamed = [], ({} if cache is None else cache), []
    for rec in ds.records(log=log):
        if str(rec.record_id) in skip:
            if log:
                log(f"{ds.name}/{rec.record_id}: left out (asked for)")
            continue
        if "hr" not in rec.labels:
            if log:
                log(f"{ds.name}/{rec.record_id}: no heart-rate truth, left out")
            continue
        out.append(record_spectra(rec, model_cfg, cache))
        streamed.append((rec, stream_channels(rec, model_cfg)[0]))
        if (k := out[-1].meta.get("nonfinite_windows", 0)) and log:
            log(f"{ds.name}/{rec.record_id}: {k} windows hold NaN/Inf samples (gaps): not trained on or scored")
    if gaps := sum(r.meta.get("nonfinite_windows", 0) for r in out):
        ds.report["nonfinite_windows"] = gaps
    if log and (note := resampled_note(streamed)):        # a slower accelerometer brought to the PPG's rate: once
        log(note)
    if log and (note := whole_hz_note(out)):              # a clock off its whole-Hz rate: once
        log(note)
    return out


def hr_corpus_from_dataset(ds, model_cfg, log=None) -> list:
    """Every recording of the dataset with heart-rate truth, through the device front end (`dataset_spectra`);
    one clear error when none has it."""
    out = dataset_spectra(ds, model_cfg, log)
    if not out:
        raise SqtoolError(f"{ds.path}: no recording with heart-rate truth")
    return out


def beside_entries(ds, beside) -> list:
    """The `--datasets` entries trained on beside the dataset file `ds`, resolved in their order: a built-in name
    (troika, ..., synthetic) stays a str; any other entry is a dataset file of your own (a .yaml path or a folder
    holding dataset.yaml, from the cwd; a DatasetFile passes as it is) -> its DatasetFile. One line each for a name
    that is neither, a file that is not there, `ds`'s own name or file, and two entries with one `name:` (subject
    keys and reports are keyed by it)."""
    from sqtool.data.dataset_file import builtin_names, is_dataset_file, load_dataset_file
    shown = ",".join(str(getattr(d, "path", d)) for d in beside)
    where = f"--datasets {shown} beside {ds.path}"
    out = []
    for d in beside:
        if hasattr(d, "records") or str(d) in (*builtin_names(), "synthetic"):
            out.append(d if hasattr(d, "records") else str(d))
            continue
        if str(d) == ds.name:
            raise SqtoolError(f"{where}: '{ds.name}' is that file's own name")
        p = Path(d).expanduser()
        if not (is_dataset_file(p) or str(d).endswith((".yaml", ".yml"))):
            raise SqtoolError(f"{where}: {d} is not a built-in dataset ({', '.join(builtin_names())}) nor a "
                              "dataset file")
        f = load_dataset_file(p)                                   # not there, or a bad file: one line naming it
        if f.path.resolve() == Path(ds.path).resolve():
            raise SqtoolError(f"{where}: {d} is --data itself")
        out.append(f)
    names = [ds.name] + [getattr(d, "name", d) for d in out]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        both = [str(f.path) if hasattr(f, "path") else f"the built-in {f}" for f in [ds, *out]
                if getattr(f, "name", f) == twice[0]]
        raise SqtoolError(f"{where}: {' and '.join(both)} are both named '{twice[0]}' (subject keys and report "
                          "lines are keyed by a dataset's name): give one of them another `name:`")
    return out


def beside_paths(datasets) -> list[str]:
    """--datasets as a run records it: a built-in name as given, a dataset file of your own (an existing path)
    absolute (`core.config.absolute_path`), so that its config.yaml, --resume and the demo's steps read it from any
    working directory (a folder named troika in the cwd stays the built-in)."""
    from sqtool.core import absolute_path
    from sqtool.data.dataset_file import builtin_names
    names = {*builtin_names(), "synthetic"}
    return [d if d in names else absolute_path(d) for d in map(str, datasets)]


def hr_corpus_beside(ds, beside, model_cfg, log=None, seed: int = 0, beside_root=None) -> tuple[list, Path | None]:
    """Your dataset file's heart-rate recordings and, beside them, those of the `--datasets` entries `beside`
    (`beside_entries`): built-in datasets (e.g. ("troika",): SP Cup's 12 subjects carry a wrist model that a few
    subjects of your own cannot) read under `beside_root` (default: $SQTOOL_DATA, else ../shared/data), and other
    dataset files of your own (another device, another cohort) -> (the recordings, that root or None when no
    built-in is beside). Subject keys stay apart ("dataset:subject"); another file's recordings are named
    "<its name>/<recording>" (two devices' s01_walk.csv stay apart in the logits), and its `split:` is not used:
    `ds`'s split holds subjects out (one note line). A name that is not a built-in, is your own dataset's, or is
    not under the root is one line."""
    from sqtool.core import resolve_data_root
    from sqtool.data.hr_spectra import hr_corpus
    entries = beside_entries(ds, tuple(beside or ()))
    corpus = hr_corpus_from_dataset(ds, model_cfg, log)
    builtin = [d for d in entries if isinstance(d, str)]
    root = None
    if builtin:
        where = f"--datasets {','.join(builtin)} beside {ds.path}"
        root = Path(beside_root) if beside_root else resolve_data_root(None)
        missing = [d for d in builtin if d != "synthetic" and not (root is not None and (Path(root) / d).is_dir())]
        if missing:
            raise SqtoolError(f"{where}: no {', '.join(missing)} folder under {root or 'any data root'} (set "
                              "SQTOOL_DATA to the folder holding them)")
    extra = []
    for d in entries:
        if isinstance(d, str):
            extra += hr_corpus("synthetic" if d == "synthetic" else root, (d,), model_cfg, log=log, seed=seed)
            continue
        extra += [replace(r, record_id=f"{d.name}/{r.record_id}") for r in hr_corpus_from_dataset(d, model_cfg, log)]
        if log and (d.split.test or d.split.heldout_fraction):
            log(f"note: {d.path}'s split: is not used: the held-out subjects are --data {ds.path}'s, every "
                f"{d.name} subject is trained on")
    mine = {str(r.record_id) for r in corpus}
    clash = sorted(mine & {str(r.record_id) for r in extra})
    if clash:                                      # logits and folds are kept by record id
        raise SqtoolError(f"{ds.path}: recording id {clash[0]} is also one of "
                          f"{', '.join(getattr(d, 'name', d) for d in entries)}'s: rename it")
    return corpus + extra, (Path(root).resolve() if root is not None else None)


__all__ = ["dataset_of", "load_task_from_dataset", "hr_corpus_from_dataset", "beside_entries", "beside_paths",
           "hr_corpus_beside", "dataset_spectra"]
