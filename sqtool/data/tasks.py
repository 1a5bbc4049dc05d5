"""Downstream tasks as arrays: windows preprocessed exactly as a model's cfg says, targets, subjects.

    td = load_task("hr", data_root, model_cfg)      # TaskData: x (N, C, T), y (N, k), groups (N,) ...
    for train_idx, test_idx in subject_folds(td.groups, k=None):   # leave-one-subject-out
        ...

Every window is cut from a `Record` by `sqtool.data.preprocess.make_windows` with the model's fs,
window_s, hop_s, channels, norm and band, so the teacher, the student and the firmware all see the same input.
What each task means (window i of a record starts at i * hop_s seconds):

    hr       TROIKA (SP Cup 2015) 12 training recordings, subject = recording. y = ECG heart rate (BPM)
             of the window: BPM0 is given per 8 s window with 2 s hop, so with the default 8 s / 2 s
             windows window i gets BPM0[i] exactly; other windows get BPM0 interpolated at the window
             centre. Channels: any of ppg, ppg2, acc_x, acc_y, acc_z.
    rr       BIDMC, 53 patients x 8 min, fingertip PPG. y = breaths/min in the window from annotator 1's
             breath marks: 60 (n - 1) / (t_last - t_first) over the n >= 3 breaths inside the window.
             `task_model_cfg` gives rr the band 0.05-8 Hz (not 0.5-8): the respiratory modulation of the
             PPG (0.07-1 Hz) must survive the filter.
    af       PPG arrhythmia set (12 patients, 10 s segments at 100 Hz, resampled to fs). y = 1 for AF,
             0 for every other rhythm. A segment longer than the window is cut into windows; a shorter
             one is tiled (repeated) to fill the window.
    bp       PPG-BP (219 subjects, 2.1 s at 1000 Hz). y = (systolic, diastolic) mmHg. A 2.1 s segment is
             shorter than any model window, so it is resampled to fs, normalised, and TILED periodically
             to window_s (a PPG segment is quasi-periodic; the tiling seam is the one artefact, and it
             is the same for every subject). One window per segment, 3 per subject.
    quality  human labels: BUT PPG (10 s, good = 1 / poor = 0) and multi-wavelength PPG (per-sample
             artifact flags: a window is poor if > 10 % of its samples are flagged, good if none, left
             out in between); plus index-labelled windows: TROIKA PPG windows labelled by the quality
             index (`sqtool.data.quality.quality_score`, good if > 0.5). y = 1 good / 0 poor.
             `meta["source"]` says which set each window came from.

`data_root="synthetic"` (or None) gives the same interface on `sqtool.data.synthetic` recordings with
known heart rate / respiratory rate / AF and artifacts: the embedded default for tests and the demo.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import DEFAULT_BAND, ModelCfg, SqtoolError
from sqtool.core.runs import data_root_error, dataset_folder_hint
from sqtool.data.record import tile_record

TASKS = ("hr", "rr", "af", "bp", "quality")

# task -> outputs, units, kind, default window / hop (s), dataset folders it needs, and the input
# band-pass (lo, hi) Hz. 0.5-8 Hz (the registry default) covers HR 30-240 bpm with harmonics and removes
# drift. rr: respiration shows in PPG as baseline wander (RIIV) and amplitude / frequency modulation at
# 0.07-1 Hz (4-60 breaths/min), which a 0.5 Hz high-pass removes; rr keeps everything above 0.05 Hz (slower
# drift is still removed). On 12 BIDMC records the spectral peak (0.1-0.6 Hz) of the 0.05-8 Hz windows is
# within 2 breaths/min of the annotation for 83 % of windows, of the 0.5-8 Hz ones for 37 %
# (tests/data/test_tasks.py::test_rr_band_keeps_respiration).
TASK_SPECS = {
    "hr": dict(outputs=("hr_bpm",), units=("bpm",), kind="regression", window_s=8.0, hop_s=2.0,
               datasets=("troika",), band=DEFAULT_BAND, label="BPM0 (ECG heart rate per 8 s window, 2 s hop)"),
    "rr": dict(outputs=("rr_bpm",), units=("breaths/min",), kind="regression", window_s=30.0, hop_s=10.0,
               datasets=("bidmc",), band=(0.05, 8.0), label="breaths/min from annotator 1's breath marks"),
    "af": dict(outputs=("logit_af",), units=("logit",), kind="classification", window_s=10.0, hop_s=10.0,
               datasets=("ppg_arrhythmia",), band=DEFAULT_BAND,
               label="1 = atrial fibrillation, 0 = any other rhythm"),
    "bp": dict(outputs=("sbp", "dbp"), units=("mmHg", "mmHg"), kind="regression", window_s=8.0, hop_s=8.0,
               datasets=("ppg_bp",), band=DEFAULT_BAND,
               label="systolic, diastolic BP (mmHg) per subject; 2.1 s segments tiled to the window"),
    "quality": dict(outputs=("logit_good",), units=("logit",), kind="classification", window_s=10.0,
                    hop_s=10.0, datasets=("but_ppg", "mw_ppg", "troika"), band=DEFAULT_BAND),
}

# The names a model's outputs and `sqtool predict`'s CSV columns take, beside the tasks' outputs: a model fine-tuned
# on a custom label outputs the label's name (a student adds QUALITY_OUTPUT), so the label may take none of them
# (`dataset_file`'s check), else predict's own column would overwrite the prediction. predict writes time_s (time),
# flagged, a heart-rate model's decoder or tracker columns, and per output p_<class> (a logit's probability) and
# truth_<output>.
QUALITY_OUTPUT = "quality_logit"           # the quality head a student adds to a regression task (models.student)
PREDICT_COLUMNS = ("time_s", "time", "flagged", "lo_bpm", "hi_bpm", "confidence", "expected_err_bpm",
                   "hr_tracked_bpm", "truth_bpm")
PREDICT_PREFIXES = ("p_", "truth_")        # a logit output's probability, an output's truth


def reserved_output(name: str) -> bool:
    """Whether `name` is taken as a model output or a predict column (a custom label may not take it)."""
    outputs = {o for s in TASK_SPECS.values() for o in s["outputs"]}
    return name in outputs or name in PREDICT_COLUMNS or name == QUALITY_OUTPUT or name.startswith(PREDICT_PREFIXES)


# What a task's loaders do with a recording shorter than one window: "tile" (af, bp, quality: `_Acc.filled`, one
# window of the segment repeated end to end, `tile_record`), "refuse" (hr, rr: no window is cut from it). Part of
# the model's input contract: `sqtool export` writes it into metadata.json (short_records), and `sqtool predict`
# fills a short recording to the window the same way for a model whose metadata says "tile".
SHORT_RECORDS = {"hr": "refuse", "rr": "refuse", "af": "tile", "bp": "tile", "quality": "tile"}


def short_records(task: str) -> str:
    """"tile" or "refuse": how the task's training data treats a recording shorter than one window
    (`SHORT_RECORDS`); "refuse" for a task without windows of its own (pretrain)."""
    return SHORT_RECORDS.get(task, "refuse")


@dataclass
class TaskData:
    x: np.ndarray                       # (N, C, T) float32, preprocessed per model cfg
    y: np.ndarray                       # (N, k) float32 targets (regression units, or 0/1 class)
    groups: np.ndarray                  # (N,) str subject ids
    t0: np.ndarray                      # (N,) window start, s from record start
    record_ids: np.ndarray              # (N,) str
    task: str
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> "TaskData":
        idx = np.asarray(idx)
        m = dict(self.meta)
        if "source" in m and isinstance(m["source"], np.ndarray):
            m["source"] = m["source"][idx]
        return TaskData(self.x[idx], self.y[idx], self.groups[idx], self.t0[idx], self.record_ids[idx],
                        self.task, m)

    @property
    def subjects(self) -> np.ndarray:
        return np.unique(self.groups)


def task_model_cfg(task: str, cfg, channels=None, window_s=None, hop_s=None, band="task", spec: dict | None = None):
    """The model cfg for a task: task, outputs, units, the task's window unless given, and the band-pass:
    band="task" -> the task's band (TASK_SPECS: 0.05-8 Hz for rr, 0.5-8 Hz otherwise; a custom label's `band:`; the
    task defines what the input must contain, so it overrides the band of the cfg it starts from, e.g. a pretrained
    checkpoint's); a (lo, hi) tuple or None (no filter) sets it explicitly. `spec`: the task's (`task_spec`), for a
    custom label; default: the built-in task's."""
    spec = spec or task_spec(task)
    kw = dict(task=task, outputs=spec["outputs"], units=spec["units"],
              window_s=float(window_s or spec["window_s"]), hop_s=float(hop_s or spec["hop_s"]))
    if channels:
        kw["channels"] = tuple(channels)
    if isinstance(band, str):
        if band != "task":
            raise SqtoolError(f"band must be 'task', None or (lo, hi) Hz, got {band!r}")
        kw["band"] = spec["band"]
    else:
        kw["band"] = band
    return cfg.replace(**kw)


