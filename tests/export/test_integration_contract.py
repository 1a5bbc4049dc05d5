"""Every export of a spectral int8 model says what must run around its network, for an integrator without sqtool:
metadata.json (and each model file's embedded metadata) carries the front end's full contract at the device rate,
the gating rule and the decoder's specification; MODEL_CARD.md and INTEGRATION.md are written for every target.
The spec's numbers are checked against the model_cfg and against the C kit's generated tables (nothing re-implemented)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from export_fixtures import make_spec_int8_run

TARGETS = ("onnx", "tflite", "c")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{target: export folder} of one small spectral int8 run, one export per target."""
    from sqtool.export.cli import ExportConfig, export
    base = tmp_path_factory.mktemp("integ")
    run = make_spec_int8_run(base / "run", n_heldout=8)
    out = {}
    for t in TARGETS:
        res = export(ExportConfig(model=str(run), target=[t], out=str(base / t), progress=False))
        assert not res["failed"], res["summary"]
        out[t] = Path(res["out"])
    return run, out


def _md(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text())


def _defines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (SQ_\w+)\s+(\S+)", text, re.M))


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_ships_the_contract_the_card_and_the_integration_doc(exports, target):
    from dataclasses import fields
    from sqtool.data.frontend import FrontEndCfg
    folder = exports[1][target]
    md = _md(folder)
    fe = md["frontend"]
    assert {f.name for f in fields(FrontEndCfg)} <= set(fe)                 # every field of the front end
    assert fe["type"] == "spectrum" and fe["fs_in"] == md["fs_in"] == 125.0 and fe["fs"] == md["fs"]
    assert fe["taps_per_phase"] == 24 and "ceil(3 fs_in / fs)" in fe["taps_per_phase_rule"]   # resolved, rule stated
    steps = " ".join(fe["steps"])
    for must in ("254 P_b / Pmax", "-127..127", "|X_b|^2", "periodic Hann", "upfirdn", "sosfilt"):
        assert must in steps
    assert "n_samples" not in md and "not the network's input rate" in md["fs_note"]
    assert md["input"]["kind"] == "spectra" and md["input"]["shape_float"] == [1, len(md["channels"]), md["n_bins"]]
    assert md["gating"]["max_flagged_q15"] == 16384 and md["gating"]["quiet_counts"] == 4
    spec = md["decoder_spec"]
    for k in ("transition", "likelihood", "update", "hr", "interval", "confidence", "start", "first_window"):
        assert spec[k]
    assert "not read by sqtool" in spec["logits"]
    doc = (folder / "INTEGRATION.md").read_text()
    assert not re.search(r"@[A-Z_]+@", doc)                                  # every placeholder filled
    assert all(s in doc for s in fe["steps"]) and md["gating"]["rule"] in doc
    assert all(v in doc for v in spec.values() if isinstance(v, str) and not v.startswith("sqtool."))
    assert all(f"{i}. {t}" in doc for i, t in enumerate(spec["fixed_point_steps"], 1))    # the fixed-point decoder
    assert spec["fixed_point_tables"]["taps_q15"] and "`decoder_spec.fixed_point_tables`" in doc
    assert f"{spec['int8_logit_scale']:.9g}" in doc
    C, F = len(md["channels"]), md["n_bins"]             # the batch-axis float ONNX an onnx export ships, named
    assert f"`model_float_batch.onnx`, the float ONNX with a batch axis: (B, {C}, {F})" in doc
    if target == "onnx":
        import onnx
        dims = onnx.load(str(folder / "model_float_batch.onnx")).graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param or d.dim_value for d in dims] == ["batch", C, F]
    from sqtool.export.kit import ACC_RATE_TEXT                 # a slower accelerometer: hold its latest sample
    assert (len(md["channels"]) > 1) == (f"| accelerometer rate | {ACC_RATE_TEXT} |" in doc)   # acc or accsum
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card") and "INTEGRATION.md" in card


