"""Knowledge distillation: a fine-tuned teacher's outputs (and features) teach a compact student.

The story, top to bottom:

1. `student_cfg_from_teacher` builds the student's ModelCfg from the teacher's task contract: the
   student runs at the teacher's rate and window, predicts the teacher's outputs in the teacher's
   units and normalisation, and may add input channels (the accelerometer) and a `quality_logit`
   output (the device's "can I trust this window" score).
2. `teacher_outputs` runs the teacher once over every window and caches its normalised outputs and
   its pooled representation in `teacher_cache.npz`, keyed by the teacher checkpoint's sha256 and a
   hash of the windows: a second run on the same data reuses it.
3. `fit` trains the student on a mix of the labelled loss and the distillation loss

       loss = (1 - alpha) * L_label(student, y) + alpha * L_distill(student, teacher)
              + feature_weight * (1 - cos(P(student features), teacher features))
              + quality_weight * BCE(quality_logit, quality target)

   where P is a learned 1x1 projection (a Linear on the pooled features) into the teacher's
   representation. Regression outputs use a Huber loss in normalised units; binary logits use BCE
   (distillation against the teacher's tempered probability). `alpha = 0` is label-only training.

The same `fit` runs quantization-aware training (`sqtool.compress.qat`) at a lower learning rate.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_write_bytes
from sqtool.core.io import NPZ_ERRORS
from sqtool.core.optim import one_cycle
from sqtool.core.trainlog import add_epoch
from sqtool.models.registry import ModelCfg, get_model_cfg, list_models

QUALITY_OUTPUT = "quality_logit"
CLASS_UNITS = ("logit", "class")


# ----------------------------------------------------------------------------- task contract

@dataclass
class OutputSpec:
    """Which student outputs are regression targets, which are binary logits, which is quality."""
    names: tuple[str, ...]
    units: tuple[str, ...]
    regression: list[int]           # columns of y / outputs learned as (y - mean) / std
    binary: list[int]               # columns of y / outputs that are logits of a 0/1 label
    quality: int | None             # student output index of the quality logit (not in y)
    mean: np.ndarray                # (k,) per task output (0 for logits)
    std: np.ndarray                 # (k,)

    @property
    def n_task(self) -> int:
        return len(self.regression) + len(self.binary)


def output_spec(cfg: ModelCfg) -> OutputSpec:
    """Split a model's outputs into task regression / binary columns and the optional quality head."""
    names = tuple(cfg.outputs)
    units = tuple(cfg.units) if cfg.units else ("",) * len(names)
    task_idx = [i for i, n in enumerate(names) if n != QUALITY_OUTPUT]
    if task_idx != list(range(len(task_idx))):
        raise SqtoolError(f"{cfg.name}: '{QUALITY_OUTPUT}' must be the last output")
    quality = names.index(QUALITY_OUTPUT) if QUALITY_OUTPUT in names else None
    reg = [i for i in task_idx if units[i] not in CLASS_UNITS]
    binary = [i for i in task_idx if units[i] in CLASS_UNITS]
    k = len(task_idx)
    mean = np.zeros(k, np.float32)
    std = np.ones(k, np.float32)
    if cfg.target_mean:
        mean[:] = np.asarray(cfg.target_mean[:k], np.float32)
    if cfg.target_std:
        std[:] = np.asarray(cfg.target_std[:k], np.float32)
    if np.any(std <= 0):
        raise SqtoolError(f"{cfg.name}: target_std must be positive, got {list(std)}")
    return OutputSpec(names, units, reg, binary, quality, mean, std)


def fitting_students(teacher_cfg: ModelCfg) -> list[str]:
    """The registry's students (role student) for a teacher, in registration order: a spectral heart-rate
    teacher's (family spec_cnn) read its channels, rate, window, hop, band and HR bins; a time-domain teacher's
    (cnn1d_student) have a total stride dividing its window."""
    from sqtool.models.spectral import SPECTRAL_FAMILY
    from sqtool.models.student import students_fitting
    if teacher_cfg.family != SPECTRAL_FAMILY:
        return students_fitting(teacher_cfg.n_samples)

    def reads_as_teacher(c: ModelCfg) -> bool:
        return (all(getattr(c, k) == getattr(teacher_cfg, k) for k in ("channels", "fs", "window_s", "hop_s", "band"))
                and list(c.arch.get("bins_bpm", [])) == list(teacher_cfg.arch.get("bins_bpm", [])))
    return [n for n in list_models(SPECTRAL_FAMILY, registered_order=True, role="student")
            if reads_as_teacher(get_model_cfg(n))]


