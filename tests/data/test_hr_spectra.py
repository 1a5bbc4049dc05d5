"""Heart-rate windows through the fixed-point front end: real TROIKA, synthetic, contracts."""
from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.hr_spectra import as_model_input, frontend_cfg, hr_corpus
from sqtool.models import get_model_cfg

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "troika").is_dir(), reason="../shared/data absent")


@needs_data
def test_troika_corpus_has_twelve_subjects_and_leaves_out_s04_explicitly():
    said = []
    cfg = get_model_cfg("spec_student_s")
    c = hr_corpus(DATA, ("troika",), cfg, log=said.append)
    assert len(c) == 12 and len({r.key for r in c}) == 12
    assert any("DATA_S04_T01" in s and "left out" in s for s in said)
    r = c[0]
    F, C = cfg.input_shape[1], cfg.input_shape[0]
    assert r.x.dtype == np.int8 and r.x.shape[1:] == (F, C) and r.x.max() == 127 and r.x.min() >= -127
    assert len(r.y) == len(r.x) == len(r.t0) and np.isfinite(r.y).mean() > 0.95     # truth aligned to windows
    assert np.allclose(np.diff(r.t0), 2.0) and r.t0[0] == 0.0
    assert as_model_input(r.x).shape == (len(r.x), C, F)


def test_synthetic_corpus_is_only_what_was_asked_for():
    c = hr_corpus("synthetic", ("synthetic",), get_model_cfg("spec_student_xs"), synthetic_subjects=2)
    assert len(c) == 2 and all(r.dataset == "synthetic" for r in c)
    with pytest.raises(SqtoolError, match="no folder"):
        hr_corpus("/nonexistent-root", ("troika",), get_model_cfg("spec_student_xs"))


def test_frontend_cfg_follows_the_model_contract_and_refuses_time_domain_models():
    fe = frontend_cfg(get_model_cfg("spec_student_s"), 256.0)
    assert fe.fs_in == 256.0 and fe.fs == 16.0 and tuple(fe.bins_bpm) == (30.0, 229.5, 1.5) and fe.n_channels == 4
    with pytest.raises(SqtoolError, match="no spectral front end"):
        frontend_cfg(get_model_cfg("cnn1d_student_s"), 125.0)
