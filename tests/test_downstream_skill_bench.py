"""benchmarks/downstream_skill.py: AF against each other rhythm reads each window's rhythm from its recording."""
import argparse

import numpy as np

from bench_scripts import load_benchmark
from tests.strict_json import strict_loads


def test_af_per_rhythm_reads_the_rhythm_of_every_window(data_root):
    af_per_rhythm = load_benchmark("downstream_skill").af_per_rhythm
    from sqtool.core import ModelCfg
    from sqtool.data.tasks import load_task, task_model_cfg
    cfg = task_model_cfg("af", ModelCfg(name="default", family="resnet1d").replace(fs=100.0))
    td = load_task("af", str(data_root), cfg)
    y = td.y[:, 0]
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(len(y), 1))
    out = af_per_rhythm(str(data_root), td.record_ids, y, {"perfect": y[:, None], "noise": noise,
                                                           "trivial": noise})
    assert set(out) == {"sinus", "PVC", "PAC", "VT", "SVT"} and "trivial" not in out["VT"]
    assert sum(r["windows"] for r in out.values()) == int((y < 0.5).sum())       # every non-AF window once
    assert all(r["perfect"] == 1.0 and 0.3 < r["noise"] < 0.7 for r in out.values())


def test_quality_trivial_is_each_sources_training_base_rate():
    """Pooled over sources with different base rates, a score that knows only the source ranks well: the trivial
    predictor of quality is that score (one constant logit per source, from its training folds), not 0.5."""
    from sqtool.core.metrics import auroc, oof_trivial, source_trivial
    from sqtool.data.tasks import subject_folds
    rng = np.random.default_rng(0)
    src = np.repeat(np.array(["but_ppg", "mw_ppg", "troika_index"]), [60, 400, 120])
    rate = {"but_ppg": 0.7, "mw_ppg": 0.97, "troika_index": 0.08}
    y = np.array([rng.random() < rate[s] for s in src], float)[:, None]
    groups = np.array([f"{s}:{i % 12}" for i, s in enumerate(src)])
    folds = subject_folds(groups, 5, seed=0)
    t = source_trivial("quality", y, src, folds)
    for s in rate:                                                     # one constant per source: AUROC 0.5 in it
        assert len(np.unique(t[src == s])) == 1 and auroc(y[src == s], t[src == s]) == 0.5
        fold_rates = [np.mean(y[tr][src[tr] == s]) for tr, _ in folds]
        assert np.isclose(t[src == s][0, 0], np.median(np.log(np.array(fold_rates) / (1 - np.array(fold_rates)))))
    base = np.array([rate[s] for s in src])
    assert auroc(y, t) == auroc(y, base) > 0.85                        # pooled: knowing the source is most of it
    assert auroc(y, oof_trivial("quality", y, folds)) == 0.5
    yr = np.where(src == "mw_ppg", 100.0, 0.0)[:, None] + rng.normal(size=(len(src), 1))
    tr_mean = source_trivial("bp", yr, src, folds)                   # regression: the source's training mean
    assert np.abs(tr_mean[src == "mw_ppg"] - 100).max() < 1 and np.abs(tr_mean[src == "but_ppg"]).max() < 1


def _five_patients_two_without_af():
    """(groups, y, folds, rng, a model's logits (200, 1)): 5 patients of 40 windows, p1 and p3 without AF."""
    from sqtool.data.tasks import subject_folds
    g = np.repeat(np.array(["p1", "p2", "p3", "p4", "p5"]), 40)
    y = np.zeros(200)
    y[40:55], y[120:150], y[160:170] = 1, 1, 1                         # p1 and p3 have no AF
    rng = np.random.default_rng(0)
    return g, y, subject_folds(g, 0), rng, (2 * y - 1 + rng.normal(0, 1.0, 200))[:, None]


