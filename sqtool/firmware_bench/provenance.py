"""Which model a result comes from, which subjects it was trained on, and the warnings of bench / predict.

    prov = model_provenance(art, "model_int8.tflite")   # the block naming the model: bench.json, summary.json
    seen = training_subjects(art)                  # {"dataset:subject", ...} or None when not recorded
    both, w = seen_warning(scored_subjects, seen)  # scored subjects seen in training, one line or None
    w = synthetic_warning(run_subjects, seen)      # a synthetic-only model run on other recordings, or None
    both, lines = provenance_warnings(art, scored_subjects, run_subjects)   # the two, as bench and predict print

The export's manifest names its source checkpoints (`core.manifest`, sha256 checked); the int8 student's
model.pt records `train_subjects` / `heldout_subjects` (written by `sqtool quantize`). A subject scored by
the bench that the student was trained on gives an optimistic MAE: the bench says so in its table.
Subject keys are "dataset:subject" on both sides (`HrRecording.key`, `SpecRec.subject`).
"""
from __future__ import annotations

import sys

from sqtool.core import SqtoolError
from sqtool.core.manifest import TamperedArtifact


def model_provenance(art, model_file: str | None = None) -> dict:
    """The block that names the model behind a result, `provenance` in bench.json and predict's summary.json:
    the code that ran (sqtool_version, git_sha with -dirty), the model (model_sha256: its content id from the
    export's metadata, the same for every rebuild of the same weights; None for an export made before it was
    recorded; source_sha256: the source checkpoint file's hash; export_git_sha: the code that exported it), the
    export folder and its manifest's hash; with `model_file` (the artifact a runtime read), that file's sha256."""
    from sqtool import __version__
    from sqtool.core import git_sha, sha256_file_cached
    md = art.metadata
    prov = {"sqtool_version": __version__, "git_sha": git_sha(), "model": md.get("model"),
            "model_sha256": md.get("model_sha256"), "source_sha256": md.get("source_sha256"),
            "export_git_sha": md.get("git_sha"), "quant_scheme": md.get("quant_scheme"),
            "model_dir": str(art.export_dir), "manifest_sha256": sha256_file_cached(art.manifest.path)}
    if model_file is not None:
        prov.update(model_file=model_file, model_file_sha256=art.manifest.files[model_file]["sha256"])
    return prov


def model_id_text(prov: dict) -> str:
    """The model's ids as a report header says them: "model_sha256 3f2a... (checkpoint file a6a0...)"."""
    sha, src = prov.get("model_sha256"), str(prov.get("source_sha256") or "?")[:16]
    return (f"model_sha256 {sha[:16]} (checkpoint file {src})" if sha else
            f"model_sha256 not recorded (an export older than it; checkpoint file {src})")


def training_subjects(art) -> set[str] | None:
    """The student's training subjects, or None (not recorded / unreadable): from metadata.json's training_data
    (written by `sqtool export` from that checkpoint), else (an older export) from the checkpoint itself. An export
    that writes a dataset's subjects as pseudonyms (`export --subjects`, the default for a user's own data) names
    them from its source checkpoint when that is beside it (in-house), else from its other datasets only, said in
    one `note:` line. A checkpoint changed since the export (TamperedArtifact) is not the export's: None, said in
    one `note:` line on stderr (the "seen in training" check cannot be made), never silently; it stops only a
    runtime that runs it."""
    recorded = (getattr(art, "metadata", None) or {}).get("training_data")
    hidden = set((recorded or {}).get("pseudonymised") or ())
    if recorded is not None and not hidden:
        return {str(s) for s in recorded.get("train_subjects") or ()}
    subs = _checkpoint_subjects(art)
    if subs is not None or not hidden:
        return subs
    print(f"note: the export names its training subjects of {', '.join(sorted(hidden))} by pseudonym and its source "
          "checkpoint is not beside it: cannot tell whether these recordings' subjects were seen in training "
          f"(pass --{_source_key(art).replace('_', '-')} CHECKPOINT, or export with --subjects names)", file=sys.stderr)
    return {str(s) for s in recorded.get("train_subjects") or () if str(s).split(":")[0] not in hidden} or None


