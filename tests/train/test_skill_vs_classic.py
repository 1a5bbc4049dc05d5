"""A model that loses to the classic method is flagged, in metrics and on the command's last line, as 'no skill'
is (audit find_clin 5: `vs_classic` was computed and never read)."""
import numpy as np
from types import SimpleNamespace

from sqtool.core import metrics as M
from sqtool.train import skill as S


def _task(n_subjects=8, per=20, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{i}" for i in range(n_subjects)], per)
    y = rng.uniform(10, 30, (len(groups), 1))
    folds = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in np.unique(groups)]
    td = SimpleNamespace(x=np.zeros((len(y), 1, 8), np.float32), y=y, groups=groups, meta={"fs": 40.0})
    return td, folds, rng


def _report(monkeypatch, td, folds, pred, classic):
    monkeypatch.setattr(S, "classic_oof", lambda task, td_, folds_, front=None: (classic, "oracle-ish"))
    return S.skill_report("rr", td, pred, folds, ("rr_bpm",), n_boot=200)


def test_a_model_worse_than_the_classic_is_flagged_in_metrics_the_table_and_the_last_line(monkeypatch, capsys):
    from sqtool.train.cli import _print_skill
    td, folds, rng = _task()
    pred = td.y + rng.normal(0, 2.0, td.y.shape)            # beats the trivial predictor (MAE ~1.6 vs ~5)
    classic = td.y + rng.normal(0, 0.2, td.y.shape)          # but the classic is far better
    sk = _report(monkeypatch, td, folds, pred, classic)
    assert sk["flag"] == "" and sk["classic_flag"] == "worse than the classic method"
    _print_skill("rr", {"skill": sk})
    table, last = capsys.readouterr().out.strip().splitlines()
    assert "(oracle-ish, the model is worse than the classic method)" in table, table
    assert last.startswith("rr: mae model") and ": skill; WORSE THAN THE CLASSIC METHOD: mae " in last, last
    vs = sk["vs_classic"]
    assert f"{vs['model']:.3f} vs classic {vs['reference']:.3f}" in last and "95 % CI" in last


def test_no_flag_when_the_model_beats_the_classic_or_the_ci_includes_zero(monkeypatch, capsys):
    from sqtool.train.cli import _print_skill
    td, folds, rng = _task()
    pred = td.y + rng.normal(0, 0.5, td.y.shape)
    assert _report(monkeypatch, td, folds, pred, td.y + rng.normal(0, 3.0, td.y.shape))["classic_flag"] == ""
    close = pred + rng.normal(0, 0.05, td.y.shape)          # a hair worse than the classic: the CI spans zero
    sk = _report(monkeypatch, td, folds, close, pred)
    lo, hi = sk["vs_classic"]["diff_ci95"]
    assert sk["vs_classic"]["diff"] > 0 and lo < 0 < hi and sk["classic_flag"] == ""
    _print_skill("rr", {"skill": sk})
    assert "WORSE" not in capsys.readouterr().out


def test_without_a_ci_the_flag_says_it_is_a_point_comparison():
    vs = {"metric": "auroc", "better": "higher", "model": 0.595, "reference": 0.775, "diff": -0.18,
          "diff_ci95": [float("nan"), float("nan")], "skill": False, "flag": "no skill"}
    assert M.classic_flag(vs) == "worse than the classic method (point comparison, no CI)"
    text = M.classic_text(vs)                                # the flag: classic_flag(vs) unless given
    assert text == ("; WORSE THAN THE CLASSIC METHOD: auroc 0.595 vs classic 0.775 (difference -0.180, "
                    "a point comparison: no CI over subjects)")
    assert M.classic_flag({**vs, "diff_ci95": [-0.3, -0.05]}) == "worse than the classic method"
    assert M.classic_flag({**vs, "diff_ci95": [-0.3, 0.05]}) == ""
    # the CI excludes zero but the paired p does not (12 subjects): not flagged; 4 subjects of MAE cannot reach
    # p < 0.05 by swaps: flagged on the point value, saying so
    assert M.classic_flag({**vs, "diff_ci95": [-0.3, -0.05], "p": 0.08, "subjects": 12}) == ""
    shown = {**vs, "diff_ci95": [-0.3, -0.05], "p": 0.01, "subjects": 12}
    assert M.classic_flag(shown) == "worse than the classic method"
    mae_vs = {**vs, "metric": "mae", "better": "lower", "diff": 0.5, "diff_ci95": [0.1, 0.9], "p": 0.125, "subjects": 4}
    assert M.classic_flag(mae_vs) == "worse than the classic method (point comparison: 4 subjects cannot show it)"
    assert M.classic_flag({**mae_vs, "subjects": 8, "p": 0.3}) == ""
    # 2-3 subjects: t(1..2) intervals span zero whatever the model does; the worse point value is still flagged
    wide = {**mae_vs, "diff_ci95": [-0.94, 3.84], "p": 0.5, "subjects": 2}
    assert M.classic_flag(wide) == "worse than the classic method (point comparison: 2 subjects cannot show it)"
    text = M.classic_text(wide, flag=M.classic_flag(wide))
    assert text.startswith("; WORSE THAN THE CLASSIC METHOD (point comparison: 2 subjects cannot show it): mae ")
    assert text.endswith("(difference +0.500, 95 % CI -0.940, +3.840, p 0.5)")
    assert M.classic_flag(None) == "" and M.classic_text(None) == "" and M.classic_text(wide, flag="") == ""


def test_a_fine_tunes_quality_skill_is_judged_against_each_sources_base_rate():
    """Quality windows pooled over sources with different base rates: a score that knows only the source reaches a
    high pooled AUROC. The fine-tune's skill block scored the trivial predictor as one constant (AUROC 0.5), so a
    model that merely learned the source was called 'skill' (a tester's 0.80 against a per-source floor of 0.96); it
    now uses the per-source base rate, as README's skill section and the benchmark do."""
    from types import SimpleNamespace as NS

    import numpy as np

    from sqtool.data.tasks import subject_folds
    from sqtool.train.skill import skill_report
    rng = np.random.default_rng(0)
    src = np.repeat(np.array(["but_ppg", "mw_ppg", "troika_index"]), [120, 400, 160])
    rate = {"but_ppg": 0.5, "mw_ppg": 0.95, "troika_index": 0.05}
    y = np.array([rng.random() < rate[s] for s in src], float)[:, None]
    groups = np.array([f"{s}:{i % 10}" for i, s in enumerate(src)])
    folds = subject_folds(groups, 5, seed=0)
    knows_source = np.log([rate[s] / (1 - rate[s]) for s in src])[:, None] + 0.01 * rng.standard_normal((len(y), 1))
    td = NS(y=y, groups=groups, meta={"source": src})
    block = skill_report("quality", td, knows_source, folds, n_boot=50, classic=False)
    assert block["trivial"]["auroc"] > 0.85                           # the per-source floor, not 0.5
    assert block["flag"] == "no skill"                                 # knowing the source is no skill
    pooled = skill_report("quality", NS(y=y, groups=groups, meta={}), knows_source, folds, n_boot=50, classic=False)
    assert pooled["trivial"]["auroc"] == 0.5                           # without sources: one constant
