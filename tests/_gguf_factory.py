"""Write tiny synthetic GGUF files for tests (a few KB, no real weights).

The writer follows the GGUF v3 layout byte for byte, so tests can build a valid file and
then break exactly one thing in it (magic, version, a length, the tensor data).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# GGUF value type ids
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = range(10)
UINT64, INT64, FLOAT64 = 10, 11, 12

_FORMATS = {
    UINT8: "<B",
    INT8: "<b",
    UINT16: "<H",
    INT16: "<h",
    UINT32: "<I",
    INT32: "<i",
    FLOAT32: "<f",
    BOOL: "<?",
    UINT64: "<Q",
    INT64: "<q",
    FLOAT64: "<d",
}

# ggml type id -> (elements per block, bytes per block), the few the tests use.
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q8_0, GGML_Q4_K = 0, 1, 2, 3, 8, 12
_BLOCKS = {
    GGML_F32: (1, 4),
    GGML_F16: (1, 2),
    GGML_Q4_0: (32, 18),
    GGML_Q4_1: (32, 20),
    GGML_Q8_0: (32, 34),
    GGML_Q4_K: (256, 144),
}


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _value(vtype: int, value: object) -> bytes:
    if vtype == STRING:
        assert isinstance(value, str | bytes)
        return gguf_string(value)
    if vtype == ARRAY:
        assert isinstance(value, tuple) and len(value) == 2
        item_type, items = value
        assert isinstance(item_type, int) and isinstance(items, list)
        body = b"".join(_value(item_type, v) for v in items)
        return struct.pack("<IQ", item_type, len(items)) + body
    return struct.pack(_FORMATS[vtype], value)


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int = GGML_F32

    @property
    def n_bytes(self) -> int:
        block, size = _BLOCKS[self.ggml_type]
        n = 1
        for d in self.shape:
            n *= d
        return n // block * size


@dataclass
class GGUFSpec:
    """What to write; the defaults make a small valid llama-like model."""

    kvs: list[tuple[str, int, object]] = field(
        default_factory=lambda: [
            ("general.architecture", STRING, "llama"),
            ("general.name", STRING, "Tiny Test"),
            ("general.alignment", UINT32, 32),
            ("general.file_type", UINT32, 3),
            ("llama.context_length", UINT32, 2048),
            ("tokenizer.chat_template", STRING, "{{ messages }}"),
            ("tokenizer.ggml.tokens", ARRAY, (STRING, [f"tok{i}" for i in range(100)])),
            ("tokenizer.ggml.scores", ARRAY, (FLOAT32, [0.5] * 100)),
            ("llama.rope.sections", ARRAY, (INT32, [1, 2, 3])),
            ("nested", ARRAY, (ARRAY, [(UINT8, [1, 2]), (STRING, ["a"])])),
        ]
    )
    tensors: list[Tensor] = field(
        default_factory=lambda: [
            Tensor("token_embd.weight", (64, 10), GGML_Q4_1),
            Tensor("blk.0.attn_norm.weight", (64,), GGML_F32),
            Tensor("blk.0.ffn.weight", (256, 4), GGML_Q4_K),
            Tensor("output_norm.weight", (64,), GGML_F16),
        ]
    )
    version: int = 3
    magic: bytes = b"GGUF"
    alignment: int = 32


def build_gguf(spec: GGUFSpec | None = None) -> bytes:
    """The bytes of a complete GGUF file for ``spec``."""
    spec = spec or GGUFSpec()
    out = bytearray(
        spec.magic + struct.pack("<IQQ", spec.version, len(spec.tensors), len(spec.kvs))
    )
    for key, vtype, value in spec.kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + _value(vtype, value)
    offset = 0
    offsets = []
    for t in spec.tensors:
        offsets.append(offset)
        offset += -(-t.n_bytes // spec.alignment) * spec.alignment
    for t, off in zip(spec.tensors, offsets, strict=True):
        out += gguf_string(t.name) + struct.pack("<I", len(t.shape))
        out += struct.pack(f"<{len(t.shape)}Q", *t.shape)
        out += struct.pack("<IQ", t.ggml_type, off)
    out += b"\0" * (-len(out) % spec.alignment)
    for t in spec.tensors:
        data = bytes((i * 7) % 251 for i in range(t.n_bytes))
        out += data + b"\0" * (-len(data) % spec.alignment)
    return bytes(out)


def write_gguf(path: Path, spec: GGUFSpec | None = None) -> Path:
    """Write a synthetic GGUF file and return its path."""
    path.write_bytes(build_gguf(spec))
    return path


def expected_parameters(tensors: Sequence[Tensor]) -> int:
    total = 0
    for t in tensors:
        n = 1
        for d in t.shape:
            n *= d
        total += n
    return total


def header_end(data: bytes, spec: GGUFSpec | None = None) -> int:
    """Where the tensor data starts in ``build_gguf(spec)`` output."""
    spec = spec or GGUFSpec()
    return len(data) - sum(-(-t.n_bytes // spec.alignment) * spec.alignment for t in spec.tensors)


def build_wheel(directory: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal but real wheel (pip accepts it) carrying ``members`` as data files."""
    import base64
    import hashlib
    import zipfile

    dist = package.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = dict(members)
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: agentkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path
