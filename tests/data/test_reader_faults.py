"""Reader faults found by fuzzing: a corrupt WFDB header and a TROIKA record without its BPM file."""
import json

import numpy as np
import scipy.io as sio

from sqtool.cli import main
from sqtool.data.readers import read_dataset, troika


def test_wfdb_header_without_signal_names_is_one_line(tmp_path, capsys):
    import wfdb
    x = np.sin(np.arange(2000) / 5)[:, None]
    wfdb.wrsamp("rec", fs=100, units=["mV"], sig_name=["PLETH"], p_signal=x, fmt=["16"], write_dir=str(tmp_path))
    hea = tmp_path / "rec.hea"
    assert main(["data", "inspect", "--data", str(hea)]) == 0
    capsys.readouterr()
    hea.write_text("rec 1 100 2000\nrec.dat 16\n")                       # signal line without its description
    assert main(["data", "inspect", "--data", str(hea)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sqtool: error: {hea}: corrupt WFDB header") and "\n" not in err
    assert "AttributeError" not in err and "NoneType" not in err


def _troika(root, n=2000):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in ("01", "02"):
        sio.savemat(root / f"DATA_{i}_TYPE01.mat", {"sig": rng.standard_normal((6, n))})
    sio.savemat(root / "DATA_01_TYPE01_BPMtrace.mat", {"BPM0": np.full((troika.n_windows(n), 1), 80.0)})
    return root


def test_troika_record_without_bpm_file_is_reported(tmp_path, capsys):
    root = _troika(tmp_path / "troika")
    recs = {r.record_id: r for r in read_dataset(root)}
    assert "hr" in recs["DATA_01_TYPE01"].labels and not recs["DATA_01_TYPE01"].meta["truth_missing"]
    lone = recs["DATA_02_TYPE01"]
    assert "hr" not in lone.labels and lone.meta["truth_missing"]
    assert lone.meta["truth_expected"].endswith("DATA_02_TYPE01_BPMtrace.mat")
    assert main(["data", "inspect", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "warning" in x)
    assert "1 record(s) without their label file" in line and "DATA_02_TYPE01_BPMtrace.mat" in line
    assert main(["data", "inspect", "--data", str(root), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [u["record"].endswith("DATA_02_TYPE01.mat") for u in s["unlabelled"]] == [True]
