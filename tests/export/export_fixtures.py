"""Small self-made compress run dirs for export tests and benchmarks (test support, not package code:
benchmarks/export_parity.py and tests/firmware_bench put tests/export on sys.path to import it).

`sqtool quantize` (the compress stage) is what normally hands export a `student_int8` checkpoint. For
tests and for benchmarking export on its own, `make_int8_run` builds the same layout from a float
student: BN statistics set to non-trivial values (or a briefly trained model), BN folded into the
Brevitas twin, one calibration pass over windows (activation scales from statistics), then
`model.pt` (student_int8), `student_float.pt` and `heldout.npz`. `make_spec_int8_run` does the same for
the spectral models (SpecNet, family "spec_cnn": BN folded with `spectral.fold_bn_state`, calibrated on
synthetic front-end spectra).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sqtool.data.preprocess import normalise
from sqtool.core.checkpoint import save_checkpoint


def synthetic_windows(cfg, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PPG-like windows (N, C, T) in [0, 1] (minmax-normalised) with a known heart rate in y[:, 0]."""
    rng = np.random.default_rng(seed)
    c, t = cfg.in_channels, cfg.n_samples
    tt = np.arange(t) / cfg.fs
    hr = rng.uniform(50, 170, n)                                           # bpm
    x = np.empty((n, c, t), np.float32)
    for i in range(n):
        f = hr[i] / 60
        ppg = np.sin(2 * np.pi * f * tt) + 0.4 * np.sin(4 * np.pi * f * tt + 0.7) + 0.2 * rng.standard_normal(t)
        x[i, 0] = ppg
        for j in range(1, c):
            x[i, j] = 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * tt) + 0.1 * rng.standard_normal(t)
    x = normalise(x, "minmax")                                             # per window, channel
    y = np.stack([hr, np.zeros(n)], axis=1).astype(np.float32)[:, :max(1, len(cfg.outputs))]
    return x.astype(np.float32), y


def random_bn_model(name_or_cfg, seed: int = 0, generator=None):
    """A fresh float model (registry name or ModelCfg) whose BatchNorms have non-trivial statistics, so BN
    folding and requantization are exercised (untrained: export only needs its arithmetic)."""
    import torch
    from sqtool.models import create_model
    torch.manual_seed(seed)
    f = create_model(name_or_cfg)
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    for b in f.blocks:
        b.bn.running_mean.uniform_(-0.1, 0.1, generator=g)
        b.bn.running_var.uniform_(0.05, 0.5, generator=g)
        b.bn.weight.data.uniform_(0.5, 1.5, generator=g)
        b.bn.bias.data.uniform_(-0.1, 0.3, generator=g)
    return f


def make_float_student(name="cnn1d_student_xs", seed: int = 0, train_x=None, train_y=None, steps: int = 0):
    """A float student with non-trivial BN statistics; optionally a few Adam steps on (x, y)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    f = random_bn_model(name, seed, g)
    if steps and train_x is not None:
        cfg = f.cfg
        xt = torch.as_tensor(train_x)
        mean = torch.tensor(cfg.target_mean[:train_y.shape[1]], dtype=torch.float32)
        std = torch.tensor(cfg.target_std[:train_y.shape[1]], dtype=torch.float32)
        yt = (torch.as_tensor(train_y) - mean) / std
        opt = torch.optim.Adam(f.parameters(), 3e-3)
        f.train()
        for i in range(steps):
            j = torch.randint(0, len(xt), (32,), generator=g)
            loss = ((f(xt[j])[:, :yt.shape[1]] - yt[j]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return f.eval()


def make_int8_student(float_student, calib_x: np.ndarray, preset: str = "int8_w_per_channel_a_per_tensor"):
    """Brevitas twin of `float_student` with BN folded and activation scales calibrated on calib_x."""
    from sqtool.compress.qat import calibrate, quant_twin
    q = quant_twin(float_student, preset)
    calibrate(q, calib_x, 32)
    return q.eval()


def make_int8_run(run_dir, name: str = "cnn1d_student_xs", preset: str = "int8_w_per_channel_a_per_tensor",
                  n_heldout: int = 24, seed: int = 0, steps: int = 0, heldout: tuple | None = None) -> Path:
    """Write a compress-like run dir (model.pt student_int8, student_float.pt, heldout.npz); `name` a registry
    name or a ModelCfg (e.g. a student of another task, `data.tasks.task_model_cfg`)."""
    from sqtool.models import get_model_cfg
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = get_model_cfg(name) if isinstance(name, str) else name
    if heldout is None:
        x, y = synthetic_windows(cfg, n_heldout, seed + 1)
        groups = np.array([f"s{i % 3}" for i in range(len(x))])
    else:
        x, y, groups = heldout
    calib, calib_y = synthetic_windows(cfg, 64 if not steps else 256, seed)
    f = make_float_student(name, seed, calib, calib_y, steps)
    q = make_int8_student(f, calib, preset)
    save_checkpoint(run_dir / "student_float.pt", kind="student_float", model_cfg=f.cfg.to_dict(),
                    state_dict=f.state_dict())
    save_checkpoint(run_dir / "model.pt", kind="student_int8", model_cfg=q.cfg.to_dict(),
                    state_dict=q.state_dict())
    np.savez(run_dir / "heldout.npz", x=x.astype(np.float32), y=y.astype(np.float32), groups=groups)
    return run_dir


# ----------------------------------------------------------------------------- spectral models

def synthetic_spectra(cfg, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Front-end-like spectra (N, C, F): int8 codes / 127, a pulse peak (+ harmonic) in the PPG channel at a
    known HR (y, BPM) and motion peaks in every channel; empty bins at code -127."""
    from sqtool.models.spectral import bin_grid
    rng = np.random.default_rng(seed)
    bins = bin_grid(cfg)
    hr = rng.uniform(50, 170, n)
    x = np.empty((n, cfg.in_channels, len(bins)), np.float32)
    for i in range(n):
        motion = rng.uniform(bins[0], bins[-1], 2)
        for c in range(cfg.in_channels):
            p = 0.05 * rng.random(len(bins))
            for m in motion:
                p += rng.uniform(0.2, 0.8) * np.exp(-0.5 * ((bins - m) / 3.0) ** 2)
            if c == 0:
                p += np.exp(-0.5 * ((bins - hr[i]) / 2.0) ** 2) + 0.3 * np.exp(-0.5 * ((bins - 2 * hr[i]) / 3.0) ** 2)
            codes = np.round(254 * p / p.max() - 127)                   # spectrum_max -> [-127, 127]
            x[i, c] = codes / 127.0
    return x, hr.astype(np.float32)


