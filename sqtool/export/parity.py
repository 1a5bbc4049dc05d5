"""Parity: every artifact is executed on held-out windows and compared with the model it came from.

Float artifacts are compared with PyTorch float (max abs error, cosine similarity, L2 relative
error); int8 artifacts with Brevitas's integer outputs (histogram of LSB differences, share of
bit-exact windows) and, where the task has a metric, its delta (heart-rate MAE in BPM). Each row
states its tolerance and passes or fails; `export_report.md/.json` hold the one table. Float outputs are
compared in units (metadata.to_units: what the exported float models emit), int8 ones as codes.
"""
from __future__ import annotations

import numpy as np

from sqtool.core import SqtoolError, atomic_write_text, write_metrics


def float_stats(ref: np.ndarray, got: np.ndarray) -> dict:
    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    got = np.asarray(got, np.float64).reshape(len(got), -1)
    if ref.shape != got.shape:
        raise SqtoolError(f"parity: artifact output shape {got.shape} != source {ref.shape}")
    err = got - ref
    den = np.linalg.norm(ref) or 1.0
    cos = float(np.sum(ref * got) / max(np.linalg.norm(ref) * np.linalg.norm(got), 1e-30))
    return {"max_abs_err": float(np.abs(err).max()), "cosine": cos, "l2_rel_err": float(np.linalg.norm(err) / den)}


def lsb_stats(ref: np.ndarray, got: np.ndarray) -> dict:
    """Histogram of |int8 differences| and the share of windows whose outputs are all identical."""
    d = np.abs(np.asarray(got, np.int32) - np.asarray(ref, np.int32)).reshape(len(ref), -1)
    vals, counts = np.unique(d, return_counts=True)
    return {"max_lsb": int(d.max()) if d.size else 0, "lsb_hist": {str(int(v)): int(c) for v, c in zip(vals, counts)},
            "exact_windows_pct": float(100.0 * np.mean(np.all(d == 0, axis=1))) if d.size else 100.0,
            "exact_elements_pct": float(100.0 * np.mean(d == 0)) if d.size else 100.0}


def task_mae(md: dict, y_pred: np.ndarray, y_true: np.ndarray | None) -> float | None:
    """Heart-rate MAE (BPM) of output 0 given in units, i.e. BPM (spectral models: the softmax-mean HR over the bins,
    at the decoder's temperature: continuous in the logits, so a delta measures the arithmetic of an
    artifact rather than arg-max ties between near-equal bins), when the task and labels allow it;
    windows whose truth is NaN (e.g. random parity windows) are left out."""
    if y_true is None or md.get("task") != "hr":
        return None
    y_true = np.asarray(y_true, np.float64).reshape(len(y_true), -1)[:, 0]
    if md.get("bins_bpm"):
        lo, _, step = md["bins_bpm"]
        z = np.asarray(y_pred, np.float64).reshape(len(y_pred), -1) / float((md.get("decoder") or {}).get("temperature", 1.0))
        p = np.exp(z - z.max(axis=1, keepdims=True))
        hr = (p * (lo + step * np.arange(z.shape[1]))).sum(axis=1) / p.sum(axis=1)
    else:
        hr = np.asarray(y_pred, np.float64).reshape(len(y_pred), -1)[:, 0]          # hr_bpm, already BPM
    ok = np.isfinite(y_true)
    return float(np.mean(np.abs(hr[ok] - y_true[ok]))) if ok.any() else None


def float_row(name: str, file: str, md: dict, ref: np.ndarray, got: np.ndarray, y_true, tol_l2: float) -> dict:
    s = float_stats(ref, got)
    mae, mae_ref = task_mae(md, got, y_true), task_mae(md, ref, y_true)
    row = {"artifact": name, "file": file, "compared_with": "PyTorch float", "n": int(len(ref)), **s,
           "mae_bpm": mae, "delta_mae_bpm": None if mae is None else mae - mae_ref,
           "tolerance": f"l2_rel_err <= {tol_l2:g}"}
    row["status"] = "ok" if s["l2_rel_err"] <= tol_l2 and np.isfinite(s["max_abs_err"]) else "FAILED"
    return row