def preferred_student(teacher_cfg: ModelCfg) -> str:
    """Its family's `_s`: the student `default_student` takes wherever it fits the teacher."""
    from sqtool.models.spectral import SPECTRAL_FAMILY
    return "spec_student_s" if teacher_cfg.family == SPECTRAL_FAMILY else "cnn1d_student_s"


def stand_in(teacher_cfg: ModelCfg, student: str = "") -> tuple[str, str] | None:
    """(the preferred student, why it does not fit) where no `student` is asked and `default_student` takes
    another (cnn1d_student_s16 for a 10 s window at 40 Hz: cnn1d_student_s's total stride 32 does not divide 400
    samples); None where the student was asked or the preferred one fits."""
    from sqtool.models.spectral import SPECTRAL_FAMILY
    from sqtool.models.student import stride_of
    preferred = preferred_student(teacher_cfg)
    if student or default_student(teacher_cfg) == preferred:
        return None
    t = teacher_cfg
    if t.family == SPECTRAL_FAMILY:
        return preferred, "it does not read the teacher's channels, rate, window, hop, band and HR bins"
    return preferred, (f"its total stride {stride_of(get_model_cfg(preferred).arch['convs'])} does not divide the "
                       f"window's {t.n_samples} samples ({t.window_s:g} s at {t.fs:g} Hz)")


def within_budget(teacher_cfg: ModelCfg, names: list[str], preferred: str) -> list[str]:
    """Of the time-domain students `names`, those whose int8 weights and MACs per window, on the teacher's window
    and channels, keep within the `preferred` student's budget (`STUDENT_BUDGETS`), smallest first (by weights)."""
    from sqtool.models.student import STUDENT_BUDGETS, student_budget
    limits = STUDENT_BUDGETS.get(preferred, {})
    sized = []
    for n in names:
        c = get_model_cfg(n).replace(fs=teacher_cfg.fs, window_s=teacher_cfg.window_s,
                                     channels=tuple(teacher_cfg.channels),
                                     outputs=tuple(o for o in teacher_cfg.outputs if o != QUALITY_OUTPUT)
                                     + (QUALITY_OUTPUT,))
        b = student_budget(c)
        if all(b[k] <= v for k, v in limits.items()):
            sized.append((b["int8_weights"], n))
    return [n for _, n in sorted(sized)]


def default_student(teacher_cfg: ModelCfg, fits: list[str] | None = None, where: str = "") -> str:
    """The student of a teacher when none is asked, the one rule (quantize's default; the fine-tunes' next lines
    name no --student, so they get it too): its family's `_s` (spec_student_s for a spectral heart-rate teacher,
    cnn1d_student_s for a time-domain one) when it fits the teacher (`fitting_students`); else, time-domain, the
    largest fitting student within `_s`'s budget on the teacher's window (`within_budget`: cnn1d_student_s16 for a
    10 s window at 40 Hz, cnn1d_student_xs for 30 s, where s16 would need 1.7 M MACs); else the first registry
    student that fits (spec_student_s_accsum for a teacher reading the summed accelerometer). None fitting is one
    line naming the teacher's window and rate (`where`: how to name the teacher, default its model name)."""
    from sqtool.models.spectral import SPECTRAL_FAMILY
    from sqtool.models.student import STUDENT_FAMILY, stride_of
    spectral = teacher_cfg.family == SPECTRAL_FAMILY
    preferred = preferred_student(teacher_cfg)
    fits = fitting_students(teacher_cfg) if fits is None else fits
    if fits:
        if preferred in fits:
            return preferred
        if not spectral and (within := within_budget(teacher_cfg, fits, preferred)):
            return within[-1]
        return fits[0]
    t = teacher_cfg
    if spectral:
        took = f"channels {', '.join(t.channels)}"
        why = "a student reads the teacher's channels, rate, window, hop, band and HR bins"
    else:
        took = f"{t.n_samples} samples"
        strides = sorted({stride_of(get_model_cfg(n).arch["convs"])
                          for n in list_models(STUDENT_FAMILY, registered_order=True, role="student")})
        why = f"their total strides {', '.join(map(str, strides))} must divide the window's samples"
    raise SqtoolError(f"{where or 'teacher ' + t.name} takes {t.window_s:g} s windows at {t.fs:g} Hz ({took}): no "
                      f"registry {SPECTRAL_FAMILY if spectral else STUDENT_FAMILY} student fits it ({why})")


