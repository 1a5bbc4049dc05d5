"""Run directories (resolved config + provenance + metrics), seeds and the data root."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import fcntl
import functools
import json
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

from sqtool import __version__
from sqtool.core.config import to_dict
from sqtool.core.errors import SqtoolError
from sqtool.core.io import atomic_write_text, created_stamp

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def data_root_error(p: str | os.PathLike, flag: str = "--data") -> SqtoolError:
    """The one line for a data root that is no folder: missing, or a single recording file (which a command that
    trains reads only through a dataset file naming its labels)."""
    p = Path(p).expanduser()
    if p.is_file():
        return SqtoolError(f"{flag} {p} is a file: this command reads a folder of datasets, or a dataset file "
                           f"(dataset.yaml) that names your recordings and their labels (README 'Your own data'; "
                           f"sqtool data inspect --data {p} shows what the file holds)")
    return SqtoolError(f"data root {p} does not exist or is not a directory")


def dataset_folder_hint(root: str | os.PathLike, names) -> str:
    """'' or, when `root` is itself one of the built-in dataset folders `names` (--data ../shared/data/troika, where
    the data root holding troika/ goes), the sentence saying what to give instead."""
    p = Path(root).expanduser()
    if p.name not in set(names) or (p / p.name).is_dir():
        return ""
    return (f": {p} is the {p.name} dataset's own folder, --data takes the data root holding it (--data {p.parent}) "
            f"or the dataset's name (--data {p.name}, read under $SQTOOL_DATA)")


def resolve_data_root(arg: str | os.PathLike | None = None, required: bool = False,
                      flag: str = "--data") -> Path | None:
    """`arg` (a data root given to the command), else $SQTOOL_DATA, else ../shared/data (next to the project or
    the cwd) if present. `flag`: the option the error (required, none found) tells the user to pass."""
    if arg:
        p = Path(arg).expanduser()
        if not p.is_dir():
            raise data_root_error(p, flag)
        return p.resolve()                 # absolute: it is recorded in run dirs and read from other cwds
    env = os.environ.get("SQTOOL_DATA")
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise SqtoolError(f"SQTOOL_DATA={env} does not exist or is not a directory")
        return p.resolve()
    for base in (Path.cwd(), PROJECT_ROOT):
        p = (base / ".." / "shared" / "data").resolve()
        if p.is_dir():
            return p
    if required:
        raise SqtoolError(f"no data root: pass {flag} DIR (the folder of the datasets, e.g. ../shared/data) or "
                          "set SQTOOL_DATA")
    return None


def data_and_root(data: str | None, data_root: str | None) -> tuple[str | None, str | None]:
    """(--data, --data-root) of a command where --data-root is the data root that a bare dataset name given as
    --data is looked up in (data inspect, predict, bench). --data-root given without --data is read as --data,
    with the one-line notice of its old spelling that train, quantize and demo print for it (there --data-root
    is only that), so `--data-root ../shared/data/troika` reads troika in every command."""
    if data_root and not data:
        print("sqtool: deprecated: use --data instead of --data-root", file=sys.stderr)
        return data_root, None
    return data, data_root


DATA_ROOT_HELP = "folder of the datasets (default: $SQTOOL_DATA, else ../shared/data)"


def data_root_or_exit(value: str | os.PathLike | None, error, flag: str = "--data-root") -> str:
    """A script's --data-root read as the package reads it (`resolve_data_root`: the flag, else $SQTOOL_DATA,
    else ../shared/data): the absolute path; when there is none, `error(message)` (e.g. an ArgumentParser's
    `error`: one line, exit 2), which must not return. `flag`: the script's option that gives the data root."""
    try:
        return str(resolve_data_root(value or None, required=True, flag=flag))
    except SqtoolError as e:
        error(str(e))
        raise


