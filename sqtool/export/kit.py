"""The firmware integration kit that `sqtool export --target c` writes for a spectral heart-rate model.

    info = write_kit(out_dir, model_cfg, graph, md, fs_in=None, prefix="sq", decoder=None, run_dir=None, n_ppg=1)

Layout of out_dir (next to the export's metadata.json / export_report.*):

    c/<prefix>_{pipeline,frontend,model,decoder}.{h,c} + tables   (render_pipeline)
    c/<prefix>_acc_resampler.{h,c} + tables, example/acc_check.c, test_vectors/acc_{in,expected}.bin
                                with acc_fs (--device-acc-fs): the accelerometer resampler and its check
    example/main.c              streams a recording file through the pipeline, one line per result
    example/selftest.c          <prefix>_selftest(): the test vectors compiled in, no stdio (a board without files)
    example/board/              startup.c, sq_bench.h, the linker scripts and boards.mk of the boards QEMU emulates
                                (MPS2 AN386 Cortex-M4, AN505 Cortex-M33, MPS3 AN547 Cortex-M55)
    Makefile, CMakeLists.txt    host and board builds (check-mps2 / check-an505 / check-an547, selftest-an386 ...;
                                CMake -DSQ_MPS2=ON -DSQ_BOARD=...); `make check` / ctest: parity
    README.md                   for the firmware engineer: API, units, memory placement, parity check
    test_vectors/               recording.bin (SYNTHETIC: no subject data), expected.txt (PipelineRef),
                                vectors.json, check.cmake, <prefix>_vectors.h (the recording and the
                                expected results as C arrays, and what the self-test's generated noise
                                stream must give (noise_check), for example/selftest.c)
    MODEL_CARD.md               task, training data and licences, split, held-out metrics, limitations
    INTEGRATION.md              for an integrator without sqtool (phone, host): front end, gating and decoder as
                                equations (`write_docs`; every spectral export, int8 or float, writes it and the card)

`check_kit(out_dir)` builds the example on the host with the kit's Makefile and runs the test vectors in
several chunkings: the export's parity row for the pipeline. The kit never contains subject data: the
test recording is generated (a pulse with harmonics, wrist motion, a dropout, saturation, silence).
"""
from __future__ import annotations

import json
from collections import Counter
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from sqtool.core import SqtoolError, atomic_write_bytes, atomic_write_text
from sqtool.core.io import dumps_json, read_json
from sqtool.export.pipeline import (MAX_FLAGGED_Q15, RESULT_KEYS, ROUNDING, PipelineRef, format_results,
                                    parse_results, render_pipeline, write_recording)
from sqtool.export.c_render import rename
from sqtool.data.frontend import QUIET, input_channels

TEMPLATES = Path(__file__).resolve().parent / "templates"
BOARD_DIR = Path(__file__).resolve().parents[1] / "firmware_bench" / "mcu"
# example/board/ of a kit: the project's startup, bench header and linker scripts of the boards QEMU emulates (MPS2
# AN386 Cortex-M4, AN505 Cortex-M33, MPS3 AN547 Cortex-M55), boards.mk and boards.cmake (templates/kit_boards.*) for
# the Makefile and CMakeLists.txt
BOARD_FILES = ("startup.c", "sq_bench.h", "mps2_an386.ld", "mps2_an505.ld", "mps3_an547.ld", "boards.mk",
               "boards.cmake")
CHUNKINGS = ("1", "7", "25", "125", "1,7,0,125,300")
DATASET_LICENCES = {
    "troika": "IEEE SP Cup 2015 (TROIKA, Zhang et al. 2015): academic use with citation, no open licence",
    "wrist_exercise": "PhysioNet 'Wrist PPG During Exercise' (Jarchi & Casson 2017): open access, ODC-By 1.0 "
                      "as far as known",
    "synthetic": "sqtool's embedded synthetic PPG + accelerometer generator (`sqtool.data.synthetic`): no subject "
                 "data, no licence restriction",
    # the other tasks' built-ins (time-domain models' cards, `export.time_docs`), from each MANIFEST.md
    "bidmc": "PhysioNet 'BIDMC PPG and Respiration' (Pimentel et al. 2017): open access, ODC-By 1.0",
    "ppg_arrhythmia": "Liu et al. 2022 (JAHA) arrhythmia PPG, 12-patient subset: no licence stated, research use "
                      "with citation; redistribution rights not granted",
    "ppg_bp": "PPG-BP (Liang et al. 2018, Scientific Data): CC BY 4.0 as listed on figshare (to be confirmed there)",
    "but_ppg": "PhysioNet 'BUT PPG' (Nemcova et al. 2021): open access, CC BY 4.0 as listed on PhysioNet (to be "
               "confirmed there)",
    "mw_ppg": "multi-wavelength PPG (Baciu et al. 2023; recordings of the CardioWorks team, Guilin): no data licence "
              "stated (the repository's code is GPL-3.0), research use with citation",
}
# what a built-in dataset holds (activities, device) and where its labels come from (a heart-rate model's card calls
# them its reference heart rate): the card's reader judges from them whether the model has seen wearers like theirs
# (the datasets' MANIFESTs)
DATASET_CONTENT = {
    "troika": ("12 subjects on a treadmill (SP Cup 2015 training set): rest 30 s, then running at 8 and 15 km/h "
               "(6 and 12 km/h in TYPE02) in 1-minute bouts, rest 30 s; two green wrist PPG channels + 3-axis "
               "accelerometer at 125 Hz", "the competition's BPM traces from a simultaneous chest ECG"),
    "wrist_exercise": ("treadmill walking and running, exercise bike at low resistance (fast pedalling) and high "
                       "resistance (slow pedalling), 4.7-7 min each; green wrist PPG + 3-axis accelerometer at 256 Hz",
                       "computed by sqtool from the chest-ECG R peaks (several neurokit2 detectors, "
                       "`sqtool.data.ecg`), cross-checked against the shipped beat annotations; windows where the "
                       "reference is doubtful hold no truth and were neither trained on nor scored"),
    "synthetic": ("generated PPG + accelerometer with known heart rate, motion and artifacts", "the generator's own"),
    "bidmc": ("53 adult ICU patients, 8 min each, at rest in bed: fingertip PPG, impedance respiration and ECG at "
              "125 Hz", "respiratory rate from the breaths two annotators marked on the impedance signal; heart rate "
              "and SpO2 from the bedside monitor (1 Hz)"),
    "ppg_arrhythmia": ("12 patients undergoing radiofrequency ablation for arrhythmias, 2,295 fingertip PPG segments "
                       "of 10 s at 100 Hz (min-max normalised)", "the rhythm of each segment (sinus, PVC, PAC, VT, "
                       "SVT, AF) by two cardiologists from a simultaneous ECG"),
    "ppg_bp": ("219 adults (normotensive to stage 2 hypertension, some with diabetes or cerebrovascular disease), "
               "three fingertip PPG segments of 2.1 s at 1000 Hz", "one blood pressure per subject (systolic / "
               "diastolic, 80-182 / 42-107 mmHg), demographics and diagnoses"),
    "but_ppg": ("51 smartphone-camera PPG recordings of 10 s at 30 Hz (finger or earlobe; rest, walking, talking "
                "and other disturbances)", "quality good / poor by annotators; reference heart rate from an ECG"),
    "mw_ppg": ("78 subjects, 60 s of finger PPG at three wavelengths (660, 730, 850 nm) at 200 Hz, raw ADC counts",
               "per-sample, per-channel artifact flags (Baciu et al. 2023)"),
}
SEE_MANIFEST = "licence: see the dataset MANIFEST"     # a dataset sqtool does not know
# the built-ins whose terms (above) grant no redistribution: a card warns where its folder ships their windows
NO_REDISTRIBUTION = ("troika", "ppg_arrhythmia", "mw_ppg")
# the unlabelled PPG sources (../shared/data/unlabeled/<source>/MANIFEST.md each; there is no MANIFEST at the top),
# named by the prefix of a pretraining subject key `unlabeled:<source>_<recording>`
UNLABELED_LICENCES = {
    "e2epyppg": "e2epyppg package's example recordings: MIT (unlabeled/e2epyppg/MANIFEST.md)",
    "heartpy": "HeartPy's example recordings: MIT per its repository (wheel metadata says GPL; "
               "unlabeled/heartpy/MANIFEST.md)",
    "smartcare": "smartcare recordings: MIT (unlabeled/smartcare/MANIFEST.md)",
}


def dataset_terms(ds: str, layouts: dict | None = None) -> tuple[str, str | None]:
    """(how a card names dataset `ds`, the built-in whose licence, content and terms are its): a built-in by its own
    name; a dataset file that reads a built-in layout under a name of its own (`format: troika`, `name: wrist_troika`:
    its subject keys carry the name) by its layout, from the run's `dataset_layouts` ("`wrist_troika` (layout
    troika)"); any other (`ds`, None): sqtool does not know its terms."""
    if ds in DATASET_LICENCES:
        return f"`{ds}`", ds
    layout = (layouts or {}).get(ds)
    return (f"`{ds}` (layout {layout})", layout) if layout in DATASET_LICENCES else (f"`{ds}`", None)


def _pretraining_licence(ds: str, subjects) -> str:
    """The licence line of a dataset seen only by the self-supervised pretraining; for `unlabeled`, its sources."""
    if ds in DATASET_LICENCES:
        return DATASET_LICENCES[ds]
    if ds == "unlabeled":
        recs = [str(k).split(":", 1)[1] for k in subjects if str(k).split(":")[0] == ds]
        srcs = sorted({s for s in UNLABELED_LICENCES for r in recs if r.startswith(s)})
        if srcs:
            return "; ".join(UNLABELED_LICENCES[s] for s in srcs)
        return "licence: see the source's MANIFEST.md under the data root's unlabeled/<source>/"
    return SEE_MANIFEST


# ----------------------------------------------------------------------------- test vectors

