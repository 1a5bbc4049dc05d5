"""`sqtool data download NAME --to DIR`: fetch a public PPG dataset from its original location.

Every file is named by its path in the dataset's reference layout (the one ../shared/data uses and the
readers expect) and pinned by SHA-256: package data `download_sums/<name>.json` (copied from the data
folders' SHA256SUMS files; regenerate with `python -m sqtool.data.download --regen-sums DATA_ROOT`), read
through `load_sums(name)`. Sources, in order of use:

    --mirror DIR      a local copy (DIR/NAME/... or DIR/...): copied, hash-checked
    --base-url URL    an HTTP mirror of the reference layout: URL/NAME/<path>
    (default)         the original location (PhysioNet, the datasets' GitHub releases at a pinned commit;
                      where that repository's folders differ from the reference layout, `Source.folders` maps
                      them: wrist_exercise's edf/ and beats/ are Assignment1/edf/ and Assignment3/ECG/ there)

Downloads are resumable: bytes go to `<file>.part`, an interrupted transfer (dropped connection, reset,
timeout) resumes with an HTTP Range request, a bounded number of times; the file is renamed into place
only when its SHA-256 matches, so a corrupt or partial file is never left under its real name. A host
that cannot be reached at all is one clear line ("offline?"). Files already present with the right hash
are skipped, so re-running after a failure continues where it stopped.

BIDMC is stored gzip-compressed in the reference layout (Signals.csv.gz); from PhysioNet the original
Signals.csv is fetched instead, checked against PhysioNet's own SHA-256 and kept as .csv (the reader
reads both).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException, IncompleteRead
from importlib import resources
from pathlib import Path

from sqtool import __version__
from sqtool.core import SqtoolError, sha256_file

CHUNK = 1 << 16


@dataclass(frozen=True)
class Source:
    url: str           # format string with {path}
    license: str
    cite: str
    note: str = ""
    folders: tuple[tuple[str, str], ...] = ()    # (reference folder, its folder at the source) where they differ

    def source_path(self, rel: str) -> str:
        """A reference-layout path as the source names it (its first matching folder renamed)."""
        for ref, src in self.folders:
            if rel.startswith(ref + "/"):
                return src + rel[len(ref):]
        return rel


_GH = "https://raw.githubusercontent.com/{repo}/{commit}/{prefix}{{path}}"
REGISTRY: dict[str, Source] = {
    "troika": Source(
        _GH.format(repo="mintisan/hr_estimate", commit="2c2c9a905b1b656e755e471c2e05b401dc48690b",
                   prefix="datasets/"),
        "academic use with citation (no open license)",
        "Zhang, Pi, Liu, IEEE TBME 62(2):522-531, 2015, doi:10.1109/TBME.2014.2359372",
        "mirror of the SP Cup 2015 site (zhilinzhang.com/spcup2015), which is no longer online"),
    "bidmc": Source(
        "https://physionet.org/files/bidmc/1.0.0/{path}",
        "ODC-By 1.0 (PhysioNet open access)",
        "Pimentel et al., IEEE TBME 64(8):1914-1923, 2017; PhysioNet doi:10.13026/C2208R"),
    "ppg_bp": Source(
        _GH.format(repo="anand-bachker/MLA-PPG", commit="fa15d75f80c9ad61a59e918e31497bf25dfb58a6", prefix=""),
        "CC BY 4.0 (figshare record)",
        "Liang et al., Scientific Data 5:180020, 2018; figshare doi:10.6084/m9.figshare.5459299",
        "original: https://figshare.com/articles/dataset/5459299 (a zip; folder 0_subject/ = PPGBPDatabase/)"),
    "ppg_arrhythmia": Source(
        _GH.format(repo="zdzdliu/PPGArrhythmiaDetection", commit="ab635cb4bdb604c8e99e8481f63b4d093f56f5a8",
                   prefix=""),
        "none stated (research use with citation)",
        "Liu et al., J Am Heart Assoc 11(7):e023555, 2022, doi:10.1161/JAHA.121.023555",
        "12-patient subset of valid_testDataset/"),
    "but_ppg": Source(
        _GH.format(repo="kimchi2025/BioSignal-BUTPPG-Evaluation", commit="9dded0e4ca1fe53fbcafcf595b800cfdae251e83",
                   prefix=""),
        "CC BY 4.0 (PhysioNet BUT PPG)",
        "Nemcova et al., BioMed Res Int 2021:3453007; PhysioNet doi:10.13026/tn53-8153",
        "51-record export of https://physionet.org/content/butppg/ (full WFDB set: 3888 records)"),
    "mw_ppg": Source(
        _GH.format(repo="vladBaciu/TSL-MW-PPG", commit="9375bca70e92e36a8dd075fcd3dfd7fa662ad52b", prefix=""),
        "GPL-3.0 repository; data terms of the CardioWorks team unknown (research use with citation)",
        "Baciu et al., Sensors 23(15):6947, 2023"),
    "wrist_exercise": Source(
        _GH.format(repo="shishakohle/BSP", commit="a2f990043f96f25df7bb69eeee76ef07d628e577", prefix=""),
        "ODC-By 1.0 as far as known (PhysioNet open access; not re-checked)",
        "Jarchi, Casson, Data 2(1):1, 2017, doi:10.3390/data2010001; PhysioNet 'Wrist PPG During Exercise'",
        "13 recordings of s2-s6 (s1's EDFs are not in that repository; s8, s9 kept back as an independent set)",
        folders=(("edf", "Assignment1/edf"), ("beats", "Assignment3/ECG"))),
}


SUMS_DIR = "download_sums"                 # package data under sqtool/data: one <name>.json per dataset
_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_sums(name: str) -> tuple[dict[str, list], dict[str, list]]:
    """(files, originals) of dataset `name` from package data `download_sums/<name>.json`.

    files:     {path in the reference layout: [sha256, bytes]}
    originals: {reference path: [path at the original source, its sha256, bytes]} where the two differ.
    Every sha256 is checked to be 64 lower-case hex digits and every size a non-negative int.
    """
    if name not in REGISTRY:
        raise SqtoolError(f"unknown dataset '{name}' (downloadable: {', '.join(REGISTRY)})")
    res = resources.files("sqtool.data").joinpath(SUMS_DIR, f"{name}.json")
    try:
        doc = json.loads(res.read_text(encoding="utf-8"))
        files, originals = doc["files"], doc.get("originals", {})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SqtoolError(f"sqtool/data/{SUMS_DIR}/{name}.json: unreadable checksum table ({e})")
    rows = [(rel, v[0], v[1]) for rel, v in files.items()] + [(rel, v[1], v[2]) for rel, v in originals.items()]
    for rel, sha, size in rows:
        if not (isinstance(sha, str) and _SHA256.fullmatch(sha) and isinstance(size, int) and size >= 0):
            raise SqtoolError(f"sqtool/data/{SUMS_DIR}/{name}.json: bad entry for {rel} ({sha!r}, {size!r})")
    return files, originals


def dump_sums(files: dict[str, list], originals: dict[str, list]) -> str:
    """The JSON text of one dataset's table: sorted, one file per line (diff-friendly)."""
    def block(table: dict) -> str:
        rows = [f"  {json.dumps(rel)}: {json.dumps(v)}" for rel, v in sorted(table.items())]
        return "{\n" + ",\n".join(rows) + "\n }" if rows else "{}"
    return '{\n "files": ' + block(files) + ',\n "originals": ' + block(originals) + "\n}\n"


