"""inspect_gguf: valid headers are read, every kind of broken file is refused cleanly."""

from __future__ import annotations

import contextlib
import os
import random
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from _catalog_models import require_model
from _gguf_factory import (
    ARRAY,
    GGML_F32,
    GGML_Q4_0,
    STRING,
    UINT32,
    GGUFSpec,
    Tensor,
    build_gguf,
    expected_parameters,
    gguf_string,
    header_end,
    write_gguf,
)

from agentkit._errors import ModelFileError, ModelNotFoundError
from agentkit.cli import main
from agentkit.models._gguf import inspect_gguf


def _write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_valid_file_reports_header_fields(tmp_path: Path) -> None:
    spec = GGUFSpec()
    path = write_gguf(tmp_path / "tiny.gguf", spec)
    info = inspect_gguf(path)
    assert info.path == path
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.model_name == "Tiny Test"
    assert info.context_length == 2048
    assert info.chat_template == "{{ messages }}"
    assert info.has_chat_template
    assert info.file_type == "Q4_1"
    assert info.tensor_count == 4
    assert info.parameter_count == expected_parameters(spec.tensors)
    assert info.file_size == path.stat().st_size == info.data_end
    assert [t.ggml_type for t in info.tensors] == ["Q4_1", "F32", "Q4_K", "F16"]
    assert info.tensors[2].n_bytes == 1024 // 256 * 144


def test_metadata_keeps_scalars_and_small_arrays_but_not_the_vocabulary(tmp_path: Path) -> None:
    info = inspect_gguf(write_gguf(tmp_path / "tiny.gguf"))
    assert info.metadata["general.alignment"] == 32
    assert info.metadata["llama.rope.sections"] == (1, 2, 3)
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert "tokenizer.ggml.scores" not in info.metadata
    assert "nested" not in info.metadata  # parsed past, not kept


def test_version_2_and_other_alignment_are_read(tmp_path: Path) -> None:
    spec = GGUFSpec(version=2, alignment=64)
    spec.kvs = [(k, t, 64 if k == "general.alignment" else v) for k, t, v in spec.kvs]
    info = inspect_gguf(write_gguf(tmp_path / "v2.gguf", spec))
    assert info.version == 2
    assert info.alignment == 64
    assert info.data_offset % 64 == 0


def test_quantisation_label_falls_back_to_the_heaviest_tensor_type(tmp_path: Path) -> None:
    spec = GGUFSpec()
    spec.kvs = [kv for kv in spec.kvs if kv[0] != "general.file_type"]
    spec.tensors = [Tensor("a", (32, 64), GGML_Q4_0), Tensor("b", (8,), GGML_F32)]
    info = inspect_gguf(write_gguf(tmp_path / "nolabel.gguf", spec))
    assert info.file_type == "Q4_0"


def test_file_without_chat_template(tmp_path: Path) -> None:
    spec = GGUFSpec()
    spec.kvs = [kv for kv in spec.kvs if kv[0] != "tokenizer.chat_template"]
    info = inspect_gguf(write_gguf(tmp_path / "plain.gguf", spec))
    assert info.chat_template is None
    assert not info.has_chat_template


def test_missing_file_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        inspect_gguf(tmp_path / "nope.gguf")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="directory"):
        inspect_gguf(tmp_path)


def _run_while_writing_to(fifo: Path, call: Callable[[], object]) -> None:
    """Run ``call`` in a thread, opening the FIFO for writing until it returns: a reader
    blocked in open() is released that way, so a regression fails the test, never hangs it."""
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            pass  # ENXIO: nobody has it open for reading, so nobody waits on it
        else:
            os.close(fd)
        worker.join(0.05)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_named_gguf_is_refused_without_waiting_for_a_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "x.gguf"
    os.mkfifo(fifo)
    errors: list[str] = []

    def inspect() -> None:
        try:
            inspect_gguf(fifo)
        except ModelFileError as exc:
            errors.append(str(exc))

    _run_while_writing_to(fifo, inspect)
    assert errors == [f"{fifo} is a named pipe, not a regular file; a GGUF model is a file"]
    # The same through the command line: `agentkit models info x.gguf` (exit status 2).
    codes: list[int] = []
    _run_while_writing_to(fifo, lambda: codes.append(main(["models", "info", str(fifo)])))
    assert codes == [2]
    assert "is a named pipe" in capsys.readouterr().err


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is empty"):
        inspect_gguf(_write(tmp_path, b""))


def test_text_file_is_not_a_gguf(tmp_path: Path) -> None:
    path = _write(tmp_path, b"<html>404 Not Found</html>\n", "model.gguf")
    with pytest.raises(ModelFileError, match="not a GGUF model file") as err:
        inspect_gguf(path)
    assert "agentkit models pull" in str(err.value)