def test_model_files_embed_the_same_contract(exports):
    import onnx
    from sqtool.export import tflite as TF
    onnx_dir, tfl_dir = exports[1]["onnx"], exports[1]["tflite"]
    md = _md(onnx_dir)
    props = {p.key: p.value for p in onnx.load(str(onnx_dir / "model_int8.onnx")).metadata_props}
    assert json.loads(props["frontend"]) == md["frontend"] and json.loads(props["decoder_spec"]) == md["decoder_spec"]
    tmd = TF.read_metadata(tfl_dir / "model_int8.tflite")
    assert tmd["frontend"] == md["frontend"] and tmd["gating"] == md["gating"]
    fmd = TF.read_metadata(tfl_dir / "model_float.tflite")                  # a float model: no int8 scale
    assert "int8_logit_scale" not in fmd["decoder_spec"] and fmd["decoder_spec"]["hr"] == md["decoder_spec"]["hr"]
    assert "fixed_point_tables" not in fmd["decoder_spec"] and tmd["decoder_spec"] == md["decoder_spec"]


def test_spec_numbers_match_the_model_cfg_and_the_c_tables(exports):
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.export.metadata import model_sha256
    from sqtool.models.decoder import decoder_cfg, transition_taps
    run, out = exports
    c = out["c"]
    md = _md(c)
    assert md["model_sha256"] == model_sha256(load_checkpoint(run / "model.pt"))   # the contract is not hashed
    fe_h = (c / "c" / "sq_frontend_tables.h").read_text()
    d = _defines(fe_h)
    fe = md["frontend"]
    assert (int(d["SQ_FE_TAPS"]), int(d["SQ_FE_UP"]), int(d["SQ_FE_DOWN"])) == (fe["taps_per_phase"], fe["up_L"],
                                                                               fe["down_M"])
    assert (int(d["SQ_FE_T"]), int(d["SQ_FE_HOP"]), int(d["SQ_FE_N_PPG"])) == (fe["window_samples_T"],
                                                                             fe["hop_samples"], fe["n_ppg"])
    rate = re.search(r"^ \* sampling rate +(.*)$", (c / "c" / "sq_model.h").read_text(), re.M).group(1)
    assert rate.startswith(f"{md['fs']} Hz inside the front end (the device's rate: SQ_FE_FS_IN") \
        and f"reads {md['n_bins']} spectrum bins, not samples" in rate    # it read '(128 samples)' for a (4, F) input
    header = json.loads(re.search(r"Contract \(also in sqtool/data/frontend.py\): (\{.*?\})\n", fe_h).group(1))
    assert header["taps_per_phase"] == 0                                     # the header keeps the auto rule
    assert {k: v for k, v in fe.items() if k in header and k not in ("taps_per_phase", "resampler")} == \
        {k: v for k, v in header.items() if k not in ("taps_per_phase", "resampler")}
    dec_h = (c / "c" / "sq_decoder_tables.h").read_text()
    dd = _defines(dec_h)
    spec = md["decoder_spec"]
    tables = json.loads(re.search(r"decoder config: (\{.*?\}) \*/", dec_h).group(1))
    assert spec["int8_logit_scale"] == pytest.approx(tables["logit_scale"], rel=1e-12)
    assert spec["int8_logit_scale"] == pytest.approx(md["quantization"]["output_scale"] / spec["temperature"])
    R = int(dd["SQ_DEC_RADIUS"])
    assert spec["transition_radius_bins"] == R and len(spec["transition_kernel"]) == R + 1
    assert spec["transition_kernel"] == pytest.approx(list(transition_taps(decoder_cfg({"bins_bpm": md["bins_bpm"], **md["decoder"]}))[R:]))

    def c_table(name):
        return [int(v.strip().rstrip("u")) for v in re.search(rf"{name}\[[^]]*\] = \{{([^}}]*)\}}", dec_h).group(1).split(",")]
    taps = c_table("sq_dec_taps")
    assert taps[1:] == [int(g * 32768 + 0.5) for g in spec["transition_kernel"][1:]]    # Q15 of the same kernel
    fixed = spec["fixed_point_tables"]                                       # the fixed-point decoder's: the kit's own
    assert (fixed["taps_q15"], fixed["lut_q24"], fixed["start_q20"]) == (taps, c_table("sq_dec_lut"),
                                                                         c_table("sq_dec_start"))
    assert all(int(dd[f"SQ_DEC_{k}"].rstrip("u")) == v for k, v in fixed["constants"].items() if not k.startswith("EDGE"))
    assert f"r = refine_bins = {dd['SQ_DEC_REFINE']}" in spec["hr"] and f"= {R} (sigma_bpm" in spec["transition"]
    dec = decoder_cfg({"bins_bpm": md["bins_bpm"], **md["decoder"]})      # the model's settings (defaults filled)
    assert int(dd["SQ_DEC_Q_LO"].rstrip("u")) == int((1 - dec.interval) / 2 * 2**20 + 0.5)
    assert f"interval = {dec.interval:g}" in spec["interval"] and f"floor = {dec.floor:g}" in spec["transition"]
    assert int(dd["SQ_DEC_NBINS"]) == md["n_bins"] and f"F = {md['n_bins']} bins" in spec["grid"]


