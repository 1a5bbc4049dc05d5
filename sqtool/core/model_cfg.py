"""ModelCfg: a model's architecture AND its preprocessing contract, saved in every checkpoint and artifact.

Also the one place of the size bounds every stage checks its inputs against, up front, with one line:
sampling rates in (0, FS_MAX_HZ], windows and hops in (0, WINDOW_S_MAX], records of at least
MIN_RECORD_SAMPLES samples. (A 1e6 s window or a 1e12 Hz rate is a typo that would otherwise allocate
gigabytes before failing.)"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sqtool.core.errors import SqtoolError

DEFAULT_BAND = (0.5, 8.0)   # Hz: the one definition of the default band-pass of time-domain models
                            # (covers HR 30-240 bpm with harmonics, removes baseline drift)
FS_MAX_HZ = 10_000.0        # highest sampling rate accepted anywhere (PPG is 25-1000 Hz)
WINDOW_S_MAX = 600.0        # longest window / hop accepted anywhere, s
MIN_RECORD_SAMPLES = 2      # a record needs at least this many samples per channel
BAND_PHASES = ("zero", "causal")   # ModelCfg.band_phase


def stream_filter(cfg) -> str:
    """The stream's band-pass mode (`firmware_bench.stream.FILTERS`, export's --device-filter) that reproduces a
    model's training windows: "causal" for a model trained with band_phase "causal", else "window" (zero-phase over
    the window and its context). `cfg`: a ModelCfg, its dict, or an export's metadata (its model_cfg inside);
    files older than the field mean "zero"."""
    if isinstance(cfg, dict):
        phase = cfg.get("band_phase", (cfg.get("model_cfg") or {}).get("band_phase", "zero"))
    else:
        phase = getattr(cfg, "band_phase", "zero")
    if phase not in BAND_PHASES:
        raise SqtoolError(f"band_phase {phase!r}: choose one of {', '.join(BAND_PHASES)}")
    return "causal" if phase == "causal" else "window"


def check_band_phase(phase: str, command: str, model: str = "", spectral: bool = False) -> None:
    """A command's --band-phase: one of BAND_PHASES (else one line, exit status 2); only "zero" for a spectral
    `model`, whose fixed-point front end has its own causal band-pass."""
    if phase not in BAND_PHASES:
        raise SqtoolError(f"{command} --band-phase {phase}: choose one of {', '.join(BAND_PHASES)}", code=2)
    if spectral and phase != "zero":
        raise SqtoolError(f"{command} --band-phase {phase}: {model} is a spectral model, whose fixed-point front end "
                          "runs a causal band-pass already; --band-phase is for time-domain models")


RR_FAMILY = "resp_spec"     # the respiratory-spectrum models' family (`models.rr_spec`)


def is_resp_spec(cfg) -> bool:
    """Whether a model cfg (a ModelCfg or its dict) is a respiratory-spectrum model (its input: `data.resp`
    spectra); here, not in `models.rr_spec`, so that asking (predict, bench of any export) imports no torch."""
    if cfg is None:
        return False
    fam = cfg.get("family") if isinstance(cfg, dict) else cfg.family
    return fam == RR_FAMILY


ACC_SUM = "acc"             # a network channel: the accelerometer's power summed over its three axes
ACC_AXES = ("acc_x", "acc_y", "acc_z")


def signal_channels(channels) -> list[str]:
    """The recording's signals a model with these (network) channels reads: `acc` (the axes' summed power,
    a spectral front end's orientation-free channel) stands for acc_x, acc_y, acc_z."""
    out = []
    for c in channels:
        out += list(ACC_AXES) if c == ACC_SUM else [c]
    return out


