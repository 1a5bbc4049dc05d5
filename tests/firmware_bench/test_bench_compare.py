"""`sqtool bench --compare A,B`: two bench runs side by side, paired by subject, refused on different data."""
from __future__ import annotations

import json

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.firmware_bench.compare import compare, tables
from tests.strict_json import strict_loads


def _bench(maes: dict, seen=(), seconds=60.0, sha="a" * 64) -> dict:
    """A tiny spectral bench.json: one recording per subject, 27 windows each, c_host with these per-subject MAEs."""
    per = {s: {"n": 27, "mae": m} for s, m in maes.items()}
    return {"kind": "spectral", "labelled": True, "primary": "c_host", "seen_in_training": list(seen),
            "provenance": {"model": "spec_student_s", "source_sha256": sha, "windows": 27 * len(maes),
                           "max_seconds": None, "data": "troika"},
            "records": [{"record_id": f"R{s}", "subject": s, "seconds": seconds, "windows": 27, "truth_windows": 27}
                        for s in maes],
            "runtimes": [{"runtime": "c_host", "status": "ok", "per_subject": per},
                         {"runtime": "onnx_int8", "status": "skipped"}]}


def _cells(text: str, first: str) -> list[str]:
    row = next(ln for ln in text.splitlines() if ln.startswith(f"| {first} "))
    return [c.strip() for c in row.strip("|").split("|")]


A = {"t:1": 10.0, "t:2": 12.0, "t:3": 8.0, "t:4": 14.0, "t:5": 11.0, "t:6": 11.0}
B = {"t:1": 7.0, "t:2": 9.0, "t:3": 6.0, "t:4": 10.0, "t:5": 8.0, "t:6": 8.0}


def test_the_paired_table_and_its_verdict():
    c = compare(_bench(A), _bench(B, sha="b" * 64))
    assert c["runtime"] == "c_host"
    assert [(s["subject"], s["mae_a"], s["mae_b"], s["diff"]) for s in c["subjects"]] == [
        ("t:1", 10.0, 7.0, -3.0), ("t:2", 12.0, 9.0, -3.0), ("t:3", 8.0, 6.0, -2.0), ("t:4", 14.0, 10.0, -4.0),
        ("t:5", 11.0, 8.0, -3.0), ("t:6", 11.0, 8.0, -3.0)]
    m = c["mean"]
    assert (m["subjects"], m["mae_a"], m["mae_b"], m["diff"]) == (6, 11.0, 8.0, -3.0)
    lo, hi = m["diff_ci95"]
    assert lo == pytest.approx(-3.66, abs=0.01) and hi == pytest.approx(-2.34, abs=0.01)     # t over 6 subjects
    assert m["p"] == pytest.approx(2 / 64)                      # all 6 lower: the least sign-flip p
    assert c["verdict"].startswith("B is better: B - A MAE -3.00 BPM")
    text = tables(c)
    assert _cells(text, "t:4") == ["t:4", "27", "14.00", "10.00", "-4.00"]
    assert _cells(text, "mean of 6 subjects") == ["mean of 6 subjects", "", "11.00", "8.00",
                                                  f"-3.00 [{lo:+.2f}, {hi:+.2f}]"]
    # one subject much worse in B: the CI spans 0, and no run is called better
    c = compare(_bench(A), _bench({**B, "t:4": 30.0}))
    assert c["mean"]["diff_ci95"][0] < 0 < c["mean"]["diff_ci95"][1] and c["verdict"].startswith("no difference")
    # a subject A was trained on: marked, and left out of the mean
    c = compare(_bench(A, seen=["t:1"]), _bench(B))
    assert c["subjects"][0]["seen_in_training"] == ["A"] and c["mean"]["subjects"] == 5
    assert c["mean"]["mae_a"] == pytest.approx(56 / 5) and "t:1 (seen in training by A)" in tables(c)
    assert "mean of 5 subjects (held out by both)" in tables(c)
    # 4 subjects all better in B: the t-interval excludes 0, but 4 subjects cannot give p < 0.05 (2/16): no verdict
    four = lambda d: {k: d[k] for k in list(d)[:4]}                                # noqa: E731
    c = compare(_bench(four(A)), _bench(four(B)))
    assert c["mean"]["diff_ci95"][1] < 0 and c["mean"]["p"] == pytest.approx(2 / 16)
    assert c["verdict"].startswith("no difference shown") and c["verdict"].endswith("(p >= 0.05)")


def test_runs_on_other_data_or_runtimes_are_refused():
    with pytest.raises(SqtoolError, match=r"not run on the same data: recordings \(#1\) 'Rt:1 \(t:1, 60 s"):
        compare(_bench(A), _bench(B, seconds=90.0))                              # another --max-seconds
    with pytest.raises(SqtoolError, match=r"not run on the same data: recordings \(#4\) 'Rt:4.*vs '3 recordings'"):
        compare(_bench(A), _bench({k: B[k] for k in list(B)[:3]}))              # another --max-records
    with pytest.raises(SqtoolError, match=r"runtime onnx_int8 did not run in A \(--runtime: one that ran in both: "
                                          r"c_host\)"):
        compare(_bench(A), _bench(B), runtime="onnx_int8")


