"""The device-loop kit of a time-domain export (`export --target c --device-fs HZ`, `export.window_kit`): its
example streams a synthetic recording through the C front end and the network; `make check` reproduces
test_vectors/expected.txt and a wrong one is a MISMATCH; the example's input codes are sqtool's stream's (never more
than one code apart) and its outputs the project's own window harness's, bit for bit; the MPS2 AN386 (M4), AN505
(M33) and MPS3 AN547 (M55) builds under QEMU reproduce the host's lines; a recording of another channel count is one
line and exit status 2."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware_bench"))
from test_predict_targets import export_student  # noqa: E402

from sqtool.data.record import Record  # noqa: E402
from sqtool.data.tasks import task_model_cfg  # noqa: E402
from sqtool.export.window_kit import KIT_FILES, parse_lines, recording_bytes, run_example  # noqa: E402
from sqtool.export.metadata import codes_to_units  # noqa: E402
from sqtool.firmware_bench.runtimes import quantize  # noqa: E402
from sqtool.data.hr_tracker import track, tracker_ok  # noqa: E402
from sqtool.firmware_bench.stream import StreamSpec, replay  # noqa: E402
from sqtool.firmware_bench.window_fw import build_window_fw, run_window_fw  # noqa: E402
from sqtool.models import get_model_cfg  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None, reason="make / cc missing")

MODELS = {   # name: (task, channels, device rate Hz, band phase)
    "af_ppg_100hz": ("af", ("ppg",), 100.0, "zero"),
    "hr_acc_125hz_causal": ("hr", ("ppg", "acc_x", "acc_y", "acc_z"), 125.0, "causal"),
}


@pytest.fixture(scope="module", params=list(MODELS))
def kit(request, tmp_path_factory) -> Path:
    task, chans, fs_in, phase = MODELS[request.param]
    mc = task_model_cfg(task, get_model_cfg("cnn1d_student_xs"), channels=chans).replace(band_phase=phase)
    return export_student(tmp_path_factory.mktemp(request.param), mc, ["c"], device_fs=fs_in)


def _recording(out: Path) -> np.ndarray:
    raw = (out / "test_vectors" / "recording.bin").read_bytes()
    c, n = np.frombuffer(raw[:8], "<i4")
    return np.frombuffer(raw[8:], "<f4").reshape(n, c).T.copy()             # (C, N)


def _make(out: Path, target: str, build: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(out), f"BUILD={build}", target], capture_output=True, text=True,
                          timeout=300)


def test_the_kit_checks_itself_and_a_wrong_expected_file_is_a_mismatch(kit, tmp_path):
    import json
    assert all((kit / f).is_file() for f in KIT_FILES)
    assert {f["path"] for f in json.loads((kit / "manifest.json").read_text())["files"]} >= set(KIT_FILES)
    vec = json.loads((kit / "test_vectors" / "vectors.json").read_text())
    assert vec["synthetic"] is True and vec["windows"] == len((kit / "test_vectors" / "expected.txt").read_text()
                                                              .splitlines()) >= 4
    r = _make(kit, "check", tmp_path / "b")
    assert r.returncode == 0 and "every window bit-exact" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "kit"
    shutil.copytree(kit, bad)
    lines = (bad / "test_vectors" / "expected.txt").read_text().splitlines()
    last = lines[1].split()
    lines[1] = " ".join(last[:-1] + [str(int(last[-1]) + 1)])               # one output code off
    (bad / "test_vectors" / "expected.txt").write_text("\n".join(lines) + "\n")
    r = _make(bad, "check", tmp_path / "c")
    assert r.returncode != 0 and "MISMATCH with test_vectors/expected.txt" in r.stdout


def test_the_selftest_holds_the_vectors_and_a_wrong_one_names_its_window(kit, tmp_path):
    """example/selftest.c, for a board without files: the recording and the expected lines compiled in; exit status 0
    when every window is equal, else the first bad window + 1."""
    r = _make(kit, "selftest", tmp_path / "b")
    assert r.returncode == 0 and "every window equal" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "kit"
    shutil.copytree(kit, bad)
    h = (bad / "test_vectors" / "sq_wvectors.h").read_text()
    at = h.index("sq_wvec_fnv[")
    fnv = h[at:]
    second = fnv[fnv.index("{") + 1:].split(",")[1].strip()                   # window 1's input hash
    h = h[:at] + fnv.replace(second, f"{(int(second.rstrip('u')) + 1) % 2**32}u", 1)
    (bad / "test_vectors" / "sq_wvectors.h").write_text(h)
    r = _make(bad, "selftest", tmp_path / "c")
    assert r.returncode != 0 and "selftest: MISMATCH" in r.stdout
    p = subprocess.run([str(tmp_path / "c" / "host" / "selftest")])
    assert p.returncode == 2                                                   # window 1 + 1
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):  # the board's exit status too
        r = _make(bad, "selftest-an386", tmp_path / "d")
        assert r.returncode != 0 and "selftest (MPS2 AN386 (Cortex-M4)): MISMATCH" in r.stdout, r.stdout + r.stderr
    h = (kit / "test_vectors" / "sq_wvectors.h").read_text()
    if "#define SQ_WVEC_TRACKED 1" not in h:                                   # another task: no tracker to check
        assert "#define SQ_WVEC_TRACKED 0" in h
        return
    at = h.index("{", h.index("sq_wvec_tracked[")) + 1                        # a heart-rate model: its tracked HR
    vals = h[at:].split(",")
    vals[2] = vals[2].replace(vals[2].strip(), str(int(vals[2]) + 1))           # window 2's
    (bad / "test_vectors" / "sq_wvectors.h").write_text(h[:at] + ",".join(vals))
    r = _make(bad, "selftest", tmp_path / "e")
    assert r.returncode != 0 and subprocess.run([str(tmp_path / "e" / "host" / "selftest")]).returncode == 3


def test_its_codes_are_the_streams_and_its_outputs_the_window_harness(kit, tmp_path):
    """What expected.txt says is checked against sqtool itself: the stream's windows (the model's filter) and the
    window harness bench runs as c_window, on the kit's own recording."""
    import json
    md = json.loads((kit / "metadata.json").read_text())
    x = _recording(kit)
    fs_in = json.loads((kit / "test_vectors" / "vectors.json").read_text())["fs_in_hz"]
    got = parse_lines(run_example(kit, codes=True))
    want = parse_lines((kit / "test_vectors" / "expected.txt").read_text().splitlines())
    for k in ("index", "flagged_permille", "fnv", "outputs"):
        np.testing.assert_array_equal(got[k], want[k])
    rec = Record("kit", "syn", "recording", dict(zip(md["channels"], x)), {ch: fs_in for ch in md["channels"]})
    rp = replay(rec, StreamSpec.from_model_cfg(md), chunk=50)
    ref = quantize(rp.x, md["quantization"]["input_scale"], md["quantization"]["input_zero_point"])
    assert got["index"].tolist() == list(range(len(rp)))
    np.testing.assert_allclose(got["flagged_permille"], np.round(1000 * rp.flagged), atol=1)
    d = np.abs(got["codes"].astype(int) - ref.reshape(len(ref), -1).astype(int))
    assert d.max() <= 1 and (d == 0).mean() >= 0.99
    assert np.count_nonzero(got["flagged_permille"]) >= 1                     # the dropout is in a window
    r = run_window_fw(build_window_fw(kit / "c", "host", tmp_path / "h"), [x])
    np.testing.assert_array_equal(r.codes, got["codes"])
    np.testing.assert_array_equal(r.outputs.astype(int), got["outputs"])
    if "hr_bpm" not in md["outputs"]:                               # no tracker for another task's model
        assert got["tracked_mbpm"] is None and not (kit / "c" / "sq_tracker.c").exists()
        assert "sq_tracker" not in (kit / "INTEGRATION.md").read_text() and "## Tracking" not in \
            (kit / "INTEGRATION.md").read_text()
        return
    # a heart-rate model: the line ends with c/sq_tracker.c's tracked HR, bench's tracker on the kit's outputs
    y = codes_to_units(got["outputs"], md)
    hr = track(y[:, md["outputs"].index("hr_bpm")], tracker_ok(y, rp.flagged, md["outputs"], quality_gate=True))
    np.testing.assert_array_equal(got["tracked_mbpm"], np.where(np.isnan(hr), -1, np.floor(hr * 1000 + 0.5)))
    np.testing.assert_array_equal(want["tracked_mbpm"], got["tracked_mbpm"])
    assert (got["tracked_mbpm"] > 0).sum() >= len(hr) // 2
    doc = (kit / "INTEGRATION.md").read_text()
    assert "adds `c/sq_tracker.{h,c}`" in doc and "## Tracking (`hr_tracked_bpm`)" in doc
    assert "within 30-240 BPM" in doc and "|d| > 8:" in doc and "s = s + 0.6 d" in doc