def git_sha(root: str | os.PathLike = PROJECT_ROOT) -> str:
    """The commit of the code in `root` (12 hex digits), with "-dirty" when a tracked file differs from it
    (uncommitted changes: the code that ran is not that commit's; untracked files do not count); "unknown"
    outside a git checkout (an installed package). The status is read without taking git's index lock
    (--no-optional-locks), so it never blocks a commit made at the same time."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=5)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return "unknown"
        st = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                            cwd=root, capture_output=True, text=True, timeout=5)
        return sha + ("-dirty" if st.returncode == 0 and st.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def set_seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % (2**32))
    except ImportError:
        pass
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:
        pass


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with torch's intra-op thread count at `n`, then put the caller's count back (also when the
    block raises): a library call (predict's torch runtimes, export) must not leave torch's process-wide setting
    changed for the rest of a notebook's kernel."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_compute() -> dict:
    """{torch: its version, torch_threads: its intra-op thread count now}: what a training run's float sums depend on
    beyond its config and seed (a training's reductions split by thread, so another count gives other weights), for
    its config.yaml's resolved: section; a re-run matches bit for bit at the same count (OMP_NUM_THREADS)."""
    import torch
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def at_cfg_threads(fn):
    """Decorator of a library entry `fn(cfg, ...)` that trains on `cfg.threads` torch threads (at least 1) and puts
    the caller's count back when it returns or raises (`torch_threads`): quantize's entries."""
    @functools.wraps(fn)
    def wrapper(cfg, *args, **kwargs):
        with torch_threads(max(1, cfg.threads)):
            return fn(cfg, *args, **kwargs)
    return wrapper


_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,99}")
_LOCKS: dict[str, int] = {}          # run dir -> fd of its .lock, flock'ed by this process
_MADE: list[tuple[Path, bool]] = []  # run dirs make_run_dir handed out: (dir, created by it)
_NOTED: list[tuple[Path, str]] = []  # run dirs this process wrote into, with make_run_dir's command

# The commands whose runs `--resume RUN` continues: make_run_dir's command -> (the command line, the file a
# resume needs, the config keys that tell a run of it made before config.yaml named its command).
RESUMABLE = {
    "train/pretrain": ("sqtool train pretrain", "last.pt", {"pairs", "pair_mode", "lr_step_epochs"}),
    "train/finetune": ("sqtool train finetune", "config.yaml", {"task", "init", "mode", "label_fraction"}),
    "quantize": ("sqtool quantize", "config.yaml", {"teacher", "student", "preset"}),
    "data_pairs": ("sqtool data pairs", "resume/state.json", {"max_gap_s", "shard_mb", "synthetic_fallback"}),
}


def saved_yaml(d: str | os.PathLike) -> dict:
    """A run folder's config.yaml as a mapping ({} when missing, unreadable or not YAML)."""
    try:
        import yaml
        out = yaml.safe_load((Path(d) / "config.yaml").read_text())
        return out if isinstance(out, dict) else {}
    except Exception:  # noqa: BLE001 - missing, unreadable or not YAML: not a run we can name
        return {}


def run_command(d: str | os.PathLike) -> str | None:
    """The command (make_run_dir's, e.g. "train/pretrain") whose run folder `d` is, from its config.yaml:
    its `command:`, else (runs made before it was written) the keys of its `config:`; None if unknown."""
    return _command_of(saved_yaml(Path(d)))


def _command_of(saved: dict) -> str | None:
    """run_command for a config.yaml already read (`saved_yaml`): a caller that reads the file once."""
    if isinstance(saved.get("command"), str):
        return saved["command"]
    keys = set(saved.get("config") or {}) if isinstance(saved.get("config"), dict) else set()
    return next((c for c, (_, _, marks) in RESUMABLE.items() if keys and marks <= keys), None)


def pretraining_of(run_dir: str | os.PathLike) -> dict | None:
    """The self-supervised pretraining upstream of a `train finetune` or `quantize` run, read from the run folders'
    config.yaml (a quantize run: its --student-init and its teacher's fine-tune; a fine-tune: its --init) and the
    pairs folders' index.json: {"runs": pretrain run folders, "subjects": "dataset:subject" keys whose unlabelled
    windows were in its pairs, "datasets": theirs}. Empty lists when the chain records no pretraining; None when
    a link cannot be followed (a folder, config.yaml or pairs index missing), so nothing is claimed."""
    inits = _inits_of(Path(run_dir))
    if inits is None:
        return None
    runs, subjects, datasets = [], set(), set()
    for init in inits:
        d = Path(init) if Path(init).is_dir() else Path(init).parent
        saved = saved_yaml(d)
        if _command_of(saved) != "train/pretrain":
            return None
        pairs = (saved.get("resolved") or {}).get("pairs") or (saved.get("config") or {}).get("pairs")
        runs.append(str(d))
        if not pairs or str(pairs) == "synthetic":                     # generated pairs: no subject's data
            datasets.add("synthetic")
            continue
        try:
            keys = {str(k).replace("/", ":", 1) for k in json.loads((Path(pairs) / "index.json").read_text())[
                "subjects"]}                                            # "troika/01" -> "troika:01"
        except (OSError, ValueError, KeyError, TypeError):
            return None
        subjects |= keys
        datasets |= {k.split(":")[0] for k in keys}
    return {"runs": runs, "subjects": sorted(subjects), "datasets": sorted(datasets)}


