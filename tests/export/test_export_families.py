"""Every int8 student of the registry, of both families (time-domain `cnn1d_student`, spectral `spec_cnn`; chosen by
`cfg.family`, so a student registered later is covered too) through every int8 path: the integer graph equals Brevitas's integers, the numpy
reference equals LiteRT's reference kernels and TFLite Micro, the generated C equals the reference in
both rounding modes, ONNX QCDQ runs in onnxruntime, the C compiles for Cortex-M4 with -Werror.

Twins are built in a second: untrained float models with non-trivial BN statistics, BN folded, activation
scales calibrated on a few random windows (random int8 code windows for the spectral models).
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from sqtool.core import SqtoolError
from sqtool.export import c as C
from sqtool.export import onnx as O
from sqtool.export import reference as R
from sqtool.export import tflite as TF
from sqtool.export.cli import ExportConfig, export, random_code_windows
from export_fixtures import (make_float_specnet, make_float_student, make_int8_specnet, make_int8_student,
                                    make_spec_int8_run, synthetic_windows)
from sqtool.export.intgraph import brevitas_int_outputs, check_supported, extract_int_graph, input_shape
from sqtool.models import get_model_cfg, list_models
from sqtool.models.spectral import SPECTRAL_FAMILY

INT8_FAMILIES = ("cnn1d_student", SPECTRAL_FAMILY)
FLOAT_ONLY = {"resnet1d": "time-domain teachers: exported as float, quantized through a student",
              "resp_spec": "rr_spec: exported float as it is (tests/train/test_finetune_rr.py)",
              "beat_trees": "af_beats: ONNX only, float64 features (tests/train/test_finetune_af.py)"}
# The spectral family also holds its teacher (spec_teacher_m*, the same network): a teacher is exported float, and
# only its name says it is one.
NAMES = [n for n in list_models() if get_model_cfg(n).family in INT8_FAMILIES and "teacher" not in n]


def spectral(name: str) -> bool:
    return get_model_cfg(name).family == SPECTRAL_FAMILY
MD = {"sqtool_version": "test", "task": "hr", "source_sha256": "0" * 64, "quant_scheme": "test",
      "quant_description": "test twin"}


def test_both_families_are_covered():
    """Each family of the registry is exported here or listed as float only (a new family fails until it is)."""
    assert {get_model_cfg(n).family for n in NAMES} == set(INT8_FAMILIES)
    assert {get_model_cfg(n).family for n in list_models()} == set(INT8_FAMILIES) | set(FLOAT_ONLY)


@pytest.fixture(scope="module", params=NAMES)
def twin(request):
    """(name, Brevitas twin, integer graph, Brevitas per-layer ints on 6 windows, metadata)."""
    torch.set_num_threads(1)
    name = request.param
    cfg = get_model_cfg(name)
    if cfg.family == SPECTRAL_FAMILY:
        c, f = input_shape(make_float_specnet(name))
        q = make_int8_specnet(make_float_specnet(name), random_code_windows(16, c, f, seed=1))
        x = random_code_windows(6, c, f, seed=2)
    else:
        calib, _ = synthetic_windows(cfg, 16, 1)
        q = make_int8_student(make_float_student(name), calib)
        x, _ = synthetic_windows(cfg, 6, 2)
    g = extract_int_graph(q)
    md = {**MD, "model": name, "fs": cfg.fs, "window_s": cfg.window_s, "hop_s": cfg.hop_s,
          "channels": list(cfg.channels), "norm": cfg.norm, "outputs": list(cfg.outputs), "units": list(cfg.units),
          "band": list(cfg.band), "model_cfg": q.cfg.to_dict(), "target_mean": list(cfg.target_mean),
          "target_std": list(cfg.target_std)}
    return name, q, g, brevitas_int_outputs(q, x), md


def test_intgraph_equals_brevitas_integers(twin):
    """Single rounding is Brevitas's arithmetic in exact integers; Brevitas computes it in float32, so the two may
    round a value lying on a .5 tie apart. Each layer fed Brevitas's own input: every difference is 1 LSB at a
    value within 1e-3 LSB of the tie (float32 noise, never a wrong scale, zero point or tap). Chained, such a flip
    may travel downstream by 1 LSB (a fraction of layers' outputs that depends on the machine's float kernels: 0.2 %
    of cnn1d_student_m's blocks.4 on one CPU); without one the chain is exact."""
    name, q, g, brev, _ = twin
    ref = R.run(g, brev["input"], "single")                       # single rounding = Brevitas's arithmetic
    isolated = R.run(g, brev["input"], "single", inputs=brev)
    prev, flips = "input", 0
    for layer in g.layers:
        b = brev[layer.name].reshape(isolated[layer.name].shape)
        flip = isolated[layer.name] != b
        if flip.any():
            v = R.exact_requant_input(layer, brev[prev]).reshape(b.shape)
            tie = np.abs(v[flip] - np.floor(v[flip]) - 0.5)
            d = np.abs(isolated[layer.name].astype(np.int32) - b)
            assert d.max() == 1 and tie.max() < 1e-3, (name, layer.name, d.max(), tie.max())
            flips += int(flip.sum())
        chained = np.abs(ref[layer.name].astype(np.int32) - b)
        assert chained.max() <= (1 if flips else 0), (name, layer.name, flips)
        prev = layer.name
    assert np.array_equal(isolated[g.layers[0].name], brev[g.layers[0].name].reshape(isolated[g.layers[0].name].shape))
    if spectral(name):
        cfg = q.cfg
        assert [l.dilation for l in g.layers[:-1]] == [d for _, _, d in cfg.arch["convs"]]
        head = g.layers[-1]
        assert (head.name, head.op, head.kernel, head.relu, head.out_zp) == ("head", "conv", 1, False, 0)
        assert head.out_shape == (g.input_shape[0], 1)
        assert g.output_size == g.input_shape[0] == 134
        assert g.input_zp == 0 and abs(g.input_scale - 1 / 127) < 1e-9
        assert brev["input"].min() >= -127                         # narrow range: codes pass unchanged
    else:
        assert [l.op for l in g.layers][-2:] == ["mean", "fc"]


def test_reference_equals_litert_reference_kernels_and_tflm(twin, tmp_path):
    name, _, g, brev, md = twin
    f = tmp_path / "m.tflite"
    TF.write_int8(g, md, f)
    TF.check_int8_params(f, g)
    xq = brev["input"]
    n = len(xq)
    got, layers = TF.run_litert(f, xq[:, None], reference=True, graph=g)
    lite = R.run(g, xq, "litert_ref")
    for layer in g.layers:
        np.testing.assert_array_equal(layers[layer.name], lite[layer.name], err_msg=f"{name} {layer.name}")
    want = R.run(g, xq, "double")[g.output_name].reshape(n, -1)
    np.testing.assert_array_equal(TF.run_tflm(f, xq[:, None]).reshape(n, -1), want, err_msg=name)
    t = TF.tensors_by_name(f)
    if spectral(name):
        nch = get_model_cfg(name).in_channels                               # 4 axes, or ppg + summed acc
        assert t["spectra"]["shape"] == [1, 1, 134, nch] and t["hr_logits"]["shape"] == [1, 134]
        assert t["__ops__"] == ["CONV_2D"] * len(g.layers) + ["RESHAPE"]
        np.testing.assert_array_equal(got.reshape(n, -1), lite["head"].reshape(n, -1))


def test_c_equals_reference_both_roundings(twin, tmp_path):
    name, _, g, brev, md = twin
    C.generate_c(g, md, tmp_path / "c")
    xq = brev["input"]
    for single in (False, True):
        lib = C.build_shared_lib(tmp_path / "c", tmp_path / "build", single)
        got = C.run_shared_lib(lib, xq, g.output_size)
        want = R.run(g, xq, "single" if single else "double")[g.output_name].reshape(len(xq), -1)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} single={single}")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_c_compiles_warning_free_for_cortex_m4(twin, tmp_path):
    name, _, g, _, md = twin
    C.generate_c(g, md, tmp_path / "c")
    for single in (0, 1):
        r = subprocess.run(["arm-none-eabi-gcc", *C.C_FLAGS, "-mcpu=cortex-m4", "-mthumb",
                            f"-DSQ_SINGLE_ROUNDING={single}", "-c", str(tmp_path / "c" / "sq_model.c"),
                            "-o", str(tmp_path / "m.o")], capture_output=True, text=True)
        assert r.returncode == 0, f"{name}: {r.stderr}"


