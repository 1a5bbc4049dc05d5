"""benchmarks/pretrain_ablation.py --smoke: three arms x tasks x labels x protocols, per source, with CIs."""
import importlib.util
import json
from pathlib import Path

import numpy as np
from tests.strict_json import strict_loads

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


def test_trivial_predictor_knows_the_source_and_nothing_else():
    """Regression: the training windows' mean of the window's own source; classes: one constant base-rate logit
    per source (AUROC 0.5 within a source, not a per-fold majority that ranks windows by their fold)."""
    b = _bench()
    from sqtool.core.metrics import auroc
    from sqtool.data.tasks import TaskData
    y = np.array([[1.0], [3.0], [10.0], [20.0], [2.0], [30.0]])
    src = np.array(["s", "s", "t", "t", "s", "t"])
    td = TaskData(np.zeros((6, 1, 8), np.float32), y, np.array(["a", "b", "c", "d", "e", "f"]), np.zeros(6),
                  np.array(["r"] * 6), "hr", {"kind": "regression", "source": src})
    plan = [(0, 1.0, np.array([0, 2, 4]), np.array([1, 3, 5])), (1, 1.0, np.array([1, 3, 5]), np.array([0, 2, 4]))]
    assert b.trivial(td, plan)[1.0].ravel().tolist() == [3.0, 1.5, 25.0, 10.0, 3.0, 10.0]
    rng = np.random.default_rng(0)
    n = 200
    src = np.where(np.arange(n) < 100, "s", "t")
    yc = (rng.random(n) < np.where(src == "s", 0.9, 0.2)).astype(float)[:, None]
    groups = np.arange(n).astype(str)
    td = TaskData(np.zeros((n, 1, 8), np.float32), yc, groups, np.zeros(n), groups, "quality",
                  {"kind": "classification", "source": src})
    folds = [(np.flatnonzero(np.arange(n) % 4 != f), np.flatnonzero(np.arange(n) % 4 == f)) for f in range(4)]
    plan = [(f, 1.0, tr, te) for f, (tr, te) in enumerate(folds)]
    t = b.trivial(td, plan)[1.0][:, 0]
    assert len(np.unique(t[src == "s"])) == 1 and len(np.unique(t[src == "t"])) == 1 and t[0] > 0 > t[-1]
    assert auroc(yc[src == "t"], t[src == "t"]) == 0.5 and auroc(yc, t) > 0.7     # pooled: it knows the source


def test_bootstrap_metric_and_holm():
    """The vectorised subject bootstrap equals the metric on each concatenated resample; Holm's step-down."""
    b = _bench()
    from sqtool.core.metrics import task_metrics
    rng = np.random.default_rng(1)
    g = np.arange(300) % 20                                                # (N,) subject index
    y = (rng.random(300) < 0.3).astype(float)[:, None]
    p = (y[:, 0] + rng.normal(0, 1, 300))[:, None]
    p[:9] = p[9]                                                          # ties count half
    draws = rng.integers(0, 20, (40, 20))
    counts = np.stack([np.bincount(d, minlength=20) for d in draws]).astype(float)
    for task, yy, pp in (("af", y, p), ("bp", rng.normal(size=(300, 2)), rng.normal(size=(300, 2)))):
        idx = [np.concatenate([np.flatnonzero(g == s) for s in d]) for d in draws]      # the resamples, spelt out
        ref = [task_metrics(task, yy[i], pp[i])[b.METRIC[task]] for i in idx]
        assert np.allclose(b.boot_metric(task, yy, pp, g, counts), ref)
    assert np.allclose(b.holm([0.01, 0.04, np.nan, 0.03, 0.005]), [0.03, 0.06, np.nan, 0.06, 0.02], equal_nan=True)
    cell = {"minus_scratch_ci95": [0.01, 0.2], "minus_scratch_p_holm": 0.2}
    assert b.better("af", cell["minus_scratch_ci95"]) == "better" and b.claim("af", cell) is None
    assert b.claim("af", cell | {"minus_scratch_p_holm": 0.01}) == "better"
    assert b.claim("af", {"minus_scratch_ci95": [-0.01, 0.2], "minus_scratch_p_holm": 0.01}) is None   # CI too


