"""`sqtool data download` against a loopback HTTP server serving ../shared/data (no external network)."""
from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from sqtool.core import SqtoolError
from sqtool.data import download as dl
from sqtool.data.readers import read_dataset


SUMS = {name: dl.load_sums(name)[0] for name in dl.REGISTRY}
ORIGINALS = {name: dl.load_sums(name)[1] for name in dl.REGISTRY}


@pytest.mark.parametrize("name", list(dl.REGISTRY))
def test_every_dataset_sums_load_as_sha256(name):
    """Each dataset's package-data table loads and holds only 64-hex sha256 values and int sizes."""
    import re
    files, originals = dl.load_sums(name)
    assert files, name
    rows = [(v[0], v[1]) for v in files.values()] + [(v[1], v[2]) for v in originals.values()]
    for sha, size in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", sha) and isinstance(size, int) and size >= 0
    assert set(originals) <= set(files)


def test_bad_sums_table_is_one_clear_line(monkeypatch, tmp_path):
    (tmp_path / "download_sums").mkdir()
    (tmp_path / "download_sums" / "troika.json").write_text('{"files": {"a.mat": ["abc", 3]}}')
    from types import SimpleNamespace
    monkeypatch.setattr(dl, "resources", SimpleNamespace(files=lambda pkg: tmp_path))
    with pytest.raises(SqtoolError, match="bad entry for a.mat") as e:
        dl.load_sums("troika")
    assert "\n" not in str(e.value)


def test_regen_sums_reproduces_package_data(data_root, tmp_path):
    out = dl.regen_sums(data_root, tmp_path)
    from importlib import resources
    for name in dl.REGISTRY:
        pkg = resources.files("sqtool.data").joinpath(dl.SUMS_DIR, f"{name}.json").read_text()
        assert (out / f"{name}.json").read_text() == pkg, name


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves files under server.root with Range support; can corrupt or drop chosen paths."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        rel = self.path.lstrip("/")
        import urllib.parse
        rel = urllib.parse.unquote(rel)
        f = srv.root / rel
        srv.log.append((rel, self.headers.get("Range")))
        if not f.is_file():
            self.send_error(404)
            return
        data = f.read_bytes()
        if rel in srv.corrupt:
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if rel in srv.drop and srv.drop[rel] > 0:            # close the connection mid-body
            srv.drop[rel] -= 1
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(data_root):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.root, srv.corrupt, srv.drop, srv.log, srv.ranges = Path(data_root), set(), {}, [], True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_sums_table_matches_shared_data(data_root):
    """The embedded table is the data folders' SHA256SUMS (spot check + file counts)."""
    for name, table in SUMS.items():
        lines = [l for l in (data_root / name / "SHA256SUMS").read_text().splitlines() if l.strip()]
        assert len(lines) == len(table), name
        sha, rel = lines[0].split(maxsplit=1)
        assert table[rel][0] == sha
    assert len(ORIGINALS["bidmc"]) == 53


def test_download_over_http_then_read(server, tmp_path):
    srv, url = server
    r = dl.download("but_ppg", tmp_path, base_url=url)
    assert r["fetched"] == 4 and r["skipped"] == 0
    recs = read_dataset(tmp_path / "but_ppg")
    assert len(recs) == 51
    assert not list((tmp_path / "but_ppg").rglob("*.part"))
    again = dl.download("but_ppg", tmp_path, base_url=url)          # idempotent: everything verified, skipped
    assert again["fetched"] == 0 and again["skipped"] == 4


def test_dropped_connection_resumes(server, tmp_path):
    srv, url = server
    srv.drop["but_ppg/database/myData.csv"] = 2                      # dies twice mid-body
    logs = []
    r = dl.download("but_ppg", tmp_path, base_url=url, log=logs.append)
    assert r["fetched"] == 4
    ranges = [rg for rel, rg in srv.log if rel == "but_ppg/database/myData.csv"]
    assert ranges[0] is None and all(rg and rg.startswith("bytes=") for rg in ranges[1:]) and len(ranges) == 3
    assert any("resuming" in m for m in logs)
    assert dl.sha256_file(tmp_path / "but_ppg/database/myData.csv") == SUMS["but_ppg"]["database/myData.csv"][0]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    srv, url = server
    srv.ranges = False
    srv.drop["but_ppg/database/myData.csv"] = 1
    dl.download("but_ppg", tmp_path, base_url=url)
    assert dl.sha256_file(tmp_path / "but_ppg/database/myData.csv") == SUMS["but_ppg"]["database/myData.csv"][0]


def test_bounded_retries(server, tmp_path):
    srv, url = server
    srv.drop["but_ppg/database/myData.csv"] = 100
    with pytest.raises(SqtoolError, match="failed after 2 retries"):
        dl.download("but_ppg", tmp_path, base_url=url, retries=2)
    assert not (tmp_path / "but_ppg/database/myData.csv").exists()


def test_corrupted_file_leaves_nothing(server, tmp_path):
    srv, url = server
    srv.corrupt.add("but_ppg/database/myData.csv")
    with pytest.raises(SqtoolError, match="SHA-256 mismatch") as e:
        dl.download("but_ppg", tmp_path, base_url=url)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "but_ppg/database/myData.csv").exists()
    assert not list(tmp_path.rglob("*.part"))


