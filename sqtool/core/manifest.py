"""The export manifest: what `sqtool export` produced and what it was made from, by path and sha256.

`manifest.json` sits in the export folder and is the only way a reader (`sqtool bench`, `sqtool predict`)
finds an export's artifacts and the checkpoints it came from:

    {"format": "sqtool-export-manifest/1", "model": "cnn1d_student_xs", "sqtool_version", "created",
     "parity": {"passed": true, "failed": [], "report": "export_report.json"},
     "files": [{"path": "c/sq_model.c", "kind": "c-source", "sha256": "...", "bytes": 12345}, ...],
     "sources": {"student_int8": {"file": "model.pt", "sha256": "...", "bytes": 123},
                 "student_float": {...}, "teacher": {...}}}          # teacher only when known

Paths are POSIX and relative to the folder holding manifest.json, so an export is read the same from any working
directory. `files` lists every file the export wrote (manifest.json itself and the hidden `.lock` aside), each with
a kind (FILE_KINDS); the parity verdict is the export report's (`export_report.json`, itself listed with its
sha256). The export folder is what ships, so no path in it leaves the folder: a source checkpoint outside it is
named by its file name, sha256 and size only (one inside it by its relative `path`). `Manifest.source` finds it
in-house beside the export (SOURCE_PLACES, nearest first: the folder above the export, its sub-folders, the run
folders two levels up, e.g. runs/quantize/<run>/model.pt beside runs/export/<run>/) as the file of that name whose
sha256 is the recorded one; a manifest written before this (a `path` climbing out with ..) is read as it says.

    write_manifest(out_dir, model=..., sources={"student_int8": path, ...}, failed=[...])
    m = read_manifest(export_dir)      # refuses a folder without manifest.json, one line
    m.file("c/sq_model.c")             # absolute path, sha256 checked (a mismatch: one line naming the file)
    m.source("student_float")          # the same for a source checkpoint; None when not recorded
    m.require_parity()                 # "export X did not pass parity; ..." unless it passed
    m.check_unchanged()                # every listed file that is there, sha256 checked (TamperedArtifact)
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqtool.core.errors import SqtoolError
from sqtool.core.io import (atomic_write_text, created_stamp, dumps_json, inside_folder, sha256_file,
                            sha256_file_cached)
from sqtool.core.runs import unfinished_run

MANIFEST = "manifest.json"
FORMAT = "sqtool-export-manifest/1"
FILE_KINDS = ("onnx", "tflite", "c-source", "kit", "test-vectors", "report", "metadata")
SOURCE_KEYS = ("student_int8", "student_float", "teacher")
# where Manifest.source looks for a source checkpoint recorded by name, relative to the export folder, nearest first
SOURCE_PLACES = ("..", "../*", "../../*/*")
PARITY_REPORT = "export_report.json"
# a failed export's files and their sha256 (record_unfinished), for the --force re-run that clears them; hidden
UNFINISHED = ".unfinished_export.json"
_BEGUN: dict[Path, dict[str, tuple]] = {}          # export folders begun and not yet manifested (begin_export)


def file_kind(rel: str) -> str:
    """The kind of an export file from its path relative to the export folder."""
    p = PurePosixPath(rel)
    if p.suffix == ".onnx":
        return "onnx"
    if p.suffix == ".tflite":
        return "tflite"
    if p.name.startswith("export_report.") or p.suffix == ".FAILED":
        return "report"
    if rel in ("metadata.json", "config.yaml"):
        return "metadata"
    if p.parts[0] == "c":
        return "c-source"
    if p.parts[0] == "test_vectors" or p.suffix == ".npz":
        return "test-vectors"
    return "kit"                                            # example/, Makefile, CMakeLists.txt, README, model card


def _walk(out: Path):
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not p.is_symlink() and rel != MANIFEST and \
                not any(part.startswith(".") for part in PurePosixPath(rel).parts):
            yield rel, p


def earlier_export(out_dir: str | os.PathLike) -> dict[str, str]:
    """{relative path: sha256} of the files a previous export in out_dir wrote: its manifest.json's, or, for an
    export that failed before writing one, its UNFINISHED record's: the files it listed when it failed, or, for one
    killed (SIGKILL, power loss: it listed none), every file written since it began (`begin_export`'s snapshot in
    the record), hashed now ({} without either: a folder of no export); what `remove_leftovers` may take away before
    a --force'd re-export writes anything."""
    for name in (MANIFEST, UNFINISHED):
        try:
            m = json.loads((Path(out_dir) / name).read_text())
            files = {str(f["path"]): str(f["sha256"]) for f in m.get("files", []) if isinstance(f, dict)}
            if name == UNFINISHED and isinstance(m.get("before"), dict):       # killed: what it wrote since it began
                before = {k: tuple(v) for k, v in m["before"].items()}
                files.update({rel: sha256_file(p) for rel, p in _written(Path(out_dir), before)
                              if rel != "config.yaml"})
            return files
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return {}


