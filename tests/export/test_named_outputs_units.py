"""Time-domain models describe their outputs: one tensor per output name (`hr_bpm`, `quality_logit`), in units.

On the full export of a small trained student (tests/export/conftest.py): the ONNX graphs' outputs and the
TFLite signature's output keys are the config's output names; the float ONNX / TFLite and the int8 ONNX emit
BPM (the PyTorch student's normalised output * target_std + target_mean, the affine folded into the last
layer of the float models); metadata.json's `output_quantization` maps the int8 codes of the TFLite / C model
to BPM; `sqtool bench` gives the same MAE from the float ONNX as from the PyTorch student. A resnet1d
teacher's float ONNX is named and in BPM the same way. Spectral models keep `spectra` -> `hr_logits`
(tests/export/test_tflite_signature_metadata.py).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sqtool.export import onnx as O
from sqtool.export import tflite as TF
from sqtool.export.metadata import affine_text, codes_to_units, from_units, output_affine, to_units
from sqtool.models import create_model, get_model_cfg
from sqtool.core.checkpoint import load_checkpoint

NAMES = ["hr_bpm", "quality_logit"]


def _torch_units(run, x, md):
    from sqtool.models import load_model
    f = load_model(load_checkpoint(run / "student_float.pt"))
    with torch.no_grad():
        return to_units(f(torch.as_tensor(x)).numpy(), md)


def test_onnx_outputs_are_named_from_the_config(full_export):
    import onnx
    out = full_export["out"]
    for f in ("model_float.onnx", "model_float_batch.onnx", "model_int8.onnx"):
        g = onnx.load(str(out / f)).graph
        assert [o.name for o in g.output] == NAMES, f
        assert [i.name for i in g.input] == ["x"], f
        # no unused initializers left by the wrapper
        used = {i for n in g.node for i in n.input}
        assert not [t.name for t in g.initializer if t.name not in used], f


def test_tflite_signature_output_keys(full_export):
    for f in ("model_float.tflite", "model_int8.tflite"):
        it = TF.litert_interpreter(full_export["out"] / f)
        sig = it.get_signature_list()["serving_default"]
        assert sig["inputs"] == ["input"] and sorted(sig["outputs"]) == sorted(NAMES), f
        x = np.zeros(it.get_input_details()[0]["shape"], it.get_input_details()[0]["dtype"])
        got = it.get_signature_runner("serving_default")(input=x)
        assert sorted(got) == sorted(NAMES) and all(v.shape == (1, 1) for v in got.values()), f


def test_float_onnx_emits_bpm_equal_to_the_torch_student(full_export, int8_run):
    from export_fixtures import synthetic_windows
    out, md = full_export["out"], full_export["metadata"]
    x, y = synthetic_windows(get_model_cfg(md["model"]), 6, seed=11)          # fresh synthetic windows
    want = _torch_units(int8_run, x, md)
    assert np.abs(want[:, 0] - (_raw_torch(int8_run, x)[:, 0] * 40.0 + 120.0)).max() < 1e-3   # the registry's affine
    for f in ("model_float.onnx", "model_float_batch.onnx"):
        got = O.run(out / f, x, batch=1 if f == "model_float.onnx" else len(x))
        assert got.shape == (len(x), 2)
        assert np.abs(got - want).max() < 1e-3, f
        assert (got[:, 0] > 20).all() and (got[:, 0] < 260).all(), got[:, 0]          # BPM, not ~N(0, 1)
    tfl = TF.run_litert(out / "model_float.tflite", x.transpose(0, 2, 1)[:, None])
    assert np.abs(tfl - want).max() < 1e-3
    mae = np.abs(got[:, 0] - y[:, 0]).mean()                                 # and it tracks the truth somewhat
    assert mae < 60.0, mae


def _raw_torch(run, x):
    from sqtool.models import load_model
    f = load_model(load_checkpoint(run / "student_float.pt"))
    with torch.no_grad():
        return f(torch.as_tensor(x)).numpy()


def test_int8_onnx_emits_bpm_and_metadata_maps_codes_to_bpm(full_export, int8_run):
    out, md = full_export["out"], full_export["metadata"]
    x = np.load(int8_run / "heldout.npz")["x"][:8]
    q = md["quantization"]
    s, z = float(q["output_scale"]), int(q["output_zero_point"])
    xq = np.stack([np.clip(np.round(xi / q["input_scale"]), -128, 127) for xi in x]).astype(np.int8)
    codes = TF.run_tflm(out / "model_int8.tflite", xq.transpose(0, 2, 1)[:, None])         # (N, 2) int8
    assert codes.dtype == np.int8 and codes.shape == (8, 2)
    # metadata.json's per-output scale / zero point: BPM = scale * (code - zero_point)
    oq = {o["name"]: o for o in md["output_quantization"]}
    assert list(oq) == NAMES and oq["hr_bpm"]["unit"] == "bpm"
    assert oq["hr_bpm"]["scale"] == pytest.approx(s * 40.0) and oq["hr_bpm"]["zero_point"] == pytest.approx(z - 120.0 / (s * 40.0))
    bpm = oq["hr_bpm"]["scale"] * (codes[:, 0].astype(np.float64) - oq["hr_bpm"]["zero_point"])
    want = (codes[:, 0].astype(np.float64) - z) * s * 40.0 + 120.0           # the normalised route, by hand
    assert np.abs(bpm - want).max() < 1e-9
    assert np.abs(codes_to_units(codes, md)[:, 0] - want).max() < 1e-9
    assert oq["quality_logit"]["scale"] == pytest.approx(s) and oq["quality_logit"]["zero_point"] == pytest.approx(z)
    # the int8 ONNX's float outputs are those BPM (within an output LSB of the double-rounding TFLM codes)
    onnx_bpm = O.run(out / "model_int8.onnx", x, batch=1)
    assert np.abs(onnx_bpm[:, 0] - bpm).max() <= 3 * oq["hr_bpm"]["scale"] + 1e-6
    assert np.abs(from_units(onnx_bpm, md)[:, 0] / s - (codes[:, 0] - z)).max() <= 3.0 + 1e-6
    # the same map in the file's own descriptions (TFLite standard metadata, C header)
    desc = dict(TF.read_standard_metadata(out / "model_int8.tflite")["outputs"])
    assert f"value = {affine_text(oq['hr_bpm'])}" in desc["hr_bpm"]
    assert f"hr_bpm: {affine_text(oq['hr_bpm'], 'q[0]')} bpm" in (out / "c" / "sq_model.h").read_text()
    assert "output_quantization" in TF.read_metadata(out / "model_int8.tflite")
    for f in ("model_float.onnx", "model_float.tflite"):                     # float files: no int8 metadata
        fmd = O.read_metadata(out / f) if f.endswith(".onnx") else TF.read_metadata(out / f)
        assert "output_quantization" not in fmd and "units" in fmd["output_note"]


def test_affine_text():
    assert affine_text({"scale": 0.5, "zero_point": -3.25}) == "0.5 * (q - (-3.25))"
    assert affine_text({"scale": 0.5, "zero_point": 2.0}, "q[1]") == "0.5 * (q[1] - 2)"


def test_output_affine_defaults_and_refusal():
    md = {"outputs": ["hr_bpm", "quality_logit"], "target_mean": [120.0], "target_std": [40.0]}
    sc, off = output_affine(md)
    assert list(sc) == [40.0, 1.0] and list(off) == [120.0, 0.0]
    y = np.array([[0.5, -2.0]])
    assert np.allclose(to_units(y, md), [[140.0, -2.0]]) and np.allclose(from_units(to_units(y, md), md), y)
    assert np.allclose(to_units(np.ones((2, 134)), {"outputs": ["hr_logits"]}), 1.0)      # spectral: identity
    from sqtool.core import SqtoolError
    with pytest.raises(SqtoolError, match="target_std must be positive"):
        output_affine({"outputs": ["a"], "target_mean": [0.0], "target_std": [0.0], "model": "m"})


def test_resnet1d_teacher_float_onnx_is_named_and_in_bpm(tmp_path):
    import onnx
    torch.manual_seed(0)
    cfg = get_model_cfg("resnet1d_siamq_tiny", task="hr", window_s=8.0, hop_s=2.0, outputs=("hr_bpm",),
                        units=("bpm",), target_mean=(90.0,), target_std=(30.0,))
    m = create_model(cfg).eval()
    md = {"model": cfg.name, "outputs": ["hr_bpm"], "units": ["bpm"], "target_mean": [90.0], "target_std": [30.0],
          "sqtool_version": "test", "quant_scheme": "float32", "task": "hr"}
    f = tmp_path / "teacher.onnx"
    O.export_float(m, md, f)
    assert [o.name for o in onnx.load(str(f)).graph.output] == ["hr_bpm"]
    x = np.random.default_rng(0).standard_normal((2, *cfg.input_shape)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.as_tensor(x)).numpy()[:, 0] * 30.0 + 90.0
    got = O.run(f, x)
    assert got.shape == (2, 1) and np.abs(got[:, 0] - want).max() < 1e-3
    with torch.no_grad():                                                  # the model itself is not modified
        assert np.allclose(m(torch.as_tensor(x)).numpy()[:, 0] * 30.0 + 90.0, want)


def test_bench_mae_from_float_onnx_equals_the_torch_student(full_export, tmp_path, capsys):
    from sqtool.cli import main
    b = tmp_path / "bench"
    rc = main(["bench", "--model", str(full_export["out"]), "--data", "synthetic", "--max-records", "1",
               "--runtime", "torch_student,onnx_float,litert_float,onnx_int8,tflm_int8", "--out", str(b),
               "--no-progress"])
    capsys.readouterr()
    assert rc == 0
    rows = {r["runtime"]: r for r in json.loads((b / "bench.json").read_text())["runtimes"]}
    assert all(r["status"] == "ok" for r in rows.values()), rows
    ref = rows["torch_student"]["metrics"]["mae"]
    assert ref is not None and 0 < ref < 200
    for name in ("onnx_float", "litert_float"):
        assert abs(rows[name]["metrics"]["mae"] - ref) < 1e-3, name
    assert abs(rows["onnx_int8"]["metrics"]["mae"] - rows["tflm_int8"]["metrics"]["mae"]) < 1.0
    assert abs(rows["tflm_int8"]["metrics"]["mae"] - ref) < 3.0
