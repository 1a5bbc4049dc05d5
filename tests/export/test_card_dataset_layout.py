"""A dataset file of a built-in layout under a name of its own (`format: troika`, `name: wrist_troika`) names its
subjects wrist_troika:NN, so the model card cannot find TROIKA's licence by the name: the runs record each such
file's layout (`dataset_layouts`), fine-tune -> quantize -> export's metadata, and the card looks the licence, the
content and the no-redistribution terms up by it ("`wrist_troika` (layout troika)"). Runs recorded before the field
read as before."""
from __future__ import annotations

import json

import pytest

from sqtool.cli import main
from sqtool.export.kit import DATASET_CONTENT, DATASET_LICENCES, SEE_MANIFEST, data_sections, parity_lines

TROIKA_TERMS = "`wrist_troika` (layout troika) grants no redistribution (above)"


def _md(layouts: dict | None) -> dict:
    td = {"datasets": ["wrist_troika"], "train_subjects": ["wrist_troika:01", "wrist_troika:02"],
          "heldout_subjects": ["wrist_troika:03"]}
    return {"training_data": {**td, **({"dataset_layouts": layouts} if layouts is not None else {})}}


def test_the_card_looks_a_renamed_layout_up_by_its_layout():
    md = _md({"wrist_troika": "troika"})
    lines, _ = data_sections(md)
    text = "\n".join(lines)
    assert f"- `wrist_troika` (layout troika): {DATASET_LICENCES['troika']}" in text
    assert DATASET_CONTENT["troika"][0] in text and SEE_MANIFEST not in text
    assert TROIKA_TERMS in " ".join(" ".join(parity_lines(md, "heldout.npz")).split())


def test_runs_without_the_record_read_as_before():
    lines, _ = data_sections(_md(None))                      # an older run: the name alone, nothing known
    assert f"- `wrist_troika`: {SEE_MANIFEST}" in lines and "grants no" not in " ".join(parity_lines(_md(None),
                                                                                                    "heldout.npz"))
    md = {"training_data": {"datasets": ["troika"], "train_subjects": ["troika:01"], "heldout_subjects": []}}
    assert f"- `troika`: {DATASET_LICENCES['troika']}" in data_sections(md)[0]          # a built-in: its own name
    assert "`troika` grants no redistribution" in " ".join(" ".join(parity_lines(md, "heldout.npz")).split())
    generic = _md({"wrist_troika": "csv"})                   # a layout sqtool has no terms for: the MANIFEST
    assert f"- `wrist_troika`: {SEE_MANIFEST}" in data_sections(generic)[0]


@pytest.mark.realdata
@pytest.mark.parametrize("model", ["spec_student_xs", "cnn1d_student_xs"])     # the spectral and time-domain chains
def test_finetune_quantize_export_of_a_renamed_troika_keep_its_licence(model, data_root, tmp_path, monkeypatch):
    from tests.data.test_builtin_layout_name import _wrist_troika
    ds = _wrist_troika(data_root, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "finetune", "--task", "hr", "--model", model, "--data", str(ds), "--folds", "2",
                 "--epochs", "1", "--progress", "false", "--out", "ft"]) == 0
    ft = json.loads((tmp_path / "ft/metrics.json").read_text())
    assert ft.get("datasets", [ft.get("dataset")]) == ["wrist_troika"]
    assert ft["dataset_layouts"] == {"wrist_troika": "troika"}
    assert main(["quantize", "--model", "ft", "--student", model, "--epochs", "1", "--qat-epochs", "1",
                 "--no-progress", "--out", "q"]) == 0
    assert main(["export", "--model", "q", "--target", "onnx", "--out", "ex"]) == 0
    td = json.loads((tmp_path / "ex/metadata.json").read_text())["training_data"]
    assert td["datasets"] == ["wrist_troika"] and td["dataset_layouts"] == {"wrist_troika": "troika"}
    card = " ".join((tmp_path / "ex/MODEL_CARD.md").read_text().split())
    assert f"- `wrist_troika` (layout troika): {DATASET_LICENCES['troika']}" in card and SEE_MANIFEST not in card
    assert " ".join(DATASET_CONTENT["troika"][0].split()) in card
    assert TROIKA_TERMS in card