def int8_row(name: str, file: str, md: dict, brevitas: np.ndarray, got: np.ndarray, y_true, dequant,
             tol_lsb: int | None, tol_mae: float, exact_ref: np.ndarray | None = None, exact_name: str = "",
             min_exact_pct: float | None = None) -> dict:
    """int8 artifact vs Brevitas (LSB histogram, metric delta) and, if given, vs an expected bit-exact twin."""
    s = lsb_stats(brevitas, got)
    mae, mae_ref = task_mae(md, dequant(got), y_true), task_mae(md, dequant(brevitas), y_true)
    row = {"artifact": name, "file": file, "compared_with": "Brevitas int8", "n": int(len(got)), **s,
           "mae_bpm": mae, "delta_mae_bpm": None if mae is None else mae - mae_ref}
    tol = [] if tol_lsb is None else [f"max_lsb <= {tol_lsb}"]
    ok = tol_lsb is None or s["max_lsb"] <= tol_lsb
    if mae is not None:
        tol.append(f"abs(delta_mae) <= {tol_mae:g} BPM")
        ok = ok and abs(row["delta_mae_bpm"]) <= tol_mae
    if min_exact_pct is not None:
        tol.append(f"exact vs Brevitas >= {min_exact_pct:g} %")
        ok = ok and s["exact_windows_pct"] >= min_exact_pct
    if exact_ref is not None:
        e = lsb_stats(exact_ref, got)
        row["exact_vs"] = exact_name
        row["exact_vs_pct"] = e["exact_windows_pct"]
        tol.append(f"== {exact_name} on 100 % of windows")
        ok = ok and e["exact_windows_pct"] == 100.0
    row["tolerance"], row["status"] = "; ".join(tol), "ok" if ok else "FAILED"
    return row


