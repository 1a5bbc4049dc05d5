"""benchmarks/train_pretrain_vs_scratch.py: the trivial predictor on a run's own folds (quality: per source), the
per-source AUROCs, every difference with its direction, and the report's statement of what pretraining saw."""
import numpy as np

from bench_scripts import load_benchmark
from tests.strict_json import strict_loads


def _oof(rng, n=240):
    src = np.array(["but_ppg", "mw_ppg", "troika"])[np.arange(n) % 3]
    y = (rng.random(n) < np.where(src == "mw_ppg", 0.95, np.where(src == "troika", 0.1, 0.6))).astype(float)[:, None]
    subj = np.arange(n) % 24
    return {"y": y, "groups": np.array([f"{s}:{k}" for s, k in zip(src, subj)]), "fold": subj % 4,
            "record_ids": np.array([f"{s}:r{k}" for s, k in zip(src, subj)]),
            "pred": (3 * y - 1.5 + rng.normal(0, 1, (n, 1)))}


def test_trivial_and_per_source_rows():
    b = load_benchmark("train_pretrain_vs_scratch")
    from sqtool.core.metrics import auroc
    o = _oof(np.random.default_rng(0))
    src = b.source_of(o)
    t = b.trivial_oof("quality", o)
    assert all(len(np.unique(t[src == s])) == 1 for s in ("but_ppg", "mw_ppg", "troika"))
    assert auroc(o["y"], t) > 0.8                                      # the source alone ranks the pooled windows
    assert np.unique(b.trivial_oof("af", o)).size == 1                 # af: one constant logit, AUROC 0.5
    yr = o["y"] * 10
    tr = b.trivial_oof("rr", dict(o, y=yr))                            # regression: the other folds' mean
    assert np.allclose(tr[o["fold"] == 0], yr[o["fold"] != 0].mean())
    bs = b.by_source("quality", {"model": o["pred"], "trivial": t}, o, n_boot=50)
    assert set(bs) == {"but_ppg", "mw_ppg", "troika"} and bs["troika"]["windows"] == 80
    assert all(v["trivial"] == 0.5 and v["model"] > 0.7 and len(v["model_ci95"]) == 2 for v in bs.values())


def test_every_difference_is_reported_with_its_direction():
    b = load_benchmark("train_pretrain_vs_scratch")
    base = {"input": {"band": [0.5, 8.0]}, "scratch": 1.0, "scratch_ci95": [0.9, 1.1], "pretrained": 1.0,
            "pretrained_ci95": [0.9, 1.1]}
    rows = [dict(base, task="bp", metric="mae", better="lower", label_fraction=0.1,
                 delta_pretrained_minus_scratch=1.333, delta_ci95=[0.891, 1.833], delta_p=0.0001, trivial=12.5),
            dict(base, task="quality", metric="auroc", better="higher", label_fraction=1.0, delta_p=0.03,
                 delta_pretrained_minus_scratch=-0.005, delta_ci95=[-0.0107, -0.0003], trivial=0.93,
                 vs_trivial={"scratch": {"flag": ""}, "pretrained": {"flag": "no skill"}},
                 by_source={"troika": {"windows": 355, "positives": 28, "scratch": 0.8, "scratch_ci95": [0.7, 0.9],
                                       "pretrained": 0.79, "pretrained_ci95": [0.7, 0.9], "trivial": 0.5,
                                       "trivial_ci95": [0.5, 0.5]}}),
            dict(base, task="af", metric="auroc", better="higher", label_fraction=1.0, delta_p=0.3,
                 delta_pretrained_minus_scratch=0.01, delta_ci95=[-0.02, 0.04]),
            dict(base, task="hr", metric="mae", better="lower", label_fraction=0.1, delta_p=0.0625,   # 12 subjects:
                 delta_pretrained_minus_scratch=-3.6, delta_ci95=[-5.4, -2.0])]      # the CI alone is not enough
    assert [b.direction(r) for r in rows] == ["pretrained WORSE", "pretrained WORSE", "no difference shown",
                                              "no difference shown"]
    assert b.direction(dict(rows[3], delta_p=0.04)) == "pretrained better"
    assert b.direction({k: v for k, v in rows[0].items() if k != "delta_p"}) == "no difference shown"
    assert b.direction(dict(rows[0], delta_ci95=[None, None])) == "no difference shown"      # 1 subject: no CI
    assert b._ci(1.0, [None, None]) == "1.000" and b._ci(1.0, [0.5, 1.5]) == "1.000 [0.500, 1.500]"
    res = {"model": "m", "finetune": {"epochs": 5}, "rows": rows, "wall_s": 1.0, "command": "c",
           "pretrain": {"pairs": "p", "epochs_done": 1, "first_loss": 0.0, "final_loss": -0.9, "val_z_std": 0.1,
                        "z_std_healthy": 0.125, "elapsed_s": 1.0},
           "pairs_summary": {"pairs": 10, "synthetic_pairs": 2,
                             "datasets": {"troika": {"windows": 351, "pairs": 6, "synthetic_pairs": 0}}}}
    md = b.report_md(res)
    assert "+1.333 [+0.891, +1.833], p 0.0001 | pretrained WORSE" in md and "-0.0050 [-0.0107, -0.0003]" in md
    assert "Pretrained WORSE than scratch (p < 0.05 and 95 % CI excluding zero, unadjusted): bp 10 % (mae)" in md
    assert "Pretrained better than scratch (p < 0.05 and 95 % CI excluding zero, unadjusted): nowhere." in md
    assert "-3.600 [-5.400, -2.000], p 0.0625 | no difference shown" in md and "NOT adjusted" in md
    assert "not disjoint" in md and "quality index > 0.5" in md and "troika (351 windows" in md
    assert "| troika | 355 | 28 | 0.800 [0.700, 0.900]" in md and "| pretrained |" in md