def student_for(teacher_cfg: ModelCfg, student: str = "", where: str = "") -> str:
    """The student a teacher is distilled into: `student`, or with '' the default, `default_student`. A model of
    the other family is one line naming the family the teacher needs and the registry's students that fit it
    (`fitting_students`)."""
    from sqtool.models.spectral import SPECTRAL_FAMILY
    from sqtool.models.student import STUDENT_FAMILY
    if not student:
        return default_student(teacher_cfg, where=where)
    spectral = teacher_cfg.family == SPECTRAL_FAMILY
    family = SPECTRAL_FAMILY if spectral else STUDENT_FAMILY
    got = get_model_cfg(student).family
    if got != family:                                   # the fitting students are listed only for this message
        fits = fitting_students(teacher_cfg)
        kind = "a spectral heart-rate model" if spectral else f"a time-domain model ({teacher_cfg.family})"
        raise SqtoolError(f"{where or 'teacher ' + teacher_cfg.name} is {kind}: --student {student} ({got}) is not a "
                          f"student for it, a {family} model is; "
                          + (f"students that fit it: {', '.join(fits)} (default {default_student(teacher_cfg, fits)})"
                             if fits else f"no registry {family} model fits it"))
    return student


def student_cfg_from_teacher(teacher_cfg: ModelCfg, student: str, channels: tuple[str, ...] | None = None,
                             quality_head: bool = True, width_mult: float = 1.0,
                             depth_delta: int = 0) -> ModelCfg:
    """The student's ModelCfg: the registry architecture + the teacher's task contract.

    `student` '' is the default (`student_for`). Inherited: fs, window_s, hop_s, band, band_phase, norm, task, outputs, units,
    target_mean/std. The student may add input channels (default: the registry student's channels, which must
    include the teacher's) and the quality output.
    """
    from sqtool.models.student import check_window, widen

    base = get_model_cfg(student_for(teacher_cfg, student))
    chans = tuple(channels) if channels else tuple(base.channels)
    missing = [c for c in teacher_cfg.channels if c not in chans]
    if missing:
        raise SqtoolError(f"the student's channels {list(chans)} lack the teacher's input channel(s) {missing}")
    t_outputs = [o for o in teacher_cfg.outputs if o != QUALITY_OUTPUT]
    if not t_outputs:
        raise SqtoolError(f"teacher {teacher_cfg.name} has no task outputs")
    k = len(t_outputs)
    units = list(teacher_cfg.units[:k]) if teacher_cfg.units else [""] * k
    mean = list(teacher_cfg.target_mean[:k]) if teacher_cfg.target_mean else [0.0] * k
    std = list(teacher_cfg.target_std[:k]) if teacher_cfg.target_std else [1.0] * k
    outputs = list(t_outputs)
    if quality_head:
        outputs.append(QUALITY_OUTPUT)
        units.append("logit")
        mean.append(0.0)
        std.append(1.0)
    cfg = base.replace(fs=teacher_cfg.fs, window_s=teacher_cfg.window_s, hop_s=teacher_cfg.hop_s,
                       band=teacher_cfg.band, band_phase=getattr(teacher_cfg, "band_phase", "zero"),
                       norm=teacher_cfg.norm, task=teacher_cfg.task, channels=chans, outputs=tuple(outputs),
                       units=tuple(units), target_mean=tuple(mean), target_std=tuple(std), quant=None)
    if width_mult != 1.0 or depth_delta:
        cfg = widen(cfg, width_mult, depth_delta)
    check_window(cfg)                                   # before any data is read or a run directory made
    return cfg


