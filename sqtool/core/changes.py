"""What changed since a run started, in one phrase, for the refusals of `--resume`.

A resumable step keys what it saved (a fold file, a float student) by one sha256 of everything it depends on; a
key that differs on resume refuses the saved work. Beside the key it saves its inputs' record (`inputs_record`:
the config fields hashed, the checkpoints read, the dataset files' documents, the held-out subjects, one short
hash per recording of its windows, the split), and a refusal names what differs (`what_changed`): the config
key, the checkpoint rewritten, the dataset file and its key (`file_changes`, what `data pairs --resume` says too),
or the recording whose stream or label file was rewritten.

A dataset file's record (`data.dataset_file.file_record`) is its parsed document: a comment, a blank line or
another indentation is no change."""
from __future__ import annotations

import hashlib
import json

import numpy as np

SHORT = 16                  # hex digits of a recording's hash: enough to tell a change, short in every fold file


def keyed_fields(cfg, leave_out) -> dict:
    """A config's fields (`core.to_dict`) but `leave_out`: what a resume key hashes of it and its record keeps."""
    from sqtool.core import to_dict
    return {k: v for k, v in to_dict(cfg).items() if k not in leave_out}


def hash_arrays(h, arrays) -> None:
    """Feed `arrays` to hash `h`, each as its dtype, shape and bytes: what the resume keys hash of their data."""
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())


def arrays_sha(*arrays, n: int = SHORT) -> str:
    """The first `n` hex digits of the sha256 of `arrays` (`hash_arrays`)."""
    h = hashlib.sha256()
    hash_arrays(h, arrays)
    return h.hexdigest()[:n]


def recording_shas(record_ids, **arrays) -> dict[str, dict[str, str]]:
    """{recording: {name: hash of its windows' values in `arrays[name]`}}: windows (rows) grouped by `record_ids`
    (N,), each array's first axis N."""
    rid = np.asarray(record_ids).astype(str)
    order = np.argsort(rid, kind="stable")                     # (N,) each recording's windows together, in order
    names, starts = np.unique(rid[order], return_index=True)
    bounds = list(starts) + [len(rid)]
    return {str(r): {k: arrays_sha(np.asarray(a)[order[bounds[j]:bounds[j + 1]]]) for k, a in arrays.items()}
            for j, r in enumerate(names)}


def inputs_record(config: dict, *, checkpoints: dict | None = None, dataset_files: list | None = None,
                  heldout=None, recordings: dict | None = None, files: dict | None = None, split=None) -> dict:
    """What a resume key was made of, for `what_changed`: `config` (the fields hashed), `checkpoints` ({what:
    (path, sha256)}, e.g. {"--init checkpoint": ...}), the `dataset_files` records, the `heldout` subjects, the
    `recordings` ({id: {name: hash}}, `recording_shas`) with their `files` ({id: path}), the `split` (any JSON)."""
    return {"config": json.loads(json.dumps(config, sort_keys=True, default=str)),
            "checkpoints": {k: [str(p), str(s)] for k, (p, s) in (checkpoints or {}).items()},
            "dataset_files": list(dataset_files or []), "heldout": sorted(map(str, heldout or [])),
            "recordings": recordings or {}, "files": {str(k): str(v) for k, v in (files or {}).items() if v},
            "split": arrays_sha(np.frombuffer(json.dumps(split, default=str).encode(), np.uint8))}


def record_array(inputs: dict | None) -> dict:
    """{"inputs": the record as UTF-8 JSON bytes (uint8)} to save in an npz beside a key; {} for None."""
    if inputs is None:
        return {}
    return {"inputs": np.frombuffer(json.dumps(inputs, sort_keys=True).encode(), np.uint8)}


def record_of(z) -> dict | None:
    """The inputs' record an npz (`z`: np.load's) was saved with (`record_array`), None in a file from before."""
    return json.loads(bytes(z["inputs"]).decode()) if "inputs" in z.files else None


def resume_refusal(saved, then: dict | None, now: dict | None, otherwise: str) -> str:
    """The one line refusing to resume saved work `saved` (a path) whose key differs: naming what changed since it
    was saved (`what_changed` of its record `then` and this run's `now`), else (a file saved without a record, or
    a change the record does not tell) `otherwise`, what the key hashes ('another config, teacher or data')."""
    changed = what_changed(then, now) if then is not None and now is not None else None
    if changed:
        return f"cannot resume: {saved} was made with other inputs: {changed}; restore it, or start a new run"
    return f"cannot resume: {saved} was made with {otherwise}; start a new run"


# what a recording's hashed arrays are, in a refusal
_ARRAY_NAMES = {"x": "signal", "y": "labels", "t0": "window times", "flagged": "flagged samples",
                "teacher": "teacher outputs", "quality": "quality targets"}


