"""benchmarks/downstream_skill.py: AF against each other rhythm reads each window's rhythm from its recording."""
import numpy as np

from bench_scripts import load_benchmark


def test_af_per_rhythm_reads_the_rhythm_of_every_window(data_root):
    af_per_rhythm = load_benchmark("downstream_skill").af_per_rhythm
    from sqtool.core import ModelCfg
    from sqtool.data.tasks import load_task, task_model_cfg
    cfg = task_model_cfg("af", ModelCfg(name="default", family="resnet1d").replace(fs=100.0))
    td = load_task("af", str(data_root), cfg)
    y = td.y[:, 0]
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(len(y), 1))
    out = af_per_rhythm(str(data_root), td.record_ids, y, {"perfect": y[:, None], "noise": noise,
                                                           "trivial": noise})
    assert set(out) == {"sinus", "PVC", "PAC", "VT", "SVT"} and "trivial" not in out["VT"]
    assert sum(r["windows"] for r in out.values()) == int((y < 0.5).sum())       # every non-AF window once
    assert all(r["perfect"] == 1.0 and 0.3 < r["noise"] < 0.7 for r in out.values())
