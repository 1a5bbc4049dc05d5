"""The default band-pass 0.5-8 Hz is defined once (core/model_cfg.py); a missing band in metadata is an error."""
import re
from pathlib import Path

import pytest

import sqtool
from sqtool.core import DEFAULT_BAND, ModelCfg, SqtoolError

PKG = Path(sqtool.__file__).parent
LITERAL = re.compile(r"[(\[]\s*0?\.5\s*,\s*8(?:\.0*)?\s*[)\]]")             # (0.5, 8.0), [0.5, 8], ...
FIELD_DEFAULT = re.compile(r"default\s*=\s*(?:0?\.5|8(?:\.0*)?)\s*,.*band", re.IGNORECASE)


def test_default_band_literal_only_in_core():
    hits = []
    for p in sorted(PKG.rglob("*.py")):
        if p == PKG / "core" / "model_cfg.py":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if LITERAL.search(code) or FIELD_DEFAULT.search(code):
                hits.append(f"{p.relative_to(PKG)}:{i}: {line.strip()}")
    assert not hits, "the default band written outside core/model_cfg.py:\n" + "\n".join(hits)
    assert LITERAL.search("band=(0.5, 8.0)") and LITERAL.search('"band": [0.5, 8]')   # the pattern bites


def test_stage_defaults_are_cores():
    from sqtool.data import pairs, preprocess, quality, tasks
    assert preprocess.DEFAULT_BAND is DEFAULT_BAND and quality.BAND is DEFAULT_BAND
    assert (pairs.PairsConfig().band_lo, pairs.PairsConfig().band_hi) == DEFAULT_BAND
    assert all(tasks.TASK_SPECS[t]["band"] == DEFAULT_BAND for t in ("hr", "af", "bp", "quality"))
    assert ModelCfg(name="m", family="f").band == DEFAULT_BAND


def _cfg(**kw):
    d = ModelCfg(name="m", family="cnn1d_student", task="hr", outputs=("hr_bpm",), units=("bpm",)).to_dict()
    d.update(kw)
    return d


def test_metadata_without_band_is_refused():
    from sqtool.export.metadata import build_metadata
    d = _cfg()
    d.pop("band")
    with pytest.raises(SqtoolError, match="no 'band'") as e:
        build_metadata({"model_cfg": d, "kind": "student_int8", "path": "x.pt"}, "0" * 64)
    assert "x.pt" in str(e.value)
    with pytest.raises(SqtoolError, match="band must be"):
        build_metadata({"model_cfg": _cfg(band=[1.0]), "kind": "student_int8"}, "0" * 64)
    assert build_metadata({"model_cfg": _cfg(band=None), "kind": "student_int8"}, "0" * 64)["band"] is None
    assert build_metadata({"model_cfg": _cfg(band=[0.05, 8.0]), "kind": "student_int8"}, "0" * 64)["band"] == \
        [0.05, 8.0]