def test_af_by_patient_counts_the_patients_without_af():
    """A patient without AF has no AUROC: its false-positive rate at the operating threshold (logit > 0) is
    counted, per patient and pooled; the mean of the per-patient AUROCs gets a t-interval (wider than the
    percentile bootstrap over so few); the report prints both."""
    b = load_benchmark("downstream_skill")
    from sqtool.core.metrics import t_interval
    g, y, folds, rng, p = _five_patients_two_without_af()
    per_fold, by = b.af_by_patient(y, g, folds, {"m": p, "trivial": np.full((200, 1), -1.0)}, 500)
    fp1, fp3 = int((p[:40, 0] > 0).sum()), int((p[80:120, 0] > 0).sum())
    assert [r["m"]["called_af"] for r in per_fold if r["af_windows"] == 0] == [fp1, fp3]
    m = by["m"]
    assert m["no_af_patients"] == 2 and m["no_af_windows"] == 80 and m["folds_with_both"] == 3
    assert m["no_af_false_positive_rate"] == (fp1 + fp3) / 80 and m["no_af_patient_fpr"] == [fp1 / 40, fp3 / 40]
    a = [r["m"]["auroc"] for r in per_fold if r["af_windows"]]
    assert m["mean_fold_auroc_ci95"] == list(t_interval(a))
    assert np.diff(m["mean_fold_auroc_ci95"]) > np.diff(m["mean_fold_auroc_ci95_bootstrap"])
    assert by["trivial"]["no_af_false_positive_rate"] == 0.0
    task = {"task": "af", "dataset": "synthetic", "subjects": 5, "windows": 200, "folds": "leave-one-patient-out",
            "rows": [], "per_fold": per_fold, "by_patient": by}
    md = b.report_md({"tasks": [task], "wall_s": 1.0, "command": "x"})
    assert f"FP {fp1 / 40:.3f} / " in md and "[percentile bootstrap]" in md and "t-interval" in md
    assert f"{m['no_af_false_positive_rate']:.3f} ({fp1 + fp3} / 80)" in md


def test_rr_deep_note_quotes_the_published_pretrain_vs_scratch_row(tmp_path):
    b = load_benchmark("downstream_skill")
    import json
    p = tmp_path / "train_pretrain_vs_scratch.json"
    assert "not run here" in b.deep_rr_note(p)
    row = {"task": "rr", "label_fraction": 1.0, "scratch": 2.661, "scratch_ci95": [2.16, 3.204], "pretrained": 2.646,
           "trivial": 2.399, "vs_trivial": {"scratch": {"flag": "no skill"}, "pretrained": {"flag": ""}}}
    p.write_text(json.dumps({"rows": [dict(row, label_fraction=0.1, scratch=9.0), row]}))
    assert b.deep_rr_note(p).endswith("MAE 2.66 [2.16, 3.20] scratch / 2.65 pretrained vs fold mean 2.40; "
                                      "scratch no skill, pretrained skill.")


def test_rows_kept_from_an_earlier_results_file_with_null_aurocs_render_and_merge_as_when_run(tmp_path):
    """A patient without AF has no AUROC: NaN in the run, null in downstream_skill.json (NaN in a file written
    before). The report of the file read back is the report of the run; --no-deep's earlier deep row, read back
    with its null per-patient AUROCs, goes into the by-patient figures as when it was run; the file is strict JSON."""
    import json

    from sqtool.core import write_metrics
    from sqtool.core.io import read_json
    b = load_benchmark("downstream_skill")
    g, y, folds, rng, p = _five_patients_two_without_af()
    deep = (2 * y - 1 + rng.normal(0, 2.0, 200))[:, None]
    per_fold, by = b.af_by_patient(y, g, folds, {"m": p, "deep": deep}, 200)
    assert np.isnan(per_fold[0]["m"]["auroc"])
    a = by["deep"]["pooled_auroc"]
    deep_row = {"predictor": "deep: x", "kind": "deep", "metric": "auroc", "value": a, "ci95": None, "auroc": a,
                "auroc_ci95": None, "spread": {"pred_std": [0.3]}, "flag": ""}
    task = {"task": "af", "dataset": "synthetic", "subjects": 5, "windows": 200, "folds": "leave-one-patient-out",
            "rows": [deep_row], "per_fold": per_fold, "by_patient": by}
    res = {"tasks": [task], "wall_s": 1.0, "command": "x"}
    write_metrics(tmp_path, res, "downstream_skill.json")
    text = (tmp_path / "downstream_skill.json").read_text()
    back = strict_loads(text, "downstream_skill.json")
    assert back["tasks"][0]["per_fold"][0]["m"]["auroc"] is None
    assert b.report_md(read_json(tmp_path / "downstream_skill.json")) == b.report_md(res)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "downstream_skill.json").write_text(json.dumps(res))          # NaN tokens, as before
    assert b.report_md(read_json(tmp_path / "old" / "downstream_skill.json")) == b.report_md(res)
    old_deep = b._previous_af_deep(argparse.Namespace(out=str(tmp_path)))
    assert old_deep[1]["p1"]["auroc"] is None
    _, by_kept = b.af_by_patient(y, g, folds, {"m": p}, 200, old_deep)
    assert by_kept["deep"] == by["deep"]
