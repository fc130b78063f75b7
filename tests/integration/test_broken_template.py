"""A real GGUF whose chat template does not parse: an agentkit error (ModelFileError) from
get_model, from load and from Agent.run, never jinja2's own exception, and before
llama.cpp spends time loading the weights."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import jinja2
import pytest
from _catalog_models import require_model

from agentkit import Agent, ModelFileError, RunStore
from agentkit.models import LlamaCppModel, get_model

SMOL = "smollm2-135m-instruct"
BROKEN = b"{% if %}broken"


@pytest.fixture(scope="module")
def broken_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 with its chat template overwritten in place by one that does not parse
    (padded with spaces to the same length, so every offset in the file stays valid)."""
    path = tmp_path_factory.mktemp("broken") / "smol-broken-template.gguf"
    shutil.copyfile(require_model(SMOL), path)
    key = b"tokenizer.chat_template"
    with path.open("r+b") as f:
        head = f.read(4_000_000)
        at = head.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
        value_type, length = struct.unpack_from("<IQ", head, at)
        assert value_type == 8 and length > len(BROKEN)  # a string, long enough
        f.seek(at + 12)
        f.write(BROKEN.ljust(length))
    return path


def test_get_model_and_load_raise_an_agentkit_error(broken_gguf: Path) -> None:
    for load in (lambda: get_model(broken_gguf), lambda: LlamaCppModel.load(broken_gguf)):
        with pytest.raises(ModelFileError, match="is not valid Jinja") as info:
            load()
        assert not isinstance(info.value, jinja2.TemplateError)
        assert "gguf-new-metadata" in str(info.value)


def test_agent_run_records_a_failed_run(broken_gguf: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    result = Agent(str(broken_gguf), store=store).run("Say hi.")
    assert result.exit_code != 0
    assert "is not valid Jinja" in (result.error or "")
    row = store.get_run(result.run_id)
    assert row.status == "failed" and "is not valid Jinja" in (row.error or "")
    store.close()
