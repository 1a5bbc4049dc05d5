"""Every ModelCfg field that affects the numbers appears, with its value, in every exported artifact.

Two exports are built once (module fixtures) through `sqtool export` (sqtool.cli.main): a time-domain
student (`cnn1d_student_xs`, int8) and a spectral model (`spec_student_s`, int8), each to ONNX (float and
int8), TFLite (float and int8) and C. For each field the checkpoint's own value (its `model_cfg`, the
source of truth) must be found in: metadata.json, every ONNX file's `metadata_props` (the flat key, JSON
valued), every TFLite file's "sqtool_metadata" buffer and the C header `c/sq_model.h` (its `#define`s).

Which fields affect the numbers, per family:

  field         time-domain student                       spectral model
  fs            resampling of the input                   front-end rate and FFT bin spacing
  window_s      samples per window (input length)         FFT window
  hop_s         window stride (output rate)               spectrum stride (decoder step)
  channels      input channels and their order            spectra per channel, their order
  norm          per-window normalisation (minmax/zscore)  scaling of each spectrum to int8 codes
  band          Butterworth band-pass before windowing    band-pass of the front end
  task          what the output means                     what the output means
  outputs       output names/order                        output names (one logit per bin)
  units         output units                              output units
  target_mean   de-normalisation of regression outputs    -- (logits, not regressed: empty)
  target_std    de-normalisation of regression outputs    -- (logits, not regressed: empty)
  arch          the network (convs)                       the network + bins_bpm (HR of each logit)
  quant         int8 scheme of weights and activations    int8 scheme
  frontend      -- (no front end: empty)                  the fixed-point front end (metadata: + its contract)
  decoder       -- (no decoder: empty)                    the HMM decoder over the logits

The student's checkpoint gets a non-default band and hop before export (neither changes the network),
so that a value filled in from a default instead of read from the checkpoint fails the test.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from export_fixtures import make_int8_run, make_spec_int8_run
from tests.strict_json import strict_loads

FIELDS = {
    "student": ("fs", "window_s", "hop_s", "channels", "norm", "band", "task", "outputs", "units",
                "target_mean", "target_std", "arch", "quant"),
    "spectral": ("fs", "window_s", "hop_s", "channels", "norm", "band", "task", "outputs", "units",
                 "arch", "quant", "frontend", "decoder"),
}
CASES = [(fam, f) for fam, fields in FIELDS.items() for f in fields]
MD_KEY = {"quant": "quant_scheme"}                    # metadata key where it differs from the field's name


def _export(tmp: Path, run: Path) -> Path:
    from sqtool.cli import main
    out = tmp / "out"
    rc = main(["export", "--model", str(run), "--out", str(out), "--target", "onnx,tflite,c"])
    assert rc == 0, f"export of {run} failed (rc {rc})"
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{"student": (export dir, model_cfg), "spectral": (...)}, each built once."""
    from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
    run = make_int8_run(tmp_path_factory.mktemp("student") / "run", n_heldout=8)
    for f in ("model.pt", "student_float.pt"):               # non-default values the network does not depend on
        ck = load_checkpoint(run / f)
        cfg = {**ck["model_cfg"], "band": [0.7, 6.5], "hop_s": 4.0}
        save_checkpoint(run / f, kind=ck["kind"], model_cfg=cfg, state_dict=ck["state_dict"])
    spec = make_spec_int8_run(tmp_path_factory.mktemp("spectral") / "run", n_heldout=4)
    out = {}
    for fam, r in (("student", run), ("spectral", spec)):
        out[fam] = (_export(tmp_path_factory.mktemp(f"exp_{fam}"), r), load_checkpoint(r / "model.pt")["model_cfg"])
    return out


def _expected(cfg: dict, field: str):
    v = cfg.get(field)
    if field == "quant":
        return v or "float32"
    if isinstance(v, tuple):
        return list(v)
    return v


def _same(got, want) -> bool:
    """Equal after a JSON round trip (tuples -> lists), floats to float32 precision."""
    got, want = json.loads(json.dumps(got)), json.loads(json.dumps(want))
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and abs(float(got) - float(want)) <= 1e-6 * max(1.0, abs(want))
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return set(got) == set(want) and all(_same(got[k], want[k]) for k in want)
    return got == want


def _carried(got, want, field: str) -> bool:
    """_same, except that the metadata's `frontend` holds the checkpoint's keys with their values PLUS the front
    end's contract resolved at the device rate (metadata.spectral_contract); the C header keeps the checkpoint's."""
    if field == "frontend" and isinstance(got, dict) and isinstance(want, dict) and want:
        return _same({k: got.get(k) for k in want}, want) and "steps" in got
    return _same(got, want)


# ----------------------------------------------------------------------------- the C header

