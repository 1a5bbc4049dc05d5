"""The exported C heart-rate pipeline (front end + int8 network + decoder) against its Python integer reference.

A tiny spectral twin (spec_student_xs, untrained, calibrated on synthetic spectra) keeps this fast; the C is
built with -std=c99 -pedantic -Wall -Wextra -Werror. Bit-exact on a real TROIKA recording (first 60 s, with
dropouts) in several chunkings, on all-zero / saturated / random streams (also under ASan + UBSan), with
two prefixes in one binary, on Cortex-M4 under QEMU, and through the kit's own Makefile.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.export import pipeline as PL

TESTS = Path(__file__).resolve().parent
TEMPLATES = Path(PL.__file__).resolve().parent / "templates"
FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]


def _calibrated_twin(name: str):
    """(model_cfg dict, int graph, metadata) of a calibrated, untrained twin of the registry's `name`."""
    from export_fixtures import make_float_specnet, make_int8_specnet, synthetic_spectra
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.metadata import build_metadata
    f = make_float_specnet(name, 0)
    calib, _ = synthetic_spectra(f.cfg, 16, 0)
    q = make_int8_specnet(f, calib)
    g = extract_int_graph(q)
    mc = q.cfg.to_dict()
    return mc, g, build_metadata({"model_cfg": mc, "kind": "student_int8"}, "0" * 64, g)


@pytest.fixture(scope="module")
def twin():
    """(model_cfg dict, int graph, metadata) of a calibrated spec_student_xs twin."""
    return _calibrated_twin("spec_student_xs")


@pytest.fixture(scope="module")
def c_dir(twin, tmp_path_factory):
    d = tmp_path_factory.mktemp("pl_c")
    mc, g, md = twin
    PL.render_pipeline(mc, g, md, d)                                       # prefix sq, 125 Hz
    return d


