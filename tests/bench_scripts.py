"""Test helpers: a script of benchmarks/ loaded as a module (the benchmarks are scripts, not a package), and a
--logits-out dump of synthetic logits for the studies that read one."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str):
    """benchmarks/<name>.py, executed once per call as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SCALE = 0.125


def write_dump(folder, seed=0, n_subjects=4, n_windows=40):
    """A --logits-out dump as hr_spectral.save_logits writes it: inner subjects' float out-of-fold logits, one
    held-out subject's int8 logits, truth, keys and the default-chosen decoder."""
    from sqtool.models.decoder import DecoderCfg, synthetic_logits
    from sqtool.models.hr_bins import fit_decoder
    rng = np.random.default_rng(seed)
    cfg = DecoderCfg()
    recs, oof, ys = [], {}, []
    for s in range(n_subjects + 1):
        q, hr = synthetic_logits(rng, n_windows, cfg, outlier=0.3)
        r = SimpleNamespace(dataset="synthetic", record_id=f"r{s}", key=f"synthetic:s{s}", y=hr)
        recs.append(r)
        oof[r.record_id] = q.astype(np.float64) * SCALE
        ys.append(hr)
    held, train = recs[:1], recs[1:]
    base = {**fit_decoder([r.y for r in train], cfg.bins_bpm, 2.0), "temperature": 1.0}
    lq = {f"test/{r.dataset}/{r.record_id}": (oof[r.record_id] / SCALE).astype(np.int8) for r in held}
    load_benchmark("hr_spectral").save_logits(str(folder), held, train, lq, {r.record_id: oof[r.record_id]
                                                                              for r in train}, base, SCALE)
    return train, oof, base


def assert_bad_dumps_refused(mod, tmp_path, capsys, *extra: str) -> None:
    """A dump study's main: an empty --dumps folder and a .npz that is no --logits-out dump are each one line."""
    import pytest
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        mod.main(["--dumps", str(tmp_path / "empty"), "--out", str(tmp_path / "refused"), *extra])
    assert "no .npz files" in capsys.readouterr().err
    np.savez(tmp_path / "empty" / "x.npz", a=np.zeros(3))
    with pytest.raises(SystemExit):
        mod.main(["--dumps", str(tmp_path / "empty"), "--out", str(tmp_path / "refused"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert "not a --logits-out dump" in err[-1]
    assert not (tmp_path / "refused").exists()


def assert_bad_root_refused(mod, fold_fn, tmp_path, capsys) -> None:
    """A dump study that reads the recordings: a missing --data-root is one line, a dump naming a recording not
    under the root is refused by `fold_fn(dump, records, name)`, and nothing is written."""
    import pytest
    write_dump(tmp_path / "d")
    with pytest.raises(SystemExit):
        mod.main(["--dumps", str(tmp_path / "d"), "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert "nope" in capsys.readouterr().err
    dump = mod.load_dump(next((tmp_path / "d").glob("*.npz")))
    with pytest.raises(Exception, match="not under the data root"):
        fold_fn(dump, {}, "fold")
    assert not (tmp_path / "o").exists()
