"""Every way to run an exported model, behind one interface.

    art = load_artifacts("runs/export/...")          # an export folder: its manifest.json says what is there
    rt = make_runtime("tflm_int8", art, work_dir)
    y = rt.run(x)                  # x (C, T) float32 normalised window -> (k,) float, in units (hr_bpm in BPM)
    Y = rt.run_batch(X)            # (N, C, T) -> (N, k)
    rt.info()                      # {"runtime", "status", "size_bytes", "file", ...}
    rt.int8_outputs                # int8 runtimes: the last batch's raw int8 outputs (N, k)

Units: every runtime returns the outputs in the units metadata.json names (hr_bpm in BPM, quality_logit
as a logit), as the exported float ONNX / TFLite and int8 ONNX emit them; the PyTorch runtimes apply
their checkpoint's target_std / target_mean (`metadata.to_units`), `decode_hr` reads hr_bpm by name. Int8
runtimes quantize the float window with the input scale and zero point of metadata.json (round half away
from zero, as TFLite's quantize), run integer-only, and map the int8 codes to units with metadata.json's
per-output `output_quantization` (value = scale * (code - zero_point)), so every int8 runtime receives
identical int8 inputs and their int8 outputs can be compared bit for bit. Multi-output graphs (one
tensor per output name) are concatenated in order, (N, k).

Runtimes (RUNTIMES): torch_teacher, torch_student (float checkpoints), brevitas_int8 (QAT
checkpoint), onnx_float, onnx_int8 (onnxruntime, 1 thread), litert_float, litert_int8 (LiteRT,
default XNNPACK kernels), tflm_int8 (TFLite Micro host interpreter: the firmware's kernels; arena
from its allocation report), c_host (generated C, gcc -O2, via ctypes for per-window latency; the
harness executable for callgrind), c_host_single (SQ_SINGLE_ROUNDING=1), mcu_m4 / mcu_m33 / mcu_m55
(the same C for Cortex-M4/M33/M55 on QEMU; instructions per inference, flash, RAM), mcu_m4_single.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, load_shared_lib
from sqtool.core.manifest import Manifest, read_manifest

RUNTIMES = ("torch_teacher", "torch_student", "brevitas_int8", "onnx_float", "onnx_int8", "litert_float",
            "litert_int8", "tflm_int8", "c_host", "c_host_single", "c_window", "mcu_m4", "mcu_m33", "mcu_m55",
            "mcu_m4_single", "mcu_m4_window", "mcu_m33_window", "mcu_m55_window")
# group names accepted by --runtime (members that cannot run are skipped, not errors)
ALIASES = {"torch": ("torch_teacher", "torch_student", "brevitas_int8"), "pytorch": ("torch_teacher", "torch_student",
                                                                                    "brevitas_int8"),
           "onnx": ("onnx_float", "onnx_int8"), "onnxruntime": ("onnx_float", "onnx_int8"),
           "litert": ("litert_float", "litert_int8"), "tflite": ("litert_float", "litert_int8"),
           "brevitas": ("brevitas_int8",), "tflm": ("tflm_int8",), "c": ("c_host", "c_host_single"),
           "mcu": ("mcu_m4", "mcu_m33"), "all": RUNTIMES}
DEFAULT_RUNTIMES = ("torch_teacher", "torch_student", "brevitas_int8", "onnx_float", "onnx_int8",
                    "litert_float", "litert_int8", "tflm_int8", "c_host", "c_host_single", "c_window", "mcu_m4",
                    "mcu_m33", "mcu_m4_window")


def off_rate(rates: list[tuple[str, float]], fs_built: float, who: str, built: str) -> str | None:
    """One line when recordings ((record id, rate) pairs) are not at the rate a C front end was `built` for, else None:
    one other rate names the --device-fs to export for it; several (a folder of devices) say that an export serves one
    device rate, naming them all (the first file's alone would send the user to re-export for it, in vain)."""
    off = [(rid, fs) for rid, fs in rates if abs(fs - fs_built) > 1e-6 * fs_built]
    other = sorted({float(f"{fs:.6g}") for _, fs in off})
    if len(other) == 1:
        return (f"{who}{off[0][0]} is sampled at {other[0]:g} Hz, {built} {fs_built:g} Hz (export --device-fs "
                f"{other[0]:g} for this device)")
    if other:
        return (f"{who}{len(off)} recordings are sampled at {len(other)} other rates ({', '.join(f'{f:g}' for f in other)}"
                f" Hz; e.g. {off[0][0]}), {built} {fs_built:g} Hz: an export serves one device rate; bench each rate's "
                "recordings against its own (export --device-fs RATE)")
    return None


# ----------------------------------------------------------------------------- artifacts

@dataclass
class Artifacts:
    """An export folder read through its manifest.json (core.manifest): the artifacts it produced and the
    checkpoints it came from, each by a path relative to the manifest and checked against its sha256."""
    export_dir: Path
    metadata: dict
    manifest: Manifest
    overrides: dict[str, Path] = field(default_factory=dict)     # checkpoints the user named (--teacher, ...)

    @property
    def model_cfg(self) -> dict:
        return self.metadata.get("model_cfg") or self.metadata

    def has(self, name: str) -> bool:
        """Whether the export produced `name` (a path relative to the export folder)."""
        return self.manifest.has(name)

    def file(self, name: str) -> Path:
        """A produced file, sha256 checked; one line when the export did not produce it."""
        return self.manifest.file(name)

    @property
    def c_prefix(self) -> str:
        """The symbol and file prefix of the export's C (`export --prefix`, "sq" by default): metadata.json's
        c_prefix, else (an export older than the key) the one of its c/<prefix>_model.c (or _pipeline_cfg.h);
        "sq" for an export without C. A c_prefix that is no prefix, or names no C file the export holds (an edited
        metadata.json), is one line: predict would otherwise run another runtime, saying the export has no C."""
        found = sorted({m.group(1) for f in self.manifest.under("c")
                        if (m := re.fullmatch(r"c/([a-z][a-z0-9]*)_(?:model\.c|pipeline_cfg\.h)", f))})
        if "c_prefix" in self.metadata:
            said = self.metadata["c_prefix"]
            if not (isinstance(said, str) and re.fullmatch(r"[a-z][a-z0-9]*", said)) or (found and said not in found):
                raise SqtoolError(f"{self.export_dir / 'metadata.json'}: 'c_prefix' is {said!r}, but its C is "
                                  f"{', '.join(f'c/{f}_*' for f in found) or 'none'} (an edited file): export the "
                                  "model again (sqtool export --model RUN --force)")
            return said
        if len(found) > 1:
            raise SqtoolError(f"export {self.export_dir} holds the C of several prefixes ({', '.join(found)}): "
                              "export each model into its own folder")
        return found[0] if found else "sq"

    def c_name(self, stem: str) -> str:
        """The path of the export's C file `stem` under its prefix: c_name("model.c") -> "c/hr2_model.c"."""
        return f"c/{self.c_prefix}_{stem}"

    def c_define(self, stem: str, macro: str) -> int | None:
        """The integer value of `#define <PREFIX>_<macro>` in the export's C file `stem` (c_define("pipeline_cfg.h",
        "PL_N_PPG") -> 1; an unsigned literal's u dropped); None when the export has no such file or macro."""
        name = self.c_name(stem)
        if not self.has(name):
            return None
        m = re.search(rf"^#define {self.c_prefix.upper()}_{macro}\s+(-?\d+)u?\b", self.file(name).read_text(), re.M)
        return int(m.group(1)) if m is not None else None

    def c_dir(self, needs: str | None = None) -> Path:
        """The export's c/ folder after checking every file listed in it; one line when the export did not
        produce `needs` (default: its network, c/<prefix>_model.c; export with --target c)."""
        needs = needs or self.c_name("model.c")
        if not self.has(needs):
            raise SqtoolError(f"export {self.export_dir} has no {needs} (not in its manifest.json: export with "
                              "--target c)")
        return self.manifest.folder("c")

    def checkpoint(self, key: str) -> Path | None:
        """A source checkpoint (teacher / student_float / student_int8): the one the user named, else the
        manifest's (sha256 checked); None when neither says."""
        if key in self.overrides:
            return self.overrides[key]
        return self.manifest.source(key)

    @property
    def input_qparams(self) -> tuple[float, int]:
        q = self.metadata.get("quantization") or {}
        if "input_scale" not in q:
            raise SqtoolError(f"{self.export_dir}/metadata.json has no int8 quantization parameters "
                              "(a float-only export: int8 runtimes unavailable)")
        return float(q["input_scale"]), int(q["input_zero_point"])

    @property
    def output_qparams(self) -> tuple[float, int]:
        q = self.metadata.get("quantization") or {}
        if "output_scale" not in q:
            raise SqtoolError(f"{self.export_dir}/metadata.json has no int8 quantization parameters")
        return float(q["output_scale"]), int(q["output_zero_point"])


def load_artifacts(path, checkpoints: dict[str, str] | None = None, allow_failed_parity: bool = False,
                   flag: str = "") -> Artifacts:
    """Read an export folder through its manifest.json only: refuse a folder without one, or whose parity
    failed (unless allow_failed_parity; `flag` names the option that allows it), or any of whose exported files
    changed since the export (TamperedArtifact, checked here once), then read and check metadata.json. A source
    checkpoint is checked by the runtime that reads it (`Artifacts.checkpoint` -> `Manifest.source`), so a
    teacher re-trained into its folder since stops only a runtime that runs it. A changed file is never a
    skipped runtime: the benches let TamperedArtifact through. `checkpoints` (key -> path, empty = none) are
    checkpoints the user named explicitly (the manifest's are then not read); one that is not there (a typo), is not
    a checkpoint, is of a run that did not finish (a killed fine-tune or quantize: the command that finishes it,
    as quantize refuses its teacher, `load_checkpoint(finished=True)`) or holds a kind its runtime does not run
    (CHECKPOINT_KINDS: an int8 student as --teacher, a pretrain encoder as anything) is refused here in one line
    naming the option and the path (`core.checkpoint.named_checkpoint`), never a runtime's skipped or error row in a
    report that does not compare what was named. A manifest's checkpoint that is not there is left to the runtime
    that reads it."""
    over = {k: Path(v) for k, v in (checkpoints or {}).items() if v}
    if over:
        from sqtool.core.checkpoint import named_checkpoint     # torch: only when a checkpoint is named
    for k, p in over.items():
        if line := named_checkpoint(p, kinds=CHECKPOINT_KINDS.get(k)):
            raise SqtoolError(f"--{k.replace('_', '-')}: {line}")
    try:
        m = read_manifest(path)
    except SqtoolError as e:
        from sqtool.core.runs import export_first_hint
        from sqtool.models import shipped_as
        # a quantize or fine-tune run given where its export goes: the targets its checkpoint takes
        hint = export_first_hint(path, lambda mc: getattr(shipped_as(mc), "targets", None))
        if hint is None:
            raise
        raise SqtoolError(f"{e} ({hint})") from None
    m.require_parity(allow_failed_parity, flag)
    m.check_unchanged()
    mp = m.file("metadata.json")
    try:
        md = json.loads(mp.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SqtoolError(f"{mp} is not valid JSON ({type(e).__name__})")
    from sqtool.export.metadata import check_metadata
    check_metadata(md, str(mp))
    return Artifacts(m.dir, md, m, over)


def is_spectral(md: dict) -> bool:
    """A spectral export (family spec_cnn): windows are int8 spectrum codes (C, F), outputs F bin logits."""
    mc = md.get("model_cfg") or md
    return mc.get("family") == "spec_cnn" or (mc.get("frontend") or {}).get("type") == "spectrum"


def is_resp(md: dict) -> bool:
    """A respiratory-spectrum export (rr_spec, `core.model_cfg.is_resp_spec` of its model_cfg): windows are (4, F)
    respiratory spectra (`data.resp`), outputs F breaths/min logits."""
    from sqtool.core.model_cfg import is_resp_spec
    return is_resp_spec(md.get("model_cfg") or md)


def window_shape(md: dict) -> tuple[int, int]:
    """(C, L) of one float model window: L = samples (fs * window_s), or bins for a spectral model (a front-end
    model's: its network input, rr_spec's (4, F) spectra, af_beats' (1, K) features)."""
    if front_family(md):
        from sqtool.core import ModelCfg
        return tuple(ModelCfg.from_dict(md.get("model_cfg") or md).input_shape)
    C = len((md.get("model_cfg") or md)["channels"])
    if is_spectral(md):
        return C, int(md.get("n_bins") or (md.get("model_cfg") or {}).get("n_bins") or 0)
    return C, int(round(float(md["fs"]) * float(md["window_s"])))


HR_OUTPUT = "hr_bpm"                 # the heart-rate output of a time-domain model, in BPM


def hr_column(md: dict) -> int:
    """The column of HR_OUTPUT in the model's outputs (metadata.json's order); one line when it has none."""
    outputs = list(md.get("outputs") or [])
    if HR_OUTPUT not in outputs:
        raise SqtoolError(f"the model has no '{HR_OUTPUT}' output to read heart rate from (its outputs: "
                          f"{', '.join(map(str, outputs)) or 'none'})")
    return outputs.index(HR_OUTPUT)


def decode_hr(y: np.ndarray, md: dict) -> np.ndarray:
    """A runtime's outputs (N, k), in units, in metadata.json's order -> (N,) BPM of the hr_bpm output, float64."""
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, hr_column(md)]


def quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """(N, C, T) float -> (N, T*C) int8 channels-last, round half away from zero, saturate."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), x.shape[-2], x.shape[-1])
    v = x / np.float32(scale)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zp
    return np.clip(q, -128, 127).astype(np.int8).transpose(0, 2, 1).reshape(len(x), -1)


# ----------------------------------------------------------------------------- interface

class Runtime:
    name = "runtime"
    precision = "float"
    needs = ()                              # files in the export dir / checkpoint keys

    def __init__(self, art: Artifacts, work: Path):
        self.art, self.work = art, Path(work)
        self.size_bytes: int | None = None
        self.file: str = ""
        self.extra: dict = {}
        self.int8_outputs: np.ndarray | None = None
        self.latencies_s: list[float] = []

    def load(self) -> "Runtime":
        return self

    def _run_batch(self, x: np.ndarray) -> np.ndarray:
        return np.stack([self._run_one(xi) for xi in x])

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_batch(np.asarray(x)[None])[0]

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64 if front_family(self.art.metadata) == "beat_trees" else np.float32)
        C, T = window_shape(self.art.metadata)
        if x.ndim != 3 or x.shape[1:] != (C, T):
            raise SqtoolError(f"{self.name}: windows must be (N, {C}, {T}), got {x.shape}")
        return np.asarray(self._run_batch(x), dtype=np.float64).reshape(len(x), -1)

    def info(self) -> dict:
        return {"runtime": self.name, "precision": self.precision, "file": self.file,
                "size_bytes": self.size_bytes, **self.extra}

    def forget_latencies(self) -> None:
        """Let the per-window latencies go: bench reads them all for its report; `sqtool.api` runs a runtime per
        request (or per pushed chunk) for as long as a server lives, and reads none."""
        self.latencies_s.clear()


class _Timed(Runtime):
    """Runs window by window and records each window's wall time (host latency)."""

    def _run_batch(self, x):
        outs = []
        for xi in x:
            t = time.perf_counter()
            outs.append(self._run_one(xi))
            self.latencies_s.append(time.perf_counter() - t)
        return np.stack(outs)


class _Int8(_Timed):
    precision = "int8"

    def _run_batch(self, x):
        s, zp = self.art.input_qparams
        q = quantize(x, s, zp)                                   # (N, T*C)
        yq = self._run_int8(q)
        self.int8_outputs = yq
        from sqtool.export.metadata import codes_to_units
        return codes_to_units(yq, self.art.metadata)                       # metadata's code -> units map

    def _run_int8(self, q: np.ndarray) -> np.ndarray:
        outs = []
        for qi in q:
            t = time.perf_counter()
            outs.append(self._run_q(qi))
            self.latencies_s.append(time.perf_counter() - t)
        return np.stack(outs).astype(np.int8)

    def _run_q(self, q: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# ----------------------------------------------------------------------------- PyTorch

class TorchRuntime(_Timed):
    key = "student_float"
    kinds: tuple[str, ...] = ("student_float",)

    def load(self):
        from sqtool.core.runs import torch_threads
        with torch_threads(1):                                  # one thread while torch runs; the caller's after
            return self._load()

    def run_batch(self, x):
        from sqtool.core.runs import torch_threads
        with torch_threads(1):                                  # set per batch, outside the per-window timing
            return super().run_batch(x)

    def _load(self):
        from sqtool.core import sha256_file_cached
        from sqtool.core.checkpoint import load_checkpoint
        from sqtool.models import ModelCfg, load_model
        p = self.art.checkpoint(self.key)
        if p is None:
            flag = "--" + self.key.replace("_", "-")
            raise SqtoolError(f"export {self.art.export_dir}: its manifest.json records no {self.key} checkpoint "
                              f"(pass {flag})")
        ck = load_checkpoint(p, expect_kind=self.kinds)
        cfg = ModelCfg.from_dict(ck["model_cfg"])
        mine = self.art.model_cfg
        for k in ("fs", "window_s", "norm", "task"):
            if getattr(cfg, k) != mine.get(k):
                raise SqtoolError(f"checkpoint {p}: {k} = {getattr(cfg, k)} differs from the export's {mine.get(k)}")
        missing = [c for c in cfg.channels if c not in mine["channels"]]
        if missing:
            raise SqtoolError(f"checkpoint {p} needs channel(s) {', '.join(missing)} the export's windows lack")
        self.ch_idx = [list(mine["channels"]).index(c) for c in cfg.channels]   # e.g. a PPG-only teacher
        if is_resp(mine):                                       # every row of the respiratory spectra
            self.ch_idx = list(range(window_shape(self.art.metadata)[0]))
        self.model = load_model(ck)
        self.units_md = ck["model_cfg"]                         # its own target_std / target_mean
        self.file, self.size_bytes = str(p), Path(ck["path"]).stat().st_size
        self.extra["params"] = int(sum(t.numel() for t in self.model.parameters()))
        self.extra["sha256"] = sha256_file_cached(ck["path"])
        return self

    def _run_one(self, x):
        import torch

        from sqtool.export.metadata import to_units
        with torch.no_grad():
            y = self.model(torch.from_numpy(np.ascontiguousarray(x[None, self.ch_idx])))[0].numpy()
        return to_units(y[None], self.units_md)[0]                        # normalised -> units


class TorchTeacher(TorchRuntime):
    name, key, kinds = "torch_teacher", "teacher", ("teacher_task", "student_float")


class TorchStudent(TorchRuntime):
    name, key, kinds = "torch_student", "student_float", ("student_float",)


BREVITAS_BATCH = 256        # windows per Brevitas forward (brevitas_int8)


class BrevitasInt8(TorchRuntime):
    """The QAT checkpoint in Brevitas, the single-rounding reference: float outputs in units and the last layer's int8
    codes (int8_outputs) from one forward per BREVITAS_BATCH windows (`intgraph.brevitas_outputs`: each window's
    bits those of a forward of it alone; two forwards a window took ~12 ms a window on 1,000 files). Latency per
    window: a batch's forward time / its windows."""
    name, key, kinds, precision = "brevitas_int8", "student_int8", ("student_int8",), "int8"

    def _run_batch(self, x):                                    # (N, C, T) -> (N, k) in units
        from sqtool.export.intgraph import brevitas_outputs
        from sqtool.export.metadata import to_units
        self.extra["latency_note"] = f"per window = a batch's forward time / its windows (batches of {BREVITAS_BATCH})"
        ys, qs = [], []
        for i in range(0, len(x), BREVITAS_BATCH):
            xb = np.ascontiguousarray(x[i:i + BREVITAS_BATCH][:, self.ch_idx])
            t = time.perf_counter()
            y, q = brevitas_outputs(self.model, xb)
            self.latencies_s += [(time.perf_counter() - t) / len(xb)] * len(xb)
            ys.append(to_units(y, self.units_md))                                # normalised -> units
            qs.append(q)
        self.int8_outputs = np.concatenate(qs).astype(np.int8)
        return np.concatenate(ys)

    def run_unquantized(self, x):                               # (N, C, T) -> (N, k) in units
        """The QAT checkpoint with quantization off (`intgraph.unquantized_outputs`): the float twin of the int8
        rows, where torch_student is the float student before QAT changed its weights."""
        from sqtool.core.runs import torch_threads
        from sqtool.export.intgraph import unquantized_outputs
        from sqtool.export.metadata import to_units
        with torch_threads(1):
            return np.concatenate([to_units(unquantized_outputs(self.model, np.ascontiguousarray(
                x[i:i + BREVITAS_BATCH][:, self.ch_idx])), self.units_md) for i in range(0, len(x), BREVITAS_BATCH)])


# the checkpoint kinds each option that names a checkpoint (its key: --teacher -> teacher) takes: its runtime's
CHECKPOINT_KINDS = {c.key: c.kinds for c in (TorchTeacher, TorchStudent, BrevitasInt8)}


# ----------------------------------------------------------------------------- ONNX, LiteRT, TFLM

class OnnxRuntime(_Timed):
    fname = "model_float.onnx"

    def load(self):
        from sqtool.export.onnx import session
        p = self.art.file(self.fname)                              # one line when not exported
        try:
            self.sess = session(p, threads=1)
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types: a file that is no ONNX model
            raise SqtoolError(f"{p}: not a readable ONNX model ({first_line(e)}); export it again") from None
        if self.precision == "int8" and not quantized_onnx(p):
            raise SqtoolError(f"{p}: holds no quantize / dequantize operator, so it is no int8 model (a float "
                              "model in the int8 file?); export it again")
        self.inp = self.sess.get_inputs()[0].name
        self.file, self.size_bytes = str(p), p.stat().st_size
        return self

    def _run_one(self, x):
        from sqtool.export.onnx import join_outputs
        return join_outputs(self.sess.run(None, {self.inp: x[None]}))[0]          # outputs in order, units


class OnnxFloat(OnnxRuntime):
    name, fname = "onnx_float", "model_float.onnx"


class OnnxInt8(OnnxRuntime):
    """QCDQ ONNX: float in, float out (dequantized inside the graph); int8 outputs by requantizing."""
    name, fname, precision = "onnx_int8", "model_int8.onnx", "int8"

    def _run_batch(self, x):
        from sqtool.export.metadata import from_units
        y = super()._run_batch(x)                                         # units
        os_, ozp = self.art.output_qparams
        yn = y if is_spectral(self.art.metadata) else from_units(y, self.art.metadata)
        self.int8_outputs = np.clip(np.round(yn / np.float32(os_)) + ozp, -128, 127).astype(np.int8)
        return y


class LiteRtFloat(_Timed):
    name, fname = "litert_float", "model_float.tflite"

    def load(self):
        from sqtool.export.tflite import litert_interpreter
        p = self.art.file(self.fname)                              # one line when not exported
        try:
            self.it = litert_interpreter(p)              # tensors allocated, XNNPACK INFO line dropped
        except (ValueError, RuntimeError) as e:
            raise SqtoolError(f"{p}: not a readable TFLite model ({first_line(e)}); export it again") from None
        self.i_in = self.it.get_input_details()[0]
        want = np.int8 if self.precision == "int8" else np.float32
        if self.i_in["dtype"] != want:
            raise SqtoolError(f"{p}: its input is {np.dtype(self.i_in['dtype']).name}, a {self.precision} model's is "
                              f"{np.dtype(want).name} (the other precision's model in this file?); export it again")
        self.i_outs = [d["index"] for d in self.it.get_output_details()]        # one per output name, in order
        self.file, self.size_bytes = str(p), p.stat().st_size
        return self

    def _run_one(self, x):
        self.it.set_tensor(self.i_in["index"], x.T[None, None].astype(np.float32))      # (1, 1, T, C)
        self.it.invoke()
        return np.concatenate([self.it.get_tensor(i).reshape(-1) for i in self.i_outs])


class LiteRtInt8(_Int8):
    name, fname = "litert_int8", "model_int8.tflite"

    def load(self):
        LiteRtFloat.load(self)                                                            # same loading
        return self

    def _run_q(self, q):
        T = int(self.i_in["shape"][2])
        self.it.set_tensor(self.i_in["index"], q.reshape(1, 1, T, -1))
        self.it.invoke()
        return np.concatenate([self.it.get_tensor(i).reshape(-1) for i in self.i_outs])


def first_line(e: BaseException) -> str:
    """A runtime library's error in one line (their messages run over several, with C++ source locations)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def quantized_onnx(path) -> bool:
    """Whether the ONNX graph at `path` quantizes (a QCDQ int8 export has QuantizeLinear / DequantizeLinear; integer
    kernels QLinear* / *Integer): a float model has none."""
    import onnx
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    return bool(ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                       "MatMulInteger", "DynamicQuantizeLinear"})


def tflm_arena_bytes(model: bytes, arena_size: int) -> int | None:
    """Arena bytes TFLite Micro actually allocated (its allocation report, printed by C code on the
    process's stdout/stderr: captured at the file-descriptor level)."""
    import ctypes

    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            libc.fflush(None)
            for fd in (1, 2):
                os.dup2(tmp.fileno(), fd)
            it.print_allocations()
            libc.fflush(None)
        finally:
            for fd, s in saved.items():
                os.dup2(s, fd)
                os.close(s)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    import re
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    return int(m.group(1)) if m else None


class TflmInt8(_Int8):
    name, fname = "tflm_int8", "model_int8.tflite"
    arena_size = 64 * 1024

    def load(self):
        from tflite_micro.python.tflite_micro import runtime
        p = self.art.file(self.fname)                              # one line when not exported
        b = p.read_bytes()
        self.it = runtime.Interpreter.from_bytes(b, arena_size=self.arena_size)
        self.file, self.size_bytes = str(p), len(b)
        self.extra["arena_bytes"] = tflm_arena_bytes(b, self.arena_size)
        self.T = window_shape(self.art.metadata)[1]
        from sqtool.export.tflite import n_outputs
        self.n_out = n_outputs(p)
        return self

    def _run_q(self, q):
        self.it.set_input(q.reshape(1, 1, self.T, -1), 0)
        self.it.invoke()
        return np.concatenate([np.array(self.it.get_output(i)).reshape(-1) for i in range(self.n_out)])


# ----------------------------------------------------------------------------- generated C

class CHost(_Int8):
    """The generated C, host gcc: ctypes for per-window latency, the harness executable for callgrind."""
    name, single = "c_host", False

    def load(self):
        from sqtool.export.c import build_shared_lib
        from sqtool.firmware_bench import mcu
        c_dir, prefix = self.art.c_dir(), self.art.c_prefix
        import ctypes
        self.lib = load_shared_lib(build_shared_lib(c_dir, self.work / "c_host", self.single, prefix=prefix))
        self.model_run = getattr(self.lib, f"{prefix}_model_run")
        self.model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.model_run.restype = ctypes.c_int
        self.fw = mcu.build_host(c_dir, self.work / "c_host", defines=(f"SQ_SINGLE_ROUNDING={int(self.single)}",),
                                 prefix=prefix)
        self.out_size = self.fw.output_size
        self.file = str(c_dir / f"{prefix}_model.c")
        self.size_bytes = sum((c_dir / f"{prefix}_model.{x}").stat().st_size for x in "ch")
        self.extra.update(mcu.model_bytes(self.fw))
        return self

    def _run_q(self, q):
        out = np.zeros(self.out_size, np.int8)
        q = np.ascontiguousarray(q, np.int8)
        rc = self.model_run(q.ctypes.data, out.ctypes.data)
        if rc != 0:
            raise SqtoolError(f"{self.name}: {self.model_run.__name__} returned {rc}")
        return out

    def callgrind(self, q: np.ndarray) -> float | None:
        """Instructions per inference of <prefix>_model_run under valgrind (None when valgrind is absent)."""
        import shutil

        from sqtool.firmware_bench import mcu
        if shutil.which("valgrind") is None:
            return None
        r = mcu.run_host(self.fw, q, valgrind=True)
        return float(r.insns_per_window.mean())


class CHostSingle(CHost):
    name, single = "c_host_single", True


class WindowLoop(_Int8):
    """A time-domain export's whole device loop: its C front end (c/sq_window.c, `export --device-fs HZ`) feeding
    its C network, one process for every recording (`window_fw`, mcu/window_bench.c): c_window on the host,
    mcu_m4_window (mcu_m33_window, mcu_m55_window) under QEMU with instructions per window for the front end and the
    network, and the image's flash, RAM and stack. Fed recordings' device samples, not windows (`run_records`);
    bench compares the int8 input codes it made with the stream's. The network is the header's default arithmetic
    (double rounding, c_host's), float32 and integer alike on every core (compared bit for bit with c_window)."""
    name, target = "c_window", "host"
    fed_records = True
    timeout_s = 600.0

    def load(self):
        from sqtool.export.c_window import front_end_info
        from sqtool.firmware_bench import mcu
        from sqtool.firmware_bench.window_fw import build_window_fw
        c_dir = self.art.c_dir()
        if self.target != "host":
            mcu.require_tools("arm-none-eabi-gcc", "qemu-system-arm")
        self.fw = build_window_fw(c_dir, self.target, self.work / "window_loop")       # one line without sq_window.c
        info = front_end_info(c_dir)
        self.fs_in, self.filter = float(info["fs_in"]), info["filter"]
        self.file = str(c_dir / "sq_window.c" if self.target == "host" else self.fw.path)
        self.size_bytes = (sum((c_dir / f).stat().st_size for f in ("sq_window.c", "sq_window.h", "sq_window_tables.h",
                                                                     "sq_model.c", "sq_model.h"))
                           if self.target == "host" else self.fw.path.stat().st_size)
        if self.target != "host":
            self.extra.update({"board": mcu.TARGETS[self.target].machine, "cpu": mcu.TARGETS[self.target].cpu})
        return self

    def check_stream(self, rates: list[tuple[str, float]], stream_filter: str) -> None:
        """One line when a recording (record id, its rate) is not at the rate the front end was built for, or the
        stream it is compared with band-passes another way ("window", "causal"; "none" without a band)."""
        if why := off_rate(rates, self.fs_in, f"{self.name}: ", "the C front end was built for"):
            raise SqtoolError(why)
        if stream_filter != self.filter:
            raise SqtoolError(f"{self.name}: the C front end band-passes '{self.filter}' (export --device-filter), "
                              f"this stream '{stream_filter}': run with --filter {self.filter} to compare them")

    def run_records(self, streams: list[np.ndarray], T: int) -> tuple[np.ndarray, np.ndarray]:
        """streams: each recording's (C, N) device samples at the rate `check_stream` checked -> (outputs in units
        (W, k), int8 input codes (W, T C)), the windows of every recording in order."""
        from sqtool.firmware_bench.window_fw import run_window_fw, window_sizes
        r = run_window_fw(self.fw, streams, timeout=self.timeout_s)
        if r.latency_s is not None:                 # the host build's wall time per window (front end + network)
            self.latencies_s = [float(v) for v in r.latency_s]
        if self.target != "host":
            size = window_sizes(self.fw, r.stack_high_water)
            self.extra.update({k: v for k, v in size.items() if k not in ("sections", "objects")})
            self.size_bytes = size["flash_bytes"]
            n = max(1, r.windows_counted)
            self.extra.update({
                "instructions_per_inference": (r.stage_insns["front_end"] + r.stage_insns["network"]) / n,
                "front_end_instructions_per_window": r.stage_insns["front_end"] / n,
                "network_instructions_per_window": r.stage_insns["network"] / n,
                "front_end_state_bytes": r.stats.get("front_end_state_bytes"),
                "model_const_bytes": size["objects"]["network"]["const"],
                "arena_bytes": size["objects"]["network"]["rw"]})
        self.int8_outputs = r.outputs
        from sqtool.export.metadata import codes_to_units
        return codes_to_units(r.outputs, self.art.metadata), r.codes


class Mcu(_Int8):
    """The generated C on an emulated Cortex-M (whole batch in one QEMU run)."""
    name, target, single = "mcu_m4", "m4", False
    timeout_s = 600.0

    def load(self):
        from sqtool.firmware_bench import mcu
        c_dir = self.art.c_dir()
        mcu.require_tools("arm-none-eabi-gcc", "qemu-system-arm")
        self.fw = mcu.build_firmware(c_dir, self.target, self.work / "mcu",
                                     defines=(f"SQ_SINGLE_ROUNDING={int(self.single)}",), prefix=self.art.c_prefix)
        self.file = str(self.fw.path)
        self.size_bytes = mcu.image_size(self.fw)["flash_bytes"]
        self.extra.update({"board": self.fw.target.machine, "cpu": self.fw.target.cpu, **mcu.model_bytes(self.fw)})
        return self

    def _run_int8(self, q):
        from sqtool.firmware_bench import mcu
        r = mcu.run_firmware(self.fw, q, timeout=self.timeout_s)
        size = mcu.image_size(self.fw, r.stack_high_water)
        self.extra.update({k: v for k, v in size.items() if k != "sections"})
        self.size_bytes = size["flash_bytes"]                      # the image that goes to flash
        ins = r.insns_per_window
        self.extra.update({"instructions_per_inference": float(np.mean(ins)), "instructions_min": int(ins.min()),
                           "instructions_max": int(ins.max())})
        return r.outputs


def _mcu(name, target, single=False):
    return type(f"Mcu_{name}", (Mcu,), {"name": name, "target": target, "single": single})


_CLASSES = {c.name: c for c in (TorchTeacher, TorchStudent, BrevitasInt8, OnnxFloat, OnnxInt8, LiteRtFloat,
                                LiteRtInt8, TflmInt8, CHost, CHostSingle, WindowLoop)}
_CLASSES.update({f"mcu_{t}_window": type(f"WindowLoop_{t}", (WindowLoop,), {"name": f"mcu_{t}_window", "target": t})
                 for t in ("m4", "m33", "m55")})
_CLASSES.update({"mcu_m4": _mcu("mcu_m4", "m4"), "mcu_m33": _mcu("mcu_m33", "m33"),
                 "mcu_m55": _mcu("mcu_m55", "m55"), "mcu_m4_single": _mcu("mcu_m4_single", "m4", True)})


def front_family(md: dict) -> str | None:
    """The family ("resp_spec": rr_spec, "beat_trees": af_beats) of an export whose network reads a fixed front end
    of the PPG window (registered `models.shipped_as`; run by `FrontEnd`), else None. A spectral heart-rate export
    is none, said without loading the model registry (its modules import torch: 190 MB that predict's spectral path
    never uses)."""
    if is_spectral(md):
        return None
    from sqtool.models import shipped_as
    mc = md.get("model_cfg") or md
    return mc.get("family") if shipped_as(mc) else None


def front_runtimes(md: dict) -> tuple[str, ...]:
    """The runtimes a front-end export runs on: PyTorch, and the float files it ships as (`shipped_as`: rr_spec's
    ONNX and TFLite, af_beats' ONNX)."""
    from sqtool.models import shipped_as
    targets = shipped_as(md.get("model_cfg") or md).targets.split(",")
    return ("torch_teacher", *(rt for rt, t in (("onnx_float", "onnx"), ("litert_float", "tflite")) if t in targets))


def check_front_filter(md: dict, filt: str, export_dir) -> None:
    """A front-end model (rr_spec, af_beats) reads the windows its fine-tune cut (zero-phase over the window and
    its context): another --filter feeds its front end windows it never saw (rr_spec's rate moved by up to 7
    breaths/min with --filter causal). One line; other models pass."""
    from sqtool.core import stream_filter
    trained = stream_filter(md)
    if front_family(md) and filt != trained:
        raise SqtoolError(f"--filter {filt}: {export_dir} is {md.get('model')}, whose front end reads the windows its "
                          f"fine-tune cut (--filter {trained}): --filter is for time-domain models")


def resp_view(md: dict) -> dict:
    """A respiratory-spectrum export's metadata as the time-domain rr model bench and predict score: its output the
    decoded rate `rr_bpm` in breaths/min (`FrontEnd`), not the network's rr_logits, and the training rates' mean
    (`train_target_mean`, bench's trivial predictor) as its target_mean; other exports unchanged (af_beats' output
    is its logit_af already)."""
    if not is_resp(md):
        return md
    return {**md, "outputs": ["rr_bpm"], "units": ["breaths/min"], "target_mean": list(md.get("train_target_mean") or [])}


def _front_inputs(md: dict, x: np.ndarray) -> np.ndarray:
    """One window (1, 1, T) -> the network's input: rr_spec's respiratory spectra (1, 4, F) on its bins, af_beats'
    features (1, 1, K) in its order (float64: the trees split on them)."""
    mc = md.get("model_cfg") or md
    if is_resp(md):
        from sqtool.data.resp import resp_spectra
        from sqtool.models.rr_spec import rr_grid
        return resp_spectra(x, float(md["fs"]), rr_grid(mc))
    from sqtool.data.beats import FEATURES, interval_features
    cols = [FEATURES.index(f) for f in mc["frontend"]["features"]]
    return interval_features(x[:, 0], float(md["fs"]))[:, None, cols]


def _front_read(md: dict, z: np.ndarray) -> np.ndarray:
    """The network's outputs -> (N, 1) in the view's unit: rr_spec's logits decoded to breaths/min; a logit as is."""
    if not is_resp(md):
        return np.asarray(z, np.float64).reshape(len(z), 1)
    from sqtool.models.rr_spec import decode, rr_grid
    bins = rr_grid(md.get("model_cfg") or md)
    local = float((md.get("arch") or {}).get("local_rpm", 3.0))
    return (decode(z, bins, local) if len(z) else np.zeros(0))[:, None]


class FrontEnd(Runtime):
    """An export whose network reads a fixed front end of the PPG window, run as a time-domain model: windows
    (N, 1, T) of the stream -> the front end (`_front_inputs`: rr_spec's `data.resp` spectra, af_beats'
    `data.beats` features) -> the export's network on `inner` (`front_runtimes`) -> (N, 1) (`_front_read`:
    breaths/min decoded, or the logit of AF). A window's latency is its front end's plus its network's."""
    precision = "float"

    def __init__(self, inner: Runtime):
        super().__init__(inner.art, inner.work)
        self.inner, self.name = inner, inner.name

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        md = self.art.metadata
        if is_resp(md):
            from sqtool.models.rr_spec import check_frontend
            check_frontend(md.get("model_cfg") or md, f"export {self.art.export_dir}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        T = int(round(float(md["fs"]) * float(md["window_s"])))
        if x.ndim != 3 or x.shape[1:] != (1, T):
            raise SqtoolError(f"{self.name}: windows must be (N, 1, {T}) PPG samples, got {x.shape}")
        inputs, fe_s = [], []
        for xi in x:                                                    # timed per window, as the network
            t = time.perf_counter()
            inputs.append(_front_inputs(md, xi[None])[0])
            fe_s.append(time.perf_counter() - t)
        start = len(self.inner.latencies_s)
        z = self.inner.run_batch(np.stack(inputs)) if len(x) else np.zeros((0, window_shape(md)[1]))
        net_s = self.inner.latencies_s[start:]
        self.latencies_s += [a + b for a, b in zip(fe_s, net_s)] if len(net_s) == len(fe_s) else []
        return _front_read(md, z)

    def forget_latencies(self) -> None:
        super().forget_latencies()
        self.inner.forget_latencies()

    def info(self) -> dict:
        return {**self.inner.info(), "runtime": self.name,
                "front_end_impl": "data.resp (Python, float64)" if is_resp(self.art.metadata) else
                "data.beats (Python, float64)"}


def feeds_records(name: str) -> bool:
    """Whether runtime `name` is fed each recording's device samples (`WindowLoop.run_records`: c_window,
    mcu_m4_window), not the stream's windows."""
    return bool(getattr(_CLASSES.get(name), "fed_records", False))


def make_runtime(name: str, art: Artifacts, work) -> Runtime:
    if name not in _CLASSES:
        raise SqtoolError(f"unknown runtime '{name}' (known: {', '.join(RUNTIMES)})")
    if front_family(art.metadata):                  # rr_spec, af_beats: front end + float network + reading
        ok = front_runtimes(art.metadata)
        if name not in ok:
            raise SqtoolError(f"runtime {name}: {art.metadata.get('model')} is a float model over a Python front end "
                              f"(no int8, no C): {', '.join(ok)}")
        return FrontEnd(_CLASSES[name](art, Path(work)).load())
    return _CLASSES[name](art, Path(work)).load()


def rounding_mode(name: str) -> str | None:
    """Which integer arithmetic a runtime implements: "double" (TFLite) / "single" (Brevitas) / None."""
    if name in ("tflm_int8", "c_host", "mcu_m4", "mcu_m33", "mcu_m55"):
        return "double"
    if name in ("brevitas_int8", "c_host_single", "mcu_m4_single"):
        return "single"
    return None
