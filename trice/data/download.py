"""``trice download-data``: fetch the benchmark files of :mod:`trice.data.manifest` into a data directory.

Every file is checked against the manifest's size and sha256 before it takes its place, so a data
directory holds either the exact bytes the loaders were written against or nothing:

* **idempotent**: a file already present with the right hash is not fetched again;
* **resumable**: bytes go to ``<file>.part`` first; a rerun continues a ``.part`` with an HTTP
  ``Range`` request (or starts over when the server ignores it), then verifies and renames it;
* **checked**: a hash mismatch deletes the ``.part`` and stops with an error naming the file and
  its URL;
* **offline-aware**: a host that cannot be reached (DNS failure, connection refused) stops the run
  with one line saying what to do;
* **bounded**: a server is trusted for nothing the manifest says: a body past the file's size, a
  ``Content-Encoding`` other than identity, or a file slower than its deadline stops the transfer,
  so an endless, compressed or dripping body can neither fill the disk nor hang the run.

A mirror (``--mirror URL`` or ``$TRICE_DATA_MIRROR``) is any HTTP server laid out as the data
directory itself: each file is fetched from ``<mirror>/<path under the data dir>`` (derived files
included, so no wheel is fetched) and checked against the same hashes. A local directory (a path, or
a ``file://`` URL: a copy on a shared disk, an unpacked archive) is a mirror too: its files are
copied, through the same ``.part`` and the same checks.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
import urllib3
from tqdm import tqdm

from trice.utils.artefacts import sha256_file
from trice.utils.config import ConfigError
from trice.core.paths import data_dir_target
from trice.data.manifest import FILES, Archive, DataFile, select

log = logging.getLogger(__name__)

MIRROR_ENV = "TRICE_DATA_MIRROR"
MANIFEST_NAME = "MANIFEST.md"
ARCHIVE_DIR = ".downloads"  # wheels fetched whole live here until their members are extracted
CHUNK_BYTES = 1 << 16


class DownloadError(OSError):
    """A file could not be fetched or verified. An OSError, so the CLI prints one line and exits 2."""


class OfflineError(DownloadError):
    """The source host could not be reached at all (no network, DNS failure, connection refused)."""


class ChecksumError(DownloadError):
    """Fetched bytes differ from the manifest; nothing of them is kept."""


@dataclass
class DownloadConfig:
    """Which files to fetch, from where, into which data directory."""

    data_dir: str = field(default="", metadata={"help": "Data directory to fill (created if missing); else $TRICE_DATA_DIR, else ../shared/data."})
    datasets: list[str] = field(
        default_factory=lambda: ["all"],
        metadata={
            "help": "Directories (gsm8k, svamp, asdiv, webquestions, nq_open, dpr_topics_anserini, lama_trex, "
            "xquad, wiki_corpus) or groups (all, math, qa, lama, mlqa, corpus) to fetch."
        },
    )
    mirror: str = field(
        default="",
        metadata={
            "help": f"A mirror laid out as the data directory, an http(s) URL or a local directory (a path or file:// URL); "
            f"replaces every source URL (else ${MIRROR_ENV}, else the public sources)."
        },
    )
    timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for a connection or for the next bytes."})
    min_rate: float = field(
        default=8.0,
        metadata={"help": "Slowest transfer accepted, in kB/s: a file must arrive within --timeout plus its size at this rate (else it stops, resumable)."},
    )

    def validate(self) -> None:
        for name in ("timeout", "min_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a finite number > 0, got {value}")


def is_verified(path: Path, size: int, sha256: str) -> bool:
    """``path`` holds exactly the expected bytes (the size is checked first: it costs nothing)."""
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256


def _short_reason(err: Exception) -> str:
    """``Connection refused`` out of requests' nested message (which names the pool, the retries and the URL)."""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
    return found[-1].strip() if found else type(err).__name__