def _inits_of(d: Path) -> list[str] | None:
    """The pretrained checkpoints a run started from (its own and, for quantize, its teacher's); None if unknown."""
    saved = saved_yaml(d)
    cfg, res = saved.get("config") or {}, saved.get("resolved") or {}
    given = lambda k: (lambda v: None if v in (None, "", "none") else str(v))(res.get(k) or cfg.get(k))  # noqa: E731
    command = _command_of(saved)
    if command == "train/finetune":
        return [i for i in (given("init"),) if i]
    if command == "quantize":
        teacher = given("teacher") or given("model")
        up = _inits_of(Path(teacher) if Path(teacher).is_dir() else Path(teacher).parent) if teacher else None
        return None if up is None else [i for i in (given("student_init"),) if i] + up
    return None


def shell_command(*argv) -> str:
    """`sqtool ARGV...` as a line to paste into a shell: every argument quoted where it needs it (a path with a
    space or a quote stays one argument), so every command sqtool prints for the user to run goes through it."""
    return "sqtool " + shlex.join(str(a) for a in argv)


def resume_command(d: str | os.PathLike, command: str | None = None) -> str | None:
    """`sqtool ... --resume D` when folder `d` holds a run (of `command`, when given) that can be resumed; under
    torchrun as the run was started there (`as_launched`), since that continues it bit for bit."""
    d = Path(d)
    saved = saved_yaml(d)
    cmd = _command_of(saved)
    if cmd not in RESUMABLE or (command is not None and cmd != command):
        return None
    cli, needs, _ = RESUMABLE[cmd]
    return as_launched(saved, shell_command(*cli.split()[1:], "--resume", d)) if (d / needs).exists() else None


def as_launched(saved: dict, line: str) -> str:
    """`line` (an `sqtool ...` command) started the way the run whose config.yaml is `saved` ran: as is for one
    process; for a run of W processes (`resolved: world_size`, `nproc_per_node`: train pretrain under torchrun)
    in the README's torchrun spelling, `torchrun --standalone --nproc_per_node W -m sqtool.cli ...` on one node,
    `torchrun --nnodes N --nproc_per_node L --rdzv-backend c10d --rdzv-endpoint HOST0:29500 -m sqtool.cli ...` on
    N nodes (HOST0: the first node's address, to fill in; run on every node); `sqtool-torchrun` where the run was
    started by it (`resolved: launcher`, `train.launch`)."""
    res = saved.get("resolved") if isinstance(saved.get("resolved"), dict) else {}
    try:
        world = int(res.get("world_size") or saved.get("world_size") or 1)
        per_node = int(res.get("nproc_per_node") or world)
    except (TypeError, ValueError):                     # a hand-edited config.yaml: say the plain command
        return line
    if world <= 1:
        return line
    nodes = world // per_node if per_node > 0 and world % per_node == 0 else 1
    run = "sqtool-torchrun" if res.get("launcher") == "sqtool-torchrun" else "torchrun"
    start = f"{run} --standalone --nproc_per_node {world}" if nodes == 1 else \
        f"{run} --nnodes {nodes} --nproc_per_node {per_node} --rdzv-backend c10d --rdzv-endpoint HOST0:29500"
    return f"{start} -m sqtool.cli {line.removeprefix('sqtool ')}"


# The file a command writes last, once its run is complete (metrics.json unless named here; a tuple: any of them,
# bench --compare writing compare.json where a bench writes metrics.json). Every make_run_dir command is one of
# train/pretrain, train/finetune, quantize, data_pairs, export, bench, predict, demo (tests/test_cli_audit.py).
RESULT = {"export": ("manifest.json",), "data_pairs": ("index.json",), "predict": ("summary.json",),
          "bench": ("metrics.json", "compare.json")}


