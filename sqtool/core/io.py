"""Atomic file writes and hashing: never a half-written artifact, files readable like any other.

`atomic_write_bytes(path, data)` writes `.<name>.<random>.tmp` next to `path`, fsyncs and renames it
over `path`; the file gets the mode a plain open() would (0666 minus the umask). A temp file orphaned
by a killed write (`.<name>.*.tmp`) is removed at the next write of the same file, and every temp file of a dead
run when the next run takes its folder (core.runs.remove_dead_temps). An OSError (disk
full, read-only folder, permission) is re-raised with its errno and `path` as its filename, so the
CLI can say which file could not be written."""
from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

# What reading an .npz (np.load, then z[key]) raises on a torn, empty, pickled or foreign file.
NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def created_stamp() -> str:
    """The time an artifact says it was made (ISO 8601, seconds): now, or the reproducible-builds convention's
    SOURCE_DATE_EPOCH (seconds since 1970, UTC) when set, so that a pipeline re-exporting the same checkpoint
    gets byte-identical metadata, ONNX, TFLite and C (a checkpoint saved under it is the same bytes too)."""
    import datetime as dt
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).replace(tzinfo=None).isoformat(
                timespec="seconds")
        except (ValueError, OverflowError, OSError):
            from sqtool.core.errors import SqtoolError
            raise SqtoolError(f"SOURCE_DATE_EPOCH={epoch!r}: must be whole seconds since 1970 (e.g. from "
                              "`git log -1 --format=%ct`)") from None
    return dt.datetime.now().isoformat(timespec="seconds")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def atomic_write_bytes(path: str | os.PathLike, data: bytes, many: bool = False) -> None:
    """Write to a temp file in the same directory, fsync, then rename: never a half-written file.
    The file gets the mode a plain open() would (0666 minus the umask), not mkstemp's 0600.
    many: one of many files a run writes into its own locked run folder (predict's CSV per recording): no fsync
    each (the caller syncs once, `sync_all`, before its last file) and no scan of the folder for this file's
    orphaned temp files (make_run_dir removed a killed run's when this run took the folder): per file, both cost
    more than the write (1,000 CSVs: 4 s of fsync; the scan lists the whole folder, quadratic in its files)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not many:
            for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):   # left by a killed write
                orphan.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if not many:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from e      # name the file, keep errno
        raise


def atomic_write_text(path, text: str, many: bool = False) -> None:
    atomic_write_bytes(path, text.encode(), many=many)


def sync_all() -> None:
    """Flush every file written with `atomic_write_bytes(..., many=True)` to disk at once (one os.sync), before the
    run's last file says they are there."""
    if hasattr(os, "sync"):
        os.sync()


