"""benchmarks/ppg_polarity.py: the polarity verdicts of real recordings as delivered and flipped, JSON + Markdown."""
import json

from tests.bench_scripts import load_benchmark


def test_ppg_polarity_bench_writes_delivered_and_flipped_rows(data_root, tmp_path):
    B = load_benchmark("ppg_polarity")
    assert B.main(["--data", str(data_root / "bidmc"), "--max-records", "2", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "ppg_polarity.json").read_text())
    assert [r["record"] for r in res["rows"]] == ["bidmc01", "bidmc02"]
    assert res["counts"]["bidmc"] == {"channels": 2, "delivered": {"normal": 2}, "flipped": {"inverted": 2}}
    md = (tmp_path / "ppg_polarity.md").read_text()
    assert "| bidmc | bidmc01 | ppg |" in md and "**inverted**" in md and "| bidmc | 2 | 2 / 0 / 0 | 0 / 2 / 0 |" in md