CUSTOM_HINT = "or a custom regression label of the --data dataset file, declared with unit:"


def task_spec(task: str, model_cfg=None, dataset=None) -> dict:
    """THE spec of a task (TASK_SPECS' keys: outputs, units, kind, window_s, hop_s, datasets, band, label;
    custom: True for a researcher's own label), every stage's one lookup:

        a built-in task (hr, rr, af, bp, quality)   TASK_SPECS[task]
        a model cfg fine-tuned on a custom label     from the cfg (task, outputs, units, window, hop, band):
                                                     the checkpoint describes itself, no dataset file needed
        a custom label of `dataset` (a DatasetFile)  from the file: outputs (NAME,), units (its unit:),
                                                     regression, the file's windows, its band: (default 0.5-8 Hz)

    Anything else is one line naming the known tasks."""
    if task in TASK_SPECS:
        return dict(TASK_SPECS[task], custom=False)
    if model_cfg is not None and getattr(model_cfg, "task", None) == task and tuple(model_cfg.outputs)[:1] == (task,):
        return dict(outputs=(task,), units=tuple(model_cfg.units[:1]), kind="regression",     # (a student: + quality)
                    window_s=float(model_cfg.window_s), hop_s=float(model_cfg.hop_s), datasets=(),
                    band=model_band(model_cfg), label=f"custom label '{task}' ({model_cfg.units[0]})", custom=True)
    src = (getattr(dataset, "labels", None) or {}).get(task)
    if src is not None and src.unit is not None:
        return dict(outputs=(task,), units=(src.unit,), kind="regression", window_s=float(dataset.windows.window_s),
                    hop_s=float(dataset.windows.hop_s), datasets=(), band=tuple(src.band) if src.band else DEFAULT_BAND,
                    label=f"custom label '{task}' ({src.unit}) from {dataset.path}", custom=True)
    raise unknown_task(task, TASKS, dataset)