def channel_index(student_cfg: ModelCfg, teacher_cfg: ModelCfg) -> list[int]:
    """Indices of the teacher's input channels inside the student's (superset) window tensor."""
    return [list(student_cfg.channels).index(c) for c in teacher_cfg.channels]


# ----------------------------------------------------------------------------- targets

def normalise_targets(y: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """(N, k) labels in units -> the normalised space the networks predict in."""
    y = np.asarray(y, np.float32)
    if y.ndim != 2 or y.shape[1] < spec.n_task:
        raise SqtoolError(f"labels have shape {y.shape}; the model predicts {spec.n_task} task output(s)")
    y = y[:, :spec.n_task].copy()
    y[:, spec.regression] = (y[:, spec.regression] - spec.mean[spec.regression]) / spec.std[spec.regression]
    return y


def denormalise(out: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """(N, >=k) network outputs -> (N, k) task outputs in units (logits stay logits)."""
    o = np.asarray(out, np.float32)[:, :spec.n_task].copy()
    o[:, spec.regression] = o[:, spec.regression] * spec.std[spec.regression] + spec.mean[spec.regression]
    return o


# ----------------------------------------------------------------------------- teacher cache

def data_hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def predict(model, x: np.ndarray, batch_size: int = 256, features: bool = False):
    """Run a model over (N, C, T) windows in batches, eval mode; returns outputs (and pooled features)."""
    import torch

    from sqtool.models.student import value as _value

    model.eval()
    outs, feats = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[i:i + batch_size], np.float32))      # (B, C, T)
            if features:
                if hasattr(model, "encoder"):                                      # teacher
                    h = model.encoder(xb)                                          # (B, D)
                    o = model.head(h)                                              # (B, k)
                else:                                                              # student
                    f = model.features(xb)                                         # once, not twice
                    h = _value(f)                                                  # (B, C')
                    o = _value(model.fc(f))                                        # (B, k)
                feats.append(h.numpy())
            else:
                o = model(xb)
            outs.append(o.numpy())
    out = np.concatenate(outs).astype(np.float32)
    return (out, np.concatenate(feats).astype(np.float32)) if features else out


def teacher_outputs(teacher, teacher_sha256: str, x: np.ndarray, ch_idx: list[int],
                    cache_path: str | Path | None = None, batch_size: int = 256, write: bool = True) -> dict:
    """Teacher's normalised outputs (N, k) and representation (N, D) for every window, cached.

    The cache is reused only when it was made by the same checkpoint (sha256) on the same windows
    (hash of the teacher's input: x's teacher channels); otherwise it is recomputed and rewritten. A file there
    that is no teacher cache at all (no `key` / `teacher_sha256` arrays: someone's data) is never overwritten: one
    line, before the teacher runs. write=False: the caller writes it (`save_teacher_cache`) once nothing refuses the
    run (a quantize --resume refused leaves the killed run's cache as it was).
    """
    xt = np.ascontiguousarray(x[:, ch_idx])                                 # (N, C_teacher, T)
    key = hashlib.sha256(f"{teacher_sha256}:{data_hash(xt)}".encode()).hexdigest()
    if cache_path is not None and Path(cache_path).exists():
        ours = False
        try:
            with np.load(cache_path, allow_pickle=False) as z:
                ours = {"key", "teacher_sha256"} <= set(z.files)
                if ours and str(z["key"]) == key:
                    return {"out": z["out"], "feat": z["feat"], "key": key, "reused": True}
        except NPZ_ERRORS:
            ours = _torn_cache(cache_path)  # unreadable: a cache torn by a kill is rewritten, anything else kept
        if not ours:
            raise SqtoolError(f"--teacher-cache {cache_path} exists and is not a teacher cache (a .npz with key and "
                              "teacher_sha256): it would be overwritten; give a new path or remove it")
    if getattr(teacher, "head", getattr(teacher, "fc", None)) is None:     # a teacher's head, a student's fc
        raise SqtoolError("the teacher has no task head (a pretraining checkpoint?)")
    t0 = time.perf_counter()
    out, feat = predict(teacher, xt, batch_size, features=True)
    tc = {"out": out, "feat": feat, "key": key, "reused": False, "seconds": time.perf_counter() - t0}
    if write:
        save_teacher_cache(cache_path, tc, teacher_sha256)
    return tc


