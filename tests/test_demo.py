"""`sqtool demo` end to end on the embedded synthetic default, with a small budget (includes the M4 QEMU run)."""
import json

from sqtool.cli import main


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--subjects", "4", "--batch-size", "8", "--pretrain-epochs", "1", "--finetune-epochs", "1",
               "--student-epochs", "2", "--qat-epochs", "1"])
    assert rc == 0
    for step in ("pairs", "pretrain", "finetune", "quantize", "export", "bench"):
        assert (out / step / "config.yaml").is_file(), step
    bench = json.loads((out / "bench" / "bench.json").read_text())
    text = json.dumps(bench)
    assert "mcu_m4" in text and "tflm_int8" in text
    printed = capsys.readouterr().out
    assert "mcu_m4" in printed and "baseline" in printed