def list_datasets() -> list[str]:
    return list(REGISTRY)


# ----------------------------------------------------------------------------- one file

def _offline(url: str, reason) -> SqtoolError:
    host = urllib.parse.urlsplit(url).netloc
    return SqtoolError(f"cannot reach {host} ({reason}); offline? use --mirror DIR to install from a local copy")


def _raise_if_disk_full(e: BaseException, path: Path) -> None:
    """ENOSPC / EDQUOT while writing `path`: one line, never retried as a network error."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        raise SqtoolError(f"disk full while writing {path}; free space and re-run to resume") from None


def fetch(url: str, dest: Path, sha256: str, size: int | None = None, retries: int = 5,
          timeout: float = 30.0, log=None) -> Path:
    """Download `url` to `dest` through `dest.part`, resuming with HTTP Range, renaming only on a hash match."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_err = "no attempt"
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:                  # garbage from another version: restart
            part.unlink()
            have = 0
        if size is not None and have == size:
            break
        headers = {"User-Agent": f"sqtool/{__version__}"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
                status = getattr(r, "status", 200)
                if have and status != 206:                     # server ignored the Range: start over
                    have = 0
                expect = r.headers.get("Content-Length")
                got = 0
                with open(part, "ab" if have else "wb") as f:
                    while True:
                        block = r.read(CHUNK)
                        if not block:
                            break
                        f.write(block)
                        got += len(block)
                if expect is not None and got < int(expect):
                    raise IncompleteRead(b"", int(expect) - got)
            break
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:                         # nothing left to send: verify what we have
                break
            if e.code in (401, 403, 404, 410):
                raise SqtoolError(f"{url}: HTTP {e.code} {e.reason}")
            last_err = f"HTTP {e.code}"
        except urllib.error.URLError as e:
            if not part.exists() or part.stat().st_size == 0:
                raise _offline(url, getattr(e, "reason", e))
            last_err = str(getattr(e, "reason", e))
        except (IncompleteRead, HTTPException, ConnectionError, TimeoutError, OSError) as e:
            _raise_if_disk_full(e, part)                       # not a network error: retrying cannot help
            last_err = f"{type(e).__name__}: {e}".strip()
        if log:
            log(f"  {dest.name}: transfer interrupted ({last_err}); resuming (attempt {attempt + 1}/{retries})")
        time.sleep(min(0.1 * 2 ** attempt, 2.0))
    else:
        raise SqtoolError(f"{url}: download failed after {retries} retries ({last_err}); "
                          f"re-run to resume from {part.name}")
    return _verify_and_place(part, dest, sha256, url)


def _verify_and_place(part: Path, dest: Path, sha256: str, what: str) -> Path:
    got = sha256_file(part)
    if got != sha256:
        part.unlink(missing_ok=True)
        raise SqtoolError(f"{what}: SHA-256 mismatch (expected {sha256[:12]}..., got {got[:12]}...); "
                          f"file discarded")
    os.replace(part, dest)
    return dest


def copy_verified(src: Path, dest: Path, sha256: str) -> Path:
    """Copy a mirror file through `dest.part` and rename it into place only if its hash matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        shutil.copyfile(src, part)
    except OSError as e:
        part.unlink(missing_ok=True)
        _raise_if_disk_full(e, part)
        raise SqtoolError(f"{src}: cannot copy ({e.strerror or e})")
    return _verify_and_place(part, dest, sha256, str(src))


# ----------------------------------------------------------------------------- a dataset

def download(name: str, to: str | os.PathLike, mirror: str | os.PathLike | None = None,
             base_url: str | None = None, retries: int = 5, timeout: float = 30.0,
             log=None) -> dict:
    """Install dataset `name` into `to/name/`; returns {"dir", "files", "fetched", "skipped", "bytes"}."""
    if name not in REGISTRY:
        raise SqtoolError(f"unknown dataset '{name}' (downloadable: {', '.join(REGISTRY)})")
    log = log or (lambda m: None)
    files, originals = load_sums(name)
    root = Path(to).expanduser() / name
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SqtoolError(f"cannot create {root}: {e.strerror or e}")
    mroot = None
    if mirror is not None:
        m = Path(mirror).expanduser()
        if not m.is_dir():
            raise SqtoolError(f"mirror {m} is not a folder")
        probe = next(iter(files))
        mroot = m / name if (m / name / probe).exists() or (m / name).is_dir() else m
    fetched = skipped = nbytes = 0
    for i, (rel, (sha, size)) in enumerate(sorted(files.items()), 1):
        dest = root / rel
        orig = originals.get(rel)                       # (original path, its sha256, its size) or None
        present = [(dest, sha)] + ([(root / orig[0], orig[1])] if orig else [])
        if any(d.is_file() and sha256_file(d) == s for d, s in present):
            skipped += 1
            continue
        if mroot is not None:
            src = mroot / rel
            if not src.is_file() and orig and (mroot / orig[0]).is_file():
                src, dest, sha = mroot / orig[0], root / orig[0], orig[1]
            if not src.is_file():
                raise SqtoolError(f"mirror {mroot}: file {rel} missing")
            copy_verified(src, dest, sha)
        elif base_url:
            url = base_url.rstrip("/") + f"/{name}/" + urllib.parse.quote(rel)
            fetch(url, dest, sha, size, retries=retries, timeout=timeout, log=log)
        else:
            if orig:                                    # the original layout differs: fetch the original
                rel, sha, size = orig
                dest = root / rel
            src_rel = REGISTRY[name].source_path(rel)
            url = REGISTRY[name].url.format(path=urllib.parse.quote(src_rel))
            fetch(url, dest, sha, size, retries=retries, timeout=timeout, log=log)
        fetched += 1
        nbytes += dest.stat().st_size
        log(f"[{i}/{len(files)}] {rel}")
    return {"dir": str(root), "files": len(files), "fetched": fetched, "skipped": skipped, "bytes": nbytes}


# ----------------------------------------------------------------------------- regenerate the sums table

def regen_sums(data_root: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Rebuild `download_sums/<name>.json` (into `out`, default the package folder) from
    DATA_ROOT/<name>/SHA256SUMS and BIDMC's PhysioNet SHA256SUMS.txt; returns the folder."""
    import gzip

    from sqtool.core import atomic_write_text

    data_root = Path(data_root)
    sums: dict = {}
    originals: dict = {name: {} for name in REGISTRY}
    for name in REGISTRY:
        f = data_root / name / "SHA256SUMS"
        if not f.is_file():
            raise SqtoolError(f"{f}: missing")
        table = {}
        for line in f.read_text().splitlines():
            if line.strip():
                sha, rel = line.split(maxsplit=1)
                rel = rel.lstrip("*").strip()
                table[rel] = [sha, (data_root / name / rel).stat().st_size]
        sums[name] = table
    phys = data_root / "bidmc" / "SHA256SUMS.txt"
    pn = dict(reversed(line.split(maxsplit=1)) for line in phys.read_text().splitlines() if line.strip())
    for rel in sums["bidmc"]:
        if rel.endswith(".csv.gz") and rel[:-3] in pn:
            with gzip.open(data_root / "bidmc" / rel, "rb") as g:
                n = sum(len(b) for b in iter(lambda: g.read(1 << 20), b""))
            originals["bidmc"][rel] = [rel[:-3], pn[rel[:-3]], n]
    out = Path(out) if out else Path(__file__).with_name(SUMS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in sums.items():
        atomic_write_text(out / f"{name}.json", dump_sums(table, originals[name]))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--regen-sums":
        print(regen_sums(sys.argv[2]))
    else:
        print("usage: python -m sqtool.data.download --regen-sums DATA_ROOT", file=sys.stderr)
        sys.exit(2)
