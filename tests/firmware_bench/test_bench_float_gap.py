"""`sqtool bench` of a spectral export names the subjects whose int8 reading is far from torch_student's (the
float student before QAT), and measures which part int8 rounding makes: the int8 checkpoint with quantization off
on the same codes. QAT's epochs go on training the float student's weights, so the two rows are two networks; the
audit's my_watch:s2 read 7.30 float against 42.50 int8 BPM while the int8 network with quantization off read 42.46."""
from __future__ import annotations

from export_fixtures import make_float_specnet

from sqtool.core.checkpoint import save_checkpoint
from sqtool.firmware_bench.cli import BenchConfig, run_bench
from sqtool.firmware_bench.spectral import FLOAT_GAP_BPM


def _bench(export, out, **kw):
    return run_bench(BenchConfig(model=str(export), data="synthetic", max_seconds=60, callgrind_windows=0,
                                 runtime=["torch_student", "brevitas_int8"], out=str(out), **kw))


def test_a_float_student_that_is_another_network_than_the_int8_one_is_named_per_subject(spec_export_dir, tmp_path,
                                                                                        capsys):
    """A float student other than the network the int8 twin holds (another draw of its weights, as QAT's training
    moves an undertrained student's): the subjects it reads more than FLOAT_GAP_BPM from the int8 row are named in a
    WARNING line (stderr, bench.md, bench.json), with the int8 network's own float reading, within the int8 row's:
    not int8 rounding."""
    other = make_float_specnet("spec_student_xs", seed=1)
    ck = tmp_path / "other_float.pt"
    save_checkpoint(ck, kind="student_float", model_cfg=other.cfg.to_dict(), state_dict=other.state_dict())
    res = _bench(spec_export_dir, tmp_path / "b", student_float=str(ck))
    gap = res["float_gap"]
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert gap["int8"] == "brevitas_int8" and gap["subjects"], gap
    for s in gap["subjects"]:
        d = rows["brevitas_int8"]["per_subject"][s]["mae"] - rows["torch_student"]["per_subject"][s]["mae"]
        assert abs(d) > FLOAT_GAP_BPM and gap["int8_minus_float"][s] == d
        assert abs(gap["rounding"][s]) <= FLOAT_GAP_BPM           # the int8 network, quantization off: its reading
    assert gap["cause"] == "qat"
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if ln.startswith("WARNING: int8 and float read")]
    assert len(line) == 1 and "torch_student is the float student before QAT" in line[0]
    assert "QAT's training moved them, not int8 rounding" in line[0] and gap["subjects"][0] in line[0]
    assert line[0] in (tmp_path / "b" / "bench.md").read_text()


def test_the_float_student_of_the_int8_network_is_not_flagged(spec_export_dir, tmp_path, capsys):
    """The export's own float student (its int8 twin made from it, no QAT): every subject within FLOAT_GAP_BPM, no
    line, the per-subject differences still in bench.json."""
    res = _bench(spec_export_dir, tmp_path / "b")
    gap = res["float_gap"]
    assert gap["subjects"] == [] and len(gap["int8_minus_float"]) == 4 and "warning" not in gap
    assert all(abs(v) <= FLOAT_GAP_BPM for v in gap["int8_minus_float"].values())
    assert "WARNING: int8 and float" not in capsys.readouterr().err
