"""A time-domain model's export (any task: windows of samples) ships MODEL_CARD.md and INTEGRATION.md, as a spectral
one does: the preprocessing an integrator must run before the network, stated with this model's numbers, reproduces
the windows `sqtool predict` feeds it (an independent implementation from the document's own calls); the card puts
the held-out table of every model beside the trivial predictor and the classic method with the skill verdicts read
from the quantize run, a fine-tune's figures as out of fold, and a float-only export says it has no int8 model
(tiny synthetic runs)."""
import json
import re

import numpy as np
import pytest
import scipy.signal  # noqa: F401  (the document's calls are evaluated with it)

from sqtool.cli import main

FINETUNE = ["train", "finetune", "--task", "af", "--data", "synthetic", "--model", "resnet1d_siamq_tiny", "--epochs",
            "1", "--max-records", "6", "--folds", "2", "--bootstrap", "20", "--progress", "false"]
QUANTIZE = ["quantize", "--epochs", "1", "--qat-epochs", "1", "--batch-size", "16", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An af teacher (the last of 6 synthetic subjects held out), its quantize run, the export of each (the int8
    student to every target, the float teacher to onnx, checked on the quantize run's held-out windows)."""
    d = tmp_path_factory.mktemp("time_docs")
    assert main(FINETUNE + ["--out", str(d / "t")]) == 0
    assert main(QUANTIZE + ["--model", str(d / "t"), "--out", str(d / "q")]) == 0
    assert main(["export", "--model", str(d / "q"), "--out", str(d / "e"), "--no-progress"]) == 0
    assert main(["export", "--model", str(d / "t" / "model.pt"), "--target", "onnx", "--heldout",
                 str(d / "q" / "heldout.npz"), "--out", str(d / "et"), "--no-progress"]) == 0
    return d


def test_every_time_domain_export_ships_its_card_and_integration_document(runs):
    for e in ("e", "et"):
        files = json.loads((runs / e / "manifest.json").read_text())["files"]
        names = {f["path"] if isinstance(f, dict) else f for f in files}
        assert {"MODEL_CARD.md", "INTEGRATION.md"} <= names, names
    md = json.loads((runs / "e" / "metadata.json").read_text())
    doc = (runs / "e" / "INTEGRATION.md").read_text()
    q = md["quantization"]
    assert f"q = clip(round(x' / {q['input_scale']:.9g}) + {q['input_zero_point']}, -128, 127)" in doc
    oq = md["output_quantization"][0]
    assert f"`logit_af`: a logit; p(AF) = 1 / (1 + exp(-logit)); from an int8 code (TFLite int8, C): value = " \
           f"{oq['scale']:.9g} x (code - {oq['zero_point']:.6g})" in doc
    assert "@" not in doc.replace("`@", "")                                      # every placeholder filled
    assert (runs / "e" / "model_float_batch.onnx").is_file() and \
        "model_float_batch.onnx `x` (B, 1, 400): the float ONNX with a batch axis, many windows per call" in doc
    teacher_doc = (runs / "et" / "INTEGRATION.md").read_text()
    assert "model_float.onnx `x` (1, 1, 400) channels-first float32" in teacher_doc   # the files it holds: onnx
    for absent in ("model_int8", "model_float.tflite", "int8 codes q =", "from an int8 code", "`--runtime onnx`"):
        assert absent not in teacher_doc, absent
    assert "with `--runtime onnx_float` (model_float.onnx) (the model files this folder holds)" in " ".join(
        teacher_doc.split())


def test_the_card_quotes_the_quantize_runs_table_and_verdicts(runs):
    m = json.loads((runs / "q" / "metrics.json").read_text())
    card = (runs / "e" / "MODEL_CARD.md").read_text()
    row = next(ln for ln in card.splitlines() if ln.startswith("| **student int8** (this folder: c/sq_model.h, "
                                                                "model_int8.onnx, model_int8.tflite) |"))
    f1 = m["student_int8"]["metrics"]["f1_weighted"]
    assert f" {f1:.3f} " in row
    assert "| trivial predictor (the training subjects' base rate) |" in card
    held = m["heldout_subjects"]
    assert f"Held-out subjects ({len(held)}: synthetic:{held[0]};" in card
    if m.get("heldout_one_class"):                 # a synthetic subject's windows of one rhythm: said, not hidden
        assert f"These figures are no measure of skill: {m['heldout_one_class']}" in card
    assert "af: student int8 auroc model" in card
    teacher_card = (runs / "et" / "MODEL_CARD.md").read_text()
    assert "## Out-of-fold metrics (the training subjects)" in teacher_card and "scored by `sqtool quantize`" in teacher_card
    assert "float32 weights (a float-only export: no int8 model)" in teacher_card
    assert "labels: the generator's own" in card and "reference heart rate" not in card       # an af model's labels


def _stated(doc: str, pattern: str) -> str:
    found = re.search(pattern, doc)
    assert found, pattern
    return found.group(1)


def doc_windows(doc: str, x: np.ndarray, fs_dev: float, n: int) -> np.ndarray:
    """An integrator's steps 1-7 of INTEGRATION.md for one channel at fs_dev Hz: every call and number read from the
    document's text (the butter call, padlen, context in samples, resample ratio, window indices, normalisation,
    the tiling length), windows 0..n-1."""
    fs = float(_stated(doc, r"\*\*Resample to ([\d.]+) Hz"))
    H, T = (int(v) for v in re.search(r"model-rate samples \[(\d+) i, \d+ i \+ (\d+)\)", doc).groups())
    if "is repeated end to end at the device rate" in doc and len(x) < T / fs * fs_dev:   # step 7
        win = float(_stated(doc, r"cut to ceil\(([\d.]+) x fs_device\) \+ 1 samples"))
        need = int(np.ceil(win * fs_dev)) + 1
        x = np.tile(x, -(-need // len(x)))[:need]
    held = x.copy()                                                          # step 1: hold the last good value
    for i in np.flatnonzero(~np.isfinite(held)):
        held[i] = held[i - 1] if i else 0.0
    up, down = (int(v) for v in _stated(doc, rf"{fs_dev:g} Hz: (\d+ / \d+)").split(" / "))
    y = scipy.signal.resample_poly(held - held[0], up, down) + held[0]       # steps 2-3
    sos = eval(_stated(doc, r"`sos = (scipy\.signal\.butter\([^`]*\))`"), {"scipy": scipy})   # noqa: S307
    padlen = int(_stated(doc, r"padlen=min\((\d+), len\(seg\) - 1\)"))
    pre, post = (int(_stated(doc, p)) for p in (r"plus the (\d+) samples \([\d.]+ s\) before it",
                                               r"and the (\d+) samples \([\d.]+ s\) after it"))
    out = []
    for i in range(n):
        a, b = max(0, H * i - pre), min(len(y), H * i + T + post)
        seg = scipy.signal.sosfiltfilt(sos, y[a:b], padlen=min(padlen, b - a - 1))     # step 4
        w = seg[H * i - a: H * i - a + T]                                     # step 5
        if "x' = (x - min) / (max - min)" in doc:                            # step 6
            out.append((w - w.min()) / (w.max() - w.min()))
        else:
            assert "x' = (x - mean) / std (numpy's std, ddof 0)" in doc
            out.append((w - w.mean()) / w.std())
    return np.array(out)


@pytest.mark.parametrize("case", ["af export", "rr-like: 0.1-2 Hz at 10 Hz, zscore", "a short recording, tiled"])
def test_the_documents_steps_give_the_windows_predict_feeds(runs, tmp_path, case):
    """An integrator's implementation of INTEGRATION.md (`doc_windows`: its calls and numbers read from the
    document's text) gives the windows `sqtool predict` / `bench` feed the network (`firmware_bench.stream.replay`,
    after predict's `tile_record` for a short recording), to float rounding: the af export's document on a 125 Hz
    recording with a dropout; a document written for a low band (a longer filter context), zscore and another rate;
    a recording shorter than the window."""
    from sqtool.data.record import Record, tile_record
    from sqtool.export.time_docs import write_integration
    from sqtool.firmware_bench.stream import StreamSpec, replay
    md = json.loads((runs / "e" / "metadata.json").read_text())
    rng = np.random.default_rng(3)
    fs_dev, seconds = (125.0, 75.0) if case != "a short recording, tiled" else (100.0, 7.3)
    if case.startswith("rr-like"):
        md.update(band=[0.1, 2.0], fs=10.0, window_s=30.0, hop_s=10.0, norm="zscore", short_records="refuse")
    t = np.arange(int(fs_dev * seconds)) / fs_dev
    x = 900 + 40 * np.sin(2 * np.pi * 1.3 * t) + 12 * np.sin(2 * np.pi * 0.2 * t) + rng.normal(0, 2, t.size)
    if case == "af export":
        x[3000:3100] = np.nan                                                # a 0.8 s dropout
    rec = Record("mine", "s1", "r1", {"ppg": x}, {"ppg": fs_dev})
    if case == "a short recording, tiled":
        rec = tile_record(rec, float(md["window_s"]))                         # as predict fills it
    got = replay(rec, StreamSpec.from_model_cfg(md)).x[:, 0]
    doc = write_integration(tmp_path, md["model_cfg"], md, set(), None).read_text()
    mine = doc_windows(doc, x, fs_dev, len(got))
    assert len(got) == {"af export": 7, "a short recording, tiled": 1}.get(case, 5)
    assert np.abs(mine - got).max() < 1e-5


@pytest.mark.parametrize("task", ["hr", "rr", "af", "bp", "quality", "spo2"])
def test_each_output_is_read_in_its_unit_or_as_a_probability(task):
    """Every task's outputs, a regression student's quality head and a custom label included: a unit for a value,
    a probability and its threshold for a logit, each int8 code's affine."""
    from sqtool.data.tasks import QUALITY_OUTPUT, TASK_SPECS
    from sqtool.export.time_docs import output_lines
    spec = TASK_SPECS.get(task, {"outputs": ("spo2",), "units": ("%",), "kind": "regression"})
    outputs, units = list(spec["outputs"]), list(spec["units"])
    if spec["kind"] == "regression":
        outputs, units = outputs + [QUALITY_OUTPUT], units + ["logit"]
    md = {"task": task, "outputs": outputs, "units": units,
          "output_quantization": [{"name": n, "scale": 0.5, "zero_point": 3.0} for n in outputs]}
    lines = output_lines(md)
    assert len(lines) == len(outputs)
    for name, unit, line in zip(outputs, units, lines):
        assert line.startswith(f"- `{name}`: ") and "value = 0.5 x (code - 3)" in line
        if name == QUALITY_OUTPUT:
            assert "p(good) = 1 / (1 + exp(-logit))" in line and f"`{outputs[0]}` can be trusted" in line
        elif unit == "logit":
            assert f"p({'AF' if task == 'af' else 'good'}) = 1 / (1 + exp(-logit))" in line and "p > 0.5" in line
        else:
            assert f"in {unit} " in line


def _skill(diff, lo, hi, p, n, model, ref, better="lower", metric="mae"):
    return {"metric": metric, "better": better, "model": model, "reference": ref, "diff": diff,
            "diff_ci95": [lo, hi], "p": p, "subjects": n, "skill": p < 0.05 and hi < 0, "flag": ""}


def test_the_card_of_a_bp_student_says_what_its_figures_can_and_cannot_show(tmp_path):
    """A quantize run of a two-output regression (bp) on 3 held-out subjects, its quality head, an int8 output range
    narrower than the labels, a dataset whose terms grant no redistribution: the card's MAE per output in its unit,
    the verdicts (skill where shown, NO SKILL said to mean 'not shown' with 3 subjects), the fine-tune's own
    verdict on the teacher, the quality head's kept-window MAEs, the range the int8 codes can report and the terms
    of the parity windows it ships."""
    from types import SimpleNamespace

    from sqtool.export.time_docs import time_model_card
    sk = {"trivial": {"mae_sbp": 14.0, "mae_dbp": 9.0, "mae": 11.5},
          "classic": {"name": None, "why": "no classic method for bp"},
          "models": {"teacher": {"skill": _skill(-1.0, -2.0, -0.1, 0.04, 3, 10.5, 11.5),
                                 "spread": {"pred_std": [8.0, 5.0], "target_std": [15.0, 9.0]}},
                     "student_float": {"skill": _skill(0.5, -3.0, 4.0, 0.6, 3, 12.0, 11.5),
                                       "spread": {"pred_std": [None, 4.0], "target_std": [15.0, 9.0]}},
                     "student_int8": {"skill": _skill(0.7, -3.1, 4.5, 0.62, 3, 12.2, 11.5),
                                      "spread": {"pred_std": [6.0, 4.1], "target_std": [15.0, 9.0]}}}}
    m = {"task": "bp", "primary_metric": "mae", "heldout_subjects": ["a", "b", "c"], "heldout_windows": 9,
         "heldout_in_teacher": False, "units": ["mmHg", "mmHg"], "skill": sk,
         **{k: {"metrics": {"mae_sbp": 14.0 + i, "mae_dbp": 8.0 + i, "mae": 11.0 + i}}
            for i, k in enumerate(("teacher", "student_float", "student_int8"))},
         "coverage": {"by_coverage": [{"coverage": 1.0, "mae": 13.0}, {"coverage": 0.8, "mae": 11.0}],
                      "by_threshold": [{"threshold": 0.5, "coverage": 0.9, "mae": 12.0}]},
         "quality_head": {"label": "teacher_error", "teacher_err_threshold": 10.0, "poor_fraction_train": 0.2}}
    (tmp_path / "metrics.json").write_text(json.dumps(m))
    md = {"task": "bp", "fs": 40.0, "window_s": 8.0, "hop_s": 8.0, "channels": ["ppg"], "band": [0.5, 8.0],
          "norm": "minmax", "outputs": ["sbp", "dbp", "quality_logit"], "units": ["mmHg", "mmHg", "logit"],
          "checkpoint_kind": "student_int8", "quant_scheme": "int8", "quant_description": "int8",
          "teacher_skill": _skill(2.0, 1.0, 3.0, 0.01, 40, 13.5, 11.5),
          "training_data": {"datasets": ["ppg_arrhythmia"], "train_subjects": ["ppg_arrhythmia:x"],
                            "heldout_subjects": ["ppg_arrhythmia:a", "ppg_arrhythmia:b", "ppg_arrhythmia:c"]},
          "output_quantization": [{"name": "sbp", "unit": "mmHg", "scale": 0.5, "zero_point": -240.0},
                                  {"name": "dbp", "unit": "mmHg", "scale": 0.4, "zero_point": -200.0},
                                  {"name": "quality_logit", "unit": "logit", "scale": 0.05, "zero_point": 0.0}]}
    card = time_model_card({"name": "s", "family": "cnn1d_student", "arch": {}}, md,
                           SimpleNamespace(macs=1, weight_bytes=2), tmp_path, None,
                           {"model_int8.onnx", "model_float.onnx"}, "heldout.npz")
    flat = " ".join(card.split())
    assert "| model | mae_sbp (mmHg) | mae_dbp (mmHg) | mae (mmHg) | vs trivial (95 % CI, p) | prediction std |" in card
    # a stored "skill" over 3 held-out subjects: fewer than FEW_SUBJECTS cannot show it (`too_few_subjects`)
    assert "| teacher float | 14.000 | 8.000 | 11.000 | -1.000 [-2.000, -0.100], p 0.04: **NO SKILL** | 8, 5 |" in card
    assert "| **student int8** (this folder: model_int8.onnx) | 16.000 | 10.000 | 13.000 | +0.700 [-3.100, +4.500], " \
           "p 0.62: **NO SKILL** | 6, 4.1 |" in card
    assert "| **student float** (this folder: model_float.onnx) |" in card and "| -, 4 |" in card   # a NaN spread
    assert "With 3 subjects held out that interval is wide: NO SKILL below means skill was not shown" in flat
    assert "(the targets' std on these windows: 15, 9)" in flat
    assert "scored its fold models out of fold over its 40 training subjects (`metadata.json` teacher_skill): mae " \
           "13.500 against the trivial 11.500, **worse than the trivial predictor** (the 95 % CI of the difference " \
           "excludes 0); the teacher row above is its final model on the held-out subjects" in flat
    assert "trained to call a window poor on the teacher's error above 10 mmHg; 20.0 % of the training windows " \
           "were) on the held-out windows, its `sbp` MAE keeping the windows it trusts most: 100 % 13, 80 % 11 mmHg; " \
           "at p(good) > 0.5 it keeps 90 % (MAE 12 mmHg)" in flat
    assert "**Here the windows it trusts most are no better than all of them" not in flat     # 13 -> 11: they are
    assert "Keeping the windows it trusts most lowers the error here." in flat
    assert "subject data; ppg_arrhythmia: public ids (`export --subjects pseudonyms` writes pseudonyms)." in flat
    assert "The int8 model reports `sbp` between 56 and 183.5 mmHg only" in flat
    assert "`dbp` between 28.8 and 130.8 mmHg" in flat and "`quality_logit` between" not in flat
    assert "`ppg_arrhythmia` grants no redistribution (above): check them before this folder leaves" in flat
    assert "labels: the rhythm of each segment" in flat


@pytest.mark.parametrize("metrics", [{"student_int8": {"metrics": {"mae": 1.0}}},            # no task
                                     {"task": "rr", "student_int8": {"metrics": None}, "skill": []},
                                     {"task": "af", "metrics": {"auroc": 0.5}, "skill": {"skill": {"metric": 1}}}])
def test_a_metrics_file_of_another_layout_gives_a_card_not_a_failed_export(tmp_path, metrics):
    from sqtool.export.time_docs import time_model_card
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    md = {"task": "rr", "fs": 40.0, "window_s": 30.0, "hop_s": 10.0, "channels": ["ppg"], "band": [0.5, 8.0],
          "norm": "minmax", "outputs": ["rr_bpm"], "units": ["breaths/min"]}
    card = time_model_card({"name": "s", "family": "cnn1d_student", "arch": {}}, md, None, tmp_path)
    assert "## Limitations" in card
    assert "## Held-out metrics" in card or "## Out-of-fold metrics" in card


def test_an_af_card_says_when_its_threshold_is_unusable_and_skill_is_not_shown(tmp_path):
    """2 held-out subjects, an int8 student better than the trivial predictor on AUROC but with the trivial F1 at
    p > 0.5 (an audit: it called AF on 0.2 % of windows against 67 % true AF): its verdict reads 'not shown', and
    the card says not to ship the 0.5 threshold."""
    from sqtool.export.time_docs import time_model_card
    good = _skill(0.306, -0.369, 0.981, 0.109, 2, 0.806, 0.5, better="higher", metric="auroc")
    m = {"task": "af", "heldout_subjects": ["a", "b"], "heldout_windows": 474, "heldout_in_teacher": False,
         "units": ["logit"], "student_int8": {"metrics": {"auroc": 0.806, "f1_weighted": 0.159, "accuracy": 0.32}},
         "skill": {"trivial": {"auroc": 0.5, "f1_weighted": 0.159, "accuracy": 0.325},
                   "models": {"student_int8": {"skill": good, "spread": {"pred_std": [0.1]}}}}}
    (tmp_path / "metrics.json").write_text(json.dumps(m))
    md = {"task": "af", "fs": 40.0, "window_s": 10.0, "hop_s": 10.0, "channels": ["ppg"], "band": [0.5, 8.0],
          "norm": "minmax", "outputs": ["logit_af"], "units": ["logit"], "checkpoint_kind": "student_int8"}
    flat = " ".join(time_model_card({"name": "s", "family": "cnn1d_student", "arch": {}}, md, None, tmp_path,
                                    files={"model_int8.onnx"}).split())
    assert "af: student int8 auroc model 0.806 vs trivial 0.500 (difference +0.306, 95 % CI -0.369, +0.981, " \
           "p 0.109): NO SKILL shown (2 subjects cannot show it: more subjects)" in flat
    assert "With 2 subjects held out that interval is wide: NO SKILL below means skill was not shown" in flat
    assert "**At the p > 0.5 threshold the int8 student's F1 (0.159) is no better than the trivial predictor's " \
           "(0.159)** although its AUROC is 0.806" in flat and "Do not ship it with that threshold" in flat


def test_the_cards_other_branches(tmp_path):
    """A final fit without an estimate run; a quality head whose most-trusted windows are worse (do not gate on it)
    and one whose coverage lacks a value (no verdict, no crash); a private dataset's windows shipped under its ids
    (`--subjects names`); predict's flagged share is the bench tracker's."""
    from sqtool.export.time_docs import FLAGGED, quality_lines, time_model_card
    from sqtool.data.hr_tracker import MAX_FLAGGED
    assert FLAGGED == MAX_FLAGGED
    md = {"task": "rr", "fs": 40.0, "window_s": 30.0, "hop_s": 10.0, "channels": ["ppg"], "band": [0.5, 8.0],
          "norm": "minmax", "outputs": ["rr_bpm", "quality_logit"], "units": ["breaths/min", "logit"],
          "training_data": {"datasets": ["my_icu"], "train_subjects": ["my_icu:p1"], "heldout_subjects": []}}
    (tmp_path / "metrics.json").write_text(json.dumps({"task": "rr", "final_fit": True, "estimate": None}))
    flat = " ".join(time_model_card({"name": "s", "family": "cnn1d_student", "arch": {}}, md, None, tmp_path,
                                    parity="parity.npz").split())
    assert "- none: this model is a final fit on every subject" in flat
    assert "holds preprocessed windows of the training subjects, for the parity check: subject data; my_icu: the " \
           "subjects' own ids, as you exported them (`--subjects names`)." in flat
    worse = {"coverage": {"by_coverage": [{"coverage": 1.0, "mae": 2.2}, {"coverage": 0.8, "mae": 2.3}]},
             "quality_head": None}
    line = " ".join(quality_lines(worse, md))
    assert "do not gate on it" in line and "how many were: not recorded" in line
    gap = {"coverage": {"by_coverage": [{"coverage": 1.0, "mae": 2.2}, {"coverage": 0.8, "mae": None}]}}
    line = " ".join(quality_lines(gap, md))
    assert "100 % 2.2 breaths/min." in line and "gate" not in line and "lowers" not in line


def test_the_exports_last_line_points_at_the_integration_document(runs):
    """A time-domain export's `next:` line names INTEGRATION.md: beside its C (the preprocessing the network needs
    before it) and, for an export without C, with the predict command that checks an implementation."""
    from sqtool.export.cli import next_step
    for e, says in (("e", f"/c/*.c into the firmware (API in sq_model.h); the preprocessing it needs before it: "
                          f"{runs / 'e' / 'INTEGRATION.md'}"),
                    ("et", f"next: run it as {runs / 'et' / 'INTEGRATION.md'} says, and check your implementation "
                           f"against sqtool predict --model {runs / 'et'} --data RECORDINGS")):
        md = json.loads((runs / e / "metadata.json").read_text())
        last = next_step({"out": runs / e, "failed": [], "metadata": md}).splitlines()[-1]
        assert says in last, last