def _source_key(art) -> str:
    """The source checkpoint the exported model is: the int8 student of a quantized model; for a float-only export
    (a front-end model's fine-tune, rr_spec / af_beats: its teacher_task checkpoint), the source whose sha256 is
    metadata.json's source_sha256."""
    sources = (getattr(getattr(art, "manifest", None), "data", None) or {}).get("sources") or {}
    if "student_int8" in sources or "student_int8" in getattr(art, "overrides", {}):
        return "student_int8"
    sha = (getattr(art, "metadata", None) or {}).get("source_sha256")
    for key in ("student_float", "teacher"):
        if sha and (sources.get(key) or {}).get("sha256") == sha:
            return key
    return "student_int8"


def _checkpoint_subjects(art) -> set[str] | None:
    """The exported model's checkpoint's train_subjects (`_source_key`: in-house, found beside the export through
    its manifest, or given with --student-int8 / --teacher), or None."""
    try:
        p = art.checkpoint(_source_key(art))                   # the option naming it, else the manifest's
    except TamperedArtifact as e:
        print(f"note: {e}; the subjects it was trained on are unknown, so no 'seen in training' check",
              file=sys.stderr)
        return None
    except SqtoolError:                                          # MissingArtifact: a folder copied without its run
        return None
    if p is None or not p.is_file():
        return None
    try:
        from sqtool.core.checkpoint import load_checkpoint
        ck = load_checkpoint(p)
    except (SqtoolError, ImportError):
        return None
    subs = ck.get("train_subjects")
    return None if subs is None else {str(s) for s in subs}


def seen_warning(scored: set[str] | list[str], seen: set[str] | None) -> tuple[list[str], str | None]:
    """(scored subjects the model was trained on, the warning line or None)."""
    if not seen:
        return [], None
    both = sorted(set(map(str, scored)) & seen)
    if not both:
        return [], None
    return both, (f"WARNING: {len(both)} of {len(set(scored))} scored subjects were seen in training "
                  f"({', '.join(both[:6])}{', ...' if len(both) > 6 else ''}): their accuracy is optimistic; score "
                  "held-out subjects only (metadata.json's training_data.heldout_subjects; a final fit trained on every subject: "
                  "its model card quotes its recipe's held-out estimate)")


def synthetic_warning(run: set[str] | list[str], seen: set[str] | None) -> str | None:
    """One line when a model trained on synthetic PPG alone (`sqtool demo`'s embedded default) is run on
    recordings of any other dataset (a real device's, whose PPG it was never shown); None otherwise (or when its
    training is not recorded)."""
    if not seen or not all(s.startswith("synthetic:") for s in seen):
        return None
    from sqtool.core.metrics import datasets_of
    real = [d for d in datasets_of(run) if d != "synthetic"]
    if not real:
        return None
    return (f"WARNING: this model was trained on synthetic PPG only ({len(seen)} generated subjects, sqtool demo's "
            f"embedded default) and is run on other recordings ({', '.join(real)}): its heart rates and confidence "
            "there are not validated; train on real data (sqtool demo --data ../shared/data, or your dataset file)")


def no_skill_warning(metadata: dict) -> str | None:
    """One WARNING line when the model's teacher did not beat the trivial predictor in fine-tuning (metadata
    "teacher_skill", from the quantize run, time-domain and spectral alike): its outputs may sit near one constant
    whatever the recording. A spectral model's test pools the windows (its fine-tune's headline averages subjects):
    the line says 'pooled mae', as the fine-tune's own verdict line does."""
    from sqtool.core.metrics import skill_line, skill_unit
    s = metadata.get("teacher_skill") or {}
    if s.get("skill") is not False:
        return None
    label = f"pooled {s.get('metric')}" if metadata.get("bins_bpm") else ""
    verdict = skill_line(str(metadata.get("task", "model")), s, label,
                         skill_unit(s.get("metric"), metadata.get("units")))
    return (f"WARNING: this model's teacher in fine-tuning: {verdict}; its outputs may be near one constant whatever "
            "the recording")


def provenance_warnings(art, scored, run) -> tuple[list[str], list[str]]:
    """(scored subjects seen in training, the warning lines) for an export `art` run on the subjects `run`, of
    which `scored` have truth: what `sqtool bench` and `sqtool predict` print and put in their reports."""
    seen = training_subjects(art)
    both, w = seen_warning(scored, seen)
    return both, [x for x in (w, synthetic_warning(run, seen), no_skill_warning(art.metadata)) if x]


__all__ = ["model_provenance", "model_id_text", "training_subjects", "seen_warning", "synthetic_warning",
           "no_skill_warning", "provenance_warnings"]
