"""The TFLite files carry a SignatureDef and the standard TFLite Metadata next to sqtool's JSON entry.

For a spectral (`spec_student_xs`) and a time-domain student (family `cnn1d_student`) export: LiteRT's
signature runner "serving_default" gives the same outputs (keys `hr_logits`; the student's `hr_bpm`,
`quality_logit`, in the config's order) as set_tensor / invoke(), both for the float and
the int8 file; the "TFLITE_METADATA" buffer has identifier M001 and parses back (a flatbuffers Table reader
of metadata_schema.fbs's tables) to the model name, author and the edge tensors' names; the
"sqtool_metadata" JSON entry is still there.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from export_fixtures import make_run
from sqtool.export import tflite as TF
from sqtool.models import list_models
from sqtool.models.student import STUDENT_FAMILY

STUDENT = list_models(STUDENT_FAMILY)[0]          # a time-domain student, chosen by cfg.family (sorted: the first)
CASES = {"spec_student_xs": ("spectra", ["hr_logits"]), STUDENT: ("input", ["hr_bpm", "quality_logit"])}


@pytest.fixture(scope="module", params=sorted(CASES))
def exported(request, tmp_path_factory):
    from sqtool.cli import main
    torch.set_num_threads(1)
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    run = make_run(tmp / "quantize", name, n_heldout=4)
    out = tmp / "exp"
    assert main(["export", "--model", str(run), "--target", "tflite", "--out", str(out)]) == 0
    return name, out


@pytest.mark.parametrize("fname", ["model_int8.tflite", "model_float.tflite"])
def test_signature_runner_equals_invoke(exported, fname):
    name, out = exported
    path = out / fname
    if not path.exists():
        pytest.skip(f"{fname} not written for {name}")
    in_name, out_names = CASES[name]
    it = TF.litert_interpreter(path)
    assert list(it.get_signature_list()) == ["serving_default"]
    sig = it.get_signature_list()["serving_default"]
    assert (sig["inputs"], sorted(sig["outputs"])) == ([in_name], sorted(out_names))
    d_in = it.get_input_details()[0]
    rng = np.random.default_rng(0)
    if d_in["dtype"] == np.int8:
        x = rng.integers(-127, 128, size=d_in["shape"]).astype(np.int8)
    else:
        x = rng.standard_normal(d_in["shape"]).astype(np.float32)
    it.set_tensor(d_in["index"], x)
    it.invoke()
    want = {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}
    assert list(want) == out_names                            # outputs in the config's order
    got = it.get_signature_runner("serving_default")(**{in_name: x})
    assert sorted(got) == sorted(out_names)
    for k in out_names:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
    if len(out_names) == 1:
        assert np.any(want[out_names[0]] != want[out_names[0]].flat[0])      # a real output, not a constant
    else:                                                     # (1, 1) each: vary the input instead
        x2 = -x if d_in["dtype"] != np.int8 else (-x.astype(np.int16)).clip(-127, 127).astype(np.int8)
        got2 = it.get_signature_runner("serving_default")(**{in_name: x2})
        assert any(not np.array_equal(got[k], got2[k]) for k in out_names)


@pytest.mark.parametrize("fname", ["model_int8.tflite", "model_float.tflite"])
def test_standard_metadata_parses_back(exported, fname):
    name, out = exported
    path = out / fname
    if not path.exists():
        pytest.skip(f"{fname} not written for {name}")
    in_name, out_names = CASES[name]
    m, _ = TF.read_model(path)
    entries = {(e.name.decode() if isinstance(e.name, bytes) else e.name): e.buffer for e in m.metadata}
    assert set(entries) == {"sqtool_metadata", "TFLITE_METADATA"}
    raw = bytes(np.asarray(m.buffers[entries["TFLITE_METADATA"]].data, np.uint8))
    assert raw[4:8] == b"M001"
    md = TF.read_model_metadata_bytes(raw)
    assert md == TF.read_standard_metadata(path)
    assert (md["name"], md["author"], md["min_parser_version"]) == (name, "sqtool", "1.0.0")
    assert md["version"] and name in md["description"]
    assert [n for n, _ in md["inputs"]] == [in_name] and [n for n, _ in md["outputs"]] == out_names
    (_, d_in), (_, d_out) = md["inputs"][0], md["outputs"][0]
    assert "channels-last" in d_in and "normalisation" in d_in
    if fname == "model_int8.tflite":
        assert "scale" in d_in and "zero_point" in d_in and "scale" in d_out
    assert TF.read_metadata(path)["model"] == name                # sqtool's JSON entry is kept


def test_metadata_reader_refuses_wrong_identifier():
    from sqtool.core import SqtoolError
    buf = bytearray(TF.model_metadata_bytes("m", "d", "1", [("a", "x")], [("b", "y")]))
    assert TF.read_model_metadata_bytes(bytes(buf))["inputs"] == [("a", "x")]
    buf[4:8] = b"XXXX"
    with pytest.raises(SqtoolError, match="M001"):
        TF.read_model_metadata_bytes(bytes(buf))