def atomic_save_npz(path: str | os.PathLike, **arrays) -> None:
    """np.savez, atomically (the archive is built in memory, then atomic_write_bytes)."""
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> None:
    """fig.savefig, atomically (a matplotlib figure rendered in memory in the format of `path`'s suffix, then
    atomic_write_bytes): a kill mid-write leaves the previous plot or none, never a torn PNG."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


PARITY_WINDOWS = 2048   # parity.npz: training windows for export's parity checks (where a run holds none out)


def parity_sample(run_dir: str | os.PathLike, x, y, seed: int) -> Path:
    """run_dir/parity.npz: up to PARITY_WINDOWS training windows x (N, ...) with their truth y, seeded, in order; no
    subject ids (export copies it into the shipped folder): the windows `sqtool export` checks its artifacts on when
    the run wrote no heldout.npz (a final fit; a time-domain fine-tune, a float teacher exported as it is)."""
    import numpy as np
    pick = np.sort(np.random.default_rng(seed).choice(len(x), min(len(x), PARITY_WINDOWS), replace=False))
    path = Path(run_dir) / "parity.npz"
    atomic_save_npz(path, x=np.asarray(x, np.float32)[pick], y=np.asarray(y, np.float32)[pick])
    return path


def inside_folder(name) -> bool:
    """Whether a file name read from an index (a pairs index.json, an export manifest) stays inside the folder that
    holds the index: a non-empty relative path, not absolute (POSIX or Windows), no '..' part under either separator.
    Such files name their members this way; any other name (a crafted or damaged index) is refused before it is opened."""
    if not isinstance(name, str) or not name:
        return False
    p = PurePosixPath(name.replace("\\", "/"))
    return not (p.is_absolute() or Path(name).is_absolute() or PureWindowsPath(name).is_absolute() or ".." in p.parts)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_SHA_CACHE: dict[tuple, str] = {}


def file_version(path: str | os.PathLike) -> tuple:
    """(path, size, mtime, ctime, inode): what a per-process memo of a file's content is keyed by; any write to the
    file (which changes mtime/ctime) makes a new key."""
    p = Path(path).resolve()
    st = p.stat()
    return (str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def sha256_file_cached(path: str | os.PathLike) -> str:
    """sha256_file, memoised for this process by `file_version`: a file is hashed once per run however often it is
    checked; any write to it forces a re-hash."""
    key = file_version(path)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(key[0])
    return _SHA_CACHE[key]


def write_metrics(run_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> None:
    atomic_write_text(Path(run_dir) / name, dumps_json(metrics, indent=2) + "\n")


def finite_or_none(obj):
    """`obj` with every non-finite float (NaN, +-infinity: a Python float, a numpy floating scalar, an array's
    element) replaced by None, through dicts, lists, tuples and arrays (a tuple or an array comes back as a list,
    a numpy scalar as a Python one): what RFC 8259 JSON can hold (null), where Python's json writes the bare NaN /
    Infinity tokens that strict parsers (JavaScript's JSON.parse, Go, serde_json) reject."""
    np = sys.modules.get("numpy")                   # a numpy value exists only once numpy is imported

    def walk(o):
        if isinstance(o, float):                    # numpy's float64 is one too
            return o if math.isfinite(o) else None
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [walk(v) for v in o]
        if np is not None and isinstance(o, (np.generic, np.ndarray)):
            return walk(o.tolist())                 # Python scalars, nested lists
        return o
    return walk(obj)


def dumps_json(obj, **kw) -> str:
    """json.dumps of `obj` as valid JSON: non-finite floats as null (`finite_or_none`), numpy values, paths and
    dataclasses as `json_default` writes them (or kw's `default`); a value that would still be written as NaN or
    Infinity raises ValueError (allow_nan=False) instead of reaching the file."""
    kw.setdefault("default", json_default)
    return json.dumps(finite_or_none(obj), allow_nan=False, **kw)


def read_json(path: str | os.PathLike):
    """The JSON value in `path`, as sqtool writes it: a file written before non-finite values became null reads
    the same, its NaN / Infinity tokens as None. Raises OSError, UnicodeDecodeError or ValueError (json's
    JSONDecodeError) as json.loads does."""
    return json.loads(Path(path).read_text(), parse_constant=lambda _token: None)


def finite_number(v) -> bool:
    """A figure that was computed: not None (how sqtool's JSON holds a NaN or an infinity) nor NaN / infinite (as a
    run computes it), so that what a report says of it is the same read from the file or from the run."""
    return v is not None and math.isfinite(v)


def nan_if_none(v) -> float:
    """A number read back from sqtool's JSON as a float: None (how a NaN or an infinity is written) as NaN."""
    return float("nan") if v is None else float(v)


def json_default(o):
    """What json.dumps cannot write by itself, as JSON values (a non-finite float in them as None): numpy scalars
    and arrays, paths, dataclasses."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(o, (np.generic, np.ndarray)):
        return finite_or_none(o)
    if isinstance(o, Path):
        return str(o)
    import dataclasses
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return finite_or_none(dataclasses.asdict(o))
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_shared_lib(path):
    """ctypes.CDLL of a freshly built shared library, never a stale one: the dynamic loader returns the library
    already loaded under the same path name (it compares names, not files), so a rebuild at the same path (a
    second export into the same folder, two runs with the same relative --out in one process) would call the
    first build's code. The library is loaded from a private copy with a unique name, removed once mapped."""
    import ctypes
    import shutil
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix=Path(path).stem + "-", suffix=".so")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        return ctypes.CDLL(tmp)
    finally:
        os.unlink(tmp)


