"""C front end of a time-domain model: `sq_window_tables.h` (generated) + the `sq_window.{h,c}` templates.

    design = window_design(md, fs_in)                  # every number of the C, from the export's metadata.json
    paths = render_window(md, fs_in, out_dir, prefix="sq")

A time-domain model (af, rr, quality, bp, an hr student) reads windows that were resampled, band-passed and
normalised in floating point (`firmware_bench.stream`, what predict and bench run; INTEGRATION.md's steps). This
writes that preprocessing in C for the device, for one device rate (`sqtool export --device-fs HZ`): device samples
in, the network's int8 input codes out, every hop (templates/sq_window.h says how). float32 throughout, so it
needs no table of the model's numbers beyond these: the polyphase FIR of `data.preprocess.polyphase_design` (the
stream's own), the Butterworth sections of `data.preprocess._sos` with `scipy.signal.sosfilt_zi`'s steady state
(sosfiltfilt's start), the window's context (`zero_phase_context`), its padding (`filtfilt_padlen`), the
normalisation and the int8 input quantization. Buffers are sized here for the worst case of a stream and of its
end (`sq_window_finish`), and their bytes reported (`ram_bytes`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.preprocess import (_sos, filtfilt_padlen, polyphase_design, resample_ratio,
                                    zero_phase_context)
from sqtool.export.c_render import check_prefix, define_block, template, write_sources

TEMPLATES = ("sq_window.h", "sq_window.c")
NORMS = {"none": 0, "minmax": 1, "zscore": 2}


def _f32(v: float) -> str:
    """A float32 C literal holding exactly np.float32(v)."""
    s = repr(float(np.float32(v)))
    return (s if any(ch in s for ch in ".e") else s + ".0") + "f"


def _whole(v: float, what: str) -> int:
    if abs(v - round(v)) > 1e-6:
        raise SqtoolError(f"C front end: {what} is {v:g} samples, not a whole number")
    return int(round(v))


def check_device_rate(md: dict, fs_in: float) -> tuple[int, int, int, int]:
    """(up, down, window, hop in device samples) of a device rate for the model `md` (metadata.json or its model
    cfg: fs, window_s, hop_s, band), or one line: a rate whose Nyquist frequency is below the band, a ratio no
    fraction holds, a window or hop that is not whole samples at that rate (as the stream refuses them)."""
    fs, fs_in = float(md["fs"]), float(fs_in)
    band = md.get("band")
    if not (np.isfinite(fs_in) and fs_in > 0):
        raise SqtoolError(f"--device-fs {fs_in:g}: a device rate must be a positive number of Hz")
    if band and band[1] and fs_in / 2 < band[1]:
        raise SqtoolError(f"--device-fs {fs_in:g}: its Nyquist frequency {fs_in / 2:g} Hz is below the model's band "
                          f"({band[1]:g} Hz); the signal the model expects is not in the device's samples")
    up, down = resample_ratio(fs_in, fs)
    return (up, down, _whole(fs_in * float(md["window_s"]), f"the window at {fs_in:g} Hz"),
            _whole(fs_in * float(md["hop_s"]), f"the hop at {fs_in:g} Hz"))


FILTERS = ("window", "causal")             # the stream's band-pass modes the C has (`firmware_bench.stream.FILTERS`)


def window_design(md: dict, fs_in: float, filter: str = "window") -> dict:
    """The numbers of the C front end for `md` (an export's metadata.json: fs, window_s, hop_s, channels, band,
    norm, quantization) at device rate fs_in (Hz) with the stream's band-pass `filter` ("window": zero phase over
    the window and its context, sqtool's default; "causal": one running filter from rest): rates, sizes, tables;
    one line for a rate the stream refuses."""
    if filter not in FILTERS:
        raise SqtoolError(f"--device-filter {filter}: choose one of {', '.join(FILTERS)}")
    up, down, t_dev, hop_dev = check_device_rate(md, fs_in)
    fs, fs_in = float(md["fs"]), float(fs_in)
    band = tuple(md["band"]) if md.get("band") is not None else None
    norm = str(md.get("norm") or "minmax")
    if norm not in NORMS:
        raise SqtoolError(f"C front end: normalisation '{norm}' has no C (known: {', '.join(NORMS)})")
    q = md.get("quantization") or {}
    if "input_scale" not in q:
        raise SqtoolError("C front end: metadata.json has no int8 input quantization (a float-only export)")
    poly, npr = polyphase_design(up, down)
    T, hop = _whole(fs * float(md["window_s"]), "the window"), _whole(fs * float(md["hop_s"]), "the hop")
    sos = _sos(fs, band[0], band[1], 2) if band else None
    zero_phase = sos is not None and filter == "window"
    zi = None
    if sos is not None:                              # either filter starts in the first sample's steady state
        from scipy.signal import sosfilt_zi
        zi = sosfilt_zi(sos)
    if zero_phase:
        pre_s, post_s = zero_phase_context(band)
        ctx_pre, ctx_post, padlen = int(round(pre_s * fs)), int(round(post_s * fs)), filtfilt_padlen(sos)
    else:
        ctx_pre = ctx_post = padlen = 0
    K = poly.shape[1]
    per = -(-up // down)                                     # model samples one device sample can make
    mb = ctx_pre + T + ctx_post + npr + per + 2              # the earliest pending window's history to the tail
    dr = max(t_dev, -(-(T + ctx_post + npr + per + 2) * down // up)) + hop_dev + 4
    work = ctx_pre + T + ctx_post + 2 * padlen if zero_phase else T
    n_ch = len(md["channels"])
    causal = sos is not None and not zero_phase
    ram = 4 * n_ch * (2 * (K + 1) + mb) + dr + 4 * work + 8 * n_ch + 60 + (8 * n_ch * len(sos) if causal else 0)
    return {"fs_in": fs_in, "fs": fs, "up": up, "down": down, "K": K, "npr": npr, "poly": poly, "T": T, "hop": hop,
            "t_dev": t_dev, "hop_dev": hop_dev, "nch": n_ch, "channels": list(md["channels"]), "band": band,
            "sos": sos, "zi": zi, "filter": filter if sos is not None else "none", "causal": causal,
            "ctx_pre": ctx_pre, "ctx_post": ctx_post, "padlen": padlen, "hin": K + 1, "mb": mb,
            "dr": dr, "work": work, "norm": norm, "in_scale": float(q["input_scale"]),
            "in_zp": int(q["input_zero_point"]), "window_s": float(md["window_s"]), "hop_s": float(md["hop_s"]),
            "latency_s": npr * down / up / fs_in + ctx_post / fs, "ram_bytes": int(ram),
            "table_bytes": int(4 * (poly.size + (0 if sos is None else sos.size) + (0 if zi is None else zi.size)))}


def _table(name: str, a: np.ndarray) -> str:
    rows = ",\n    ".join("{ " + ", ".join(_f32(v) for v in row) + " }" for row in np.atleast_2d(a))
    return f"static const float {name} = {{\n    {rows}\n}};\n"


def tables_header(d: dict) -> str:
    info = {k: d[k] for k in ("fs_in", "fs", "up", "down", "channels", "band", "filter", "norm", "window_s", "hop_s",
                              "T")}
    defines = [("SQ_WF_FS_IN", _f32(d["fs_in"]), "device rate (Hz): the input"),
               ("SQ_WF_FS", _f32(d["fs"]), "model rate (Hz)"),
               ("SQ_WF_NCH", d["nch"], f"channels: {', '.join(d['channels'])}"),
               ("SQ_WF_UP", d["up"], "model rate / device rate = UP / DOWN, reduced"),
               ("SQ_WF_DOWN", d["down"], ""),
               ("SQ_WF_K", d["K"], "taps per polyphase branch"),
               ("SQ_WF_NPR", d["npr"], "outputs of look-ahead (resample_poly's alignment)"),
               ("SQ_WF_T", d["T"], "window, model-rate samples"),
               ("SQ_WF_HOP", d["hop"], "hop, model-rate samples"),
               ("SQ_WF_T_DEV", d["t_dev"], "window, device samples"),
               ("SQ_WF_HOP_DEV", d["hop_dev"], "hop, device samples"),
               ("SQ_WF_WINDOW_S", _f32(d["window_s"]), ""),
               ("SQ_WF_HOP_S", _f32(d["hop_s"]), ""),
               ("SQ_WF_ZERO_PHASE", int(d["sos"] is not None and not d["causal"]),
                "1: sosfiltfilt band-pass over the window + context"),
               ("SQ_WF_CAUSAL", int(d["causal"]), "1: a running causal band-pass (--device-filter causal)"),
               ("SQ_WF_NSOS", 0 if d["sos"] is None else len(d["sos"]), "band-pass sections"),
               ("SQ_WF_PADLEN", d["padlen"], "sosfiltfilt's odd extension (shorter for a short segment)"),
               ("SQ_WF_CTX_PRE", d["ctx_pre"], "model-rate samples of history the band-pass sees"),
               ("SQ_WF_CTX_POST", d["ctx_post"], "... and of look-ahead"),
               ("SQ_WF_NORM", NORMS[d["norm"]], f"normalisation: {d['norm']} (0 none, 1 minmax, 2 zscore)"),
               ("SQ_WF_IN_SCALE", _f32(d["in_scale"]), "the network's int8 input scale"),
               ("SQ_WF_IN_ZP", d["in_zp"], "... and zero point"),
               ("SQ_WF_LATENCY_S", _f32(d["latency_s"]), "a window is ready this long after its last sample"),
               ("SQ_WF_HIN", d["hin"], "resampler input ring"),
               ("SQ_WF_MB", d["mb"], "model-rate ring"),
               ("SQ_WF_DR", d["dr"], "device-rate dropout-flag ring"),
               ("SQ_WF_WORK", d["work"], "filter work buffer"),
               ("SQ_WF_RAM_BYTES", d["ram_bytes"], "sizeof(sq_window_t), about")]
    body = define_block(defines)
    tables = _table(f"sq_wf_poly[{d['up']}][{d['K']}]", d["poly"])
    if d["sos"] is not None:
        tables += ("/* b0 b1 b2 a0 a1 a2 per section (a0 = 1) */\n" + _table(f"sq_wf_sos[{len(d['sos'])}][6]", d["sos"]))
    if d["zi"] is not None:
        tables += ("/* sosfilt_zi: each section's steady state under a unit step (the filters' start) */\n"
                   + _table(f"sq_wf_zi[{len(d['sos'])}][2]", d["zi"]))
    return f"""/*
 * sq_window_tables.h - generated by sqtool.export.c_window; do not edit.
 * {json.dumps(info, sort_keys=True)}
 */
