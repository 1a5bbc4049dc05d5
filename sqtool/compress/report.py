"""What a compress run measured: task metrics, size and cost, quantization error, quality gating.

- `evaluate`: the task metric (`sqtool.core.metrics.task_metrics`) of a model's outputs in units.
- `per_layer_sqnr`: for every block, the pooled features and the output, the signal-to-quantization-
  noise ratio of the int8 student against the float student on the same windows,
  SQNR = 10 log10(sum(f^2) / sum((f - q)^2)) dB (q dequantized). ~6 dB per bit: an 8-bit tensor whose
  range is well used sits near 35-45 dB; a layer far below its neighbours has a badly fitted scale.
- `coverage_curve`: the HR error when the device keeps only windows whose quality score passes a
  threshold, against the fraction of windows kept.
- `heldout_skill`: the fine-tune's skill block (`train.skill.skill_report`) for quantize's fixed split: the trivial
  predictor fitted on the run's training subjects, the classic method's row (`data.classic.classic_oof`, its one
  fitted threshold, af's, on the training subjects), each model's prediction spread and its paired tests over the
  held-out subjects against the trivial predictor ("no skill" flag) and the classic method ("worse than the
  classic method").
- `write_report_md`: the human-readable summary next to metrics.json.
"""
from __future__ import annotations

import numpy as np

from sqtool.compress.distill import OutputSpec, denormalise, predict
from sqtool.core.metrics import (CLASSIFICATION_TASKS, FEW_SUBJECTS, QUANTIZE_MODELS, classic_text, model_block,
                                 reference_block, sigmoid, skill_line, skill_metric, skill_unit, source_trivial,
                                 task_metrics, trivial_predictions)


def evaluate(task: str, out: np.ndarray, y: np.ndarray, spec: OutputSpec) -> dict:
    """Task metric of raw network outputs (N, k[+1]) against labels in units (N, k)."""
    pred = denormalise(out, spec)
    names = spec.names[:spec.n_task]
    return task_metrics(task, np.asarray(y, np.float32)[:, :spec.n_task], pred, names)


def heldout_skill(task: str, y_train: np.ndarray, y: np.ndarray, groups: np.ndarray, preds: dict, outputs=(),
                  n_boot: int = 1000, seed: int = 0, classic: tuple = (None, "not computed"),
                  source_train: np.ndarray | None = None, source: np.ndarray | None = None) -> dict:
    """Model vs trivial (vs classic) on the held-out windows: `metrics.json["skill"]` of a quantize run:
    `core.metrics.reference_block` once and `model_block` per model (the parts of the fine-tune's `skill_block`).

    `y_train` (N_tr, k): the run's TRAINING subjects' targets, the only ones the trivial predictor sees
    (`core.metrics.trivial_predictions`: their mean per output, or their base rate as a constant logit); `y`
    (N, k), `groups` (N,): the held-out windows; `preds`: {"teacher" | "student_float" | "student_int8": (N, k)
    outputs in units (logits for classification)}, at least one; `classic`: (its (N, k) predictions, name) or
    (None, why); `source_train` (N_tr,), `source` (N,): each window's dataset, where the windows come from several
    (quality): the trivial predictor is then each source's training base rate / mean (`core.metrics.source_trivial`,
    as the fine-tune's skill block), the floor a score that knows only the source reaches, not one constant.

    {trivial: metrics, trivial_ci95, trivial_fit: {windows}, classic: {name, metrics, ci95} or {name: None, why},
     models: {name: {skill: `core.metrics.skill_test` vs the trivial predictor, spread: `prediction_spread`,
     vs_classic: the same test against the classic method (absent without one)}}, flag: the int8 student's "" or
     "no skill", classic_flag: the int8 student's "" or "worse than the classic method" (`classic_flag`)}"""
    triv = trivial_predictions(task, y_train, len(y))                               # (N, k)
    by_source = source_train is not None and source is not None and len(np.unique(source)) > 1
    if by_source:
        n_tr = len(y_train)                                  # one fold: the training windows, then the held-out ones
        both = np.concatenate([np.asarray(y_train, float), np.asarray(y, float)])
        src = np.concatenate([np.asarray(source_train).astype(str), np.asarray(source).astype(str)])
        triv = source_trivial(task, both, src, [(np.arange(n_tr), np.arange(n_tr, len(both)))])[n_tr:]
    per_source = ", each source's own" if by_source else ""
    ref = reference_block(task, y, groups, triv, classic, outputs, n_boot=n_boot, seed=seed)   # once for every model
    blocks = {k: model_block(task, y, groups, p, triv, classic[0], outputs, n_boot=n_boot, seed=seed, few=FEW_SUBJECTS)
              for k, p in preds.items()}
    out = {"trivial": ref["trivial"], "trivial_ci95": ref["trivial_ci95"],
           "trivial_fit": {"windows": int(len(y_train)), "on": "the training subjects" + per_source},
           "models": {k: {key: b[key] for key in ("skill", "spread", "vs_classic") if key in b}
                      for k, b in blocks.items()},
           "classic": ref["classic"]}
    int8 = blocks.get("student_int8", {})
    out["flag"] = int8.get("flag", "")
    out["classic_flag"] = int8.get("classic_flag", "")
    return out