def unfinish(run_dir: str | os.PathLike, command: str) -> None:
    """Before a `command` run writes into a --force'd folder of an earlier run of it: remove the file(s) that run wrote
    last (RESULT), so until this run writes its own the folder reads as an unfinished run (a kill in between: the
    interrupt names the --force command that redoes it, a reader says the run is unfinished), never as the earlier run,
    finished, beside files this one has rewritten (data pairs' index.json and export's manifest.json go the same way).
    A folder holding no run of `command` (its config.yaml names none) is left alone."""
    if run_command(run_dir) != command:
        return
    for name in RESULT.get(command, ("metrics.json",)):
        (Path(run_dir) / name).unlink(missing_ok=True)


def note_earlier(run_dir: str | os.PathLike, listed, record: str, suffixes: tuple[str, ...]) -> set[str]:
    """As a --force run takes the folder of an earlier run of its command: that run's files it removes once its own
    result is written, unless it rewrote them (`drop_earlier`): `listed` (the plain file names that run's files
    name: predict's summary.json, bench.json) and those a killed --force run into the folder had still to remove
    (`record`, a hidden JSON list), plain names inside the folder ending in `suffixes` only. They are kept in
    `record` until then, so a run redoing a killed one removes them too; empty without either (a new folder)."""
    names = {n for n in {str(n) for n in listed} | _noted(run_dir, record) if _plain(n) and n.endswith(suffixes)}
    if names:
        atomic_write_text(Path(run_dir) / record, json.dumps(sorted(names)) + "\n")
    return names


def drop_earlier(run_dir: str | os.PathLike, written, record: str) -> list[str]:
    """After a run wrote its result: remove the earlier run's files that `record` lists (`note_earlier`) and it did
    not write itself (`written`), then `record` (a kill before leaves them listed there). Returns those removed."""
    d = Path(run_dir)
    stale = sorted(_noted(d, record) - set(written))
    for name in stale:
        (d / name).unlink(missing_ok=True)
    (d / record).unlink(missing_ok=True)
    return stale


def _noted(run_dir: str | os.PathLike, record: str) -> set[str]:
    """The plain file names `record` (a JSON list, `note_earlier`) in `run_dir` holds; empty without a readable one."""
    try:
        noted = json.loads((Path(run_dir) / record).read_text())
    except (OSError, ValueError):
        return set()
    return {str(n) for n in noted if _plain(str(n))} if isinstance(noted, list) else set()


def _plain(name: str) -> bool:
    """A file name inside its folder: no path, not . or .."""
    return Path(name).name == name and name not in (".", "..")


def unfinished_run(d: str | os.PathLike, missing: str, stopped: bool = False) -> str | None:
    """When folder `d`, where a reader looked for `missing` (e.g. model.pt), holds a run that did not finish (its
    config.yaml names the command, the file the command writes last, RESULT, is not there: killed, interrupted,
    failed): one line saying so, with the command that continues it (`resume_command`) or, for a command without
    --resume, that a --force re-run redoes it. None for a finished run or a folder that is no run. stopped=True (a
    reader of the run's checkpoint): a pretrain that stopped itself (`_finished`) counts as finished."""
    d = Path(d)
    command = run_command(d)
    if command is None or _finished(d, command, stopped):
        return None
    hint, text = resume_command(d, command), _command_text(command)
    return (f"{d} has no {missing}: an unfinished `sqtool {text}` run (killed?): "
            + (f"continue it with `{hint}`" if hint else f"run `sqtool {text}` into it again with --force"))


def load_run_npz(path: str | os.PathLike) -> dict:
    """A run's .npz artifact read whole ({name: array}, no pickles): a truncated, empty or foreign file is one line
    naming it and, when the run that wrote it resumes (`resume_command`), the command that writes it again."""
    import zipfile

    import numpy as np
    p = Path(path)
    try:
        z = np.load(p, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):                 # a bare .npy array
            raise ValueError("not an archive")
        with z:
            return {k: z[k] for k in z.files}
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        hint = resume_command(p.parent)
        raise SqtoolError(f"{p} is corrupt or not an .npz archive ({type(e).__name__}): "
                          + (f"write it again with `{hint}`" if hint else f"re-run the command that wrote {p.parent}"))


def note_run(d: str | os.PathLike, command: str) -> None:
    """Record that this process writes the `command` run in `d` (make_run_dir does; a `--resume` does too),
    so an interrupt can say how to continue it (`interrupted_hint`)."""
    _NOTED.append((Path(d), command))


def runs_noted() -> int:
    """A mark for interrupted_hint: how many runs this process has noted so far."""
    return len(_NOTED)


