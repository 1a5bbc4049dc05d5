"""Which subjects a run holds out: the one rule of `sqtool train finetune` and `sqtool quantize`.

    split = file_split(ds, records)                   # the dataset file's test subjects, None without a split
    held, how = heldout_keys(keys, names=cfg.heldout_subjects, split=split, dataset=ds.name,
                             fraction=cfg.heldout_fraction)
    held, in_teacher = teacher_heldout(keys, recorded_heldout(ck["train_cfg"]), ck["path"], ...)   # quantize

The fine-tune (spectral heart rate and time-domain alike) leaves the subjects this returns out of everything it
fits (its folds, the decoder's choice, the skill test, the final model) and records them in model.pt's
train_cfg; `quantize` then evaluates on the teacher's held-out subjects (`teacher_heldout`), so they are in neither
the teacher's nor the student's training. In order:

1. `names` (--heldout-subjects): those subjects, each a key ("dataset:subject") or a subject id of one dataset;
2. `fraction` 0 (--heldout-fraction 0): none, every subject is trained on;
3. `split` (the dataset file's `split: test:` or `split: heldout_fraction:`): its test subjects, by subject;
   built-in datasets trained beside the file are never held out by it;
4. the last round(fraction x n) of the n sorted subject keys (numbers as numbers, `natural_sorted`: PPG-BP's 9 before
   10; at least 1, at most n - 1), with `fraction`, else
   `default` (HELDOUT_FRACTION, quantize's --heldout-fraction default); with a dataset file (`dataset`: a team's
   own, trained beside built-ins) of 2 or more subjects, of that file's subjects only, so that the held-out
   subjects are those of the device shipped on whatever its name sorts as (a file named apple_watch beside troika
   held out SP Cup subjects).
"""
from __future__ import annotations

from sqtool.core import SqtoolError
from sqtool.data.readers._common import natural_sorted

HELDOUT_FRACTION = 0.2          # the share of subjects held out when neither a list nor the dataset file says


def check_fraction(fraction: float | None) -> None:
    """--heldout-fraction: None (not given) or in [0, 1); else one line (the fine-tune checks it before its run
    folder is made)."""
    if fraction is not None and not 0.0 <= float(fraction) < 1.0:
        raise SqtoolError(f"--heldout-fraction must be in [0, 1) (0 = hold none out), got {fraction}")


def file_split(ds, records=None, meta: dict | None = None) -> list[str] | None:
    """The dataset file `ds`'s test subjects (their ids in the file, sorted) among `records` (objects with
    .dataset, .record_id, .subject: recordings, their spectra; None: the file's recordings, read only when it
    declares a test side), or None when `ds` is None or declares no test side (no `split.test`, no
    `split.heldout_fraction`: a train list alone holds nobody out). `meta`: a TaskData's, whose "split_test" (read
    with the task's recordings) is the answer when present."""
    if meta and "split_test" in meta:
        return meta["split_test"]
    if ds is None or not (ds.split.test or ds.split.heldout_fraction):
        return None
    records = ds.records() if records is None else records
    return natural_sorted(ds.split_subjects([r for r in records if getattr(r, "dataset", ds.name) == ds.name])[1])


def _resolve(names, keys: list[str], dataset: str | None, what: str) -> list[str]:
    """Each name as the key of `keys` it names: itself, or the one key whose subject part it is (of `dataset`
    when given); unknown or ambiguous names: one line."""
    out, unknown = set(), []
    for n in map(str, names):
        if n in keys:
            out.add(n)
            continue
        hits = [k for k in keys if ":" in k and k.split(":", 1)[1] == n
                and (dataset is None or k.split(":", 1)[0] == dataset)]
        if len(hits) > 1:
            raise SqtoolError(f"{what} {n} is a subject of {', '.join(h.split(':', 1)[0] for h in hits)}: name it "
                              f"as {' or '.join(hits)}")
        if hits:
            out.add(hits[0])
        else:
            unknown.append(n)
    if unknown:
        raise SqtoolError(f"{what} {', '.join(unknown)} not in the data ({', '.join(keys)})")
    return natural_sorted(out)


def heldout_keys(keys, *, names=(), split: list[str] | None = None, dataset: str | None = None,
                 fraction: float | None = None, default: float = HELDOUT_FRACTION) -> tuple[list[str], str]:
    """(the held-out subject keys of `keys`, sorted; how they were chosen, for the printed line): the module
    docstring's rule. `fraction` None: not given (a dataset file's split then decides, else `default`); given
    beside a file's split, other than 0, it is one line (the file decides)."""
    keys = natural_sorted(keys)
    if names:
        mine = _resolve(names, keys, None, "--heldout-subjects")
        try:                                            # the file's split it replaces: trained on now, said
            theirs = natural_sorted(set(_resolve(split, keys, dataset, "split.test:")) - set(mine)) if split else []
        except SqtoolError:
            theirs = []
        return mine, "--heldout-subjects" + (f"; the dataset file's split.test {', '.join(theirs)} is trained on"
                                             if theirs else "")
    check_fraction(fraction)
    if fraction is not None and float(fraction) == 0.0:
        return [], "--heldout-fraction 0: none"
    if split is not None:
        if fraction is not None:
            raise SqtoolError(f"--heldout-fraction {fraction:g}: the dataset file's split decides which subjects are "
                              "held out; name others with --heldout-subjects, or --heldout-fraction 0 for none")
        return _resolve(split, keys, dataset, "the dataset file's split.test:"), "the dataset file's split"
    f = float(default if fraction is None else fraction)
    if not 0.0 < f < 1.0:
        raise SqtoolError(f"--heldout-fraction must be in (0, 1) here, got {f:g}")
    own = [k for k in keys if dataset is not None and k.split(":", 1)[0] == dataset]
    pool = own if len(own) >= 2 else keys                                    # (K,) the subjects to hold out from
    n = min(len(pool) - 1, max(1, int(round(f * len(pool)))))
    where = f" of {dataset}'s subjects" if pool is own else " of the sorted subjects"
    return (pool[-n:] if n > 0 else []), f"the last {f:g}{where} (--heldout-fraction)"