def test_p_is_the_within_subject_permutation_p():
    """Arm - scratch p: swapping each subject's two predictions, exact over 2^S patterns. Five subjects, the arm
    better on every window: the bootstrap CI excludes zero, but p is 2/32 (identity and all-swapped), not the
    bootstrap's 2/(B + 1); with 14 subjects the sampled p, (k + 1) / (n_perm + 1)."""
    b = _bench()
    from sqtool.core.metrics import paired_mae_test
    rng = np.random.default_rng(2)
    for S, n_perm in ((5, 500), (14, 300)):
        g = np.repeat([f"s{i}" for i in range(S)], 30)
        y = rng.normal(70, 10, (len(g), 1))
        preds = {"scratch": y + 5 + rng.normal(0, 1, y.shape), "augment": y + rng.normal(0, 1, y.shape),
                 "siamq": y + 5 + rng.normal(0, 1, y.shape), "trivial": np.full(y.shape, 70.0)}
        res = b.paired_stats("hr", y, preds, g, n_boot=200, n_perm=n_perm, seed=0)
        a = res["augment"]
        assert a["minus_scratch"] < -4 and a["minus_scratch_ci95"][1] < 0
        assert a["minus_scratch_p"] == (2 / 2 ** S if S <= 12 else 1 / (n_perm + 1))
        ref = paired_mae_test(y, preds["siamq"], preds["scratch"], g, n_perm=n_perm, seed=0)
        assert res["siamq"]["minus_scratch_p"] == ref["p"] and 0.05 < ref["p"] <= 1
        assert "minus_scratch_p" not in res["trivial"] and "minus_scratch_p" not in res["scratch"]
    rows = [{"task": "hr", "source": "w", "labels": "100 %", "protocol": "linear", "subjects": 5,
             "cells": {"augment": dict(a, minus_scratch_p=0.0625), "siamq": dict(a, minus_scratch_p=0.0625)}}]
    said, unadjusted = b.adjust(rows)                              # 5 subjects: p >= 1/16, never claimed
    assert said == [] and unadjusted[0].startswith("hr/w/100 %/linear: augment helps (5 subjects, ")


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
        assert set(c) == {"scratch", "augment", "siamq", "trivial", "classic"}         # each task has one here
        assert "minus_scratch_ci95" in c["siamq"] and "minus_scratch_ci95" in c["augment"]
        assert "minus_scratch_ci95" not in c["classic"] and "minus_classic_ci95" in c["siamq"]
        worse = any(b.better(r["task"], c[arm]["minus_classic_ci95"]) == "worse" for arm in ("scratch", "augment", "siamq"))
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {r['task']} | {r['source']} (")
                    and f"| {r['labels']} | {r['protocol']} |" in ln)
        assert worse == line.rstrip(" |").endswith("worse than the classic"), line
        for arm in ("augment", "siamq"):                   # a claim only where Holm's adjusted p and the CI say so
            said = f"{arm}/{r['labels']}/{r['protocol']}"
            q = c[arm]["minus_scratch_p_holm"]
            assert q is None or c[arm]["minus_scratch_p"] <= q <= 1
            verdict = b.better(r["task"], c[arm]["minus_scratch_ci95"]) if q is not None and q < 0.05 else None
            claimed = any(s.startswith(f"{r['task']}/{r['source']}/{r['labels']}/{r['protocol']}: {arm} helps")
                          for s in res["summary"].split("; "))
            assert claimed == (verdict == "better"), said
        assert "minus_trivial_ci95" in c["siamq"] and "minus_scratch_ci95" not in c["trivial"]
    assert "pretrain_steps" in res["settings"] and "max_windows_per_source" in res["settings"]
    assert "| task | source (windows / subjects) |" in md and res["tests"] == 2 * len(res["rows"])
    assert f"Claims (Holm-adjusted permutation p < 0.05 and CI excluding zero, {res['tests']} tests)" in md
    assert "paired permutation p" in md and "8.1 %" in md
    assert set(res["classic"]) == {"hr", "rr", "af", "quality"} and "hr: PPG spectral peak" in md
    assert "| trivial | classic [CI] | scratch [95 % CI] |" in md


def test_a_difference_without_interval_or_p_is_no_claim_whether_nan_or_null():
    """One subject in a source: the arm - scratch difference has no t-interval and no p. In the run they are NaN
    (Holm leaves a NaN p out), in the JSON null: no claim, '-' in the table, either way; the JSON is strict."""
    b = _bench()
    from sqtool.core.io import dumps_json
    y = np.random.default_rng(0).normal(70, 10, (20, 1))
    preds = {"scratch": y + 5, "augment": y + 1, "siamq": y + 6, "trivial": np.full(y.shape, 70.0)}
    cells = b.paired_stats("hr", y, preds, np.full(20, "s1"), n_boot=20, n_perm=10, seed=0)
    assert np.isnan(cells["augment"]["minus_scratch_ci95"]).all() and np.isnan(cells["augment"]["minus_scratch_p"])
    rows = [{"task": "hr", "source": "w", "labels": "100 %", "protocol": "linear", "subjects": 1, "cells": cells}]
    assert b.adjust(rows) == ([], [])
    assert np.isnan(cells["siamq"]["minus_scratch_p_holm"])
    back = strict_loads(dumps_json(rows), "the results JSON")
    null = back[0]["cells"]["augment"]
    assert null["minus_scratch_ci95"] == [None, None] and null["minus_scratch_p"] is null["minus_scratch_p_holm"] is None
    for c in (cells["augment"], null):
        assert b.claim("hr", c) is None and b.better("hr", c["minus_scratch_ci95"]) is None
    assert b._diff(cells["augment"]) == b._diff(null) == "-4.000 [-, -] p - (Holm -)"
