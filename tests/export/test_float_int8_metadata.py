"""Float artifacts carry no int8 metadata (scales, zero points, layer table; quant_scheme float32), and the
int8 ONNX holds no initializer that no node reads (the int8 weights re-expressed as uint8 are dropped)."""
import json

import pytest

from export_fixtures import make_int8_run


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import torch
    from sqtool.export.cli import ExportConfig, export
    torch.set_num_threads(1)
    run = make_int8_run(tmp_path_factory.mktemp("fm") / "quantize", n_heldout=4)
    res = export(ExportConfig(model=str(run), target=["onnx", "tflite"], out=str(run.parent / "exp")))
    assert not res["failed"]
    return res["out"]


def _onnx_md(path):
    import onnx
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["sqtool_metadata"])


def test_float_artifacts_carry_no_int8_metadata(exported):
    from sqtool.export.tflite import read_metadata
    int8 = _onnx_md(exported / "model_int8.onnx")
    assert int8["quant_scheme"] != "float32" and "quantization" in int8
    for md in (_onnx_md(exported / "model_float.onnx"), _onnx_md(exported / "model_float_batch.onnx"),
               read_metadata(exported / "model_float.tflite")):
        assert md["quant_scheme"] == "float32" and md["precision"] == "float"
        assert md["int8_twin"] == int8["quant_scheme"]
        assert not {"quantization", "int8_layers", "weight_bytes", "macs"} & set(md)


def test_int8_onnx_has_no_unused_initializers(exported):
    import onnx
    g = onnx.load(str(exported / "model_int8.onnx")).graph
    used = {i for n in g.node for i in n.input}
    assert [t.name for t in g.initializer if t.name not in used] == []
