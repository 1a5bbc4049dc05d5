"""One full export (ONNX, TFLite, C) of a small QAT-like student: every artifact runs and matches its source."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from sqtool.export import onnx as O
from sqtool.export import tflite as TF
from sqtool.export.c import C_FLAGS, build_shared_lib
from sqtool.export.intgraph import _capture, quantize_input
from sqtool.models import ModelCfg, create_model
from sqtool.core.checkpoint import file_sha256, load_checkpoint


def _rows(res):
    return {r["artifact"]: r for r in res["rows"]}


def _brevitas_model(run):
    ck = load_checkpoint(run)
    q = create_model(ModelCfg.from_dict(ck["model_cfg"]))
    q.load_state_dict(ck["state_dict"])
    return q.eval()


def test_every_artifact_written_and_passes(full_export):
    out = full_export["out"]
    for f in ("metadata.json", "model_float.onnx", "model_float_batch.onnx", "model_int8.onnx", "model_float.tflite",
              "model_int8.tflite", "c/sq_model.h", "c/sq_model.c", "heldout.npz", "export_report.json",
              "export_report.md", "config.yaml"):
        assert (out / f).is_file(), f
    assert full_export["failed"] == [], full_export["summary"]
    assert not list(out.rglob("*.FAILED"))
    md = (out / "export_report.md").read_text()
    for name in ("ONNX int8", "TFLite int8 (LiteRT reference kernels)", "TFLite Micro", "C double rounding",
                 "C single rounding", "TFLite float"):
        assert name in md


def test_bit_exact_twins(full_export):
    r = _rows(full_export)
    # TFLite's double rounding: numpy reference == LiteRT reference kernels == TFLite Micro == C (double)
    for name in ("TFLite Micro", "C double rounding (host gcc)"):
        assert r[name]["exact_vs"] == "numpy ref double" and r[name]["exact_vs_pct"] == 100.0, name
    # LiteRT's reference kernels: the same, except FULLY_CONNECTED rounds once (int64 path)
    assert r["TFLite int8 (LiteRT reference kernels)"]["exact_vs_pct"] == 100.0
    assert r["C single rounding (host gcc)"]["exact_vs"] == "numpy ref single"
    assert r["C single rounding (host gcc)"]["exact_vs_pct"] == 100.0
    # single rounding reproduces Brevitas's integers up to Brevitas's own float32 noise at exact-tie
    # neighbourhoods (~1e-5 of elements; per layer in test_explain_names_every_layer), and so does the
    # QCDQ graph run op by op; a single flipped element is 2 % of these 48 outputs, hence the margins
    for name in ("C single rounding (host gcc)", "numpy reference (single rounding)",
                 "ONNX int8 QCDQ graph (onnxruntime, no fusion)", "ONNX int8 (onnxruntime integer kernels)"):
        assert r[name]["max_lsb"] <= 1 and r[name]["exact_elements_pct"] >= 95.0, name
    # double rounding stays within a few LSB of Brevitas at the output
    assert r["TFLite Micro"]["max_lsb"] <= 3
    for name, row in r.items():
        if row.get("l2_rel_err") is not None:
            assert row["l2_rel_err"] < 1e-4 and row["cosine"] > 0.9999, name


def test_tflite_int8_keeps_brevitas_quantization(int8_run, full_export):
    """int8 weights, int32 biases, scales and zero points in the .tflite == Brevitas's own QuantTensors."""
    q = _brevitas_model(int8_run)
    got = _capture(q, torch.zeros(1, *q.cfg.input_shape))
    t = TF.tensors_by_name(full_export["out"] / "model_int8.tflite")
    assert t["input"]["type"] == 9 and float(t["input"]["scale"][0]) == float(got["inp"].scale) \
        and int(t["input"]["zero_point"][0]) == 0
    for i, blk in enumerate(q.blocks):
        qw = blk.conv.quant_weight()
        w = t[f"blocks.{i}/weight"]
        assert np.array_equal(w["data"][:, 0], qw.int().numpy().transpose(0, 2, 1))       # (Cout, K, Cin)
        assert np.array_equal(w["scale"], qw.scale.detach().numpy().reshape(-1).astype(np.float32))
        assert np.all(w["zero_point"] == 0) and w["qdim"] == 0
        assert np.array_equal(t[f"blocks.{i}/bias"]["data"], got[f"blocks.{i}.bias"].int().numpy().reshape(-1))
        act = got[f"blocks.{i}"]                                                            # uint8, zp 0
        assert not act.signed
        assert float(t[f"blocks.{i}"]["scale"][0]) == float(act.scale) and int(t[f"blocks.{i}"]["zero_point"][0]) == -128
    assert float(t["pool_q"]["scale"][0]) == float(got["pool_q"].scale) and int(t["pool_q"]["zero_point"][0]) == -128
    qw = q.fc.quant_weight()
    assert np.array_equal(t["fc/weight"]["data"], qw.int().numpy())
    assert np.array_equal(t["fc/bias"]["data"], got["fc.bias"].int().numpy().reshape(-1))
    assert float(t["fc"]["scale"][0]) == float(got["fc"].scale) and int(t["fc"]["zero_point"][0]) == 0


