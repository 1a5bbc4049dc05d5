"""benchmarks/pretrain_ablation.py --smoke: three arms x tasks x labels x protocols, per source, with CIs."""
import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("pretrain_ablation", ROOT / "benchmarks" / "pretrain_ablation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_claims_only_where_the_ci_excludes_zero():
    b = _bench()
    assert b.better("hr", [-2.0, -0.1]) == "better" and b.better("hr", [-2.0, 0.1]) is None
    assert b.better("hr", [0.1, 2.0]) == "worse" and b.better("af", [0.01, 0.2]) == "better"
    assert b.better("quality", [-0.2, -0.01]) == "worse" and b.better("af", [None, None]) is None


def test_trivial_predictor_is_the_fold_mean_or_majority():
    b = _bench()
    from sqtool.data.tasks import TaskData
    y = np.array([[1.0], [1.0], [0.0], [10.0]])
    td = TaskData(np.zeros((4, 1, 8), np.float32), y, np.array(["a", "a", "b", "c"]), np.zeros(4),
                  np.array(["r"] * 4), "hr", {"kind": "regression"})
    plan = [(0, 1.0, np.array([2, 3]), np.array([0, 1])), (1, 1.0, np.array([0, 1]), np.array([2, 3]))]
    assert b.trivial(td, plan)[1.0].ravel().tolist() == [5.0, 5.0, 1.0, 1.0]
    td.meta["kind"] = "classification"
    td.y = np.array([[1.0], [1.0], [0.0], [1.0]])
    assert b.trivial(td, plan)[1.0].ravel().tolist() == [-4.0, -4.0, 4.0, 4.0]


def test_smoke_run_writes_the_table(tmp_path):
    b = _bench()
    assert b.main(["--smoke", "--work", str(tmp_path / "w"), "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "pretrain_ablation.json").read_text())
    md = (tmp_path / "pretrain_ablation.md").read_text()
    assert res["pairs"]["kind"] == "real pairs only" and res["pairs"]["synthetic_pairs"] == 0
    assert "**real pairs only**" in md and "| synthetic |" in md                 # pair statistics in the results
    assert res["pretrain"]["augment"]["pair_mode"] == "augment" and res["pretrain"]["siamq"]["pair_mode"] == "real"
    assert res["pretrain"]["augment"]["global_step"] == res["pretrain"]["siamq"]["global_step"]   # same budget
    combos = {(r["task"], r["labels"], r["protocol"]) for r in res["rows"]}
    assert combos == {(t, l, p) for t in ("hr", "rr", "af", "quality") for l in ("100 %", "10 %")
                      for p in ("linear", "full")}
    for r in res["rows"]:
        c = r["cells"]
        assert set(c) == {"scratch", "augment", "siamq", "trivial"}
        assert "minus_scratch_ci95" in c["siamq"] and "minus_scratch_ci95" in c["augment"]
        for arm in ("augment", "siamq"):                               # a claim only where the CI says so
            said = f"{arm}/{r['labels']}/{r['protocol']}"
            verdict = b.better(r["task"], c[arm]["minus_scratch_ci95"])
            claimed = any(s.startswith(f"{r['task']}/{r['source']}/{r['labels']}/{r['protocol']}: {arm} helps")
                          for s in res["summary"].split("; "))
            assert claimed == (verdict == "better"), said
        assert "minus_trivial_ci95" in c["siamq"] and "minus_scratch_ci95" not in c["trivial"]
    assert "pretrain_steps" in res["settings"] and "max_windows_per_source" in res["settings"]
    assert "| task | source (windows / subjects) |" in md
