"""The trivial predictors and the "no skill" flag: a constant predictor is flagged, a good one is not,
for regression and classification; the prediction spread of a constant head is zero."""
import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.core.metrics import (oof_trivial, prediction_spread, skill_line, skill_test, trivial_predictions)
from sqtool.data.tasks import subject_folds


def _data(seed=0, n_subj=12, per=20):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{i}" for i in range(n_subj)], per)
    y = (15 + 4 * rng.standard_normal(len(groups)))[:, None]
    return y, groups, rng


def test_trivial_regression_is_training_mean_and_oof_uses_only_training_folds():
    y, groups, _ = _data()
    t = trivial_predictions("rr", y[:10], 3)
    assert t.shape == (3, 1) and np.allclose(t, y[:10].mean())
    folds = subject_folds(groups, 4)
    o = oof_trivial("rr", y, folds)
    for tr, te in folds:
        assert np.allclose(o[te], y[tr].mean()) and not np.isclose(o[te][0, 0], y.mean())
    bp = trivial_predictions("bp", np.array([[120.0, 80.0], [130.0, 70.0]]), 2)
    assert np.allclose(bp, [[125, 75], [125, 75]])


def test_trivial_classification_is_base_rate_logit():
    t = trivial_predictions("af", np.array([1, 0, 0, 0]), 5)
    assert t.shape == (5, 1) and np.allclose(1 / (1 + np.exp(-t)), 0.25)    # majority class (0) at 0.5
    with pytest.raises(SqtoolError):
        trivial_predictions("af", np.zeros((0, 1)), 2)


def test_constant_regression_predictor_is_flagged_and_good_one_is_not():
    y, groups, rng = _data()
    folds = subject_folds(groups, 4)
    triv = oof_trivial("rr", y, folds)
    const = np.full_like(y, 15.0)
    s = skill_test("rr", y, const, triv, groups, n_boot=200)
    assert not s["skill"] and s["flag"] == "no skill" and "NO SKILL" in skill_line("rr", s)
    good = y + 0.5 * rng.standard_normal(y.shape)
    s = skill_test("rr", y, good, triv, groups, n_boot=200)
    assert s["skill"] and s["flag"] == "" and s["diff"] < 0 and s["diff_ci95"][1] < 0
    assert "NO SKILL" not in skill_line("rr", s)
    worse = y + 8 * rng.standard_normal(y.shape)          # worse than the mean: no skill
    assert skill_test("rr", y, worse, triv, groups, n_boot=200)["flag"] == "no skill"


def test_constant_classifier_is_flagged_and_good_one_is_not():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"p{i}" for i in range(10)], 30)
    y = (rng.random(len(groups)) < 0.4).astype(float)[:, None]
    folds = subject_folds(groups, 5)
    triv = oof_trivial("quality", y, folds)
    s = skill_test("quality", y, np.zeros_like(y), triv, groups, n_boot=200)    # auroc 0.5 = trivial
    assert s["flag"] == "no skill"
    good = (2 * y - 1) * 2 + rng.standard_normal(y.shape)
    s = skill_test("quality", y, good, triv, groups, n_boot=200)
    assert s["skill"] and s["model"] > 0.9 and s["reference"] == pytest.approx(0.5)


def test_prediction_spread():
    y, _, rng = _data()
    sp = prediction_spread("rr", np.full_like(y, 3.0), y)
    assert sp["pred_std"] == [0.0] and sp["ratio"] == [0.0]
    sp = prediction_spread("rr", y, y)
    assert sp["ratio"][0] == pytest.approx(1.0)


def test_finetune_reports_trivial_classic_spread_and_ends_with_the_skill_line(af_finetune):
    import json
    tmp_path, stdout = af_finetune
    m = json.loads((tmp_path / "metrics.json").read_text())
    sk = m["skill"]
    assert set(sk) >= {"trivial", "classic", "spread", "skill", "flag"} and m["flag"] == sk["flag"]
    assert sk["trivial"]["auroc"] == pytest.approx(0.5) and "RMSSD" in sk["classic"]["name"]
    assert len(sk["spread"]["pred_std"]) == 1 and "vs_classic" in sk
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("af: auroc model") and ("NO SKILL" in last) == (m["flag"] == "no skill")