def test_tflite_builtin_ops_only_channels_last(full_export):
    for f in ("model_int8.tflite", "model_float.tflite"):
        ops = TF.tensors_by_name(full_export["out"] / f)["__ops__"]
        assert "TRANSPOSE" not in ops
        assert set(ops) <= {"CONV_2D", "MEAN", "RESHAPE", "FULLY_CONNECTED", "SPLIT"}, ops
    t = TF.tensors_by_name(full_export["out"] / "model_int8.tflite")
    assert t["input"]["shape"] == [1, 1, 320, 4] and t["fc"]["type"] == 9                  # int8 in, int8 out


def test_onnxruntime_runs_integer_kernels(full_export):
    ops = O.ort_optimized_ops(full_export["out"] / "model_int8.onnx")
    assert "QLinearConv" in ops
    assert "QGemm" in ops or "QLinearMatMul" in ops
    assert "Conv" not in ops                                      # no float convolution left between Q/DQ


def test_onnx_float_batch_axis(full_export, int8_run):
    x = np.load(int8_run / "heldout.npz")["x"][:5]
    y1 = O.run(full_export["out"] / "model_float_batch.onnx", x, batch=5)
    y2 = O.run(full_export["out"] / "model_float.onnx", x, batch=1)
    assert y1.shape == (5, 2) and np.allclose(y1, y2, atol=1e-5)


def test_metadata_in_every_artifact(full_export, int8_run):
    out = full_export["out"]
    sha = file_sha256(int8_run / "model.pt")
    mds = [O.read_metadata(out / f) for f in ("model_float.onnx", "model_float_batch.onnx", "model_int8.onnx")]
    mds += [TF.read_metadata(out / f) for f in ("model_float.tflite", "model_int8.tflite")]
    for md, is_float in zip(mds, (True, True, False, True, False)):
        assert md["source_sha256"] == sha and md["fs"] == 40.0 and md["window_s"] == 8.0 and md["hop_s"] == 2.0
        assert md["channels"] == ["ppg", "acc_x", "acc_y", "acc_z"] and md["norm"] == "minmax"
        scheme = md["int8_twin"] if is_float else md["quant_scheme"]          # float artifacts: no int8 metadata
        assert md["units"] == ["bpm", "logit"] and scheme == "int8_w_per_channel_a_per_tensor"
        assert (md["quant_scheme"] == "float32") == is_float and ("quantization" in md) != is_float
        assert md["sqtool_version"]
    h = (out / "c" / "sq_model.h").read_text()
    for needle in (f'#define SQ_SOURCE_SHA256 "{sha}"', "#define SQ_FS_HZ 40.0f", "#define SQ_WINDOW_S 8.0f",
                   '#define SQ_CHANNELS "ppg,acc_x,acc_y,acc_z"', '#define SQ_NORM "minmax"', "#define SQ_UNITS",
                   '#define SQ_QUANT_SCHEME "int8_w_per_channel_a_per_tensor"', "#define SQ_SQTOOL_VERSION",
                   "#define SQ_IN_CHANNELS 4", "#define SQ_IN_SAMPLES 320", "#define SQ_OUTPUT_SIZE 2",
                   "#define SQ_ARENA_SIZE", "#define SQ_INPUT_SCALE", "#define SQ_OUTPUT_ZERO_POINT 0",
                   "int sq_model_run(const int8_t *in, int8_t *out);"):
        assert needle in h, needle