def unknown_task(task: str, known, dataset=None) -> SqtoolError:
    """The one line for a task neither built in nor a custom label of `dataset` (a DatasetFile or None): the known
    tasks, the file's own labels (its parsed custom_labels only: nothing is read) and a near spelling."""
    import difflib
    own = list(getattr(dataset, "custom_labels", None) or []) if dataset is not None else []
    near = {n.lower(): n for n in (*known, *own)}
    close = difflib.get_close_matches(str(task).lower(), list(near), n=1, cutoff=0.6)
    return SqtoolError(f"unknown task '{task}' (known: {', '.join(known)}; {CUSTOM_HINT}"
                       + (f"; the file's own: {', '.join(own)}" if own else "")
                       + (f"; did you mean {near[close[0]]}?" if close else "") + ")")


# ----------------------------------------------------------------------------- folds

LOSO_MANY = 30          # leave-one-subject-out over more training subjects than this: a note on what it costs


def folds_note(k: int | None, n_folds: int) -> str | None:
    """One note line when --folds k asked for more folds than the subjects make (leave-one-subject-out then), or
    when the default leave-one-subject-out meets a large corpus (one model per subject: its cost grows with the
    subjects squared; k subject folds keep every subject out of its own fold's training too)."""
    if k and k > n_folds:
        return (f"note: --folds {k} with {n_folds} training subjects: {n_folds} folds of one subject each "
                "(leave-one-subject-out)")
    if not k and n_folds > LOSO_MANY:
        return (f"note: leave-one-subject-out over {n_folds} training subjects trains {n_folds} fold models before "
                "the final one; --folds 5 trains 5, each subject still scored by a model that never saw it")
    return None


