"""Which subjects a run holds out: the one rule of `sqtool train finetune --task hr` and `sqtool quantize`.

    split = file_split(ds, records)                   # the dataset file's test subjects, None without a split
    held, how = heldout_keys(keys, names=cfg.heldout_subjects, split=split, dataset=ds.name,
                             fraction=cfg.heldout_fraction)

The spectral heart-rate fine-tune leaves the subjects this returns out of everything it fits (its folds, the
decoder's choice, the skill test, the final model) and records them; `quantize` then evaluates on the teacher's
held-out subjects, so they are in neither the teacher's nor the student's training. In order:

1. `names` (--heldout-subjects): those subjects, each a key ("dataset:subject") or a subject id of one dataset;
2. `fraction` 0 (--heldout-fraction 0): none, every subject is trained on;
3. `split` (the dataset file's `split: test:` or `split: heldout_fraction:`): its test subjects, by subject;
   built-in datasets trained beside the file are never held out by it;
4. the last round(fraction x n) of the n sorted subject keys (at least 1, at most n - 1), with `fraction`, else
   `default` (HELDOUT_FRACTION, quantize's --heldout-fraction default); with a dataset file (`dataset`: a team's
   own, trained beside built-ins) of 2 or more subjects, of that file's subjects only, so that the held-out
   subjects are those of the device shipped on whatever its name sorts as (a file named apple_watch beside troika
   held out SP Cup subjects).
"""
from __future__ import annotations

from sqtool.core import SqtoolError

HELDOUT_FRACTION = 0.2          # the share of subjects held out when neither a list nor the dataset file says


def file_split(ds, records) -> list[str] | None:
    """The dataset file `ds`'s test subjects (their ids in the file, sorted) among `records` (objects with
    .dataset, .record_id, .subject: recordings, their spectra), or None when `ds` is None or declares no test side
    (no `split.test`, no `split.heldout_fraction`: a train list alone holds nobody out)."""
    if ds is None or not (ds.split.test or ds.split.heldout_fraction):
        return None
    return sorted(ds.split_subjects([r for r in records if getattr(r, "dataset", ds.name) == ds.name])[1])


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
    return sorted(out)


def heldout_keys(keys, *, names=(), split: list[str] | None = None, dataset: str | None = None,
                 fraction: float | None = None, default: float = HELDOUT_FRACTION) -> tuple[list[str], str]:
    """(the held-out subject keys of `keys`, sorted; how they were chosen, for the printed line): the module
    docstring's rule. `fraction` None: not given (a dataset file's split then decides, else `default`); given
    beside a file's split, other than 0, it is one line (the file decides)."""
    keys = sorted(map(str, keys))
    if names:
        return _resolve(names, keys, None, "--heldout-subjects"), "--heldout-subjects"
    if fraction is not None and not 0.0 <= float(fraction) < 1.0:
        raise SqtoolError(f"--heldout-fraction must be in [0, 1) (0 = hold none out), got {fraction}")
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


__all__ = ["HELDOUT_FRACTION", "file_split", "heldout_keys"]
