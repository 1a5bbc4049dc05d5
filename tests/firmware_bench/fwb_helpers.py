"""Helpers shared by the firmware_bench tests (imported as a module; fixtures live in conftest.py)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_C = FIXTURES / "tiny_model"
CROSS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm", "gcc")


def need_tools(*tools: str) -> None:
    """Skip when a tool is missing on a developer machine; under CI (CI=true) that is a failure."""
    missing = [t for t in tools if shutil.which(t) is None]
    if "arm-none-eabi-gcc" in tools and not missing:
        from sqtool.firmware_bench.mcu import picolibc_specs
        if picolibc_specs() is None:
            missing.append("picolibc")
    if missing:
        msg = (f"missing {', '.join(missing)} (Debian: gcc-arm-none-eabi picolibc-arm-none-eabi "
               "qemu-system-arm valgrind)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " -- required under CI")
        pytest.skip(msg)


def rng_windows(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, size)).astype(np.int8)


def write_wrist_npz(path, seconds: float = 40.0, fs: float = 125.0, hr_bpm: float = 90.0, acc: bool = True,
                    seed: int = 0, ppg2: bool = False):
    """A label-free wrist recording (NPZ: ppg [+ ppg2] [+ acc_x, acc_y, acc_z], fs): a pulse with a harmonic, arm
    motion; ppg2 = a second PPG sensor (the pulse at a third of the gain, its own noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    ph = 2 * np.pi * hr_bpm / 60 * t
    d = {"ppg": 100 * np.sin(ph) + 30 * np.sin(2 * ph + 0.5) + 20 * np.sin(2 * np.pi * 1.3 * t)
         + 5 * rng.standard_normal(t.size), "fs": np.float64(fs)}
    if ppg2:
        d["ppg2"] = 0.33 * d["ppg"] + 8 * np.sin(2 * np.pi * 1.3 * t + 0.4) + 4 * rng.standard_normal(t.size)
    if acc:
        for k, ax in enumerate(("acc_x", "acc_y", "acc_z")):
            d[ax] = 0.2 * np.sin(2 * np.pi * 1.3 * t + k) + (k == 2) + 0.01 * rng.standard_normal(t.size)
    np.savez(path, **d)
    return Path(path)


def run_readme_example(root: Path, heading: str, end: str, marker: str, columns: dict, export: Path,
                       link: str) -> tuple[int, list[str], list[dict]]:
    """A README section's example block (`<!-- marker -->` before it), run as written in `root` holding the
    own-data example's CSV (my_watch/recordings/s01_walk.csv: `columns` -> (N,) arrays at 125 Hz, time first) and
    runs/<link> (-> `export`); then `sqtool predict` on that CSV. Returns (the section's lines, from `heading` up to
    `end`; what the block printed; predict's CSV rows). The working directory is root meanwhile."""
    import contextlib
    import csv
    import io
    import re

    from sqtool.cli import main
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index(heading):readme.index(end)]
    block = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", section, re.S).group(1)
    csv_path = root / "my_watch" / "recordings" / "s01_walk.csv"
    csv_path.parent.mkdir(parents=True)
    np.savetxt(csv_path, np.column_stack(list(columns.values())), delimiter=",", header=",".join(columns),
               comments="", fmt="%.9g")
    (root / "runs").mkdir()
    (root / "runs" / link).symlink_to(export)
    cwd, out = os.getcwd(), io.StringIO()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"README.md ({heading[3:]})", "exec"), {})
        assert main(["predict", "--model", f"runs/{link}", "--data", str(csv_path), "--out", "pred"]) == 0
    finally:
        os.chdir(cwd)
    with open(root / "pred" / "s01_walk.csv") as f:
        rows = list(csv.DictReader(f))
    return len(section.strip().splitlines()), out.getvalue().splitlines(), rows


def chunked(n: int, sizes) -> list[tuple[int, int]]:
    """(start, end) of n samples cut in chunks of sizes[0], sizes[1], ... (cycled)."""
    out, i, k = [], 0, 0
    while i < n:
        j = min(i + int(sizes[k % len(sizes)]), n)
        out.append((i, j))
        i, k = j, k + 1
    return out


def assert_streams_as_predict(model, ppg, acc, fs: float, sizes_each) -> None:
    """`model.stream(fs)` fed ppg (and acc) in chunks of each `sizes_each` entry, then finish(): the rows of every push
    and the finish, concatenated, equal `model.predict` on the whole recording, bit for bit (t_end_s, every column,
    in its order)."""
    want = model.predict(ppg, acc, fs=fs)
    assert len(want) > 0
    for sizes in sizes_each:
        with model.stream(fs) as s:
            rows = [s.push(ppg[a:b], None if acc is None else acc[a:b]) for a, b in chunked(len(ppg), sizes)]
            rows.append(s.finish())
        assert all(list(r.columns) == list(want.columns) for r in rows), sizes[:3]
        assert np.array_equal(np.concatenate([r.t_end_s for r in rows]), want.t_end_s), sizes[:3]
        for c in want.columns:
            assert np.array_equal(np.concatenate([r[c] for r in rows]), want[c], equal_nan=True), (c, sizes[:3])
        assert {r.runtime for r in rows} == {want.runtime}