def recorded_heldout(train_cfg: dict | None) -> list[str] | None:
    """The held-out subjects a teacher's fine-tune recorded (model.pt's train_cfg "heldout_subjects"; [] = it held
    none out, --heldout-fraction 0), or None when it recorded none: a fine-tune from before sqtool held subjects out
    of it (a time-domain one of that time carries the option's empty default, with neither "heldout_rule" nor a
    --heldout-fraction beside it)."""
    tc = train_cfg or {}
    held = tc.get("heldout_subjects")
    if held is None or (not held and tc.get("heldout_fraction") is None and not tc.get("heldout_rule")):
        return None
    return [str(h) for h in held]


def teacher_heldout(keys, recorded: list[str] | None, teacher: str, *, names=(), split: list[str] | None = None,
                    dataset: str | None = None, fraction: float = HELDOUT_FRACTION) -> tuple[list[str], bool | None]:
    """quantize's held-out subjects among `keys` (sorted) and whether the teacher trained on them: False / True /
    None = not known. A teacher that `recorded` its held-out subjects (`recorded_heldout`) gives them: `names`
    (--heldout-subjects) may name some of them only, another is one line (the teacher trained on it), and so is a
    `fraction` (--heldout-fraction) other than the default. A teacher that held none out ([]) or from before the
    record (None) leaves the choice to `heldout_keys` (names, the dataset file's `split`, the last `fraction`): the
    teacher trained on them (True), or may have (None). Either way a held-out set that is empty or leaves no
    training subject is one line. `fraction` 0 (--heldout-fraction 0, a final fit): none, ([], None), the student
    trains on every subject; beside --heldout-subjects it is one line."""
    keys = natural_sorted(keys)
    if float(fraction) == 0.0:
        if names:
            raise SqtoolError("--heldout-fraction 0 trains on every subject (a final fit): give it without "
                              "--heldout-subjects")
        return [], None
    if recorded:
        mine = natural_sorted(set(map(str, recorded)) & set(keys))
        if not mine:
            raise SqtoolError(f"teacher {teacher} held out {', '.join(map(str, recorded))}: none of them is in the "
                              f"data ({', '.join(keys)})")
        held = mine
        if float(fraction) != HELDOUT_FRACTION:
            raise SqtoolError(f"--heldout-fraction {fraction:g}: teacher {teacher} held out {', '.join(mine)}, which "
                              "quantize evaluates on; name some of them with --heldout-subjects, or fine-tune a "
                              "teacher holding out others")
        if names:
            held = heldout_keys(keys, names=names)[0]
            seen = natural_sorted(set(held) - set(mine))
            if seen:
                raise SqtoolError(f"--heldout-subjects {', '.join(seen)}: teacher {teacher} was fine-tuned on "
                                  f"{'it' if len(seen) == 1 else 'them'} (it held out {', '.join(mine)}); name some "
                                  "of those, or fine-tune a teacher holding yours out (train finetune "
                                  "--heldout-subjects)")
    else:
        held = heldout_keys(keys, names=names, split=split, dataset=dataset, default=fraction)[0]
    if not held or len(held) >= len(keys):      # (a corpus other than the teacher's can hold no training subject)
        raise SqtoolError(f"quantize needs held-out subjects and training subjects: {len(held)} of the "
                          f"{len(keys)} subjects held out ({', '.join(held) or 'none'})")
    return held, (False if recorded else None if recorded is None else True)


def heldout_note(in_teacher: bool | None, teacher: str) -> str | None:
    """quantize's warning when its held-out subjects are not known to be out of the teacher's fine-tuning
    (`teacher_heldout`'s in_teacher); None when the teacher recorded that it held them out."""
    if in_teacher is None:
        return (f"teacher {teacher} recorded no held-out subjects (fine-tuned before sqtool held them out of the "
                "fine-tune): its folds and model.pt may have trained on the held-out subjects; fine-tune it again for "
                "figures on subjects neither model saw")
    if in_teacher:
        return (f"teacher {teacher} held no subject out (--heldout-fraction 0): it was fine-tuned on the held-out "
                "subjects, so its figures on them are not held out and the student learnt from a teacher that saw them")
    return None


__all__ = ["HELDOUT_FRACTION", "check_fraction", "file_split", "heldout_keys", "heldout_note", "recorded_heldout",
           "teacher_heldout"]