def skill_lines(task: str, sk: dict, units=()) -> list[str]:
    """A quantize run's closing lines: the trivial and classic rows with each model's prediction spread, then the
    skill verdict of the teacher and the float student, and last the int8 student's (`core.metrics.skill_line`,
    flagged NO SKILL, "not shown" over fewer than FEW_SUBJECTS held-out subjects, as the model card says);
    `units`: the student's output units (metrics.json's "units"), MAE's unit after its values."""
    metric = sk["models"]["student_int8"]["skill"]["metric"]
    u = skill_unit(metric, units)
    unit = f" {u}" if u else ""
    c = sk["classic"]
    spread = ", ".join(f"{label} {_stds(sk['models'][k]['spread'])}" for k, label in QUANTIZE_MODELS
                       if k in sk["models"])
    target = sk["models"]["student_int8"]["spread"].get("target_std")
    per_source = ", each source's base rate" if "source" in sk["trivial_fit"].get("on", "") else ""
    lines = [f"{task}: trivial {metric} {sk['trivial'][metric]:.3f}{unit} (fitted on {sk['trivial_fit']['windows']} "
             f"training windows{per_source}); classic " + (f"{metric} {c['metrics'][metric]:.3f}{unit} ({c['name']})"
                                               if c.get("name") else f"n/a ({c['why']})") + f"; prediction std: {spread}"
             + (f" (targets' {', '.join(f'{v:.3g}' for v in target)})" if target else "")]
    lines += [skill_line(task, sk["models"][k]["skill"], f"{label} {metric}", u, few=FEW_SUBJECTS)
              + classic_text(sk["models"][k].get("vs_classic"), f"{label} {metric}", unit=u)
              for k, label in QUANTIZE_MODELS if k in sk["models"]]
    return lines


def _stds(spread: dict) -> str:
    return ", ".join(f"{v:.3g}" for v in spread["pred_std"])


def per_layer_sqnr(float_student, q_student, x: np.ndarray, max_windows: int = 512) -> list[dict]:
    """SQNR (dB) of each block output, the pooled features and the output: int8 twin vs float."""
    import torch

    from sqtool.models.student import value as _value

    x = torch.as_tensor(np.asarray(x[:max_windows], np.float32))                    # (N, C, T)
    acts: dict[str, dict[str, torch.Tensor]] = {"f": {}, "q": {}}

    def hook(which, name):
        def fn(_mod, _inp, out):
            acts[which][name] = _value(out).detach().float()
        return fn

    handles = []
    for which, m in (("f", float_student), ("q", q_student)):
        m.eval()
        for i, blk in enumerate(m.blocks):
            handles.append(blk.register_forward_hook(hook(which, f"blocks.{i}")))
        handles.append(m.fc.register_forward_hook(hook(which, "fc")))
    try:
        with torch.no_grad():
            ff = float_student.features(x)
            fq = _value(q_student.features(x))
            acts["f"]["pool"], acts["q"]["pool"] = _value(ff).float(), fq.float()
            float_student.fc(ff)
            q_student.fc(q_student.features(x))
    finally:
        for h in handles:
            h.remove()
    rows = []
    names = [f"blocks.{i}" for i in range(len(float_student.blocks))] + ["pool", "fc"]
    for name in names:
        f, q = acts["f"][name], acts["q"][name]
        sig = float((f ** 2).sum())
        noise = float(((f - q) ** 2).sum())
        sqnr = float("inf") if noise == 0 else 10 * np.log10(max(sig, 1e-30) / noise)
        rows.append({"layer": name, "shape": list(f.shape[1:]), "sqnr_db": sqnr,
                     "max_abs_err": float((f - q).abs().max())})
    return rows


COVERAGE_LEVELS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
PROB_THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)


