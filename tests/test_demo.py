"""`sqtool demo` end to end on the embedded synthetic default, with a small budget (includes the M4 QEMU run).

Run from a relative output directory, as `make demo` does (runs/demo/<stamp>): every runtime must be ok.
"""
import json

from sqtool.cli import main


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["demo", "--out", "demo", "--subjects", "4", "--batch-size", "8", "--pretrain-epochs", "1",
               "--finetune-epochs", "1", "--student-epochs", "2", "--qat-epochs", "1"])
    assert rc == 0
    out = tmp_path / "demo"
    for step in ("pairs", "pretrain", "pretrain_student", "finetune", "quantize", "export", "bench"):
        assert (out / step / "config.yaml").is_file(), step
    # the networks start from their pretrained encoders: the runs name them
    assert "demo/pretrain/model.pt" in (out / "finetune" / "config.yaml").read_text()
    assert "demo/pretrain_student/model.pt" in (out / "quantize" / "config.yaml").read_text()
    bench = json.loads((out / "bench" / "bench.json").read_text())
    status = {r["runtime"]: r["status"] for r in bench["runtimes"]}
    assert {"mcu_m4", "tflm_int8", "c_host", "onnx_int8", "litert_int8"} <= set(status)
    assert all(s == "ok" for s in status.values()), status
    printed = capsys.readouterr().out
    assert "mcu_m4" in printed and "baseline" in printed
