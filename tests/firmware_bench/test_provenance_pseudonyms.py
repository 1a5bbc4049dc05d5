"""bench / predict's "seen in training" check on an export that writes a user's subjects as pseudonyms
(`export --subjects`, the default for an own dataset): the ids come from the source checkpoint when it is beside
the export (in-house); without it, one note line and the export's other datasets only (it said no subject was
seen: the pseudonyms match no recording)."""
from __future__ import annotations

import torch

from sqtool.core.checkpoint import save_checkpoint
from sqtool.core.manifest import MissingArtifact
from sqtool.firmware_bench.provenance import seen_warning, training_subjects

META = {"training_data": {"train_subjects": ["my_watch:subject-01", "my_watch:subject-02", "troika:01"],
                          "pseudonymised": ["my_watch"], "subjects_mode": "auto"}}


class Art:
    def __init__(self, metadata, ckpt=None):
        self.metadata, self.ckpt = metadata, ckpt

    def checkpoint(self, key):
        if self.ckpt is None:
            raise MissingArtifact("student_int8 checkpoint not beside the export")
        return self.ckpt


def test_the_source_checkpoint_beside_the_export_names_the_real_subjects(tmp_path):
    p = save_checkpoint(tmp_path / "model.pt", kind="student_int8", model_cfg={}, state_dict={"w": torch.ones(1)},
                        train_subjects=["my_watch:DOE_JOHN", "my_watch:ROE_JANE", "troika:01"])
    seen = training_subjects(Art(META, p))
    assert seen == {"my_watch:DOE_JOHN", "my_watch:ROE_JANE", "troika:01"}
    both, line = seen_warning(["my_watch:DOE_JOHN", "my_watch:POE_EDGAR"], seen)
    assert both == ["my_watch:DOE_JOHN"] and line.startswith("WARNING: 1 of 2 scored subjects were seen")


def test_without_it_one_note_and_the_named_datasets_only(capsys):
    seen = training_subjects(Art(META))
    err = capsys.readouterr().err.strip().splitlines()
    assert seen == {"troika:01"}
    assert len(err) == 1 and err[0].startswith("note: the export names its training subjects of my_watch by "
                                               "pseudonym") and "--subjects names" in err[0]


def test_an_export_that_names_its_subjects_reads_them_as_before(capsys):
    named = {"training_data": {"train_subjects": ["troika:01", "troika:02"]}}
    assert training_subjects(Art(named)) == {"troika:01", "troika:02"} and capsys.readouterr().err == ""