def _number(v, where: str, what: str) -> float:
    # float(True) == 1.0: a flag where a number belongs (a numpy bool told by its dtype: importing sqtool.core
    # needs only the stdlib)
    if isinstance(v, bool) or getattr(getattr(v, "dtype", None), "kind", "") == "b":
        raise SqtoolError(f"{where}: {what} {v!r} is not a number")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise SqtoolError(f"{where}: {what} {v!r} is not a number")
    if f != f or f in (float("inf"), float("-inf")):
        raise SqtoolError(f"{where}: {what} must be finite, got {v!r}")
    return f


DEFAULT_DEVICE_FS = 125.0   # Hz: a spectral model's device rate unless its frontend says (TROIKA / SP Cup's)


def device_fs(model_cfg: dict) -> float:
    """The device rate a spectral model is exported for by default: frontend["fs_in"] when recorded, else
    DEFAULT_DEVICE_FS (its front end resamples any rate; `export --device-fs` builds for another)."""
    fe = dict(model_cfg.get("frontend") or {})
    return float(fe.get("fs_in") or DEFAULT_DEVICE_FS)


def device_rate_args(metrics: dict) -> list[str]:
    """export's --device-fs / --device-acc-fs for the rates a spectral quantize run's recordings share (its
    metrics.json `recorded_rates`, `compress.quantize_hr.recorded_rates`) where the export's default would build for
    others: its C pipeline is built for the model's `device_fs` (125 Hz) unless told, and bench / predict then skip it
    on the user's 64 Hz files; its kit takes one accelerometer sample per PPG sample unless --device-acc-fs says the
    accelerometer's own rate (a 32 Hz one beside a 64 Hz PPG). [] for a run that recorded none (time-domain, final
    fit of an older run)."""
    rates, default = metrics.get("recorded_rates") or {}, metrics.get("device_fs")
    ppg, acc = rates.get("ppg"), rates.get("acc")
    if not ppg or not default:
        return []
    args = ["--device-fs", f"{ppg:g}"] if ppg != default else []
    return args + (["--device-acc-fs", f"{acc:g}"] if acc and acc != ppg else [])   # the kit's acc resampler


def check_fs(fs, where: str = "fs") -> float:
    """A sampling rate in (0, FS_MAX_HZ] Hz, as float; else one SqtoolError line naming `where`."""
    f = _number(fs, where, "sampling rate")
    if not 0 < f <= FS_MAX_HZ:
        raise SqtoolError(f"{where}: sampling rate must be in (0, {FS_MAX_HZ:g}] Hz, got {fs!r}")
    return f


def check_window_s(window_s, where: str = "window_s") -> float:
    """A window (or hop) length in (0, WINDOW_S_MAX] s, as float; else one SqtoolError line."""
    f = _number(window_s, where, "length")
    if not 0 < f <= WINDOW_S_MAX:
        raise SqtoolError(f"{where}: length must be in (0, {WINDOW_S_MAX:g}] s, got {window_s!r}")
    return f