def save_teacher_cache(cache_path: str | Path | None, tc: dict, teacher_sha256: str) -> None:
    """Write `teacher_outputs`' result `tc` to `cache_path` (atomically); nothing when it was read from there, or
    for no path."""
    if cache_path is None or tc["reused"]:
        return
    import io
    buf = io.BytesIO()
    np.savez(buf, key=np.asarray(tc["key"]), out=tc["out"], feat=tc["feat"], teacher_sha256=np.asarray(teacher_sha256))
    atomic_write_bytes(cache_path, buf.getvalue())


def _torn_cache(path) -> bool:
    """An unreadable file at the cache path that a killed write left behind: empty, or a zip archive (np.savez)
    cut short. atomic_write_bytes never leaves one, so this is only ever an old tool's or a copy's."""
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        head = f.read(2)
    return head in (b"", b"PK")


# ----------------------------------------------------------------------------- training

@dataclass
class FitCfg:
    epochs: int = 30
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 1e-4
    alpha: float = 0.7              # weight of the distillation loss (0 = labels only)
    temperature: float = 2.0        # for binary logits
    feature_weight: float = 0.0     # cosine loss on the projected pooled features
    quality_weight: float = 0.3     # BCE on the quality logit
    huber_delta: float = 0.25       # in normalised units (0.25 * 40 BPM = 10 BPM)
    stretch: float = 0.0            # time-stretch augmentation: slow windows down by up to this fraction
    seed: int = 0


RATE_UNITS = ("bpm", "breaths/min")   # outputs that are rates: they scale with a time stretch


