"""benchmarks/kit_other_cores.py: the kit README's "Other cores" -Os table measured on a kit (an untrained twin's here:
the figures' size is not the point): bit-exact on the M4 and on ARMv6-M code under QEMU, the int8-weight build
smaller, the portable path slower; skipped without arm-none-eabi-gcc / qemu-system-arm."""
import json
import shutil

import pytest

from tests.bench_scripts import load_benchmark


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc / qemu-system-arm missing")
def test_kit_other_cores_measures_each_build_bit_exact(tmp_path):
    from tests.export.test_kit_portable import _twin_kit
    B = load_benchmark("kit_other_cores")
    kit = _twin_kit(tmp_path)
    assert B.main(["--kit", str(kit), "--label", "twin", "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "kit_other_cores.json").read_text())
    m4, m0, m0_int8 = res["rows"]
    assert all(r["bit_exact"] and r["windows"] > 0 and r["stack_bytes"] > 0 for r in res["rows"])
    assert m0["insns_per_window_push"] > 2 * m4["insns_per_window_push"]          # no SMLAD on ARMv6-M
    assert m0_int8["code_bytes"] < m0["code_bytes"] < m0["image_flash_bytes"]     # packed weights; start-up apart
    assert m4["ram_bytes"] == m4["state_bytes"] + m4["arena_bytes"] and m4["state_bytes"] > 0
    md = (tmp_path / "o" / "kit_other_cores.md").read_text()
    assert "| Cortex-M0+ (portable) |" in md and "Kit: twin" in md
