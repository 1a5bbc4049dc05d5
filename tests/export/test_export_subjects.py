"""What a shipped export folder says about the training subjects (privacy review, find_priv 1): a user's own
dataset's subject ids (MRNs, names, file names with dates) are written as pseudonyms by default (`--subjects auto`),
in the model card, metadata.json, every ONNX / TFLite file and the parity windows alike; sqtool's public datasets
keep their ids (their cards unchanged); `--subjects names` writes every id."""
from __future__ import annotations

import json

import numpy as np
import pytest

from privacy_fixtures import DS, HELD, LEAKS, TRAIN, shipped_files


def test_a_users_own_subjects_are_pseudonyms_in_every_shipped_file(hospital):
    root, run, out, res = hospital
    for p in shipped_files(out):                                          # card, metadata, onnx, tflite, C, report, ...
        data = p.read_bytes()
        assert not any(s.encode() in data for s in LEAKS), p
    md = json.loads((out / "metadata.json").read_text())
    td = md["training_data"]
    assert td["train_subjects"] == [f"{DS}:subject-01", f"{DS}:subject-03", f"{DS}:subject-04"]   # sorted ids
    assert td["heldout_subjects"] == [f"{DS}:subject-02"] and td["datasets"] == [DS]
    assert td["subjects_mode"] == "auto" and td["pseudonymised"] == [DS]
    import onnx
    props = {p.key: p.value for p in onnx.load(str(out / "model_int8.onnx")).metadata_props}
    assert json.loads(props["training_data"])["heldout_subjects"] == [f"{DS}:subject-02"]
    assert f"{DS}:subject-02".encode() in (out / "model_int8.tflite").read_bytes()
    card = (out / "MODEL_CARD.md").read_text()
    assert f"trained on 3 subjects: {DS}:subject-01, {DS}:subject-03, {DS}:subject-04" in card
    assert f"| {DS}:subject-02 | 11.99 | 12.99 | 13.99 | 14.99 |" in card     # the per-subject row, its figures kept
    assert f"the subjects of `{DS}` are pseudonyms" in card
    assert any("written as pseudonyms" in n and "--subjects names" in n for n in res["summary"].splitlines())


def test_every_explanation_of_the_pseudonyms_is_the_one_wording(hospital):
    """The metadata's note, the export's note line, the model card and `sqtool export --help` explain a pseudonym
    with subjects.PSEUDONYM_FORM; the metadata and the note line say where the ids are with PSEUDONYM_IDS."""
    from sqtool.export.cli import ExportConfig
    from sqtool.export.subjects import PSEUDONYM_FORM, PSEUDONYM_IDS, PSEUDONYM_NOTE
    _, run, out, res = hospital
    assert PSEUDONYM_FORM in PSEUDONYM_NOTE and PSEUDONYM_IDS in PSEUDONYM_NOTE
    assert json.loads((out / "metadata.json").read_text())["training_data"]["pseudonym_note"] == PSEUDONYM_NOTE
    note = next(n for n in res["summary"].splitlines() if "written as pseudonyms" in n)
    assert f"({PSEUDONYM_FORM}; --subjects auto; source run {run / 'model.pt'}): {PSEUDONYM_IDS}" in note
    assert f"the subjects of `{DS}` are pseudonyms ({PSEUDONYM_FORM}); their ids stay with the developer" in \
        (out / "MODEL_CARD.md").read_text()
    assert f"pseudonyms ({PSEUDONYM_FORM})" in ExportConfig.__dataclass_fields__["subjects"].metadata["help"]


def test_the_parity_windows_of_an_onnx_export_name_no_patient(hospital, tmp_path):
    from sqtool.export.cli import ExportConfig, export
    _, run, _, _ = hospital
    res = export(ExportConfig(model=str(run), target=["onnx"], out=str(tmp_path / "e"), progress=False))
    assert res["failed"] == []
    with np.load(tmp_path / "e" / "heldout.npz") as z:
        assert "record_ids" not in z.files and set(z["groups"]) == {f"{DS}:subject-02"}
        assert len(z["x"]) == 6


def test_names_writes_the_ids_and_public_datasets_keep_theirs_under_auto(tmp_path):
    from sqtool.export.subjects import renamed, subject_names
    assert subject_names(TRAIN + HELD, "names") == {}
    public = ["troika:01", "troika:02", "wrist_exercise:s4", "synthetic:syn001", "bidmc:bidmc03", "ppg_bp:2_1"]
    assert subject_names(public, "auto") == {}                   # public ids: the card is what it always was
    mixed = subject_names(public + ["my_watch:s04", "my_watch:s01"], "auto")
    assert mixed == {"my_watch:s01": "my_watch:subject-01", "my_watch:s04": "my_watch:subject-02",
                     "s01": "subject-01", "s04": "subject-02"}
    assert subject_names(["troika:01"], "pseudonyms") == {"troika:01": "troika:subject-01", "01": "subject-01"}
    assert renamed({"my_watch:s04": 1.0, "my_watch:s99": [2]}, mixed) == {"my_watch:subject-02": 1.0,
                                                                           "my_watch:subject-?": [2]}