def test_onnx_int8_runs_and_matches_brevitas(twin, tmp_path):
    name, q, g, brev, md = twin
    f = tmp_path / "m.onnx"
    O.export_int8(q, md, f)
    x = (brev["input"].astype(np.float32) * np.float32(g.input_scale)).transpose(0, 2, 1)   # exact codes
    want = brev[g.output_name].reshape(len(x), -1).astype(np.int32)
    y = O.run(f, x, batch=1)                                      # time-domain: in units (hr_bpm in BPM)
    if not spectral(name):
        from sqtool.export.metadata import from_units
        y = from_units(y, md)
    got = np.clip(np.round(y / np.float32(g.output_scale)) + g.output_zp, -128, 127).reshape(len(x), -1)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1, name
    assert "QLinearConv" in O.ort_optimized_ops(f)


# ----------------------------------------------------------------------------- spectral specifics

@pytest.fixture(scope="module")
def spec_twin(twin):
    if not spectral(twin[0]):
        pytest.skip("spectral only")
    return twin


def test_spectral_header_states_the_contract(spec_twin, tmp_path):
    name, q, g, _, md = spec_twin
    C.generate_c(g, md, tmp_path / "c")
    h = (tmp_path / "c" / "sq_model.h").read_text()
    nch = q.cfg.in_channels                                     # ppg + acc x, y, z; or ppg + the axes summed
    for needle in ("#define SQ_NBINS 134", "#define SQ_BIN_LO_MBPM 30000", "#define SQ_BIN_STEP_MBPM 1500",
                   "#define SQ_BAND_LO_HZ 0.5f", "#define SQ_BAND_HI_HZ 4.0f", "#define SQ_FS_HZ 16.0f",
                   "#define SQ_IN_SAMPLES 134", f"#define SQ_IN_CHANNELS {nch}", "#define SQ_OUTPUT_SIZE 134",
                   "#define SQ_OUTPUT_ZERO_POINT 0", '#define SQ_FAMILY "spec_cnn"', f"in[f * {nch} + c]",
                   "#define SQ_FRONTEND_JSON", "#define SQ_DECODER_JSON", f"MACs             {g.macs} per window"):
        assert needle in h, needle
    for key in q.cfg.frontend:
        assert f" {key} = " in h, key