def test_few_subjects_cannot_show_skill_and_the_line_says_why():
    """4 subjects, a model far better than the trivial on every one: the bootstrap CI excludes zero, but swapping
    the two within 4 subjects gives p >= 2/16, so skill is not shown and the line says so (not 'does not beat');
    with 12 subjects the same model shows skill at the exact p 2/4096. AUROC gets the clustered DeLong p."""
    for n_subj, shown in ((4, False), (12, True)):
        y, groups, rng = _data(n_subj=n_subj)
        good = y + 0.5 * rng.standard_normal(y.shape)
        triv = np.full_like(y, y.mean())
        s = skill_test("rr", y, good, triv, groups, n_boot=200)
        assert s["diff_ci95"][1] < 0 and s["subjects"] == n_subj and s["skill"] is shown
        assert s["p"] == pytest.approx(2 / 2 ** n_subj)
        line = skill_line("rr", s)
        assert (f"p {s['p']:.3g}" in line) and (line.endswith("skill") if shown else
                                                 line.endswith("NO SKILL shown (4 subjects cannot show it: more subjects)"))
    y, groups, rng = _data(n_subj=2)                    # 2 subjects: t(1) spans zero, the point value still better
    s = skill_test("rr", y, y + 0.5 * rng.standard_normal(y.shape), np.full_like(y, y.mean()), groups, n_boot=200)
    assert s["diff"] < 0 and skill_line("rr", s).endswith("NO SKILL shown (2 subjects cannot show it: more "
                                                          "subjects)")     # rr: `sqtool bench` runs heart rate only
    assert skill_line("hr", s).endswith("NO SKILL shown (2 subjects cannot show it: bench more)")
    y = (np.random.default_rng(3).random((80, 1)) < 0.4).astype(float)     # AUROC: the clustered DeLong p
    s = skill_test("af", y, 4 * y - 2, np.zeros_like(y), np.repeat(["a", "b", "c", "d"], 20), n_boot=200)
    assert s["p"] < 0.01 and s["skill"] and skill_line("af", s).endswith(": skill")   # no floor on a t
    worse = skill_test("rr", y, y + 5.0, np.full_like(y, y.mean()), np.repeat(["a", "b", "c", "d"], 20), n_boot=200)
    assert skill_line("rr", worse).endswith("NO SKILL (does not beat the trivial predictor)")   # worse: not 'bench more'
    one = skill_test("rr", y, y, np.full_like(y, 0.5), np.zeros(80), n_boot=50)
    assert one["subjects"] == 1 and not one["skill"]                    # one subject shows nothing
    assert skill_line("rr", {**worse, "p": None}).endswith("NO SKILL (does not beat the trivial predictor)")


def test_the_skill_line_of_a_verdict_read_back_from_json_is_the_line_of_the_run(tmp_path):
    """A fine-tune's skill block travels through metrics.json (compress's teacher_skill) into an export's metadata,
    where a NaN (no interval, no p: one subject) is null: the warning line bench prints is the run's own line."""
    from sqtool.core import write_metrics
    from sqtool.core.io import read_json
    y, groups, rng = _data(n_subj=1)
    s = skill_test("rr", y, y + 0.5 * rng.standard_normal(y.shape), np.full_like(y, y.mean()), groups, n_boot=50)
    assert np.isnan(s["diff_ci95"]).all() and np.isnan(s["p"])
    write_metrics(tmp_path, {"skill": s})
    back = read_json(tmp_path / "metrics.json")["skill"]
    assert back["diff_ci95"] == [None, None] and back["p"] is None
    assert skill_line("rr", back) == skill_line("rr", s)
    assert "no CI: one subject): NO SKILL shown (1 subject cannot show it" in skill_line("rr", back)


def test_the_skill_line_of_one_subject_or_an_undefined_metric_does_not_say_the_model_lost():
    """One held-out patient with an AUROC well above 0.5 cannot show skill (no interval): 'NO SKILL shown (1 subject
    cannot show it', whatever the metric; an AUROC over windows of one class is undefined: said so, never 'does not
    beat the trivial predictor' (both once printed that, with '95 % CI +nan, +nan')."""
    one = {"metric": "auroc", "better": "higher", "model": 0.982, "reference": 0.5, "diff": 0.482,
           "diff_ci95": [float("nan"), float("nan")], "p": float("nan"), "subjects": 1, "skill": False}
    line = skill_line("af", one)
    assert line.endswith("NO SKILL shown (1 subject cannot show it: more subjects)") and "no CI: one subject" in line
    undefined = {**one, "model": float("nan"), "reference": float("nan"), "diff": float("nan")}
    assert skill_line("af", undefined).endswith("NO SKILL shown (its auroc is undefined on these windows)")
    assert "nan, +nan" not in skill_line("af", undefined)