def test_bench_compare_command(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bench.json").write_text(json.dumps(_bench(A)))
    (tmp_path / "b.json").write_text(json.dumps(_bench(B)))
    out = tmp_path / "cmp"
    assert main(["bench", "--compare", f"{tmp_path / 'a'},{tmp_path / 'b.json'}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    c = json.loads((out / "compare.json").read_text())
    assert c["mean"]["diff"] == -3.0
    assert (c["a"]["bench"], c["b"]["bench"]) == (str(tmp_path / "a"), str(tmp_path / "b.json"))
    assert "B is better" in printed and "B is better" in (out / "compare.md").read_text()
    assert printed.rstrip().splitlines()[-1].startswith("next: sqtool predict --model EXPORT_B ")   # B's model
    (tmp_path / "c.json").write_text(json.dumps(_bench(B, seconds=30.0)))
    assert main(["bench", "--compare", f"{tmp_path / 'a'},{tmp_path / 'c.json'}", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "were not run on the same data" in err[0] and not (tmp_path / "x").exists()
    for bad, msg in ((["--compare", str(tmp_path / "a")], "--compare takes two bench runs"),
                     (["--compare", f"{tmp_path / 'a'},{tmp_path / 'nope'}"], "no bench.json there"),
                     (["--compare", f"{tmp_path / 'a'},{tmp_path / 'b.json'}", "--model", "x"], "--model is not used")):
        assert main(["bench", *bad]) == 1
        assert msg in capsys.readouterr().err


def test_the_next_line_follows_the_verdict():
    """The better run's model where the CI says so on held-out subjects; else both exports on more recordings."""
    from sqtool.firmware_bench.compare import next_line
    a, b = _bench(A), _bench(B)
    a["provenance"]["model_dir"], b["provenance"]["model_dir"] = "runs/export/v1", "runs/export/v2"
    assert next_line(compare(a, b)) == ("next: sqtool predict --model runs/export/v2 --data RECORDING   (B's model, "
                                        "the better; firmware kit: runs/export/v2/c)")
    assert next_line(compare(b, a)).startswith("next: sqtool predict --model runs/export/v2 ")    # A is better
    line = next_line(compare(a, {**b, "runtimes": _bench({**B, "t:4": 30.0})["runtimes"]}))     # CI spans 0
    assert line.startswith("next: sqtool bench --model runs/export/v1 --data MORE_RECORDINGS (the same for "
                           "runs/export/v2") and line.endswith("(6 subject(s) do not separate them)")
    every = list(A)                                                 # B better, but on training subjects only
    line = next_line(compare({**a, "seen_in_training": every}, b))
    assert line.startswith("next: sqtool bench --model") and "every paired subject was seen in training" in line


def test_a_subject_without_an_mae_is_listed_not_paired_in_new_and_old_bench_files(tmp_path, capsys):
    """A subject whose MAE could not be computed (no window with truth): null in a bench.json written now, the bare
    NaN token in one an older sqtool wrote. Either way it is listed without a difference and left out of the mean,
    and compare.json is strict JSON (no NaN token)."""
    from sqtool.core import write_metrics
    nan = float("nan")
    write_metrics(tmp_path / "a", _bench({**A, "t:6": nan}), name="bench.json")          # as bench writes it now
    assert '"mae": null' in (tmp_path / "a" / "bench.json").read_text()
    (tmp_path / "b.json").write_text(json.dumps(_bench({**B, "t:2": nan})))             # as an older bench wrote it
    assert '"mae": NaN' in (tmp_path / "b.json").read_text()
    out = tmp_path / "cmp"
    assert main(["bench", "--compare", f"{tmp_path / 'a'},{tmp_path / 'b.json'}", "--out", str(out)]) == 0
    text = (out / "compare.json").read_text()
    c = strict_loads(text, "compare.json")
    by = {s["subject"]: s for s in c["subjects"]}
    assert (by["t:6"]["mae_a"], by["t:6"]["mae_b"], by["t:6"]["diff"]) == (None, 8.0, None)
    assert (by["t:2"]["mae_a"], by["t:2"]["mae_b"], by["t:2"]["diff"]) == (12.0, None, None)
    assert c["mean"]["subjects"] == 4 and c["mean"]["diff"] == pytest.approx(-3.0)     # t:1, t:3, t:4, t:5
    assert _cells((out / "compare.md").read_text(), "t:6") == ["t:6", "27", "-", "8.00", "-"]
    capsys.readouterr()


def test_a_killed_bench_run_is_not_compared(tmp_path, capsys):
    """A bench --force'd into an earlier bench run's folder and killed before its metrics.json (what ends a bench run)
    still holds the earlier run's bench.json: --compare read it as this run's. Refused, one line, naming the redo."""
    a = tmp_path / "a"
    a.mkdir()
    (a / "bench.json").write_text(json.dumps(_bench(A)))          # the earlier run's
    (a / "config.yaml").write_text("command: bench\nconfig: {}\n")  # the killed run's: no metrics.json
    (tmp_path / "b.json").write_text(json.dumps(_bench(B)))
    assert main(["bench", "--compare", f"{a},{tmp_path / 'b.json'}", "--out", str(tmp_path / "cmp")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "an unfinished `sqtool bench` run (killed?)" in err[0] and "--force" in err[0], err
    assert not (tmp_path / "cmp").exists()
    (a / "metrics.json").write_text("{}")                          # finished: compared
    assert main(["bench", "--compare", f"{a},{tmp_path / 'b.json'}", "--out", str(tmp_path / "cmp")]) == 0


def test_a_compare_killed_before_its_report_reads_unfinished(tmp_path, monkeypatch):
    """compare.json (what ends a --compare run) was written before compare.md: a kill between left a finished run
    without its report. It comes last now."""
    import sqtool.core as C
    (tmp_path / "a.json").write_text(json.dumps(_bench(A)))
    (tmp_path / "b.json").write_text(json.dumps(_bench(B)))

    def killed(path, text):
        raise KeyboardInterrupt
    monkeypatch.setattr(C, "atomic_write_text", killed)             # compare.md: the kill
    assert main(["bench", "--compare", f"{tmp_path / 'a.json'},{tmp_path / 'b.json'}", "--out",
                 str(tmp_path / "cmp")]) == 130
    assert not (tmp_path / "cmp" / "compare.json").exists()
