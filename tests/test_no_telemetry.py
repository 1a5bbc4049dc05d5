"""sqtool turns onnxruntime's telemetry off (a device id and a queue of usage events under ~/.cache/Microsoft on
every export / bench / predict session, and a warning per run where HOME is read-only), unless the user set it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSION = """
import sys
import sqtool  # noqa: F401
import onnxruntime as ort
from onnx import TensorProto, helper
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
ort.InferenceSession(helper.make_model(g).SerializeToString())
import os; print(os.environ["ORT_DISABLE_TELEMETRY"])
"""


def _run(home: Path, **env) -> str:
    e = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    r = subprocess.run([sys.executable, "-c", SESSION], env={**e, "HOME": str(home), "PYTHONPATH": str(ROOT), **env},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_an_onnxruntime_session_under_sqtool_writes_nothing_into_home(tmp_path):
    assert _run(tmp_path) == "1"
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_users_own_setting_is_kept(tmp_path):
    assert _run(tmp_path, ORT_DISABLE_TELEMETRY="0") == "0"
