"""The C front end (templates + generated tables) is bit-exact with the numpy reference.

A small harness (fe_harness.c) streams int16 samples through sq_frontend_push in given chunk sizes and
writes every window's index, flagged_q15 and codes. Host gcc runs the portable path (random full-scale
streams with gaps, extreme streams, one real TROIKA recording, a 256 Hz single-channel build with the
hr2 prefix, an ASan + UBSan build); the Cortex-M4 build must compile with -Werror, and when QEMU is
present it runs the __smlad path on the emulated M4 against the same reference."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sqtool.data.frontend import QUIET, FrontEndCfg, filtered, flagged_q15, spectra, to_int16
from sqtool.export.c_frontend import render_frontend

HERE = Path(__file__).resolve().parent
FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"]
TROIKA = HERE.parents[1] / ".." / "shared" / "data" / "troika" / "Training_data"
MCU = HERE.parents[1] / "sqtool" / "firmware_bench" / "mcu"

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")


def _build(cfg, out, prefix="sq", extra=(), cc="gcc"):
    paths = render_frontend(cfg, out / "c", prefix=prefix)
    src = [p for p in paths if p.suffix == ".c"][0]
    harness = (HERE / "fe_harness.c").read_text()
    if prefix != "sq":
        harness = harness.replace("sq_", prefix + "_").replace("SQ_", prefix.upper() + "_")
    (out / "fe_harness.c").write_text(harness)
    exe = out / "fe_harness"
    subprocess.run([cc, *FLAGS, "-O2", *extra, f"-I{out / 'c'}", str(src), str(out / "fe_harness.c"),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    return exe


def _payload(x, gap, chunks, n_ppg=1):
    C, n = x.shape
    b = struct.pack("<iii", n, int(gap is not None), len(chunks)) + np.asarray(chunks, "<i4").tobytes()
    b += np.ascontiguousarray(x[:n_ppg].T).astype("<i2").tobytes()          # sensors interleaved per step
    if C - n_ppg == 3:
        b += np.ascontiguousarray(x[n_ppg:].T).astype("<i2").tobytes()
    if gap is not None:
        b += np.asarray(gap, np.uint8).tobytes()
    return b


def _parse(raw, F, C, T=128, n_ppg=1, n_in=None):
    n_in = C + n_ppg - 1 if n_in is None else n_in                     # input rows (acc axes summed: C = 2)
    rec = np.dtype([("i", "<i4"), ("f", "<u2"), ("c", "i1", (F, C)), ("r", "<i2", (n_in, T))])
    return np.frombuffer(raw, rec)


def _run_c(exe, x, gap, chunks, F=201, n_ppg=1, C=None):
    r = subprocess.run([str(exe)], input=_payload(x, gap, chunks, n_ppg), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return _parse(r.stdout, F, x.shape[0] - n_ppg + 1 if C is None else C, n_ppg=n_ppg, n_in=x.shape[0])


def _check(out, cfg, x, gap):
    spec, _, _ = spectra(cfg, x, gap)
    assert len(out) == spec.shape[0] > 0
    y, T, hop = filtered(cfg, x, gap), 128, int(cfg.hop_s * cfg.fs)
    ring = np.stack([y[:, i * hop:i * hop + T] for i in range(len(out))])
    assert np.array_equal(out["r"], ring), f"{int((out['r'] != ring).sum())} band-passed samples differ"
    assert out["i"].tolist() == list(range(len(out)))
    assert np.array_equal(out["c"], spec), f"{int((out['c'] != spec).sum())} codes differ"
    assert out["f"].tolist() == flagged_q15(cfg, gap, x.shape[1]).tolist()


def _random_streams(C=4, n=9000, seed=0):
    rng = np.random.default_rng(seed)
    full = rng.integers(-32768, 32768, size=(C, n)).astype(np.int16)
    gap = (rng.random(n) < 0.08).astype(np.uint8)
    gap[2000:2400] = 1
    chunks = rng.integers(1, 400, 64)
    t = np.arange(n) / 125.0
    tone = np.round(20000 * np.sin(2 * np.pi * 1.3 * t) + rng.normal(0, 500, (C, n))).clip(-32768, 32767)
    return [(full, gap, chunks), (full, None, [n]), (tone.astype(np.int16), gap, [1, 2, 3, 250, 7])]


def _extreme_streams(C=4, n=4000):
    i = np.arange(n)
    return [np.zeros((C, n), np.int16), np.full((C, n), 32767, np.int16), np.full((C, n), -32768, np.int16),
            np.where(i % 2, 32767, -32768).astype(np.int16)[None].repeat(C, 0),
            np.where((i // 37) % 2, 32767, -32768).astype(np.int16)[None].repeat(C, 0),
            np.where(i < n // 2, 0, 32767).astype(np.int16)[None].repeat(C, 0)]


@pytest.fixture(scope="module")
def host4(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("no host gcc")
    return _build(FrontEndCfg(), tmp_path_factory.mktemp("fe4"))


@needs_gcc
def test_api_error_contract(host4):
    r = subprocess.run([str(host4), "selftest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@needs_gcc
def test_random_full_scale_streams_bit_exact(host4):
    cfg = FrontEndCfg()
    for x, gap, chunks in _random_streams():
        _check(_run_c(host4, x, gap, chunks), cfg, x, gap)


@needs_gcc
def test_extreme_streams_bit_exact(host4):
    cfg = FrontEndCfg()
    for x in _extreme_streams():
        _check(_run_c(host4, x, None, [333]), cfg, x, None)


@needs_gcc
@pytest.mark.realdata
def test_troika_recording_bit_exact(host4):
    if not TROIKA.is_dir():
        pytest.skip("no ../shared/data/troika")
    from sqtool.data.readers import read_dataset
    rec = read_dataset(TROIKA)[0]
    cfg = FrontEndCfg()
    x = to_int16(np.stack([rec.signals[c] for c in ("ppg", "acc_x", "acc_y", "acc_z")]), cfg=cfg)
    gap = np.zeros(x.shape[1], np.uint8)
    gap[5000:5125] = 1                                 # a one-second dropout
    out = _run_c(host4, x, gap, [125, 1000, 17])
    _check(out, cfg, x, gap)
    assert len(out) >= 140                             # ~5 minutes at a 2 s hop


def _quiet_stream(C, n=125 * 70, seed=21):
    """Random live rows, each stuck (a level + up to 1 count of noise) over its own spans, so that windows of
    every row go quiet and live again at different times (the C's per-window min / max slots), and all of
    them from 50 s on."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((C, n)) * 3000).astype(np.int16)
    for c in range(C):
        for a, b in ([(0, 12), (20, 31)] if c % 2 == 0 else [(6, 17), (27, 40)]) + [(50 - c, 70 - c)]:
            a, b = int(125 * (a + c)), int(125 * (b + c))
            x[c, a:b] = 9000 * c - 16000 + rng.integers(-1, 2, b - a)
    return x, (rng.random(n) < 0.02).astype(np.uint8)


@needs_gcc
@pytest.mark.parametrize("n_ppg,n_channels", [(1, 4), (2, 4), (1, 2), (2, 2), (1, 1)])
def test_quiet_windows_are_silent_and_bit_exact(tmp_path, n_ppg, n_channels):
    """Step 5's silence rule: a row whose resampled samples span <= QUIET counts is coded as all-zero, the
    same window by window in C (min / max per window in flight) as in the reference."""
    cfg = FrontEndCfg(n_ppg=n_ppg, n_channels=n_channels)
    exe = _build(cfg, tmp_path)
    header = (HERE.parents[1] / "sqtool" / "export" / "templates" / "sq_frontend.h").read_text()
    assert re.search(r"#define SQ_FE_QUIET +(\d+) ", header).group(1) == str(QUIET)
    x, gap = _quiet_stream(cfg.n_inputs)
    for g, chunks in ((None, [333]), (gap, [1, 97, 250, 4])):
        out = _run_c(exe, x, g, chunks, n_ppg=n_ppg, C=n_channels)
        _check(out, cfg, x, g)
        silent = (out["c"] == -127).all(axis=1)                            # (W, C)
        assert silent.any(axis=0).all() and not silent.all(axis=0).any()  # every channel quiet and live


@needs_gcc
def test_single_channel_256hz_with_prefix(tmp_path):
    cfg = FrontEndCfg(fs_in=256.0, n_channels=1)
    exe = _build(cfg, tmp_path, prefix="hr2")
    text = "".join(p.read_text() for p in (tmp_path / "c").iterdir())
    assert "sq_" not in text and "SQ_" not in text and "HR2_FE_NCH" in text
    rng = np.random.default_rng(3)
    x = rng.integers(-32768, 32768, size=(1, 12000)).astype(np.int16)
    gap = (rng.random(12000) < 0.05).astype(np.uint8)
    _check(_run_c(exe, x, gap, rng.integers(1, 900, 20)), cfg, x, gap)


@needs_gcc
def test_sanitizers_on_random_and_extreme_streams(tmp_path):
    try:
        exe = _build(FrontEndCfg(), tmp_path, extra=("-g", "-fsanitize=address,undefined",
                                                     "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"))
    except subprocess.CalledProcessError as e:
        pytest.skip(f"sanitizers unavailable: {e.stderr.splitlines()[:1]}")
    cfg = FrontEndCfg()
    r = subprocess.run([str(exe), "selftest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for x, gap, chunks in _random_streams(n=5000, seed=9)[:2]:
        _check(_run_c(exe, x, gap, chunks), cfg, x, gap)
    for x in _extreme_streams(n=2500):
        _check(_run_c(exe, x, None, [1, 64, 999]), cfg, x, None)


@needs_arm
@pytest.mark.parametrize("defines", [(), ("-DSQ_FE_NO_DSP",)])
def test_cortex_m4_builds_with_werror(tmp_path, defines):
    for cfg in (FrontEndCfg(), FrontEndCfg(fs_in=256.0, n_channels=1), FrontEndCfg(n_ppg=2),
                FrontEndCfg(n_channels=1, n_ppg=2), FrontEndCfg(n_channels=2), FrontEndCfg(n_channels=2, n_ppg=2)):
        d = tmp_path / f"c{cfg.n_channels}_{cfg.n_ppg}"
        paths = render_frontend(cfg, d)
        r = subprocess.run(["arm-none-eabi-gcc", *FLAGS, "-O2", "-mcpu=cortex-m4", "-mthumb", *defines, f"-I{d}",
                            "-c", str(d / "sq_frontend.c"), "-o", str(d / "fe.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(d / "fe.o")], capture_output=True, text=True).stdout
        assert ("smlad" in dis) == (not defines)        # the DSP path uses __smlad, SQ_FE_NO_DSP does not
        assert len(paths) == 3


@needs_arm
@pytest.mark.mcu
@pytest.mark.parametrize("n_ppg,n_channels", [(1, 4), (2, 4), (2, 2)])
def test_cortex_m4_dsp_path_bit_exact_under_qemu(tmp_path, n_ppg, n_channels):
    """The __smlad path on an emulated Cortex-M4 (mps2-an386, picolibc, semihosting) = the reference."""
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("no qemu-system-arm")
    from sqtool.firmware_bench.mcu import TARGETS, picolibc_specs
    if picolibc_specs() is None:
        pytest.skip("no picolibc for arm-none-eabi")
    cfg = FrontEndCfg(n_ppg=n_ppg, n_channels=n_channels)
    d = tmp_path / "c"
    render_frontend(cfg, d)
    t = TARGETS["m4"]
    elf = tmp_path / "fe_m4.elf"
    subprocess.run(["arm-none-eabi-gcc", *t.cflags, "-O2", "-std=c99", "-Wall", "-Werror", "--specs=picolibc.specs",
                    "--oslib=semihost", "--crt0=hosted", f"-L{MCU}", "-T", t.ld, "-DFE_FILES", "-DFE_BENCH",
                    f"-I{d}", f"-I{MCU}", str(MCU / "startup.c"), str(HERE / "fe_harness.c"), str(d / "sq_frontend.c"),
                    "-o", str(elf)], check=True, capture_output=True, text=True)
    x, gap, _ = _random_streams(C=3 + n_ppg, n=4000, seed=11)[0]
    (tmp_path / "fe_in.bin").write_bytes(_payload(x, gap, [97, 250, 1], n_ppg))
    r = subprocess.run(["qemu-system-arm", "-M", t.machine, "-display", "none", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                       cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    _check(_parse((tmp_path / "fe_out.bin").read_bytes(), 201, n_channels, n_ppg=n_ppg, n_in=cfg.n_inputs), cfg, x, gap)


# ----------------------------------------------------------------------------- two PPG sensors (n_ppg = 2)

@pytest.fixture(scope="module")
def host5(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("no host gcc")
    return _build(FrontEndCfg(n_ppg=2), tmp_path_factory.mktemp("fe5"))


@needs_gcc
def test_two_ppg_selftest_random_and_extreme_streams_bit_exact(host5):
    """5 input rows (ppg, ppg2, acc x, y, z) -> 4 code channels, = the reference for any chunking, with gaps."""
    cfg = FrontEndCfg(n_ppg=2)
    r = subprocess.run([str(host5), "selftest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for x, gap, chunks in _random_streams(C=5, seed=4):
        _check(_run_c(host5, x, gap, chunks, n_ppg=2), cfg, x, gap)
    for x in _extreme_streams(C=5):
        _check(_run_c(host5, x, None, [1, 333], n_ppg=2), cfg, x, None)
    rng = np.random.default_rng(8)                   # one dead sensor, one sensor 10x louder
    x = _random_streams(C=5, n=5000, seed=5)[2][0].copy()
    x[1] = 0
    _check(_run_c(host5, x, None, [77], n_ppg=2), cfg, x, None)
    x[1] = np.clip(x[0].astype(np.int64) * 10 + rng.integers(-5, 5, x.shape[1]), -32768, 32767)
    _check(_run_c(host5, x, None, [77], n_ppg=2), cfg, x, None)


@needs_gcc
@pytest.mark.realdata
def test_two_ppg_troika_recording_bit_exact(host5):
    if not TROIKA.is_dir():
        pytest.skip("no ../shared/data/troika")
    from sqtool.data.readers import read_dataset
    rec = read_dataset(TROIKA)[1]
    cfg = FrontEndCfg(n_ppg=2)
    x = to_int16(np.stack([rec.signals[c] for c in ("ppg", "ppg2", "acc_x", "acc_y", "acc_z")]), cfg=cfg)
    x = np.ascontiguousarray(x[:, :125 * 90])
    gap = np.zeros(x.shape[1], np.uint8)
    gap[5000:5125] = 1
    out = _run_c(host5, x, gap, [125, 1000, 17], n_ppg=2)
    _check(out, cfg, x, gap)
    assert len(out) >= 40
    one = spectra(FrontEndCfg(), x[[0, 2, 3, 4]], gap)[0]
    assert np.array_equal(out["c"][..., 1:], one[..., 1:])          # acc channels: unchanged
    assert not np.array_equal(out["c"][..., 0], one[..., 0])        # ppg: now the two sensors' mean


@needs_gcc
def test_two_ppg_single_channel_256hz_with_prefix_and_sanitizers(tmp_path):
    cfg = FrontEndCfg(fs_in=256.0, n_channels=1, n_ppg=2)
    try:
        exe = _build(cfg, tmp_path, prefix="hr2", extra=("-g", "-fsanitize=address,undefined",
                                                          "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"))
    except subprocess.CalledProcessError as e:
        pytest.skip(f"sanitizers unavailable: {e.stderr.splitlines()[:1]}")
    text = "".join(p.read_text() for p in (tmp_path / "c").iterdir())
    assert "sq_" not in text and "SQ_" not in text and re.search(r"#define HR2_FE_N_PPG +2 ", text)
    rng = np.random.default_rng(6)
    x = rng.integers(-32768, 32768, size=(2, 9000)).astype(np.int16)
    gap = (rng.random(9000) < 0.05).astype(np.uint8)
    _check(_run_c(exe, x, gap, rng.integers(1, 900, 20), n_ppg=2), cfg, x, gap)


# ----------------------------------------------------------------------------- acc axes summed (n_channels = 2)

@needs_gcc
@pytest.mark.parametrize("n_ppg", [1, 2])
def test_summed_acc_streams_bit_exact_with_sanitizers(tmp_path, n_ppg):
    """ppg sensor(s) + acc x, y, z in -> 2 code channels (ppg, the axes' summed power) = the reference: random,
    extreme, and axes of very different scale (one dead, one 1000x weaker: the block-floating-point exponents
    that put the axes on one scale differ by up to 30)."""
    cfg = FrontEndCfg(n_channels=2, n_ppg=n_ppg)
    try:
        exe = _build(cfg, tmp_path, extra=("-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                           "-fno-omit-frame-pointer"))
    except subprocess.CalledProcessError as e:
        pytest.skip(f"sanitizers unavailable: {e.stderr.splitlines()[:1]}")
    r = subprocess.run([str(exe), "selftest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    C = 3 + n_ppg
    for x, gap, chunks in _random_streams(C=C, n=5000, seed=12):
        _check(_run_c(exe, x, gap, chunks, n_ppg=n_ppg, C=2), cfg, x, gap)
    for x in _extreme_streams(C=C, n=2500):
        _check(_run_c(exe, x, None, [1, 333], n_ppg=n_ppg, C=2), cfg, x, None)
    x = _random_streams(C=C, n=5000, seed=13)[2][0].copy()
    x[n_ppg] = 0                                                           # a dead axis
    x[n_ppg + 1] = (x[n_ppg + 1] // 1000).astype(np.int16)                 # an axis 1000x weaker
    _check(_run_c(exe, x, None, [250], n_ppg=n_ppg, C=2), cfg, x, None)