# ----------------------------------------------------------------------------- scratch folders
SCRATCH_LOCK = ".owner.lock"      # held (flock, exclusive) by the process a scratch folder belongs to, for its life
SCRATCH_MAKING = ".sqtool-making-"  # a scratch folder's name until its lock is held: never swept while being made
SCRATCH_STALE_S = 60.0            # a folder left in the making (killed between mkdtemp and rename) is swept after this


class ScratchDir:
    """A temporary folder under TMPDIR (`name`, `cleanup()`, a with-block, removed when garbage-collected: as
    tempfile.TemporaryDirectory), which a SIGKILL, an out-of-memory kill or a power cut cannot leave behind for
    long: its process holds an exclusive flock on the folder's `.owner.lock` for the folder's life (the kernel
    drops it however the process dies), and making a ScratchDir removes every `sqtool-*` sibling of this user
    whose lock can be taken, i.e. whose owner is gone (a bench's device samples of a whole corpus: hundreds of MB
    each time). A folder is made under a name no sweep reads and renamed once its lock is held. Without fcntl
    (Windows) it is a plain temporary folder and nothing is swept."""

    def __init__(self, prefix: str = "sqtool-"):
        import weakref
        if not prefix.startswith("sqtool-"):
            raise ValueError("ScratchDir: the prefix must start with 'sqtool-' (what the sweep reads)")
        try:
            import fcntl
        except ImportError:                                       # no flock: a plain temporary folder
            fcntl = None
        if fcntl is not None:
            sweep_scratch(fcntl)
        made = tempfile.mkdtemp(prefix=SCRATCH_MAKING + prefix)
        self._lock = None
        if fcntl is not None:
            self._lock = open(os.path.join(made, SCRATCH_LOCK), "w")
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX)
            final = os.path.join(os.path.dirname(made), os.path.basename(made)[len(SCRATCH_MAKING):])
            os.rename(made, final)
            made = final
        self.name = made
        self._finalizer = weakref.finalize(self, _remove_scratch, made, self._lock)

    def cleanup(self) -> None:
        self._finalizer()

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"ScratchDir({self.name!r})"


def _remove_scratch(path: str, lock) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)                       # the lock file goes with it, still held
    if lock is not None:
        lock.close()


def sweep_scratch(fcntl) -> list[str]:
    """Remove the scratch folders (`ScratchDir`) under TMPDIR whose owner is gone: this user's `sqtool-*` folders
    holding an `.owner.lock` nobody holds, and folders left in the making for over SCRATCH_STALE_S. A folder
    without the lock file (another tool's, an older sqtool's) is left alone. Returns the paths removed."""
    import shutil
    import time
    root, gone = tempfile.gettempdir(), []
    try:
        names = os.listdir(root)
    except OSError:
        return gone
    uid = os.getuid() if hasattr(os, "getuid") else None
    for n in names:
        making = n.startswith(SCRATCH_MAKING)
        if not (n.startswith("sqtool-") or making):
            continue
        p = os.path.join(root, n)
        try:
            st = os.lstat(p)
            if not os.path.isdir(p) or os.path.islink(p) or (uid is not None and st.st_uid != uid):
                continue
            if making:
                if time.time() - st.st_mtime > SCRATCH_STALE_S:
                    shutil.rmtree(p, ignore_errors=True)
                    gone.append(p)
                continue
            fd = os.open(os.path.join(p, SCRATCH_LOCK), os.O_RDONLY)
        except OSError:                                            # no lock file, or gone meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:                                            # held: its owner is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
        finally:
            os.close(fd)
    return gone
