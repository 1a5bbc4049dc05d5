"""How an export names the subjects its model was trained and held out on: `sqtool export --subjects MODE`.

    names = subject_names(train + held, "auto")     # {"st_mary:DOE_JOHN": "st_mary:subject-01", ...}; {} = names
    renamed(metrics, names)                         # any JSON-like value, every subject key written as its pseudonym

A subject key is "dataset:subject", the subject being a dataset.yaml's `subject:` value or, without one, the
recording's file name: for a user's own data it is often a patient identifier (an MRN, a name, a date). An export
folder is what goes to customers and firmware houses, so what it says about the subjects is chosen here:

    names       every subject by its key (what sqtool always wrote before this option)
    pseudonyms  every subject as "<dataset>:subject-NN", numbered 01.. in the sorted order of that dataset's keys
                within this export (train and held-out together); the dataset's name is kept
    auto        (the default) names for subjects of sqtool's built-in public datasets (PUBLIC_DATASETS: their ids
                are public), pseudonyms for any other dataset (a dataset.yaml of your own)

A pseudonym is a number, never a hash: a hash of a 6-digit MRN is reversed by trying every MRN. The names stay in
the in-house run folders (the quantize run's model.pt and metrics.json list the keys; their sorted order gives the
numbers). The metadata says which datasets were pseudonymised (`training_data.pseudonymised`); without that key
every subject is named.
"""
from __future__ import annotations

from sqtool.core import SqtoolError

SUBJECT_MODES = ("auto", "names", "pseudonyms")
# the one wording of what a pseudonym is and where the ids are: the metadata's note, `--help`, export's note, the card
PSEUDONYM_FORM = "<dataset>:subject-NN, numbered in the sorted order of their ids within this export"
PSEUDONYM_IDS = "the ids stay in the source run (in-house); `sqtool export --subjects names` writes them"
PSEUDONYM_NOTE = f"subjects of the datasets in `pseudonymised` are written as {PSEUDONYM_FORM}; {PSEUDONYM_IDS}"


def public_datasets() -> set[str]:
    """The datasets whose subject ids are public: sqtool's built-in readers' and the synthetic generator's."""
    from sqtool.data.readers import DATASETS
    from sqtool.data.hr_spectra import HR_DATASETS
    return {*DATASETS, *HR_DATASETS, "synthetic"}


def _dataset(key: str) -> str:
    return key.split(":", 1)[0] if ":" in key else ""


def subject_names(keys, mode: str) -> dict[str, str]:
    """{subject key: its pseudonym} for every key `mode` pseudonymises (the others are written as they are);
    bare subject names (the part after "dataset:") are mapped too where they are one dataset's only."""
    if mode not in SUBJECT_MODES:
        raise SqtoolError(f"export: --subjects {mode!r}: use one of {', '.join(SUBJECT_MODES)}")
    if mode == "names":
        return {}
    keys = sorted({str(k) for k in keys or ()})
    public = public_datasets() if mode == "auto" else set()
    owners: dict[str, set[str]] = {}                   # a bare name -> the datasets whose subject it names
    for k in keys:
        if ":" in k:
            owners.setdefault(k.split(":", 1)[1], set()).add(_dataset(k))
    # a bare name of public datasets' subjects stays as it is, one of a single private dataset's subject takes that
    # key's pseudonym (below); an unknown one, or one several private datasets share, is numbered as its own
    keys = [k for k in keys if ":" in k or k not in owners or len(owners[k] - public) > 1]
    out: dict[str, str] = {}
    for ds in sorted({_dataset(k) for k in keys} - public):
        mine = [k for k in keys if _dataset(k) == ds]
        width = max(2, len(str(len(mine))))
        for i, k in enumerate(mine, 1):
            out[k] = f"{ds}:subject-{i:0{width}d}" if ds else f"subject-{i:0{width}d}"
    bare: dict[str, list[str]] = {}
    for k, v in list(out.items()):
        if ":" in k:
            bare.setdefault(k.split(":", 1)[1], []).append(v.split(":", 1)[1])
    for b, vs in bare.items():
        if len(vs) == 1 and b not in out:
            out[b] = vs[0]
    return out


def pseudonymised(names: dict[str, str]) -> list[str]:
    """The datasets whose subjects `names` renames, sorted."""
    return sorted({_dataset(k) for k in names if ":" in k})


def renamed(obj, names: dict[str, str]):
    """`obj` (JSON-like: dicts, lists, strings) with every string and dict key that is a subject key (or a bare
    subject name) in `names` replaced by its pseudonym; a key of a pseudonymised dataset that `names` lacks
    becomes "<dataset>:subject-?" (never its id). {} = obj unchanged."""
    if not names:
        return obj
    hidden = set(pseudonymised(names))

    def one(s):
        if not isinstance(s, str):
            return s
        if s in names:
            return names[s]
        return f"{_dataset(s)}:subject-?" if ":" in s and _dataset(s) in hidden else s
    if isinstance(obj, dict):
        return {one(k): renamed(v, names) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(renamed(v, names) for v in obj)
    return one(obj)


__all__ = ["SUBJECT_MODES", "PSEUDONYM_FORM", "PSEUDONYM_IDS", "PSEUDONYM_NOTE", "public_datasets", "subject_names",
           "pseudonymised", "renamed"]