def interrupted_hint(since: int = 0) -> str | None:
    """After an interrupt (or an OSError such as a full disk): the command that continues the latest run noted since
    `since`, if it can be."""
    for d, command in reversed(_NOTED[since:]):
        hint = resume_command(d, command) if d.is_dir() else None
        if hint:
            return hint
    return None


def unfinished_noted(since: int = 0) -> Path | None:
    """After an interrupt: the folder of the latest run noted since `since` that is still there and unfinished (its
    RESULT file not written) but cannot be resumed, so a rerun into it is refused without --force; else None."""
    for d, command in reversed(_NOTED[since:]):
        if d.is_dir() and resume_command(d, command) is None and not _finished(d, command):
            return d
    return None


def export_first_hint(d: str | os.PathLike, shipped_targets=None) -> str | None:
    """`export it first: sqtool export --model D --target ...` when folder `d` (given where an export folder is
    read: bench, predict) holds a run of a command whose checkpoint is exported (quantize, a fine-tune), with the
    targets its checkpoint takes: an int8 student (quantize's) onnx,tflite,c; a float model (a fine-tune's
    teacher) onnx,tflite, the C target being int8 only (`sqtool quantize` first); a model over a fixed front end
    that ships float as it is (rr_spec, af_beats) its own targets, which `shipped_targets(model_cfg) -> str | None`
    (the models' registry, passed by the caller: core imports no stage) names; None otherwise."""
    d = Path(d)
    command = run_command(d) if d.is_dir() else None
    if command not in ("quantize", "train/finetune"):
        return None
    kind, model_cfg = _checkpoint_head(d)
    kind = kind or ("student_int8" if command == "quantize" else "teacher_task")
    if kind == "student_int8":
        return f"export it first: {shell_command('export', '--model', d, '--target', 'onnx,tflite,c')}"
    if model_cfg is not None and shipped_targets is not None and (own := shipped_targets(model_cfg)):
        return (f"export it first: {shell_command('export', '--model', d, '--target', own, '--precision', 'float')} "
                f"({model_cfg.get('name')} ships float, as {own} only)")
    return (f"export it first: {shell_command('export', '--model', d, '--target', 'onnx,tflite')} (a float "
            f"{kind} checkpoint; the C target is int8 only: {shell_command('quantize', '--model', d)} first, then "
            "export that run)")


def checkpoint_kind(d: str | os.PathLike) -> str | None:
    """The kind of run folder `d`'s model.pt (`core.checkpoint.KINDS`: student_int8, teacher_task, ...); None when it
    cannot be read (missing, unfinished, not a checkpoint)."""
    return _checkpoint_head(d)[0]


def _checkpoint_head(d: str | os.PathLike) -> tuple[str | None, dict | None]:
    """(kind, model_cfg) of run folder `d`'s model.pt; (None, None) when it cannot be read."""
    from sqtool.core.checkpoint import load_checkpoint    # core.checkpoint reads this module: imported here
    try:
        ck = load_checkpoint(d)
    except SqtoolError:
        return None, None
    mc = ck.get("model_cfg")
    return str(ck["kind"]), (mc if isinstance(mc, dict) else None)


def check_run_name(name: str) -> str:
    """A run name is one safe path component: letters, digits, _ . + = -, not starting with . or -."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise SqtoolError(f"run name {name!r} is not one plain path component (use letters, digits, "
                          "_ . + = -; no '/', no leading '.' or '-', at most 100 characters)")
    return name


def lock_run_dir(d: str | os.PathLike) -> Path:
    """Take an exclusive flock on `d/.lock`, held until this process exits (or release_run_dirs(), which removes the
    file: a finished folder, an export shipped to a customer, holds no .lock). A second process writing into the same
    directory is refused with one line. The lock taken is the file now at `d/.lock` (a releasing writer may have
    removed the one opened: then again), so two processes never both hold `d`."""
    d = Path(d)
    key = str(d.resolve())
    if key in _LOCKS:                                   # this process already holds it
        return d
    lock = d / ".lock"
    earlier = lock.exists() or (d / "config.yaml").exists()     # a run wrote here: killed (its .lock) or finished
    for _ in range(100):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SqtoolError(f"output directory {d} is in use by another sqtool run (locked: {lock})")
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)                                    # a file its releaser removed: take the new one
    else:
        raise SqtoolError(f"output directory {d}: could not take its lock ({lock} keeps being replaced)")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _LOCKS[key] = fd
    if earlier:
        remove_dead_temps(d)
    return d


def _is_temp(name: str) -> bool:
    """A temp file of an atomic write: `.NAME.tmp`, `.NAME.RANDOM.tmp`, `.NAME.tmp.EXT`, `.NAME.RANDOM.tmp.EXT`."""
    return name.startswith(".") and name != ".lock" and (name.endswith(".tmp") or ".tmp." in name)


def remove_dead_temps(d: str | os.PathLike) -> None:
    """Remove the temp files (`_is_temp`) in run folder `d` and its subfolders, left by writers that were killed:
    lock_run_dir calls it when it takes over a folder whose earlier run's .lock is free (every sqtool writer holds
    its folder's lock, so that run is gone), so a --force or --resume run does not keep them (a zipped export
    would ship them). A subfolder holding its own .lock is another run's folder and is left to it."""
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if not os.path.exists(os.path.join(root, x, ".lock"))]
        for name in filter(_is_temp, files):
            try:
                os.unlink(os.path.join(root, name))
            except OSError:                             # gone already, or a read-only folder: the run will say
                pass