def coverage_curve(out: np.ndarray, y: np.ndarray, spec: OutputSpec, col: int = 0) -> dict:
    """Error of regression output `col` vs the fraction of windows kept by the quality score.

    Two views: keep the most confident fraction (coverage levels), and keep windows whose quality
    probability is >= a threshold (what the device does with a fixed threshold).
    """
    if spec.quality is None or col not in spec.regression:
        return {}
    pred = denormalise(out, spec)[:, col]
    y = np.asarray(y, np.float32)[:, col]
    err = np.abs(pred - y)
    prob = sigmoid(np.asarray(out)[:, spec.quality])
    order = np.argsort(-prob, kind="mergesort")
    by_cov = []
    for c in COVERAGE_LEVELS:
        k = max(1, int(round(c * len(err))))
        keep = order[:k]
        by_cov.append({"coverage": c, "kept": int(k), "mae": float(err[keep].mean()),
                       "threshold": float(prob[order[k - 1]])})
    by_th = []
    for th in PROB_THRESHOLDS:
        keep = prob >= th
        by_th.append({"threshold": th, "coverage": float(keep.mean()),
                      "mae": float(err[keep].mean()) if keep.any() else None})
    return {"output": spec.names[col], "by_coverage": by_cov, "by_threshold": by_th}


def size_and_cost(cfg, budget: dict) -> dict:
    """Parameters, int8 weight bytes, int32 bias bytes, MACs per window (static count)."""
    return {"params": budget["params"], "int8_weight_bytes": budget["int8_weights"],
            "int32_bias_bytes": 4 * budget["int32_biases"], "macs_per_window": budget["macs"],
            "window_s": cfg.window_s, "fs": cfg.fs, "input_shape": list(cfg.input_shape)}


def teacher_size(teacher) -> dict:
    return {"params": int(sum(p.numel() for p in teacher.parameters() if p.requires_grad))}


def predict_all(model, x: np.ndarray) -> np.ndarray:
    return predict(model, x, batch_size=256)


# ----------------------------------------------------------------------------- markdown

def _fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _relative(metric: str, rel) -> str:
    """The float student's metric against the teacher's, worded by its sign (rel = (student - teacher) / teacher):
    'student float MAE 73.1 % above the teacher's' (an MAE above is worse, an AUROC above better)."""
    name = "MAE" if metric == "mae" else metric
    if rel is None:
        return f"student float {name} vs the teacher's: -"
    if rel == 0:
        return f"student float {name} equal to the teacher's"
    return f"student float {name} {abs(rel) * 100:.1f} % {'above' if rel > 0 else 'below'} the teacher's"