def _defines(header: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (SQ_\w+) (.+)$", header, re.M))


def _c_float(lit: str) -> float:
    return float(lit.strip().rstrip("f"))


def _c_str(lit: str) -> str:
    return json.loads(lit)                                  # the exporter writes JSON string literals


def _c_value(d: dict[str, str], field: str, cfg: dict):
    """The field's value as the C header states it (None: the header does not state it)."""
    if field in ("fs", "window_s", "hop_s"):
        key = {"fs": "SQ_FS_HZ", "window_s": "SQ_WINDOW_S", "hop_s": "SQ_HOP_S"}[field]
        return _c_float(d[key]) if key in d else None
    if field in ("channels", "outputs", "units"):
        key = "SQ_" + field.upper()
        return [s for s in _c_str(d[key]).split(",") if s] if key in d else None
    if field in ("norm", "task"):
        key = "SQ_" + field.upper()
        return _c_str(d[key]) if key in d else None
    if field == "quant":
        return _c_str(d["SQ_QUANT_SCHEME"]) if "SQ_QUANT_SCHEME" in d else None
    if field in ("target_mean", "target_std"):
        key = "SQ_" + field.upper()
        if key not in d:
            return None
        vals = [_c_float(v) for v in d[key].strip("{} ").split(",") if v.strip()]
        return [] if not cfg.get(field) and vals in ([0.0], [1.0]) else vals   # empty -> identity placeholder
    if field == "band":
        if not {"SQ_BAND_FILTER", "SQ_BAND_LO_HZ", "SQ_BAND_HI_HZ"} <= set(d):
            return None
        if int(d["SQ_BAND_FILTER"]) == 0:
            return None if cfg.get("band") is None else "no filter"
        lo, hi = _c_float(d["SQ_BAND_LO_HZ"]), _c_float(d["SQ_BAND_HI_HZ"])
        band, nyq = cfg["band"], float(cfg["fs"]) / 2
        return [None if band[0] is None and lo == 0.0 else lo, None if band[1] is None and hi == nyq else hi]
    key = f"SQ_{field.upper()}_JSON"                        # arch, frontend, decoder
    return json.loads(_c_str(d[key])) if key in d else None


# ----------------------------------------------------------------------------- the test

@pytest.mark.parametrize("family,field", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_field_in_every_artifact(exports, family, field):
    from sqtool.export import onnx as O
    from sqtool.export import tflite as TF
    import onnx
    out, cfg = exports[family]
    want = _expected(cfg, field)
    key = MD_KEY.get(field, field)

    md = json.loads((out / "metadata.json").read_text())
    assert key in md and _carried(md[key], want, field), f"metadata.json {key} = {md.get(key)!r}, checkpoint {want!r}"

    onnx_files = sorted(out.glob("*.onnx"))
    tflite_files = sorted(out.glob("*.tflite"))
    assert {p.name for p in onnx_files} >= {"model_int8.onnx"} and {p.name for p in tflite_files} >= {"model_int8.tflite"}
    for p in onnx_files:
        props = {q.key: q.value for q in onnx.load(str(p), load_external_data=False).metadata_props}
        if field == "quant" and "float" in p.name:                 # float artifacts: the int8 scheme as int8_twin
            assert props["quant_scheme"] == "float32" and "quantization" not in props
            key = "int8_twin"
        else:
            key = MD_KEY.get(field, field)
        assert key in props, f"{p.name}: metadata_props has no '{key}'"
        got = props[key] if isinstance(want, str) else json.loads(props[key])
        assert _carried(got, want, field), f"{p.name} metadata_props {key} = {props[key]!r}, checkpoint {want!r}"
        assert _carried(O.read_metadata(p)[key], want, field)
    for p in tflite_files:
        tmd = TF.read_metadata(p)
        key = "int8_twin" if field == "quant" and "float" in p.name else MD_KEY.get(field, field)
        assert key in tmd and _carried(tmd[key], want, field), f"{p.name} {key} = {tmd.get(key)!r}, checkpoint {want!r}"

    header = (out / "c" / "sq_model.h").read_text()
    got = _c_value(_defines(header), field, cfg)
    assert got is not None, f"c/sq_model.h has no #define for {field}"
    assert _same(got, want), f"c/sq_model.h {field} = {got!r}, checkpoint {want!r}"


def test_student_export_really_carries_the_changed_values(exports):
    """The fixture's non-default band and hop reached the artifacts (not the registry's defaults)."""
    out, cfg = exports["student"]
    assert cfg["band"] == [0.7, 6.5] and cfg["hop_s"] == 4.0
    d = _defines((out / "c" / "sq_model.h").read_text())
    assert np.isclose(_c_float(d["SQ_BAND_LO_HZ"]), 0.7) and np.isclose(_c_float(d["SQ_HOP_S"]), 4.0)


def test_onnx_metadata_props_are_strict_json_with_a_nan_inside():
    """A one-subject fine-tune's teacher_skill holds NaN (no p): the ONNX metadata_props carry it as null, which
    strict parsers (JSON.parse, serde_json) read; Python's bare NaN token would not."""
    from sqtool.export.metadata import flat_props
    props = flat_props({"name": "m", "teacher_skill": {"diff": float("nan"), "p": float("inf"), "n": 1}})
    assert strict_loads(props["teacher_skill"]) == {"diff": None, "p": None, "n": 1}
    assert strict_loads(props["sqtool_metadata"])["teacher_skill"]["diff"] is None and props["name"] == "m"