def held_run_dirs() -> set[str]:
    """The run directories (resolved paths) whose lock this process holds."""
    return set(_LOCKS)


def releases_run_dirs(fn):
    """Decorator of a library entry that makes a run folder (export, predict, bench, data pairs, quantize): the
    folder locks it takes are released when it returns or raises, as the CLI releases a command's (a notebook
    calling it keeps no folder locked for the rest of the kernel); locks held before the call (an enclosing
    command's, the demo's) stay held."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        held = held_run_dirs()
        try:
            return fn(*args, **kwargs)
        finally:
            release_run_dirs(keep=held)
    return wrapper


def release_run_dirs(keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Release the run-dir locks this process holds, except those in `keep` (the CLI calls it when a
    command ends, keeping those held before the command began)."""
    for key in [k for k in _LOCKS if k not in keep]:
        fd = _LOCKS.pop(key)
        try:
            os.unlink(os.path.join(key, ".lock"))       # while held: a process that opened it retries (lock_run_dir)
        except OSError:                                 # gone, or a read-only folder: the flock is released below
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def check_out_dir(command: str, out: str | os.PathLike, force: bool = False) -> Path:
    """`--out` refused (one line) when it is a file, when it cannot be made or written (a file on its path, a
    read-only file system, no permission: that OSError), when another process's run is writing there now (its .lock is
    held), when it holds another command's run (its config.yaml names the command, `run_command`), with or without
    --force, so an export never lands beside a training run's checkpoints, or when it is a non-empty folder without
    --force, saying whether it holds a finished run of `command` or an unfinished one, naming the --resume command
    when it can be continued; nothing is created. --force writes into an earlier run of the same command (or a
    folder that is no sqtool run): that run's files are kept unless this run rewrites them (a few a command
    rewrites by clearing first, e.g. export's manifest.json). Commands that read data first call it before
    reading, so a taken or unwritable folder costs no front-end time; make_run_dir calls it again."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise SqtoolError(f"output directory {d} is a file, not a directory")
    _check_writable(d)
    other = run_command(d) if d.is_dir() else None
    mine = _command_text(command)
    if d.is_dir() and _locked_by_another(d):                       # first: a run is writing there now
        raise SqtoolError(f"output directory {d} is in use by another sqtool run (locked: {d / '.lock'})")
    if other is not None and other != command:                      # the final answer, whatever --force
        theirs = _command_text(other)
        raise SqtoolError(f"output directory {d} holds {'an' if theirs[0] in 'aeiou' else 'a'} {theirs} run: --force writes over an earlier "
                          f"{mine} run only, never another command's files; choose another --out")
    if d.exists() and any(p.name != ".lock" for p in d.iterdir()) and not force:
        if other == command and _finished(d, command):
            raise SqtoolError(f"output directory {d} holds a finished {mine} run: choose another --out, or use --force "
                              "to write a new run into it")
        hint = resume_command(d, command)
        if hint:
            raise SqtoolError(f"output directory {d} holds a {mine} run already: continue it with `{hint}`, or use "
                              "--force to write over it")
        what = f"an unfinished {mine} run" if other == command else "no sqtool run"
        raise SqtoolError(f"output directory {d} exists and is not empty (it holds {what}; use --force to write "
                          "into it)")
    return d


def check_required(command: str, cfg) -> None:
    """The first field of dataclass config `cfg` marked "required" (core.config metadata) left empty: a usage error
    (exit 2), one line `export: --model RUN is required (HELP) (see sqtool export --help)`. The command calls it
    once its --config file and flags are read (a file may give a required value), before it reads anything."""
    from sqtool.core.config import flag_of
    for f in dataclasses.fields(cfg):
        if f.metadata.get("required") and getattr(cfg, f.name) in (None, "", [], ()):
            what = f"{flag_of(type(cfg), f.name)} {f.metadata.get('metavar', f.name.upper())}"
            raise SqtoolError(f"{command}: {what} is required ({f.metadata.get('help', '')}) "
                              f"(see sqtool {command} --help)", code=2)


def _check_writable(d: Path) -> None:
    """The OSError that making or writing run folder `d` would raise, raised now (nothing is created): a file on
    its path (ENOTDIR), a read-only file system (EROFS) or no permission (EACCES) on the nearest existing folder."""
    p = d
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(d))
    if not os.access(p, os.W_OK | os.X_OK):
        code = errno.EROFS if os.statvfs(p).f_flag & os.ST_RDONLY else errno.EACCES
        raise OSError(code, os.strerror(code), str(d))


def _finished(d: Path, command: str, stopped: bool = False) -> bool:
    """Whether the `command` run in `d` ended: the file it writes last (RESULT) is there and, for a metrics.json,
    its `status` (train pretrain: "stopped (max_steps)" can go on with --resume) is "done" where it has one and it
    names no `failed_step` (a failed demo). stopped=True: a "stopped (...)" status counts too (a pretrain stopped
    at its --max-steps or by a SIGTERM wrote its model.pt with that metrics.json: a fine-tune may start from it)."""
    result = next((d / n for n in RESULT.get(command, ("metrics.json",)) if (d / n).is_file()), None)
    if result is None:
        return False
    if result.name != "metrics.json":
        return True
    try:
        m = json.loads(result.read_text())
    except (OSError, ValueError):
        return True                                 # there, unreadable: not a run to continue
    if not isinstance(m, dict):
        return True
    status = str(m.get("status", "done"))
    return (status == "done" or stopped and status.startswith("stopped")) and "failed_step" not in m


def _locked_by_another(d: Path) -> bool:
    """Whether another process holds `d`'s .lock now (a run writing there); nothing is created or kept."""
    if str(d.resolve()) in _LOCKS:
        return False                                # ours (an enclosing command, the demo)
    try:
        fd = os.open(d / ".lock", os.O_RDONLY)
    except OSError:                                 # no .lock: no run ever wrote there
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