def write_report_md(m: dict) -> str:
    """Render metrics.json as report.md."""
    task, metric = m["task"], m["primary_metric"]
    sk, sk_metric = m.get("skill") or {}, skill_metric(task)[0]        # (a run from before the skill block: none)
    units = sorted(set(m["student"].get("units") or []) - {"logit"})     # the regression outputs' units, e.g. %
    in_units = f" ({', '.join(units)})" if units and metric == "mae" else ""
    unit = skill_unit(metric, units)
    in_unit = f" {unit}" if unit else ""                                # after a value (one unit only)
    also = "; held out of the teacher's fine-tuning too" if m.get("heldout_in_teacher") is False else ""
    lines = [f"# sqtool quantize: {m['student']['name']} ({m['preset']})", "",
             f"Task **{task}**, {m['student']['fs']:g} Hz, {m['student']['window_s']:g} s windows; teacher "
             f"`{m['teacher']['name']}` ({m['teacher']['params']:,} parameters, sha256 "
             f"`{m['teacher']['sha256'][:12]}`). Held-out subjects: {', '.join(m['heldout_subjects'])} "
             f"({m['heldout_windows']} windows{', synthetic' if m.get('synthetic') else ''}{also}). "
             f"Distillation: {'off (labels only)' if not m['distill']['enabled'] else 'alpha ' + _fmt(m['distill']['alpha'], 2)}.",
             *(["", f"**Not a measure of skill: {m['heldout_one_class']}.**"] if m.get("heldout_one_class") else []),
             "", "## Task metric on the held-out subjects", "",
             f"| model | {metric}{in_units} | vs trivial ({sk_metric}; 95 % CI over subjects, p) | prediction std | params | "
             "int8 weight bytes | MACs / window |", "|---|---|---|---|---|---|---|"]
    s = m["size"]

    def verdict(k):                                   # the table's skill cells of model k (- without a skill block)
        if k not in sk.get("models", {}):
            return "- | -"
        t, sp = sk["models"][k]["skill"], sk["models"][k]["spread"]
        lo, hi = t["diff_ci95"]
        return (f"{_fmt(t['diff'])} [{_fmt(lo)}, {_fmt(hi)}], p {_fmt(t['p'])}: "
                f"{'skill' if t['skill'] else '**NO SKILL**'} | {_stds(sp)}")

    if sk:
        c = sk["classic"]
        lines.append(f"| trivial: the training subjects' {'base rate' if task in CLASSIFICATION_TASKS else 'mean'} "
                     f"({sk['trivial_fit']['windows']} windows) | {_fmt(sk['trivial'].get(metric))} | - | 0 | - | - | - |")
        lines.append(f"| classic: {c['name'] or 'n/a'} | "
                     f"{_fmt(c['metrics'].get(metric)) if c.get('name') else '-'} | - | - | - | - | - |")
    lines.append(f"| teacher float | {_fmt(m['teacher']['metrics'].get(metric))} | {verdict('teacher')} | "
                 f"{m['teacher']['params']:,} | - | - |")
    if m["teacher"].get("out_of_fold"):
        lines.append(f"| teacher float, out-of-fold (fine-tuning CV) | "
                     f"{_fmt(m['teacher']['out_of_fold']['metrics'].get(metric))} | - | - | {m['teacher']['params']:,} "
                     "| - | - |")
    lines.append(f"| student float | {_fmt(m['student_float']['metrics'].get(metric))} | {verdict('student_float')} | "
                 f"{s['params']:,} | - | {s['macs_per_window']:,} |")
    if m.get("student_int8_calibrated"):
        lines.append(f"| student int8, calibrated, before QAT | "
                     f"{_fmt(m['student_int8_calibrated']['metrics'].get(metric))} | - | - | {s['params']:,} | "
                     f"{s['int8_weight_bytes']:,} | {s['macs_per_window']:,} |")
    lines.append(f"| student int8 (fake-quant) | {_fmt(m['student_int8']['metrics'].get(metric))} | "
                 f"{verdict('student_int8')} | {s['params']:,} | {s['int8_weight_bytes']:,} | {s['macs_per_window']:,} |")
    if sk:
        target = sk["models"]["student_int8"]["spread"].get("target_std")
        lines += ["", f"Skill: each model against the trivial predictor (fitted on the training subjects only) on the "
                      f"held-out windows; the targets' std is {', '.join(_fmt(v) for v in target or [])}"
                      + (f"; classic: {sk['classic']['why']}" if not sk["classic"].get("name") else "") + ".", ""]
        lines += [f"- {line}" for line in skill_lines(task, sk, m.get("units") or m["student"].get("units"))[1:]]
    d = m["deltas"]
    lines += ["", f"int8 - float: {_fmt(d['int8_minus_float'])}{in_unit}; {_relative(metric, d['float_vs_teacher_rel'])}"
              + (" (a relative difference means nothing where the models show no skill over the trivial predictor)"
                 if sk.get("flag") else ""),
              "", "## Budget", ""]
    of = m["budget"].get("of")
    if m.get("student_choice"):
        lines.append(f"Student {m['student_choice']}"
                     + (f"; held to {of}'s budget." if of and of != m["student"]["name"] else "."))
        lines.append("")
    for k, v in m["budget"]["checks"].items():
        lines.append(f"- {k}: {v['value']:,} of {v['limit']:,} ({'ok' if v['ok'] else 'OVER'})")
    if not m["budget"]["checks"]:
        lines.append("- no budget registered for this student")
    lines += ["", "## Per-layer quantization error (int8 vs float student)", "",
              "| layer | shape | SQNR dB | max abs err |", "|---|---|---|---|"]
    for r in m["sqnr"]:
        lines.append(f"| {r['layer']} | {r['shape']} | {_fmt(r['sqnr_db'], 1)} | {_fmt(r['max_abs_err'], 4)} |")
    cov = m.get("coverage") or {}
    if cov:
        lines += ["", f"## Quality gating: {cov['output']} error vs coverage (int8 student)", "",
                  "| coverage | windows kept | MAE | quality threshold |", "|---|---|---|---|"]
        for r in cov["by_coverage"]:
            lines.append(f"| {r['coverage']:.0%} | {r['kept']} | {_fmt(r['mae'], 2)} | {_fmt(r['threshold'], 3)} |")
        lines += ["", "| threshold | coverage | MAE |", "|---|---|---|"]
        for r in cov["by_threshold"]:
            lines.append(f"| {r['threshold']:.1f} | {r['coverage']:.0%} | {_fmt(r['mae'], 2)} |")
    t = m["timing"]
    lines += ["", "## Time", "",
              f"float training {_fmt(t['float_s_per_epoch'], 2)} s/epoch, QAT {_fmt(t['qat_s_per_epoch'], 2)} "
              f"s/epoch ({_fmt(t['qat_over_float'], 2)}x); calibration on {m['calibration']['windows']} windows."]
    if m.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in m["warnings"]]
    return "\n".join(lines) + "\n"
