"""`sqtool data ...`: inspect datasets, download them, and (from pairs.py / quality.py) score and pair.

    sqtool data inspect --data PATH [--json] [--kind K] [--min-duration-s S] [--skip-bad]
    sqtool data download NAME --out DIR [--mirror DIR | --base-url URL]
    sqtool data download --list

Old spellings still work with a one-line deprecation notice: `data inspect PATH` (use --data),
`data download --to DIR` (use --out).
"""
from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

from sqtool.core import SqtoolError, add_bool_flag, add_deprecated_alias, check_fs, resolve_data_root
from sqtool.core.runs import shell_command

# --kind's help: the built-in layouts, one per shipped dataset file (datasets/<kind>.yaml, globbed here rather than
# importing the readers, which would load numpy for every `sqtool --help`), then the generic readers;
# tests/data/test_builtin_datasets.py holds it to readers.kinds().
KINDS_HELP = (", ".join(sorted(p.stem for p in (Path(__file__).resolve().parent / "datasets").glob("*.yaml")))
              + ", or the generic csv, npz, wfdb, e4 (default: detected from the files)")


def register(sub, name: str = "data", helptext: str = "inspect, score, pair and download PPG datasets") -> None:
    p = sub.add_parser(name, help=helptext, description=helptext + ". Run 'sqtool data COMMAND --help'.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Data root (where a bare dataset name such as troika is looked up): $SQTOOL_DATA, "
                              "else ../shared/data next to the project or the cwd; 'data inspect --data troika "
                              "--data-root DIR' looks it up in DIR.")
    dsub = p.add_subparsers(dest="data_command", metavar="COMMAND")

    def need_command(args):
        p.print_help()
        return 2
    p.set_defaults(func=need_command)

    # inspect ------------------------------------------------------------------------------------
    pi = dsub.add_parser(
        "inspect", help="summarise a dataset folder or file: kind, records, subjects, channels, labels",
        description="Read every record of --data (lazily) and print the dataset kind, number of records and "
                    "subjects, channels with their sampling rates, total duration, and each label with its "
                    "kind and counts (class histograms for class labels), then a line per recording (id, subject, "
                    "length, channels at their rates, start, stream files: the first 10, --json every one) and a "
                    "dataset file's accelerometer unit and conversion to g. A folder holding several datasets "
                    "(e.g. the whole data root) is summarised per sub-folder. A file of a folder (or of a dataset "
                    "file) that fails a check is listed with why after the summary, every file read first, and "
                    "the command then exits 1 (--skip-bad: 0); other bad input is one error line.")
    pi.add_argument("--data", default=None, metavar="PATH",
                    help="dataset folder or a single recording file; a bare name such as 'troika' is "
                         "looked up under the data root (required)")
    pi.add_argument("path", nargs="?", default=None, help=argparse.SUPPRESS)     # deprecated: use --data
    pi.add_argument("--data-root", default=None, metavar="DIR",
                    help="where a bare dataset name given as --data is looked up (default: $SQTOOL_DATA or "
                         "../shared/data); without --data, read as --data (its old spelling, as in train)")
    pi.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    pi.add_argument("--kind", default=None, metavar="KIND", help=KINDS_HELP)
    pi.add_argument("--min-duration-s", type=float, default=0.0, metavar="S",
                    help="refuse records shorter than S seconds, e.g. one model window (default: 0)")
    pi.add_argument("--fs", type=float, default=None, metavar="HZ",
                    help="sampling rate for generic CSV/NPZ files without a time column or stored rate "
                         "(default: from the files)")
    pi.add_argument("--max-clip-fraction", type=float, default=None, metavar="F",
                    help="refuse records whose PPG has more than this fraction (0..1) of samples at its "
                         "max or min, i.e. saturated (default: off; the summary counts records > 0.25)")
    pi.add_argument("--skip-bad", action="store_true",
                    help="exit 0 over a folder's unreadable/bad files, listed either way (default: exit 1 "
                         "after listing them)")
    add_bool_flag(pi, "--progress", "progress", "show a progress bar on stderr (records read)", default=True,
                  stored_default=True)
    pi.set_defaults(func=run_inspect)

    # download -----------------------------------------------------------------------------------
    from sqtool.data.download import REGISTRY
    pd = dsub.add_parser(
        "download", help="download a public dataset (SHA-256 checked, resumable) or install it from a mirror",
        description="Fetch dataset NAME into OUT/NAME from its original location (PhysioNet, the pinned "
                    "GitHub releases), or from a local copy with --mirror, or an HTTP mirror with --base-url. "
                    "Every file is checked against its SHA-256; interrupted transfers resume (HTTP Range) "
                    "from OUT/NAME/<file>.part; a file is renamed into place only when its hash matches; "
                    "files already present are skipped. Datasets: " + ", ".join(REGISTRY) + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    pd.add_argument("name", nargs="?", metavar="NAME", help="dataset to download, see --list (required)")
    pd.add_argument("--out", metavar="DIR", default=None,
                    help="destination folder; the dataset goes to DIR/NAME (required)")
    add_deprecated_alias(pd, "--to", "--out", "out", metavar="DIR")
    pd.add_argument("--mirror", metavar="DIR", default=None,
                    help="install from a local copy (DIR/NAME/... or DIR/...) instead of the network")
    pd.add_argument("--base-url", metavar="URL", default=None,
                    help="HTTP mirror of the reference layout (files at URL/NAME/<path>)")
    pd.add_argument("--retries", type=int, default=5, metavar="N", help="resume attempts per file (default: 5)")
    pd.add_argument("--timeout", type=float, default=30.0, metavar="S", help="socket timeout in seconds (default: 30)")
    pd.add_argument("--list", action="store_true", help="list the downloadable datasets with source and license")
    add_bool_flag(pd, "--progress", "progress", "print a line per file on stderr", default=True, stored_default=True)
    pd.set_defaults(func=run_download)

    # stages written in other modules register themselves when present
    for mod in ("sqtool.data.pairs", "sqtool.data.quality"):
        try:
            import importlib
            importlib.import_module(mod).register_cli(dsub)
        except (ImportError, AttributeError):
            pass


def _resolve_path(path: str, data_root: str | None) -> Path:
    """PATH as given if it exists, else DATA_ROOT/PATH (so 'sqtool data inspect bidmc' works)."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute():
        return p
    root = resolve_data_root(data_root)
    if root is not None and (root / path).exists():
        return root / path
    from sqtool.data.dataset_file import builtin_names, resolve_data
    if path not in builtin_names():
        resolve_data(path, data_root)       # raises the one line every --data gives, naming the built-in datasets
    return p


def _data_arg(args) -> str:
    """--data, or the deprecated positional PATH, or --data-root given alone (`data_and_root`): one notice line.
    Sets args.data_root to the lookup root that is left (None when --data-root was read as --data)."""
    from sqtool.core.runs import data_and_root
    if args.path is not None:
        if args.data is not None:
            raise SqtoolError("data: give --data PATH, not also a positional PATH", code=2)
        print("sqtool: deprecated: use --data PATH instead of a positional PATH", file=sys.stderr)
        return args.path
    data, args.data_root = data_and_root(args.data, getattr(args, "data_root", None))    # data quality has none
    if data is None:
        raise SqtoolError("data: --data PATH is required (a dataset folder, file or name)", code=2)
    return data


def run_inspect(args) -> int:
    """Summarise --data; a folder's (a dataset file's) files failing a check are each listed with why, every file
    read first; any such file (without --skip-bad) then exits 1, its last line saying so."""
    from sqtool.data.readers.summary import format_summary

    opts = {"min_duration_s": args.min_duration_s, "progress": args.progress}
    if args.max_clip_fraction is not None:
        if not 0 <= args.max_clip_fraction <= 1:
            raise SqtoolError("data inspect: --max-clip-fraction must be in 0..1", code=2)
        opts["max_clip_fraction"] = args.max_clip_fraction
    if args.fs is not None:
        opts["fs"] = check_fs(args.fs, "data inspect --fs")
    from sqtool.data.dataset_tasks import dataset_of
    data = _data_arg(args)                                 # once: a deprecated spelling is noted once
    ds = dataset_of(data, args.data_root)                  # a dataset.yaml or a built-in name
    path = None if ds is not None else _resolve_path(data, args.data_root)
    refused: list[str] = []        # a folder's (or dataset file's) files failing a check: every one read, then listed
    if args.skip_bad or path is None or path.is_dir():
        opts.update(on_error="skip", skipped=refused)     # a single file keeps its own one-line error
    try:
        s = _summary(ds, path, args, opts, refused)
    except SqtoolError as e:                               # none usable: each said, then why
        if not refused:
            raise
        if len(refused) == 1:                              # the error's line says it: not twice
            raise SqtoolError(f"{e} (its one file: {refused[0]})") from None
        if not args.json:
            print(skipped_lines(refused))
        raise SqtoolError(f"{e} ({len(refused)} unusable files, each listed above; first: {refused[0]})") from None
    if args.json:
        print(json.dumps(s, indent=2, default=str))
    else:
        print(format_summary({**s, "skipped": []}))    # each said below, not the first alone
        if refused:
            print(skipped_lines(refused))
        for rid, why in (s.get("dataset_file") or {}).get("excluded", {}).items():
            print(f"  excluded: {rid} ({why})")
        split = (s.get("dataset_file") or {}).get("split") or {}
        if "heldout_fraction" in split:
            print(f"  split (by subject): test fraction {split['heldout_fraction']:g} of the labelled subjects, "
                  "drawn by quantize: of the whole file for a time-domain teacher, of those --max-records keeps "
                  "for a spectral heart-rate one")
        elif "train_only" in split:
            print(f"  split: train {', '.join(split['train_only'])} only: not used (quantize holds out by its "
                  "default, --heldout-fraction)")
        elif split:
            print("  split (by subject): " + "; ".join(f"{side} {', '.join(names) or '-'} ({len(names)})"
                                                       for side, names in split.items()))
        if not refused or args.skip_bad:              # an exit 1 below: its line says what to do, no next step
            print(inspect_next(data, trainable_labels(s), "acc_x" in (s.get("channels") or {})))
    if refused and not args.skip_bad:                      # after the inventory: the exit status says it
        raise SqtoolError(f"{data}: {len(refused)} unusable file{'s' if len(refused) > 1 else ''} (each listed "
                          f"above; first: {refused[0]}): training stops on one; predict and bench leave it out of a folder "
                          "(one WARNING line each); --skip-bad: exit 0")
    return 0


def _summary(ds, path: Path | None, args, opts: dict, refused: list[str]) -> dict:
    """`data inspect`'s summary of a dataset file (`ds`) or of `path`; with opts on_error "skip", every file failing
    a check is left out and its line appended to `refused` (a dataset file's too), so that all are listed."""
    from sqtool.data.readers import inspect_path
    if ds is not None:
        from types import SimpleNamespace

        from sqtool.data.readers.summary import summarise
        from sqtool.data.readers.generic import acc_unit_of
        recs: list = []                                    # (record_id, subject) of each: the split's check
        row_units: dict[str, set] = {}                     # acc channel -> the units its files' units rows gave

        def each():                                        # one recording in memory at a time, not the dataset
            for r in ds.iter_records(on_error=opts.get("on_error", "raise"), notes="full"):     # each file's
                recs.append(SimpleNamespace(record_id=r.record_id, subject=r.subject))
                for ch, written in (r.meta.get("units") or {}).items():
                    if ch.startswith("acc") and (unit := acc_unit_of(written)):
                        row_units.setdefault(ch, set()).add(unit)
                yield r
        try:
            s = summarise(ds.path, records=each(), progress=args.progress,
                          windows=(float(ds.windows.window_s), float(ds.windows.hop_s)))     # its windows' grid
        finally:                                           # its bad files, also when none is left
            refused.extend(ds.report.get("skipped", []))
        from sqtool.data.dataset_file import acc_conversion
        s["dataset_file"] = {"format": ds.format, "root": str(ds.root), "labels": list(ds.labels),
                             "acc": acc_conversion(ds, row_units),
                             **{k: v for k, v in ds.report.items() if v and k != "skipped"}}
        if ds.split.test:                               # what quantize reads (compress/cli, quantize_hr)
            train, test = ds.split_subjects(recs)       # the check quantize makes: an unknown name is one line
            s["dataset_file"]["split"] = {"train": sorted(train), "test": sorted(test)}
        elif ds.split.heldout_fraction:                 # quantize draws it: time-domain from every labelled subject
                                                        # of the file, spectral from those --max-records keeps
            s["dataset_file"]["split"] = {"heldout_fraction": float(ds.split.heldout_fraction)}
        elif ds.split.train:                            # a train list alone: quantize holds out by its default
            s["dataset_file"]["split"] = {"train_only": [str(n) for n in ds.split.train]}
    else:
        s = inspect_path(path, args.kind, **opts)
    if refused:                                            # all of them (a folder of datasets: each one's too)
        s["skipped"] = list(refused)
        for sub in s.get("datasets", ()):
            sub.pop("skipped", None)
    return s


def skipped_lines(refused: list[str]) -> str:
    """The inventory's lines of the files left out: 'skipped N bad item(s):', then one line each, saying why."""
    return "\n".join([f"  skipped {len(refused)} bad item(s):", *(f"    {why}" for why in refused)])


def trainable_labels(summary: dict) -> list[str]:
    """The labels of an inspect summary a task can train on: a class label only when both of its classes occur
    (an AF set without AF windows is refused by fine-tuning)."""
    labels = summary.get("labels") or {}
    found = (summary.get("dataset_file") or {}).get("labels") or labels
    return [k for k in found if all((labels.get(k, {}).get("binary") or {"": 1}).values())]   # every count > 0


# the registry's models over a fixed front end, by task (models.front_model; data does not import models: a test
# checks these names against the registry)
FRONT_MODELS = {"rr": "rr_spec", "af": "af_beats"}


def inspect_next(data: str, labels: list[str], acc: bool = False) -> str:
    """`data inspect`'s last line: fine-tune on a label the data has (heart rate first: the spectral monitor when
    the recordings have an accelerometer), else mine pairs."""
    from sqtool.data.dataset_file import TASK_LABELS
    task = next((t for t, lab in TASK_LABELS.items() if lab in labels), None)
    if task == "hr" and acc:
        return "next: " + shell_command("train", "finetune", "--task", "hr", "--model", "spec_teacher_m",
                                        "--data", data, "--folds", 0)
    if task:
        model = FRONT_MODELS.get(task)               # rr, af: the model over a fixed front end (the one with skill)
        return "next: " + shell_command("train", "finetune", "--task", task, *(("--model", model) if model else ()),
                                        "--data", data)
    return f"next: {shell_command('data', 'pairs', '--data', data)}   (real (good, poor) pairs for pretraining)"


def run_download(args) -> int:
    from sqtool.data.download import REGISTRY, download

    if args.list:
        for n, src in REGISTRY.items():
            print(f"{n:<16} {src.url.split('{')[0]}\n{'':<16} license: {src.license}\n{'':<16} cite: {src.cite}")
        return 0
    if not args.name:
        raise SqtoolError("data download: NAME is required (see --list)", code=2)
    if not args.out:
        raise SqtoolError("data download: --out DIR is required", code=2)
    if args.mirror and args.base_url:
        raise SqtoolError("data download: give --mirror or --base-url, not both", code=2)
    if args.retries < 0 or args.retries > 100:
        raise SqtoolError("data download: --retries must be 0..100", code=2)
    log = (lambda m: print(m, file=sys.stderr)) if args.progress else (lambda m: None)
    r = download(args.name, args.out, mirror=args.mirror, base_url=args.base_url, retries=args.retries,
                 timeout=args.timeout, log=log)
    print(f"{args.name}: {r['files']} files in {r['dir']} ({r['fetched']} fetched, {r['skipped']} already "
          f"present, {r['bytes'] / 1e6:.1f} MB)")
    print("next: " + shell_command("data", "inspect", "--data", r["dir"]))
    return 0
