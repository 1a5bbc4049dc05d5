"""Quantization-aware training with Brevitas: fold BN, calibrate activation ranges, fine-tune.

    float student (Conv + BN + ReLU)
      -> `quant_twin`: the Brevitas twin of the same blocks (`cfg.quant = preset`), BN folded into
         each conv's weight and bias (`fold_bn_state`); int8 weights, int32 bias, uint8 activations
         after ReLU, int8 input and output
      -> `calibrate`: activation scales from the statistics of a calibration set
         (`brevitas.graph.calibrate.calibration_mode`), checked first by `check_calibration_set`
      -> `widen_output_range` (time-domain students): the int8 output's one per-tensor scale covers
         the training labels and a confident logit, and is held there during QAT
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
LABEL_HEADROOM = 1.25           # the int8 output reaches this many times the largest training label ...
LABEL_QUANTILE = 0.999          # ... its 0.999 quantile, a label it holds (below 1,000 windows: the second largest),
#                                 so one bad label does not coarsen every window's step
LOGIT_REACH = 4.0               # ... and a logit of +-4 (probability 0.018 / 0.982) at least


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


def widen_output_range(q, spec, y_norm) -> dict:
    """Make the int8 output able to say every answer its labels need, and keep it so during QAT.

    A time-domain student's outputs (the normalised regression targets, a class logit, the quality
    logit) share the final layer's ONE per-tensor int8 scale. Calibration sets it from the float
    student's outputs, which regress toward the mean: a respiratory-rate student calibrated to +-1.9
    standard deviations could only report 11-23 br/min on labels of 6-29, and its quality logit sat at
    that ceiling (probability 0.86) on a third of the windows. The threshold is raised to cover
    LABEL_HEADROOM x the largest |normalised training label| (its LABEL_QUANTILE quantile: a single label 40
    standard deviations out would otherwise make every window's int8 step 0.4 std) and a logit of LOGIT_REACH,
    never lowered, and frozen (QAT would otherwise learn it back down: the loss rarely sees the clipped tails).
    `y_norm` (N, k): the training labels as `distill.normalise_targets` gives them. Returns the record
    for the report: calibrated and final thresholds, what each column needed, and one int8 step of each
    regression output in its units (`step`).
    """
    import torch

    (name, param), = [(n, p) for n, p in q.named_parameters()
                      if n.startswith("fc.output_quant") and n.endswith("scaling_impl.value")]
    y = np.asarray(y_norm, np.float64)
    need = {}
    for i in spec.regression:
        col = y[:, i][np.isfinite(y[:, i])]
        if len(col):
            need[spec.names[i]] = LABEL_HEADROOM * float(np.quantile(np.abs(col), LABEL_QUANTILE, method="lower"))
    for i in list(spec.binary) + ([spec.quality] if spec.quality is not None else []):
        need[spec.names[i]] = LOGIT_REACH
    calibrated = float(param.detach().abs())
    # Int8ActPerTensorFloat: scale = threshold / 128, so the largest positive output is 127/128 of it
    threshold = max([calibrated] + [v * 128 / 127 for v in need.values()])
    with torch.no_grad():
        param.fill_(threshold)
    param.requires_grad_(False)
    step = {spec.names[i]: threshold / 128 * float(spec.std[i]) for i in spec.regression}
    return {"parameter": name, "calibrated_threshold": calibrated, "threshold": threshold,
            "scale": threshold / 128, "needed": need, "step": step, "frozen": True}
