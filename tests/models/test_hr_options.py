"""sqtool.models.hr_options: the calibration subjects and the report's calibration advice."""
from types import SimpleNamespace

import pytest

from sqtool.core import SqtoolError
from sqtool.models.hr_options import calibration_hint, calibration_subjects, calibration_text, heldout_calibration


def test_calibration_subjects_are_the_named_datasets_training_subjects():
    recs = [SimpleNamespace(dataset=d, key=f"{d}:{s}") for d, s in
            (("troika", "01"), ("troika", "02"), ("wrist_exercise", "s2"), ("wrist_exercise", "s3"))]
    assert calibration_subjects(recs, []) is None                                     # every subject
    assert calibration_subjects(recs, ["wrist_exercise"]) == {"wrist_exercise:s2", "wrist_exercise:s3"}
    with pytest.raises(SqtoolError, match="no training recording of my_watch"):
        calibration_subjects(recs, ["my_watch"])
    assert calibration_subjects(recs, ["my_watch"], strict=False) is None
    assert calibration_subjects(recs, ["all"]) is None                                # every subject, said aloud
    with pytest.raises(SqtoolError, match="give it alone"):
        calibration_subjects(recs, ["all", "troika"])


def test_quantize_calibrates_on_the_held_out_subjects_dataset_unless_told():
    two, held = ("troika", "wrist_exercise"), ("wrist_exercise",)
    assert heldout_calibration([], two, held) == ["wrist_exercise"]                   # the device it ships on
    assert heldout_calibration(["all"], two, held) == []                              # every training subject
    assert heldout_calibration(["troika"], two, held) == ["troika"]                   # as given
    assert heldout_calibration([], ("wrist_exercise",), held) == []                   # one dataset: all of it
    assert heldout_calibration([], two, ("my_watch",)) == []                          # no training subject of it
    assert heldout_calibration([], two, two) == []                                    # held out of every dataset
    assert heldout_calibration([], two, ()) == []
    assert calibration_text(["wrist_exercise"]) == " of wrist_exercise"
    assert calibration_text(["all"]) == calibration_text([]) == ""


def test_the_hint_names_the_held_out_dataset_only_when_the_interval_is_too_narrow_and_a_fix_exists():
    two, held = ("troika", "wrist_exercise"), ("wrist_exercise",)
    hint = calibration_hint(two, held, [], 0.548)
    assert "54.8 %" in hint and "`--calibrate-on wrist_exercise`" in hint and "troika, wrist_exercise" in hint
    assert calibration_hint(two, held, [], 0.79) is not None
    assert calibration_hint(two, held, [], 0.85) is None                             # within 10 points of 90 %
    assert calibration_hint(two, held, [], 1.0) is None                              # too wide: not this cause
    assert calibration_hint(two, held, ["wrist_exercise"], 0.548) is None            # already calibrated there
    assert calibration_hint(("wrist_exercise",), held, [], 0.548) is None            # one dataset: nothing to choose
    assert calibration_hint(two, ("my_watch",), [], 0.548) is None                   # no training subject of it
    assert calibration_hint(two, two, [], 0.548) is None                             # held out of every dataset
    assert calibration_hint(two, held, [], None) is None                             # no interval measured
    assert calibration_hint(two, held, ["all"], 0.548) is not None                   # told every subject: advised
