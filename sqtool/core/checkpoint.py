"""Self-describing checkpoints, written atomically and read without running code.

A checkpoint is a dict saved with torch.save:

    kind          "teacher_pretrain" | "teacher_task" | "student_float" | "student_int8"
    model_cfg     ModelCfg.to_dict(): architecture + preprocessing contract (fs, window, channels, norm...)
    state_dict    the model's weights
    train_cfg     the resolved command config (dict)
    sqtool_version, created
    + optional: optimizer, scheduler, scaler, epoch, step, rng, metrics, history, data,
      train_subjects / heldout_subjects ("dataset:subject" keys, `datasets_of` names their datasets)

Contract: a checkpoint holds only tensors and plain data (dict, list, tuple, str, int, float, bool,
None). `save_checkpoint` converts numpy arrays to tensors and numpy scalars to Python numbers, so
`load_checkpoint` can read with `torch.load(weights_only=True)`: unpickling a file that names any other
type (a class, a function: what a crafted file uses to run code) is refused with one SqtoolError line
naming the file, before any of it runs.

Every training run directory holds `model.pt` (the model handed to the next stage) and, while
training, `last.pt` (full resume state). Files are written to a temp file, fsynced and renamed.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from sqtool import __version__
from sqtool.core.errors import SqtoolError
from sqtool.core.metrics import datasets_of  # noqa: F401 - torch-free there (predict's provenance lines)
from sqtool.core.io import atomic_write_bytes, created_stamp, file_version, sha256_file_cached
from sqtool.core.io import sha256_file as file_sha256  # noqa: F401 - re-exported
from sqtool.core.runs import run_command, unfinished_run

KINDS = ("teacher_pretrain", "teacher_task", "student_float", "student_int8")


def to_plain(obj):
    """Tensors and plain data only: numpy arrays -> tensors, numpy scalars -> Python numbers, Paths -> str."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        out = [to_plain(v) for v in obj]
        return tuple(out) if isinstance(obj, tuple) else out
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_checkpoint(path: str | os.PathLike, *, kind: str, model_cfg: dict, state_dict: dict,
                    train_cfg: dict | None = None, **extra) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind}")
    ckpt = {"kind": kind, "model_cfg": model_cfg, "state_dict": state_dict, "train_cfg": train_cfg or {},
            "sqtool_version": __version__, "created": created_stamp()}
    ckpt.update(extra)
    buf = io.BytesIO()
    torch.save(to_plain(ckpt), buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def resolve_checkpoint_path(path: str | os.PathLike, name: str = "model.pt") -> Path:
    """Accept a run directory (-> its model.pt) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        if not (p / name).is_file():                    # what the folder is instead, and what to give
            if (p / "manifest.json").is_file():
                raise SqtoolError(f"{p} is an `sqtool export` folder (ONNX / TFLite / C), not a training run: give "
                                  f"the run it was exported from (its manifest.json names it), e.g. the quantize or "
                                  f"train run folder")
            if unfinished := unfinished_run(p, name):   # a killed run: say so, and how on
                raise SqtoolError(unfinished)
            if (cmd := run_command(p)) in ("data_pairs", "bench", "predict"):
                from sqtool.core.runs import shell_command
                raise SqtoolError(f"{p} is a `sqtool {cmd.replace('_', ' ')}` folder, not a training run: " + (
                    f"pretrain on its pairs first ({shell_command('train', 'pretrain', '--pairs', p, '--model', 'MODEL')})"
                    " and give that run" if cmd == "data_pairs" else "give the run of the model it ran (train, quantize)"))
        p = p / name
    if not p.is_file():
        raise SqtoolError(f"checkpoint {p} not found")
    return p


def unfinished_checkpoint(path: str | os.PathLike, name: str = "model.pt") -> str | None:
    """The line `load_checkpoint(path, finished=True)` refuses `path` with (a run folder, or a checkpoint file in
    one, of a run that did not finish: `unfinished_run`), told before it is read; None for a finished run's, a file
    of no run (an exported or copied checkpoint) or a path that is not there (its reader says so)."""
    p = Path(path)
    if p.is_dir() and not (p / name).is_file():         # killed before its checkpoint (resolve_checkpoint_path)
        return unfinished_run(p, name)
    if p.is_dir() or p.is_file():
        return unfinished_run(p if p.is_dir() else p.parent, "metrics.json", stopped=True)
    return None


def named_checkpoint(path: str | os.PathLike, name: str = "model.pt",
                     kinds: tuple[str, ...] | None = None) -> str | None:
    """The line a checkpoint the user named explicitly (bench's --teacher / --student-float / --student-int8) is
    refused with, before anything is read or written: a path that is not there (a typo), a folder that holds no
    `name`, a file that is not a checkpoint (`not_a_checkpoint`), one of a run that did not finish
    (`unfinished_checkpoint`) or one of a kind not in `kinds` (`wrong_kind`, its kind read by `checkpoint_kind_of`);
    None for one its reader may load."""
    try:
        p = resolve_checkpoint_path(path, name)
    except SqtoolError as e:
        return str(e)
    if line := unfinished_checkpoint(p) or not_a_checkpoint(p, name):
        return line
    kind = checkpoint_kind_of(p) if kinds is not None else None
    return wrong_kind(p, kind, kinds, path) if kind is not None and kind not in kinds else None


def checkpoint_kind_of(p: Path) -> str | None:
    """The kind checkpoint file `p` holds, read without reading its weights (torch.load's mmap: only the pickled
    dict is parsed, tensors stay mapped, tensors and plain data only); None when it cannot be read so (a legacy
    non-zip file, corrupt, no sqtool metadata): `load_checkpoint` then says what it is."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PROTOCOL_WARNING, category=UserWarning)
            ckpt = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - any unreadable file: left to load_checkpoint's line
        return None
    kind = ckpt.get("kind") if isinstance(ckpt, dict) else None
    return kind if isinstance(kind, str) else None


def wrong_kind(p: Path, kind: str, kinds: tuple[str, ...], path: str | os.PathLike) -> str:
    """The line checkpoint file `p` (as given: `path`) holding a `kind` that is not one of `kinds` is refused with,
    with what to do where one is known (KIND_HINTS)."""
    hint = next((h for (got, want), h in KIND_HINTS.items() if got == kind and want in kinds), None)
    return (f"checkpoint {p} is a {kind} checkpoint; expected {' or '.join(kinds)}"
            + (": " + hint(path) if hint else ""))


def not_a_checkpoint(p: Path, name: str = "model.pt") -> str | None:
    """The line for file `p` when it is no torch.save file at all (`_looks_like_torch_file`), else None."""
    if _looks_like_torch_file(p):
        return None
    return (f"{p} is not a checkpoint (another kind of file, or corrupt): give a run folder holding {name}, or a .pt "
            "file written by sqtool")


def _looks_like_torch_file(p: Path) -> bool:
    """A torch.save file: a zip archive (torch >= 1.6) or a legacy pickle (protocol 2+ starts with 0x80).
    Anything else (a YAML, a CSV, a text file) is not a checkpoint at all, told apart before unpickling."""
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError:
        return True                                     # let torch.load report the read error
    return head.startswith(b"PK") or head[:1] == b"\x80"


def _finetune_first(path) -> str:
    from sqtool.core.runs import shell_command
    return f"fine-tune it first: {shell_command('train', 'finetune', '--init', path, '--task', 'TASK')}"


# (the checkpoint's kind, a kind the command expects) -> what to do, given the path the command was handed
KIND_HINTS = {("teacher_pretrain", "teacher_task"): _finetune_first}


# torch's warning on a pickle of a protocol torch.save does not write, printed with its own source line before the
# file is refused anyway: two lines of torch internals above sqtool's one line naming the file
PROTOCOL_WARNING = r"Detected pickle protocol \d+ in the checkpoint"

_CRC_OK: set[tuple] = set()      # `file_version`s of checkpoints whose members passed their CRC-32 in this process


def _damaged_member(p: Path) -> str | None:
    """The first member of a checkpoint (a zip, as torch.save writes it) whose bytes fail their stored CRC-32: a bit
    flipped on disk or in a copy, which torch.load does not check (weights that load but are garbage); else None.
    Checked once per process and version of the file (a command may load one checkpoint several times)."""
    version = file_version(p)
    if version in _CRC_OK:
        return None
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError):            # torch.load read it, so a legacy (non-zip) file
        return None
    with z:
        try:
            bad = z.testzip()
        except Exception as e:  # noqa: BLE001 - a member that does not inflate: damaged as well
            return f"? ({type(e).__name__})"
    if bad is None:
        _CRC_OK.add(version)
    return bad


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """The sha256 of the checkpoint a run folder or file names (`resolve_checkpoint_path`), hashed once per process
    and version of the file: what a key of work started from it (a fine-tune's --init, quantize's --student-init)
    hashes, since a pretraining re-run into the same folder changes the weights under the same path."""
    return sha256_file_cached(resolve_checkpoint_path(path))


def load_checkpoint(path: str | os.PathLike, expect_kind: str | tuple[str, ...] | None = None,
                    name: str = "model.pt", finished: bool = False) -> dict:
    """Load and validate a checkpoint (tensors and plain data only); every problem is one SqtoolError line.
    finished=True (a stage reading the previous stage's model: quantize its teacher, export its model, a fine-tune
    its --init): a checkpoint whose run folder holds an unfinished run (killed after model.pt, before its
    metrics.json; a --force'd folder's earlier model.pt; a killed pretrain's last.pt) is refused, naming the command
    that continues it; a pretrain that stopped itself (--max-steps, SIGTERM: model.pt and metrics.json written) is
    read."""
    p = resolve_checkpoint_path(path, name)
    if finished and (unfinished := unfinished_checkpoint(p)):
        raise SqtoolError(unfinished)
    if not_torch := not_a_checkpoint(p, name):
        raise SqtoolError(not_torch)
    try:
        with warnings.catch_warnings():                 # a pickle torch.save never writes: refused below, no noise
            warnings.filterwarnings("ignore", message=PROTOCOL_WARNING, category=UserWarning)
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e).lower() or "unsupported global" in str(e).lower():
            raise SqtoolError(f"checkpoint {p} holds objects other than tensors and plain data: refused "
                              "(loading it could run code)")
        raise SqtoolError(f"checkpoint {p} is corrupt or not a torch checkpoint (UnpicklingError)")
    except Exception as e:  # noqa: BLE001 - corrupt/truncated file, not a zip, ...
        raise SqtoolError(f"checkpoint {p} is corrupt or not a torch checkpoint ({type(e).__name__})")
    if not isinstance(ckpt, dict) or "model_cfg" not in ckpt or "state_dict" not in ckpt or "kind" not in ckpt:
        raise SqtoolError(f"checkpoint {p} lacks sqtool metadata (model_cfg/kind): not written by sqtool")
    if bad := _damaged_member(p):
        raise SqtoolError(f"checkpoint {p} is damaged: its member {bad} fails its CRC-32 (bytes changed on disk or in a "
                          "copy); copy it again, or re-run the step that wrote it")
    if expect_kind is not None:
        kinds = (expect_kind,) if isinstance(expect_kind, str) else tuple(expect_kind)
        if ckpt["kind"] not in kinds:
            raise SqtoolError(wrong_kind(p, ckpt["kind"], kinds, path))
    ckpt["path"] = str(p)
    return ckpt