def _cc(out: Path, srcs, inc, extra=()) -> Path:
    r = subprocess.run(["gcc", *FLAGS, *extra, *[f"-I{i}" for i in inc], *map(str, srcs), "-o", str(out)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[:3000]
    return out


def _pipeline_srcs(d: Path, prefix: str = "sq"):
    return [d / f"{prefix}_{s}.c" for s in ("frontend", "model", "decoder", "pipeline")]


@pytest.fixture(scope="module")
def example(c_dir, tmp_path_factory):
    """The kit's example main on the host (chunks up to 8192 samples), built with link-time optimisation: -Werror
    then sees across files (a quantile bound only set inside a loop once read as maybe-uninitialized)."""
    w = tmp_path_factory.mktemp("pl_ex")
    shutil.copyfile(TEMPLATES / "kit_main.c", w / "main.c")
    return _cc(w / "example", [w / "main.c", *_pipeline_srcs(c_dir)], [c_dir],
               ["-DSQ_EXAMPLE_MAX_CHUNK=8192", "-flto"])


@pytest.fixture(scope="module")
def sanitized(c_dir, tmp_path_factory):
    """ASan + UBSan builds of the example and of the API test."""
    w = tmp_path_factory.mktemp("pl_san")
    shutil.copyfile(TEMPLATES / "kit_main.c", w / "main.c")
    ex = _cc(w / "example", [w / "main.c", *_pipeline_srcs(c_dir)], [c_dir], [*SAN, "-DSQ_EXAMPLE_MAX_CHUNK=4096"])
    api = _cc(w / "api", [TESTS / "pl_api_test.c", *_pipeline_srcs(c_dir)], [c_dir], SAN)
    return ex, api


@pytest.fixture(scope="module")
def troika60(data_root):
    """First 60 s of the first TROIKA recording as device int16 (4, 7500) + a gap pattern."""
    from sqtool.data.hr_spectra import device_samples
    from sqtool.data.readers import iter_records
    root = data_root / "troika"
    if not root.is_dir():
        pytest.skip(f"no TROIKA data at {root}")
    rec = next(iter_records(root, "troika"))
    x16, fs = device_samples(rec, ("ppg", "acc_x", "acc_y", "acc_z"))
    assert fs == 125.0
    x16 = np.ascontiguousarray(x16[:, :7500])
    gap = np.zeros(7500, bool)
    gap[2000:2700] = True                    # 5.6 s dropout: some windows flagged > 50 %
    gap[5000:5010] = True
    gap[6001::97] = True
    return x16, gap


def _need_cross() -> None:
    """Skip without the cross toolchain / QEMU (as tests/firmware_bench does); under CI=true, fail."""
    import os
    from sqtool.firmware_bench.mcu import picolibc_specs
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-nm", "arm-none-eabi-size", "qemu-system-arm")
               if shutil.which(t) is None] + ([] if picolibc_specs() else ["picolibc"])
    if missing:
        msg = f"missing {', '.join(missing)} (Debian: gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " -- required under CI")
        pytest.skip(msg)


def _run_example(exe: Path, rec: Path, chunks: str) -> dict:
    r = subprocess.run([str(exe), str(rec), chunks], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[:2000]
    return PL.parse_results(r.stdout)


def _same(a: dict, b: dict) -> bool:
    return len(a["index"]) == len(b["index"]) and all(np.array_equal(a[k], b[k]) for k in PL.RESULT_KEYS)


def test_the_example_refuses_a_recording_cut_inside_a_frame(example, troika60, tmp_path):
    """A recording.bin whose size is not a whole number of frames (a copy cut short) is exit 2 and one line, not
    a silent drop of its last samples; the same file cut at a frame's end runs."""
    x16, gap = troika60
    rec = PL.write_recording(tmp_path / "rec.bin", x16[:, :1500], gap[:1500])
    data = rec.read_bytes()
    frame = len(data) // 1500
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:-1])
    r = subprocess.run([str(example), str(cut), "25"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "ends inside a frame" in r.stderr
    cut.write_bytes(data[:-frame])
    assert len(_run_example(example, cut, "25")["index"]) == len(_run_example(example, rec, "25")["index"])


# ----------------------------------------------------------------------------- reference

def test_reference_streaming_equals_vectorised_and_gates_flagged_windows(twin, troika60):
    mc, g, _ = twin
    x16, gap = troika60
    ref = PL.PipelineRef(mc, g, None, 125.0)
    whole = ref.run(x16, gap)
    assert len(whole["index"]) == 27 and list(whole["index"]) == list(range(27))
    assert (whole["valid"] == 0).any() and (whole["valid"] == 1).any()
    assert np.array_equal(whole["valid"] == 1, whole["flagged_q15"] <= PL.MAX_FLAGGED_Q15)
    for chunk in (1, 250, 7500):
        if chunk == 1:
            x, gp = x16[:, :1500], gap[:1500]              # chunk 1 in Python is slow: 12 s of signal
            want = ref.run(x, gp)
        else:
            x, gp, want = x16, gap, whole
        got = ref.run(x, gp, chunk=chunk)
        assert _same(got, want), chunk
    ref.reset()
    assert ref.push(np.zeros(0, np.int16), np.zeros((0, 3), np.int16)) == []
    with pytest.raises(SqtoolError, match="acc"):
        ref.push(np.zeros(4, np.int16))


def test_export_refuses_bad_contracts(twin, tmp_path):
    mc, g, md = twin
    with pytest.raises(SqtoolError, match="prefix"):
        PL.render_pipeline(mc, g, md, tmp_path, prefix="Bad-")
    with pytest.raises(SqtoolError, match=r"input at 8 Hz is below the 16 Hz the network reads: sample at 16 Hz or "
                                          r"faster \(the front end resamples down, never up\)"):
        PL.render_pipeline(mc, g, md, tmp_path, fs_in=8.0)                 # below the model rate
    with pytest.raises(SqtoolError, match="no spectral front end"):
        PL.PipelineRef({**mc, "frontend": {}}, g)


def test_a_single_file_unity_build_links(c_dir, tmp_path):
    """Some firmware builds #include every .c into one translation unit: the kit's sources (with the accelerometer
    resampler a slower accelerometer adds, and the example main) then share one namespace of statics and macros."""
    from sqtool.export.c_acc import render_acc_resampler
    kit = tmp_path / "kit"
    shutil.copytree(c_dir, kit)
    render_acc_resampler(25.0, 125.0, kit)
    shutil.copyfile(TEMPLATES / "kit_main.c", kit / "main.c")
    unity = tmp_path / "unity.c"
    unity.write_text("".join(f'#include "{f}"\n' for f in
                             ["sq_frontend.c", "sq_model.c", "sq_decoder.c", "sq_pipeline.c", "sq_acc_resampler.c",
                              "main.c"]))
    _cc(tmp_path / "unity", [unity], [kit])


# ----------------------------------------------------------------------------- host C == reference

def test_host_c_equals_reference_on_troika_any_chunking(twin, troika60, example, tmp_path):
    mc, g, _ = twin
    x16, gap = troika60
    want = PL.PipelineRef(mc, g, None, 125.0).run(x16, gap)
    rec = PL.write_recording(tmp_path / "rec.bin", x16, gap)
    for chunks in ("1", "7", "125", "8192", "1,7,0,125,300,0,2"):
        assert _same(_run_example(example, rec, chunks), want), chunks
    nogap = PL.PipelineRef(mc, g, None, 125.0).run(x16)
    rec2 = PL.write_recording(tmp_path / "rec2.bin", x16)
    assert _same(_run_example(example, rec2, "33"), nogap)
    assert nogap["valid"].all() and not _same(nogap, want)


def _example_with_decoder(twin, mc: dict, tmp_path):
    """The kit's example program built over the twin's pipeline rendered with model config `mc` (another
    decoder). Returns (executable, source dir)."""
    _, g, md = twin
    d = tmp_path / "c"
    PL.render_pipeline(mc, g, md, d)
    shutil.copyfile(TEMPLATES / "kit_main.c", tmp_path / "main.c")
    return _cc(tmp_path / "example", [tmp_path / "main.c", *_pipeline_srcs(d)], [d], ["-DSQ_EXAMPLE_MAX_CHUNK=8192"]), d


def test_host_c_equals_reference_with_the_confidence_read_from_the_interval_width(twin, troika60, tmp_path):
    """A decoder whose conf_measure is "width" (select_decoder's other candidate): the C pipeline's conf_q15,
    and every other field, still equal the Python integer reference on real data."""
    mc, g, _ = twin
    mc = {**mc, "decoder": {**mc["decoder"], "conf_measure": "width"}}
    exe, d = _example_with_decoder(twin, mc, tmp_path)
    x16, gap = troika60
    want = PL.PipelineRef(mc, g, None, 125.0).run(x16, gap)
    got = _run_example(exe, PL.write_recording(tmp_path / "rec.bin", x16, gap), "125")
    assert _same(got, want)
    mass = PL.PipelineRef(twin[0], g, None, 125.0).run(x16, gap)
    assert np.array_equal(want["hr_mbpm"], mass["hr_mbpm"]) and not np.array_equal(want["conf_q15"], mass["conf_q15"])
    w = want["hi_mbpm"].astype(np.int64) - want["lo_mbpm"]
    assert np.all(np.diff(want["conf_q15"].astype(np.int64)[np.argsort(w, kind="stable")]) <= 0)


def test_host_c_equals_reference_with_a_calibrated_confidence(twin, troika60, tmp_path):
    """A decoder with conf calibration knots (select_decoder's default): the C pipeline maps its raw conf
    through them as the Python integer reference does; the heart rate is untouched and the calibrated conf is
    the knots' map of the raw one."""
    from sqtool.models.decoder import _calibrate_q15
    mc, g, _ = twin
    xs, ys = [8000, 20000, 26000, 30000, 32000, 32700], [29000, 30500, 31800, 32200, 32500, 32650]
    mc = {**mc, "decoder": {**mc["decoder"], "conf_calib_x": xs, "conf_calib_y": ys}}
    exe, d = _example_with_decoder(twin, mc, tmp_path)
    assert "sq_dec_calib_x" in (d / "sq_decoder_tables.h").read_text()
    x16, gap = troika60
    want = PL.PipelineRef(mc, g, None, 125.0).run(x16, gap)
    assert _same(_run_example(exe, PL.write_recording(tmp_path / "rec.bin", x16, gap), "125"), want)
    raw = PL.PipelineRef(twin[0], g, None, 125.0).run(x16, gap)
    assert np.array_equal(want["hr_mbpm"], raw["hr_mbpm"])
    assert np.array_equal(want["conf_q15"], [_calibrate_q15(int(c), xs, ys) for c in raw["conf_q15"]])


def test_host_c_equals_reference_with_the_spread_interval(twin, troika60, tmp_path):
    """A decoder that reports the spread interval (hr -+ (c + k S), select_decoder's choice on the benchmarks'
    folds): the whole C pipeline equals the Python integer reference on real data, chunked, with the same heart
    rate as the posterior interval's decoder and an interval symmetric about it unless cut at the grid's extent."""
    mc, g, _ = twin
    mc = {**mc, "decoder": {**mc["decoder"], "interval_mode": "spread", "spread_shift": 3, "spread_c_bpm": 1.5,
                            "spread_k": 1.75}}
    exe, d = _example_with_decoder(twin, mc, tmp_path)
    assert re.search(r"^#define SQ_DEC_SPREAD +1 ", (d / "sq_decoder_tables.h").read_text(), re.M)
    x16, gap = troika60
    ref = PL.PipelineRef(mc, g, None, 125.0)
    want = ref.run(x16, gap)
    rec = PL.write_recording(tmp_path / "rec.bin", x16, gap)
    for chunks in ("125", "1,7,0,300"):
        assert _same(_run_example(exe, rec, chunks), want), chunks
    post = PL.PipelineRef(twin[0], g, None, 125.0).run(x16, gap)
    assert np.array_equal(want["hr_mbpm"], post["hr_mbpm"]) and not np.array_equal(want["hi_mbpm"], post["hi_mbpm"])
    hr, lo, hi = (want[k].astype(np.int64) for k in ("hr_mbpm", "lo_mbpm", "hi_mbpm"))
    e0, e1 = (int(round(1000 * e)) for e in ref.dec_cfg.edges_bpm)      # the grid's extent, whole mBPM here
    assert lo.min() >= e0 and hi.max() <= e1 and np.all((lo <= hr) & (hr <= hi))
    assert np.all((hi - hr >= 1500) | (hi == e1)) and np.all((hi - hr == hr - lo) | (lo == e0) | (hi == e1))


def test_host_c_equals_reference_with_the_motion_subtracted_ppg_evidence(twin, troika60, tmp_path):
    """A decoder that weighs the motion-subtracted PPG spectrum (evidence_weight > 0, select_decoder's choice
    when it decodes the inner windows better): the C pipeline hands the front end's codes to the decoder and
    still equals the Python integer reference, chunked and with dropouts; the evidence moves the decoded HR."""
    mc, g, _ = twin
    mc = {**mc, "decoder": {**mc["decoder"], "evidence_weight": 2.0}}
    exe, d = _example_with_decoder(twin, mc, tmp_path)
    assert "sq_dec_pen" in (d / "sq_decoder_tables.h").read_text()
    x16, gap = troika60
    ref = PL.PipelineRef(mc, g, None, 125.0)
    want = ref.run(x16, gap)
    assert _same(ref.run(x16, gap, chunk=77), want)
    rec = PL.write_recording(tmp_path / "rec.bin", x16, gap)
    for chunks in ("125", "1,7,0,300"):
        assert _same(_run_example(exe, rec, chunks), want), chunks
    plain = PL.PipelineRef(twin[0], g, None, 125.0).run(x16, gap)
    assert not np.array_equal(want["hr_mbpm"], plain["hr_mbpm"])


def _extreme_streams(n: int = 3750, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sat = np.where(np.arange(n) % 2, 32767, -32768).astype(np.int16)
    return {
        "zeros": (np.zeros((4, n), np.int16), None),
        "saturated_const": (np.full((4, n), 32767, np.int16), None),
        "saturated_alternating": (np.tile(sat, (4, 1)), None),
        "random_full_range": (rng.integers(-32768, 32768, (4, n)).astype(np.int16), rng.random(n) < 0.3),
        "all_flagged": (rng.integers(-1000, 1000, (4, n)).astype(np.int16), np.ones(n, bool)),
    }


def test_host_c_equals_reference_on_zero_saturated_random_streams(twin, example, tmp_path):
    mc, g, _ = twin
    ref = PL.PipelineRef(mc, g, None, 125.0)
    for name, (x, gp) in _extreme_streams().items():
        want = ref.run(x, gp)
        assert len(want["index"]) == 12
        got = _run_example(example, PL.write_recording(tmp_path / f"{name}.bin", x, gp), "1,125,0,64")
        assert _same(got, want), name
        if name in ("all_flagged", "zeros"):                            # flagged, or a quiet (all-zero) PPG
            assert not want["valid"].any(), name
        if name == "saturated_const":                                   # railed: quiet once the FIR's start-up
            assert list(want["valid"]) == [1] + [0] * 11                # ramp from 0 has left window 0


def _stuck_inside(res: dict, a_s: float, b_s: float) -> np.ndarray:
    """(W,) bool: the windows (8 s every 2 s) wholly inside the input span [a_s, b_s) s, past the FIR's 0.25 s."""
    t0 = 2.0 * res["index"]
    return (t0 >= a_s + 0.25) & (t0 + 8.0 <= b_s)


def test_a_stuck_ppg_is_not_scored_and_the_c_equals_the_reference(twin, troika60, example, tmp_path):
    """A PPG stuck for 30 s in the middle (no gap flags, the axes alive): the windows inside are not scored
    (valid = 0: the network does not run, the decoder predicts), the others are; the C == PipelineRef."""
    mc, g, _ = twin
    x16 = troika60[0].copy()
    x16[0, 1875:5625] = 1200                                              # 15-45 s
    ref = PL.PipelineRef(mc, g, None, 125.0)
    want = ref.run(x16)
    inside = _stuck_inside(want, 15.0, 45.0)
    outside = (2.0 * want["index"] + 8.0 <= 15.0) | (2.0 * want["index"] >= 45.0)
    assert inside.sum() >= 9 and not want["valid"][inside].any() and want["valid"][outside].all()
    assert not want["flagged_q15"].any()
    assert _same(ref.run(x16, chunk=250), want)                           # the push path agrees
    rec = PL.write_recording(tmp_path / "stuck.bin", x16)
    for chunks in ("1", "125", "8192", "1,7,0,125,300,0,2"):
        assert _same(_run_example(example, rec, chunks), want), chunks


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_asan_ubsan_on_random_extreme_streams_and_bad_input(twin, sanitized, tmp_path):
    ex, api = sanitized
    r = subprocess.run([str(api)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout + r.stderr)[-3000:]
    mc, g, _ = twin
    ref = PL.PipelineRef(mc, g, None, 125.0)
    streams = _extreme_streams(seed=1)
    for name in ("random_full_range", "saturated_alternating", "zeros"):
        x, gp = streams[name]
        got = _run_example(ex, PL.write_recording(tmp_path / f"{name}.bin", x, gp), "4096,1,3,0,250")
        assert _same(got, ref.run(x, gp)), name


def test_bad_arguments_and_overflow_refused(c_dir, tmp_path):
    """pl_api_test.c: NULL pointers, n < 0, n = 0, max_out too small (state untouched), pending exact."""
    api = _cc(tmp_path / "api", [TESTS / "pl_api_test.c", *_pipeline_srcs(c_dir)], [c_dir])
    r = subprocess.run([str(api)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout[-3000:]
    assert PL.max_results(PL.frontend_config({"fs": 16.0, "window_s": 8.0, "hop_s": 2.0, "channels": ["ppg"],
                                              "band": [0.5, 4.0], "frontend": {"type": "spectrum"}}, 125.0),
                          250) == 2


def test_two_prefixes_link_into_one_binary(twin, c_dir, troika60, tmp_path):
    mc, g, md = twin
    x16, gap = troika60
    d = tmp_path / "c"
    shutil.copytree(c_dir, d)
    PL.render_pipeline(mc, g, md, d, fs_in=256.0, prefix="hr2")
    assert (d / "hr2_pipeline.h").is_file() and "sq_" not in (d / "hr2_model.c").read_text()
    exe = _cc(tmp_path / "two", [TESTS / "pl_two_prefix.c", *_pipeline_srcs(d), *_pipeline_srcs(d, "hr2")], [d])
    rng = np.random.default_rng(3)
    tt = np.arange(256 * 30) / 256.0
    x256 = np.stack([3000 * np.sin(2 * np.pi * 1.7 * tt)] + [500 * np.sin(2 * np.pi * 1.1 * tt + k) for k in range(3)])
    x256 = np.round(x256 + 100 * rng.standard_normal(x256.shape)).astype(np.int16)
    ra = PL.write_recording(tmp_path / "a.bin", x16, gap)
    rb = PL.write_recording(tmp_path / "b.bin", x256)
    r = subprocess.run([str(exe), str(ra), str(rb), "100"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    got_a = PL.parse_results("\n".join(ln[3:] for ln in lines if ln.startswith("sq ")))
    got_b = PL.parse_results("\n".join(ln[4:] for ln in lines if ln.startswith("hr2 ")))
    assert _same(got_a, PL.PipelineRef(mc, g, None, 125.0).run(x16, gap))
    want_b = PL.PipelineRef(mc, g, None, 256.0).run(x256)
    assert len(want_b["index"]) == 12 and _same(got_b, want_b)


def test_arena_section_macro_places_the_arena(c_dir, tmp_path):
    obj = tmp_path / "m.o"
    r = subprocess.run(["gcc", *FLAGS, "-c", f"-I{c_dir}", "-DSQ_ARENA_SECTION=__attribute__((section(\".sq_arena\")))",
                        str(c_dir / "sq_model.c"), "-o", str(obj)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[:2000]
    heads = subprocess.run(["objdump", "-h", str(obj)], capture_output=True, text=True).stdout
    assert ".sq_arena" in heads
    assert "SQ_SINGLE_ROUNDING 1" in (c_dir / "sq_model.h").read_text()


# ----------------------------------------------------------------------------- MCU and the kit

@pytest.mark.mcu
def test_m4_qemu_equals_host_and_reference(twin, c_dir, troika60, tmp_path):
    _need_cross()
    from sqtool.firmware_bench import pipeline_fw as PF
    mc, g, _ = twin
    x16, gap = troika60
    want = PL.PipelineRef(mc, g, None, 125.0).run(x16, gap)
    fw = PF.build_pipeline(c_dir, "m4", tmp_path, staged=True, chunk=50)
    r = PF.run_pipeline(fw, x16, gap)
    assert _same(r.results, want)
    ins = r.stage_insns
    assert ins["network"] > 0 and ins["decoder"] > 0 and ins["frontend_window"] > ins["frontend_stream"] > 0
    host = PF.run_pipeline(PF.build_pipeline(c_dir, "host", tmp_path, chunk=50), x16, gap)
    assert _same(host.results, want)
    whole = PF.build_pipeline(c_dir, "m4", tmp_path, staged=False, chunk=50)
    rw = PF.run_pipeline(whole, x16, gap)
    assert _same(rw.results, want) and len(rw.counts) == 150
    assert 100 < rw.stack_high_water < 4096
    sz = PF.pipeline_sizes(whole, rw.stack_high_water)
    assert 0 < sz["flash_bytes"] < 128 * 1024 and sz["objects"]["frontend"]["const"] > 0


def test_kit_example_builds_with_its_makefile(twin, tmp_path):
    from sqtool.export.kit import check_kit, write_kit
    if shutil.which("make") is None:
        pytest.skip("no make")
    mc, g, md = twin
    info = write_kit(tmp_path / "kit", mc, g, md, prefix="hr3")
    kit = tmp_path / "kit"
    for f in ("Makefile", "CMakeLists.txt", "README.md", "MODEL_CARD.md", "example/main.c",
              "example/board/mps2_an386.ld", "test_vectors/recording.bin", "test_vectors/expected.txt",
              "c/hr3_pipeline.h", "c/hr3_model.c"):
        assert (kit / f).is_file(), f
    assert not list(kit.rglob("*.npz"))                                    # no subject data
    assert info["vectors"]["synthetic"] and info["vectors"]["invalid_windows"] >= 1
    readme = (kit / "README.md").read_text()
    assert "hr3_pipeline_push" in readme and "@" + "ACC_RATE@" not in readme
    assert ("holding the latest sample" in readme) == (len(mc["channels"]) > 1)     # a slower accelerometer
    r = subprocess.run(["make", "-s", "-C", str(kit), f"BUILD={tmp_path / 'b'}", "check"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.count("bit-exact") == 5, r.stdout + r.stderr
    big = subprocess.run([str(tmp_path / "b" / "host" / "example"), str(kit / "test_vectors" / "recording.bin"),
                          "6000"], capture_output=True, text=True, timeout=60)     # the Makefile's 8192-sample chunks
    assert big.returncode == 0 and big.stdout == (kit / "test_vectors" / "expected.txt").read_text()
    assert check_kit(kit)["ok"]
    from sqtool.export.kit import model_card
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"datasets": ["troika"], "heldout": {"mae_bpm": 5.25}}')
    card = model_card(mc, md, g, info["fe_cfg"], info["dec_cfg"], run)
    assert "heldout.mae_bpm | 5.25" in card and "academic use with citation" in card and "PhysioNet" not in card
    # no 'datasets' in the run: the checkpoint's subjects say what the model saw (quantize writes them)
    (run / "metrics.json").write_text('{"heldout": {"mae_bpm": 1.0}}')
    from sqtool.export.metadata import build_metadata
    ck = {"model_cfg": mc, "train_subjects": ["synthetic:syn000", "synthetic:syn001"],
          "heldout_subjects": ["synthetic:syn002"]}
    seen = build_metadata(ck, "0" * 64)["training_data"]                 # what export writes in metadata.json
    assert seen == {"datasets": ["synthetic"], "train_subjects": ck["train_subjects"],
                    "heldout_subjects": ["synthetic:syn002"]}
    card = model_card(mc, {**md, "training_data": seen}, g, info["fe_cfg"], info["dec_cfg"], run)
    assert "- `synthetic`: sqtool's embedded synthetic" in card and "`troika`" not in card
    assert "trained on 2 subjects: synthetic:syn000, synthetic:syn001" in card and "1 subject: synthetic:syn002" in card
    assert "**Trained on synthetic PPG only**" in card
    ck = {"model_cfg": mc, "train_subjects": ["troika:01", "wrist_exercise:s2"], "heldout_subjects": ["wrist_exercise:s3"]}
    card = model_card(mc, {**md, "training_data": build_metadata(ck, "0" * 64)["training_data"]}, g, info["fe_cfg"],
                      info["dec_cfg"], run)
    assert "synthetic PPG only" not in card and "fine-tuned on 2 subjects: troika 1, wrist_exercise 1" in card
    assert "- `troika`:" in card and "- `wrist_exercise`:" in card


def test_model_card_says_what_the_pretraining_saw_of_the_held_out_subjects(twin, tmp_path):
    """Held-out subjects are 'never trained on' only when the run's chain (quantize -> its teacher's fine-tune ->
    pretrain runs -> pairs index.json) shows no pretraining; when the pretraining pairs held their unlabelled PPG
    the card says so; when the chain cannot be read it says 'held out of supervised training'."""
    import json

    import yaml

    from sqtool.export.kit import model_card
    from sqtool.export.metadata import build_metadata
    from sqtool.export.pipeline import decoder_config, frontend_config
    mc, g, md = twin

    def config(d, command, **cfg):
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(yaml.safe_dump({"command": command, "config": cfg}))
        return d
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "index.json").write_text(json.dumps(
        {"subjects": ["troika/01", "troika/S04", "unlabeled/rec1", "wrist_exercise/s4", "wrist_exercise/s6"]}))
    for pre in ("pretrain", "pretrain_student"):
        config(tmp_path / pre, "train/pretrain", pairs=str(tmp_path / "pairs"))
    config(tmp_path / "finetune", "train/finetune", init=str(tmp_path / "pretrain" / "model.pt"))
    q = config(tmp_path / "quantize", "quantize", teacher=str(tmp_path / "finetune"),
               student_init=str(tmp_path / "pretrain_student" / "model.pt"))
    (q / "metrics.json").write_text(json.dumps({"heldout_in_teacher": False}))    # the teacher held them out too
    held = ["wrist_exercise:s4", "wrist_exercise:s5", "wrist_exercise:s6"]
    ck = {"model_cfg": mc, "train_subjects": ["troika:01", "wrist_exercise:s2"], "heldout_subjects": held}
    md = {**md, "training_data": build_metadata(ck, "0" * 64)["training_data"]}
    fe, dec = frontend_config(mc), decoder_config(mc, g)

    card = model_card(mc, md, g, fe, dec, q)
    assert "never trained on" not in card
    assert ("- held out of fine-tuning and quantization (the metrics below): 3 subjects: wrist_exercise:s4, "
            "wrist_exercise:s5, wrist_exercise:s6; the unlabelled PPG of wrist_exercise:s4, wrist_exercise:s6 was in "
            "the self-supervised pretraining pairs (no heart rate)") in card
    assert "pairs of unlabelled PPG windows): 5 subjects (troika 2, unlabeled 1, wrist_exercise 2)" in card
    assert "- `unlabeled` (self-supervised pretraining only):" in card
    config(tmp_path / "finetune", "train/finetune", init="none")                      # no pretraining upstream
    config(q, "quantize", teacher=str(tmp_path / "finetune" / "model.pt"), student_init=None)
    card = model_card(mc, md, g, fe, dec, q)
    assert "- held out (never trained on; the metrics below): 3 subjects: wrist_exercise:s4" in card
    assert "pretraining" not in card
    (tmp_path / "finetune" / "config.yaml").unlink()                                  # the chain cannot be read
    card = model_card(mc, md, g, fe, dec, q)
    assert "never trained on" not in card
    assert "- held out of supervised training (fine-tuning and quantization; the metrics below): 3 subjects" in card


def test_model_card_claims_no_held_out_synthetic_recording_in_the_generated_pairs(twin, tmp_path):
    """The default synthetic demo: the pairs' synthetic:syn003 and the HR corpus's synthetic:syn003 are different
    generated recordings matched by id only, so the card does not say the held-out one was in the pairs."""
    import json

    import yaml

    from sqtool.export.kit import model_card
    from sqtool.export.metadata import build_metadata
    from sqtool.export.pipeline import decoder_config, frontend_config
    mc, g, md = twin
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "index.json").write_text(json.dumps({"subjects": ["synthetic/syn001", "synthetic/syn003"]}))
    for d, command, cfg in (("pretrain", "train/pretrain", {"pairs": str(tmp_path / "pairs")}),
                            ("finetune", "train/finetune", {"init": str(tmp_path / "pretrain" / "model.pt")}),
                            ("quantize", "quantize", {"teacher": str(tmp_path / "finetune")})):
        (tmp_path / d).mkdir()
        (tmp_path / d / "config.yaml").write_text(yaml.safe_dump({"command": command, "config": cfg}))
    (tmp_path / "quantize" / "metrics.json").write_text(json.dumps({"heldout_in_teacher": False}))
    ck = {"model_cfg": mc, "train_subjects": ["synthetic:syn001"], "heldout_subjects": ["synthetic:syn003"]}
    md = {**md, "training_data": build_metadata(ck, "0" * 64)["training_data"]}
    card = model_card(mc, md, g, frontend_config(mc), decoder_config(mc, g),
                      tmp_path / "quantize")
    assert "the unlabelled PPG of" not in card
    assert ("- held out of fine-tuning and quantization (the metrics below): 1 subject: synthetic:syn003; the "
            "self-supervised pretraining pairs were generated recordings, none of the held-out recordings") in card
    assert "generated (synthetic) pairs only" in card


def test_two_kits_link_into_one_cmake_project(twin, tmp_path):
    """add_subdirectory() of two --prefix kits in one firmware project: only their libraries are made (no clash of
    example / test targets, no host example in a cross build), and one program calls both pipelines."""
    from sqtool.export.kit import write_kit
    if shutil.which("cmake") is None or shutil.which("cc") is None:
        pytest.skip("no cmake / cc")
    mc, g, md = twin
    for p in ("hra", "hrb"):
        write_kit(tmp_path / p, mc, g, md, prefix=p)
    (tmp_path / "main.c").write_text(
        '#include "hra_pipeline.h"\n#include "hrb_pipeline.h"\n'
        "int main(void) { static hra_pipeline_t a; static hrb_pipeline_t b;\n"
        "  return (int)(sizeof a == 0) + (int)(sizeof b == 0); }\n")
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(fw C)\nadd_subdirectory(hra)\nadd_subdirectory(hrb)\n"
        "add_executable(fw main.c)\ntarget_link_libraries(fw PRIVATE hra_pipeline hrb_pipeline)\n")
    r = subprocess.run(["cmake", "-S", str(tmp_path), "-B", str(tmp_path / "b")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert subprocess.run([str(tmp_path / "b" / "fw")], timeout=30).returncode == 0
    assert not list((tmp_path / "b").rglob("example*"))                     # no kit example in a firmware build


def test_kit_links_into_cxx_firmware(twin, tmp_path):
    """Every kit header declares C linkage for C++ callers (the decoder's lacked it: undefined reference)."""
    from sqtool.export.kit import write_kit
    if shutil.which("g++") is None or shutil.which("gcc") is None:
        pytest.skip("no g++ / gcc")
    mc, g, md = twin
    write_kit(tmp_path / "kit", mc, g, md, prefix="hr5")
    c = tmp_path / "kit" / "c"
    objs = []
    for src in sorted(c.glob("*.c")):
        o = tmp_path / (src.stem + ".o")
        subprocess.run(["gcc", "-std=c99", "-O1", "-c", str(src), "-I", str(c), "-o", str(o)], check=True, timeout=120)
        objs.append(str(o))
    (tmp_path / "fw.cpp").write_text(
        '#include "hr5_pipeline.h"\nstatic hr5_pipeline_t hr;\nstatic hr5_decoder_t dec;\n'
        "int main() { return hr5_decoder_init(&dec) != 0 || "
        "hr5_pipeline_init_device(&hr, HR5_PL_FS_IN_MHZ, HR5_PL_N_PPG) != 0; }\n")
    r = subprocess.run(["g++", "-std=c++11", "-Wall", "-Werror", str(tmp_path / "fw.cpp"), *objs, "-I", str(c),
                        "-o", str(tmp_path / "fw")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert subprocess.run([str(tmp_path / "fw")], timeout=30).returncode == 0


def test_cli_refuses_a_bad_device_rate_before_writing(tmp_path):
    from sqtool.export.cli import ExportConfig, export
    from export_fixtures import make_spec_int8_run
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=0, n_calib=8)
    for kw, match in (({"device_fs": 7.0}, "--device-fs 7: below the 16 Hz the network reads"), ({"prefix": "2x"}, "prefix")):
        with pytest.raises(SqtoolError, match=match):
            export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "out"), **kw))
        assert not (tmp_path / "out").exists()


def test_decoder_temperature_folds_into_the_logit_scale_once():
    """A model's decoder dict carries a temperature; the pipeline divides the int8 logits' scale by it, and a
    DecoderCfg already resolved (what the C tables were rendered from) is used as is, not re-scaled."""
    from types import SimpleNamespace
    from sqtool.export.pipeline import decoder_config
    g = SimpleNamespace(output_scale=0.12)
    mc = {"arch": {"bins_bpm": [30.0, 229.5, 1.5]}, "decoder": {"bins_bpm": [30.0, 229.5, 1.5], "sigma_bpm": 4.0,
                                                                 "floor": 1e-3, "temperature": 3.0}}
    d = decoder_config(mc, g)
    assert abs(d.logit_scale - 0.04) < 1e-12
    assert decoder_config(mc, g, d) is d                   # resolved: unchanged, not divided again


def test_kit_cmake_build_runs_its_parity_checks_in_every_chunking_and_the_selftest(twin, tmp_path):
    """CMakeLists.txt on the host: ctest runs test_vectors/check.cmake once per chunking and the self-test; a wrong
    expected.txt fails every parity test, each naming its chunking."""
    from sqtool.export.kit import write_kit
    if not (shutil.which("cmake") and shutil.which("ctest")):
        pytest.skip("cmake / ctest missing")
    mc, g, md = twin
    kit, b = tmp_path / "kit", tmp_path / "b"
    write_kit(kit, mc, g, md)
    for cmd in (["cmake", "-S", str(kit), "-B", str(b)], ["cmake", "--build", str(b)],
                ["ctest", "--test-dir", str(b), "--output-on-failure"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    n = int(re.search(r"tests passed, 0 tests failed out of (\d+)", r.stdout).group(1))
    assert n >= 6 and "parity_5" in r.stdout and "selftest" in r.stdout
    (kit / "test_vectors" / "expected.txt").write_text("0 0 0 0 0 0 0\n")
    r = subprocess.run(["ctest", "--test-dir", str(b), "-R", "parity", "--output-on-failure"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode != 0 and "results differ from test_vectors/expected.txt (chunks 1,7,0,125,300)" in r.stdout


@pytest.fixture(scope="module")
def mcu_kit(twin, tmp_path_factory):
    from sqtool.export.kit import write_kit
    if not (shutil.which("make") and shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        pytest.skip("make / arm-none-eabi-gcc / qemu-system-arm missing")
    mc, g, md = twin
    kit = tmp_path_factory.mktemp("mcu_kit") / "kit"
    write_kit(kit, mc, g, md)
    return kit


@pytest.mark.mcu
@pytest.mark.parametrize("board, name", [("mps2", "MPS2 AN386 (Cortex-M4)"), ("an505", "MPS2 AN505 (Cortex-M33)"),
                                         ("an547", "MPS3 AN547 (Cortex-M55)")])
def test_kit_example_runs_bit_exact_on_each_emulated_cortex_m_with_its_makefile(mcu_kit, tmp_path, board, name):
    """What the firmware engineer runs: the kit's own `make check-mps2` (check-an505, check-an547) builds
    example/main.c for the board and diffs the QEMU output with the exported test vectors; `make selftest-<board>`
    runs the self-test with the vectors compiled in on it, and a wrong vector is its MISMATCH."""
    def make(kit, target):
        return subprocess.run(["make", "-s", "-C", str(kit), f"BUILD={tmp_path / 'b'}", target],
                              capture_output=True, text=True, timeout=600)
    r = make(mcu_kit, f"check-{board}")
    assert r.returncode == 0 and f"{name}: bit-exact" in r.stdout, r.stdout + r.stderr
    st = "selftest-an386" if board == "mps2" else f"selftest-{board}"
    r = make(mcu_kit, st)
    assert r.returncode == 0 and f"selftest ({name}, vectors compiled in): every result equal" in r.stdout, \
        r.stdout + r.stderr
    if board == "an505" and shutil.which("cmake"):               # CMakeLists.txt -DSQ_MPS2=ON -DSQ_BOARD: the same
        b = tmp_path / "cm"
        for cmd in (["cmake", "-S", str(mcu_kit), "-B", str(b), "-DSQ_MPS2=ON", "-DSQ_BOARD=an505"],
                    ["cmake", "--build", str(b)]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        shutil.copyfile(mcu_kit / "test_vectors" / "recording.bin", b / "recording.bin")
        r = subprocess.run(["qemu-system-arm", "-M", "mps2-an505", "-display", "none", "-monitor", "none", "-serial",
                            "none", "-semihosting-config", "enable=on,target=native", "-kernel", "example.elf"],
                           cwd=b, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and r.stderr == (mcu_kit / "test_vectors" / "expected.txt").read_text()
    if board == "mps2":                                          # a wrong expected line: the board says so
        bad = tmp_path / "bad"
        shutil.copytree(mcu_kit, bad)
        (bad / "test_vectors" / "expected.txt").write_text("0 0 0 0 0 0 0\n")
        r = make(bad, "check-an386")
        assert r.returncode != 0 and "MISMATCH with test_vectors/expected.txt (an386)" in r.stdout


# ----------------------------------------------------------------------------- two PPG sensors (SQ_FE_N_PPG = 2)

@pytest.fixture(scope="module")
def c_dir2(twin, tmp_path_factory):
    d = tmp_path_factory.mktemp("pl_c2")
    mc, g, md = twin
    PL.render_pipeline(mc, g, md, d, n_ppg=2)                              # prefix sq, 125 Hz, ppg + ppg2
    return d


@pytest.fixture(scope="module")
def example2(c_dir2, tmp_path_factory):
    w = tmp_path_factory.mktemp("pl_ex2")
    shutil.copyfile(TEMPLATES / "kit_main.c", w / "main.c")
    return _cc(w / "example", [w / "main.c", *_pipeline_srcs(c_dir2)], [c_dir2],
               [*SAN, "-DSQ_EXAMPLE_MAX_CHUNK=8192"])


@pytest.fixture(scope="module")
def troika60_2(data_root):
    """First 60 s of the first TROIKA recording, both PPG sensors: int16 (5, 7500) + a gap pattern."""
    from sqtool.data.hr_spectra import device_samples
    from sqtool.data.readers import iter_records
    root = data_root / "troika"
    if not root.is_dir():
        pytest.skip(f"no TROIKA data at {root}")
    rec = next(iter_records(root, "troika"))
    x16, _ = device_samples(rec, ("ppg", "ppg2", "acc_x", "acc_y", "acc_z"))
    x16 = np.ascontiguousarray(x16[:, :7500])
    gap = np.zeros(7500, bool)
    gap[2000:2700] = True
    gap[6001::97] = True
    return x16, gap


def test_two_ppg_reference_streaming_equals_vectorised(twin, troika60_2):
    mc, g, _ = twin
    x16, gap = troika60_2
    ref = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2)
    whole = ref.run(x16, gap)
    assert len(whole["index"]) == 27 and (whole["valid"] == 0).any()
    for chunk in (250, 7500):
        assert _same(ref.run(x16, gap, chunk=chunk), whole), chunk
    ref.reset()                                                            # ppg as (n, 2) or interleaved (2 n,)
    a = ref.push(np.ascontiguousarray(x16[:2, :4000].T), np.ascontiguousarray(x16[2:, :4000].T))
    ref.reset()
    b = ref.push(np.ascontiguousarray(x16[:2, :4000].T).reshape(-1), np.ascontiguousarray(x16[2:, :4000].T))
    assert a == b and len(a) > 5
    one = PL.PipelineRef(mc, g, None, 125.0).run(x16[[0, 2, 3, 4]], gap)
    assert not _same(one, whole)                                           # the second sensor is used


def test_two_ppg_host_c_equals_reference_any_chunking_and_extremes(twin, troika60_2, example2, tmp_path):
    """Under ASan + UBSan: the 2-sensor C pipeline == PipelineRef(n_ppg=2) on TROIKA (ppg + ppg2, dropouts) in
    several chunkings, and on zero / saturated / random streams."""
    mc, g, _ = twin
    x16, gap = troika60_2
    ref = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2)
    want = ref.run(x16, gap)
    rec = PL.write_recording(tmp_path / "rec.bin", x16, gap)
    for chunks in ("1", "125", "8192", "1,7,0,125,300,0,2"):
        assert _same(_run_example(example2, rec, chunks), want), chunks
    rng = np.random.default_rng(5)
    n = 3750
    streams = {"zeros": (np.zeros((5, n), np.int16), None),
               "one_dead_sensor": (np.concatenate([rng.integers(-3000, 3000, (1, n)), np.zeros((1, n)),
                                                   rng.integers(-3000, 3000, (3, n))]).astype(np.int16), None),
               "random_full_range": (rng.integers(-32768, 32768, (5, n)).astype(np.int16), rng.random(n) < 0.3),
               "saturated_alternating": (np.tile(np.where(np.arange(n) % 2, 32767, -32768), (5, 1)).astype(np.int16),
                                         None)}
    for name, (x, gp) in streams.items():
        got = _run_example(example2, PL.write_recording(tmp_path / f"{name}.bin", x, gp), "1,125,0,64")
        assert _same(got, ref.run(x, gp)), name


def test_two_ppg_one_stuck_sensor_is_scored_both_stuck_are_not(twin, troika60_2, example2, tmp_path):
    """Two PPG sensors: one stuck for 30 s still leaves the windows scored; both stuck (one at the rail) does not;
    the C (ASan + UBSan) == PipelineRef(n_ppg=2) on both."""
    mc, g, _ = twin
    ref = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2)
    one = troika60_2[0].copy()
    one[1, 1875:5625] = 1200                                              # ppg2 stuck 15-45 s
    both = one.copy()
    both[0, 1875:5625] = 32767                                            # ppg railed too
    for name, x, scored in (("one_stuck", one, True), ("both_stuck", both, False)):
        want = ref.run(x)
        inside = _stuck_inside(want, 15.0, 45.0)
        assert inside.sum() >= 9 and (want["valid"][inside] == scored).all() and want["valid"][~inside].any(), name
        assert _same(ref.run(x, chunk=250), want), name
        got = _run_example(example2, PL.write_recording(tmp_path / f"{name}.bin", x), "1,125,0,64")
        assert _same(got, want), name


def test_two_ppg_api_and_two_prefixes(twin, c_dir, c_dir2, troika60, troika60_2, tmp_path):
    """pl_api_test.c on the 2-sensor build (init_device refuses 1 sensor); a 1-sensor sq and a 2-sensor hr2
    pipeline at 256 Hz in one binary."""
    api = _cc(tmp_path / "api", [TESTS / "pl_api_test.c", *_pipeline_srcs(c_dir2)], [c_dir2], SAN)
    r = subprocess.run([str(api)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout[-3000:]
    mc, g, md = twin
    d = tmp_path / "c"
    shutil.copytree(c_dir, d)
    PL.render_pipeline(mc, g, md, d, fs_in=256.0, prefix="hr2", n_ppg=2)
    assert "#define HR2_FE_N_PPG" in (d / "hr2_frontend_tables.h").read_text()
    exe = _cc(tmp_path / "two", [TESTS / "pl_two_prefix.c", *_pipeline_srcs(d), *_pipeline_srcs(d, "hr2")], [d])
    x16, gap = troika60
    rng = np.random.default_rng(3)
    tt = np.arange(256 * 30) / 256.0
    pulse = 3000 * np.sin(2 * np.pi * 1.7 * tt)
    x256 = np.stack([pulse, 0.1 * pulse + 300 * np.sin(2 * np.pi * 1.1 * tt)]
                    + [500 * np.sin(2 * np.pi * 1.1 * tt + k) for k in range(3)])
    x256 = np.round(x256 + 100 * rng.standard_normal(x256.shape)).astype(np.int16)
    ra = PL.write_recording(tmp_path / "a.bin", x16, gap)
    rb = PL.write_recording(tmp_path / "b.bin", x256)
    r = subprocess.run([str(exe), str(ra), str(rb), "100"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    got_a = PL.parse_results("\n".join(ln[3:] for ln in lines if ln.startswith("sq ")))
    got_b = PL.parse_results("\n".join(ln[4:] for ln in lines if ln.startswith("hr2 ")))
    assert _same(got_a, PL.PipelineRef(mc, g, None, 125.0).run(x16, gap))
    want_b = PL.PipelineRef(mc, g, None, 256.0, n_ppg=2).run(x256)
    assert len(want_b["index"]) == 12 and _same(got_b, want_b)


def test_sensor_mismatch_is_one_line_error(twin, tmp_path):
    mc, g, md = twin
    ref = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2)
    with pytest.raises(SqtoolError, match=r"\(5, N\).*2 PPG sensor"):
        ref.run(np.zeros((4, 2000), np.int16))                             # a 1-sensor recording
    with pytest.raises(SqtoolError, match="ppg must be int16"):
        ref.push(np.zeros(3, np.int16), np.zeros((3, 3), np.int16))       # 3 values: not 2 per step
    for bad_mc, n, match in (({**mc, "frontend": {**mc["frontend"], "ppg_sensors": ["ppg"]}}, 2, "at most 1 PPG"),
                             (mc, 3, "at most 2 PPG"), (mc, 0, "at most 2 PPG")):
        with pytest.raises(SqtoolError, match=match) as e:
            PL.render_pipeline(bad_mc, g, md, tmp_path / "x", n_ppg=n)
        assert "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_cli_ppg_sensors_default_and_refusal(tmp_path):
    from sqtool.export.cli import ExportConfig, device_ppg, export
    from export_fixtures import make_spec_int8_run
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=0, n_calib=8)
    mc = {"channels": ["ppg", "acc_x", "acc_y", "acc_z"], "frontend": {"type": "spectrum", "ppg_sensors": ["ppg", "ppg2"]}}
    assert device_ppg(ExportConfig(), mc) == 2 and device_ppg(ExportConfig(ppg_sensors=1), mc) == 1
    assert device_ppg(ExportConfig(), {**mc, "frontend": {"type": "spectrum"}}) == 1      # models older than the key
    with pytest.raises(SqtoolError, match="a device with 3"):
        export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "out"), ppg_sensors=3))
    assert not (tmp_path / "out").exists()


def test_export_says_a_two_sensor_kit_needs_ppg_sensors_1_for_a_one_sensor_device(tmp_path):
    """A model trained beside SP Cup's two-sensor recordings gets a two-sensor kit by default: export says so in a
    note naming --ppg-sensors 1 where the source run's own recordings had one sensor (quantize's recorded_rates
    ppg_sensors), as a condition on the device where the run recorded no count, and not at all where they had two
    (a team's two-LED watch read the hint as meant for it); nothing once the count is given."""
    import json

    import torch
    from export_fixtures import make_spec_int8_run
    from sqtool.export.cli import ExportConfig, _load_inputs
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=4, n_calib=8)
    ck = torch.load(run / "model.pt", weights_only=False)
    ck["model_cfg"]["frontend"] = {**ck["model_cfg"]["frontend"], "ppg_sensors": ["ppg", "ppg2"]}
    ck["heldout_subjects"] = ["my_watch:s6"]
    torch.save(ck, run / "model.pt")

    def said(recorded):
        (run / "metrics.json").write_text(json.dumps({"recorded_rates": {"ppg": 125.0, **recorded}}))
        return [n for n in _load_inputs(ExportConfig(model=str(run), target=["c"]))["notes"] if "PPG sensors" in n]
    one = said({"ppg_sensors": 1})
    assert len(one) == 1 and "2 PPG sensors per sample (ppg, ppg2" in one[0] and "own recordings (my_watch) have 1: " \
        "a device like theirs needs --ppg-sensors 1" in one[0], one
    unknown = said({})
    assert len(unknown) == 1 and unknown[0].endswith("if your device has one PPG sensor, export with --ppg-sensors 1")
    assert said({"ppg_sensors": 2}) == []
    (run / "metrics.json").write_text(json.dumps({"recorded_rates": {"ppg_sensors": 1}}))     # would say it: not
    assert not [n for n in _load_inputs(ExportConfig(model=str(run), target=["c"], ppg_sensors=1))["notes"]
                if "--ppg-sensors" in n]
    assert not [n for n in _load_inputs(ExportConfig(model=str(run), target=["onnx"]))["notes"] if "PPG sensors" in n]


def test_kit_with_two_ppg_sensors_checks_bit_exact(twin, tmp_path):
    from sqtool.export.kit import check_kit, write_kit
    if shutil.which("make") is None:
        pytest.skip("no make")
    mc, g, md = twin
    info = write_kit(tmp_path / "kit", mc, g, md, n_ppg=2)
    readme = (tmp_path / "kit" / "README.md").read_text()
    assert "frames of 5 int16 samples (ppg, ppg2, acc_x, acc_y, acc_z)" in readme and "@" not in readme.replace(
        "@PREFIX", "").replace("__attribute__", "")
    assert info["vectors"]["ppg_sensors"] == 2 and info["vectors"]["invalid_windows"] >= 1
    assert (tmp_path / "kit" / "test_vectors" / "recording.bin").stat().st_size == 6 * 2 * 48 * 125
    assert check_kit(tmp_path / "kit")["ok"]


@pytest.mark.mcu
def test_two_ppg_m4_qemu_equals_reference_and_fits_the_budget(twin, c_dir2, troika60_2, tmp_path):
    _need_cross()
    from sqtool.firmware_bench import pipeline_fw as PF
    mc, g, _ = twin
    x16, gap = troika60_2
    want = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2).run(x16, gap)
    fw = PF.build_pipeline(c_dir2, "m4", tmp_path, staged=True, chunk=50)
    r = PF.run_pipeline(fw, x16, gap)
    assert _same(r.results, want)
    ins = r.stage_insns
    assert ins["frontend_window"] > ins["frontend_stream"] > 0


# ----------------------------------------------------------------------------- acc axes summed (n_channels = 2)

@pytest.fixture(scope="module")
def twin_accsum():
    """A calibrated spec_student_xs_accsum twin: network channels ppg + acc (the axes' powers summed)."""
    return _calibrated_twin("spec_student_xs_accsum")


def test_summed_acc_pipeline_host_and_m4_equal_the_reference(twin, twin_accsum, troika60, tmp_path):
    """The same four input rows (ppg, acc x, y, z) into a pipeline whose network reads (ppg, acc): the kit's
    example on the host for any chunking, and the firmware on the emulated Cortex-M4, = the reference."""
    mc, g, md = twin_accsum
    assert mc["channels"] == ["ppg", "acc"] and tuple(g.input_shape) == (134, 2)
    x16, gap = troika60
    ref = PL.PipelineRef(mc, g, None, 125.0)
    assert ref.C_in == 4 == PL.PipelineRef(twin[0], twin[1], None, 125.0).C_in
    want = ref.run(x16, gap)
    assert len(want["index"]) == 27 and _same(ref.run(x16, gap, chunk=250), want)
    d = tmp_path / "c"
    PL.render_pipeline(mc, g, md, d)
    shutil.copyfile(TEMPLATES / "kit_main.c", tmp_path / "main.c")
    exe = _cc(tmp_path / "example", [tmp_path / "main.c", *_pipeline_srcs(d)], [d], ["-DSQ_EXAMPLE_MAX_CHUNK=8192"])
    rec = PL.write_recording(tmp_path / "rec.bin", x16, gap)
    for chunks in ("7", "125", "1,7,0,125,300,0,2"):
        assert _same(_run_example(exe, rec, chunks), want), chunks
    _need_cross()
    from sqtool.firmware_bench import pipeline_fw as PF
    r = PF.run_pipeline(PF.build_pipeline(d, "m4", tmp_path, staged=False, chunk=50), x16, gap)
    assert _same(r.results, want)


def test_kit_states_the_models_confidence_range():
    """A calibrated confidence lives in its calibration table's range (e.g. 0.969-0.998 for a model whose worst
    expected error is 6 BPM): the kit says which values firmware will see, an uncalibrated one says nothing."""
    from sqtool.export.kit import conf_range_text
    from sqtool.models.decoder import DecoderCfg
    d = DecoderCfg(bins_bpm=(30.0, 229.5, 1.5), conf_measure="width", conf_calib_x=(0, 20000, 32768),
                   conf_calib_y=(31738, 32000, 32700))
    assert conf_range_text(d) == ("; this model's conf_q15 spans 31738 .. 32700 (expected error 6.3 .. 0.4 BPM): "
                                  "choose a threshold inside that range")
    assert conf_range_text(DecoderCfg(bins_bpm=(30.0, 229.5, 1.5))) == ""


def test_push_refuses_a_channels_first_acc(twin):
    """acc is (n, 3) or (3 n,) interleaved: a channels-first (3, n) array (the layout of run()'s x16 rows) has 3 n
    values too and was reshaped into scrambled x, y, z samples without a word."""
    mc, g, _ = twin
    ref = PL.PipelineRef(mc, g, None, 125.0)
    n = 1500
    rng = np.random.default_rng(0)
    x16 = (rng.standard_normal((4, n)) * 3000).astype(np.int16)          # ppg, acc x, y, z
    want = ref.run(x16)
    for acc in (np.ascontiguousarray(x16[1:].T), np.ascontiguousarray(x16[1:].T).reshape(-1)):
        ref.reset()
        got = ref.push(x16[0], acc)
        assert [r["hr_mbpm"] for r in got] == list(want["hr_mbpm"]) and len(got) == len(want["index"]) > 0
    ref.reset()
    with pytest.raises(SqtoolError, match=r"acc must be int16 \(1500, 3\).*got int16 \(3, 1500\).*acc\.T") as e:
        ref.push(x16[0], x16[1:])
    assert "\n" not in str(e.value)
    with pytest.raises(SqtoolError, match=r"got int16 \(500, 9\)"):
        ref.push(x16[0], x16[1:].T.reshape(500, 9))


def _off_wrist(troika: np.ndarray, n_ppg: int, seed: int = 3) -> np.ndarray:
    """(C_in, 5 N) int16: TROIKA's first 60 s, then 120 s of white-noise PPG (every sensor its own noise) with the
    accelerometer still (gravity on z), then TROIKA's 60 s twice: a watch taken off and put back on (the noise and
    the pulse after it longer than no_pulse's run of NO_PULSE_WINDOWS windows, 64 s)."""
    rng = np.random.default_rng(seed)
    n = 2 * troika.shape[1]
    off = np.zeros((n_ppg + 3, n), np.int16)
    off[:n_ppg] = np.clip(rng.normal(0, 3000, (n_ppg, n)), -32768, 32767)
    off[n_ppg:] = np.array([0, 0, 4096])[:, None] + rng.integers(-20, 21, (3, n))
    return np.ascontiguousarray(np.concatenate([troika, off, troika, troika], axis=1))


def test_no_pulse_on_a_noise_stream_and_the_c_equals_the_reference(twin, troika60_2, example2, tmp_path):
    """Pulse presence (no_pulse) on a 2-sensor stream on, off (noise PPG, still acc) and back on the wrist: no_pulse
    only inside the noise (from NO_PULSE_WINDOWS windows into it until NO_PULSE_WINDOWS windows after it), never on
    TROIKA's pulse, the windows stay valid (a separate output); the streaming reference and the C agree bit for bit."""
    mc, g, _ = twin
    K = PL.NO_PULSE_WINDOWS
    x16 = _off_wrist(troika60_2[0], 2)
    ref = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2)
    want = ref.run(x16)
    t0 = 2.0 * want["index"]
    noise = (t0 >= 60.0 + 0.25) & (t0 + 8.0 <= 180.0)                     # windows wholly inside the noise
    pulse = (t0 + 8.0 <= 60.0) | (t0 >= 180.0 + 2.0 * K + 8.0)            # pulse windows whose run holds no noise
    assert want["no_pulse"][noise][K - 1:].all() and want["no_pulse"][noise].sum() >= 10 and pulse.sum() >= 10
    assert not want["no_pulse"][pulse].any() and want["valid"].all()
    assert _same(ref.run(x16, chunk=333), want)
    rec = PL.write_recording(tmp_path / "offwrist.bin", x16)
    for chunks in ("1", "125", "8192", "1,7,0,125,300,0,2"):
        assert _same(_run_example(example2, rec, chunks), want), chunks


def test_the_bench_harness_reports_no_pulse_as_the_reference(twin, c_dir2, troika60_2, tmp_path):
    """The firmware bench's harness (mcu/pipeline_bench.c, what `benchmarks/firmware_pipeline.py` and the M4 runs
    compare with PipelineRef) writes every result column, no_pulse included: it used to write the 7 columns of a kit
    older than the detector, read back with no_pulse 0, so an off-wrist stream read as not bit-exact and the
    firmware's no_pulse was never compared (the host build here; the MCU builds run the same harness)."""
    from sqtool.firmware_bench import pipeline_fw as PF
    mc, g, _ = twin
    x16 = _off_wrist(troika60_2[0], 2)
    want = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2).run(x16)
    assert want["no_pulse"].any()
    r = PF.run_pipeline(PF.build_pipeline(c_dir2, "host", tmp_path, chunk=125), x16, count=False)
    assert _same(r.results, want)


def test_no_pulse_is_zero_in_the_first_windows_and_without_the_detector(twin, troika60_2):
    """no_pulse needs NO_PULSE_WINDOWS windows; an export older than the detector (pulse_check=False) gives 0;
    an older kit's 7-column results read with no_pulse 0."""
    mc, g, _ = twin
    x16 = _off_wrist(troika60_2[0], 2)[:, 7500:]                          # the noise first
    on = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2).run(x16)
    assert not on["no_pulse"][:PL.NO_PULSE_WINDOWS - 1].any() and on["no_pulse"][PL.NO_PULSE_WINDOWS - 1]
    old = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2, pulse_check=False).run(x16)
    assert not old["no_pulse"].any() and np.array_equal(old["hr_mbpm"], on["hr_mbpm"])
    rule16 = PL.PipelineRef(mc, g, None, 125.0, n_ppg=2, pulse_check=(16, 190)).run(x16)   # an export made with 16
    assert not rule16["no_pulse"][:15].any() and rule16["no_pulse"][15] and not on["no_pulse"][15]
    assert list(PL.parse_results("0 72000 70000 74000 30000 0 1\n")["no_pulse"]) == [0]


def test_readme_api_snippet_compiles_as_written_and_refuses_another_board(twin, tmp_path):
    """The kit README's API block, compiled as written (its free names: CHUNK, the sample buffers, n, show, and the
    board's rate and sensor count): on the exported device it reports heart rates; on a board at another rate its
    init is refused and so is every push after it, even of a state that was streaming (it used to pass the kit's own
    constants, an always-true check, and ignore the result; a refused init left the old stream running)."""
    from sqtool.export.kit import write_kit
    mc, g, md = twin
    write_kit(tmp_path / "kit", mc, g, md, prefix="hr7")
    block = re.search(r"```c\n(.*?)```", (tmp_path / "kit" / "README.md").read_text(), re.S).group(1)
    lines = block.splitlines()
    top = [ln for ln in lines if ln.startswith(("#include", "static "))]
    body = "\n".join(ln for ln in lines if ln not in top)
    prog = "\n".join(["#define CHUNK 1250", *top, """
static int16_t ppg[HR7_FE_N_PPG * CHUNK], acc[3 * CHUNK];
static const uint8_t *gap;
static int32_t shown_mbpm;
static int shown;
static void show(int32_t mbpm, uint16_t conf, uint8_t valid) { (void)conf; (void)valid; shown += mbpm > 0; }
static int board(uint32_t ppg_fs_mhz, int n_ppg_sensors)
{
    const int n = CHUNK;
    int j;
    for (j = 0; j < HR7_FE_N_PPG * CHUNK; ++j) ppg[j] = (int16_t)((j * 37) % 2001 - 1000);
""", body, """    return k;
}
int main(void)
{
    const int ok = board(HR7_PL_FS_IN_MHZ, HR7_FE_N_PPG), n_ok = shown;
    const int other = board(HR7_PL_FS_IN_MHZ / 2u, HR7_FE_N_PPG);
    return !(ok >= 1 && n_ok == ok && other == HR7_PL_ERR_STATE && shown == n_ok);
}
"""])
    (tmp_path / "snippet.c").write_text(prog)
    c = tmp_path / "kit" / "c"
    _cc(tmp_path / "snippet", [tmp_path / "snippet.c", *_pipeline_srcs(c, "hr7")], [c])
    assert subprocess.run([str(tmp_path / "snippet")], timeout=60).returncode == 0
