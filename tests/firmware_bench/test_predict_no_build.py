"""predict's compiled host runtimes (the C pipeline, the network's C) are built in a temporary folder: the run folder
holds the results only (CSVs, plots, summary.json, config.yaml), never a build/ of objects and binaries, also when the
run stops part way."""
from __future__ import annotations

import pytest
from fwb_helpers import write_wrist_npz

from sqtool.firmware_bench import predict as P
from sqtool.firmware_bench.predict import PredictConfig, predict


@pytest.mark.parametrize("runtime", ["c_pipeline", "c"])
def test_a_predict_run_folder_holds_no_build(spec_export_dir, tmp_path, runtime):
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=20, ppg2=True)
    out = tmp_path / "pred"
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), runtime=runtime, out=str(out)))
    assert res["recordings"][0]["csv"] == "a.csv"
    assert not (out / "build").exists()
    assert {p.name for p in out.iterdir() if p.is_dir()} == set()
    assert {"a.csv", "summary.json", "config.yaml"} <= {p.name for p in out.iterdir()}


def test_a_predict_stopped_after_its_build_leaves_none(spec_export_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=20, ppg2=True)
    built = []
    run = P.run_spectral

    def stopped(art, prep, work, *a, **k):        # Ctrl-C once the runtime is built and has run
        run(art, prep, work, *a, **k)
        built.append(work)
        assert any(work.iterdir())
        raise KeyboardInterrupt
    monkeypatch.setattr(P, "run_spectral", stopped)
    out = tmp_path / "pred"
    with pytest.raises(KeyboardInterrupt):
        predict(PredictConfig(model=str(spec_export_dir), data=str(data), runtime="c_pipeline", out=str(out)))
    assert built and not built[0].exists() and not (out / "build").exists()