def test_the_doc_states_the_taps_rule_and_how_predict_replays_a_recording(exports):
    """INTEGRATION.md's numbers on another device rate, on the decoder's one-bin ties and on predict's replay (which
    PPG sensors, the first window) are this model's (an audit read 'P = taps_per_phase = 24' as fixed at any rate)."""
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.data.hr_spectra import ppg_sensors
    from sqtool.export.metadata import spectral_contract
    run, out = exports
    md = _md(out["c"])
    flat = " ".join((out["c"] / "INTEGRATION.md").read_text().split())
    fe = md["frontend"]
    assert f"P = min(256, ceil(3 fs_in / fs)) = {fe['taps_per_phase']} here: another device rate changes L, M and " \
        "P" in fe["steps"][2] and fe["steps"][2] in flat
    cfg = load_checkpoint(run / "model.pt")["model_cfg"]
    at256 = spectral_contract(cfg, None, 256.0)["frontend"]
    assert at256["taps_per_phase"] == 48 and "ceil(3 fs_in / fs)) = 48 here" in at256["steps"][2] \
        and "firwin(48," in at256["steps"][2]
    step = md["bins_bpm"][2]
    fixed = md["decoder_spec"]["fixed_point"]                  # an audit met a 88.5 BPM difference where it said one bin
    assert f"one bin apart, a window's HR differs by up to one bin ({step:g} BPM); on the two peaks of a two-peaked " \
        "posterior (a harmonic, a motion peak) by the distance between them, tens of BPM" in fixed \
        and "port the fixed-point decoder instead: decoder_spec.fixed_point_steps" in fixed \
        and "may differ by up to one bin" not in fixed
    assert f"`frontend.ppg_sensors` ({', '.join(ppg_sensors(md['model_cfg']))}), in that order, at most " \
        f"`frontend.n_ppg` = {fe['n_ppg']} of them" in flat
    assert f"its CSV's first row (time_s = {md['window_s']:g} s) is that window" in flat
    assert "a recording with fewer repeats its first in the rows left: one PPG on a two-sensor export gives ppg2 = " \
        "ppg" in flat                                          # predict's fit_sensors: the doc said nothing of it
    assert "`channels_fed`" in flat and "each row its own gain" in flat and "numpy.percentile(|x_c - med_c|, 99.9)" in flat
    assert "LiteRT's default CPU kernels (XNNPACK), which predict's `onnx` / `tflite` runtimes run; LiteRT's reference " \
        "kernels (BUILTIN_REF) and TFLite Micro round twice" in flat          # an app audit: which kernels are the reference