def synthetic_recording(fs_in: float, n_channels: int, seconds: float = 48.0, seed: int = 0, n_ppg: int = 1):
    """(x16 int16 (C_in, N), gap (N,) bool, description): a generated wrist recording, no subject data.

    A pulse of drifting rate (75 -> 140 BPM) with a harmonic, arm motion at a second rate on the
    accelerometer, a 6 s dropout (gap flags, so one or more windows are skipped), a 2 s saturated stretch
    (+-32767) and a 3 s all-zero stretch. n_ppg = 2 adds a second PPG sensor (rows: ppg, ppg2, acc...):
    the same pulse at a third of the gain with its own noise and more motion artefact."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs_in))
    t = np.arange(n) / fs_in
    hr_hz = (75 + 65 * t / seconds) / 60.0
    ph = 2 * np.pi * np.cumsum(hr_hz) / fs_in
    ppg = 2500 * np.sin(ph) + 900 * np.sin(2 * ph + 0.6) + 200 * rng.standard_normal(n)
    mot = 2 * np.pi * 1.3 * t
    x = [ppg + 700 * np.sin(mot)]
    if n_ppg == 2:
        x.append(0.33 * ppg + 600 * np.sin(mot + 0.4) + 150 * rng.standard_normal(n))
    if n_channels > 1:                                                   # acc x, y, z
        x += [1200 * np.sin(mot + k) + 4096 * (k == 2) + 60 * rng.standard_normal(n) for k in range(3)]
    x16 = np.clip(np.round(np.stack(x)), -32768, 32767).astype(np.int16)
    gap = np.zeros(n, bool)
    s = lambda sec: int(round(sec * fs_in))                                # noqa: E731
    gap[s(14):s(20)] = True
    x16[:, gap] = 0
    x16[:, s(28):s(30)] = np.where(np.arange(s(30) - s(28)) % 2, 32767, -32768).astype(np.int16)
    x16[:, s(36):s(39)] = 0
    desc = {"seconds": seconds, "fs_in_hz": fs_in, "channels": n_channels, "ppg_sensors": n_ppg, "synthetic": True,
            "content": "pulse 75 -> 140 BPM with a harmonic, motion at 78 BPM; dropout (gap flags) 14-20 s; "
                       "saturated +-32767 at 28-30 s; zeros at 36-39 s", "seed": seed}
    return x16, gap, desc


def _c_int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -2 ** 31 else str(v)


def _c_rows(a: np.ndarray) -> str:
    """The values of `a`, flattened, as a C initialiser's body: 16 a line."""
    flat = [str(int(v)) for v in np.asarray(a).reshape(-1)]
    return ",\n    ".join(", ".join(flat[i:i + 16]) for i in range(0, len(flat), 16))


# The self-test's noise stream (kit_selftest.c's sq_st_noise, the pulse-presence check): every input of every time step
# drawn from xorshift32 on the device, long enough for the pulse-presence run's windows of noise (PipelineRef's
# pulse_rule: 32 since 2026-12-07) and NOISE_HOPS_AFTER hops of no_pulse after them
NOISE_HOPS_AFTER = 12
NOISE_SEEDS = 64                   # seeds tried for one whose stream turns no_pulse on (xorshift32's seed is never 0)


def xorshift_noise(n: int, seed: int) -> np.ndarray:
    """(n,) int16: the self-test's noise values, as sq_st_noise makes them on the device: the xorshift32 state
    (x ^= x << 13; x ^= x >> 17; x ^= x << 5, uint32) from `seed`, each new state's top 12 bits less 2048
    (-2048 .. 2047)."""
    x, out = int(seed) & 0xFFFFFFFF, np.empty(int(n), np.int16)
    for i in range(int(n)):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = (x >> 20) - 2048
    return out