def what_changed(then: dict, now: dict) -> str | None:
    """One phrase naming how the inputs' record `now` differs from `then` (both `inputs_record`s), first found of:
    the config ('its config changed (lr: 0.001 -> 0.01)'), a checkpoint rewritten, a dataset file ('its dataset file
    X changed since it started (channels.ppg: ppg -> acc_x)'), the held-out subjects, a recording gone, new or read
    otherwise (its file named), the split; None when none of them differs."""
    if then.get("config") != now["config"]:
        return f"its config changed ({doc_diff(then.get('config') or {}, now['config'])})"
    for what, (path, sha) in now["checkpoints"].items():
        was = (then.get("checkpoints") or {}).get(what)
        if was is not None and was[1] != sha:
            return (f"its {what} {path} was rewritten since it started (sha256 {was[1][:12]} then, {sha[:12]} now)"
                    if was[0] == path else f"its {what} is another file ({was[0]} -> {path})")
    if changed := file_changes(then.get("dataset_files") or [], now["dataset_files"]):
        return changed
    if then.get("heldout") is not None and then["heldout"] != now["heldout"]:
        return (f"its held-out subjects changed ({', '.join(then['heldout']) or 'none'} -> "
                f"{', '.join(now['heldout']) or 'none'})")
    if changed := _recording_changes(then.get("recordings") or {}, now["recordings"], now["files"]):
        return changed
    if then.get("split") is not None and then["split"] != now["split"]:
        return "its subject folds differ"
    return None


def _recording_changes(old: dict, new: dict, files: dict) -> str | None:
    def more(ids: list) -> str:
        return f"{ids[0]}" + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")

    def named(r: str) -> str:
        return f"{r} ({files[r]})" if r in files else r
    if not old:                                  # a record without recordings (none were hashed): nothing to name
        return None
    for r in (r for r in new if r in old and old[r] != new[r]):
        parts = [_ARRAY_NAMES.get(k, k) for k in new[r] if old[r].get(k) != new[r][k]]
        return (f"the {' and '.join(parts)} of recording {named(r)} changed since it started (a stream or label "
                "file rewritten, or read otherwise)")
    if gone := [r for r in old if r not in new]:
        return f"its training data no longer holds recording {more(gone)}"
    if came := [r for r in new if r not in old]:
        return f"its training data holds recording {more(came)} now, not when it started"
    return None


# ----------------------------------------------------------------------------- dataset files

def file_changes(then: list[dict], now: list[dict]) -> str | None:
    """How the dataset files of a run's inputs (their `data.dataset_file.file_record`s) differ from those saved when
    it started, as one phrase naming the file and what changed ('its dataset file X changed since it started
    (channels.ppg: green -> red)'); None when none differs. A file is matched by its path, else by its document (a
    shipped file under a reinstalled sqtool: the same file, moved)."""
    old, new = {r["path"]: r for r in then}, {r["path"]: r for r in now}
    for path in old.keys() & new.keys():
        a, b = old[path], new[path]
        if a["sha256"] != b["sha256"]:
            diff = doc_diff(a.get("document") or {}, b["document"])
            return f"its dataset file {path} changed since it started ({diff or 'its document differs'})"
    gone = [r for p, r in old.items() if p not in new]
    came = [r for p, r in new.items() if p not in old]
    moved = {r["sha256"] for r in gone} & {r["sha256"] for r in came}
    for r in gone:
        if r["sha256"] not in moved:
            return f"its dataset file {r['path']} is no longer read"
    for r in came:
        if r["sha256"] not in moved:
            return f"the dataset file {r['path']} is read now, not when it started"
    return None


_NONE = object()            # a key the document lacks


def doc_diff(a: dict, b: dict, most: int = 3) -> str:
    """'channels.ppg: green -> red, fs: (none) -> 64': the keys (dotted) whose values differ, at most `most`."""
    def flat(d, pre=""):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                yield from flat(v, f"{pre}{k}.")
            else:
                yield f"{pre}{k}", v

    def shown(v) -> str:
        t = "(none)" if v is _NONE else v if isinstance(v, str) else json.dumps(v)
        return t if len(t) <= 40 else t[:37] + "..."
    fa, fb = dict(flat(a)), dict(flat(b))
    keys = [k for k in sorted(set(fa) | set(fb)) if fa.get(k, _NONE) != fb.get(k, _NONE)]
    said = [f"{k}: {shown(fa.get(k, _NONE))} -> {shown(fb.get(k, _NONE))}" for k in keys[:most]]
    return ", ".join(said) + (f" and {len(keys) - most} more" if len(keys) > most else "")