FORCE_HELP = ("write into a non-empty --out that holds an earlier run of this command or no sqtool run (files of the "
              "earlier run are kept unless this run rewrites them; a folder of another command's run is refused)")


def _command_text(command: str) -> str:
    """make_run_dir's command as the user types it: "train/pretrain" -> "train pretrain", "data_pairs" ->
    "data pairs"."""
    return command.replace("/", " ").replace("_", " ")


def make_run_dir(command: str, name: str, out: str | os.PathLike | None = None,
                 force: bool = False, root: str | os.PathLike = "runs", clear_result: bool = True) -> Path:
    """runs/<command>/<timestamp>-<name>/ unless `out` is given (refused if non-empty without force).
    `name` must be one safe path component. The directory is locked (see lock_run_dir). An --out --force'd over an
    earlier run of `command` loses that run's result file (`unfinish`), so it reads as this run, unfinished, until
    this one writes its own; clear_result=False: the command reads it first and removes it itself (export, predict)."""
    check_run_name(name)
    if out:
        d = check_out_dir(command, out, force)
        if force and clear_result:
            unfinish(d, command)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        d = Path(root) / command / f"{stamp}-{name}"
        i = 1
        while d.exists():
            d = Path(root) / command / f"{stamp}-{name}-{i}"
            i += 1
    created = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    lock_run_dir(d)
    _MADE.append((d, created))
    note_run(d, command)
    return d


def run_dirs_made() -> int:
    """How many run dirs make_run_dir has handed out in this process (a mark for discard_empty_runs)."""
    return len(_MADE)


