"""Progress, the same way in every command: per-item lines, tqdm bars, training-curve plots.

    from sqtool.core.progress import item, bar, training_curve
    item("export: model_int8.onnx  12.3 KB  parity ok (max 0 LSB)")     # one line per finished item
    for x in bar(xs, desc="stream", enabled=cfg.progress): ...            # a tqdm bar (leave=False)
    training_curve(run_dir, {"fold 1": [0.9, 0.5, 0.3]}, ylabel="loss")  # run_dir/training_curve.png

The contract (README "Progress"): everything progress-like goes to stderr, so stdout keeps the results
(tables, the summary, `report:` and `next:`). A command prints ONE line per finished item (an artifact
written and checked, a runtime benchmarked, a fold trained, with its result in units) always;
`--no-progress` silences what updates *within* an item (tqdm bars, per-step / per-epoch lines) and
nothing else. Bars are also off when stderr is not a terminal (CI logs stay clean).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

CURVE_FILE = "training_curve.png"


def item(line: str) -> None:
    """One line for one finished item, on stderr, flushed (the command's visible progress)."""
    print(line, file=sys.stderr, flush=True)


def bars_on(enabled: bool = True) -> bool:
    """Whether a bar may draw: asked for (--progress, the default) AND stderr is a terminal. The one place
    this default is decided: a bar written into a log file or a pipe is a wall of `\r` lines."""
    try:
        return bool(enabled) and sys.stderr.isatty()
    except (AttributeError, ValueError):                 # a replaced or closed stderr
        return False


def bar(iterable=None, total: int | None = None, desc: str = "", enabled: bool = True, unit: str = "it",
        initial: int = 0, leave: bool = False):
    """A tqdm bar on stderr (gone when done unless `leave`); off by --no-progress or a non-terminal stderr.
    Every command draws its bars through this function (never tqdm directly)."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                disable=not bars_on(enabled), file=sys.stderr, dynamic_ncols=True)


class Ticker:
    """The bar's stand-in in a log file: where progress is asked for but stderr is not a terminal (a CI job, a
    batch scheduler, `2> run.log`), one plain line at most every `every_s` seconds, `desc: 1,200/36,000 steps
    (3 %), <what>, ETA 2 h 05 min`, so an hours-long run is not silent between its first and last line. Nothing
    where the bar draws or progress is off."""

    def __init__(self, desc: str, total: int, enabled: bool = True, unit: str = "steps", every_s: float = 30.0,
                 initial: int = 0):
        self.desc, self.total, self.unit, self.every_s = desc, int(total), unit, float(every_s)
        self.on = bool(enabled) and not bars_on(enabled)
        self.t0 = self.last = time.monotonic()
        self.n0 = int(initial)

    def due(self, last: bool = False) -> bool:
        """Whether a line is due now (every_s since the last one; always when `last`, the run's end line)."""
        now = time.monotonic()
        if not self.on or (now - self.last < self.every_s and not last):
            return False
        self.last = now
        return True

    def rate(self, n: int) -> float:
        """Items per second of this run (a resumed run's own part)."""
        return (n - self.n0) / max(time.monotonic() - self.t0, 1e-9)

    def eta(self, n: int) -> str:
        """`, ETA 2 h 05 min` at this run's rate, or '' when done or not yet moving."""
        r = self.rate(n)
        return f", ETA {_duration((self.total - n) / r)}" if r > 0 and self.total > n else ""

    def __call__(self, n: int, what: str = "") -> None:
        if not self.due():
            return
        pct = f" ({100 * n / self.total:.0f} %)" if self.total else ""
        item(f"{self.desc}: {n:,}/{self.total:,} {self.unit}{pct}" + (f", {what}" if what else "") + self.eta(n))


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else (f"{s // 60} min {s % 60:02d} s" if s >= 60
                                                                       else f"{s} s")


def size_text(n_bytes: int | None) -> str:
    """'812 B', '12.3 KB', '4.1 MB' (KB = 1024 B)."""
    if n_bytes is None:
        return "-"
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024 ** 2:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / 1024 ** 2:.1f} MB"


_UNITS = {"hr": "BPM", "rr": "breaths/min", "bp": "mmHg"}
_SPELLED = {"bpm": "BPM"}      # an output's unit field (model cfg, metrics.json "units") -> as every line prints it


def unit_text(unit) -> str:
    """An output's unit as the tool prints it: heart rate's unit field 'bpm' (model cfg, metrics.json "units") is
    written BPM, as in every other line; any other unit as it is ('' for none)."""
    return _SPELLED.get(str(unit), str(unit)) if unit else ""
_NAMES = {"mae": "MAE", "rmse": "RMSE", "bias": "bias", "auroc": "AUROC", "f1_weighted": "weighted F1",
          "auprc": "AUPRC", "accuracy": "accuracy"}


def metric_text(task: str, metric: str, value, unit: str | None = None) -> str:
    """A headline number with its name and unit: ('hr', 'mae', 8.108) -> 'MAE 8.11 BPM';
    ('quality', 'auroc', 0.91234) -> 'AUROC 0.912' (scores are unitless); `unit`: a custom label's (its spec's)."""
    name = _NAMES.get(metric, metric)
    if value is None:
        return f"{name} -"
    unit = (_UNITS.get(task) or unit_text(unit)) if metric in ("mae", "rmse", "bias") else None
    return f"{name} {float(value):.2f} {unit}" if unit else f"{name} {float(value):.3f}"


def training_curve(run_dir, curves: dict[str, list[float]], ylabel: str = "training loss", xlabel: str = "epoch",
                   title: str = "", val: dict[str, list[float]] | None = None, name: str = CURVE_FILE) -> Path | None:
    """Plot one line per curve (e.g. per fold) of a value per epoch into run_dir/<name>; `val` adds dashed
    validation curves on a second panel-free axis (same axes). Returns the path, None when nothing to plot.
    x is 1-based (epoch 1 = after the first pass)."""
    curves = {k: [float(v) for v in vs] for k, vs in (curves or {}).items() if len(vs)}
    val = {k: [float(v) for v in vs] for k, vs in (val or {}).items() if len(vs)}
    if not curves and not val:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for k, vs in curves.items():
        ax.plot(range(1, len(vs) + 1), vs, lw=1.2, marker="o" if len(vs) < 30 else None, ms=3, label=k)
    for k, vs in val.items():
        ax.plot(range(1, len(vs) + 1), vs, lw=1.2, ls="--", marker="s" if len(vs) < 30 else None, ms=3, label=k)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if len(curves) + len(val) <= 12:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(run_dir) / name
    from sqtool.core.io import atomic_savefig
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["item", "bar", "bars_on", "size_text", "metric_text", "unit_text", "training_curve", "CURVE_FILE"]
