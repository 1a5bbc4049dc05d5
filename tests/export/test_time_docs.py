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
    teacher_doc = (runs / "et" / "INTEGRATION.md").read_text()
    assert "this export holds float models only: no int8 input" in teacher_doc and "from an int8 code" not in teacher_doc


def test_the_card_quotes_the_quantize_runs_table_and_verdicts(runs):
    m = json.loads((runs / "q" / "metrics.json").read_text())
    card = (runs / "e" / "MODEL_CARD.md").read_text()
    row = next(ln for ln in card.splitlines() if ln.startswith("| **student int8 (this export)**"))
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


def _stated(doc: str, pattern: str) -> str:
    found = re.search(pattern, doc)
    assert found, pattern
    return found.group(1)


def test_the_documents_steps_give_the_windows_predict_feeds(runs):
    """An integrator's implementation of INTEGRATION.md's steps 1-6, its filter and resampler calls and numbers read
    from the document's text, gives the windows `sqtool predict` / `bench` feed the network
    (`firmware_bench.stream.replay`) on a 125 Hz recording with a dropout, to float rounding."""
    from sqtool.data.record import Record
    from sqtool.firmware_bench.stream import StreamSpec, replay
    md = json.loads((runs / "e" / "metadata.json").read_text())
    doc = (runs / "e" / "INTEGRATION.md").read_text()
    sos = eval(_stated(doc, r"`sos = (scipy\.signal\.butter\([^`]*\))`"), {"scipy": scipy})   # noqa: S307
    padlen = int(_stated(doc, r"padlen=min\((\d+), len\(seg\) - 1\)"))
    pre, post = (float(_stated(doc, p)) for p in (r"plus the ([\d.]+) s of signal before it",
                                                 r"and the ([\d.]+) s\s+after it"))
    up, down = (int(v) for v in _stated(doc, r"125 Hz: (\d+ / \d+)").split(" / "))
    H, T = (int(v) for v in re.search(r"model-rate samples \[(\d+) i, \d+ i \+ (\d+)\)", doc).groups())
    fs = float(_stated(doc, r"\*\*Resample to ([\d.]+) Hz"))

    rng = np.random.default_rng(3)
    t = np.arange(int(125 * 75)) / 125.0
    x = 900 + 40 * np.sin(2 * np.pi * 1.3 * t) + 12 * np.sin(2 * np.pi * 0.2 * t) + rng.normal(0, 2, t.size)
    x[3000:3100] = np.nan                                                    # a 0.8 s dropout
    got = replay(Record("mine", "r1", "s1", {"ppg": x}, {"ppg": 125.0}), StreamSpec.from_model_cfg(md)).x[:, 0]

    held = x.copy()                                                          # step 1: hold the last good value
    for i in np.flatnonzero(~np.isfinite(held)):
        held[i] = held[i - 1] if i else 0.0
    y = scipy.signal.resample_poly(held - held[0], up, down) + held[0]       # steps 2-3
    mine = []
    for i in range(len(got)):
        a, b = max(0, H * i - int(round(pre * fs))), min(len(y), H * i + T + int(round(post * fs)))
        seg = scipy.signal.sosfiltfilt(sos, y[a:b], padlen=min(padlen, b - a - 1))   # step 4
        w = seg[H * i - a: H * i - a + T]                                     # step 5
        mine.append((w - w.min()) / (w.max() - w.min()))                      # step 6 (minmax)
    assert len(got) == 7 and np.abs(np.array(mine) - got).max() < 1e-5


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