def results_checksum(res: dict) -> int:
    """FNV-1a over every field of every result (RESULT_KEYS order, line by line), each field one uint32 word (its
    value mod 2^32): the self-test's sq_st_checksum."""
    h = 2166136261
    for v in np.stack([np.asarray(res[k], np.int64) for k in RESULT_KEYS], axis=1).reshape(-1):
        h = ((h ^ (int(v) & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


def noise_seconds(ref: PipelineRef) -> float:
    """The noise stream's length: one window, then a hop for each window of the pulse-presence run and
    NOISE_HOPS_AFTER more (PipelineRef without the detector: 16 windows' worth, its checksum still checked)."""
    windows = ref.pulse_rule[0] if ref.pulse_rule else 16
    return float(ref.fe_cfg.window_s) + (windows + NOISE_HOPS_AFTER) * float(ref.fe_cfg.hop_s)


def noise_check(ref: PipelineRef, seconds: float | None = None) -> dict:
    """What the self-test's noise stream must give (PipelineRef from a fresh state): `seconds` (default
    `noise_seconds`) of frames of ref.C_in xorshift_noise values (the PPG sensors', then acc x, y, z; no gaps) from
    the first seed of 1..NOISE_SEEDS whose stream turns no_pulse on (one sensor's noise spectrum sits near the
    threshold: some seeds never do; none of them: seed 1, its no_pulse count 0). Returns {seed, n_samples, seconds,
    results, first_no_pulse (the first result with no_pulse = 1, -1: none), no_pulse (results with it), checksum
    (results_checksum)}."""
    seconds = noise_seconds(ref) if seconds is None else float(seconds)
    n = int(round(seconds * float(ref.fe_cfg.fs_in)))
    run = lambda s: ref.run(xorshift_noise(n * ref.C_in, s).reshape(n, ref.C_in).T.copy())   # noqa: E731 frames
    seed = next((s for s in range(1, NOISE_SEEDS + 1) if run(s)["no_pulse"].any()), 1)
    res = run(seed)
    hits = np.flatnonzero(res["no_pulse"])
    return {"seed": seed, "n_samples": n, "seconds": seconds, "results": int(len(res["index"])),
            "first_no_pulse": int(hits[0]) if len(hits) else -1, "no_pulse": int(len(hits)),
            "checksum": results_checksum(res)}


def vectors_header(x16: np.ndarray, gap: np.ndarray, res: dict, n_inputs: int, prefix: str = "sq",
                   acc: tuple[np.ndarray, np.ndarray] | None = None, *, noise: dict) -> tuple[str, int]:
    """<prefix>_vectors.h: the frames of recording.bin (n_inputs int16 samples + 1 gap flag per time step) and
    the lines of expected.txt as static const C arrays, for the kit's no-file-system self-test; `noise` (noise_check)
    as a few constants: what the self-test's noise stream, generated on the device, must give; `acc` (an export with
    the accelerometer resampler): (acc_in.bin's (M, 3) int16 triples, acc_expected.bin's (K, 3)) as two more arrays,
    which the self-test streams through the resampler. Returns (its text, the bytes of flash its arrays take)."""
    frames = np.concatenate([np.asarray(x16, np.int64), np.asarray(gap, bool).astype(np.int64)[None]], axis=0).T
    rows = np.stack([np.asarray(res[k], np.int64) for k in RESULT_KEYS], axis=1) if len(res["index"]) else \
        np.zeros((1, len(RESULT_KEYS)), np.int64)                         # C99 has no empty array: one unused row
    flash_bytes = 2 * frames.size + 4 * rows.size                  # int16_t sq_vec_recording, int32_t sq_vec_expected
    rec = _c_rows(frames)
    exp = ",\n    ".join("{" + ", ".join(_c_int(int(v)) for v in r) + "}" for r in rows)
    acc_text = ""
    if acc is not None:
        a_in, a_want = (np.asarray(a, np.int16).reshape(-1, 3) for a in acc)
        flash_bytes += 2 * (a_in.size + a_want.size)                  # int16_t sq_vec_acc_in, sq_vec_acc_expected
        acc_text = f"""
/* the accelerometer resampler's vectors: acc_in.bin (x, y, z at SQ_AR_FS_ACC Hz) and acc_expected.bin (at the device
 * rate), for its check in sq_selftest() */
#define SQ_VEC_ACC_N_IN {len(a_in)}
#define SQ_VEC_ACC_N_OUT {len(a_want)}

static const int16_t sq_vec_acc_in[3 * SQ_VEC_ACC_N_IN] = {{
    {_c_rows(a_in)}
}};

static const int16_t sq_vec_acc_expected[3 * SQ_VEC_ACC_N_OUT] = {{
    {_c_rows(a_want)}
}};
"""
    text = f"""/* sq_vectors.h - generated by sqtool export --target c: test_vectors/recording.bin and expected.txt as C
 * arrays, for sq_selftest() (example/selftest.c) on a board without a file system. SYNTHETIC signal, no
 * subject data (see vectors.json). Include it in one file only: the arrays are static. */
#ifndef SQ_VECTORS_H
#define SQ_VECTORS_H

#include <stdint.h>

#define SQ_VEC_FRAME {n_inputs + 1}          /* int16 per time step: the SQ_FE_NIN inputs, then the gap flag */
#define SQ_VEC_N_SAMPLES {frames.shape[0]}
#define SQ_VEC_N_RESULTS {len(res["index"])}

static const int16_t sq_vec_recording[SQ_VEC_N_SAMPLES * SQ_VEC_FRAME] = {{
    {rec}
}};

/* one row per result: {' '.join(RESULT_KEYS)} */
static const int32_t sq_vec_expected[{len(rows)}][{len(RESULT_KEYS)}] = {{
    {exp}
}};

/* the pulse-presence check: after the recording sq_selftest() re-initialises the pipeline and pushes
 * SQ_VEC_NOISE_N_SAMPLES time steps of noise that it generates (xorshift32 from SQ_VEC_NOISE_SEED: every input
 * -2048 .. 2047, no gaps); sqtool's reference on the same stream gives: */
#define SQ_VEC_NOISE_SEED {noise["seed"]}u
#define SQ_VEC_NOISE_N_SAMPLES {noise["n_samples"]}
#define SQ_VEC_NOISE_N_RESULTS {noise["results"]}
#define SQ_VEC_NOISE_FIRST_NO_PULSE {noise["first_no_pulse"]}   /* the first result with no_pulse = 1 (-1: none) */
#define SQ_VEC_NOISE_NO_PULSE {noise["no_pulse"]}          /* results with no_pulse = 1 */
#define SQ_VEC_NOISE_CHECKSUM 0x{noise["checksum"]:08X}u   /* FNV-1a of every field of every result, uint32 each */
{acc_text}
#endif /* SQ_VECTORS_H */
"""
    return rename(text, prefix), flash_bytes


def write_test_vectors(out_dir, ref: PipelineRef, prefix: str = "sq",
                       acc: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """test_vectors/: recording.bin, expected.txt (the reference, streamed in 7-sample chunks and checked
    against the vectorised run), vectors.json, check.cmake, <prefix>_vectors.h (the noise stream's expected numbers,
    `noise_check`; with `acc`, the accelerometer resampler's vectors too: `vectors_header`). Returns vectors.json's content and `flash_bytes`: what
    <prefix>_vectors.h's arrays take in flash."""
    vdir = Path(out_dir) / "test_vectors"
    vdir.mkdir(parents=True, exist_ok=True)
    x16, gap, desc = synthetic_recording(float(ref.fe_cfg.fs_in), ref.C, n_ppg=ref.n_ppg)
    res = ref.run(x16, gap)
    streamed = ref.run(x16, gap, chunk=7)
    if any(not np.array_equal(res[k], streamed[k]) for k in res):
        raise SqtoolError("pipeline reference: streaming and whole-recording results differ (a front-end bug)")
    write_recording(vdir / "recording.bin", x16, gap)
    atomic_write_text(vdir / "expected.txt", format_results(res))
    noise = noise_check(ref)
    header, flash_bytes = vectors_header(x16, gap, res, ref.C_in, prefix, acc, noise=noise)
    atomic_write_text(vdir / f"{prefix}_vectors.h", header)
    atomic_write_bytes(vdir / "check.cmake", (TEMPLATES / "kit_check.cmake").read_bytes())
    info = {**desc, "frame": f"{ref.C_in} int16 samples ({', '.join(input_channels(ref.fe_cfg))}) + 1 int16 gap flag, "
                             "little endian", "n_samples": int(x16.shape[1]), "results": int(len(res["index"])),
            "invalid_windows": int((res["valid"] == 0).sum()), "chunkings_checked": list(CHUNKINGS),
            "result_line": " ".join(RESULT_KEYS),
            "noise_check": {**noise, "checksum": f"0x{noise['checksum']:08X}",
                            "what": "the self-test's noise stream (xorshift32 on the device, example/selftest.c) "
                                    "through a fresh pipeline: the first no_pulse result, their count, FNV-1a of "
                                    "every field"},
            "max_flagged_q15_scored": MAX_FLAGGED_Q15, "rounding": ROUNDING}
    atomic_write_text(vdir / "vectors.json", dumps_json(info, indent=2) + "\n")
    return {**info, "flash_bytes": flash_bytes}


# ----------------------------------------------------------------------------- documents

def _fill(text: str, values: dict) -> str:
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    return text


def _run_info(run_dir) -> dict:
    """metrics.json (and train_info.json) of the source run, when present."""
    out = {}
    if run_dir is None:
        return out
    for name in ("metrics.json", "train_info.json"):
        p = Path(run_dir) / name
        if p.is_file():
            try:
                out[name] = read_json(p)
            except (OSError, ValueError):
                out[name] = {"error": f"{name} unreadable"}
    return out


def _flat_metrics(d, prefix="", out=None, depth=0) -> dict:
    out = {} if out is None else out
    if isinstance(d, dict) and depth < 3:
        for k, v in d.items():
            _flat_metrics(v, f"{prefix}{k}.", out, depth + 1)
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        out[prefix[:-1]] = d
    return out


# units of the values `sqtool quantize` writes into metrics.json (flattened keys); an unlisted key gets its unit
# from its name (_bpm: BPM), else none
METRIC_UNITS = {
    "decoder.sigma_bpm": "BPM per hop", "decoder.floor": "probability per hop", "decoder.logit_scale": "x",
    "decoder.start_bpm": "BPM", "decoder.start_sigma_bpm": "BPM", "decoder.interval": "posterior mass",
    "decoder.conf_halfwidth_bpm": "BPM", "decoder.refine_bins": "bins", "decoder.evidence_weight": "weight",
    "decoder.evidence_floor": "probability", "decoder.emission_floor": "probability",
    "decoder.temperature": "x", "decoder.inner_mae": "BPM", "decoder.inner_mae_min": "BPM",
    "decoder.inner_mae_no_evidence": "BPM", "decoder.inner_calibration_windows": "windows",
    "decoder.inner_coverage": "fraction of windows (target 0.9)", "decoder.inner_coverage_nominal":
    "fraction of windows, before calibration", "decoder.inner_gating": "fraction of MAE removed (top 80 %)",
    "decoder.inner_gating_mass": "fraction of MAE removed (top 80 %)",
    "decoder.inner_gating_width": "fraction of MAE removed (top 80 %)",
    "decoder.spread_shift": "S's weight 2^-shift per window", "decoder.spread_c_bpm": "BPM", "decoder.spread_k": "x S",
    "decoder.inner_interval_dev.posterior": "mean |a subject's coverage - 0.9|",
    "decoder.inner_interval_dev.spread": "mean |a subject's coverage - 0.9|",
    "budget.int8_weights": "int8 weights", "budget.int32_biases": "int32 biases", "budget.params": "parameters",
    "budget.macs": "MACs per window", "logit_scale": "x", "int8_minus_float_bpm": "BPM", "wall_s": "s",
    "uncertainty_int8.n": "windows", "uncertainty_int8.keep": "fraction kept",
}


def _unit(key: str) -> str:
    return METRIC_UNITS.get(key, "BPM" if key.endswith("_bpm") or ".mae" in key else "")


def _table(rows) -> list[str]:
    """rows: (key, value) -> a key | value | unit table; every row, none cut."""
    return ["| metric | value | unit |", "|---|---|---|"] + [f"| {k} | {v:.4g} | {_unit(k)} |" for k, v in rows]


def teacher_saw(metrics: dict) -> str | None:
    """What the teacher's fine-tuning saw of the held-out subjects, from the quantize run's metrics.json
    `heldout_in_teacher`: None when it held them out too (False, recorded by `train finetune`), else the clause
    that says it trained on them (True: it held none out) or may have (absent / None: fine-tuned before the
    fine-tune held subjects out, or a run that does not say)."""
    v = metrics.get("heldout_in_teacher")
    if v is False:
        return None
    return ("the teacher was fine-tuned on them (it held no subject out)" if v else
            "the teacher's fine-tuning may have trained on them (its run recorded no held-out subjects: fine-tuned "
            "before sqtool held them out of it)")


def metrics_sections(metrics: dict, held: list[str] | None = None) -> list[str]:
    """The card's metric sections from the source run's metrics.json. A quantize run's figures are written out by
    what they are: the held-out subjects' int8 MAE (mean of subjects, pooled over windows, per subject), the
    interval's held-out coverage against its 90 % target, the confidence's stated expected error against the error
    made, the top-80 %-by-confidence change; then the decoder's calibration on the TRAINING subjects' inner folds and
    its settings in a section of their own; every other numeric value in a last table (nothing is dropped).
    `held`: the held-out subjects as the export's metadata names them (model_card passes them); None: the
    metrics' own `heldout_subjects`."""
    if metrics.get("final_fit"):
        return final_fit_sections(metrics)
    flat = _flat_metrics(metrics)
    if not flat:
        return ["## Held-out metrics", "", "- no metrics.json in the source run: none reported here."]
    used: set[str] = set()

    def take(k, default=None):                      # a value written out by what it is: not in the last table
        if k not in flat:
            return default
        used.add(k)
        return flat[k]

    mae = metrics.get("mae_bpm") or {}
    held = [str(h) for h in (metrics.get("heldout_subjects") or [] if held is None else held)]
    quantized = isinstance(mae, dict) and "int8" in mae                        # a `sqtool quantize` run
    lines = []
    if quantized:
        n, dropped = take("uncertainty_int8.n"), take("heldout_truth.without_truth")
        for k in ("windows", "without_truth", "bpm_p1", "bpm_median", "bpm_p99"):
            take(f"training_truth.{k}")                              # said in the card's training-data section
        lines += ["## Held-out metrics", "",
                  f"Held-out subjects ({len(held)}: {', '.join(held)}"
                  f"{f'; {n} scored windows' if n is not None else ''}"
                  f"{f', {dropped} more without a reliable reference heart rate, not scored' if dropped else ''}), "
                  + (f"never in quantization; {saw}. " if (saw := teacher_saw(metrics)) else
                     "never in fine-tuning or quantization. ") +
                  "HR MAE in BPM of the decoded output (the HMM decoder, as the firmware reports it) unless stated.",
                  ""]
        int8 = take("mae_bpm.int8")                  # None: no held-out window had a reference heart rate
        lines.append((f"- **int8 (the shipped model), decoded: MAE {int8:.2f} BPM, mean of the {len(held)} subjects' "
                      "MAEs**" if int8 is not None else
                      "- int8 (the shipped model), decoded: MAE not measured (no held-out window with a reference)")
                     + (f"; {take('uncertainty_int8.mae_all'):.2f} BPM pooled over the {n} windows"
                        if "uncertainty_int8.mae_all" in flat else ""))
        labels = {"float": "float student, decoded", "teacher": "float teacher, decoded",
                  "int8_raw": "int8, per-window argmax bin (no decoder)",
                  "classic": "classic spectral baseline (no learned model; notch chosen on the training subjects)"}
        for k, text in labels.items():
            if f"mae_bpm.{k}" in flat:
                lines.append(f"- {text}: MAE {take(f'mae_bpm.{k}'):.2f} BPM, mean of subjects")
        if "int8_minus_float_bpm" in flat:
            lines.append(f"- int8 minus float (decoded, mean of subjects): {take('int8_minus_float_bpm'):+.3f} BPM")
        per = metrics.get("per_subject") or {}
        kinds = [k for k in ("int8", "float", "teacher", "int8_raw", "classic") if isinstance(per.get(k), dict)]
        if kinds and held:
            names = {"int8": "int8 decoded", "float": "float decoded", "teacher": "teacher decoded",
                     "int8_raw": "int8 argmax (no decoder)", "classic": "classic baseline"}
            lines += ["", "Per subject (MAE, BPM):", "",
                      "| subject | " + " | ".join(names[k] for k in kinds) + " |",
                      "|---|" + "---|" * len(kinds)]
            for h in held:
                cells = []
                for k in kinds:
                    key = f"per_subject.{k}.{h}"
                    cells.append(f"{take(key):.2f}" if key in flat else "-")
                lines.append(f"| {h} | " + " | ".join(cells) + " |")
        cb = metrics.get("classic_baseline") or {}
        if held and "classic" in kinds:
            lines += ["", f"Classic baseline: {cb.get('name', 'the spectral baseline')}: notch "
                          f"+-{cb.get('notch_bpm', float('nan')):g} BPM, PPG sensors {', '.join(cb.get('ppg_sensors', []))}; "
                          "on the same held-out windows, scored as the model is. It is what a team ships without a "
                          "learned model: where its column is lower, that subject is better served by it."]
        elif held:
            lines += ["", "Not in this table: the classic spectral baseline (spectrum peak with accelerometer "
                          "suppression and tracking), which needs the raw recordings. Its row for these subjects, "
                          "beside the model's, is `sqtool bench --model <this folder> --data <their recordings>` "
                          "(bench.md's per-subject and held-out tables); on a held-out subject it can be the better "
                          "of the two."]
        if "uncertainty_int8.interval_coverage" in flat:
            lines += ["", "Uncertainty of the int8 model on the held-out windows:", "",
                      f"- interval: holds the reference HR on {100 * take('uncertainty_int8.interval_coverage'):.1f} "
                      "% of the windows (target 90 %, calibrated on the training subjects)"
                      + (f"; median width {take('uncertainty_int8.interval_width_median'):.1f} BPM"
                         if "uncertainty_int8.interval_width_median" in flat else "")]
            if "uncertainty_int8.expected_error_stated" in flat and "uncertainty_int8.mae_all" in flat:
                lines.append(f"- confidence: the expected error it states averages "
                             f"{take('uncertainty_int8.expected_error_stated'):.2f} BPM; the error made was "
                             f"{flat['uncertainty_int8.mae_all']:.2f} BPM (pooled MAE)")
            if "uncertainty_int8.mae_top" in flat and "uncertainty_int8.mae_all" in flat:
                keep = take("uncertainty_int8.keep", 0.8)
                red = take("uncertainty_int8.gating_reduction")
                if red is None:
                    red = 1 - flat["uncertainty_int8.mae_top"] / flat["uncertainty_int8.mae_all"]
                lines.append(f"- keeping the {100 * keep:.0f} % most confident windows: MAE "
                             f"{flat['uncertainty_int8.mae_all']:.2f} -> {take('uncertainty_int8.mae_top'):.2f} BPM "
                             f"(pooled; {100 * abs(red):.1f} % {'lower' if red >= 0 else 'higher'})")
    dec = sorted(k for k in flat if k.startswith("decoder.") and k not in used)
    if dec:
        lines += ["", "## Decoder calibration on the training subjects (not held-out) and settings", "",
                  "The `inner_*` rows are measured on out-of-fold windows of the TRAINING subjects (the data the "
                  "interval and the confidence were calibrated on), not on the held-out subjects above.", ""]
        lines += _table([(k, take(k)) for k in dec])
    rest = [k for k in flat if k not in used]
    if rest:
        head = "Other recorded values (metrics.json)" if quantized else \
            "Metrics recorded by the source run (metrics.json, every numeric value)"
        lines += ([""] if lines else []) + [f"## {head}", ""] + _table([(k, flat[k]) for k in rest])
    return lines


def final_fit_sections(metrics: dict) -> list[str]:
    """A final fit's (`quantize --heldout-fraction 0`) metric sections: no held-out figure of its own; the held-out
    figures of its --estimate-from run (the same recipe with subjects held out) as an estimate, said to be one;
    then its own decoder settings and values."""
    est = metrics.get("estimate") or {}
    own = metrics_sections({k: v for k, v in metrics.items() if k not in ("final_fit", "estimate")}, [])
    if not est.get("metrics"):
        return ["## Held-out metrics", "", "- none: this model is a final fit on every subject (`sqtool quantize "
                "--heldout-fraction 0`) and no run of its recipe with held-out subjects was given (`--estimate-from`)",
                ""] + own
    m = est["metrics"]
    sec = metrics_sections(m, [str(h) for h in m.get("heldout_subjects") or []])
    intro = (f"This model was trained on every subject, these too. The figures below were measured by the quantize "
             f"run `{PurePath(str(est['run'])).name}` (its folder name: a shipped card holds no path), "
             "the same recipe run with them held out of its fine-tuning and quantization: an estimate of this model's "
             "error on new subjects, not a measurement of it.")
    sec = [ln.replace("int8 (the shipped model)", "int8 (that run's student, this model's recipe)") for ln in sec]
    return ["## Held-out estimate (the same recipe, run with subjects held out)", "", intro] + sec[1:] + [""] + own


def n_subjects(n: int) -> str:
    """'1 subject', '3 subjects'."""
    return f"{n} subject{'' if n == 1 else 's'}"


def pretraining_line(pre: dict) -> str:
    """The card's line on the self-supervised pretraining upstream (`core.runs.pretraining_of`): its subjects per
    dataset, or generated pairs."""
    per = {d: sum(k.split(":")[0] == d for k in pre["subjects"]) for d in pre["datasets"] if d != "synthetic"}
    return ("- self-supervised pretraining of the encoders (SimSiam on pairs of unlabelled PPG windows): "
            + (f"{n_subjects(len(pre['subjects']))} ({', '.join(f'{d} {n}' for d, n in per.items())})"
               if per else "generated (synthetic) pairs only")
            + (" and generated pairs" if per and "synthetic" in pre["datasets"] else ""))


def identity_lines(md: dict, content: str = "weights and model config, front end and decoder tables included"
                   ) -> list[str]:
    """The card's lines naming the model by its content (`content`: what model_sha256 covers) and its source file
    (metadata's model_sha256 / source_sha256, version, git)."""
    return [f"- model sha256 `{md.get('model_sha256') or 'not recorded'}`: its content ({content}), the same for "
            "every rebuild of this model",
            f"- source checkpoint file sha256 `{md.get('source_sha256')}` (the file holds its creation time and "
            f"paths: it changes with every run), exported by sqtool {md.get('sqtool_version')}, git "
            f"`{md.get('git_sha') or 'unknown'}`" + (" (-dirty: built with uncommitted changes)"
                                                    if str(md.get('git_sha') or '').endswith("-dirty") else "")]


@dataclass
class CardData:
    """What data_sections read, for the rest of a card: the source run's metrics.json, the subjects the model was
    trained and held out on (as the export's metadata names them), an estimate run's held-out subjects, whether the
    data were generated only."""
    metrics: dict
    seen: list
    held: list
    est_held: list
    synthetic_only: bool


def data_sections(md: dict, run_dir=None, names: dict | None = None, label_word: str = "reference heart rate"
                  ) -> tuple[list[str], CardData]:
    """A model card's "Training data and licences" and "Subject split" sections, for every model kind (the spectral
    card below, `export.time_docs`'s). The export metadata's `training_data` (the datasets and subjects the source
    checkpoint was trained and held out on, which `sqtool quantize` records) says what the model saw; the source
    run's train_info.json / metrics.json 'datasets' and 'split' take precedence where recorded. The
    self-supervised pretraining upstream of the run (`core.runs.pretraining_of`: its pairs' subjects) says whether
    the held-out subjects' unlabelled PPG was seen; where that chain cannot be read, they are 'held out of
    supervised training', never 'never trained on'. `names` (`export.subjects.subject_names`): the subjects written
    as pseudonyms, in the lists and the split alike (md's training_data is already so). `label_word`: what a
    dataset's labels are called for this model's task (DATASET_CONTENT's second part)."""
    from sqtool.core.runs import pretraining_of
    from sqtool.export.subjects import PSEUDONYM_FORM, renamed
    info = renamed(_run_info(run_dir), names or {})
    pre = pretraining_of(run_dir) if run_dir is not None else None
    if pre is not None and names:
        pre = {**pre, "subjects": renamed(list(pre.get("subjects") or []), names)}
    metrics = info.get("metrics.json") or {}
    train = info.get("train_info.json") or {}
    seen_by = md.get("training_data") or {}
    seen = list(seen_by.get("train_subjects") or [])
    held = list(seen_by.get("heldout_subjects") or [])       # as export's build_metadata wrote them (pseudonyms)
    datasets = (train.get("datasets") or metrics.get("datasets") or list(seen_by.get("datasets") or [])
                or ([str(metrics["dataset"])] if metrics.get("dataset") else []))   # a time-domain fine-tune's one
    layouts = {**(seen_by.get("dataset_layouts") or {}), **(metrics.get("dataset_layouts") or {}),
               **(train.get("dataset_layouts") or {})}           # absent in runs before they were recorded
    lines = ["## Training data and licences", ""]
    if datasets:
        for ds in datasets:
            shown, known = dataset_terms(ds, layouts)
            lines.append(f"- {shown}: {DATASET_LICENCES.get(known, SEE_MANIFEST)}")
            if known in DATASET_CONTENT:
                what, ref = DATASET_CONTENT[known]
                lines.append(f"  - recorded: {what}; {label_word}: {ref}")
            else:
                lines.append("  - activities, device and reference method: not known to sqtool (see the "
                             "dataset's own description)")
        for ds in [d for d in (pre or {}).get("datasets", []) if d not in datasets]:
            lines.append(f"- `{ds}` (self-supervised pretraining only): "
                         f"{_pretraining_licence(ds, pre.get('subjects') or [])}")
    else:
        lines.append("- not recorded in the source run (no train_info.json / metrics.json 'datasets', no training "
                     "subjects in the checkpoint); sqtool's built-in sources and their licences:")
        lines += [f"  - `{k}`: {v}" for k, v in DATASET_LICENCES.items()]
    tt = metrics.get("training_truth") or {}
    if tt.get("windows"):
        lines.append(f"- reference heart rate of the training subjects: {tt['windows']} windows"
                     + (f", {tt['without_truth']} of them without a reliable reference (none recorded, or one "
                        "the reader flagged as doubtful), never trained on" if tt.get("without_truth") else "")
                     + (f"; 1st-99th percentile {tt['bpm_p1']:g}-{tt['bpm_p99']:g} BPM, median {tt['bpm_median']:g}"
                        if tt.get("bpm_p1") is not None else ""))
    lines += ["", "## Subject split", ""]
    split = train.get("split") or metrics.get("split")
    est_held = [str(h) for h in ((metrics.get("estimate") or {}).get("metrics") or {}).get("heldout_subjects") or []]
    folds = [str(r["subject"]) for r in metrics.get("per_subject") or [] if isinstance(r, dict) and "subject" in r]
    if split:
        lines.append(f"- {json.dumps(split)}")
    elif not seen and folds:                           # a fine-tune's float model (a teacher): its run's subjects
        fheld = [str(h) for h in metrics.get("heldout_subjects") or []]
        lines.append(f"- fine-tuned on {n_subjects(len(folds))}: {', '.join(folds)} (each also scored out of fold: "
                     "the metrics below)")
        lines.append(f"- held out of the fine-tuning: {', '.join(fheld)} (`sqtool quantize` evaluates on them)" if fheld
                     else "- held out of the fine-tuning: none (`--heldout-fraction 0`)")
    elif seen and metrics.get("final_fit"):
        lines.append(f"- trained on {n_subjects(len(seen))}, every subject (a final fit: `sqtool quantize "
                     f"--heldout-fraction 0`): {', '.join(map(str, seen))}")
        lines.append(f"- none held out: the held-out estimate below is of the same recipe with {', '.join(est_held)} "
                     "held out" if est_held else "- none held out, and no held-out estimate recorded")
        if pre is not None and pre["runs"]:
            lines.append(pretraining_line(pre))
    elif seen:
        names = lambda ks: f"{n_subjects(len(ks))}{': ' + ', '.join(map(str, ks)) if ks else ''}"  # noqa: E731
        lines.append(f"- trained on {n_subjects(len(seen))}: {', '.join(map(str, seen))}")
        saw = teacher_saw(metrics)                     # None: out of the teacher's fine-tuning too
        only_q = saw and f"- held out of quantization (the metrics below): {names(held)}; {saw}"
        if pre is None:                                # the pretraining chain is not readable: claim no more
            lines.append(only_q or f"- held out of supervised training (fine-tuning and quantization; the metrics "
                                   f"below): {names(held)}")
        elif not pre["runs"]:                          # no pretraining upstream: nothing saw them
            below = ("its own sentence below" if isinstance(metrics.get("heldout"), dict) else "the metrics below")
            lines.append(only_q or f"- held out (never trained on; {below}): {names(held)}")
        else:
            generated = lambda k: str(k).split(":")[0] == "synthetic"              # noqa: E731
            # a generated recording is matched by its id only: the pairs' synthetic:syn003 is another recording
            in_pairs = [h for h in held if str(h) in pre["subjects"] and not generated(h)]
            lines.append((only_q or f"- held out of fine-tuning and quantization (the metrics below): {names(held)}")
                         + (f"; the unlabelled PPG of {', '.join(map(str, in_pairs))} was in the self-supervised "
                            "pretraining pairs (no heart rate)" if in_pairs else
                            "; the self-supervised pretraining pairs were generated recordings, none of the "
                            "held-out recordings" if held and all(map(generated, held)) else
                            "; none of them was in the self-supervised pretraining pairs"))
            lines.append(pretraining_line(pre))
    else:
        lines.append("- not recorded in the source run. sqtool evaluates by subject (leave-one-subject-out); "
                     "TROIKA's DATA_S04_T01 is excluded (likely an SP Cup test subject).")
    if seen_by.get("pseudonymised"):
        lines.append(f"- the subjects of {', '.join(f'`{d}`' for d in seen_by['pseudonymised'])} are pseudonyms "
                     f"({PSEUDONYM_FORM}); their ids stay with the developer")
    ctx = CardData(metrics=metrics, seen=seen, held=held, est_held=est_held, synthetic_only=datasets == ["synthetic"])
    return lines, ctx


def shipped_parity(out) -> str | None:
    """The parity windows' file an export folder ships (a C kit's folder ships none: synthetic test vectors only)."""
    return next((f for f in ("heldout.npz", "parity.npz") if (Path(out) / f).is_file()), None)


def parity_lines(md: dict, parity: str | None) -> list[str]:
    """A card's limitation lines on the parity windows its folder ships (`parity`: heldout.npz / parity.npz, None:
    none): whose windows they are, how their subjects are named (pseudonyms, a private dataset's own ids, public
    ids), and the datasets whose terms grant no redistribution (NO_REDISTRIBUTION)."""
    from sqtool.export.subjects import public_datasets
    if not parity:
        return []
    td = md.get("training_data") or {}
    hidden = td.get("pseudonymised") or []
    named = [d for d in td.get("datasets") or [] if d not in hidden]
    private = [d for d in named if d not in public_datasets()]
    lines = [f"- This folder's `{parity}` holds preprocessed windows of the "
             + ("training" if parity == "parity.npz" else "held-out") + " subjects, for the parity check: subject "
             "data; " + "; ".join(
                 ([f"{', '.join(hidden)}: pseudonyms (`--subjects`)"] if hidden else [])
                 + ([f"{', '.join(private)}: the subjects' own ids, as you exported them (`--subjects names`)"]
                    if private else [])
                 + ([f"{', '.join(d for d in named if d not in private)}: public ids (`export --subjects pseudonyms` "
                     "writes pseudonyms)"] if len(private) < len(named) else [])
                 or ["subjects as listed above"]) + "."]
    terms = [dataset_terms(d, td.get("dataset_layouts")) for d in td.get("datasets") or []]
    bound = [shown for shown, known in terms if known in NO_REDISTRIBUTION]
    if bound:
        lines.append(f"  Its terms: {', '.join(bound)} grant{'s' if len(bound) == 1 else ''} no "
                     "redistribution (above): check them before this folder leaves your organisation.")
    return lines


def interval_calibrated(mdec: dict) -> bool:
    """Whether a model cfg's decoder dict records the inner calibration of its interval (select_decoder's
    bookkeeping); a decoder written by hand, or left at its defaults, has none."""
    return "inner_calibration_windows" in mdec


def model_card(model_cfg: dict, md: dict, graph, fe_cfg, dec_cfg, run_dir=None, names: dict | None = None,
               parity: str | None = None) -> str:
    """MODEL_CARD.md of a spectral heart-rate model: its task and decoder, the model, `data_sections` (training data,
    licences, subject split), `metrics_sections` (held-out figures, or a final fit's estimate) and its limitations.
    `names` (`export.subjects.subject_names`): the subjects written as pseudonyms, the per-subject table too."""
    data, ctx = data_sections(md, run_dir, names)
    metrics, seen, held, est_held = ctx.metrics, ctx.seen, ctx.held, ctx.est_held
    tt = metrics.get("training_truth") or {}
    mdec = model_cfg.get("decoder") or {}
    cal = mdec.get("inner_calibration_datasets") or []                   # the training subjects' dataset(s)
    n_cal = mdec.get("inner_calibration_windows")
    cov = (metrics.get("uncertainty_int8") or {}).get("interval_coverage")
    cal_text = ((f"calibrated by sqtool on{f' {n_cal}' if n_cal else ''} out-of-fold windows of the training "
                 f"subjects{' of ' + ', '.join(cal) if cal else ''} to hold the truth on 90 % of them")
                if interval_calibrated(mdec) else "not calibrated: no inner calibration is on record for this model, "
                "so it may hold the truth on more or fewer windows than its nominal share")
    cal_text += f"; on the held-out subjects it held it on {100 * cov:.1f} %" if cov is not None else ""
    lines = [f"# Model card: {model_cfg['name']} (heart rate from wrist PPG + accelerometer)", "",
             "## Task", "",
             f"Heart rate (BPM) every {model_cfg['hop_s']:g} s from {model_cfg['window_s']:g} s windows of wrist "
             f"{', '.join(model_cfg['channels'])} at {fe_cfg.fs_in:g} Hz. The network scores {graph.output_size} "
             f"heart-rate bins ({dec_cfg.bins_bpm[0]:g}..{dec_cfg.bins_bpm[1]:g} BPM, step {dec_cfg.bins_bpm[2]:g}) "
             "from int8 power spectra; an HMM decoder (transition std "
             f"{dec_cfg.sigma_bpm:.3g} BPM per hop, jump floor {dec_cfg.floor:.3g}) tracks "
             f"{dec_cfg.emission_text} and reports the estimate, an interval ({dec_cfg.interval_text}, "
             f"{cal_text}) and a confidence "
             f"({dec_cfg.conf_text}).", "",
             "## Model", "",
             f"- family `{model_cfg.get('family')}`, arch `{json.dumps(model_cfg.get('arch'))}`",
             f"- quantization `{md.get('quant_scheme')}`: {md.get('quant_description')}",
             f"- {graph.macs} MACs per window, {graph.weight_bytes} bytes of weights and biases",
             *identity_lines(md), ""] + data
    lines += [""] + metrics_sections(metrics, held if "training_data" in md else None)
    lines += ["", "## Limitations", ""]
    if ctx.synthetic_only:
        lines.append("- **Trained on synthetic PPG only** (`sqtool demo`'s embedded default): its heart rates, "
                     "intervals and confidences on real recordings are not validated and can be confidently wrong. "
                     "Train on real recordings (`sqtool demo --data ../shared/data`, or your dataset file) before "
                     "using it on a wrist.")
    lab = ""
    if seen and not ctx.synthetic_only:                   # who the model saw, from the checkpoint's subjects
        per = Counter(str(k).split(":")[0] for k in seen)                       # first-seen order
        evaluated = (f"evaluated on {len(held)} held-out subject{'' if len(held) == 1 else 's'}" if held else
                     f"a final fit, its recipe evaluated on {len(est_held)} subject{'' if len(est_held) == 1 else 's'} "
                     "held out of another run" if est_held else "not evaluated on held-out subjects (a final fit)")
        lab = (f" (fine-tuned on {n_subjects(len(seen))}: {', '.join(f'{d} {n}' for d, n in per.items())}; "
               f"{evaluated}; "
               + (f"trained on heart rates of {tt['bpm_p1']:g}-{tt['bpm_p99']:g} BPM (1st-99th percentile): "
                  "outside them it has seen few or no examples" if tt.get("bpm_p1") is not None else
                  "the training heart-rate range is not recorded with the model")
               + "; age, sex and skin tone are not recorded in these datasets, so the card cannot say which groups "
               "they cover)")
    lines += [f"- Trained and evaluated on the data above only{lab}; not validated for clinical use, arrhythmia "
              "(AF), children, or skin tones / sensors outside the training data.",
              f"- The device must sample at {fe_cfg.fs_in:g} Hz (re-export with `--device-fs` for another rate) and "
              "deliver PPG with the scaling in INTEGRATION.md; saturation and dropouts should be flagged as gaps.",
              f"- A window whose every PPG sensor is quiet (its samples within {QUIET} counts over the window: a sensor "
              "that is off, stuck, railed or reads all zeros) is not scored: valid=0, as for a window more than "
              "half flagged. A sensor off the skin that reads noise is scored (valid=1, a heart rate at a confidence "
              "that can be high) but reported by `no_pulse` = 1 once the PPG's spectrum has been as flat as noise "
              "for 32 windows (a separate output: drop those results too). Measured "
              "(benchmarks/results/no_pulse_study.md): 0 real windows of TROIKA, wrist_exercise and a watch "
              "recording; with two PPG sensors every white-noise, hum, arm-swing-noise and 1/f-noise window; with "
              "one, about 90 % of the former three and almost no 1/f noise; random-walk drift and noise "
              "modulated by the arm's swing are not detected. Otherwise `valid` only repeats the gap flags the integrator passes in: the device must "
              "detect saturation and dropouts itself and flag them as gaps.",
              "- Reported HR is a tracker output: after a long dropout or a lock-on to a motion harmonic it "
              "needs a few hops to re-acquire. "
              + ("`conf_q15` states an expected error calibrated on the training subjects; on held-out subjects it "
                 "can be optimistic (see Held-out " + ("estimate" if metrics.get("final_fit") else "metrics") + ")"
                 if dec_cfg.conf_calib_x else
                 "`conf_q15` is the decoder's raw measure, not calibrated to an expected error (this model has no "
                 "calibration knots): it ranks windows, its value is not an error")
              + ", and it says nothing about a faulty sensor.",
              f"- Bins outside {dec_cfg.bins_bpm[0]:g}..{dec_cfg.bins_bpm[1]:g} BPM cannot be reported.",
              *(parity_lines(md, parity) or ["- The export folder holds no subject data: the test vectors are "
                                               "synthetic."]), ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the kit

def conf_range_text(dec) -> str:
    """A calibrated confidence's whole range for this model (its calibration table's ends) and the expected error
    each end states: what values firmware will see, so that a threshold is chosen inside them."""
    span = dec.conf_error_span                                               # None: not calibrated
    if not span:
        return ""
    lo, hi = min(dec.conf_calib_y), max(dec.conf_calib_y)
    err = lambda q: (1 - q / 32768) * span                                   # noqa: E731
    return (f"; this model's conf_q15 spans {lo} .. {hi} (expected error {err(lo):.1f} .. {err(hi):.1f} BPM): "
            "choose a threshold inside that range")


def write_board(folder: Path) -> list[Path]:
    """A kit's example/board/ (BOARD_FILES) into `folder`, atomically; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in BOARD_FILES:
        src = TEMPLATES / f"kit_{name}" if name.startswith("boards.") else BOARD_DIR / name
        atomic_write_bytes(folder / name, src.read_bytes())
    return [folder / name for name in BOARD_FILES]


def write_kit(out_dir, model_cfg: dict, graph, md: dict, fs_in: float | None = None, prefix: str = "sq",
              decoder=None, run_dir=None, n_ppg: int = 1, names: dict | None = None,
              acc_fs: float | None = None) -> dict:
    """Write the whole kit into out_dir (see the module docstring) for a device with n_ppg PPG sensors; `names`:
    the subjects the model card writes as pseudonyms; `acc_fs`: the accelerometer's own rate when it differs from
    the device rate (c/<prefix>_acc_resampler.*, `export.c_acc`). Returns {"files", "ref", "vectors"}."""
    out = Path(out_dir)
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    rp = render_pipeline(mc, graph, md, out / "c", fs_in, prefix, decoder, n_ppg)
    ref = PipelineRef(mc, graph, rp["dec_cfg"], rp["fe_cfg"].fs_in, n_ppg)
    fe = rp["fe_cfg"]
    files = list(rp["files"])
    acc_fs = float(acc_fs) if acc_fs and float(acc_fs) != float(fe.fs_in) else None   # None: the device rate
    if acc_fs:
        from sqtool.export.c_acc import render_acc_resampler
        files += render_acc_resampler(acc_fs, fe.fs_in, out / "c", prefix)
        acc_paths, acc_vec = write_acc_vectors(out, acc_fs, fe.fs_in, prefix)
        files += acc_paths
    else:                                      # a re-export (--force) without it: no stale resampler or its check
        acc_vec = None
        for f in [*(out / "c").glob(f"{prefix}_acc_resampler*"), *(out / k for k in ACC_CHECK_FILES)]:
            f.unlink(missing_ok=True)
    ex = out / "example"
    (ex / "board").mkdir(parents=True, exist_ok=True)
    atomic_write_text(ex / "main.c", rename((TEMPLATES / "kit_main.c").read_text(), prefix))
    atomic_write_text(ex / "selftest.c", rename((TEMPLATES / "kit_selftest.c").read_text(), prefix))
    files += [ex / "main.c", ex / "selftest.c"]
    files += write_board(ex / "board")
    values = {"PREFIX": prefix, "PREFIX_UP": prefix.upper(), "MODEL": mc["name"],
              "VERSION": md.get("sqtool_version", "?"), "FS_IN": f"{rp['fe_cfg'].fs_in:g}",
              "CHANNELS": ", ".join(mc["channels"]), "NCH": len(mc["channels"]), "N_PPG": fe.n_ppg,
              "NIN": fe.n_inputs, "INPUTS": ", ".join(input_channels(fe)), "FS_MHZ": int(round(fe.fs_in * 1000)),
              "PPG_NOTE": ("the ppg channel is the mean of the two sensors' spectra, each normalised to its max"
                           if fe.n_ppg == 2 else "one sensor"),
              "WINDOW_S": f"{float(mc['window_s']):g}", "HOP_S": f"{float(mc['hop_s']):g}",
              "STATE_BYTES": "see sizeof", "ARENA": "?", "MACS": graph.macs, "WEIGHT_BYTES": graph.weight_bytes,
              "NBINS": graph.output_size, "CONF_TEXT": rp["dec_cfg"].conf_text + conf_range_text(rp["dec_cfg"]),
              "EMISSION_TEXT": rp["dec_cfg"].emission_text,
              "INTERVAL_NOTE": ("calibrated to hold the truth on 90 % of the training subjects' windows"
                                if interval_calibrated(mc.get("decoder") or {}) else
                                "(not calibrated: no inner calibration on record, see MODEL_CARD.md)"),
              "QUIET": QUIET, "GAIN_PPG": f"{rp['fe_cfg'].gain_ppg:g}", "GAIN_ACC": f"{rp['fe_cfg'].gain_acc:g}",
              **acc_values(acc_fs, fe, prefix), **acc_axes_values(fe)}
    from sqtool.export.c import arena_plan
    values["ARENA"] = sum(arena_plan(graph))
    values["STATE_BYTES"] = _state_bytes(out / "c", prefix)
    vec = write_test_vectors(out, ref, prefix, acc_vec)
    values["VEC_FLASH_KB"] = round(vec["flash_bytes"] / 1000)
    values["NOISE_S"] = f"{vec['noise_check']['seconds']:g}"
    values["NOISE_WINDOWS"] = ref.pulse_rule[0] if ref.pulse_rule else 16
    for tmpl, name in (("kit_Makefile", "Makefile"), ("kit_CMakeLists.txt", "CMakeLists.txt"),
                       ("kit_README.md", "README.md")):
        atomic_write_text(out / name, _fill((TEMPLATES / tmpl).read_text(), values))
        files.append(out / name)
    files += [out / "test_vectors" / n for n in ("recording.bin", "expected.txt", "vectors.json", "check.cmake",
                                                 f"{prefix}_vectors.h")]
    files += write_docs(out, mc, graph, md, fe.fs_in, fe.n_ppg, run_dir, names, rp["dec_cfg"])
    return {"files": files, "ref": ref, "vectors": vec, "fe_cfg": rp["fe_cfg"], "dec_cfg": rp["dec_cfg"]}


@dataclass(frozen=True)
class FloatNet:
    """What the documents read of a network that has no int8 graph (a float-only export: a teacher, a float
    student): its bins and size; its logits are real-valued (output_scale 1: the decoder's temperature alone)."""
    output_size: int
    macs: int
    weight_bytes: int
    output_scale: float = 1.0
    int8: bool = False


def float_net(model_cfg: dict) -> FloatNet:
    """FloatNet of a spectral model config (`models.spectral.spectral_budget`: float32 weights and biases)."""
    from sqtool.models import ModelCfg
    from sqtool.models.spectral import bin_grid, spectral_budget
    cfg = ModelCfg.from_dict(model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg))
    b = spectral_budget(cfg)
    return FloatNet(output_size=len(bin_grid(cfg)), macs=int(b["macs"]), weight_bytes=4 * int(b["params"]))


def scale_texts(graph, spec: dict) -> dict:
    """INTEGRATION.md's words on the network's output scale: an int8 export's codes and their per-code scale for the
    decoder; a float-only export's real-valued logits, which the decoder divides by the temperature alone."""
    t = f"{spec['temperature']:g}"
    if getattr(graph, "int8", True) and spec.get("int8_logit_scale") is not None:
        return {"OUTPUT_CODES": "float models give them real-valued, int8 TFLite / C give codes: logit = code x "
                                f"{float(graph.output_scale):.9g} (`quantization.output_scale`)",
                "SCALE_TEXT": f"For int8 codes the per-code scale is **{spec['int8_logit_scale']:.9g}** "
                              f"(`decoder_spec.int8_logit_scale` = output_scale / temperature {t})."}
    return {"OUTPUT_CODES": "real-valued (this export holds float models only: no int8 codes)",
            "SCALE_TEXT": f"The float logits z enter the decoder as z / {t} (the temperature; this export has no int8 "
                          "model, so no `decoder_spec.int8_logit_scale`)."}


def fixed_point_texts(spec: dict) -> dict:
    """INTEGRATION.md's words on the fixed-point decoder: an int8 export's steps (decoder_spec.fixed_point_steps, the
    tables named), or, where the spec has none (a float-only export, or metadata older than them), one line."""
    steps = spec.get("fixed_point_steps")
    if not steps:
        return {"DECODER_FIXED": "The fixed-point decoder reads int8 codes: this export has no int8 model, so its "
                                 "`decoder_spec` has no `fixed_point_steps`; `sqtool predict` runs the float decoder "
                                 "above.",
                "CHECK_FIXED": "this export's predict runs the float decoder above."}
    return {"DECODER_FIXED": "### Fixed point (`decoder_spec.fixed_point_steps`, tables in "
                             "`decoder_spec.fixed_point_tables`)\n\nWhat the C kit and `sqtool predict` run on the "
                             "int8 codes, step by step: a port of these steps with those tables (taps_q15, lut_q24, "
                             "start_q20" + "".join(f", {k}" for k in ("evidence_pen", "calib_x_q15", "calib_y_q15")
                                                   if k in spec.get("fixed_point_tables", {}))
                             + "; `constants` repeats the NAME = value numbers) gives their hr, lo, hi and conf bit "
                             "for bit (a float implementation of the equations above can pick the other bin or peak where two "
                             "nearly tie).\n\n"
                             + "\n".join(f"{i}. {t}" for i, t in enumerate(steps, 1)),
            "CHECK_FIXED": "a port of the fixed-point decoder (`decoder_spec.fixed_point_steps`) gives its hr, lo, "
                           "hi and conf exactly on every window."}


# an export's network files, those its documents name (each only where the folder holds it)
MODEL_FILES = ("model_float.onnx", "model_float_batch.onnx", "model_int8.onnx", "model_float.tflite",
               "model_int8.tflite", "c/sq_model.h")
FLOAT_FILES = tuple(f for f in MODEL_FILES if f.startswith("model_float"))    # a float-only export's


def network_texts(graph, out: Path, nbins: int, nch: int) -> dict:
    """INTEGRATION.md's words on the network's files and their inputs: an int8 export's every kind (its kit writes
    them before its other targets); a float-only export's the float files its folder holds, and no int8 one."""
    shapes = {"model_float.onnx": f"`model_float.onnx` takes codes / 127 as float32 (1, {nch}, {nbins}) channels-first",
              "model_float_batch.onnx": f"`model_float_batch.onnx`, the float ONNX with a batch axis: (B, {nch}, "
                                        f"{nbins}), many windows per call",
              "model_float.tflite": f"`model_float.tflite` takes codes / 127 as float32 (1, 1, {nbins}, {nch})"}
    if getattr(graph, "int8", True):
        return {"NETWORK_FILES": "`model_*.onnx`, `model_*.tflite`, `c/`",
                "NETWORK_INPUT": f"float ONNX / TFLite and int8 ONNX take codes / 127 as float32 (1, {nch}, {nbins}) "
                                 f"channels-first (TFLite float: (1, 1, {nbins}, {nch}); `model_float_batch.onnx`, the "
                                 f"float ONNX with a batch axis: (B, {nch}, {nbins}), many windows per call); TFLite "
                                 f"int8 takes the codes themselves (1, 1, {nbins}, {nch})"}
    files = [f for f in FLOAT_FILES if (out / f).is_file()]
    return {"NETWORK_FILES": ", ".join(f"`{f}`" for f in files) or "the float model",
            "NETWORK_INPUT": "; ".join(shapes[f] for f in files) or "codes / 127 as float32"}


def write_docs(out_dir, model_cfg: dict, graph, md: dict, fs_in: float | None = None, n_ppg: int = 1,
               run_dir=None, names: dict | None = None, decoder=None) -> list[Path]:
    """MODEL_CARD.md and INTEGRATION.md (templates/INTEGRATION.md: what must run around the network, for an
    integrator without sqtool, filled from the metadata's spectral contract) of a spectral model, for every
    export target; `graph` None: a float-only export (its int8 lines say there is no int8 model). Returns their
    paths."""
    from sqtool.export.pipeline import decoder_config, frontend_config
    out = Path(out_dir)
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    graph = float_net(mc) if graph is None else graph
    fe, dec = frontend_config(mc, fs_in, n_ppg), decoder_config(mc, graph, decoder)
    spec, gating, fec = md.get("decoder_spec"), md.get("gating"), md.get("frontend") or {}
    if not spec or not gating or "steps" not in fec:
        raise SqtoolError(f"export of {mc.get('name')}: the metadata lacks the spectral contract (frontend steps, "
                          "gating, decoder_spec) the integration document is written from")
    lo, hi, step = dec.bins_bpm
    values = {"MODEL": mc["name"], "VERSION": md.get("sqtool_version", "?"), "MODEL_SHA": md.get("model_sha256"),
              "NBINS": dec.n_bins, "FS_IN": f"{fe.fs_in:g}", "FS": f"{fe.fs:g}", "INPUTS": ", ".join(input_channels(fe)),
              "WINDOW_S": f"{fe.window_s:g}", "HOP_S": f"{fe.hop_s:g}", "NCH": fe.n_channels,
              "CHANNELS": ", ".join(mc["channels"]), "BIN_LO": f"{lo:g}", "BIN_HI": f"{hi:g}", "BIN_STEP": f"{step:g}",
              **scale_texts(graph, spec), **network_texts(graph, out, dec.n_bins, fe.n_channels),
              **fixed_point_texts(spec),
              "TEMPERATURE": f"{spec['temperature']:g}",
              "FRONTEND_STEPS": "\n".join(f"{i}. {t}" for i, t in enumerate(fec["steps"], 1)),
              "GATING_RULE": gating["rule"], "FLAGGED": gating["flagged"],
              "NO_PULSE_RULE": (gating.get("no_pulse") or {}).get("rule", "not in this export (always 0)"),
              "DECODER_SPEC": "\n".join(f"- {k}: {v}" for k, v in spec.items() if isinstance(v, str) and k != "format"),
              "CONF_TEXT": dec.conf_text + conf_range_text(dec), **replay_values(mc, fe), **acc_axes_values(fe)}
    atomic_write_text(out / "INTEGRATION.md", _fill((TEMPLATES / "INTEGRATION.md").read_text(), values))
    atomic_write_text(out / "MODEL_CARD.md", model_card(mc, md, graph, fe, dec, run_dir, names, shipped_parity(out)))
    return [out / "MODEL_CARD.md", out / "INTEGRATION.md"]


# an accelerometer slower than the PPG (benchmarks/acc_rate.py, 2026-12-01: the real-data demo's model through the
# pipeline's integer reference on TROIKA's 13 and wrist_exercise's 13 recordings)
ACC_RATE_TEXT = ("one accelerometer sample per PPG sample: an accelerometer that runs slower is brought to the device "
                 "rate before the push. Measured with sqtool's real-data demo model (not necessarily this one) on the 7 "
                 "recordings of TROIKA and wrist_exercise it never trained on: from 50 Hz, holding the latest sample "
                 "for every PPG sample (no arithmetic) changed the MAE by +0.04 BPM pooled (+0.17 on one recording); "
                 "from 25 Hz by +0.19 pooled (+1.0 on one recording), where an interpolating polyphase filter "
                 "(scipy.signal.resample_poly's, what sqtool predict does) cost +0.04, the C kit's integer one "
                 "(`sqtool export --target c --device-acc-fs HZ`) +0.02 (comparable), linear interpolation +0.73. "
                 "An accelerometer that runs faster: low-pass it below half the device rate and take one sample per "
                 "PPG sample (the C kit's resampler does both; not measured)")


ACC_CHECK_FILES = ("example/acc_check.c", "test_vectors/acc_in.bin", "test_vectors/acc_expected.bin")


def write_acc_vectors(out: Path, acc_fs: float, fs_in: float, prefix: str
                      ) -> tuple[list[Path], tuple[np.ndarray, np.ndarray]]:
    """The accelerometer resampler's check: example/acc_check.c and test_vectors/acc_in.bin (10 s of a synthetic
    accelerometer at acc_fs: an arm swing, gravity, noise, a railed stretch; int16 LE x, y, z triples) with
    acc_expected.bin (the reference's outputs at fs_in), which `make check` compares for several chunkings.
    Returns (the paths, (the input (M, 3), the expected (K, 3)): the self-test's vectors too)."""
    from sqtool.data.acc_resampler import resample_acc
    rng = np.random.default_rng(0)
    t = np.arange(int(round(10 * acc_fs))) / acc_fs
    x = np.stack([12000 * np.sin(2 * np.pi * 1.7 * t), 4096 + 3000 * np.sin(2 * np.pi * 0.4 * t + 1.0),
                  rng.normal(0, 2500, t.size)], axis=1)
    x[len(t) // 3: len(t) // 3 + max(2, len(t) // 20), 0] = 32767
    x16 = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    vec = out / "test_vectors"
    vec.mkdir(parents=True, exist_ok=True)
    check, given, want = (out / k for k in ACC_CHECK_FILES)
    expected = resample_acc(x16, acc_fs, fs_in)
    atomic_write_bytes(given, x16.astype("<i2").tobytes())
    atomic_write_bytes(want, expected.astype("<i2").tobytes())
    check.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(check, rename((TEMPLATES / "kit_acc_check.c").read_text(), prefix))
    return [given, want, check], (x16, expected)


def acc_values(acc_fs: float | None, fe, prefix: str) -> dict:
    """The kit README's accelerometer words: its table row, the `acc` bullet (ACC_RATE), and, with the resampler
    (`acc_fs`: the accelerometer's own rate, exported with --device-acc-fs), its file row and a section on feeding two
    FIFOs."""
    if fe.n_channels < 2:
        return {"ACC_ROW": "none (the model reads no accelerometer)", "ACC_RATE": "the model reads no accelerometer",
                "ACC_SECTION": "", "ACC_FILES": ""}
    if acc_fs is None:
        return {"ACC_ROW": f"at the device rate, one sample per PPG sample (another rate: re-export with "
                           f"`--device-acc-fs HZ` for the kit's resampler)", "ACC_RATE": ACC_RATE_TEXT,
                "ACC_SECTION": "", "ACC_FILES": ""}
    from sqtool.data.acc_resampler import CUTOFF, design_acc
    tab = design_acc(acc_fs, fe.fs_in)
    per = (f"every input sample gives exactly {tab.up} outputs" if tab.down == 1 else
           f"every {tab.down} input samples give {tab.up} output{'s' * (tab.up > 1)}; `{prefix}_acc_rs_count(&ars, m)` "
           "says how many a push of m makes")
    measured = (f" Down-sampling: it low-passes at {CUTOFF * min(acc_fs, fe.fs_in):g} Hz first; not measured on "
                "recordings."
                if acc_fs > fe.fs_in else
                " Measured by sqtool's benchmarks/acc_rate.py from 25 Hz on the 7 recordings its demo model never "
                "trained on: +0.02 BPM pooled against the recorded accelerometer, +0.20 on one recording (comparable "
                "to a float polyphase filter's +0.04); holding the latest sample cost +0.19 and +1.02.")
    section = f"""## Accelerometer at its own rate (`c/{prefix}_acc_resampler.h`)

The pipeline takes one accelerometer sample per PPG sample at {fe.fs_in:g} Hz; your accelerometer runs at {acc_fs:g} Hz.
Pass each accelerometer FIFO read through `{prefix}_acc_rs_push(&ars, acc_in, m, acc_out, max_out)` ({per}, from the
first call on; `{prefix.upper()}_AR_MAX_OUT(m)` bounds it) and queue its outputs; queue the PPG samples apart. After each
interrupt push n = min(queued PPG, queued accelerometer) time steps to `{prefix}_pipeline_push` and keep the rest: the
pipeline does not care about chunk sizes. Initialise both with the rates your drivers configured
(`{prefix}_pipeline_init_device`; `{prefix}_acc_rs_init_fs(&ars, acc_fs_mhz)` refuses any accelerometer rate but
{round(acc_fs * 1000)} mHz with `{prefix.upper()}_AR_ERR_RATE`: samples at another rate would drift away from the PPG's
without an error) together, before the first samples of either. Queue sizes: with PPG FIFO reads of P samples and accelerometer reads of
m samples, each queue holds at most P + A time steps, A = `{prefix.upper()}_AR_MAX_OUT(m)`, whether you push after
every interrupt or in fixed chunks of P. The two sensors' clocks drift apart: a queue that keeps growing means one
runs fast; repeat or drop one accelerometer sample to correct it (never drop PPG samples: push them as gaps). At the
end of a recording read the last partial FIFOs of both, then push the min. The resampled accelerometer lags the PPG by
`{prefix.upper()}_AR_DELAY_US` ({tab.delay_us / 1000:g} ms): the power
spectra over {fe.window_s:g} s windows do not see it. Cost: {tab.table_bytes} B of taps, `sizeof({prefix}_acc_rs_t)`
of state, {3 * tab.taps} multiply-adds per output sample. `make check` also runs `example/acc_check.c`: the resampler
against sqtool's reference (`test_vectors/acc_in.bin` -> `acc_expected.bin`, int16 x, y, z triples) in several chunk
sizes. On your board `{prefix}_selftest()` (`example/selftest.c`, below) checks it too: the same vectors are compiled
into `test_vectors/{prefix}_vectors.h`, streamed through `{prefix}_acc_rs_push` in chunks of 1, 5, 7 and 64 samples
after the pipeline's check, and any output that differs returns `{prefix.upper()}_SELFTEST_ERR_ACC` (-16; exit status
101 with `make selftest` / `selftest-an386`).{measured}

"""
    return {"ACC_ROW": f"**{acc_fs:g} Hz**, brought to {fe.fs_in:g} Hz by `c/{prefix}_acc_resampler.h` (see "
                       "\"Accelerometer at its own rate\")",
            "ACC_RATE": f"at {fe.fs_in:g} Hz, one sample per PPG sample: pass your {acc_fs:g} Hz samples through "
                        f"`{prefix}_acc_rs_push` first (see \"Accelerometer at its own rate\")",
            "ACC_SECTION": section,
            "ACC_FILES": (f"\n| `c/{prefix}_acc_resampler.{{h,c}}`, `c/{prefix}_acc_resampler_tables.h` | the accelerometer "
                          f"from {acc_fs:g} Hz to {fe.fs_in:g} Hz (integer polyphase filter) |\n| `example/acc_check.c`, "
                          "`test_vectors/acc_in.bin`, `acc_expected.bin` | its check against sqtool's reference "
                          "(`make check`) |")}


# the accelerometer's axes (benchmarks/acc_axes.py, 2026-12-07: the real-data demo model through PipelineRef on TROIKA's
# 13 and wrist_exercise's 13 recordings, the axes' int16 counts negated or permuted)
AXES_MEASURED = ("sqtool's real-data demo model (not necessarily this one) through the pipeline's integer reference on "
                 "the 26 recordings of TROIKA and wrist_exercise (`benchmarks/acc_axes.py`, 2026-12-07)")


def acc_axes_values(fe) -> dict:
    """What the model expects of the accelerometer's x, y, z: INTEGRATION.md's section (ACC_AXES) and the kit README's
    words (ACC_AXES_NOTE), by how the front end reads the axes: three channels of their own (n_channels 4: their
    order matters, their sign and scale do not), their powers summed (2: orientation-free), none (1)."""
    if fe.n_channels < 2:
        return {"ACC_AXES": "", "ACC_AXES_NOTE": ""}
    units = (f"Units: none to declare. Gravity (the DC) is removed by the band-pass (step 3), and each spectrum is "
             f"scaled to its own maximum per window, so g, m/s^2 or raw counts give the same codes up to rounding as long as "
             f"the int16 counts resolve the motion and do not clip: at least about 1000 counts per g (the C kit assumes "
             f"{fe.gain_acc:g} counts per g, a +-8 g 16-bit part; whole m/s^2, about 10 counts per g, hid the motion "
             f"spectra of a running recording: MAE 66.6 -> 90.7 BPM)")
    if fe.n_channels == 2:
        return {"ACC_AXES": f"""## Accelerometer axes

The front end sums the three axes' powers into ONE acc channel (step 6): the codes do not depend on the order of the
axes (permuting them gives the same codes, bit for bit) nor on how the sensor is turned on the wrist (a rotation of
its frame leaves the summed power unchanged, up to rounding); a negated axis changes only the integer rounding of its
spectrum. The three axes must share one gain (one sensor's counts per g): their powers are added on one scale.
{units}.

""", "ACC_AXES_NOTE": " (any order and orientation: the model sums the axes' powers; one gain for the three)"}
    return {"ACC_AXES": f"""## Accelerometer axes

The front end treats the three axes alike and each on its own (steps 1-5 per row: a power spectrum per axis, scaled
per window and channel), and the network reads them as three channels (acc_x, acc_y, acc_z) with weights of their own:
the ORDER of the axes is part of this model's contract; their signs and their units are not.

- Order: x, y, z as the training recordings give them (sqtool's readers of TROIKA and wrist_exercise, in g; by
  gravity's direction there: y along the forearm, it holds gravity when the arm hangs, walking or running; z normal
  to the watch face, it holds gravity with the palm down; x across the wrist, it holds gravity with the thumb up: a
  forearm held level, some riders and runners). Another order of the same samples gives
  the same codes in other channels (bit for bit) and another heart rate: measured with {AXES_MEASURED}, the five
  other orders moved the heart rate by 5.0-12.6 BPM on average (TROIKA alone 0.7-3.3), up to 115 BPM on single
  windows, and the MAE from 5.96 to 7.31-12.42 BPM. Map your sensor's axes onto these before the push.
- Signs: a negated axis (the watch on the other wrist, a sensor mounted the other way up) has the same power
  spectrum up to the integer rounding, which is not symmetric: measured as above, one to three negated axes changed
  0.3-1.0 % of the codes, by 4 at most, and the heart rate by 0.06-0.12 BPM on average (MAE 5.96 -> 5.92-5.94 BPM).
  Either sign works; the codes are bit-exact only with the signs `sqtool predict` (or the test vectors) was fed.
- {units}. Each axis may have its own gain: each is scaled on its own.

""", "ACC_AXES_NOTE": (" (their order matters, their signs and units do not: see \"Accelerometer axes\" in "
                       "`INTEGRATION.md`)")}


def replay_values(mc: dict, fe) -> dict:
    """INTEGRATION.md's words on how `sqtool predict` replays a float recording for this model
    (`data.hr_spectra.stream_channels`, `device_stream`): the PPG sensors it reads, the accelerometer channels,
    how the accelerometer rows get their gains."""
    from sqtool.data.hr_spectra import ppg_sensors, shared_acc_gain
    acc = fe.n_channels > 1
    return {"PPG_SENSORS": ", ".join(ppg_sensors(mc)), "N_PPG": fe.n_ppg,
            "ACC_FED": ("the acc_x, acc_y, acc_z rows are the recording's channels of those names, as sqtool's "
                        "readers name them (wrist_exercise: its low-noise accelerometer, m/s^2 / 9.80665; its "
                        "wide-range one is not read)" if acc else "the model reads no accelerometer"),
            "ACC_RATE": (ACC_RATE_TEXT if acc else "the model reads no accelerometer"),
            "GAIN_SHARE": ("the three accelerometer rows share one gain, from the largest of their three "
                           "percentiles, as the model reads their summed power" if acc and shared_acc_gain(mc) else
                           "each row its own gain, each accelerometer axis too")}


def _state_bytes(c_dir: Path, prefix: str) -> str:
    """sizeof(<prefix>_pipeline_t) on the host (gcc), or '?' without a compiler."""
    import tempfile
    src = (f'#include <stdio.h>\n#include "{prefix}_pipeline.h"\n'
           f'int main(void) {{ printf("%lu", (unsigned long)sizeof({prefix}_pipeline_t)); return 0; }}\n')
    with tempfile.TemporaryDirectory() as tmp:
        c, exe = Path(tmp) / "s.c", Path(tmp) / "s"
        c.write_text(src)
        try:
            r = subprocess.run(["gcc", "-std=c99", f"-I{c_dir}", str(c), "-o", str(exe)], capture_output=True,
                               timeout=60)
            if r.returncode != 0:
                return "?"
            return subprocess.run([str(exe)], capture_output=True, text=True, timeout=10).stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            return "?"


def check_kit(out_dir, chunkings=CHUNKINGS, make: str = "make") -> dict:
    """Build the kit's example on the host with its own Makefile and compare every chunking with
    test_vectors/expected.txt. Returns {"ok", "n", "chunkings": {c: exact_pct}, "error"}."""
    import tempfile
    with tempfile.TemporaryDirectory() as build:
        return _check_kit(Path(out_dir), Path(build), chunkings, make)


def _check_kit(out: Path, build: Path, chunkings, make: str) -> dict:
    try:
        r = subprocess.run([make, "-s", "-C", str(out), f"BUILD={build}", "host"], capture_output=True, text=True,
                           timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        return {"ok": False, "n": 0, "chunkings": {}, "error": f"make failed to run ({type(e).__name__})"}
    if r.returncode != 0:
        msg = next((ln for ln in (r.stderr or r.stdout).splitlines() if "error" in ln.lower()), r.stderr[:200])
        return {"ok": False, "n": 0, "chunkings": {}, "error": f"kit host build failed: {msg.strip()}"}
    want = parse_results((out / "test_vectors" / "expected.txt").read_text())
    res, ok, worst = {}, True, 0
    for c in chunkings:
        p = subprocess.run([str(build / "host" / "example"), str(out / "test_vectors" / "recording.bin"), c],
                           capture_output=True, text=True, timeout=120)
        got = parse_results(p.stdout) if p.returncode == 0 else None
        if got is None or len(got["index"]) != len(want["index"]):
            res[c], ok = 0.0, False
            continue
        same = np.all(np.stack([got[k] == want[k] for k in want]), axis=0)
        worst = max(worst, int(max(np.abs(got[k].astype(np.int64) - want[k]).max(initial=0) for k in want)))
        res[c] = float(100.0 * same.mean()) if len(same) else 100.0
        ok = ok and bool(same.all())
    return {"ok": ok, "n": int(len(want["index"])), "chunkings": res, "max_abs_diff": worst, "error": None}


__all__ = ["write_kit", "write_docs", "check_kit", "synthetic_recording", "write_test_vectors", "model_card", "CHUNKINGS"]