@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_a_float_only_export_ships_the_card_and_the_integration_doc_too(exports, tmp_path, target):
    """A float spectral model (a teacher, or the float student alone, e.g. for a phone app that runs float ONNX)
    used to ship the contract in metadata.json but neither MODEL_CARD.md nor INTEGRATION.md: now both, every
    placeholder filled, the int8 lines saying there is no int8 model, the float model's size in the card; the
    document names the model files the folder holds (it named int8 ONNX / TFLite and c/ generically)."""
    from sqtool.export.cli import ExportConfig, export
    from sqtool.export.kit import float_net
    run = exports[0]
    res = export(ExportConfig(model=str(run / "student_float.pt"), target=[target], out=str(tmp_path / "e"),
                              progress=False))
    assert not res["failed"], res["summary"]
    folder = Path(res["out"])
    doc, card = (folder / "INTEGRATION.md").read_text(), (folder / "MODEL_CARD.md").read_text()
    assert not re.search(r"@[A-Z_]+@", doc) and "this export holds float models only: no int8 codes" in doc
    spec = _md(folder)["decoder_spec"]                               # no int8 codes: no fixed-point decoder
    assert "fixed_point_steps" not in spec and "this export has no int8 model" in doc \
        and "this export holds no int8 model: sqtool predict runs this float decoder" in spec["fixed_point"]
    assert f"The float logits z enter the decoder as z / {_md(folder)['decoder_spec']['temperature']:g}" in doc
    md = _md(folder)
    assert all(s in doc for s in md["frontend"]["steps"]) and md["gating"]["rule"] in doc
    held = [f for f in ("model_float.onnx", "model_float_batch.onnx", "model_float.tflite") if (folder / f).is_file()]
    assert held and all(f"`{f}`" in doc for f in held)               # the network's files: those it holds, no int8 one
    for absent in ("model_*", "model_int8", "int8 ONNX", "TFLite int8", "`c/`",
                   *({"model_float.onnx", "model_float_batch.onnx", "model_float.tflite"} - set(held))):
        assert absent not in doc, absent
    net = float_net(md["model_cfg"])
    assert f"- {net.macs} MACs per window, {net.weight_bytes} bytes of weights and biases" in card
    assert card.startswith("# Model card") and "quantization `float32`" in card


def test_a_float_teachers_card_writes_its_subjects_as_pseudonyms(tmp_path):
    """A fine-tuned teacher's checkpoint lists no subjects of its own (its run's metrics.json and train_cfg do): its
    card named a private dataset's subjects by their ids; now every one is a pseudonym, as for a quantize run."""
    from export_fixtures import make_float_specnet
    from sqtool.core.checkpoint import save_checkpoint
    from sqtool.export.cli import ExportConfig, export
    run = tmp_path / "teacher"
    run.mkdir()
    f = make_float_specnet("spec_student_xs", 0)
    save_checkpoint(run / "model.pt", kind="teacher_task", model_cfg=f.cfg.to_dict(), state_dict=f.state_dict(),
                    train_cfg={"datasets": ["hosp"], "heldout_subjects": ["hosp:john_smith"]})
    (run / "metrics.json").write_text(json.dumps({
        "datasets": ["hosp"], "heldout_subjects": ["hosp:john_smith"], "mae_bpm": 3.0,
        "per_subject": [{"subject": "hosp:jane_doe", "windows": 10, "mae_bpm": 2.0},
                        {"subject": "hosp:bob_roe", "windows": 10, "mae_bpm": 4.0}]}))
    res = export(ExportConfig(model=str(run / "model.pt"), target=["onnx"], out=str(tmp_path / "e"), progress=False))
    assert not res["failed"], res["summary"]
    text = "".join(p.read_text(errors="replace") for p in Path(res["out"]).rglob("*") if p.suffix in (".md", ".json"))
    assert not any(n in text for n in ("jane_doe", "bob_roe", "john_smith"))
    card = (Path(res["out"]) / "MODEL_CARD.md").read_text()
    assert "- fine-tuned on 2 subjects: hosp:subject-" in card and "held out of the fine-tuning: hosp:subject-" in card


def test_the_doc_names_the_kits_c_symbols_by_their_prefix():
    """INTEGRATION.md names the kit's C as `<prefix>_...` (`export --prefix hr2` renames every symbol): no sq_ name,
    which a prefixed kit does not have (it named sq_pipeline_init_device)."""
    from sqtool.export.kit import TEMPLATES
    text = (TEMPLATES / "INTEGRATION.md").read_text()
    assert "<prefix>_pipeline_init_device" in text and not re.search(r"\bsq_\w", text)