def test_delta_test_is_the_within_subject_permutation_p():
    """pretrained - scratch's p swaps each subject's two sets of predictions: 5 subjects, pretrained better on every
    window, p = 2/32 (exact; no direction claimed); the same with 20 subjects (sampled) is far below 0.05."""
    b = load_benchmark("train_pretrain_vs_scratch")
    rng = np.random.default_rng(3)
    for S, small in ((5, False), (20, True)):
        g = np.repeat(np.arange(S), 25).astype(str)
        y = rng.normal(15, 3, (len(g), 1))
        scratch, pre = y + 4 + rng.normal(0, 1, y.shape), y + rng.normal(0, 1, y.shape)
        t = b.delta_test("rr", y, scratch, pre, g)
        p = t["p"]
        assert t["ci95"][1] < 0                                  # pretrained better on every window
        assert (p < 0.001) if small else p == 2 / 32


def test_a_difference_without_interval_or_p_renders_the_same_from_the_run_and_from_its_json(tmp_path, monkeypatch):
    """One subject: the difference has no t-interval and no p (NaN in the run, null in the JSON); the row reads
    'no difference shown' and --restate re-renders the report the run wrote, from strict JSON."""
    import sys

    from sqtool.core import write_metrics
    from sqtool.core.io import read_json
    b = load_benchmark("train_pretrain_vs_scratch")
    rng = np.random.default_rng(0)
    y = rng.normal(15, 3, (25, 1))
    t = b.delta_test("rr", y, y + 4, y + rng.normal(0, 1, y.shape), np.full(25, "s1"))
    assert np.isnan(t["ci95"]).all() and np.isnan(t["p"])
    row = {"task": "rr", "metric": "mae", "better": "lower", "label_fraction": 1.0, "input": {"band": [0.05, 8.0]},
           "scratch": 4.0, "scratch_ci95": [3.5, 4.5], "pretrained": 0.8, "pretrained_ci95": [0.7, 0.9],
           "delta_pretrained_minus_scratch": -3.2, **{f"delta_{k}": v for k, v in t.items()}, "trivial": 2.5}
    res = {"model": "m", "finetune": {"epochs": 5}, "rows": [row], "wall_s": 1.0, "command": "c",
           "pretrain": {"pairs": "p", "epochs_done": 1, "first_loss": float("nan"), "final_loss": -0.9,
                        "val_z_std": 0.1, "z_std_healthy": 0.125, "elapsed_s": 1.0},
           "pairs_summary": {"pairs": 10, "synthetic_pairs": 2, "datasets": {}}}
    md = b.report_md(res)
    assert "| -3.200, p - | no difference shown |" in md and "SimSiam loss nan -> -0.900" in md
    write_metrics(tmp_path, res, "train_pretrain_vs_scratch.json")
    back = strict_loads((tmp_path / "train_pretrain_vs_scratch.json").read_text(), "the results JSON")
    assert back["rows"][0]["delta_ci95"] == [None, None] and back["rows"][0]["delta_p"] is None
    assert b.report_md(read_json(tmp_path / "train_pretrain_vs_scratch.json")) == md
    monkeypatch.setattr(sys, "argv", ["train_pretrain_vs_scratch.py", "--restate", "--out", str(tmp_path)])
    assert b.main() == 0
    assert (tmp_path / "train_pretrain_vs_scratch.md").read_text() == md
