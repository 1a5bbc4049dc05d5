"""A fake hospital run for the export privacy tests (find_priv): a spectral quantize-like run whose checkpoint,
metrics.json and heldout.npz name patients by name and MRN, as a dataset.yaml with a subject column does."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sqtool.core.checkpoint import load_checkpoint, save_checkpoint

DS = "st_mary_cardiology"
IDS = ["DOE_JOHN_MRN004512", "ROE_RICHARD_MRN001199", "SMITH_JANE_MRN007731", "POE_EDGAR_MRN002222"]
TRAIN, HELD = [f"{DS}:{s}" for s in IDS[:3]], [f"{DS}:{IDS[3]}"]
LEAKS = ("MRN", "DOE_JOHN", "POE_EDGAR", "SMITH_JANE", "ROE_RICHARD")


def hospital_run(run: Path) -> Path:
    """A compress-like spectral run whose model.pt / metrics.json / heldout.npz name hospital patients, as
    `sqtool quantize` writes them for a dataset.yaml whose subject column holds names and MRNs."""
    from export_fixtures import make_spec_int8_run
    make_spec_int8_run(run, "spec_student_xs", n_heldout=6, n_calib=16)
    ck = load_checkpoint(run / "model.pt")
    save_checkpoint(run / "model.pt", **{k: v for k, v in ck.items() if k != "path"}, train_subjects=TRAIN,
                    heldout_subjects=HELD)
    with np.load(run / "heldout.npz") as z:
        x, y = z["x"], z["y"]
    np.savez(run / "heldout.npz", x=x, y=y, groups=np.array(HELD * len(x)),
             record_ids=np.array(["MRN_002222_2026-03-02"] * len(x)))
    per = {k: {HELD[0]: 11.99 + i} for i, k in enumerate(("int8", "float", "teacher", "int8_raw"))}
    (run / "metrics.json").write_text(json.dumps({
        "task": "hr", "heldout_subjects": HELD, "mae_bpm": {"int8": 11.99, "float": 12.99, "teacher": 13.99,
                                                              "int8_raw": 14.99}, "per_subject": per}))
    return run


def export_hospital(root: Path, **kw):
    """hospital_run under root/home/alice/runs/q and its export (ONNX, TFLite, C kit) written OUTSIDE the home folder
    by absolute paths (find_priv's second chain): (run, export folder, export result)."""
    from sqtool.export.cli import ExportConfig, export
    run = hospital_run(root / "home" / "alice" / "runs" / "q")
    res = export(ExportConfig(model=str(run.resolve()), out=str((root / "ship" / "kit").resolve()), device_fs=125,
                              progress=False, **kw))
    assert res["failed"] == [], res["summary"]
    return run, Path(res["out"]), res


def shipped_files(folder: Path) -> list[Path]:
    """Every file of an export folder, sorted."""
    return [p for p in sorted(folder.rglob("*")) if p.is_file()]