def remove_leftovers(out_dir: str | os.PathLike, earlier: dict[str, str]) -> tuple[list[str], list[str]]:
    """Before a re-export writes into a --force'd folder: remove the files the previous export wrote (`earlier`),
    each only while it is still byte for byte what that export wrote and inside the folder, so no build check of
    this export compiles an older one's C (the kit's Makefile takes c/*.c) and the folder holds one run; a file of
    the user's own (never in a manifest) or edited since is kept. Folders left empty go too. Returns the relative
    paths (removed, kept because edited), each sorted."""
    out = Path(out_dir).resolve()
    gone, kept = [], []
    for rel, sha in sorted(earlier.items()):
        p = (out / rel).resolve()
        if rel in (MANIFEST, UNFINISHED) or not p.is_relative_to(out) or not p.is_file() or p.is_symlink():
            continue
        if sha256_file(p) != sha:
            kept.append(rel)
            continue
        p.unlink()
        gone.append(rel)
        for d in p.parents:                                   # its folders, up to the export's, when empty
            if d == out or any(d.iterdir()):
                break
            d.rmdir()
    return gone, kept


def begin_export(out_dir: str | os.PathLike) -> dict[str, tuple]:
    """Before an export writes into out_dir: drop a previous export's manifest.json (an interrupted export
    then has none, so readers refuse it) and UNFINISHED record, and snapshot what is there, so the new manifest
    lists only the files this export writes (not a file of the user's own in a --force'd folder). Until
    write_manifest, `record_unfinished` can say what it wrote; the snapshot is also kept in UNFINISHED, so that
    after a kill that left no record (SIGKILL) a --force re-run finds what this export wrote (`earlier_export`)."""
    out = Path(out_dir)
    (out / MANIFEST).unlink(missing_ok=True)
    (out / UNFINISHED).unlink(missing_ok=True)
    snap = {}
    for rel, p in _walk(out):
        st = p.stat()
        snap[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
    atomic_write_text(out / UNFINISHED, dumps_json({"files": [], "before": snap}) + "\n")
    _BEGUN[out.resolve()] = snap
    return snap


def _written(out: Path, before: dict[str, tuple] | None):
    """(rel, path) of the files under out written or changed since `before` (begin_export's snapshot)."""
    for rel, p in _walk(out):
        st = p.stat()
        if not (before and before.get(rel) == (st.st_size, st.st_mtime_ns, st.st_ino)):
            yield rel, p


def record_unfinished() -> None:
    """After an export failed (raised) between begin_export and write_manifest: write UNFINISHED, the files it
    wrote with their sha256, so a --force re-run removes them as it removes a finished export's (without it, an
    older model's C would stay in c/ and be compiled by the next kit's Makefile). None when it wrote nothing but
    config.yaml (core.runs.discard_empty_runs then removes the folder's run)."""
    while _BEGUN:
        out, before = _BEGUN.popitem()
        try:
            files = [{"path": rel, "sha256": sha256_file(p)} for rel, p in _written(out, before)
                     if rel != "config.yaml"]
            if files:
                atomic_write_text(out / UNFINISHED, dumps_json({"files": files}, indent=2) + "\n")
            else:                                            # begin_export's record: no file to clear
                (out / UNFINISHED).unlink(missing_ok=True)
        except OSError:                                      # a full disk, a folder gone: nothing more to say
            pass


def write_manifest(out_dir: str | os.PathLike, *, model: str, sources: dict[str, str | os.PathLike | None],
                   failed: list[str], sqtool_version: str = "", before: dict[str, tuple] | None = None) -> dict:
    """Hash every file under out_dir (except those unchanged since `before` = begin_export's snapshot) and
    write manifest.json; `sources` maps SOURCE_KEYS to checkpoint paths (None or missing = not known)."""
    out = Path(out_dir)
    base = out.resolve()
    files = []
    for rel, p in _written(out, before):                     # not a file this export left as it was
        files.append({"path": rel, "kind": file_kind(rel), "sha256": sha256_file(p), "bytes": p.stat().st_size})
    src = {}
    for key in SOURCE_KEYS:
        v = sources.get(key)
        if v is None:
            continue
        p = Path(v).resolve()
        src[key] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        if p.is_relative_to(base):                           # inside the export: where it is
            src[key]["path"] = p.relative_to(base).as_posix()
        else:                                                # outside: its name only (no path leaves the folder)
            src[key]["file"] = p.name
    m = {"format": FORMAT, "model": model, "sqtool_version": sqtool_version,
         "created": created_stamp(),
         "parity": {"passed": not failed, "failed": list(failed), "report": PARITY_REPORT},
         "files": files, "sources": src}
    atomic_write_text(out / MANIFEST, dumps_json(m, indent=2) + "\n")
    (out / UNFINISHED).unlink(missing_ok=True)              # begin_export's record: the manifest says it all now
    _BEGUN.pop(base, None)
    return m


class TamperedArtifact(SqtoolError):
    """An export's file whose sha256 differs from its manifest: never a skipped runtime, always an error (a
    missing tool skips a runtime; a changed model file means what is measured is not what was exported).
    Readers check every exported file once when they load the export (`Manifest.check_unchanged`), a source
    checkpoint when they read it (`Manifest.source`)."""


class MissingArtifact(SqtoolError):
    """A file the manifest lists that is not there (e.g. a source checkpoint of an export folder copied without its
    run): what needs it cannot run, and a reader that can do without it may go on (unlike TamperedArtifact)."""


@dataclass
class Manifest:
    """A read manifest: `dir` the export folder, `data` the JSON."""
    dir: Path
    data: dict

    @property
    def path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def files(self) -> dict[str, dict]:
        return {f["path"]: f for f in self.data["files"]}

    @property
    def parity_passed(self) -> bool:
        return bool(self.data["parity"].get("passed"))

    def has(self, rel: str) -> bool:
        return rel in self.files

    def under(self, folder: str) -> list[str]:
        """Listed files inside `folder` (relative paths)."""
        pre = folder.rstrip("/") + "/"
        return [r for r in self.files if r.startswith(pre)]

    def _check(self, path: Path, want: str, what: str) -> Path:
        if not path.is_file():
            raise MissingArtifact(f"{path}: listed in {self.path} ({what}) but missing")
        if sha256_file_cached(path) != want:
            raise TamperedArtifact(f"{path}: sha256 differs from {self.path} (changed after export): refused")
        return path

    def file(self, rel: str) -> Path:
        """The absolute path of a produced file, its sha256 checked; one line when it is not listed."""
        f = self.files.get(rel)
        if f is None:
            raise SqtoolError(f"export {self.dir} has no {rel} (not in its {MANIFEST})")
        return self._check(self.dir / rel, f["sha256"], f.get("kind") or file_kind(rel))

    def folder(self, folder: str) -> Path:
        """A produced folder (e.g. "c") after checking the sha256 of every file listed inside it."""
        rels = self.under(folder)
        if not rels:
            raise SqtoolError(f"export {self.dir} has no {folder}/ files (not in its {MANIFEST})")
        for r in rels:
            self.file(r)
        return self.dir / folder

    def check_unchanged(self) -> None:
        """Every listed file that is there, its sha256 checked once: TamperedArtifact names the first that changed.
        A missing one is left to whoever needs it (`file`: one line; a runtime that needs it cannot run). The
        source checkpoints are not read here: `source` checks one when it is read (a teacher re-trained into its
        folder after the export changes no exported file)."""
        for rel, f in self.files.items():
            if (self.dir / rel).is_file():
                self._check(self.dir / rel, f["sha256"], f.get("kind") or file_kind(rel))

    def source(self, key: str) -> Path | None:
        """A source checkpoint (SOURCE_KEYS), its sha256 checked; None when the export does not record it. One
        recorded by name (`file`) is looked for in SOURCE_PLACES, in the nearest place holding a file of that name:
        the one whose sha256 (and size) is the recorded one; else TamperedArtifact when that file is the only one
        there (it changed since the export), MissingArtifact saying where it looked otherwise."""
        s = self.data["sources"].get(key)
        if s is None:
            return None
        if "path" in s:
            return self._check((self.dir / s["path"]).resolve(), s["sha256"], f"source {key}")
        for found in self._find(s["file"]):                  # the nearest place holding a file of that name
            for p in found:
                if ("bytes" not in s or p.stat().st_size == s["bytes"]) and sha256_file_cached(p) == s["sha256"]:
                    return p
            if len(found) == 1:                              # the one file of that name there: changed since
                return self._check(found[0], s["sha256"], f"source {key}")
            raise MissingArtifact(f"{self.path}: source {key} {s['file']} with sha256 {s['sha256'][:12]}... not "
                                  f"found beside the export ({len(found)} files of that name in "
                                  f"{found[0].parent.parent}/*/, none with that sha256); name it explicitly "
                                  f"(bench --{key.replace('_', '-')}); the export's own files need no checkpoint (--runtime onnx, "
                                  "tflite, tflm or c)")
        raise MissingArtifact(f"{self.path}: source {key} {s['file']} not found beside the export (looked in "
                              f"{', '.join(p + '/' for p in SOURCE_PLACES)}); name it explicitly "
                              f"(bench --{key.replace('_', '-')}); the export's own files need no checkpoint (--runtime onnx, "
                                  "tflite, tflm or c)")

    def _find(self, name: str) -> list[list[Path]]:
        """Per SOURCE_PLACES entry (nearest first) that holds any, the files called `name` there, outside the
        export folder."""
        out, inside = [], self.dir.resolve()
        for place in SOURCE_PLACES:
            here = [p.resolve() for p in sorted(self.dir.glob(f"{place}/{glob.escape(name)}"))]
            here = [p for p in dict.fromkeys(here) if p.is_file() and not p.is_relative_to(inside)]
            if here:
                out.append(here)
        return out

    def require_parity(self, allow_failed: bool = False, flag: str = "") -> None:
        """Refuse an export whose parity failed (or whose report changed) unless allow_failed."""
        rep = self.file(self.data["parity"].get("report") or PARITY_REPORT)
        try:
            failed = json.loads(rep.read_text()).get("failed")
        except (OSError, json.JSONDecodeError, AttributeError):
            failed = None
        ok = self.parity_passed and failed == []
        if not ok and not allow_failed:
            raise SqtoolError(f"export {self.dir} did not pass parity; re-export"
                              + (f" or pass {flag}" if flag else "") + f" (see {self.dir / 'export_report.md'})")


def read_manifest(path: str | os.PathLike) -> Manifest:
    """The manifest of an export folder (or of manifest.json itself); every problem is one SqtoolError line."""
    p = Path(path)
    if not p.exists():
        raise SqtoolError(f"export {p} does not exist")
    d = p.parent if p.is_file() and p.name == MANIFEST else p
    if not d.is_dir():
        raise SqtoolError(f"{p} is a file: pass an `sqtool export` folder (holding {MANIFEST})")
    mp = d / MANIFEST
    if not mp.is_file():
        if unfinished := unfinished_run(d, MANIFEST):                         # a killed export: say so
            raise SqtoolError(unfinished)
        hint = f" (a demo run? its export is {d / 'export'})" if (d / "export" / MANIFEST).is_file() else ""
        raise SqtoolError(f"{d} has no {MANIFEST}: not an `sqtool export` folder{hint}")
    try:
        data = json.loads(mp.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SqtoolError(f"{mp} is not valid JSON ({type(e).__name__})")
    ok = (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("files"), list)
          and isinstance(data.get("sources"), dict) and isinstance(data.get("parity"), dict))
    if ok:
        for f in data["files"]:
            rel = f.get("path") if isinstance(f, dict) else None
            if not inside_folder(rel) or not isinstance(f.get("sha256"), str):
                ok = False
        for s in data["sources"].values():
            ok = ok and isinstance(s, dict) and isinstance(s.get("path", s.get("file")), str) \
                and isinstance(s.get("sha256"), str) and ("path" in s or s["file"] not in ("", ".", "..")
                                                          and "/" not in s["file"] and "\\" not in s["file"])
    if not ok:
        raise SqtoolError(f"{mp} is not an sqtool export manifest ({FORMAT})")
    return Manifest(d, data)