def test_auto_leaves_a_public_datasets_card_byte_identical(tmp_path):
    """The model card of a troika / wrist_exercise model: the same bytes with the names given explicitly (the card
    before the option) and under auto (whose map is empty for public datasets)."""
    from export_fixtures import make_float_specnet, make_int8_specnet, synthetic_spectra
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.export.kit import model_card
    from sqtool.export.metadata import build_metadata
    from sqtool.export.pipeline import decoder_config, frontend_config
    from sqtool.export.subjects import subject_names
    f = make_float_specnet("spec_student_xs", 0)
    g = extract_int_graph(make_int8_specnet(f, synthetic_spectra(f.cfg, 16, 0)[0]))
    mc = f.cfg.to_dict()
    keys = ["troika:01", "troika:02", "wrist_exercise:s2", "wrist_exercise:s4"]
    ck = {"model_cfg": mc, "kind": "student_int8", "train_subjects": keys[:3], "heldout_subjects": keys[3:]}
    (tmp_path / "metrics.json").write_text(json.dumps({"heldout_subjects": keys[3:], "mae_bpm": {"int8": 3.0},
                                                       "per_subject": {"int8": {keys[3]: 3.0}}}))
    names = subject_names(keys, "auto")
    cards = [model_card(mc, build_metadata(ck, "0" * 64, g, n), g, frontend_config(mc), decoder_config(mc, g),
                        tmp_path, n) for n in (None, names)]
    assert cards[0] == cards[1] and "| wrist_exercise:s4 | 3.00 |" in cards[0]
    assert "pseudonymised" not in build_metadata(ck, "0" * 64, g, names, "auto")["training_data"]


def test_names_on_request_and_a_bad_mode_is_one_line(hospital, tmp_path):
    from sqtool.core import SqtoolError
    from sqtool.export.cli import ExportConfig, export
    _, run, _, _ = hospital
    res = export(ExportConfig(model=str(run), target=["onnx"], subjects="names", out=str(tmp_path / "n"),
                              progress=False))
    td = res["metadata"]["training_data"]
    assert td == {"datasets": [DS], "train_subjects": TRAIN, "heldout_subjects": HELD}      # as before the option
    assert not any("pseudonym" in n for n in res["summary"].splitlines())
    with pytest.raises(SqtoolError, match=r"--subjects 'hashed': use one of auto, names, pseudonyms"):
        export(ExportConfig(model=str(run), target=["onnx"], subjects="hashed", out=str(tmp_path / "h")))


def test_a_bare_subject_name_follows_its_datasets_rule():
    """A run's metrics.json names its subjects bare ("MPA_200714204601", "s04"), its checkpoint as keys: a bare name
    of a public dataset's subject stays as it is (an audit found a public af export's heldout.npz groups renamed
    subject-01 while its card named the ids), one of a private dataset's takes its key's pseudonym, and a bare name
    no key explains is a pseudonym of its own."""
    from sqtool.export.subjects import subject_names
    assert subject_names(["ppg_arrhythmia:MPA_1", "MPA_1", "bidmc:bidmc43", "bidmc43"], "auto") == {}
    assert subject_names(["my_watch:s04", "s04"], "auto") == {"my_watch:s04": "my_watch:subject-01",
                                                              "s04": "subject-01"}
    assert subject_names(["bidmc:bidmc43", "x9"], "auto") == {"x9": "subject-01"}
    shared = subject_names(["a:p1", "b:p1", "p1"], "auto")       # two private datasets' p1: the bare name hidden too
    assert shared == {"a:p1": "a:subject-01", "b:p1": "b:subject-01", "p1": "subject-01"}


def test_a_time_domain_fine_tunes_bare_ids_are_pseudonyms_of_its_dataset_and_its_card_names_it(tmp_path):
    """A time-domain fine-tune records bare subject ids (MRN1040) and metrics.json 'dataset': its export's note said
    'subjects of  written as pseudonyms', the pseudonyms lost their dataset, and the card said the training data
    were 'not recorded in the source run' and listed every built-in licence."""
    from sqtool.export.cli import source_subjects
    from sqtool.export.kit import data_sections
    from sqtool.export.subjects import pseudonymised, renamed, subject_names
    run = tmp_path / "ft"
    run.mkdir()
    ids = [f"MRN10{i:02d}" for i in range(1, 7)]
    (run / "metrics.json").write_text(json.dumps({"task": "rr", "dataset": "ward_icu", "heldout_subjects": ids[4:],
                                                  "per_subject": [{"subject": s} for s in ids[:4]]}))
    ck = {"train_cfg": {"heldout_subjects": ids[4:]}}
    names = subject_names(source_subjects(ck, run / "model.pt"), "auto")
    assert pseudonymised(names) == ["ward_icu"]
    assert renamed(ids, names) == [f"subject-0{i}" for i in range(1, 7)]          # no MRN left
    lines, _ = data_sections({}, run, names, label_word="reference respiratory rate")
    text = "\n".join(lines)
    assert "- `ward_icu`: licence: see the dataset MANIFEST" in text and "not recorded" not in text
    assert "MRN" not in text


def test_the_next_line_on_the_exporters_terminal_names_the_held_out_id_beside_its_pseudonym(hospital):
    """The export's `next:` line named the held-out subject by pseudonym only (my_watch:subject-05): the team that
    ran it could not tell which of its subjects to bench on. Its terminal is in-house (the ids are in its source run):
    the line names the id too; the folder's files keep the pseudonym (the test above)."""
    from sqtool.export.cli import next_step
    _, _, out, res = hospital
    line = next(ln for ln in next_step(res).splitlines() if ln.startswith("next:"))
    assert line.endswith(f"held out from its training: {HELD[0]} ({DS}:subject-02 in the export))")
    assert not any(s.encode() in (out / "metadata.json").read_bytes() for s in LEAKS)
