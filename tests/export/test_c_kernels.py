"""The generated C kernels (packed-weight dot products, folded zero points, SAME edges, DSP path) on
random integer graphs with awkward shapes, against the numpy reference of TFLite's arithmetic.

Shapes are chosen to hit every branch: K*Cin not a multiple of 4 (tail block), Cout not a multiple
of 4 (padded group), strides 1-3, left/right padding, non-zero input zero points (folded into the
bias), multipliers > 1 (positive shift), dilated convs with taps read in place or gathered at the SAME
edges, a 1x1 head without ReLU. Host gcc runs the portable path; the Cortex-M4 build under
QEMU runs the SXTB16/SMLAD path (and -DSQ_NO_DSP the portable one on the MCU)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from sqtool.export import c as C
from sqtool.export import reference as R
from sqtool.export.intgraph import IntGraph, IntLayer

MD = {"sqtool_version": "test", "model": "random_graph", "task": "hr", "source_sha256": "0" * 64, "fs": 40.0,
      "window_s": 1.0, "hop_s": 1.0, "channels": ["ppg"], "norm": "minmax", "outputs": ["y"], "units": ["u"],
      "quant_scheme": "test", "quant_description": "random integer graph"}

# (T, Cin0, [(Cout, K, stride, pad[, dilation[, relu]]), ...], head): conv stacks with odd sizes, with or
# without mean + fc. Dilated stacks: Cin a multiple of 4 (taps read in place) or not (taps gathered), a
# last 1x1 conv without ReLU to one channel (the spectral head: signed int8 output, zero point 0).
SPECS = {
    "odd": (37, 3, [(5, 5, 2, 2), (6, 3, 1, 1), (7, 4, 3, 1)], False),
    "cin1_k8": (64, 1, [(16, 8, 2, 3), (24, 6, 2, 2)], False),
    "student_like": (48, 1, [(8, 8, 2, 3), (12, 6, 2, 2), (16, 4, 2, 1), (16, 3, 1, 1)], True),
    "k1_wide": (9, 9, [(13, 1, 1, 0), (4, 7, 1, 3)], True),
    "span_under_4": (16, 1, [(3, 3, 1, 1), (5, 1, 2, 0)], False),     # K*Cin = 3: no full block at all
    "dilated": (41, 4, [(8, 9, 1, 4, 1), (12, 9, 1, 8, 2), (12, 9, 1, 16, 4), (1, 1, 1, 0, 1, False)], False),
    "dilated_odd_cin": (23, 3, [(5, 3, 1, 3, 3), (6, 5, 1, 4, 2), (3, 1, 1, 0, 1, False)], False),
    # a stride-1 graph whose second layer has multipliers > 1: the general requantization of sq_kernel_s1.c
    "dilated_general": (19, 4, [(6, 3, 1, 1, 1), (7, 5, 1, 4, 2), (1, 1, 1, 0, 1, False)], False),
}
S1_SPECS = ["dilated", "dilated_odd_cin", "dilated_general"]   # every layer a stride-1 'same' conv


def _conv_layer(rng, name, t, cin, cout, k, stride, pad, in_zp, in_scale, boost, dilation=1, relu=True):
    d = k * cin
    w = rng.integers(-127, 128, (cout, k, cin)).astype(np.int8)
    ws = rng.uniform(0.5, 2.0, cout).astype(np.float32) * np.float32(0.01)
    # out scale puts the typical accumulator near +-40 LSB; `boost` makes the multiplier > 1
    m = 40.0 / (np.sqrt(d) * 60.0 * 60.0) * (300.0 if boost else 1.0)
    out_scale = float(np.float32(in_scale * float(ws.mean()) / m))
    bias = rng.integers(-3000, 3000, cout).astype(np.int32)
    t_out = -(-t // stride)
    return IntLayer(name=name, op="conv", in_scale=in_scale, in_zp=in_zp, out_scale=out_scale,
                    out_zp=-128 if relu else 0, in_shape=(t, cin), out_shape=(t_out, cout), weight=w,
                    weight_scale=ws, bias=bias, kernel=k, stride=stride, pad=pad, relu=relu, dilation=dilation)


def random_graph(spec: str, seed: int = 0) -> IntGraph:
    t, cin, convs, head = SPECS[spec]
    rng = np.random.default_rng(seed)
    in_zp, in_scale = int(rng.integers(-20, 20)), 0.0078
    layers = []
    zp, s = in_zp, in_scale
    for i, (cout, k, stride, pad, *more) in enumerate(convs):
        layer = _conv_layer(rng, f"blocks.{i}", t, cin, cout, k, stride, pad, zp, s, boost=(spec, i) in (("k1_wide", 0), ("dilated_general", 1)),
                            dilation=more[0] if more else 1, relu=more[1] if len(more) > 1 else True)
        layers.append(layer)
        t, cin, zp, s = layer.out_shape[0], cout, layer.out_zp, layer.out_scale
    if head:
        layers.append(IntLayer(name="pool_q", op="mean", in_scale=s, in_zp=zp, out_scale=s * 0.7, out_zp=-128,
                               in_shape=(t, cin), out_shape=(cin,)))
        fw = rng.integers(-127, 128, (2, cin)).astype(np.int8)
        m_fc = 40.0 / (np.sqrt(cin) * 70.0 * 73.0)                 # typical accumulator -> +-40 LSB
        layers.append(IntLayer(name="fc", op="fc", in_scale=s * 0.7, in_zp=-128, out_scale=s * 0.7 * 0.01 / m_fc,
                               out_zp=0, in_shape=(cin,), out_shape=(2,), weight=fw,
                               weight_scale=np.array([0.01], np.float32),
                               bias=rng.integers(-500, 500, 2).astype(np.int32)))
    return IntGraph(layers=layers, input_scale=in_scale, input_zp=in_zp, input_shape=SPECS[spec][:2])


def _windows(graph: IntGraph, n: int, seed: int = 1) -> np.ndarray:
    t, c = graph.input_shape
    xq = np.random.default_rng(seed).integers(-128, 128, (n, t, c)).astype(np.int8)
    xq[0] = -128                                                   # saturated and constant windows too
    xq[1] = 127
    return xq


def _reference(graph: IntGraph, xq: np.ndarray, single: bool) -> np.ndarray:
    out = R.run(graph, xq, "single" if single else "double")[graph.layers[-1].name]
    return out.reshape(len(xq), -1)


# ----------------------------------------------------------------------------- pure numpy checks

@pytest.mark.parametrize("shape", [(5, 3, 3), (16, 8, 1), (4, 1, 4), (1, 1, 1), (7, 6, 2)])
def test_packed_weights_compute_the_same_dot_products(shape):
    """Unpack the words the way SXTB16/SMLAD pair them and recompute the dot products."""
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, shape).astype(np.int8)
    cout, d = shape[0], shape[1] * shape[2]
    x = rng.integers(-128, 128, d).astype(np.int64)
    words = C.pack_conv_weights(w).astype(np.int64)
    d4 = -(-d // 4) * 4
    assert words.size == -(-cout // 4) * 4 * d4 // 2
    xp = np.concatenate([x, np.zeros(d4 - d, np.int64)])
    half = lambda v: ((v & 0xFFFF) ^ 0x8000) - 0x8000                          # noqa: E731 int16
    wv = words.reshape(-1, d4 // 4, 4, 2)                                       # (G, B, rows, even/odd)
    got = []
    for g in range(wv.shape[0]):
        for r in range(4):
            acc = 0
            for b in range(d4 // 4):
                x0, x1, x2, x3 = xp[4 * b:4 * b + 4]
                e, o = wv[g, b, r]
                acc += x0 * half(e) + x2 * half(e >> 16) + x1 * half(o) + x3 * half(o >> 16)
            got.append(acc)
    want = w.reshape(cout, d).astype(np.int64) @ x
    np.testing.assert_array_equal(np.array(got[:cout]), want)
    assert not any(got[cout:])                                                 # padded rows are zero


@pytest.mark.parametrize("shape", [(12, 9, 12), (5, 3, 3), (1, 1, 12), (4, 9, 4)])
def test_s1_packed_weights_compute_the_same_dot_products(shape):
    """sq_conv_s1's weight words (groups of 2 channels, input pairs, taps, 2 channels) against the int8 weights."""
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, shape).astype(np.int8)
    cout, k, cin = shape
    x = rng.integers(-128, 128, (k, cin)).astype(np.int64)
    half = lambda v: ((v & 0xFFFF) ^ 0x8000) - 0x8000                          # noqa: E731 int16
    for scale in (1, 2):
        words = C.pack_s1_weights(w, scale).astype(np.int64).reshape(-(-cout // 2), -(-cin // 2), k, 2)
        xp = np.zeros((k, 2 * words.shape[1]), np.int64)
        xp[:, :cin] = x
        got = [sum(xp[j, 2 * p] * half(words[g, p, j, c]) + xp[j, 2 * p + 1] * half(words[g, p, j, c] >> 16)
                   for p in range(words.shape[1]) for j in range(k)) for g in range(words.shape[0]) for c in range(2)]
        want = scale * (w.reshape(cout, -1).astype(np.int64) @ x.reshape(-1))
        np.testing.assert_array_equal(np.array(got[:cout]), want)
        assert not any(got[cout:])


def test_s1_path_and_requantization_choice():
    """Stride-1 'same' graphs take the s1 kernel; the fast requantization only where it is exact."""
    assert all(C.s1_graph(random_graph(s)) for s in S1_SPECS)
    assert not any(C.s1_graph(random_graph(s)) for s in ("odd", "student_like", "k1_wide"))
    g = random_graph("dilated_general")
    assert [C.s1_fast(l) for l in g.layers] == [True, False, True]


def test_s1_shift_requantization_is_tflite_after_the_clamp():
    """The "shift" layers' arithmetic (numpy of sq_s1_requant, fast == 2): accumulator scaled by 2^(1 + d), SMULL
    high word + addend, one shift R for the layer, clamp; equal to TFLite's requantization + clamp in both
    rounding modes over the whole accumulator bound (edges, zero, +-1 and random values)."""
    rng = np.random.default_rng(7)
    layers = [l for s in S1_SPECS for l in random_graph(s).layers if C.s1_shift(l)]
    assert len(layers) >= 3
    for l in layers:
        rs = C.s1_shift(l)
        q, sh = R.conv_multipliers(l)
        scale = C.s1_shift_scale(l)
        rq = C.s1_requant_shift(l).reshape(-1, 4)
        lo, hi = R.act_range(l)
        bound = C.acc_bound(l)
        acc = np.concatenate([rng.integers(-bound, bound + 1, 20000), np.arange(-300, 301), [-bound, bound]])
        for c in range(len(q)):
            a2 = acc * scale[c]
            assert np.abs(a2).max() < 2 ** 31
            h = (a2 * int(rq[c, 0])) >> 32                                      # SMULL high word
            for mode, k in (("double", rq[c, 1]), ("single", rq[c, 2])):
                got = np.clip((h + int(k)) >> rs, lo, hi)
                want = np.clip(R.multiply_by_quantized_multiplier(acc, q[c], sh[c], mode) + l.out_zp, lo, hi)
                np.testing.assert_array_equal(got, want, err_msg=f"{l.name} channel {c} {mode}")


def test_s1_shift_only_where_exact():
    """No "shift" requantization where the clamp does not hide the dropped sign term (act_min < out_zp)."""
    for s in S1_SPECS:
        for l in random_graph(s).layers:
            if C.s1_shift(l):
                assert C.s1_fast(l) and R.act_range(l)[0] >= l.out_zp
                assert (np.abs(l.weight).reshape(len(C.s1_shift_scale(l)), -1).max(axis=1)
                        * C.s1_shift_scale(l) <= 32767).all()


def test_folded_bias_is_the_tflite_accumulator():
    g = random_graph("odd", seed=5)
    layer = g.layers[0]
    x = np.random.default_rng(0).integers(-128, 128, layer.weight[0].size)
    w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int64)
    want = (x - layer.in_zp) @ w.T + layer.bias
    np.testing.assert_array_equal(x @ w.T + C.fold_bias(layer), want)


# ----------------------------------------------------------------------------- host (portable C)

@pytest.mark.parametrize("spec", sorted(SPECS))
def test_host_c_matches_reference_both_roundings(spec, tmp_path):
    g = random_graph(spec)
    C.generate_c(g, MD, tmp_path / "c")
    xq = _windows(g, 12)
    for single in (False, True):
        lib = C.build_shared_lib(tmp_path / "c", tmp_path / "build", single)
        got = C.run_shared_lib(lib, xq, g.output_size)
        np.testing.assert_array_equal(got, _reference(g, xq, single), err_msg=f"{spec} single={single}")


def test_outputs_are_not_trivial():
    """The random graphs produce varied outputs (a test on all-saturated outputs would prove nothing)."""
    for spec in SPECS:
        g = random_graph(spec)
        y = _reference(g, _windows(g, 12), False)
        assert len(np.unique(y)) > 4, spec


# ----------------------------------------------------------------------------- Cortex-M (DSP path)

def _need_cross():
    from sqtool.firmware_bench import mcu
    try:
        mcu.require_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm")
    except Exception as e:                                                       # noqa: BLE001
        import os
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.mark.parametrize("spec", ["odd", "student_like", "span_under_4", *S1_SPECS])
def test_cortex_m4_dsp_and_portable_paths_match_reference(spec, tmp_path):
    _need_cross()
    from sqtool.firmware_bench import mcu
    g = random_graph(spec, seed=2)
    C.generate_c(g, MD, tmp_path / "c")
    xq = _windows(g, 6)
    for defines in ((), ("SQ_SINGLE_ROUNDING=1",), ("SQ_NO_DSP",)):
        fw = mcu.build_firmware(tmp_path / "c", "m4", tmp_path / "fw", defines=defines)
        r = mcu.run_firmware(fw, xq.reshape(len(xq), -1), count=False)
        want = _reference(g, xq, "SQ_SINGLE_ROUNDING=1" in defines)
        np.testing.assert_array_equal(r.outputs, want, err_msg=f"{spec} {defines}")


@pytest.mark.parametrize("spec", S1_SPECS)
def test_cortex_m55_helium_path_matches_reference(spec, tmp_path):
    """The MVE kernels of sq_kernel_s1.c on an emulated Cortex-M55 (mps3-an547), both roundings, and the
    same source with -DSQ_NO_MVE (its DSP path)."""
    _need_cross()
    from sqtool.firmware_bench import mcu
    g = random_graph(spec, seed=3)
    C.generate_c(g, MD, tmp_path / "c")
    xq = _windows(g, 6)
    for defines in ((), ("SQ_SINGLE_ROUNDING=1",), ("SQ_NO_MVE",)):
        fw = mcu.build_firmware(tmp_path / "c", "m55", tmp_path / "fw", defines=defines)
        r = mcu.run_firmware(fw, xq.reshape(len(xq), -1), count=False)
        want = _reference(g, xq, "SQ_SINGLE_ROUNDING=1" in defines)
        np.testing.assert_array_equal(r.outputs, want, err_msg=f"{spec} {defines}")


def test_m4_build_uses_sxtb16_smlad_and_portable_build_does_not(tmp_path):
    _need_cross()
    if shutil.which("arm-none-eabi-objdump") is None:
        pytest.skip("arm-none-eabi-objdump missing")
    g = random_graph("odd")
    C.generate_c(g, MD, tmp_path / "c")
    flags = [*C.C_FLAGS, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-c",
             str(tmp_path / "c" / "sq_model.c")]
    dis = {}
    for tag, extra in (("dsp", []), ("portable", ["-DSQ_NO_DSP"])):
        obj = tmp_path / f"{tag}.o"
        subprocess.run(["arm-none-eabi-gcc", *flags, *extra, "-o", str(obj)], check=True, capture_output=True)
        dis[tag] = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True, text=True).stdout
    assert "smlad" in dis["dsp"] and "sxtb16" in dis["dsp"]
    assert "smlad" not in dis["portable"]


@pytest.mark.parametrize("spec", ["odd", "dilated"])
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m33", "cortex-m55"])
def test_other_cores_compile_warning_free(cpu, spec, tmp_path):
    """M0 (no DSP: portable path), M33 (DSP) and M55 (DSP; Helium for stride-1 graphs) with -Wall -Wextra
    -Werror -std=c99 -pedantic."""
    if shutil.which("arm-none-eabi-gcc") is None:
        _need_cross()
    g = random_graph(spec)
    C.generate_c(g, MD, tmp_path / "c")
    for single in (0, 1):
        fpu = ["-mfloat-abi=hard", "-mfpu=auto"] if cpu == "cortex-m55" else []     # hard float: MVE on
        r = subprocess.run(["arm-none-eabi-gcc", *C.C_FLAGS, f"-mcpu={cpu}", "-mthumb", *fpu, f"-DSQ_SINGLE_ROUNDING={single}",
                            "-c", str(tmp_path / "c" / "sq_model.c"), "-o", str(tmp_path / "m.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
