"""A model's identity: `model_sha256` names the model by its content, the same for every rebuild of the same
weights (another run, folder or day), while `source_sha256` is the checkpoint file's hash (it holds the file's
creation time and paths). Both are in metadata.json, MODEL_CARD.md and the C model header."""
from __future__ import annotations

import json

import torch

from sqtool.core.checkpoint import file_sha256, load_checkpoint, save_checkpoint


def _rebuild(src, dst, **extra):
    """The same weights saved again as another run would: another folder, time, and paths inside."""
    ck = load_checkpoint(src)
    dst.mkdir(parents=True)
    save_checkpoint(dst / "model.pt", kind=ck["kind"], model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    created="2001-02-03T04:05:06", teacher=str(dst.parent / "finetune" / "model.pt"), **extra)
    return ck


def test_model_sha256_is_stable_across_rebuilds_and_changes_with_a_weight(tmp_path):
    from export_fixtures import make_spec_int8_run
    from sqtool.export.cli import ExportConfig, export
    from sqtool.export.metadata import model_sha256
    a = make_spec_int8_run(tmp_path / "a" / "quantize", "spec_student_xs", n_heldout=0, n_calib=8)
    b = tmp_path / "b" / "quantize"
    ck = _rebuild(a / "model.pt", b, teacher_sha256="f" * 64)
    assert file_sha256(a / "model.pt") != file_sha256(b / "model.pt")        # the files differ: time, paths
    out = {k: tmp_path / f"exp_{k}" for k in "ab"}
    for k, run in (("a", a), ("b", b)):
        export(ExportConfig(model=str(run), target=["c"], out=str(out[k]), progress=False))
    md = {k: json.loads((out[k] / "metadata.json").read_text()) for k in "ab"}
    sha = md["a"]["model_sha256"]
    assert len(sha) == 64 and sha == md["b"]["model_sha256"] == model_sha256(ck)
    assert md["a"]["source_sha256"] == file_sha256(a / "model.pt") != md["b"]["source_sha256"]
    assert md["a"]["git_sha"] and "model_sha256" in md["a"]["identity_note"]
    for k in "ab":
        h = (out[k] / "c" / "sq_model.h").read_text()
        assert f'#define SQ_MODEL_SHA256 "{sha}"' in h and f" * model sha256     {sha}" in h
        assert f"git {md[k]['git_sha']}" in h
        card = (out[k] / "MODEL_CARD.md").read_text()
        assert f"model sha256 `{sha}`" in card and f"source checkpoint file sha256 `{md[k]['source_sha256']}`" in card
        assert f"model sha256 `{sha}`" in (out[k] / "export_report.md").read_text()
    # the generated C differs between the two rebuilds only where it names the checkpoint file (and the code's git
    # sha, when the tree was committed to or edited between the two exports, as while the suite runs beside work)
    for f in ("sq_model.h", "sq_model.c"):
        ta, tb = ((out[k] / "c" / f).read_text().splitlines() for k in "ab")
        diff = [(x, y) for x, y in zip(ta, tb) if x != y]
        names = ("SOURCE_SHA256", "source sha256", f"git {md['a']['git_sha']}")
        same_git = md["a"]["git_sha"] == md["b"]["git_sha"]
        assert len(ta) == len(tb) and all(any(n in x for n in names[:2 + (not same_git)]) for x, _ in diff), diff

    # one weight changed by one ulp: another model, another id
    sd = dict(ck["state_dict"])
    name = next(n for n, v in sd.items() if v.is_floating_point() and v.numel() > 1)
    w = sd[name].clone()
    w.view(-1)[0] = torch.nextafter(w.view(-1)[0], torch.tensor(float("inf")))
    assert model_sha256({**ck, "state_dict": {**sd, name: w}}) != sha
    # and the config too (e.g. the decoder's calibration): another id
    mc = json.loads(json.dumps(ck["model_cfg"]))
    mc["decoder"] = {**(mc.get("decoder") or {}), "sigma_bpm": 7.5}
    assert model_sha256({**ck, "model_cfg": mc}) != sha