def time_stretch(xb, yb, tb, spec: OutputSpec, max_slow: float, norm: str, gen):
    """Augment a batch by slowing each window down by r in [1 - max_slow, 1] (half the windows).

    x'(i) = x(i r) (linear interpolation; r <= 1 only reads inside the window), so every rhythm in the
    window, the pulse and the wrist motion alike, slows by r and a rate label becomes rate * r. The
    window is re-normalised per channel as the data pipeline does. Teacher targets (`tb`) scale the
    same way (the teacher's answer for the slowed window, to first order).
    """
    import torch

    b, _, t = xb.shape
    r = 1 - max_slow * torch.rand(b, generator=gen)
    r = torch.where(torch.rand(b, generator=gen) < 0.5, r, torch.ones_like(r))          # (B,)
    pos = torch.arange(t, dtype=torch.float32)[None, :] * r[:, None]                      # (B, T)
    i0 = pos.floor().long().clamp(max=t - 2)
    w = (pos - i0)[:, None, :]                                                            # (B, 1, T)
    idx = i0[:, None, :].expand(-1, xb.shape[1], -1)                                      # (B, C, T)
    x = xb.gather(2, idx) * (1 - w) + xb.gather(2, idx + 1) * w                           # (B, C, T)
    if norm == "minmax":
        lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-8)
    elif norm == "zscore":
        x = (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp_min(1e-8)
    cols = [i for i in spec.regression if spec.units[i] in RATE_UNITS]
    if not cols:
        return xb, yb, tb
    mean, std = torch.as_tensor(spec.mean), torch.as_tensor(spec.std)

    def scale(v):
        if v is None:
            return None
        v = v.clone()
        for c in cols:
            v[:, c] = ((v[:, c] * std[c] + mean[c]) * r - mean[c]) / std[c]
        return v
    return x, scale(yb), scale(tb)


def _task_loss(pred, target, spec: OutputSpec, delta: float, temperature: float = 1.0, soft: bool = False):
    """Huber on regression columns + BCE on binary columns; `soft` = target is a teacher logit."""
    import torch
    import torch.nn.functional as F

    loss = pred.new_zeros(())
    if spec.regression:
        r = spec.regression
        loss = loss + F.huber_loss(pred[:, r], target[:, r], delta=delta)
    if spec.binary:
        b = spec.binary
        if soft:
            p = torch.sigmoid(target[:, b] / temperature)
            loss = loss + F.binary_cross_entropy_with_logits(pred[:, b] / temperature, p) * temperature ** 2
        else:
            loss = loss + F.binary_cross_entropy_with_logits(pred[:, b], target[:, b])
    return loss


def fit(model, x: np.ndarray, y_norm: np.ndarray, spec: OutputSpec, cfg: FitCfg,
        teacher_out: np.ndarray | None = None, teacher_feat: np.ndarray | None = None,
        quality_target: np.ndarray | None = None, projector=None, log=None, rows=None) -> dict:
    """Train `model` (float student or its Brevitas twin) in place; returns the loss history. `log`: a line per
    epoch; `rows`: a core.trainlog.FitRows each epoch's loss and lr go to (RUN/log.csv).

    x (N, C, T) float32 windows; y_norm (N, k) normalised labels; teacher_out (N, k) normalised
    teacher outputs; teacher_feat (N, D); quality_target (N,) in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    from sqtool.models.student import value as _value

    n = len(x)
    if n == 0:
        raise SqtoolError("no training windows")
    use_distill = teacher_out is not None and cfg.alpha > 0
    use_feat = teacher_feat is not None and cfg.feature_weight > 0 and projector is not None
    norm = getattr(getattr(model, "cfg", None), "norm", "minmax")
    use_quality = spec.quality is not None and quality_target is not None and cfg.quality_weight > 0
    xt = torch.as_tensor(np.asarray(x, np.float32))
    yt = torch.as_tensor(np.asarray(y_norm, np.float32))
    tt = torch.as_tensor(np.asarray(teacher_out, np.float32)[:, :spec.n_task]) if use_distill else None
    ft = torch.as_tensor(np.asarray(teacher_feat, np.float32)) if use_feat else None
    qt = torch.as_tensor(np.asarray(quality_target, np.float32)) if use_quality else None
    params = [p for p in list(model.parameters()) + (list(projector.parameters()) if use_feat else [])
              if p.requires_grad]      # a frozen output range stays out of the optimiser
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size))
    sched = one_cycle(opt, cfg.lr, steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        if use_feat:
            projector.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "label": 0.0, "distill": 0.0, "feature": 0.0, "quality": 0.0}
        nb = 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if len(idx) < 2:
                continue
            xb, yb, tb = xt[idx], yt[idx], tt[idx] if use_distill else None            # (B, C, T)
            if cfg.stretch > 0:
                xb, yb, tb = time_stretch(xb, yb, tb, spec, cfg.stretch, norm, gen)
            feats = model.features(xb)                                              # (B, C')
            out = _value(model.fc(feats))                                           # (B, k [+1])
            l_label = _task_loss(out[:, :spec.n_task], yb, spec, cfg.huber_delta)
            loss = (1 - cfg.alpha) * l_label if use_distill else l_label
            if use_distill:
                l_dist = _task_loss(out[:, :spec.n_task], tb, spec, cfg.huber_delta,
                                    cfg.temperature, soft=True)
                loss = loss + cfg.alpha * l_dist
                sums["distill"] += l_dist.item()
            if use_feat:
                z = projector(_value(feats))                                        # (B, D)
                l_feat = 1 - F.cosine_similarity(z, ft[idx], dim=1).mean()
                loss = loss + cfg.feature_weight * l_feat
                sums["feature"] += l_feat.item()
            if use_quality:
                l_q = F.binary_cross_entropy_with_logits(out[:, spec.quality], qt[idx])
                loss = loss + cfg.quality_weight * l_q
                sums["quality"] += l_q.item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            sums["loss"] += loss.item()
            sums["label"] += l_label.item()
            nb += 1
        rec = {"epoch": epoch + 1, "seconds": time.perf_counter() - t0,
               **{k: v / max(nb, 1) for k, v in sums.items()}}
        history.append(rec)
        add_epoch(rows, rec["loss"], opt.param_groups[0]["lr"])      # and its row in log.csv
        if log:
            log(f"  epoch {epoch + 1}/{cfg.epochs}  loss {rec['loss']:.4f}  label {rec['label']:.4f}  "
                f"distill {rec['distill']:.4f}  {rec['seconds']:.1f}s")
    model.eval()
    return {"history": history,
            "seconds_per_epoch": float(np.mean([h["seconds"] for h in history])) if history else 0.0}


def make_projector(d_student: int, d_teacher: int, seed: int = 0):
    """The 1x1 projection of the student's pooled features into the teacher's representation."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Linear(d_student, d_teacher)