def subject_folds(groups, k: int | None = None, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) per fold; every subject's windows are in exactly one test fold.

    k None, 0 or >= number of subjects: leave-one-subject-out (subjects in sorted order). Otherwise k
    folds of subjects, shuffled with `seed` and dealt round-robin (sizes differ by at most one subject).
    """
    groups = np.asarray(groups)
    subjects = np.unique(groups)
    if len(subjects) < 2:
        raise SqtoolError(f"need at least 2 subjects for subject folds, got {len(subjects)}")
    if k is not None and k == 1:
        raise SqtoolError("folds must be >= 2 (or 0 for leave-one-subject-out)")
    if not k or k >= len(subjects):
        parts = [[s] for s in subjects]
    else:
        perm = np.random.default_rng(seed).permutation(subjects)
        parts = [list(perm[i::k]) for i in range(k)]
    out = []
    for part in parts:
        test = np.isin(groups, part)
        out.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return out


# ----------------------------------------------------------------------------- loading

def load_task(task: str, data_root=None, model_cfg=None, *, max_records: int | None = None,
              seed: int = 0) -> TaskData:
    """Windows + targets + subject ids of `task`, preprocessed per `model_cfg` (fs, window, channels, norm,
    band).

    data_root: a folder holding the dataset folders (troika/, bidmc/, ...), or None / "synthetic" for the
    embedded synthetic default. model_cfg: a ModelCfg (default: ModelCfg's preprocessing defaults, 40 Hz,
    PPG, min-max, DEFAULT_BAND, with the task's window; only the preprocessing fields are used here).
    Segments shorter than the window (PPG-BP's 2.1 s) are tiled to it (`tile_record`): counted in
    meta["tiled_segments"] and said in one warning line. A classification task left with one class is refused.
    """
    from sqtool.data.dataset_tasks import dataset_of, load_task_from_dataset
    ds = dataset_of(data_root)                  # a dataset.yaml or a built-in name: the dataset-file path
    spec = task_spec(task, model_cfg, ds)
    if model_cfg is None:
        model_cfg = task_model_cfg(task, ModelCfg(name="default", family="resnet1d"), spec=spec)
    if spec["custom"] and (ds is None or task not in ds.labels):
        raise SqtoolError(f"task '{task}' is a custom label: give --data the dataset file that declares it "
                          f"(labels: {{{task}: {{column: ..., unit: ...}}}}), not {data_root or 'synthetic'}")
    if data_root is None or str(data_root) == "synthetic":
        td = _synthetic(task, model_cfg, max_records, seed)
    elif ds is not None:
        td = load_task_from_dataset(task, ds, model_cfg, max_records)
        data_root = str(ds.path)
    else:                                       # a data root: each built-in folder through its shipped yaml
        root = Path(data_root)
        if not root.is_dir():
            raise data_root_error(root)
        need = spec["datasets"] if task != "quality" else ("but_ppg", "mw_ppg")
        for ds in need:
            if not (root / ds).is_dir():
                from sqtool.data.dataset_file import builtin_names
                raise SqtoolError(f"task '{task}' needs the {ds} dataset: {root / ds} not found under the data root"
                                  + dataset_folder_hint(root, builtin_names()) + _own_label_hint(root, task))
        if task == "quality":
            td = _quality(root, model_cfg, max_records)
        else:
            td = load_task_from_dataset(task, _builtin(need[0], root), model_cfg, max_records)
            td.meta["label"] = spec["label"]
    if len(td) == 0:
        raise SqtoolError(f"task '{task}': no labelled windows of {model_cfg.window_s:g} s found")
    if spec["kind"] == "classification" and len(np.unique(td.y)) == 1:   # e.g. --max-records keeping one class
        one = {"af": ("non-AF", "AF"), "quality": ("poor", "good")}[task][int(td.y[0, 0])]
        raise SqtoolError(f"{td.meta.get('dataset_file') or data_root or 'synthetic'}: task '{task}' has only one "
                          f"class ({len(td)} windows all {one}); a classifier needs windows of both")
    if k := td.meta.get("tiled_segments"):              # repeated to the window, as no window could be cut
        from sqtool.data.dataset_tasks import warn
        warn(f"{td.meta.get('dataset')}: {k} segments shorter than the {model_cfg.window_s:g} s window were tiled "
             "to it")
    td.meta.update(task=task, fs=model_cfg.fs, window_s=model_cfg.window_s, hop_s=model_cfg.hop_s,
                   channels=list(model_cfg.channels), norm=model_cfg.norm,
                   band=None if model_band(model_cfg) is None else list(model_band(model_cfg)),
                   outputs=list(spec["outputs"]),
                   units=list(spec["units"]), kind=spec["kind"],
                   data_root="synthetic" if data_root in (None, "synthetic") else str(data_root))
    return td


def _own_label_hint(root: Path, task: str) -> str:
    """'' or, when data root `root` holds dataset folders of one's own whose dataset.yaml declares `task`'s label,
    the sentence naming them: a root is read for the task's built-in dataset only, a dataset file is given itself."""
    from sqtool.data.dataset_file import TASK_LABELS, dataset_folders, load_dataset_file
    label = TASK_LABELS.get(task, task)
    own = []
    for d in dataset_folders(root):
        try:
            if label in load_dataset_file(d / "dataset.yaml").labels:
                own.append(str(d / "dataset.yaml"))
        except SqtoolError:
            continue
    if not own:
        return ""
    return (f"; a data root is read for that built-in dataset only: give your dataset file with the {label} label "
            f"as --data ({' or '.join(own)})")


def model_band(cfg):
    """The cfg's band-pass (lo, hi) Hz, or None; a cfg without the field (older code) means the default."""
    band = getattr(cfg, "band", DEFAULT_BAND)
    if band is None:
        return None
    if len(band) != 2:
        raise SqtoolError(f"model band must be (lo, hi) Hz or None, got {band!r}")
    return tuple(None if b is None else float(b) for b in band)


def _windows(rec, cfg):
    from sqtool.data.preprocess import make_windows
    return make_windows(rec, channels=list(cfg.channels), fs=cfg.fs, window_s=cfg.window_s,
                        hop_s=cfg.hop_s, norm=cfg.norm, band=model_band(cfg),
                        causal=getattr(cfg, "band_phase", "zero") == "causal")


def _require_channels(rec, cfg, task):
    missing = [c for c in cfg.channels if c not in rec.signals]
    if missing:
        raise SqtoolError(f"task '{task}': {rec.dataset} record {rec.record_id} has no channel "
                          f"{', '.join(missing)} (has {', '.join(rec.signals)}); choose --channels from those")


class _Acc:
    """Collects windows of many records into one TaskData."""

    def __init__(self, task):
        self.task, self.x, self.y, self.g, self.t0, self.rid, self.src = task, [], [], [], [], [], []
        self.subjects: set[str] = set()         # subjects with windows so far
        self.tiled = 0                          # recordings shorter than the window, tiled to it (`filled`)

    def filled(self, rec, window_s: float):
        """`rec` tiled to `window_s` when shorter (`tile_record`), counted by the meta["tiled_from_s"] that
        tiling sets: the one count of meta["tiled_segments"] (load_task says it once)."""
        out = tile_record(rec, window_s)
        self.tiled += "tiled_from_s" in out.meta
        return out

    def add(self, x, y, subject, t0, record_id, source=""):
        n = len(x)
        if n == 0:
            return
        self.subjects.add(str(subject))
        self.x.append(np.asarray(x, np.float32))
        self.y.append(np.asarray(y, np.float32).reshape(n, -1))
        self.g += [str(subject)] * n
        self.t0.append(np.asarray(t0, np.float64).reshape(n))
        self.rid += [str(record_id)] * n
        self.src += [source] * n

    def build(self, **meta) -> TaskData:
        if self.tiled:
            meta["tiled_segments"] = self.tiled
        if not self.x:
            return TaskData(np.zeros((0, 1, 1), np.float32), np.zeros((0, 1), np.float32),
                            np.array([], str), np.zeros(0), np.array([], str), self.task, meta)
        if len(set(self.src)) > 1:
            meta["source"] = np.array(self.src)
        return TaskData(np.concatenate(self.x), np.concatenate(self.y), np.array(self.g),
                        np.concatenate(self.t0), np.array(self.rid), self.task, meta)


def _label_at_centres(lab, t0, window_s):
    """Per-window label value: exact when the windows coincide with the label windows, else interpolated
    at the window centre (label times are window starts)."""
    starts = np.asarray(lab.times, float)
    vals = np.asarray(lab.values, float)
    lw = lab.window_s or window_s
    centre = np.asarray(t0) + window_s / 2
    lab_centre = starts + lw / 2
    inside = (centre >= lab_centre[0] - 1e-6) & (centre <= lab_centre[-1] + 1e-6)
    return np.interp(centre, lab_centre, vals), inside


def breaths_per_min_windows(breath_times: np.ndarray, t0: np.ndarray, window_s: float) -> np.ndarray:
    """(W,) breaths/min of windows [t0, t0 + window_s): 60 (n - 1) / (t_last - t_first) over the n breaths inside
    each, NaN where n < 3 (or the breaths share one time); the rr loaders' truth and predict's (one rule)."""
    bt = np.sort(np.asarray(breath_times, np.float64))                  # (B,) NaN sorted last, never inside
    t0 = np.atleast_1d(np.asarray(t0, np.float64))                      # (W,)
    lo = np.searchsorted(bt, t0, side="left")                           # (W,) first breath >= t0
    hi = np.searchsorted(bt, t0 + window_s, side="left")                # (W,) first breath >= t0 + window_s
    n = hi - lo
    ok = n >= 3
    first = bt[np.where(ok, lo, 0)] if len(bt) else np.zeros(len(t0))
    last = bt[np.where(ok, hi - 1, 0)] if len(bt) else np.zeros(len(t0))
    ok &= last > first
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 60.0 * (n - 1) / (last - first), np.nan)


def breaths_per_min(breath_times: np.ndarray, t0: float, window_s: float) -> float:
    """One window's breaths/min (`breaths_per_min_windows`)."""
    return float(breaths_per_min_windows(breath_times, np.array([t0]), window_s)[0])


def _builtin(name: str, root: Path):
    """The shipped dataset file of built-in `name` rooted in data root `root` (its exclusions included)."""
    from sqtool.data.dataset_file import load_builtin
    return load_builtin(name, root)


def _quality(root: Path, cfg, max_records) -> TaskData:
    import dataclasses

    from sqtool.data.quality import is_good, record_quality
    from sqtool.data.record import values_at
    if tuple(cfg.channels) != ("ppg",):
        raise SqtoolError("task 'quality' uses one PPG channel: give --channels ppg")
    acc = _Acc("quality")
    # 1. BUT PPG: 10 s smartphone PPG, human label good/poor
    for i, rec in enumerate(_builtin("but_ppg", root).records()):
        if max_records and i >= max_records:
            break
        if "quality" not in rec.labels:
            continue
        w = _windows(acc.filled(rec, cfg.window_s), cfg)     # 10 s recordings: tiled to a longer window
        acc.add(w.x[:1], [float(rec.labels["quality"].values)], f"but_ppg:{rec.subject}", w.t0[:1],
                f"but_ppg:{rec.record_id}", "but_ppg")
    # 2. multi-wavelength PPG: each wavelength with its own per-sample artifact flags
    for i, rec in enumerate(_builtin("mw_ppg", root).records()):
        if max_records and i >= max_records:
            break
        for ch in [c for c in rec.signals if c.startswith("ppg")]:
            lab = rec.labels.get(f"artifact_{ch}")
            if lab is None:
                continue
            one = dataclasses.replace(rec, signals={"ppg": rec.signals[ch]}, fs={"ppg": rec.fs[ch]}, labels={})
            w = _windows(one, cfg)
            frac = flagged_fraction(lab.values, lab.fs, w.t0, cfg.window_s)
            ok = (frac <= GOOD_FLAGGED) | (frac > POOR_FLAGGED)
            acc.add(w.x[ok], (frac[ok] <= GOOD_FLAGGED).astype(float), f"mw_ppg:{rec.subject}", w.t0[ok],
                    f"mw_ppg:{rec.record_id}:{ch}", "mw_ppg")
    # 3. index-labelled: TROIKA wrist PPG (+ accelerometer) windows scored by the quality index
    if (root / "troika").is_dir():
        for i, rec in enumerate(_builtin("troika", root).records()):
            if rec.meta.get("layout") != "training" or (max_records and i >= max_records):
                continue
            w = _windows(rec, cfg)
            if len(w) == 0:                                 # shorter than one window
                continue
            q = record_quality(rec, window_s=cfg.window_s, hop_s=cfg.hop_s)
            s = values_at(q["t0"], q["score"], w.t0)         # by start time: a gap's window keeps its place in q only
            ok = np.isfinite(s)
            acc.add(w.x[ok], is_good(s[ok]).astype(float), f"troika:{rec.subject}", w.t0[ok],
                    f"troika:{rec.record_id}", "troika_index")
    return acc.build(dataset="but_ppg+mw_ppg+troika",
                     label="1 good / 0 poor: BUT PPG human label; MW-PPG human artifact flags (poor if > 10 % "
                           "of the window flagged, good if none); TROIKA windows by the quality index (> 0.5 good)")


# ----------------------------------------------------------------------------- synthetic default

SYNTH_SUBJECTS, SYNTH_DURATION_S = 8, 120.0


def flagged_fraction(flags: np.ndarray, flags_fs: float, t0: np.ndarray, window_s: float) -> np.ndarray:
    """Fraction of artifact-flagged samples in each window [t0, t0 + window_s)."""
    c = np.concatenate([[0], np.cumsum(np.asarray(flags, float) > 0)])
    lo = np.clip(np.round(np.asarray(t0) * flags_fs).astype(int), 0, len(flags))
    hi = np.clip(lo + int(round(window_s * flags_fs)), 0, len(flags))
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)