def discard_empty_runs(since: int = 0) -> None:
    """After a failed command: run dirs made since `since` that hold nothing but config.yaml (and .lock)
    lose both, and the dir itself when make_run_dir created it, so a retry needs no --force. A dir with
    any other output (e.g. pretrain's last.pt, to resume from) is left as it is."""
    for d, created in _MADE[since:]:
        try:
            names = {p.name for p in d.iterdir()}
        except OSError:
            continue
        if not names <= {"config.yaml", ".lock"}:
            continue
        for n in names:
            (d / n).unlink(missing_ok=True)
        if created:
            try:
                d.rmdir()
            except OSError:
                pass


def save_config(run_dir: str | os.PathLike, cfg, resumed: bool = False, **extra) -> dict:
    """Write the resolved config (+ provenance) as config.yaml; returns what was written.

    `command:` names the command (make_run_dir's, unless `extra` gives it) and `resolved:` starts with the
    run folder and every path field as absolute paths (`save_resolved` adds what the run resolves later).
    resumed=True (a `--resume` that may change e.g. max_steps): `created` and `resolved:` are kept and the
    time is added to `resumed:`, so config.yaml always says what the run's last part ran with."""
    import yaml                             # lazy: importing sqtool.core needs only the stdlib
    from sqtool.core.config import absolute_path, path_fields
    p = Path(run_dir) / "config.yaml"
    now = created_stamp()
    before = saved_yaml(Path(run_dir)) if resumed else {}
    command = next((c for d, c in reversed(_NOTED) if _same_dir(d, run_dir)), None) or before.get("command")
    d = {"sqtool_version": __version__, "git_sha": git_sha(), "created": before.get("created", now)}
    if command:
        d["command"] = command
    if resumed:
        d["resumed"] = list(before.get("resumed") or []) + [now]
    d.update(extra)
    d["config"] = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    resolved = {"run_dir": str(Path(run_dir).resolve())}
    if dataclasses.is_dataclass(cfg):
        resolved.update({k: absolute_path(getattr(cfg, k)) for k in path_fields(type(cfg))})
    d["resolved"] = json.loads(json.dumps({**(before.get("resolved") or {}), **resolved}, default=str))
    atomic_write_text(p, yaml.safe_dump(d, sort_keys=False))
    return d


def _same_dir(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def save_resolved(run_dir: str | os.PathLike, drop: tuple[str, ...] = (), **values) -> dict:
    """Add what the run resolved its automatic options to (`fs: 0.0` -> the model's rate, `model: ''` -> the
    checkpoint's model, `data_root: ''` -> the folder read, ...) as the `resolved:` section of its config.yaml.
    `config:` keeps what was asked (what `--resume` re-reads); `resolved:` is what was used. `drop`: keys an earlier
    part of the run resolved that this part has not (a torchrun run's `launcher`, resumed in one process)."""
    import yaml
    p = Path(run_dir) / "config.yaml"
    d = (yaml.safe_load(p.read_text()) or {}) if p.is_file() else {}
    res = d.setdefault("resolved", {})
    for k in drop:
        res.pop(k, None)
    res.update(json.loads(json.dumps(values, default=str)))
    atomic_write_text(p, yaml.safe_dump(d, sort_keys=False))
    return d


def saved_config(cls, run_dir, what: str):
    """The resolved config a run saved in its config.yaml, as dataclass `cls` (for `--resume RUN`); a
    missing or foreign config.yaml is one error naming the run."""
    import yaml

    from sqtool.core.config import from_dict
    run_dir = Path(run_dir)
    p = run_dir / "config.yaml"
    if not p.is_file():
        raise SqtoolError(f"cannot resume: {p} not found (not a {what} run directory)")
    other = run_command(run_dir)
    if other is not None and _command_text(other) not in (what, f"train {what}"):      # another command's run
        hint = resume_command(run_dir, other)
        raise SqtoolError(f"cannot resume {run_dir} here: it is a `sqtool {_command_text(other)}` run"
                          + (f"; continue it with `{hint}`" if hint else ""))
    try:
        saved = (yaml.safe_load(p.read_text()) or {}).get("config") or {}
        return from_dict(cls, saved, where=f"{p}")
    except (OSError, UnicodeDecodeError) as e:                   # not text (a binary file, damaged), unreadable
        raise SqtoolError(f"cannot resume {run_dir}: its config.yaml cannot be read ({type(e).__name__})")
    except (yaml.YAMLError, AttributeError, SqtoolError) as e:
        raise SqtoolError(f"cannot resume {run_dir}: its config.yaml is not a {what} config "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})")
