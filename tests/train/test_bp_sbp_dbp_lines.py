"""bp: the headline MAE is the mean of the SBP and DBP MAEs; the fine-tune lines say so and show each beside it
(audit find_clin 8: 'MAE 15.82 mmHg' with mae_sbp 18.47 and mae_dbp 13.17 unsaid)."""
from types import SimpleNamespace


def _bp_metrics():
    sk = {"skill": {"metric": "mae", "model": 15.82, "reference": 16.5, "diff": -0.68, "diff_ci95": [-2.0, 0.5],
                    "skill": False, "flag": "no skill"},
          "trivial": {"mae_sbp": 19.0, "mae_dbp": 14.0, "mae": 16.5, "n": 36},
          "classic": {"name": None, "why": "no classic cuffless BP estimator"}, "spread": {"pred_std": [3.0, 2.0]},
          "flag": "no skill", "classic_flag": ""}
    return {"primary_metric": "mae", "mae": 15.82, "ci95": {"mae": [12.0, 19.0], "mae_sbp": [14.0, 23.0],
                                                             "mae_dbp": [10.0, 16.0]},
            "metrics": {"mae_sbp": 18.47, "mae_dbp": 13.17, "mae": 15.82, "n": 36}, "folds": "3-fold by subject",
            "subjects": 12, "windows": 36, "n_folds": 3, "skill": sk, "heldout_subjects": ["s13", "s14", "s15"],
            "heldout_rule": "the last 0.2 of the sorted subjects (--heldout-fraction)"}


def test_the_bp_headline_table_and_last_line_show_sbp_and_dbp_beside_their_mean(tmp_path, capsys):
    from sqtool.train.cli import _print_finetune
    _print_finetune(SimpleNamespace(task="bp"), tmp_path, _bp_metrics())
    head, held, _next, table, last = capsys.readouterr().out.strip().splitlines()
    assert head == ("bp (3-fold by subject, 12 subjects, 36 windows): mean of SBP and DBP MAE 15.82 mmHg "
                    "[95 % CI 12, 19]; SBP MAE 18.47 mmHg [95 % CI 14, 23]; DBP MAE 13.17 mmHg [95 % CI 10, 16] "
                    f"-> {tmp_path}"), head
    assert held.startswith("held out of every fold and of model.pt (the last 0.2 of the sorted subjects "
                           "(--heldout-fraction)): s13, s14, s15;"), held
    assert table.startswith("bp: trivial mean of SBP and DBP mae 16.500 (SBP 19.000, DBP 14.000); classic n/a"), table
    assert last.startswith("bp: mean of SBP and DBP mae model 15.820 vs trivial 16.500 "), last
    assert last.endswith("; per output, model vs trivial: SBP mae 18.470 vs 19.000, DBP mae 13.170 vs 14.000"), last


def test_a_one_output_task_reads_as_before(tmp_path, capsys):
    from sqtool.train.cli import _print_finetune
    m = _bp_metrics()
    m["metrics"] = {"mae_rr_bpm": 2.5, "mae": 2.5, "n": 36}
    m["skill"]["trivial"] = {"mae_rr_bpm": 4.0, "mae": 4.0, "n": 36}
    m["mae"] = 2.5
    _print_finetune(SimpleNamespace(task="rr"), tmp_path, m)
    head, held, _next, table, last = capsys.readouterr().out.strip().splitlines()
    assert head.startswith("rr (3-fold by subject, 12 subjects, 36 windows): MAE 2.50 breaths/min [95 % CI 12, 19] ->")
    assert table.startswith("rr: trivial mae 4.000; classic n/a") and last.startswith("rr: mae model 15.820 vs")
    assert "per output" not in last