class _Progress:
    """One byte-count bar for the whole run, opened on the first bytes, so a run that cannot
    connect prints nothing but its error line."""

    def __init__(self, total: int):
        self.total = total
        self.bar: tqdm | None = None

    def update(self, n: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=self.total, unit="B", unit_scale=True, desc="download-data")
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Fetcher:
    """The HTTP side: one session, the timeouts, the progress bar.

    A server is trusted for nothing the manifest already says: a body is read as it was stored
    (``Accept-Encoding: identity``; any other ``Content-Encoding`` is refused, so a compressed bomb
    never expands on disk), no byte past the manifest's size is written, and each file must arrive
    within ``timeout`` + its size at ``min_rate`` bytes/s, however slowly its bytes drip in."""

    session: requests.Session
    timeout: float
    progress: _Progress
    min_rate: float = 8192.0  # bytes/s

    def stream(self, url: str, part: Path, size: int) -> None:
        """Fetch ``url`` into ``part``, continuing a partial ``part`` with a Range request."""
        have = part.stat().st_size if part.exists() else 0
        if have > size:  # longer than any good copy: start over
            part.unlink()
            have = 0
        if have == size:  # complete; the caller verifies it
            return
        headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={have}-"} if have else {})
        try:
            response = self.session.get(url, headers=headers, stream=True, timeout=self.timeout)
        except requests.ConnectionError as err:
            raise OfflineError(
                f"cannot reach {urlsplit(url).netloc} ({_short_reason(err)}): connect to the internet and run "
                f"`trice download-data` again, or point --mirror / ${MIRROR_ENV} at a copy of the data directory"
            ) from None
        except requests.Timeout:
            raise DownloadError(f"{url}: no answer within {self.timeout:g} s; run again to resume") from None
        with response:
            if response.status_code == 416 and have:  # our .part is not a prefix the server knows: start over
                part.unlink()
                return self.stream(url, part, size)
            if response.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise DownloadError(f"{url}: the server sent Content-Encoding {encoding[:40]!r}; the manifest's files are fetched as stored: nothing kept")
            resumed = bool(have) and response.status_code == 206
            self._write(response, url, part, "ab" if resumed else "wb", size)

    def _write(self, response: requests.Response, url: str, part: Path, mode: str, size: int) -> None:
        """The body into ``part``, stopped (and the ``.part`` deleted) at the first byte past ``size``. A
        body shorter than the server announced, or slower than the file's deadline, is an interruption
        that keeps the ``.part`` (never longer than the file) for a resume."""
        announced = response.headers.get("Content-Length")
        start = part.stat().st_size if mode == "ab" else 0
        allowed = self.timeout + size / self.min_rate
        deadline, written, reason = time.monotonic() + allowed, 0, None
        with part.open(mode) as fh:
            while reason is None:
                try:
                    chunk = response.raw.read1(CHUNK_BYTES, decode_content=False)  # one socket read: bounded by the timeout
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
                    reason = _short_reason(err)
                    break
                if not chunk:
                    break
                if start + written + len(chunk) > size:
                    fh.close()
                    part.unlink()
                    raise DownloadError(f"{url}: the server sent more than the manifest's {size} bytes; stopped there, nothing kept")
                fh.write(chunk)
                written += len(chunk)
                self.progress.update(len(chunk))
                if time.monotonic() > deadline:
                    reason = f"slower than {self.min_rate / 1024:g} kB/s: {written} bytes in {allowed:.0f} s"
        got = part.stat().st_size - start
        if reason is None and announced is not None and announced.isdigit() and got < int(announced):
            reason = f"{got} of {announced} bytes"
        if reason is not None:
            raise DownloadError(f"{url}: transfer interrupted ({reason}); run again to resume from {part}")

    def fetch_verified(self, url: str, dest: Path, size: int, sha256: str) -> None:
        """``url`` into ``dest`` via ``dest.part``, renamed only once its size and sha256 match."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        resumed = part.is_file() and part.stat().st_size > 0
        self.stream(url, part, size)
        if is_verified(part, size, sha256):
            os.replace(part, dest)
            return
        got_size, got_sha = part.stat().st_size, sha256_file(part)
        part.unlink()
        if resumed:  # the old .part may hold other bytes (a changed mirror): one fresh try
            log.warning("%s: resumed download did not verify; fetching it again from the start", dest)
            return self.fetch_verified(url, dest, size, sha256)
        raise ChecksumError(
            f"{dest}: checksum mismatch for {url}: expected {size} bytes with sha256 {sha256}, got {got_size} bytes with sha256 {got_sha}; nothing kept"
        )


def _extract_member(archive_path: Path, archive_url: str, entry: DataFile, dest: Path) -> None:
    """``entry.source`` out of a verified archive into ``dest`` (via a .part, checked like a download)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with zipfile.ZipFile(archive_path) as zf, zf.open(entry.source) as src, part.open("wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                out.write(chunk)
    except KeyError:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{archive_path}: no member {entry.source} (from {archive_url})") from None
    if not is_verified(part, entry.size, entry.sha256):
        part.unlink()
        raise ChecksumError(f"{dest}: checksum mismatch for {entry.source} in {archive_url}; nothing kept")
    os.replace(part, dest)


def _fetch_from_archive(fetcher: _Fetcher, archive: Archive, entries: list[DataFile], root: Path) -> None:
    """Fetch the archive once, extract every wanted member, then delete the archive."""
    archive_path = root / ARCHIVE_DIR / archive.filename
    if not is_verified(archive_path, archive.size, archive.sha256):
        fetcher.fetch_verified(archive.url, archive_path, archive.size, archive.sha256)
    for entry in entries:
        _extract_member(archive_path, archive.url, entry, root / entry.path)
    archive_path.unlink()
    if not any(archive_path.parent.iterdir()):
        archive_path.parent.rmdir()


def local_mirror(mirror: str) -> Path | None:
    """The directory a local mirror names (a ``file://`` URL or a path), None for an http(s) one;
    ConfigError for anything else, or a directory that is not there."""
    parts = urlsplit(mirror)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"--mirror: {mirror}: a file:// URL names a directory on this machine (file:///path)")
        path = Path(unquote(parts.path))
    elif parts.scheme and len(parts.scheme) > 1:  # one letter: a Windows drive, a path
        raise ConfigError(f"--mirror: {mirror}: expected an http(s) URL, a file:// URL or a local directory")
    else:
        path = Path(mirror).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--mirror: {mirror}: no such directory {path}")
    return path