def test_its_cmake_build_runs_both_checks_and_a_firmware_links_the_library_alone(kit, tmp_path):
    if shutil.which("cmake") is None or shutil.which("ctest") is None:
        pytest.skip("cmake / ctest missing")
    b = tmp_path / "cmake"
    for cmd in (["cmake", "-S", str(kit), "-B", str(b)], ["cmake", "--build", str(b)],
                ["ctest", "--test-dir", str(b), "--output-on-failure"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "100% tests passed, 0 tests failed out of 2" in r.stdout
    fw = tmp_path / "firmware"                                   # a firmware project: add_subdirectory(kit)
    fw.mkdir()
    (fw / "main.c").write_text('#include "sq_window.h"\nstatic sq_window_t w;\n'
                               "int main(void) { return sq_window_init(&w); }\n")
    (fw / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.13)\nproject(fw C)\n"
                                       f'add_subdirectory("{kit}" kit)\nadd_executable(fw main.c)\n'
                                       "target_link_libraries(fw PRIVATE sq_window_loop)\n")
    for cmd in (["cmake", "-S", str(fw), "-B", str(fw / "b")], ["cmake", "--build", str(fw / "b")]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert subprocess.run([str(fw / "b" / "fw")]).returncode == 0
    assert not (fw / "b" / "kit" / "example").exists()                # the kit's own example is not built


def test_a_recording_of_another_channel_count_is_one_line(kit, tmp_path):
    import json
    md = json.loads((kit / "metadata.json").read_text())
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(recording_bytes(np.zeros((len(md["channels"]) + 1, 100), np.float32)))
    subprocess.run(["make", "-s", "-C", str(kit), f"BUILD={tmp_path / 'b'}", "host"], check=True, timeout=300)
    p = subprocess.run([str(tmp_path / "b" / "host" / "example"), str(wrong)], capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == f"{wrong}: cannot read it, or not {len(md['channels'])} channels"


def test_every_source_has_its_prototype(kit, tmp_path):
    """-Wmissing-prototypes -Wstrict-prototypes -Werror, as many firmware builds set: example/selftest.c's
    sq_window_selftest had no declaration in any header the kit ships (now sq_window.h)."""
    for src in [*sorted((kit / "c").glob("*.c")), *sorted((kit / "example").glob("*.c"))]:
        r = subprocess.run(["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wmissing-prototypes",
                            "-Wstrict-prototypes", f"-I{kit / 'c'}", f"-I{kit / 'test_vectors'}", "-c", str(src),
                            "-o", str(tmp_path / "x.o")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr


def _has_fma() -> bool:
    """Whether this host's CPU fuses multiply-adds (x86-64 with FMA3), so that gcc -mfma can emit them."""
    try:
        return " fma " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.skipif(not _has_fma() or shutil.which("gcc") is None, reason="needs gcc and a CPU with FMA")
def test_the_kit_stays_bit_exact_where_gcc_would_fuse_multiply_adds(kit, tmp_path):
    """GCC's GNU modes contract a * b + c into one fused multiply-add (-ffp-contract=fast) on any core that has one
    (a Cortex-M4F / M33 / M55's FPU; x86-64 with -mfma): the front end's float filters then round once where sqtool
    rounds twice, and the input codes differ from expected.txt. The kit's build passes -ffp-contract=off after the
    user's CFLAGS, so a build in gnu11 with fusing on and an FMA unit still reproduces expected.txt."""
    r = subprocess.run(["make", "-s", "-C", str(kit), f"BUILD={tmp_path / 'b'}", "CC=gcc", "check", "selftest",
                        "CFLAGS=-O2 -std=gnu11 -ffp-contract=fast -mfma"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "every window bit-exact" in r.stdout and "every window equal" in r.stdout, \
        r.stdout + r.stderr


def test_a_dropout_is_found_under_fast_math_flags(kit, tmp_path):
    """A firmware built with -ffinite-math-only (part of -ffast-math, -Ofast) lets the compiler take every float as
    finite: the dropout test reads the float's bits, so the NaN stretch of the kit's recording is still held and
    counted, bit for bit with expected.txt (isfinite() was compiled away: the dropout's windows read 0 %, and the
    causal filter's state stayed NaN, one constant output ever after); -ffast-math's reordering moves input codes in
    their last bit only, never a window's dropout share."""
    want = parse_lines((kit / "test_vectors" / "expected.txt").read_text().splitlines())
    for flag in ("-ffinite-math-only", "-ffast-math"):
        r = subprocess.run(["make", "-s", "-C", str(kit), f"BUILD={tmp_path / flag}", "host", f"CFLAGS=-O2 {flag}"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        p = subprocess.run([str(tmp_path / flag / "host" / "example"), str(kit / "test_vectors" / "recording.bin")],
                           capture_output=True, text=True, timeout=300, check=True)
        got = parse_lines(p.stdout.splitlines())
        np.testing.assert_array_equal(got["flagged_permille"], want["flagged_permille"])
        if flag == "-ffinite-math-only":
            assert p.stdout == (kit / "test_vectors" / "expected.txt").read_text()


@pytest.mark.mcu
@pytest.mark.parametrize("target, board", [("check-mps2", "MPS2 AN386 (Cortex-M4)"),
                                           ("check-an505", "MPS2 AN505 (Cortex-M33)"),
                                           ("check-an547", "MPS3 AN547 (Cortex-M55)")])
def test_each_emulated_cortex_m_build_reproduces_the_host(kit, tmp_path, target, board):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm missing")
    r = _make(kit, target, tmp_path / "m")
    assert r.returncode == 0 and f"{board}: every window bit-exact" in r.stdout, r.stdout + r.stderr
    r = _make(kit, target.replace("check-mps2", "check-an386").replace("check", "selftest"), tmp_path / "m")
    assert r.returncode == 0 and f"selftest ({board}, vectors compiled in): every window equal" in r.stdout, \
        r.stdout + r.stderr


@pytest.mark.mcu
@pytest.mark.parametrize("board, machine", [(None, "mps2-an386"), ("an547", "mps3-an547")])
def test_its_cmake_cortex_m_build_reproduces_the_host(kit, tmp_path, board, machine):
    """CMakeLists.txt with -DSQ_MPS2=ON (and -DSQ_BOARD): the same lines as expected.txt under QEMU; an unknown
    board is a configure error naming the choices."""
    for tool in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing")
    b = tmp_path / "mps2"
    conf = ["cmake", "-S", str(kit), "-B", str(b), "-DSQ_MPS2=ON", *([f"-DSQ_BOARD={board}"] if board else [])]
    for cmd in (conf, ["cmake", "--build", str(b)]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    shutil.copyfile(kit / "test_vectors" / "recording.bin", b / "recording.bin")
    r = subprocess.run(["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", "example.elf"], cwd=b,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == (kit / "test_vectors" / "expected.txt").read_text(), r.stderr[-500:]
    r = subprocess.run(["cmake", "-S", str(kit), "-B", str(tmp_path / "bad"), "-DSQ_MPS2=ON", "-DSQ_BOARD=an999"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "SQ_BOARD an999: choose an386, an505 or an547" in r.stderr


def test_a_re_export_without_device_fs_leaves_no_front_end_or_kit_behind(kit, tmp_path):
    """--force into the folder of an export with --device-fs: an older model's preprocessing must not stay there."""
    from sqtool.export.cli import ExportConfig, export
    folder = tmp_path / "again"
    shutil.copytree(kit, folder)
    exp = export(ExportConfig(model=str(kit.parent / "quantize"), target=["c"], out=str(folder), force=True))
    assert exp["failed"] == []
    left = [f for f in (*KIT_FILES, "c/sq_window.c", "c/sq_window_tables.h", "c/sq_tracker.c", "c/sq_tracker_cfg.h")
            if (folder / f).exists()]
    assert left == [] and not (folder / "example").exists() and (folder / "c" / "sq_model.c").is_file()
    from sqtool.export.cli import next_step                   # the last line names the kit only where there is one
    assert "make -C" not in next_step(exp)
    if exp["metadata"]["task"] != "hr":                        # (a heart-rate model's next step is sqtool bench)
        assert f"check the port with the kit: make -C {kit} check selftest" in next_step({**exp, "out": str(kit)})


def test_without_make_the_kit_is_written_without_its_expected_results(kit, tmp_path, monkeypatch):
    """An exporting machine with no make (or no C compiler): the sources, the example and the recording, and
    vectors.json saying why expected.txt and the C vectors are not there."""
    import json

    from sqtool.export import window_kit as WK
    folder = tmp_path / "k"
    shutil.copytree(kit, folder)
    for f in WK.EXPECTED_FILES:
        (folder / f).unlink()
    real = shutil.which
    monkeypatch.setattr(WK.shutil, "which", lambda t: None if t == "make" else real(t))
    md = json.loads((folder / "metadata.json").read_text())
    info = WK.write_window_kit(folder, md, json.loads((kit / "test_vectors" / "vectors.json").read_text())["fs_in_hz"])
    assert info["windows"] is None and info["vectors"]["expected"] == "not written: no make on the exporting machine"
    assert not any((folder / f).exists() for f in WK.EXPECTED_FILES)
    assert all(p.is_file() for p in info["files"]) and (folder / "example" / "main.c").is_file()
    assert json.loads((folder / "test_vectors" / "vectors.json").read_text())["windows"] is None