#ifndef SQ_WINDOW_TABLES_H
#define SQ_WINDOW_TABLES_H

#include <stdint.h>

{body}

#endif /* SQ_WINDOW_TABLES_H */

#if defined(SQ_WF_DEFINE_TABLES) && !defined(SQ_WF_TABLES_DEFINED)
#define SQ_WF_TABLES_DEFINED
/* polyphase branches of resample_poly's Kaiser FIR: output at phase p = sum_k poly[p][k] x[i - k] */
{tables}#endif
"""


def front_end_info(c_dir) -> dict | None:
    """What an export's C front end was built for (the JSON line `tables_header` writes into sq_window_tables.h:
    fs_in, filter "window" | "causal" | "none", channels, T, ...); None when c_dir holds none."""
    tables = Path(c_dir) / "sq_window_tables.h"
    if not tables.is_file():
        return None
    lines = tables.read_text().splitlines()
    try:
        info = json.loads(lines[2].lstrip(" *"))                 # " * {json}", under the generated-by line
    except (IndexError, ValueError):
        info = {}
    if not {"fs_in", "filter", "channels", "T"} <= set(info):
        raise SqtoolError(f"{tables}: not a C front end this sqtool reads (no build line with fs_in, filter, "
                          "channels, T): export the model again")
    return info


def render_window(md: dict, fs_in: float, out_dir, prefix: str = "sq", filter: str = "window") -> list[Path]:
    """Write <prefix>_window_tables.h, <prefix>_window.h, <prefix>_window.c into out_dir."""
    check_prefix(prefix)
    files = {"sq_window_tables.h": tables_header(window_design(md, fs_in, filter))}
    files.update({name: template(name) for name in TEMPLATES})
    return write_sources(files, out_dir, prefix)


__all__ = ["check_device_rate", "front_end_info", "render_window", "tables_header", "window_design"]