@dataclass
class ModelCfg:
    name: str                                  # registry name, e.g. "resnet1d_siamq_18"
    family: str                                # "resnet1d" | "cnn1d_student" | "spec_cnn" | "resp_spec" | "beat_trees"
                                               # (the registry's)
    fs: float = 40.0                           # model input sampling rate, Hz
    window_s: float = 30.0                     # window length, s
    hop_s: float = 30.0                        # hop between consecutive windows, s
    channels: tuple[str, ...] = ("ppg",)       # input channels, in order (see data.record)
    norm: str = "minmax"                       # per-window, per-channel: "minmax" | "zscore" | "none"
                                               # (data.preprocess.NORMS); spectral models "spectrum_max" (the
                                               # front end scales each spectrum to its own max)
    band: tuple[float | None, float | None] | None = DEFAULT_BAND  # Butterworth band-pass (lo, hi) Hz at fs
                                               # before windowing; None = no filter, lo/hi None = low/high-pass
    band_phase: str = "zero"                   # time-domain models: how the band-pass runs (BAND_PHASES): "zero"
                                               # (zero-phase over the window and its context) | "causal" (one
                                               # running filter from the recording's start, what a sample-by-sample
                                               # device runs); training, the stream and the C front end all follow it
    task: str = "pretrain"                     # "pretrain" | "hr" | "rr" | "af" | "bp" | "quality"
    outputs: tuple[str, ...] = ()              # output names, e.g. ("hr_bpm",), ("sbp", "dbp"), ("logit_af",)
    units: tuple[str, ...] = ()                # one per output: "bpm", "mmHg", "logit", ...
    target_mean: tuple[float, ...] = ()        # regression targets are learned as (y - mean) / std
    target_std: tuple[float, ...] = ()
    arch: dict = field(default_factory=dict)   # family-specific hyper-parameters
    quant: str | None = None                   # quantization preset name (students), None = float
    frontend: dict = field(default_factory=dict)  # spectral models: the fixed-point front end (data.frontend);
                                               # respiratory ones ("resp_spectrum"): data.resp's spectra;
                                               # "beat_features": data.beats' named features
    decoder: dict = field(default_factory=dict)   # HR-bin models: the HMM decoder (models.decoder), set by training

    def __post_init__(self):
        check_fs(self.fs, f"model {self.name} fs")
        check_window_s(self.window_s, f"model {self.name} window_s")
        check_window_s(self.hop_s, f"model {self.name} hop_s")
        if self.band_phase not in BAND_PHASES:
            raise SqtoolError(f"model {self.name} band_phase: choose one of {', '.join(BAND_PHASES)}, "
                              f"got {self.band_phase!r}")

    @property
    def n_samples(self) -> int:
        n = self.fs * self.window_s
        if abs(n - round(n)) > 1e-6:
            raise SqtoolError(f"{self.name}: fs * window_s = {n} is not a whole number of samples")
        return int(round(n))

    @property
    def in_channels(self) -> int:
        return len(self.channels)

    @property
    def n_bins(self) -> int:
        """Heart-rate bins of an HR-bin model (arch["bins_bpm"] = lo, hi, step), 0 for other models."""
        if "bins_bpm" not in self.arch:
            return 0
        lo, hi, step = (float(v) for v in self.arch["bins_bpm"])
        n = (hi - lo) / step
        if step <= 0 or abs(n - round(n)) > 1e-9:
            raise SqtoolError(f"{self.name}: bins_bpm {self.arch['bins_bpm']} is not a whole number of bins")
        return int(round(n)) + 1

    @property
    def input_shape(self) -> tuple[int, int]:
        """(C, T) samples for time-domain models, (C, F) spectra for spectral ones (a respiratory-spectrum
        model: one row per frontend channel over its breaths/min bins, whatever the recording's channels)."""
        fe = self.frontend or {}
        if fe.get("type") == "spectrum":
            return (self.in_channels, self.n_bins)
        if fe.get("type") == "beat_features":              # one row of named features (data.beats)
            return (1, len(fe["features"]))
        if fe.get("type") == "resp_spectrum":
            lo, hi, step = (float(v) for v in fe["bins_rpm"])
            return (len(fe["channels"]), int(round((hi - lo) / step)) + 1)
        return (self.in_channels, self.n_samples)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCfg":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SqtoolError(f"model config has unknown keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        for k in _TUPLE_KEYS:
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)            # a key missing (e.g. "band" in checkpoints older than it) takes its default

    def replace(self, **kw) -> "ModelCfg":
        names = {f.name for f in dataclasses.fields(self)}
        for k in kw:
            if k not in names:
                raise SqtoolError(f"model config has no key '{k}'")
        for k in _TUPLE_KEYS:
            if k in kw and kw[k] is not None:
                kw[k] = tuple(kw[k])
        for k in ("arch", "frontend", "decoder"):
            if k in kw and kw[k] is not None:
                kw[k] = {**getattr(self, k), **kw[k]}
        return dataclasses.replace(self, **kw)


_TUPLE_KEYS = ("channels", "outputs", "units", "target_mean", "target_std", "band")   # lists in to_dict()