def copy_verified(source: Path, dest: Path, size: int, sha256: str) -> None:
    """A local mirror's ``source`` into ``dest`` via ``dest.part``, renamed only once its size and
    sha256 match, as a download is; a missing or different file names both paths."""
    if not source.is_file():
        raise DownloadError(f"{dest}: the mirror has no {source}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, part)
    if not is_verified(part, size, sha256):
        got = part.stat().st_size
        part.unlink()
        raise ChecksumError(f"{dest}: checksum mismatch for {source}: expected {size} bytes with sha256 {sha256}, got {got} bytes; nothing kept")
    os.replace(part, dest)


def mirror_url(mirror: str, entry: DataFile) -> str:
    """The entry's URL on a mirror laid out as the data directory."""
    return f"{mirror.rstrip('/')}/{quote(entry.path)}"


def manifest_text(entries: tuple[DataFile, ...] = FILES) -> str:
    """MANIFEST.md for a complete download: each file, where it came from and its sha256."""
    lines = [
        "# Benchmark data fetched by `trice download-data`",
        "",
        "Every file equals the public file named beside it (size and sha256 checked); see docs/data.md "
        "for the layout and trice/data/manifest.py for the manifest. Licences are the sources' own.",
        "",
        "| file | source | licence | bytes | sha256 |",
        "|---|---|---|---|---|",
    ]
    for entry in entries:
        where = f"{entry.origin.citation} : {entry.source}"
        lines.append(f"| {entry.path} | {where} | {entry.origin.license} | {entry.size} | {entry.sha256} |")
    return "\n".join(lines) + "\n"


def _plan(entries: Sequence[DataFile], root: Path, mirror: str) -> tuple[list[tuple[str, DataFile]], dict[Archive, list[DataFile]]]:
    """What is missing: direct downloads ``(url, entry)`` and archive members grouped by archive."""
    direct: list[tuple[str, DataFile]] = []
    members: dict[Archive, list[DataFile]] = {}
    for entry in entries:
        if is_verified(root / entry.path, entry.size, entry.sha256):
            continue
        if mirror:
            direct.append((mirror_url(mirror, entry), entry))
        elif entry.origin.archive is not None:
            members.setdefault(entry.origin.archive, []).append(entry)
        else:
            direct.append((entry.url, entry))
    return direct, members


def download(data_dir: Path, entries: Sequence[DataFile], mirror: str = "", timeout: float = 60.0, min_rate: float = 8.0) -> dict[str, Any]:
    """Fetch the missing or wrong ones of ``entries`` into ``data_dir``; return what was done.
    ``timeout``: seconds for a connection or the next bytes; ``min_rate``: the slowest average kB/s
    a file may arrive at (its deadline, see :class:`_Fetcher`).

    MANIFEST.md is written last, only when the directory then holds every file of the manifest
    (and has none yet), so its presence means "complete" (the Makefile's demo target relies on it).
    """
    local = local_mirror(mirror) if mirror else None
    data_dir.mkdir(parents=True, exist_ok=True)
    direct, members = _plan(entries, data_dir, mirror)
    total = sum(entry.size for _, entry in direct) + sum(archive.size for archive in members)
    copied = 0
    if local is not None:  # a directory: copied here, nothing goes over the network
        for _, entry in tqdm(direct, desc="download-data (local mirror)", unit="file"):
            copy_verified(local / entry.path, data_dir / entry.path, entry.size, entry.sha256)
        copied, direct = len(direct), []
    fetcher = _Fetcher(requests.Session(), timeout, _Progress(total), min_rate * 1024)
    try:
        for url, entry in direct:
            fetcher.fetch_verified(url, data_dir / entry.path, entry.size, entry.sha256)
        for archive, wanted in members.items():
            _fetch_from_archive(fetcher, archive, wanted, data_dir)
    finally:
        fetcher.progress.close()
        fetcher.session.close()
    fetched = copied + len(direct) + sum(len(wanted) for wanted in members.values())
    manifest = data_dir / MANIFEST_NAME
    chosen = {entry.path for entry in entries}
    complete = all(entry.path in chosen or is_verified(data_dir / entry.path, entry.size, entry.sha256) for entry in FILES)
    if complete and not manifest.exists():
        manifest.write_text(manifest_text(), encoding="utf-8")
    return {
        "data_dir": str(data_dir),
        "files": len(entries),
        "fetched": fetched,
        "already_verified": len(entries) - fetched,
        "bytes": total,
        "complete": complete,
    }


def run_download(config: DownloadConfig) -> dict[str, Any]:
    """The ``trice download-data`` command."""
    mirror = config.mirror or os.environ.get(MIRROR_ENV, "")
    try:
        entries = select(config.datasets)
    except ValueError as err:
        raise ConfigError(f"--datasets: {err}") from None
    return download(data_dir_target(config.data_dir or None), entries, mirror, config.timeout, config.min_rate)
