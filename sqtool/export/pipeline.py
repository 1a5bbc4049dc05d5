"""The whole heart-rate monitor as firmware: its Python integer reference and its C sources.

    ref = PipelineRef(model_cfg, graph, decoder=None, fs_in=125.0, n_ppg=1)
    ref.push(ppg, acc, gap) -> [ {index, hr_mbpm, lo_mbpm, hi_mbpm, conf_q15, flagged_q15, valid, no_pulse}, ... ]
    ref.run(x16 (C_in, N), gap, chunk=None) -> dict of (W,) int arrays (the same keys)
    render_pipeline(model_cfg, graph, md, out_dir, fs_in=None, prefix="sq", n_ppg=1) -> {"files": [...], ...}

Pipeline (one result per hop, integer arithmetic only after the export-time tables):

    int16 ppg (n_ppg sensors, interleaved per time step) [+ acc x, y, z] at fs_in, gap flags
      -> FrontEnd (sqtool.data.frontend: gap hold, polyphase resampler, causal band-pass, windows,
         int8 spectrum codes (F, C) and the window's flagged fraction flagged_q15)
      -> if flagged_q15 <= MAX_FLAGGED_Q15 (at most half of the window's inputs flagged) and the window's PPG
         is not quiet (not every PPG sensor's resampled samples within QUIET counts: stuck, railed, all-zero):
         the network's integer graph (sqtool.export.reference.run, mode ROUNDING) -> F int8 logits; else the
         window is not scored (valid = 0) and the decoder only predicts
      -> IntDecoder (sqtool.models.decoder, logit_scale = the graph's output scale; a decoder with evidence
         also reads the window's spectrum codes) -> hr/lo/hi (milli-BPM), conf_q15
      -> pulse presence from the same codes (`flatness_q8`, `no_pulse`): no_pulse = 1 when the ppg channel's spectrum
         has been as flat as noise over the last NO_PULSE_WINDOWS windows (a separate output, valid unchanged)

Rounding: the pipeline uses SINGLE rounding (`SQ_SINGLE_ROUNDING=1`, one rounding of the exact 64-bit
product): that is Brevitas's integer arithmetic, i.e. what QAT trained and what the int8 accuracy
figures (`compress.hr_qat.int8_logits`) were measured with. The exported sq_model.h defaults to it and
sq_pipeline.c refuses to compile with double rounding.

The C (`templates/sq_pipeline.{h,c}` + the front end, decoder and network sources, all rendered with one
symbol prefix) equals this reference bit for bit for every chunk size and with dropouts
(tests/export/test_c_pipeline.py). `render_pipeline` also:
  - makes the network's activation arena placeable: `static ... sq_arena_words[...] SQ_ARENA_SECTION;`
    (define SQ_ARENA_SECTION as a section attribute; empty by default);
  - writes `<prefix>_pipeline_cfg.h` (device rate in mHz, PPG sensors, rounding, model name).
The sample-rate contract is checked at export (the front end refuses an awkward ratio; a model without a
spectral front end is refused) and at init (`sq_pipeline_init_fs` returns SQ_PL_ERR_RATE on a mismatch).

PPG sensors: n_ppg (1 or 2) is the DEVICE's, fixed at export (SQ_FE_N_PPG; at most the model's
frontend["ppg_sensors"], checked), default 1 here (`sqtool export --ppg-sensors` defaults to the model's
count). The pipeline's `ppg` argument is n_ppg samples per time step, interleaved (ppg, ppg2, ppg, ...);
`sq_pipeline_init_device(p, fs_mHz, n_ppg)` refuses another rate (SQ_PL_ERR_RATE) or sensor count
(SQ_PL_ERR_SENSORS). A recording x16 is (C_in, N): the sensors' rows first, then acc x, y, z.
The C state carries a magic word set by the inits: push / pending on a state never initialised, or whose last
init was refused (rate, sensors), return SQ_PL_ERR_STATE (PipelineRef is always initialised: its constructor resets
it).
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core.model_cfg import device_fs
from sqtool.export.c_render import check_prefix, define_block, template, write_sources
from sqtool.data.frontend import FrontEnd, FrontEndCfg, design, flagged_q15, spectra
from sqtool.models.decoder import decoder_only, DecoderCfg, IntDecoder, check_grid, evidence_codes

ROUNDING = "single"
MAX_FLAGGED_Q15 = 16384                     # a window is scored when flagged_q15 <= this (<= 50 %)
TEMPLATES = ("sq_pipeline.h", "sq_pipeline.c")
RESULT_KEYS = ("index", "hr_mbpm", "lo_mbpm", "hi_mbpm", "conf_q15", "flagged_q15", "valid", "no_pulse")
_RESULT_DTYPES = (np.uint32, np.int32, np.int32, np.int32, np.uint16, np.uint16, np.uint8, np.uint8)

# Pulse presence (no_pulse: off the wrist, no perfusion): per window the ppg channel's spectral flatness over the
# heart-rate bins, g = log2(arithmetic / geometric mean of v = code + 128) in Q8 (0 = flat as noise; a pulse's
# peak gives ~500); a window has no pulse when the mean g of the last NO_PULSE_WINDOWS windows (64 s of hops,
# 70 s of signal) is at most NO_PULSE_MAX_Q8 (flatness 2^(-g/256) >= 0.58), one threshold for one and two PPG
# sensors: a two-sensor device replaying a one-sensor recording repeats it, and its noise is one sensor's. 32 windows,
# not 16: the longer mean narrows one sensor's noise more than it lifts the most noise-like real runs, so a wider
# margin catches more (one sensor's white noise 91 % instead of 61 %, the lowest real run 5.5 % above the threshold
# instead of 2 %), for twice the time to report a watch taken off. The threshold is 5 % below the lowest real run
# of TROIKA and wrist_exercise s2-s5, checked on wrist_exercise s6 and the E2E-PPG watch recording (0 windows):
# benchmarks/no_pulse_study.py, benchmarks/results/no_pulse_study.md (its candidates table).
NO_PULSE_WINDOWS = 32
NO_PULSE_MAX_Q8 = 200
LOG2_FRAC_Q8 = np.round(256 * np.log2(1 + np.arange(128) / 128)).astype(np.int64)   # (128,) 0..255: uint8 in C


# ----------------------------------------------------------------------------- contract

def scores(flagged_q15, ppg_quiet):
    """The pipeline's validity rule (sq_pipeline.c's `valid`), elementwise: a window is scored by the network
    when at most half its inputs are flagged (flagged_q15 <= MAX_FLAGGED_Q15) and its PPG is not quiet (not
    every PPG sensor stuck / railed / zero: the front end's ppg_quiet)."""
    return (np.asarray(flagged_q15) <= MAX_FLAGGED_Q15) & ~np.asarray(ppg_quiet, bool)


FLAT_BLOCK = 4096        # windows per block of `flatness_q8` (a day at 2 s hops: 43,200 windows, 46 MB a temporary)


def ilog2_q8(x) -> np.ndarray:
    """256 log2(x) of integers 1 <= x < 2^31, as sq_pipeline.c: e = bit length - 1, m = x's top 8 bits (128..255),
    256 e + LOG2_FRAC_Q8[m - 128]; exact round(256 log2 x) for x < 256, the mantissa truncated above."""
    x = np.asarray(x, np.int64)
    e = np.zeros_like(x)
    for b in range(1, 31):
        e += (x >> b) > 0                                                   # bit length - 1
    m = np.where(e >= 7, x >> np.maximum(e - 7, 0), x << np.maximum(7 - e, 0))   # 128 .. 255
    return 256 * e + LOG2_FRAC_Q8[m - 128]


def flatness_q8(codes: np.ndarray) -> np.ndarray:
    """Per window the ppg channel's log2(arithmetic / geometric mean) in Q8: codes (W, F, C) or (W, F) int8 ->
    (W,) int64 >= 0. v = code + 128 (1..255, linear in power); S = sum LOG2_Q8[v], A = sum v;
    g = max(0, F (L(A) - L(F)) - S) // F with L = ilog2_q8. A quiet window (every code -127) gives 0. Each window
    is its own: a long recording's are computed FLAT_BLOCK at a time, so its (W, F) int64 temporaries stay in MBs."""
    c = np.asarray(codes)
    if len(c) > FLAT_BLOCK:
        return np.concatenate([flatness_q8(c[a:a + FLAT_BLOCK]) for a in range(0, len(c), FLAT_BLOCK)])
    c = c[..., 0] if c.ndim == 3 else c
    v = c.astype(np.int64) + 128                                            # (W, F) 1..255
    F = v.shape[1]
    g = F * (ilog2_q8(v.sum(axis=1)) - ilog2_q8(F)) - ilog2_q8(v).sum(axis=1)
    return np.maximum(g, 0) // F


def no_pulse(g_q8: np.ndarray, max_q8: int | None, windows: int = NO_PULSE_WINDOWS) -> np.ndarray:
    """(W,) flatness_q8 of a recording's windows from the start -> (W,) uint8: 1 when the last `windows` values
    sum to at most windows * max_q8 (the first windows - 1 windows: 0, not yet known); max_q8 None (an export
    without the detector): all 0."""
    g = np.asarray(g_q8, np.int64)
    if max_q8 is None or len(g) < windows:
        return np.zeros(len(g), np.uint8)
    cs = np.concatenate([[0], np.cumsum(g)])
    run = cs[windows:] - cs[:-windows]                                      # (W - windows + 1,)
    out = np.zeros(len(g), np.uint8)
    out[windows - 1:] = run <= windows * int(max_q8)
    return out


def no_pulse_next(flat: list[int], codes: np.ndarray, rule: tuple[int, int] | None) -> tuple[np.ndarray, list[int]]:
    """A stream's next w windows, codes (w, F, C), after windows whose flatness_q8 the rule still reads (`flat`: the
    last windows - 1 of them, fewer only within the first windows, whose runs start at window 0; [] at the start),
    as the C's ring -> ((w,) no_pulse, the flat to carry to the next call). rule: (windows, max_q8), None = no
    detector (all 0). Any split of a recording's windows gives `no_pulse_of` on them all."""
    k, max_q8 = rule or (NO_PULSE_WINDOWS, None)
    run = np.concatenate([np.asarray(flat, np.int64), flatness_q8(codes)])
    return no_pulse(run, max_q8, k)[len(run) - len(codes):], run[max(0, len(run) - (k - 1)):].tolist()


def pulse_checked(md: dict) -> bool:
    """Whether an export's metadata has the pulse-presence detector (gating.no_pulse); an older export: no_pulse 0."""
    return "no_pulse" in ((md or {}).get("gating") or {})


def pulse_rule(md: dict) -> tuple[int, int] | None:
    """An export's pulse-presence rule as its C was rendered: (windows, max_q8) from its metadata's gating.no_pulse
    (an export of 2026-12-07 or before: 16 windows at 190); None for an export older than the detector."""
    rule = ((md or {}).get("gating") or {}).get("no_pulse")
    if rule is None:
        return None
    return int(rule.get("windows", NO_PULSE_WINDOWS)), int(rule.get("max_q8", NO_PULSE_MAX_Q8))


def _rule(check: bool | tuple[int, int] | None) -> tuple[int, int] | None:
    """pulse_check -> (windows, max_q8) or None: True = this version's rule, False / None = no detector."""
    if check is True:
        return NO_PULSE_WINDOWS, NO_PULSE_MAX_Q8
    return (int(check[0]), int(check[1])) if check else None


def no_pulse_of(codes: np.ndarray, checked: bool | tuple[int, int] | None = True) -> np.ndarray:
    """A whole recording's codes (W, F, C) -> (W,) uint8 no_pulse, as PipelineRef and the C give it (checked: True =
    this version's rule, (windows, max_q8) = an export's (`pulse_rule`), False / None = no detector: all 0)."""
    rule = _rule(checked)
    return no_pulse(flatness_q8(codes), None) if rule is None else no_pulse(flatness_q8(codes), rule[1], rule[0])


def frontend_config(model_cfg: dict, fs_in: float | None = None, n_ppg: int = 1) -> FrontEndCfg:
    from sqtool.data.hr_spectra import frontend_cfg
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    fs = device_fs(mc) if fs_in is None else float(fs_in)
    if not (np.isfinite(fs) and fs > 0):
        raise SqtoolError(f"pipeline: device rate {fs_in} Hz must be a positive number")
    return frontend_cfg(mc, fs, n_ppg)


def decoder_config(model_cfg: dict, graph, decoder: DecoderCfg | dict | None = None) -> DecoderCfg:
    """The decoder of the pipeline: a resolved DecoderCfg as given, else the `decoder` dict or
    model_cfg["decoder"] (else defaults on the model's bins) with logit_scale = the integer graph's output
    scale (the int8 logits' real scale) divided by the dict's "temperature"."""
    if isinstance(decoder, DecoderCfg):                      # already resolved (its logit_scale included)
        return decoder
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    d = dict(decoder or mc.get("decoder") or {})
    if "bins_bpm" not in d:
        bins = ((mc.get("arch") or {}).get("bins_bpm")) or (mc.get("frontend") or {}).get("bins_bpm")
        if bins is not None:
            d["bins_bpm"] = list(bins)
    temperature = float(d.get("temperature", 1.0))          # folds into the int8 logits' scale
    d = decoder_only(d)
    d["logit_scale"] = float(graph.output_scale) / temperature
    return DecoderCfg.from_dict(d)


def check_contract(fe: FrontEndCfg, graph, dec: DecoderCfg) -> None:
    """Refuse a pipeline whose stages disagree on bins / channels (one clear line)."""
    F = design(fe).n_bins
    if tuple(graph.input_shape) != (F, fe.n_channels):
        raise SqtoolError(f"pipeline: the network reads {tuple(graph.input_shape)} (bins, channels) but the front "
                          f"end makes ({F}, {fe.n_channels})")
    if graph.output_size != F:
        raise SqtoolError(f"pipeline: the network outputs {graph.output_size} logits for {F} bins")
    check_grid(dec, graph.output_size)
    if tuple(float(v) for v in dec.bins_bpm) != tuple(float(v) for v in fe.bins_bpm):
        raise SqtoolError(f"pipeline: decoder bins {dec.bins_bpm} differ from the front end's {fe.bins_bpm}")


# ----------------------------------------------------------------------------- reference

class PipelineRef:
    """Integer reference of the C pipeline (sq_pipeline_push), streaming or whole-recording."""

    def __init__(self, model_cfg: dict, graph, decoder: DecoderCfg | dict | None = None,
                 fs_in: float | None = None, n_ppg: int = 1, pulse_check: bool | tuple[int, int] | None = True):
        """model_cfg: the model's config dict (metadata.json's model_cfg: front end, bins); graph: its integer
        graph (`sqtool.export.intgraph`, the student_int8 checkpoint's); decoder: a DecoderCfg, or the decoder
        dict (metadata.json's "decoder", + "temperature"), None = model_cfg["decoder"]; fs_in: the device's
        sampling rate in Hz (None = the model's); n_ppg: the device's PPG sensors (1 or 2); pulse_check: the
        pulse-presence rule, True = this version's, (windows, max_q8) = the export's (`pulse_rule(metadata)`: an
        older export's C has its own), False / None = an export older than the detector (metadata without
        "no_pulse": no_pulse always 0). Inputs are int16 device counts (`sqtool.data.frontend.to_int16`); results
        are integers: hr/lo/hi in milli-BPM, conf_q15 and flagged_q15 in q15 (x / 32768), valid 1 = the network
        scored the window."""
        mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
        self.model_cfg = mc
        self.graph = graph
        self.fe_cfg = frontend_config(mc, fs_in, n_ppg)
        self.tab = design(self.fe_cfg)
        self.dec_cfg = decoder_config(mc, graph, decoder)
        check_contract(self.fe_cfg, graph, self.dec_cfg)
        self.C = self.fe_cfg.n_channels                 # network channels
        self.n_ppg = self.fe_cfg.n_ppg                  # PPG sensors of the device
        self.C_in = self.fe_cfg.n_inputs                # input rows: the sensors, then acc x, y, z
        self.pulse_rule = _rule(pulse_check)            # (windows, max_q8) or None
        self.reset()

    def reset(self) -> None:
        self.fe = FrontEnd(self.fe_cfg, self.tab)
        self.dec = IntDecoder(self.dec_cfg)
        self.dec.reset()
        self.flat: list[int] = []                       # flatness_q8 of the last windows (no_pulse's run)

    # --- the network on a batch of windows
    def logits(self, codes: np.ndarray) -> np.ndarray:
        """int8 (W, F, C) codes -> int8 (W, F) logits (the integer graph, single rounding)."""
        from sqtool.export import reference as R
        codes = np.asarray(codes, np.int8)
        if len(codes) == 0:
            return np.zeros((0, self.graph.output_size), np.int8)
        out = R.run(self.graph, codes, ROUNDING)[self.graph.output_name]
        return np.asarray(out, np.int8).reshape(len(codes), -1)

    def _decode(self, index: int, logits: np.ndarray | None, fq15: int, spec: np.ndarray, valid: bool,
                nopulse: int) -> dict:
        lg = logits if valid else np.zeros(self.graph.output_size, np.int8)
        o = self.dec.step(lg, valid, evidence_codes(spec[None])[0] if self.dec_cfg.uses_evidence else None)
        return {"index": int(index), "hr_mbpm": o.hr_mbpm, "lo_mbpm": o.lo_mbpm, "hi_mbpm": o.hi_mbpm,
                "conf_q15": o.conf_q15, "flagged_q15": int(fq15), "valid": int(valid), "no_pulse": int(nopulse)}

    def _no_pulse(self, codes: np.ndarray) -> np.ndarray:
        """codes (w, F, C) of the next w windows -> (w,) no_pulse (`no_pulse_next`, self.flat carried)."""
        out, self.flat = no_pulse_next(self.flat, codes, self.pulse_rule)
        return out

    def _stack(self, ppg, acc) -> np.ndarray:
        """ppg (n,) for one sensor, (n, n_ppg) or (n_ppg n,) interleaved for more; acc (n, 3) or (3 n,)
        -> (C_in, n) int16."""
        ppg, k = np.asarray(ppg), self.n_ppg
        shape_ok = (ppg.ndim == 1 and ppg.size % k == 0) or (ppg.ndim == 2 and ppg.shape[1] == k)
        if ppg.dtype != np.int16 or not shape_ok:
            raise SqtoolError(f"pipeline: ppg must be int16 {'(n,)' if k == 1 else f'(n, {k}) or ({k} n,) interleaved'}"
                              f" for a device with {k} PPG sensor(s), got {ppg.dtype} {ppg.shape}")
        ppg = ppg.reshape(-1, k).T                                          # (n_ppg, n)
        if self.C == 1:
            return ppg
        if acc is None:
            raise SqtoolError("pipeline: this model reads the accelerometer: acc (n, 3) int16 is required")
        acc, n = np.asarray(acc), ppg.shape[1]
        if acc.dtype != np.int16 or not (acc.shape == (n, 3) or (acc.ndim == 1 and acc.size == 3 * n)):
            hint = " (channels-first: pass acc.T)" if acc.shape == (3, n) and n != 3 else ""
            raise SqtoolError(f"pipeline: acc must be int16 ({n}, 3), or ({3 * n},) interleaved x, y, z, for {n} "
                              f"samples, got {acc.dtype} {acc.shape}{hint}")
        return np.concatenate([ppg, acc.reshape(-1, 3).T], axis=0)                 # (n, 3) -> (3, n)

    def push(self, ppg, acc=None, gap=None) -> list[dict]:
        """One chunk of n samples (any n, 0 included), as sq_pipeline_push: ppg int16 (n,) for one sensor, (n, n_ppg)
        or (n_ppg n,) interleaved for more; acc int16 (n, 3) (x, y, z per sample; or (3 n,) interleaved, never
        channels-first (3, n)), None for a PPG-only model; gap (n,) bool or None. Returns one dict per completed
        window (RESULT_KEYS: hr_mbpm, lo_mbpm, hi_mbpm in milli-BPM; conf_q15, flagged_q15 in q15; valid 0/1;
        no_pulse 0/1)."""
        x = self._stack(ppg, acc)
        wins = self.fe.push(x, gap)
        if not wins:
            return []
        scored = [i for i, w in enumerate(wins) if scores(w.flagged_q15, w.ppg_quiet)]
        lg = self.logits(np.stack([wins[i].spec for i in scored])) if scored else None
        rows = {i: lg[j] for j, i in enumerate(scored)}
        npl = self._no_pulse(np.stack([w.spec for w in wins]))
        return [self._decode(w.index, rows.get(i), w.flagged_q15, w.spec, i in rows, npl[i])
                for i, w in enumerate(wins)]

    def run(self, x16, gap=None, chunk: int | None = None) -> dict[str, np.ndarray]:
        """A whole recording x16 int16 (C_in, N) channels-first (the n_ppg PPG sensors' rows, then acc x, y, z; device
        counts, `sqtool.data.frontend.to_int16`), gap (N,) bool or None, from a fresh state: chunk None = vectorised
        front end (bit-exact with streaming), chunk k = pushes of k samples. Returns (W,) arrays per RESULT_KEYS:
        index (window number), hr_mbpm / lo_mbpm / hi_mbpm (heart rate and its interval, milli-BPM: / 1000 ->
        BPM), conf_q15 (confidence, q15: / 32768 -> 0..1), flagged_q15 (share of dropout samples, q15), valid
        (1 = the network scored the window, 0 = over half flagged or every PPG sensor quiet: the decoder's
        prediction only), no_pulse (1 = the PPG's spectrum has been as flat as noise for the last NO_PULSE_WINDOWS
        windows: off the wrist or no perfusion; a separate output, the window may still be valid)."""
        x16 = np.asarray(x16)
        if x16.ndim == 1:
            x16 = x16[None]
        if x16.ndim != 2 or x16.shape[0] != self.C_in or x16.dtype != np.int16:
            from sqtool.data.frontend import input_channels
            raise SqtoolError(f"pipeline: recording must be int16 ({self.C_in}, N) ({', '.join(input_channels(self.fe_cfg))}"
                              f": {self.n_ppg} PPG sensor(s)), got {x16.dtype} {x16.shape}")
        n = x16.shape[1]
        g = None if gap is None else np.asarray(gap).reshape(-1).astype(bool)
        if g is not None and g.shape[0] != n:
            raise SqtoolError(f"pipeline: {g.shape[0]} gap flags for {n} samples")
        self.reset()
        rows: list[dict] = []
        if chunk is None:
            codes, _, _, quiet = spectra(self.fe_cfg, x16, g, tables=self.tab, ppg_quiet=True)
            fq = flagged_q15(self.fe_cfg, g, n, tables=self.tab)
            ok = scores(fq, quiet)                                              # (W,) bool
            lg = np.zeros((len(codes), self.graph.output_size), np.int8)
            lg[ok] = self.logits(codes[ok])
            npl = self._no_pulse(codes)
            rows = [self._decode(i, lg[i], int(fq[i]), codes[i], bool(ok[i]), npl[i]) for i in range(len(codes))]
        else:
            if int(chunk) < 1:
                raise SqtoolError(f"pipeline: chunk must be >= 1 sample, got {chunk}")
            for s in range(0, n, int(chunk)):
                acc = None if self.C == 1 else np.ascontiguousarray(x16[self.n_ppg:, s:s + chunk].T)
                ppg = np.ascontiguousarray(x16[:self.n_ppg, s:s + chunk].T)         # (k, n_ppg)
                rows += self.push(ppg.reshape(-1), acc, None if g is None else g[s:s + chunk])
        return {k: np.array([r[k] for r in rows], dtype=dt) for k, dt in zip(RESULT_KEYS, _RESULT_DTYPES)}


def max_results(fe: FrontEndCfg, n: int) -> int:
    """SQ_PL_MAX_RESULTS(n): results a push of n samples can produce at most."""
    tab = design(fe)
    return ((n * tab.up) // tab.down + 1) // tab.hop + 1


def write_recording(path, x16: np.ndarray, gap=None) -> Path:
    """The kit's recording file: N frames of (C_in samples: the PPG sensors, then acc x, y, z; + 1 gap flag)
    int16, little endian."""
    x16 = np.asarray(x16, np.int16)
    g = np.zeros(x16.shape[1], np.int16) if gap is None else np.asarray(gap).astype(bool).astype(np.int16)
    frames = np.concatenate([x16, g[None]], axis=0).T.astype("<i2")        # (N, C + 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames.tofile(path)
    return path


def format_results(res: dict[str, np.ndarray]) -> str:
    """One line per result, exactly as the kit's example prints them."""
    n = len(res["index"])
    return "".join(" ".join(str(int(res[k][i])) for k in RESULT_KEYS) + "\n" for i in range(n))


def parse_results(text: str) -> dict[str, np.ndarray]:
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if rows and all(len(r) == len(RESULT_KEYS) - 1 for r in rows):      # a kit older than no_pulse: 0
        rows = [r + ["0"] for r in rows]
    if any(len(r) != len(RESULT_KEYS) for r in rows):
        raise SqtoolError(f"pipeline results: expected {len(RESULT_KEYS)} integers per line")
    arr = np.array(rows, dtype=np.int64).reshape(-1, len(RESULT_KEYS))
    return {k: arr[:, i].astype(dt) for i, (k, dt) in enumerate(zip(RESULT_KEYS, _RESULT_DTYPES))}


# ----------------------------------------------------------------------------- C sources

_ARENA = re.compile(r"^(static\s+(?:u?int8_t|uint32_t)\s+sq_arena(?:_words)?\s*\[[^\]]*\])\s*;", re.M)
_ROUNDING_DEFAULT = re.compile(r"(#ifndef SQ_SINGLE_ROUNDING\s*\n\s*#define SQ_SINGLE_ROUNDING) 0")


def _place_arena(src: str) -> str:
    """Put SQ_ARENA_SECTION after the arena's declarator (empty unless the build defines it)."""
    if not _ARENA.search(src):
        raise SqtoolError("pipeline: the generated sq_model.c has no recognisable static arena to place")
    guard = ("#ifndef SQ_ARENA_SECTION\n/* e.g. -DSQ_ARENA_SECTION='__attribute__((section(\".dtcm\")))' */\n"
             "#define SQ_ARENA_SECTION\n#endif\n")
    return _ARENA.sub(lambda m: guard + m.group(1) + " SQ_ARENA_SECTION;", src, count=1)


def _single_rounding_default(hdr: str) -> str:
    if not _ROUNDING_DEFAULT.search(hdr):
        raise SqtoolError("pipeline: the generated sq_model.h has no SQ_SINGLE_ROUNDING default to set")
    return _ROUNDING_DEFAULT.sub(r"\1 1   /* set by the pipeline export: single rounding = Brevitas / QAT */", hdr)


def _cfg_header(fe: FrontEndCfg, dec: DecoderCfg, graph, model_cfg: dict) -> str:
    fs_mhz = round(float(fe.fs_in) * 1000)
    if abs(fs_mhz - float(fe.fs_in) * 1000) > 1e-6:
        raise SqtoolError(f"pipeline: device rate {fe.fs_in} Hz is not a whole number of milli-Hz")
    info = {"model": model_cfg.get("name"), "fs_in_hz": float(fe.fs_in), "ppg_sensors": fe.n_ppg, "rounding": ROUNDING,
            "max_flagged_q15": MAX_FLAGGED_Q15,
            "no_pulse_windows": NO_PULSE_WINDOWS, "no_pulse_max_q8": NO_PULSE_MAX_Q8, "logit_scale": float(graph.output_scale)}
    log2_frac = "{" + ", ".join(str(int(v)) for v in LOG2_FRAC_Q8) + "}"
    defines = [("SQ_PL_MODEL_NAME", json.dumps(str(model_cfg.get("name", ""))), ""),
               ("SQ_PL_FS_IN_MHZ", f"{fs_mhz}u", "device sampling rate the pipeline was exported for"),
               ("SQ_PL_N_PPG", fe.n_ppg, "PPG sensors of the device (= SQ_FE_N_PPG), interleaved in ppg"),
               ("SQ_PL_ROUNDING", json.dumps(ROUNDING), ""),
               ("SQ_PL_NO_PULSE_WINDOWS", NO_PULSE_WINDOWS, "pulse presence: windows in the flatness run"),
               ("SQ_PL_LOG2_FRAC_Q8", log2_frac, "round(256 log2(1 + j / 128))"),
               ("SQ_PL_NO_PULSE_MAX_Q8", f"{NO_PULSE_MAX_Q8}u",
                "no_pulse when their mean log2(AM/GM), Q8, is at most this"),
               ("SQ_PL_LOGIT_SCALE_UQ32", f"{int(round(float(graph.output_scale) * 2**32))}u", "information")]
    return (f"/* sq_pipeline_cfg.h - generated by sqtool.export.pipeline; do not edit.\n"
            f" * {json.dumps(info, sort_keys=True)} */\n"
            "#ifndef SQ_PIPELINE_CFG_H\n#define SQ_PIPELINE_CFG_H\n\n"
            f"{define_block(defines)}\n"
            "\n#endif /* SQ_PIPELINE_CFG_H */\n")


def render_pipeline(model_cfg: dict, graph, md: dict, out_dir, fs_in: float | None = None, prefix: str = "sq",
                    decoder: DecoderCfg | dict | None = None, n_ppg: int = 1) -> dict:
    """Write the network, front end, decoder and pipeline C sources for one model into out_dir, every
    symbol renamed to `prefix` (two prefixes link into one image), for a device with n_ppg PPG sensors.
    Returns {"files", "fe_cfg", "dec_cfg"}."""
    from sqtool.export.c import generate_c
    from sqtool.export.c_decoder import render_decoder
    from sqtool.export.c_frontend import render_frontend
    check_prefix(prefix)
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    fe = frontend_config(mc, fs_in, n_ppg)
    dec = decoder_config(mc, graph, decoder)
    check_contract(fe, graph, dec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_c(graph, md, tmp)
        hdr = _single_rounding_default((Path(tmp) / "sq_model.h").read_text())
        src = _place_arena((Path(tmp) / "sq_model.c").read_text())
    texts = {"sq_model.h": hdr, "sq_model.c": src, "sq_pipeline_cfg.h": _cfg_header(fe, dec, graph, mc)}
    texts.update({name: template(name) for name in TEMPLATES})
    files += write_sources(texts, out, prefix)
    files += render_frontend(fe, out, prefix)
    files += render_decoder(dec, out, prefix)
    return {"files": files, "fe_cfg": fe, "dec_cfg": dec}


__all__ = ["PipelineRef", "render_pipeline", "check_prefix", "frontend_config", "decoder_config", "device_fs",
           "max_results", "scores", "flatness_q8", "ilog2_q8", "no_pulse", "no_pulse_of", "pulse_checked", "pulse_rule", "NO_PULSE_WINDOWS", "NO_PULSE_MAX_Q8", "write_recording", "format_results", "parse_results", "ROUNDING", "MAX_FLAGGED_Q15",
           "RESULT_KEYS"]