def make_float_specnet(name: str = "spec_student_s", seed: int = 0):
    """A float SpecNet with non-trivial BN statistics (untrained: export only needs its arithmetic)."""
    return random_bn_model(name, seed).eval()


def make_int8_specnet(float_model, calib_x: np.ndarray, preset: str = "int8_w_per_channel_a_per_tensor"):
    """Brevitas twin of a float SpecNet (spectral.fold_bn_state), activation scales calibrated on calib_x."""
    from sqtool.compress.qat import calibrate
    from sqtool.core import SqtoolError
    from sqtool.models import create_model
    from sqtool.models.spectral import fold_bn_state
    q = create_model(float_model.cfg.replace(quant=preset))
    missing, unexpected = q.load_state_dict(fold_bn_state(float_model.eval()), strict=False)
    bad = [k for k in missing if not k.endswith("scaling_impl.value")]
    if bad or unexpected:
        raise SqtoolError(f"BN folding does not match the spectral twin: missing {bad}, unexpected {unexpected}")
    calibrate(q, calib_x, 16)
    return q.eval()


def make_spec_int8_run(run_dir, name: str = "spec_student_s", preset: str = "int8_w_per_channel_a_per_tensor",
                       n_heldout: int = 8, seed: int = 0, n_calib: int = 32) -> Path:
    """A compress-like run dir of a spectral model: model.pt (student_int8, family spec_cnn),
    student_float.pt and, when n_heldout > 0, heldout.npz (x (N, C, F) codes / 127, y (N,) BPM)."""
    from sqtool.models import get_model_cfg
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = get_model_cfg(name)
    calib, _ = synthetic_spectra(cfg, n_calib, seed)
    f = make_float_specnet(name, seed)
    q = make_int8_specnet(f, calib, preset)
    save_checkpoint(run_dir / "student_float.pt", kind="student_float", model_cfg=f.cfg.to_dict(),
                    state_dict=f.state_dict())
    save_checkpoint(run_dir / "model.pt", kind="student_int8", model_cfg=q.cfg.to_dict(), state_dict=q.state_dict())
    if n_heldout:
        x, y = synthetic_spectra(cfg, n_heldout, seed + 1)
        np.savez(run_dir / "heldout.npz", x=x, y=y, groups=np.array([f"s{i % 3}" for i in range(n_heldout)]))
    return run_dir


def make_run(run_dir, name: str, **kw) -> Path:
    """make_spec_int8_run for spectral registry names, make_int8_run for the time-domain students."""
    from sqtool.models import get_model_cfg
    if get_model_cfg(name).family == "spec_cnn":
        return make_spec_int8_run(run_dir, name, **kw)
    return make_int8_run(run_dir, name, **kw)
