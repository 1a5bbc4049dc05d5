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


def test_a_csv_cut_inside_its_last_row_loses_that_row_with_a_note(tmp_path, capsys):
    """A CSV that ends inside a row (no final newline, fields missing: still being written, or copied short) is read
    without that row and says so once; it was read as a gap (one NaN sample). A whole last row, or a last row whose
    fields are all there, is kept."""
    from sqtool.data.readers import read_csv
    rows = [f"{i / 64:.6f},{np.sin(i / 5):.5f},0.100" for i in range(640)]
    whole = "time,ppg,acc_x\n" + "\n".join(rows)
    (tmp_path / "cut.csv").write_text(whole + "\n10.000000,0.12")
    (tmp_path / "whole.csv").write_text(whole)                     # no final newline, but the last row is whole
    cut = read_csv(tmp_path / "cut.csv")
    assert len(cut.signals["ppg"]) == 640 and np.isfinite(cut.signals["ppg"]).all()
    err = capsys.readouterr().err
    assert err.count("its last row is cut (2 of 3 fields") == 1 and "left out" in err
    read_csv(tmp_path / "cut.csv")                                 # said once per file
    assert "cut" not in capsys.readouterr().err
    kept = read_csv(tmp_path / "whole.csv")
    assert len(kept.signals["ppg"]) == 640 and "cut" not in capsys.readouterr().err
    assert main(["data", "inspect", "--data", str(tmp_path / "cut.csv")]) == 0
    assert "gaps" not in capsys.readouterr().out


def test_a_last_row_with_every_field_is_kept_even_without_a_newline(tmp_path, capsys):
    """A last row whose fields are all there (one an explicit NaN: no truth for that window) and no final newline is
    a whole row: kept, no note."""
    from sqtool.data.readers._common import read_csv
    (tmp_path / "hr.csv").write_text("t,hr\n0,80.0\n2,81.0\n4,NaN")
    df = read_csv(tmp_path / "hr.csv")
    assert len(df) == 3 and np.isnan(df["hr"].iloc[-1]) and "cut" not in capsys.readouterr().err
    (tmp_path / "sp.txt").write_text("0 80.0\n2 81.0\n4")                  # whitespace-separated, cut
    df = read_csv(tmp_path / "sp.txt", sep=r"\s+", header=None, engine="python")
    assert len(df) == 2 and "1 of 2 fields" in capsys.readouterr().err
