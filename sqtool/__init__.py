"""sqtool: SiamQuality PPG foundation model, from pretraining to a Cortex-M wrist device.

Python API (README "Python API"): `sqtool.load_model(export_dir) -> HrModel`, `HrModel.predict(ppg, acc, fs) ->
HrResult`, `HrModel.stream(fs) -> HrStream`; any other export -> TaskModel, `TaskModel.predict(ppg, acc, fs) ->
TaskResult`, `TaskModel.stream(fs) -> TaskStream` (`sqtool.api`). Loaded on first use: `import sqtool` imports
neither numpy nor torch.
"""
import os as _os

__version__ = "0.1.0"

# onnxruntime (>= 1.2x) writes a device id and a queue of usage events under ~/.cache/Microsoft on every session
# that sqtool's export, bench and predict open, and warns on every run where HOME is read-only: off, unless the
# user said otherwise (README "Environment").
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_API = ("load_model", "HrModel", "HrResult", "HrStream", "TaskModel", "TaskResult", "TaskStream")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from sqtool import api
        return getattr(api, name)
    raise AttributeError(f"module 'sqtool' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