POOR_FLAGGED, GOOD_FLAGGED = 0.10, 0.0      # quality from flags: poor if > 10 % flagged, good if none


def _synthetic(task, cfg, max_records, seed) -> TaskData:
    """The task on `sqtool.data.synthetic` recordings (125 Hz wrist PPG + acc with known labels)."""
    from sqtool.data.synthetic import synth_corpus
    if task == "bp":
        raise SqtoolError("task 'bp' has no synthetic version (blood pressure is not simulated); "
                          "give --data (a data root) with the ppg_bp dataset")
    n = max_records or SYNTH_SUBJECTS
    recs = synth_corpus(n_subjects=n, duration_s=max(SYNTH_DURATION_S, 2 * cfg.window_s), seed=seed,
                        af_fraction=0.5 if task == "af" else 0.25)
    acc = _Acc(task)
    for rec in recs:
        _require_channels(rec, cfg, task)
        w = _windows(rec, cfg)
        if task in ("hr", "rr"):
            y, ok = _label_at_centres(rec.labels[task], w.t0, cfg.window_s)
        elif task == "af":
            y, ok = np.full(len(w), float(rec.labels["rhythm"].values == 1)), np.ones(len(w), bool)
        else:
            lab = rec.labels["artifact"]
            frac = flagged_fraction(lab.values, lab.fs, w.t0, cfg.window_s)
            y = (frac <= GOOD_FLAGGED).astype(float)
            ok = (frac <= GOOD_FLAGGED) | (frac > POOR_FLAGGED)
        acc.add(w.x[ok], y[ok], rec.subject, w.t0[ok], rec.record_id)
    return acc.build(dataset="synthetic", label=f"synthetic {task} (sqtool.data.synthetic, seed {seed})")