def _fmt(v, nd=4):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def report_markdown(md: dict, rows: list[dict], artifacts: dict, extra: str = "") -> str:
    lines = [f"# sqtool export report: {md['model']} ({md['quant_scheme']})", "",
             f"model sha256 `{md.get('model_sha256') or 'not recorded'}` (weights + model config), source checkpoint "
             f"file sha256 `{md['source_sha256']}`, sqtool {md['sqtool_version']} (git {md.get('git_sha') or '?'}), "
             f"{md['fs']} Hz, {md['window_s']} s window, channels {', '.join(md['channels'])}, norm {md['norm']}",
             "", "| artifact | compared with | n | max abs err | cosine | L2 rel err | max LSB | LSB histogram "
             "| exact windows % | exact vs twin % | HR MAE | delta MAE | tolerance | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hist = " ".join(f"{k}:{v}" for k, v in r.get("lsb_hist", {}).items()) or "-"
        twin = f"{_fmt(r.get('exact_vs_pct'))} ({r['exact_vs']})" if r.get("exact_vs") else "-"
        lines.append(f"| {r['artifact']} | {r['compared_with']} | {r['n']} | {_fmt(r.get('max_abs_err'))} | "
                     f"{_fmt(r.get('cosine'), 8)} | {_fmt(r.get('l2_rel_err'))} | {_fmt(r.get('max_lsb'))} | {hist} | "
                     f"{_fmt(r.get('exact_windows_pct'))} | {twin} | {_fmt(r.get('mae_bpm'))} | "
                     f"{_fmt(r.get('delta_mae_bpm'), 3)} | {r['tolerance']} | **{r['status']}** |")
    if any(r.get("mae_bpm") is not None for r in rows):
        lines += ["", "HR MAE (BPM): " + ("each window's softmax-mean heart rate over the bins, no decoder" if
                                         md.get("bins_bpm") else "the model's heart-rate output per window")
                  + ", on the export's parity windows (the source run's held-out windows; a final fit's training "
                  "windows, parity.npz): a parity check between the artifacts (its delta is what "
                  "the tolerance bounds), not the product's accuracy" + (" (the decoded heart rate the device reports: "
                  "MODEL_CARD.md's held-out metrics)" if md.get("bins_bpm") else "") + "."]
    lines += ["", "## Artifacts", "", "| file | bytes | status |", "|---|---|---|"]
    for f, a in artifacts.items():
        lines.append(f"| {f} | {a.get('bytes', '-')} | {a.get('status', '-')} |")
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"


def write_report(out_dir, md: dict, rows: list[dict], artifacts: dict, extra: str = "", explain: dict | None = None):
    failed = [r["artifact"] for r in rows if r["status"] != "ok"]
    write_metrics(out_dir, {"model": md["model"], "model_sha256": md.get("model_sha256"),
                            "source_sha256": md["source_sha256"], "rows": rows,
                            "artifacts": artifacts, "failed": failed, "explain": explain},
                  name="export_report.json")
    atomic_write_text(out_dir / "export_report.md", report_markdown(md, rows, artifacts, extra))
    return failed


# ----------------------------------------------------------------------------- explain

def explain(graph, brevitas: dict, tflite_layers: dict | None = None) -> dict:
    """Per-layer LSB histograms: numpy reference (double and single rounding, chained and fed with
    Brevitas's own layer inputs) vs Brevitas, and LiteRT's reference kernels per layer vs the
    reference in their flavour ("litert_ref"), so a difference is attributed to rounding or to a bug."""
    from sqtool.export import reference as R
    out = {}
    xq = brevitas["input"]
    runs = {f"ref_{m}": R.run(graph, xq, m) for m in ("double", "single")}
    runs.update({f"ref_{m}_isolated": R.run(graph, xq, m, inputs=brevitas) for m in ("double", "single")})
    lite = R.run(graph, xq, "litert_ref")
    prev = "input"
    for layer in graph.layers:
        row = {}
        for k, r in runs.items():
            row[f"{k}_vs_brevitas"] = lsb_stats(brevitas[layer.name], r[layer.name])
        # where single rounding (exact) and Brevitas (float32) disagree on the same inputs: distance of the
        # exact value from the rounding tie, in LSB (tiny = Brevitas's float noise; large = a real bug)
        flip = runs["ref_single_isolated"][layer.name] != brevitas[layer.name]
        if flip.any():
            v = R.exact_requant_input(layer, brevitas[prev])
            row["single_flip_tie_distance_lsb_max"] = float(np.abs(v[flip] - np.floor(v[flip]) - 0.5).max())
        prev = layer.name
        if tflite_layers and layer.name in tflite_layers:
            row["tflite_vs_ref_litert"] = lsb_stats(lite[layer.name], tflite_layers[layer.name])
            row["tflite_vs_brevitas"] = lsb_stats(brevitas[layer.name], tflite_layers[layer.name])
        out[layer.name] = row
    return out


def explain_text(ex: dict) -> str:
    keys = None
    lines = []
    for name, row in ex.items():
        if keys is None:
            keys = [k for k in row if k != "single_flip_tie_distance_lsb_max"] + ["single_flip_tie_distance_lsb_max"]
            lines.append("layer      " + "  ".join(f"{k:>32}" for k in keys))
        cells = []
        for k in keys:
            s = row.get(k)
            if not isinstance(s, dict):
                cells.append(f"{'-' if s is None else f'{s:.2e}':>32}")
                continue
            cells.append(f"{'-':>32}" if s is None else
                         f"{'max ' + str(s['max_lsb']) + ' | ' + ' '.join(f'{a}:{b}' for a, b in s['lsb_hist'].items()):>32}")
        lines.append(f"{name:<10} " + "  ".join(cells))
    return "\n".join(lines)