def test_check_supported_names_the_layer(spec_twin):
    import brevitas.nn as qnn
    _, q, _, _, _ = spec_twin
    import copy
    bad = copy.deepcopy(q)
    bad.head = qnn.QuantConv1d(bad.head.in_channels, 1, 3, padding=1, bias=True, return_quant_tensor=True)
    with pytest.raises(SqtoolError, match="layer 'head'"):
        check_supported(bad)
    with pytest.raises(SqtoolError, match="only quantized students and spectral models: layer '"):
        check_supported(make_float_specnet(spec_twin[0]))


@pytest.mark.parametrize("n_heldout", [0, 4])
def test_cli_exports_a_spectral_run(n_heldout, tmp_path):
    """`sqtool export` on a run dir holding a spectral student_int8: all targets, bit-exact twins; random code
    windows stand in for a missing held-out set."""
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=n_heldout, n_calib=16)
    res = export(ExportConfig(model=str(run), out=str(tmp_path / "out"), random_windows=-1 if n_heldout else 8))
    assert res["failed"] == [], res["summary"]
    r = {row["artifact"]: row for row in res["rows"]}
    for name in ("TFLite Micro", "C double rounding (host gcc)", "C single rounding (host gcc)",
                 "TFLite int8 (LiteRT reference kernels)"):
        assert r[name]["exact_vs_pct"] == 100.0 and r[name]["n"] == (n_heldout or 8), name
    for name in ("C single rounding (host gcc)", "ONNX int8 QCDQ graph (onnxruntime, no fusion)",
                 "ONNX int8 (onnxruntime integer kernels)"):
        assert r[name]["max_lsb"] <= 1, name
    assert r["TFLite float (LiteRT)"]["l2_rel_err"] < 1e-4 and r["ONNX float"]["l2_rel_err"] < 1e-4
    out = res["out"]
    assert not (out / "heldout.npz").is_file()      # spectral + C target = a firmware kit: no subject data in it
    kit = [row for row in res["rows"] if row["artifact"].startswith("C pipeline")]
    assert len(kit) == 1 and kit[0]["status"] == "ok" and (out / "test_vectors" / "expected.txt").is_file()
    assert (out / "parity_windows.npz").is_file() == (not n_heldout)
    md = TF.read_metadata(out / "model_int8.tflite")
    assert md["n_bins"] == 134 and md["bins_bpm"] == [30.0, 229.5, 1.5] and md["model_cfg"]["family"] == "spec_cnn"