def test_offline_is_one_clear_line(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                                        # nothing listens there
    with pytest.raises(SqtoolError, match="offline") as e:
        dl.download("but_ppg", tmp_path, base_url=f"http://127.0.0.1:{port}", retries=1, timeout=2)
    assert "\n" not in str(e.value)
    assert not list(tmp_path.rglob("*.part"))


def test_mirror_install_and_corrupt_mirror(data_root, tmp_path):
    r = dl.download("troika", tmp_path / "a", mirror=data_root)
    assert r["fetched"] == len(SUMS["troika"])
    assert len(read_dataset(tmp_path / "a" / "troika")) == 13
    bad = tmp_path / "mirror" / "but_ppg"
    shutil.copytree(data_root / "but_ppg", bad)
    p = bad / "database" / "subject-info.csv"
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(SqtoolError, match="SHA-256 mismatch"):
        dl.download("but_ppg", tmp_path / "b", mirror=tmp_path / "mirror")
    assert not (tmp_path / "b/but_ppg/database/subject-info.csv").exists()
    assert not list((tmp_path / "b").rglob("*.part"))


def test_bidmc_original_layout_from_physionet_style_server(data_root, tmp_path, server):
    """Without a mirror, BIDMC Signals come as PhysioNet's .csv, checked against PhysioNet's hash."""
    import gzip
    srv, url = server
    site = tmp_path / "physionet"
    (site / "bidmc_csv").mkdir(parents=True)
    for rel in SUMS["bidmc"]:
        src = data_root / "bidmc" / rel
        if rel in ORIGINALS["bidmc"]:
            if rel.startswith("bidmc_csv/bidmc_01_"):
                (site / ORIGINALS["bidmc"][rel][0]).write_bytes(gzip.decompress(src.read_bytes()))
        elif rel.startswith("bidmc_csv/bidmc_01_") or "/" not in rel:
            (site / rel).write_bytes(src.read_bytes())
    srv.root = site
    orig = dl.REGISTRY["bidmc"]
    dl.REGISTRY["bidmc"] = dl.Source(url + "/{path}", orig.license, orig.cite)
    try:
        with pytest.raises(SqtoolError, match="404"):                # bidmc_02 is not on this test site
            dl.download("bidmc", tmp_path / "out")
    finally:
        dl.REGISTRY["bidmc"] = orig
    got = tmp_path / "out/bidmc/bidmc_csv/bidmc_01_Signals.csv"
    assert got.is_file() and dl.sha256_file(got) == ORIGINALS["bidmc"]["bidmc_csv/bidmc_01_Signals.csv.gz"][1]
    r = read_dataset(tmp_path / "out/bidmc")
    assert [x.record_id for x in r] == ["bidmc01"] and len(r[0].signals["ppg"]) == 60001


def test_unknown_dataset(tmp_path):
    with pytest.raises(SqtoolError, match="unknown dataset"):
        dl.download("imagenet", tmp_path)


class _FullDisk:
    """A file object whose writes fail as on a full disk (ENOSPC)."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()

    def write(self, data):
        import errno
        raise OSError(errno.ENOSPC, "No space left on device")


def test_download_onto_a_full_disk_is_one_line_not_retried(server, tmp_path, monkeypatch, capsys):
    srv, url = server
    monkeypatch.setattr(dl, "open", lambda *a, **kw: _FullDisk(open(*a, **kw)), raising=False)
    logs = []
    with pytest.raises(SqtoolError, match="disk full while writing") as e:
        dl.download("but_ppg", tmp_path, base_url=url, retries=3, log=logs.append)
    assert "\n" not in str(e.value) and ".part" in str(e.value)
    assert len(srv.log) == 1 and not any("resuming" in m for m in logs)   # one request, no retry


def test_mirror_copy_onto_a_full_disk_is_one_line(data_root, tmp_path, monkeypatch):
    import errno

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(dl.shutil, "copyfile", full)
    with pytest.raises(SqtoolError, match="disk full while writing"):
        dl.download("but_ppg", tmp_path, mirror=data_root)
    assert not list(tmp_path.rglob("*.part"))


def test_wrist_exercise_from_its_repository_layout(data_root, tmp_path, server):
    """wrist_exercise comes from a GitHub repository whose folders differ from the reference layout (edf/ is
    Assignment1/edf/, beats/ is Assignment3/ECG/ there): every file is fetched from its source path, hash-checked
    and installed under its reference path, where the reader finds the 13 recordings with their beats; the kept-back
    subjects s8 and s9 (an independent evaluation set) are not in the table."""
    srv, url = server
    files = SUMS["wrist_exercise"]
    src = dl.REGISTRY["wrist_exercise"]
    assert len(files) == 26 and not any(Path(r).name.startswith(("s8_", "s9_")) for r in files)
    assert src.source_path("edf/s2_walk.edf") == "Assignment1/edf/s2_walk.edf"
    assert src.source_path("beats/s2_walk.txt") == "Assignment3/ECG/s2_walk.txt"
    site = tmp_path / "github"
    for rel in files:
        dest = site / src.source_path(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(data_root / "wrist_exercise" / rel)
    srv.root = site
    dl.REGISTRY["wrist_exercise"] = dl.Source(url + "/{path}", src.license, src.cite, src.note, src.folders)
    try:
        r = dl.download("wrist_exercise", tmp_path / "out")
    finally:
        dl.REGISTRY["wrist_exercise"] = src
    assert r["fetched"] == 26 and all(rel.startswith(("Assignment1/", "Assignment3/")) for rel, _ in srv.log)
    recs = read_dataset(tmp_path / "out/wrist_exercise")
    assert len(recs) == 13 and {x.record_id.split("_")[0] for x in recs} >= {"s2", "s6"}