def test_c_has_no_malloc_no_float_in_inference(full_export):
    src = (full_export["out"] / "c" / "sq_model.c").read_text()
    assert "malloc" not in src and "#include <math.h>" not in src
    run_body = src[src.index("int sq_model_run("):src.index("void sq_quantize_input(")]
    kernels = src[src.index("requantization (TFLite)"):src.index("int sq_model_run(")]
    for body in (run_body, kernels):
        code = re.sub(r"/\*.*?\*/", "", body, flags=re.S)                                # comments say "double rounding"
        assert not re.search(r"\b(float|double)\b", code)
    m = re.search(r"#define SQ_ARENA_SIZE (\d+)", (full_export["out"] / "c" / "sq_model.h").read_text())
    assert int(m.group(1)) == 160 * 8 + 80 * 12                   # ping (layer 0) + pong (layer 1) of the xs student


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("single", [0, 1])
def test_c_compiles_warning_free_for_cortex_m4(full_export, tmp_path, single):
    r = subprocess.run(["arm-none-eabi-gcc", *C_FLAGS, "-mcpu=cortex-m4", "-mthumb", f"-DSQ_SINGLE_ROUNDING={single}",
                        "-c", str(full_export["out"] / "c" / "sq_model.c"), "-o", str(tmp_path / "m.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_c_edges_quantize_like_the_model(full_export, int8_run, tmp_path):
    """sq_quantize_input (float edge) gives the int8 input Brevitas computes; dequantize inverts the scale."""
    lib = ctypes.CDLL(str(build_shared_lib(full_export["out"] / "c", tmp_path, False)))
    from sqtool.export.intgraph import extract_int_graph
    q = _brevitas_model(int8_run)
    g = extract_int_graph(q)
    x = np.load(int8_run / "heldout.npz")["x"][:4]
    want = quantize_input(g, x)                                                            # (N, T, C)
    for i in range(len(x)):
        xf = np.ascontiguousarray(x[i].T, np.float32)                                      # channels-last
        got = np.zeros(xf.size, np.int8)
        lib.sq_quantize_input(xf.ctypes.data_as(ctypes.c_void_p), got.ctypes.data_as(ctypes.c_void_p))
        assert np.mean(got == want[i].reshape(-1)) > 0.999                                 # ties round differently
    qo = np.array([-128, 5], np.int8)
    yo = np.zeros(2, np.float32)
    lib.sq_dequantize_output(qo.ctypes.data_as(ctypes.c_void_p), yo.ctypes.data_as(ctypes.c_void_p))
    assert np.allclose(yo, qo.astype(np.float32) * np.float32(g.output_scale))
    assert lib.sq_model_run(None, None) == -1


def test_explain_names_every_layer(full_export):
    text = full_export["explain_text"]
    for name in ("blocks.0", "blocks.3", "pool_q", "fc", "tflite_vs_ref_litert"):
        assert name in text
    ex = full_export["explain"]
    assert all(row["tflite_vs_ref_litert"]["max_lsb"] == 0 for row in ex.values())
    assert all(row["ref_single_vs_brevitas"]["exact_elements_pct"] >= 99.9 for row in ex.values())


@pytest.mark.parametrize("preset", ["int8_w_per_tensor_a_per_tensor"])
def test_other_presets_export_bit_exact(preset, tmp_path):
    """Per-tensor conv weights go through the same writer and C generator (per-channel is the fixture)."""
    from sqtool.export.cli import ExportConfig, export
    from export_fixtures import make_int8_run
    run = make_int8_run(tmp_path / "run", preset=preset, n_heldout=8, steps=20)
    res = export(ExportConfig(model=str(run), target=["tflite", "c"], precision="int8", out=str(tmp_path / "out")))
    assert res["failed"] == [], res["summary"]
    r = _rows(res)
    assert r["TFLite Micro"]["exact_vs_pct"] == 100.0 and r["C double rounding (host gcc)"]["exact_vs_pct"] == 100.0
    assert r["C single rounding (host gcc)"]["exact_vs_pct"] == 100.0
    assert r["C single rounding (host gcc)"]["max_lsb"] <= 1
    assert TF.read_metadata(tmp_path / "out" / "model_int8.tflite")["quant_scheme"] == preset
    assert not (tmp_path / "out" / "model_float.tflite").exists()
