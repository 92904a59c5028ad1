"""Download a model file from a Hugging Face-style hub: resumable, verified, placed atomically.

Why not huggingface_hub: current hub repositories serve large files through the Xet protocol,
which huggingface_hub then requires (a native extension) and which a loopback test server
cannot play; its progress is a tqdm bar and it has no cancel. The plain ``resolve`` URL works
for every repository, so this module speaks it directly with the standard library:

1. ``HEAD {endpoint}/{repo}/resolve/{revision}/{file}`` without following the redirect: the
   hub answers with ``X-Linked-Etag`` (the file's SHA-256) and ``X-Linked-Size``.
2. ``GET`` the file into ``<dest>.part`` with ``Range: bytes=N-`` when a partial exists; a
   sidecar ``<dest>.part.json`` remembers which file (size + SHA-256) the partial belongs to.
3. Hash while writing; at the end check size and SHA-256, then ``os.replace`` the partial onto
   the destination. A file that fails the check is deleted and never placed; a dropped
   connection or a cancel keeps the partial for the next attempt.

``HF_ENDPOINT`` sets the endpoint (tests point it at a server on 127.0.0.1).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.net.policy import OfflineError, require_online
from app.core.atomic import describe_os_error
from app.core.errors import UserError

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 16
TIMEOUT_S = 30
DISK_MARGIN = 100_000_000
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[int, int, str], None]


class DownloadError(UserError, RuntimeError):
    """A download failed; the message says why and whether trying again resumes."""


class DownloadCancelled(DownloadError):
    """Stopped by the user; the partial file is kept and the next attempt resumes. A UserError
    like its base: the Models window shows its message."""


class DownloadInterrupted(DownloadError):
    """The connection broke; the partial file is kept and the next attempt resumes."""


class DownloadOffline(DownloadError):
    """Offline mode is on; nothing was contacted."""


class VerificationError(DownloadError):
    """The downloaded bytes are not the published file; they were deleted."""


@dataclass(frozen=True)
class RemoteFile:
    url: str         # where the bytes are (after the hub's redirect)
    size: int | None
    sha256: str | None


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def hub_url(repo_id: str, filename: str, revision: str = "main") -> str:
    quoted = "/".join(urllib.parse.quote(p) for p in filename.split("/"))
    return f"{endpoint()}/{repo_id}/resolve/{urllib.parse.quote(revision)}/{quoted}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _sha_from(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().strip('"').lower()
    if v.startswith("w/"):
        v = v[2:].strip('"')
    return v if _SHA_RE.match(v) else None


def remote_file(url: str, timeout: float = TIMEOUT_S) -> RemoteFile:
    """What the hub says about the file: its real location, size and SHA-256."""
    try:
        require_online("Downloading a model")
    except OfflineError as e:
        raise DownloadOffline(str(e)) from None
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, method="HEAD", headers={"Accept-Encoding": "identity"})
    try:
        try:
            resp = opener.open(req, timeout=timeout)
            status, headers = resp.status, resp.headers
            resp.close()
        except urllib.error.HTTPError as e:  # 3xx arrive here with the redirect handler off
            if e.code not in (301, 302, 303, 307, 308):
                raise
            status, headers = e.code, e.headers
    except urllib.error.HTTPError as e:
        hint = " (a gated or private repository needs a token)" if e.code in (401, 403) else ""
        raise DownloadError(f"The server refused {url}: HTTP {e.code}{hint}.") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"Cannot reach {urllib.parse.urlsplit(url).netloc}: {_why(e)}. "
                            "Check the network connection and try again.") from None
    location = headers.get("Location")
    final = urllib.parse.urljoin(url, location) if status in (301, 302, 303, 307, 308) and location else url
    size = headers.get("X-Linked-Size") or (headers.get("Content-Length") if final == url else None)
    sha = _sha_from(headers.get("X-Linked-Etag")) or _sha_from(headers.get("ETag"))
    return RemoteFile(url=final, size=int(size) if size and size.isdigit() else None, sha256=sha)


def _why(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    return str(reason or e.strerror or e) if isinstance(e, OSError) else str(reason or e)


def _part_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def partial_size(dest: Path) -> int:
    part, _ = _part_paths(dest)
    return part.stat().st_size if part.exists() else 0


def _fmt_progress(done: int, total: int, speed: float) -> str:
    mb = 1_000_000
    s = f"{done / mb:,.1f} of {total / mb:,.1f} MB" if total else f"{done / mb:,.1f} MB"
    if speed > 0:
        s += f" · {speed / mb:.1f} MB/s"
        if total and total > done:
            left = (total - done) / speed
            s += f" · {int(left // 60)} min {int(left % 60)} s left" if left >= 60 else f" · {int(left)} s left"
    return s


def download(url: str, dest: Path, expected_sha256: str | None = None, expected_size: int | None = None,
             progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
             timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest``; returns ``dest`` once the bytes are verified.

    ``expected_sha256``/``expected_size`` (from the catalog) win over what the server says;
    if neither names a SHA-256 the download is refused, since nothing could be verified.
    """
    progress = progress or (lambda *_: None)
    cancelled = cancelled or (lambda: False)
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"Cannot create the folder {dest.parent}: {describe_os_error(e)}. "
                            "Nothing was downloaded.") from None
    remote = remote_file(url, timeout)
    sha = (expected_sha256 or remote.sha256 or "").lower()
    if expected_sha256 and remote.sha256 and remote.sha256 != expected_sha256.lower():
        raise DownloadError(f"The server publishes a different file than expected for {dest.name} "
                            "(checksums differ); the catalog may be out of date. Nothing was downloaded.")
    if not _SHA_RE.match(sha):
        raise DownloadError(f"The server publishes no SHA-256 for {dest.name}, so the file could not be "
                            "verified. Nothing was downloaded.")
    size = expected_size or remote.size

    part, meta = _part_paths(dest)
    want = {"url": url, "sha256": sha, "size": size}
    if part.exists():
        try:
            same = json.loads(meta.read_text()) == want
        except (OSError, ValueError):
            same = False
        if not same:  # a partial of some other file (or version): start over
            part.unlink()
    start = part.stat().st_size if part.exists() else 0
    if size is not None:
        free = shutil.disk_usage(dest.parent).free
        if size - start + DISK_MARGIN > free:
            raise DownloadError(f"Not enough disk space for {dest.name}: it needs "
                                f"{(size - start) / 1e9:.1f} GB more and {free / 1e9:.1f} GB is free "
                                f"in {dest.parent}.")
    try:
        meta.write_text(json.dumps(want))
    except OSError as e:
        raise DownloadError(f"Cannot write {meta}: {describe_os_error(e)}. Nothing more was downloaded; "
                            f"{_retry_advice(e)} and download again.") from None

    hasher = hashlib.sha256()
    if start:
        progress(0, start, "Checking the partial download…")
        with open(part, "rb") as f:
            while block := f.read(1 << 20):
                hasher.update(block)
    done = start
    headers = {"Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(remote.url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and size is not None and start == size:
            resp = None  # the partial is already complete: just verify it
        else:
            raise DownloadError(f"The server refused {dest.name}: HTTP {e.code}.") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadInterrupted(f"Cannot reach the server for {dest.name}: {_why(e)}. "
                                  "Try again later; the download will resume.") from None

    if resp is not None:
        with resp:
            if start and resp.status == 200:  # server ignored the range: start over
                start = done = 0
                hasher = hashlib.sha256()
                mode = "wb"
            else:
                mode = "ab" if start else "wb"
            if size is None:
                length = resp.headers.get("Content-Length")
                size = done + int(length) if length and length.isdigit() else None
            t0, last_note = time.monotonic(), 0.0
            try:
                with open(part, mode) as out:
                    while True:
                        if cancelled():
                            raise DownloadCancelled(f"Download of {dest.name} stopped; "
                                                    f"{done / 1e6:,.1f} MB kept, it resumes next time.")
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        out.write(block)
                        hasher.update(block)
                        done += len(block)
                        now = time.monotonic()
                        if now - last_note >= 0.1:
                            last_note = now
                            speed = (done - start) / (now - t0) if now > t0 else 0.0
                            progress(done, size or 0, _fmt_progress(done, size or 0, speed))
                    out.flush()
                    os.fsync(out.fileno())
            except (socket.timeout, TimeoutError, ConnectionError, urllib.error.URLError,
                    http.client.HTTPException) as e:
                raise DownloadInterrupted(
                    f"The connection broke after {done / 1e6:,.1f} MB of {dest.name} ({_why(e) or type(e).__name__}). "
                    "Download again to resume.") from None
            except OSError as e:
                raise DownloadError(f"Cannot write {part}: {describe_os_error(e)}. "
                                    f"{done / 1e6:,.1f} MB are kept; {_retry_advice(e)} and download "
                                    "again to resume.") from None

    if size is not None and done != size:
        raise DownloadInterrupted(f"{dest.name} ended early: {done:,} of {size:,} bytes. "
                                  "Download again to resume.")
    progress(done, size or done, "Verifying…")
    if hasher.hexdigest() != sha:
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise VerificationError(f"{dest.name} failed verification: its SHA-256 is {hasher.hexdigest()}, "
                                f"the published one is {sha}. The corrupt file was deleted; "
                                "download it again.")
    try:
        os.replace(part, dest)
    except OSError as e:
        raise DownloadError(f"{dest.name} was downloaded and verified but could not be put in place: "
                            f"{describe_os_error(e)}. It is kept; {_retry_advice(e)} and download again "
                            "to finish (nothing is downloaded twice).") from None
    try:
        meta.unlink(missing_ok=True)
    except OSError:
        pass  # a stale note beside no partial: the next download of this file starts over
    progress(done, size or done, "Done")
    return dest


def _retry_advice(e: OSError) -> str:
    return "free some space" if e.errno == errno.ENOSPC else "check the disk"

