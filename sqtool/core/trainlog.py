"""The live training log: RUN/log.csv, a row per logged step (pretrain) or per epoch of each fit (fine-tune), appended
and flushed as the run trains, so `tail -f RUN/log.csv` and a notebook re-reading it mid-run see the run as it goes.

    log = TrainLog(run_dir, PRETRAIN_COLUMNS, enabled=d.is_main)     # rank 0 only; others write nothing
    log.keep(lambda r: int(r["step"]) <= saved_step)                  # a resume: rows past its checkpoint dropped
    log.row(kind="train", step=10, epoch=1, loss=-0.41, ...)          # one line, flushed

CSV rather than JSONL: one header names the columns once, `tail -f` reads as a table, and pandas / a spreadsheet
open it as it is; a column a row has no value for (a validation row's lr) is empty. Floats are written in full
(repr), so a killed-and-resumed run's log equals an uninterrupted run's in every column but TIME_COLUMNS.
The file is opened per row (a few tens of microseconds): a resume's `keep` replaces it (temp file + os.replace), and
a handle kept open would write on into the old file; `keep` replaces it only when it drops a row (every fit's
`start_fit` calls it), so `tail -f` follows a whole fresh run (a resume that drops rows: `tail -F`). A row torn by a
kill (no newline) is dropped by `keep`.

A fine-tune's fold (and quantize's inner students) also scores its held-out subjects after each epoch (`HeldOut`:
one forward pass over their windows, the model's modes and the random streams left as they were, so the weights are
the same as without it): val_loss, val_metric and its name in `metric`, to watch over- or under-fitting as it trains.
Nothing reads them back: the epochs and every setting are chosen inside the training subjects (the nested protocol).

With `tensorboard` the same rows go to RUN/tb as scalars (torch.utils.tensorboard, when the `tensorboard` package is
importable: `pip install sqtool[tensorboard]`; without it one line says so and the CSV is written alone): pretrain's
into RUN/tb (a resume purges the steps past its checkpoint), each fit's (`start_fit`) into its own RUN/tb/<fit>
(a TensorBoard run per fit), removed when the fit is trained again, as its rows are. A fresh log (a --force'd
folder) removes the earlier run's log.csv and RUN/tb both.

The log never stops the run: log.csv that cannot be written (opened in a spreadsheet that locks it, made read-only,
its disk full) is one note line, and the rows go on to the file once it can be written again (a second note says how
many were missed); a resume that cannot rewrite it keeps it as it is (said too).
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LOG_FILE = "log.csv"
TB_DIR = "tb"
# kind: train (a step's figures) | val (a validation: val_loss, z_std); epoch from 1; elapsed_s over every part of
# the run; pairs_per_s since the row before (this part's)
PRETRAIN_COLUMNS = ("kind", "step", "epoch", "loss", "lr", "grad_norm", "z_std", "val_loss", "elapsed_s",
                    "pairs_per_s")
# fit: "fold k" or "final fit"; loss: the epoch's mean training loss; lr: at the epoch's end (empty: not known);
# val_loss, val_metric: the fit's held-out part after the epoch (a fold's held-out subjects: `HeldOut`; empty for a
# fit without one, the final fit), `metric` naming val_metric (mae_bpm, auroc, ...)
FINETUNE_COLUMNS = ("fit", "epoch", "loss", "lr", "val_loss", "val_metric", "metric", "elapsed_s")
TIME_COLUMNS = ("elapsed_s", "pairs_per_s")          # the columns a resumed run's log differs in
UNWRITABLE = ("sqtool: note: {path} cannot be written ({err}): training goes on, its rows are not logged until it can "
               "be (a spreadsheet holding it open? close it)")
TB_MISSING = ("sqtool: note: --tensorboard needs the tensorboard package (pip install tensorboard); writing "
              "RUN/log.csv only")


def read_log(path: str | os.PathLike) -> list[dict]:
    """The rows of a log.csv as dicts of strings (a last row torn by a kill, without its newline, left out)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    return list(csv.DictReader(lines))


