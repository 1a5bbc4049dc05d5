"""A spectral export's `frontend.steps` (metadata.json, INTEGRATION.md) state the front end's integer arithmetic fully:
an integrator's port written from the steps' text alone (`doc_codes`: every rule and number read from the text) gives
the codes of sqtool's integer reference (`sqtool.data.frontend.spectra`, what `sqtool predict` and the C kit feed the
network) bit for bit. The steps used to give the integer parts only as names ("Q30 Direct Form I biquads", "block
floating point to |x| <= 2047", "taps Q15 with a DC gain of exactly 32768"), and an audit's float implementation of
the float equations had no window of TROIKA DATA_01 with every code equal (weak rows off by up to 9 codes)."""
import math
import re

import numpy as np
import pytest
import scipy.signal  # noqa: F401  (the steps' calls are evaluated with it)


def _stated(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    assert m, f"the steps do not state {pattern!r}"
    return m.group(1)


def _bitlen(v: int) -> int:
    return int(v).bit_length()


def doc_codes(fe: dict, bins_bpm, x16: np.ndarray) -> np.ndarray:
    """The integer front end as an integrator writes it from fe["steps"]: int16 rows (C_in, N) -> codes (W, F, C)."""
    st = fe["steps"]
    res_s, bp_s, win_s, spec_s, ch_s, code_s = st[2], st[3], st[4], st[6], st[7], st[8]
    L, M = (int(v) for v in _stated(res_s, r"L / M = (\d+ / \d+)").split(" / "))
    h = eval(_stated(res_s, r"prototype h = (scipy\.signal\.firwin\(.*?fs=\d+ \* fs_in\)) x"),  # noqa: S307
             {"scipy": scipy}, {"fs_in": fe["fs_in"]}) * int(_stated(res_s, r"\) x (\d+) \(L x P taps"))
    P = len(h) // L
    assert "g[p, i] = round(32768 h[p + i L])" in res_s and "in order of decreasing |h[p + i L]| (a stable sort" in res_s
    hp = np.array([[h[p + i * L] for i in range(P)] for p in range(L)])
    g = np.round(32768 * hp).astype(np.int64)
    for p in range(L):                                                     # each phase's DC gain exactly 32768
        r = 32768 - int(g[p].sum())
        order = np.argsort(-np.abs(hp[p]), kind="stable")
        for j in range(abs(r)):                                            # "cycling when it exceeds P"
            g[p, order[j % P]] += 1 if r > 0 else -1
    assert "y[m] = sat16((sum_i g[p, i] x[n_m - i] + 2^14) >> 15)" in res_s and "while n_m <= the last input" in res_s
    n = x16.shape[1]
    m = np.arange((n - 1) * L // M + 1)
    nm, ph = m * M // L, m * M % L
    xp = np.concatenate([np.zeros((len(x16), P - 1), np.int64), x16.astype(np.int64)], axis=1)
    res = np.clip(((xp[:, nm[:, None] + P - 1 - np.arange(P)] * g[ph]).sum(axis=2) + (1 << 14)) >> 15, -32768, 32767)
    sos = eval(_stated(bp_s, r"(scipy\.signal\.butter\([^)]*\))"), {"scipy": scipy})   # noqa: S307
    fb = int(_stated(bp_s, r"coefficients c = round\(2\^(\d+) sos\[s, \[b0, b1, b2, a1, a2\]\]\)"))
    inner = int(_stated(bp_s, r"clamped to \[-2\^(\d+), 2\^\d+ - 1\] \(an inner section\)"))
    assert f"a1 y1 - a2 y2 + 2^{fb - 1}) >> {fb}" in bp_s and "or [-32768, 32767] (the last)" in bp_s
    coef = np.round(sos[:, [0, 1, 2, 4, 5]] * 2.0 ** fb).astype(np.int64).tolist()
    y = []
    for row in res:
        seq = row.tolist()
        for s, (b0, b1, b2, a1, a2) in enumerate(coef):
            lo, hi = (-32768, 32767) if s == len(coef) - 1 else (-(1 << inner), (1 << inner) - 1)
            x1 = x2 = y1 = y2 = 0
            out = []
            for v in seq:
                o = min(max((b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + (1 << (fb - 1))) >> fb, lo), hi)
                x2, x1, y2, y1 = x1, v, y1, o
                out.append(o)
            seq = out
        y.append(seq)
    y = np.array(y, np.int64)
    T, hop = int(_stated(win_s, r"T = (\d+) model samples")), int(_stated(win_s, r"hop (\d+) \("))
    quiet_counts = int(_stated(st[5], r"span <= (\d+) counts"))
    xmax = int(_stated(spec_s, r"block floating point to XMAX = (\d+)"))
    assert "mx <= XMAX: x = x << s, s the largest with mx << s <= XMAX" in spec_s and \
        "else x = (x + 2^(r-1)) >> r, r the smallest with (mx + 2^(r-1)) >> r <= XMAX" in spec_s
    assert "xw = (x hann + 2^14) >> 15, hann[n] = min(round(32768 w[n]), 32767)" in spec_s
    one = int(_stated(spec_s, r"cos\[j\] = round\((\d+) cos\(2 pi j / N\)\)"))
    N = int(_stated(spec_s, r"N = 60 fs / \(the bins' step\) = (\d+)"))
    ps = int(_stated(spec_s, r"re' = \(re \+ 2\^\d+\) >> (\d+)"))
    assert "im = sum_n xw[n] cos[(k_b n + 3 N / 4) mod N]" in spec_s and "P_b = re'^2 + im'^2" in spec_s
    lo, hi, step = bins_bpm
    kb = np.round(np.arange(lo, hi + step / 2, step) * N / (60 * fe["fs"])).astype(np.int64)
    assert f"({kb[0]}..{kb[-1]})" in spec_s
    tn = np.arange(T)
    hann = np.minimum(np.round(32768 * (0.5 - 0.5 * np.cos(2 * np.pi * tn / T))), 32767).astype(np.int64)
    cos = np.round(one * np.cos(2 * np.pi * np.arange(N) / N)).astype(np.int64)
    ct, stb = cos[np.outer(tn, kb) % N], cos[(np.outer(tn, kb) + 3 * N // 4) % N]
    n_ppg = fe["n_ppg"]

    def power(x):                                           # -> (P (F,), the power's exponent 2 (r - s) or None)
        mx = int(np.abs(x).max())
        if mx <= xmax:
            s = 0
            while mx and (mx << (s + 1)) <= xmax:
                s += 1
            x, e = x << s, -2 * s
        else:
            r = 1
            while (mx + (1 << (r - 1))) >> r > xmax:
                r += 1
            x, e = (x + (1 << (r - 1))) >> r, 2 * r
        xw = (x * hann + (1 << 14)) >> 15
        re_, im_ = ((xw @ ct + (1 << (ps - 1))) >> ps), ((xw @ stb + (1 << (ps - 1))) >> ps)
        return re_ * re_ + im_ * im_, (e if mx else None)

    code_bits = int(_stated(code_s, r"q = max\(0, bitlen\(Pmax\) - (\d+)\)"))
    assert "code = (508 Pb + Pm) // (2 Pm) - 127" in code_s

    def code(p):
        pmax = int(p.max())
        if pmax == 0:
            return np.full(len(p), -127)
        q = max(0, _bitlen(pmax) - code_bits)
        return (508 * (p >> q) + (pmax >> q)) // (2 * (pmax >> q)) - 127

    out = []
    for i in range((y.shape[1] - T) // hop + 1):
        a = i * hop
        quiet = [int(r[a:a + T].max() - r[a:a + T].min()) <= quiet_counts for r in res]
        pw = [power(np.zeros(T, np.int64) if q else row[a:a + T]) for q, row in zip(quiet, y)]
        if n_ppg == 1:
            ppg = pw[0][0]
        else:
            nb = int(_stated(ch_s, r"q = max\(0, bitlen\(Pmax_s\) - (\d+)\)"))
            nf = int(_stated(ch_s, r"u_s = \(\(Pb << (\d+)\) \+ \(Pm >> 1\)\) // Pm \(0 when Pmax_s = 0\)"))
            ppg = np.zeros(len(kb), np.int64)
            for p, _ in pw[:n_ppg]:
                pmax = int(p.max())
                if pmax:
                    q = max(0, _bitlen(pmax) - nb)
                    ppg += ((p >> q << nf) + ((pmax >> q) >> 1)) // (pmax >> q)
        acc = pw[n_ppg:]
        if fe["n_channels"] == 2:
            assert "P_acc = (sum_axes (P_axis >> (emax - e)) + 2) >> 2, a shift of 32 or more giving 0" in ch_s
            emax = max((e for _, e in acc if e is not None), default=None)
            tot = sum(((p >> (emax - e)) if emax - e < 32 else 0 * p) for p, e in acc if e is not None)
            acc = [((tot + 2) >> 2 if emax is not None else np.zeros(len(kb), np.int64), None)]
        out.append(np.stack([code(ppg)] + [code(p) for p, _ in acc], axis=1))
    return np.array(out)


def _device_samples(n: int, fs: float, n_ppg: int, seed: int = 5) -> np.ndarray:
    """int16 rows (ppg sensors, acc_x, acc_y, acc_z): a pulse on a DC level, a weak second sensor (left shifts), a
    resting axis (gravity + 1-2 counts of noise: the band-pass's dead band), a swinging axis that clips at int16 (right
    shifts), an axis stuck for its first half (the silence rule), then moving."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    hr = 1.9 + 0.3 * np.sin(2 * np.pi * t / 40)                           # Hz
    pulse = np.sin(2 * np.pi * np.cumsum(hr) / fs)
    rows = [3000 + 2500 * pulse + 40 * rng.standard_normal(n), 60 * pulse + 3 * rng.standard_normal(n)][:n_ppg]
    stuck = np.where(t < t[-1] / 2, 900.0, 900 + 3000 * np.sin(2 * np.pi * 1.3 * t))
    rows += [4096 + rng.integers(-1, 2, n), 40000 * np.sin(2 * np.pi * 2.6 * t) + 500 * rng.standard_normal(n), stuck]
    return np.clip(np.round(rows), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("model,fs_in,n_ppg", [("spec_student_s", 125.0, 2), ("spec_student_s_accsum", 256.0, 2),
                                               ("spec_student_s", 100.0, 1)])
def test_a_port_of_the_steps_integer_parts_gives_the_reference_codes_bit_for_bit(model, fs_in, n_ppg):
    from sqtool.data.frontend import spectra
    from sqtool.export.metadata import spectral_contract
    from sqtool.export.pipeline import frontend_config
    from sqtool.models import create_model
    cfg = create_model(model).cfg.to_dict()
    md = spectral_contract(cfg, None, fs_in, n_ppg)
    fe = md["frontend"]
    x16 = _device_samples(int(36 * fs_in), fs_in, n_ppg)
    want = spectra(frontend_config(cfg, fs_in, n_ppg), x16)[0]
    got = doc_codes(fe, cfg["frontend"]["bins_bpm"], x16)
    assert got.shape == want.shape and len(want) >= 10
    assert np.array_equal(got, want), f"{np.mean(got != want):.3%} of the codes differ, at most by " \
                                      f"{np.abs(got.astype(int) - want).max()}"
    flat = " ".join(md["frontend"]["steps"])                               # the float equations stay stated too
    assert "|X_b|^2" in flat and "sosfilt" in flat and math.isfinite(fe["fs_in"])