def test_wrong_magic(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not a GGUF"):
        inspect_gguf(write_gguf(tmp_path / "m.gguf", GGUFSpec(magic=b"GGML")))


@pytest.mark.parametrize(
    ("version", "hint"),
    [(1, "obsolete"), (4, "newer"), (0x03000000, "big-endian")],
)
def test_unsupported_versions(tmp_path: Path, version: int, hint: str) -> None:
    with pytest.raises(ModelFileError, match=hint):
        inspect_gguf(write_gguf(tmp_path / "v.gguf", GGUFSpec(version=version)))


def test_truncated_tensor_data(tmp_path: Path) -> None:
    data = build_gguf()
    path = _write(tmp_path, data[:-100])
    with pytest.raises(ModelFileError, match="is truncated") as err:
        inspect_gguf(path)
    message = str(err.value)
    assert "100 missing" in message
    assert "agentkit models pull NAME --force" in message


def test_every_truncated_header_is_refused_cleanly(tmp_path: Path) -> None:
    # Cutting the file anywhere inside the header must give ModelFileError, never a
    # struct.error, IndexError or a crash; this is the contract llama.cpp relies on.
    data = build_gguf()
    path = tmp_path / "cut.gguf"
    for cut in range(1, header_end(data) + 1, 3):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            inspect_gguf(path)


def test_random_header_damage_never_escapes_as_another_exception(tmp_path: Path) -> None:
    data = build_gguf()
    end = header_end(data)
    path = tmp_path / "flip.gguf"
    rng = random.Random(1234)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(4, end)] = rng.randrange(256)
        path.write_bytes(bytes(damaged))
        with contextlib.suppress(ModelFileError):
            inspect_gguf(path)


def _header_with_kv(key: str, vtype: int, raw_value: bytes, kv_count: int = 1) -> bytes:
    return (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, kv_count)
        + gguf_string(key)
        + struct.pack("<I", vtype)
        + raw_value
    )


def test_absurd_string_length_is_refused_without_allocating(tmp_path: Path) -> None:
    raw = struct.pack("<Q", 1 << 60) + b"x" * 16
    path = _write(tmp_path, _header_with_kv("general.name", STRING, raw))
    with pytest.raises(ModelFileError, match="corrupt GGUF header") as err:
        inspect_gguf(path)
    assert "general.name" in str(err.value)


def test_absurd_key_length(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40) + b"k" * 32
    with pytest.raises(ModelFileError, match="corrupt"):
        inspect_gguf(_write(tmp_path, data))


def test_absurd_array_length(tmp_path: Path) -> None:
    raw = struct.pack("<IQ", UINT32, (1 << 62)) + b"\0" * 64
    with pytest.raises(ModelFileError, match="corrupt"):
        inspect_gguf(_write(tmp_path, _header_with_kv("tokenizer.ggml.scores", ARRAY, raw)))


def test_array_longer_than_the_file(tmp_path: Path) -> None:
    raw = struct.pack("<IQ", STRING, 1_000_000) + gguf_string("a")
    with pytest.raises(ModelFileError, match="corrupt"):
        inspect_gguf(_write(tmp_path, _header_with_kv("tokenizer.ggml.tokens", ARRAY, raw)))


def test_absurd_counts(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 1 << 50, 1 << 50) + b"\0" * 64
    with pytest.raises(ModelFileError, match="corrupt"):
        inspect_gguf(_write(tmp_path, data))


def test_unknown_value_type(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="unknown value type 99"):
        inspect_gguf(_write(tmp_path, _header_with_kv("x", 99, b"\0" * 16)))


def test_deeply_nested_arrays_are_refused(tmp_path: Path) -> None:
    raw = struct.pack("<IQ", ARRAY, 1) * 20 + struct.pack("<IQ", UINT32, 0)
    with pytest.raises(ModelFileError, match="nests arrays"):
        inspect_gguf(_write(tmp_path, _header_with_kv("deep", ARRAY, raw)))


@pytest.mark.parametrize("alignment", [0, 3, 48])
def test_bad_alignment(tmp_path: Path, alignment: int) -> None:
    spec = GGUFSpec()
    spec.kvs = [(k, t, alignment if k == "general.alignment" else v) for k, t, v in spec.kvs]
    with pytest.raises(ModelFileError, match=r"general\.alignment"):
        inspect_gguf(write_gguf(tmp_path / "a.gguf", spec))


@pytest.mark.parametrize(
    ("tensors", "match"),
    [
        ([Tensor("t", (32,), 77)], "ggml type 77"),
        ([Tensor("t", (30, 2), GGML_Q4_0)], "not a multiple of the Q4_0 block size"),
        ([Tensor("t", (8,)), Tensor("t", (8,))], "appears twice"),
        ([Tensor("t", ())], "0 dimensions"),
        ([Tensor("t", (1, 1, 1, 1, 1))], "5 dimensions"),
        ([Tensor("t", (1 << 32, 1 << 32))], "claims shape"),
    ],
)
def test_bad_tensor_tables(
    tmp_path: Path, tensors: list[Tensor], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The factory cannot size unknown or absurd tensors, so give them zero bytes of data.
    monkeypatch.setattr(Tensor, "n_bytes", property(lambda self: 0))
    with pytest.raises(ModelFileError, match=match):
        inspect_gguf(write_gguf(tmp_path / "t.gguf", GGUFSpec(tensors=tensors)))


def test_misaligned_tensor_offset(tmp_path: Path) -> None:
    data = bytearray(build_gguf(GGUFSpec(tensors=[Tensor("a", (8,)), Tensor("b", (8,))])))
    # The second tensor's u64 offset is the last 8 bytes of the tensor table.
    marker = gguf_string("b") + struct.pack("<IQI", 1, 8, GGML_F32)
    at = data.index(marker) + len(marker)
    data[at : at + 8] = struct.pack("<Q", 33)
    with pytest.raises(ModelFileError, match="not aligned"):
        inspect_gguf(_write(tmp_path, bytes(data)))


@pytest.mark.integration
def test_real_smollm2_file() -> None:
    info = inspect_gguf(require_model("smollm2-135m-instruct"))
    assert info.file_type == "Q4_1"
    assert info.architecture == "llama"
    assert 130_000_000 < info.parameter_count < 140_000_000
    assert info.has_chat_template
    assert info.data_end == info.file_size == 98_362_432
