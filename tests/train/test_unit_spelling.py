"""Heart rate's unit is written BPM in every line a fine-tune prints: the time-domain fine-tune's trivial / classic
and skill lines took the output's unit field ("bpm", metrics.json "units") as it is, beside a headline in BPM."""
from types import SimpleNamespace


def _hr_metrics():
    sk = {"skill": {"metric": "mae", "model": 24.993, "reference": 24.618, "diff": 0.375, "diff_ci95": [-0.095, 0.846],
                    "p": 0.25, "skill": False, "flag": "no skill", "subjects": 6},
          "trivial": {"mae": 24.618, "n": 342},
          "classic": {"name": "PPG spectral peak", "metrics": {"mae": 12.306}}, "spread": {"pred_std": [12.7]},
          "flag": "no skill", "classic_flag": ""}
    return {"primary_metric": "mae", "mae": 24.99, "ci95": {"mae": [19.0, 31.1]}, "units": ["bpm"],
            "metrics": {"mae": 24.99, "n": 342}, "folds": "2-fold by subject", "subjects": 6, "windows": 342,
            "n_folds": 2, "skill": sk, "heldout_subjects": ["syn006", "syn007"],
            "heldout_rule": "the last 0.2 of the sorted subjects (--heldout-fraction)"}


def test_the_hr_finetune_summary_writes_bpm_as_the_rest_of_the_tool(tmp_path, capsys):
    from sqtool.train.cli import _print_finetune
    _print_finetune(SimpleNamespace(task="hr"), tmp_path, _hr_metrics())
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("hr (2-fold by subject, 6 subjects, 342 windows): MAE 24.99 BPM "), lines[0]
    assert lines[-2].startswith("hr: trivial mae 24.618 BPM; classic mae 12.306 BPM (PPG spectral peak)"), lines[-2]
    assert lines[-1].startswith("hr: mae model 24.993 BPM vs trivial 24.618 BPM (difference +0.375 BPM, 95 % CI "
                                "-0.095, +0.846 BPM, p 0.25): NO SKILL"), lines[-1]
    assert not any(" bpm" in ln for ln in lines), lines


def test_other_units_print_as_given():
    from sqtool.core.metrics import skill_unit
    from sqtool.core.progress import metric_text, unit_text
    assert skill_unit("mae", ["bpm"]) == "BPM" and skill_unit("mae", ["mmHg", "mmHg"]) == "mmHg"
    assert skill_unit("mae", ["%"]) == "%" and skill_unit("auroc", ["logit"]) == ""
    assert unit_text("breaths/min") == "breaths/min" and unit_text(None) == ""
    assert metric_text("pulse", "mae", 3.0, "bpm") == "MAE 3.00 BPM"       # a custom label's unit field too
