"""PPG polarity detector (`sqtool.data.polarity`) on every shipped recording, as delivered and multiplied by -1.

    nice .venv/bin/python benchmarks/ppg_polarity.py            # ~3 min on 2 cores (all datasets of the data root)

For every PPG channel of every recording of --data (default: every dataset folder of the data root), the verdict
(normal / inverted / undetermined), the median derivative skew of the stillest windows and how many windows it used,
once on the samples as the reader gives them and once on their negative. `sqtool data inspect` warns on "inverted":
the goal is no warning as delivered and one on as many flipped copies as possible. Writes
benchmarks/results/ppg_polarity.json and .md: verdict counts per dataset over every recording, and a row per recording
with at least MIN_WINDOWS gap-free windows (a shorter one is always undetermined: counted, not listed).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import DATA_ROOT_HELP, SqtoolError, atomic_write_text, data_root_or_exit, write_metrics  # noqa: E402

VERDICTS = ("normal", "inverted", "undetermined")


def measure(paths: list[str], max_records: int = 0) -> list[dict]:
    """One row per (recording, PPG channel): {dataset, record, channel, fs, delivered {...}, flipped {...}}."""
    import dataclasses

    from sqtool.data import polarity as P
    from sqtool.data.readers import iter_records
    rows = []
    for path in paths:
        t = time.time()
        for i, rec in enumerate(iter_records(path, on_error="skip")):
            if max_records and i >= max_records:
                break
            for ch in P.ppg_channels(rec):
                flipped = dataclasses.replace(rec, signals={**rec.signals, ch: -np.asarray(rec.signals[ch], float)})
                rows.append({"dataset": rec.dataset, "record": rec.record_id, "channel": ch,
                             "fs": float(rec.fs[ch]), "duration_s": round(rec.duration(ch), 1),
                             "delivered": P.record_polarity(rec, ch).as_dict(),
                             "flipped": P.record_polarity(flipped, ch).as_dict()})
        print(f"ppg_polarity: {Path(path).name}: {time.time() - t:.0f} s", flush=True)
    return rows


def counts(rows: list[dict]) -> dict:
    """Per dataset: verdict counts as delivered and flipped."""
    out = {}
    for ds in sorted({r["dataset"] for r in rows}):
        rs = [r for r in rows if r["dataset"] == ds]
        out[ds] = {"channels": len(rs), **{side: dict(Counter(r[side]["verdict"] for r in rs))
                                           for side in ("delivered", "flipped")}}
    return out


def num(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:+.2f}"


def report(res: dict) -> str:
    from sqtool.data import polarity as P
    L = ["# PPG polarity: derivative skew on the stillest windows", "",
         f"`sqtool.data.polarity` at {res['git']}: windows of {P.WINDOW_S:g} s band-passed {P.BAND[0]:g}-"
         f"{P.BAND[1]:g} Hz; the {P.STILL_FRACTION:.0%} stillest (least accelerometer energy, else most periodic), "
         f"at least {P.MIN_WINDOWS}; verdict from their median skew (|skew| >= {P.MIN_SKEW:g}) and a "
         f"{P.MIN_AGREE:.0%} majority of the same sign. Flipped: the same samples times -1. "
         "A warning is printed for `inverted` only.", "",
         "## Per dataset (PPG channels; verdict counts)", "",
         "| dataset | channels | delivered: normal / inverted / undetermined | flipped: normal / inverted / undetermined |",
         "|---|---|---|---|"]
    for ds, c in res["counts"].items():
        f = lambda side: " / ".join(str(c[side].get(v, 0)) for v in VERDICTS)     # noqa: E731
        L.append(f"| {ds} | {c['channels']} | {f('delivered')} | {f('flipped')} |")
    L += ["", "## Per recording (those with at least 5 gap-free windows; `-`: fewer than 5 still ones)", "",
          "| dataset | record | channel | windows (used / of) | by | skew delivered | verdict | skew flipped | verdict |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        d, f = r["delivered"], r["flipped"]
        flag = lambda v: f"**{v}**" if v == "inverted" else v                       # noqa: E731
        L.append(f"| {r['dataset']} | {r['record']} | {r['channel']} | {d['windows']} / {d['of']} | "
                 f"{d['chosen_by']} | {num(d['skew'])} | {flag(d['verdict'])} | {num(f['skew'])} | "
                 f"{flag(f['verdict'])} |")
    L += ["", f"Wall time {res['wall_s']} s."]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", help="dataset folder (repeatable; default: every dataset folder of "
                                                    "the data root)")
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--max-records", type=int, default=0, help="per --data (0: all)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output folder")
    ap.add_argument("--name", default="ppg_polarity", help="output file stem")
    args = ap.parse_args(argv)
    from sqtool.core.runs import git_sha
    t0 = time.time()
    paths = args.data or sorted(str(p) for p in Path(data_root_or_exit(args.data_root, ap.error)).iterdir()
                                if p.is_dir() and not p.name.startswith("."))
    try:
        rows = measure(paths, args.max_records)
    except SqtoolError as e:
        print(f"ppg_polarity: {e}", file=sys.stderr)
        return 1
    from sqtool.data.polarity import MIN_WINDOWS
    res = {"git": git_sha(), "counts": counts(rows), "wall_s": round(time.time() - t0, 1),
           "rows": [r for r in rows if r["delivered"]["of"] >= MIN_WINDOWS]}      # too short to tell: counted only
    out = Path(args.out)
    write_metrics(out, res, name=f"{args.name}.json")
    atomic_write_text(out / f"{args.name}.md", report(res))
    print(f"ppg_polarity -> {out / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
