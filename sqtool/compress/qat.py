"""Quantization-aware training with Brevitas: fold BN, calibrate activation ranges, fine-tune.

    float student (Conv + BN + ReLU)
      -> `quant_twin`: the Brevitas twin of the same blocks (`cfg.quant = preset`), BN folded into
         each conv's weight and bias (`fold_bn_state`); int8 weights, int32 bias, uint8 activations
         after ReLU, int8 input and output
      -> `calibrate`: activation scales from the statistics of a calibration set
         (`brevitas.graph.calibrate.calibration_mode`), checked first by `check_calibration_set`
      -> `sqtool.compress.distill.fit` at a lower learning rate: the scales are learned parameters
         from here on, weights are fake-quantized with straight-through gradients.

The twin's state_dict (Brevitas parameters included) reloads strictly into
`create_model(model_cfg)` with `model_cfg.quant` = the preset name: that is the student_int8 checkpoint.
"""
from __future__ import annotations

import numpy as np

from sqtool.core import SqtoolError
from sqtool.models.registry import ModelCfg

MIN_CALIBRATION_WINDOWS = 300   # fewer than this: activation ranges are noisy (warned)


def check_calibration_set(x: np.ndarray, cfg: ModelCfg, batch_size: int, fs: float | None = None,
                          window_s: float | None = None, channels=None) -> list[str]:
    """Refuse a calibration set the student cannot use; return warnings for a usable but poor one.

    `fs`, `window_s`, `channels` describe where the windows came from (when known, e.g. from an
    npz file); a set at another rate or window length is refused even when the shapes would fit.
    """
    if fs is not None and abs(float(fs) - cfg.fs) > 1e-6:
        raise SqtoolError(f"calibration set is sampled at {float(fs):g} Hz; the student runs at {cfg.fs:g} Hz "
                          f"(resample it to {cfg.fs:g} Hz)")
    if window_s is not None and abs(float(window_s) - cfg.window_s) > 1e-6:
        raise SqtoolError(f"calibration windows are {float(window_s):g} s long; the student takes "
                          f"{cfg.window_s:g} s windows")
    if channels is not None and tuple(channels) != tuple(cfg.channels):
        raise SqtoolError(f"calibration set has channels {list(channels)}; the student takes {list(cfg.channels)}")
    x = np.asarray(x)
    c, t = cfg.input_shape
    if x.ndim != 3 or x.shape[1] != c or x.shape[2] != t:
        hint = ""
        if x.ndim == 3 and x.shape[1] != c:
            hint = f": {x.shape[1]} channels, the student takes {c} ({', '.join(cfg.channels)})"
        elif x.ndim == 3 and x.shape[2] != t:
            hint = (f": {x.shape[2]} samples per window is {x.shape[2] / cfg.window_s:g} Hz for "
                    f"{cfg.window_s:g} s windows, the student runs at {cfg.fs:g} Hz")
        raise SqtoolError(f"calibration set has shape {tuple(x.shape)}; the student expects (N, {c}, {t}){hint}")
    if not np.all(np.isfinite(x)):
        raise SqtoolError("calibration set contains NaN/Inf values")
    n = len(x)
    if n < batch_size:
        raise SqtoolError(f"calibration set has {n} windows, fewer than one batch ({batch_size}): "
                          f"activation ranges cannot be calibrated (give --batch-size {max(2, n)} or less, or more "
                          "training windows)")
    warnings = []
    if n < MIN_CALIBRATION_WINDOWS:
        warnings.append(f"calibration set is small ({n} windows < {MIN_CALIBRATION_WINDOWS}): "
                        f"activation ranges may be noisy")
    return warnings


def quant_twin(float_student, preset: str):
    """The Brevitas twin of a float student with its BN folded in (activation scales not yet set)."""
    from sqtool.models import create_model, spectral, student

    fold_bn_state = spectral.fold_bn_state if float_student.cfg.family == spectral.SPECTRAL_FAMILY \
        else student.fold_bn_state
    cfg = float_student.cfg.replace(quant=preset)
    q = create_model(cfg)
    missing, unexpected = q.load_state_dict(fold_bn_state(float_student.eval()), strict=False)
    bad = [k for k in missing if not k.endswith("scaling_impl.value")]
    if bad or unexpected:
        raise SqtoolError(f"BN folding does not match the quantized twin: missing {bad}, unexpected {unexpected}")
    return q


def calibrate(q, x: np.ndarray, batch_size: int = 64) -> int:
    """Set every activation scale from the statistics of `x` (N, C, T); returns windows seen."""
    import torch
    from sqtool.core.noise import quiet_library_warnings
    quiet_library_warnings()                       # brevitas.graph: the hadamard notice
    from brevitas.graph.calibrate import calibration_mode

    q.eval()
    with torch.no_grad(), calibration_mode(q):
        for i in range(0, len(x), batch_size):
            q(torch.as_tensor(np.asarray(x[i:i + batch_size], np.float32)))         # (B, C, T)
    return len(x)


def activation_scales(q) -> dict[str, float]:
    """The learned per-tensor activation scales by module name (for the report)."""
    out = {}
    for name, mod in q.named_modules():
        if name.endswith("fused_activation_quant_proxy.tensor_quant.scaling_impl") and hasattr(mod, "value"):
            key = name.split(".act_quant")[0].split(".output_quant")[0]
            out[key] = float(mod.value.detach().abs())
    return out
