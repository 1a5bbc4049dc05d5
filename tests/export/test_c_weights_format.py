"""The two weight formats of the stride-1 (spectral) C kernels: int16 pairs (default) and packed int8
(-DSQ_WEIGHTS_INT8=1, expanded with SXTB16 at run time) give the same int8 outputs as the integer
reference, on the host (portable path) and on an emulated Cortex-M4 (DSP path), for spec_student_s."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from sqtool.export import c as C
from sqtool.export import reference as R
from sqtool.export.cli import random_code_windows
from sqtool.export.intgraph import extract_int_graph, input_shape
from export_fixtures import make_float_specnet, make_int8_specnet

MD = {"sqtool_version": "test", "model": "spec_student_s", "task": "hr", "source_sha256": "0" * 64, "fs": 16.0,
      "window_s": 8.0, "hop_s": 2.0, "channels": ["ppg", "acc_x", "acc_y", "acc_z"], "norm": "spectrum",
      "outputs": ["hr_logits"], "units": ["logit"], "quant_scheme": "test", "quant_description": "test twin"}


@pytest.fixture(scope="module")
def spec_s(tmp_path_factory):
    """(graph, int8 windows, C directory) of an untrained, calibrated spec_student_s."""
    torch.set_num_threads(1)
    f = make_float_specnet("spec_student_s")
    c, t = input_shape(f)
    g = extract_int_graph(make_int8_specnet(f, random_code_windows(16, c, t, seed=1)))
    xq = np.round(random_code_windows(4, c, t, seed=2) * 127).astype(np.int8).transpose(0, 2, 1).copy()
    d = tmp_path_factory.mktemp("spec_s")
    C.generate_c(g, MD, d / "c")
    return g, xq, d


def _sxtb16(v: np.ndarray, ror: int) -> np.ndarray:
    v = ((v.astype(np.uint64) >> np.uint64(ror)) | (v.astype(np.uint64) << np.uint64(32 - ror))) & 0xFFFFFFFF
    lo = ((v & 0xFF).astype(np.int64) ^ 0x80) - 0x80
    hi = (((v >> np.uint64(16)) & 0xFF).astype(np.int64) ^ 0x80) - 0x80
    return (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)


@pytest.mark.parametrize("shape", [(12, 9, 12), (12, 9, 4), (1, 1, 12), (5, 3, 3)])
def test_int8_words_expand_to_the_int16_words(shape):
    w = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
    w8 = C.pack_s1_weights_int8(w)
    w16 = C.pack_s1_weights(w).astype(np.int64).reshape(-1, 2)
    np.testing.assert_array_equal(_sxtb16(w8, 0), w16[:, 0])
    np.testing.assert_array_equal(_sxtb16(w8, 8), w16[:, 1])
    assert w8.nbytes * 2 == C.pack_s1_weights(w).nbytes


def test_header_documents_both_formats_and_int8_is_smaller(spec_s):
    g, _, d = spec_s
    h = (d / "c" / "sq_model.h").read_text()
    assert "SQ_WEIGHTS_INT8" in h and "#define SQ_WEIGHTS_INT8 0" in h
    c16, c8 = C.const_data_bytes(g), C.const_data_bytes(g, weights_int8=True)
    assert f"#define SQ_CONST_BYTES {c8}" in h and f"#define SQ_CONST_BYTES {c16}" in h
    assert c8 < 0.6 * c16


@pytest.mark.parametrize("int8", [0, 1])
def test_host_both_formats_equal_reference(spec_s, int8):
    g, xq, d = spec_s
    for single in (0, 1):
        lib = d / f"lib_{int8}_{single}.so"
        subprocess.run(["gcc", *C.C_FLAGS, "-fPIC", "-shared", f"-DSQ_SINGLE_ROUNDING={single}",
                        f"-DSQ_WEIGHTS_INT8={int8}", str(d / "c" / "sq_model.c"), "-o", str(lib)], check=True)
        got = C.run_shared_lib(lib, xq, g.output_size)
        want = R.run(g, xq, "single" if single else "double")[g.output_name].reshape(len(xq), -1)
        np.testing.assert_array_equal(got, want, err_msg=f"int8={int8} single={single}")


def test_cortex_m4_both_formats_equal_reference(spec_s):
    from sqtool.firmware_bench import mcu
    try:
        mcu.require_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm")
    except Exception as e:                                                       # noqa: BLE001
        pytest.skip(str(e))
    g, xq, d = spec_s
    want = R.run(g, xq, "double")[g.output_name].reshape(len(xq), -1)
    for defines in ((), ("SQ_WEIGHTS_INT8=1",)):
        fw = mcu.build_firmware(d / "c", "m4", d / "fw", defines=defines)
        r = mcu.run_firmware(fw, xq.reshape(len(xq), -1), count=False)
        np.testing.assert_array_equal(r.outputs, want, err_msg=str(defines))