class TrainLog:
    """RUN/log.csv of one run (see the module docstring). `enabled` False (a rank but 0): every call does nothing.
    `fresh`: a new run, any earlier log in the folder (a --force'd one's) removed first; else rows are appended to
    the log there (a resume, after `keep`)."""

    def __init__(self, run_dir: str | os.PathLike, columns: tuple[str, ...], enabled: bool = True,
                 fresh: bool = False, tensorboard: bool = False):
        self.path, self.columns, self.on = Path(run_dir) / LOG_FILE, tuple(columns), bool(enabled)
        self.tb: dict = {}                    # RUN/tb's sub-folder ("": RUN/tb itself) -> its SummaryWriter
        self._tb_on = bool(tensorboard) and self.on
        self.t0 = time.perf_counter()
        self.missed = 0                       # rows not written since log.csv last could be (`_unwritable`)
        if self.on:
            self.path.parent.mkdir(parents=True, exist_ok=True)    # the Python API's run_dir may not exist yet
            if fresh:                         # the earlier run's log, in either form
                self.path.unlink(missing_ok=True)
                shutil.rmtree(self.path.parent / TB_DIR, ignore_errors=True)
            else:
                self._same_columns()

    def _same_columns(self) -> None:
        """A resumed run's log.csv written with other columns (by an earlier sqtool: before the held-out columns)
        rewritten under this run's header, its rows kept (a column it lacked empty), so the rows appended next line up
        with the header."""
        try:
            with open(self.path, encoding="utf-8") as f:
                head = next(csv.reader([f.readline()]), [])
        except OSError:
            return
        if head and tuple(head) != self.columns:
            self._rewrite(read_log(self.path), "its columns brought up to date")

    def _tb_writer(self, sub: str = "", purge_step: int | None = None):
        """The TensorBoard writer of RUN/tb/`sub`, made at its first row or `keep`; None without the package (said
        once)."""
        if self._tb_on and sub not in self.tb:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print(TB_MISSING, file=sys.stderr)
                self._tb_on = False
                return None
            self.tb[sub] = SummaryWriter(str(self.path.parent / TB_DIR / sub), purge_step=purge_step)
        return self.tb.get(sub)

    def drop_tb(self, sub: str) -> None:
        """RUN/tb/`sub` removed (a fit about to be trained again: its events of an earlier try go, as its rows)."""
        if self.on:
            if sub in self.tb:
                self.tb.pop(sub).close()
            shutil.rmtree(self.path.parent / TB_DIR / sub, ignore_errors=True)

    def row(self, tb_step: int | None = None, tb_prefix: str = "", tb_sub: str = "", **values) -> None:
        """Append one row (`values` by column; a column not given is empty) and flush it; to TensorBoard too when
        asked, each number as the scalar `tb_prefix + column` at `tb_step`, into RUN/tb/`tb_sub`."""
        if not self.on:
            return
        unknown = set(values) - set(self.columns)
        if unknown:
            raise ValueError(f"log.csv has no column {', '.join(sorted(unknown))}")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if not self.path.is_file() or self.path.stat().st_size == 0:
            w.writerow(self.columns)
        w.writerow(["" if values.get(c) is None else values[c] for c in self.columns])
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(buf.getvalue())
                f.flush()
        except OSError as e:                  # locked, read-only, disk full: the run goes on (module docstring)
            self._unwritable(e)
        else:
            if self.missed:
                print(f"sqtool: note: {self.path} written again; {self.missed} row(s) before this one are not in it",
                      file=sys.stderr)
                self.missed = 0
        tb = self._tb_writer(tb_sub)
        if tb is not None and tb_step is not None:
            for c, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and c not in ("step", "epoch"):
                    tb.add_scalar(tb_prefix + c, v, tb_step)
            tb.flush()

    def keep(self, keep, tb_purge_step: int | None = None) -> None:
        """Keep only the rows `keep(row)` is true of (row: a dict of strings), the file replaced atomically (a resume:
        the rows past the step its checkpoint holds go, the run then appends the same rows again). TensorBoard's
        events past `tb_purge_step` go too (SummaryWriter's purge_step, RUN/tb's own)."""
        if not self.on:
            return
        if tb_purge_step is not None:
            self._tb_writer(purge_step=tb_purge_step)
        if not self.path.is_file():
            return
        rows = read_log(self.path)
        kept = [r for r in rows if keep(r)]
        if len(kept) == len(rows) and self.path.read_text().endswith("\n"):
            return                            # nothing to drop: the file stays (`tail -f` follows this one)
        self._rewrite(kept, "so rows past the checkpoint appear twice")

    def _rewrite(self, rows: list[dict], otherwise: str) -> None:
        """log.csv replaced atomically by `rows` under this log's header; one note if it cannot be."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        from sqtool.core.io import atomic_write_text
        try:
            atomic_write_text(self.path, buf.getvalue())
        except OSError as e:
            print(f"sqtool: note: {self.path} cannot be rewritten for the resume ({e.strerror or e}): kept as it was, "
                  f"{otherwise}", file=sys.stderr)

    def _unwritable(self, e: OSError) -> None:
        """A row that could not be appended: one note at the first of a run of such rows, counted."""
        if not self.missed:
            print(UNWRITABLE.format(path=self.path, err=e.strerror or e), file=sys.stderr)
        self.missed += 1

    def elapsed(self) -> float:
        """Seconds since this log was opened (a fine-tune's part of the run)."""
        return time.perf_counter() - self.t0

    def close(self) -> None:
        for tb in self.tb.values():
            tb.close()
        self.tb = {}


@dataclass(frozen=True)
class HeldOut:
    """A fit's held-out part (a fold's held-out subjects), scored after each epoch for log.csv alone: a diagnostic to
    watch over- and under-fitting, which nothing reads back (the epochs and every setting are chosen inside the
    training subjects, the nested protocol). `score(model)` -> (val_loss or None, val_metric) on its windows, the
    model in eval mode without gradients (`evaluate`); `metric` names val_metric."""
    score: Callable
    metric: str

    def evaluate(self, model) -> tuple[float | None, float | None]:
        """(val_loss, val_metric), a value that is not finite as None (an AUROC of one class); the model's modes
        (train / eval, module by module) as they were after, and no random number drawn, so the training goes on
        exactly as without it."""
        import torch
        modes = [(m, m.training) for m in model.modules()]
        try:
            model.eval()
            with torch.no_grad():
                values = self.score(model)
        finally:
            for m, was in modes:
                m.training = was
        return tuple(float(v) if v is not None and math.isfinite(v) else None for v in values)


class FitRows(list):
    """A fine-tune fit's loss per epoch (the list the fit functions append to, as they did to a plain list), each
    epoch also a row of the log: fit, epoch (from 1), loss, lr (`add_epoch`'s, when the fit knows it), the held-out
    part's val_loss, val_metric and metric (`held_out`, when the fit has one and `add` is given the model), elapsed_s
    (the held-out forward pass included)."""

    def __init__(self, log: TrainLog, fit: str, held_out: HeldOut | None = None):
        super().__init__()
        self.log, self.fit, self.held_out = log, fit, held_out

    def add(self, loss: float, lr: float | None = None, model=None) -> None:
        self.append(float(loss))
        val_loss = val_metric = metric = None
        if self.held_out is not None and model is not None and self.log.on:
            (val_loss, val_metric), metric = self.held_out.evaluate(model), self.held_out.metric
        self.log.row(tb_step=len(self), tb_sub=tb_folder(self.fit), fit=self.fit, epoch=len(self), loss=float(loss),
                     lr=lr, val_loss=val_loss, val_metric=val_metric, metric=metric, elapsed_s=self.log.elapsed())


def held_out_curves(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """Each fit's held-out val_loss per epoch as RUN/log.csv holds it ("fold 2 held-out": [...]; fits without one
    left out), for training_curve.png's dashed lines beside the training losses (a resume's reused folds included)."""
    curves: dict[str, list[float]] = {}
    for r in read_log(Path(run_dir) / LOG_FILE):
        if r.get("val_loss"):
            curves.setdefault(f"{r['fit']} held-out", []).append(float(r["val_loss"]))
    return curves


def tb_folder(fit: str) -> str:
    """A fit's TensorBoard folder under RUN/tb (its run in TensorBoard): "fold 2" -> "fold_2"."""
    return re.sub(r"\W+", "_", fit).strip("_") or "fit"


def add_epoch(history: list | None, loss: float, lr: float | None = None, model=None) -> None:
    """An epoch's mean loss onto `history` (a fit's curve: a plain list, or FitRows, which logs it with the held-out
    figures of `model` when the fit has a held-out part), if given."""
    if isinstance(history, FitRows):
        history.add(loss, lr, model)
    elif history is not None:
        history.append(float(loss))


def start_fit(log: TrainLog, fit: str, held_out: HeldOut | None = None) -> FitRows:
    """A fit about to train (a fold, the final fit): its rows and TensorBoard events (RUN/tb/<fit>) of an earlier,
    interrupted try dropped first (a resume reuses finished folds, whose rows stay, and trains the rest again), then
    a FitRows for its epochs (`held_out`: its held-out part, scored after each epoch)."""
    log.keep(lambda r: r.get("fit") != fit)
    log.drop_tb(tb_folder(fit))
    return FitRows(log, fit, held_out)


def keep_fits(log: TrainLog, family: str, fits=()) -> None:
    """The fits of `family` ("inner": those named "inner ...") down to `fits`: the rows and TensorBoard folders of its
    others dropped, an earlier try's that this run has none of (a resume with fewer --inner-folds: "inner 3 distill"
    rows beside the 2 inner students it trains; none of `fits`: the family's every row)."""
    if not log.on:
        return
    keep = set(fits)
    stale = {r.get("fit") for r in read_log(log.path)
             if (r.get("fit") or "").startswith(family + " ") and r.get("fit") not in keep}
    if stale:
        log.keep(lambda r: r.get("fit") not in stale)
    tb_keep = {tb_folder(f) for f in keep}
    tb = log.path.parent / TB_DIR
    for sub in sorted(tb.glob(tb_folder(family) + "_*")) if tb.is_dir() else []:
        if sub.name not in tb_keep:
            log.drop_tb(sub.name)


def val_metric_name(metric: str, units=()) -> str:
    """log.csv's `metric` of a held-out figure: an MAE with its outputs' one unit (`core.metrics.skill_unit`:
    "mae_bpm", "mae_breaths_per_min", "mae_mmhg", "mae_percent"; plain "mae" where they differ), another metric as it
    is ("auroc")."""
    from sqtool.core.metrics import skill_unit
    unit = skill_unit(metric, units)                       # "BPM", "breaths/min", "mmHg"; "" for none or several
    slug = re.sub(r"\W+", "_", unit.lower().replace("/", "_per_").replace("%", "percent")).strip("_")
    return f"mae_{slug}" if slug else metric


__all__ = ["LOG_FILE", "TB_DIR", "PRETRAIN_COLUMNS", "FINETUNE_COLUMNS", "TIME_COLUMNS", "TrainLog", "FitRows",
           "HeldOut", "add_epoch", "start_fit", "keep_fits", "val_metric_name", "read_log"]
