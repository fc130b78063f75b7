"""Read and check the header of a GGUF file without loading the model.

llama.cpp trusts the header of the file it maps: a truncated download or a file that is
not a GGUF at all can crash the process instead of raising. ``inspect_gguf`` reads the
header (metadata and tensor table) with explicit bounds checks, works out how many bytes
the tensor data must occupy, and raises ``ModelFileError`` with a useful message before
such a file gets anywhere near llama.cpp.

Layout (GGUF v2/v3, little-endian)::

    magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
    kv_count   x (string key, u32 value_type, value)
    tensor_count x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset)
    padding to `general.alignment` | tensor data (offsets are relative to its start)
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .._errors import ModelFileError, ModelNotFoundError

__all__ = ["GGUFInfo", "MetadataValue", "TensorInfo", "inspect_gguf"]

GGUF_MAGIC: Final = b"GGUF"
SUPPORTED_VERSIONS: Final = (2, 3)
DEFAULT_ALIGNMENT: Final = 32

# Sanity limits. A corrupt header may claim billions of entries; every count and length is
# also checked against the bytes left in the file before anything is read or allocated.
MAX_TENSORS: Final = 1_000_000
MAX_KVS: Final = 1_000_000
MAX_STRING_BYTES: Final = 256 * 1024 * 1024
MAX_ARRAY_ITEMS: Final = 1 << 32
MAX_DIMS: Final = 4  # GGML_MAX_DIMS
MAX_ARRAY_DEPTH: Final = 8
# Arrays up to this many scalar items are kept in ``metadata``; longer ones (vocabulary,
# merges, token scores) are parsed past and left out.
SMALL_ARRAY_ITEMS: Final = 64

MetadataScalar = str | int | float | bool
MetadataValue = MetadataScalar | tuple[MetadataScalar, ...]

_KINDS: Final = {"p": "a named pipe", "c": "a device", "b": "a device", "s": "a socket"}
# GGUF value types -> struct format for fixed-size scalars.
_T_STRING: Final = 8
_T_ARRAY: Final = 9
_SCALAR_FORMATS: Final[Mapping[int, str]] = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}

# ggml tensor types: id -> (name, elements per block, bytes per block). Sizes follow the
# block structs in ggml-common.h; ids missing here were removed from ggml (old repacked
# formats) and llama.cpp refuses them too.
GGML_TYPES: Final[Mapping[int, tuple[str, int, int]]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}

# llama.cpp's llama_ftype, stored as general.file_type: the quantisation "mix" label.
FILE_TYPES: Final[Mapping[int, str]] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table. ``offset`` is relative to the start of tensor data."""

    name: str
    shape: tuple[int, ...]
    ggml_type: str
    offset: int
    n_elements: int
    n_bytes: int


@dataclass(frozen=True)
class GGUFInfo:
    """What the header of a GGUF file says, checked against the file's real size."""

    path: Path
    file_size: int
    version: int
    architecture: str | None
    model_name: str | None
    context_length: int | None
    chat_template: str | None
    parameter_count: int
    file_type: str | None
    tensor_count: int
    alignment: int
    data_offset: int
    """Where tensor data starts in the file."""
    data_end: int
    """Bytes the file needs to hold every tensor (``data_offset`` + tensor data)."""
    metadata: Mapping[str, MetadataValue] = field(repr=False)
    tensors: tuple[TensorInfo, ...] = field(repr=False)

    @property
    def has_chat_template(self) -> bool:
        """True when the file carries a chat template (``tokenizer.chat_template``)."""
        return bool(self.chat_template)


class _Corrupt(Exception):
    """Internal: the header is inconsistent; turned into ModelFileError at the boundary."""


class _EndOfFile(_Corrupt):
    """Internal: the header runs past the end of the file."""


class _Reader:
    """Bounds-checked little-endian reads from a buffer (the file's mmap)."""

    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _EndOfFile(
                f"{what} at byte {self.pos} needs {n} bytes but the file ends at {self.size}"
            )

    def unpack(self, fmt: str, what: str) -> int | float | bool:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        result: int | float | bool = value
        return result

    def u32(self, what: str) -> int:
        return int(self.unpack("<I", what))

    def u64(self, what: str) -> int:
        return int(self.unpack("<Q", what))

    def string_length(self, what: str) -> int:
        n = self.u64(f"length of {what}")
        if n > MAX_STRING_BYTES:
            raise _Corrupt(f"{what} claims a length of {n} bytes")
        self.need(n, what)
        return n

    def string(self, what: str) -> str:
        n = self.string_length(what)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        # Invalid UTF-8 in a name is not worth refusing the file over; llama.cpp doesn't.
        return bytes(raw).decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        n = self.string_length(what)  # reads the prefix, so it must run before the add
        self.pos += n


def _read_value(r: _Reader, vtype: int, key: str, depth: int = 0) -> MetadataValue | None:
    """Read one value; returns None for arrays too big (or nested) to keep."""
    if vtype == _T_STRING:
        return r.string(f"value of {key!r}")
    if vtype == _T_ARRAY:
        return _read_array(r, key, depth)
    fmt = _SCALAR_FORMATS.get(vtype)
    if fmt is None:
        raise _Corrupt(f"key {key!r} has unknown value type {vtype}")
    return r.unpack(fmt, f"value of {key!r}")


def _read_array(r: _Reader, key: str, depth: int) -> tuple[MetadataScalar, ...] | None:
    if depth >= MAX_ARRAY_DEPTH:
        raise _Corrupt(f"key {key!r} nests arrays more than {MAX_ARRAY_DEPTH} deep")
    item_type = r.u32(f"array type of {key!r}")
    count = r.u64(f"array length of {key!r}")
    if count > MAX_ARRAY_ITEMS:
        raise _Corrupt(f"array {key!r} claims {count} items")
    fmt = _SCALAR_FORMATS.get(item_type)
    if fmt is not None:
        item_size = struct.calcsize(fmt)
        # One check covers the whole array, so a huge count fails before any allocation.
        r.need(count * item_size, f"array {key!r} of {count} items")
        if count > SMALL_ARRAY_ITEMS:
            r.pos += count * item_size
            return None
        items = struct.unpack_from(f"<{count}{fmt[1]}", r.buf, r.pos)
        r.pos += count * item_size
        return tuple(items)
    if item_type == _T_STRING:
        # Every string takes at least its 8-byte length prefix.
        r.need(count * 8, f"array {key!r} of {count} strings")
        if count > SMALL_ARRAY_ITEMS:
            for _ in range(count):
                r.skip_string(f"item of {key!r}")
            return None
        return tuple(r.string(f"item of {key!r}") for _ in range(count))
    if item_type == _T_ARRAY:
        r.need(count * 12, f"array {key!r} of {count} arrays")
        for _ in range(count):
            _read_array(r, key, depth + 1)
        return None
    raise _Corrupt(f"array {key!r} has unknown item type {item_type}")


def _read_tensor(r: _Reader, index: int) -> tuple[str, tuple[int, ...], int, int]:
    name = r.string(f"name of tensor {index}")
    n_dims = r.u32(f"dimension count of tensor {name!r}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise _Corrupt(f"tensor {name!r} claims {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
    shape = tuple(r.u64(f"shape of tensor {name!r}") for _ in range(n_dims))
    type_id = r.u32(f"type of tensor {name!r}")
    offset = r.u64(f"offset of tensor {name!r}")
    return name, shape, type_id, offset


def _tensor_info(name: str, shape: tuple[int, ...], type_id: int, offset: int) -> TensorInfo:
    known = GGML_TYPES.get(type_id)
    if known is None:
        raise _Corrupt(
            f"tensor {name!r} uses ggml type {type_id}, which agentkit does not know "
            "(a corrupt header, or a format newer than this agentkit)"
        )
    type_name, block, block_bytes = known
    n_elements = 1
    for dim in shape:
        n_elements *= dim
    # Python ints don't overflow, but llama.cpp's int64 does: refuse what it cannot hold.
    if n_elements >= 1 << 62:
        raise _Corrupt(f"tensor {name!r} claims shape {shape}")
    if shape[0] % block:
        raise _Corrupt(
            f"tensor {name!r} has rows of {shape[0]} values, not a multiple of the "
            f"{type_name} block size {block}"
        )
    return TensorInfo(
        name=name,
        shape=shape,
        ggml_type=type_name,
        offset=offset,
        n_elements=n_elements,
        n_bytes=n_elements // block * block_bytes,
    )


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def _parse(buf: mmap.mmap | bytes, path: Path) -> GGUFInfo:
    r = _Reader(buf)
    version = _header(r, buf, path)
    tensor_count = r.u64("tensor count")
    kv_count = r.u64("metadata count")
    if tensor_count > MAX_TENSORS or kv_count > MAX_KVS:
        raise _Corrupt(f"header claims {tensor_count} tensors and {kv_count} metadata entries")
    metadata: dict[str, MetadataValue] = {}
    for i in range(kv_count):
        key = r.string(f"key of metadata entry {i}")
        vtype = r.u32(f"value type of {key!r}")
        value = _read_value(r, vtype, key)
        if value is not None:
            metadata[key] = value
    raw_tensors = [_read_tensor(r, i) for i in range(tensor_count)]
    alignment = _alignment(metadata)
    data_offset = _align(r.pos, alignment)
    tensors, data_size = _tensor_table(raw_tensors, alignment)
    data_end = data_offset + data_size
    if data_end > r.size:
        missing = data_end - r.size
        raise ModelFileError(
            f"{path} is truncated: its tensors need {data_end:,} bytes but the file has "
            f"{r.size:,} ({missing:,} missing). The download was probably interrupted; "
            "re-download it (for a catalog model: `agentkit models pull NAME --force`)."
        )

    def text(key: str) -> str | None:
        value = metadata.get(key)
        return value if isinstance(value, str) else None

    architecture = text("general.architecture")
    ctx = metadata.get(f"{architecture}.context_length") if architecture else None
    return GGUFInfo(
        path=path,
        file_size=r.size,
        version=version,
        architecture=architecture,
        model_name=text("general.name"),
        context_length=ctx if isinstance(ctx, int) and not isinstance(ctx, bool) else None,
        chat_template=text("tokenizer.chat_template"),
        parameter_count=sum(t.n_elements for t in tensors),
        file_type=_file_type_label(metadata, tensors),
        tensor_count=tensor_count,
        alignment=alignment,
        data_offset=data_offset,
        data_end=data_end,
        metadata=metadata,
        tensors=tuple(tensors),
    )


def _header(r: _Reader, buf: mmap.mmap | bytes, path: Path) -> int:
    """Check the magic and the version; returns the version."""
    r.need(4, "magic")
    magic = bytes(buf[0:4])
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF model file (it starts with {magic!r}, not b'GGUF'). "
            "Point agentkit at a .gguf file, or pull a catalog model with "
            "`agentkit models pull NAME`."
        )
    r.pos = 4
    version = r.u32("version")
    if version not in SUPPORTED_VERSIONS:
        if int.from_bytes(version.to_bytes(4, "little"), "big") in SUPPORTED_VERSIONS:
            hint = "it is a big-endian GGUF; use a little-endian conversion of the model"
        elif version == 1:
            hint = "GGUF v1 is obsolete; re-convert the model with a current llama.cpp"
        else:
            hint = "it is corrupt or newer than this agentkit supports"
        raise ModelFileError(
            f"{path} has GGUF version {version}, which agentkit cannot read: {hint}."
        )
    return version


def _alignment(metadata: Mapping[str, MetadataValue]) -> int:
    value = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
        raise _Corrupt(f"general.alignment is {value!r}, not a power of two")
    return value


def _tensor_table(
    raw_tensors: list[tuple[str, tuple[int, ...], int, int]], alignment: int
) -> tuple[list[TensorInfo], int]:
    """The tensors with their sizes checked, and the bytes of tensor data they need."""
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    data_size = 0
    for name, shape, type_id, offset in raw_tensors:
        if name in seen:
            raise _Corrupt(f"tensor {name!r} appears twice")
        seen.add(name)
        info = _tensor_info(name, shape, type_id, offset)
        if offset % alignment:
            raise _Corrupt(f"tensor {name!r} starts at offset {offset}, not aligned to {alignment}")
        data_size = max(data_size, offset + info.n_bytes)
        tensors.append(info)
    return tensors, data_size


def _file_type_label(
    metadata: Mapping[str, MetadataValue], tensors: list[TensorInfo]
) -> str | None:
    """The quantisation label: general.file_type, else the type holding the most bytes."""
    ftype = metadata.get("general.file_type")
    if isinstance(ftype, int) and not isinstance(ftype, bool):
        return FILE_TYPES.get(ftype, f"file type {ftype}")
    by_type: dict[str, int] = {}
    for t in tensors:
        by_type[t.ggml_type] = by_type.get(t.ggml_type, 0) + t.n_bytes
    return max(by_type, key=lambda k: by_type[k]) if by_type else None


def inspect_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and check a GGUF file's header; raise ModelFileError if llama.cpp can't use it.

    Only the header is read (through mmap, so the tensor data is never paged in); the
    file's size is compared with what the tensor table needs, which catches truncation.
    """
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a
        # writer forever; the regular-file check below then refuses it.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"model file {p} does not exist") from exc
    except IsADirectoryError as exc:
        raise ModelFileError(f"{p} is a directory, not a GGUF model file") from exc
    except OSError as exc:
        raise ModelFileError(f"cannot open model file {p}: {exc.strerror or exc}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ModelFileError(f"{p} is a directory, not a GGUF model file")
        kind = _KINDS.get(stat.filemode(st.st_mode)[0], "not a file")
        raise ModelFileError(f"{p} is {kind}, not a regular file; a GGUF model is a file")
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        if size == 0:
            raise ModelFileError(
                f"{p} is empty. Re-download it (for a catalog model: "
                "`agentkit models pull NAME --force`)."
            )
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"cannot map model file {p}: {exc}") from exc
        try:
            return _parse(buf, p)
        except _Corrupt as exc:
            # Running out of bytes mid-header is what a cut-off download looks like.
            what = (
                "is truncated or corrupt"
                if isinstance(exc, _EndOfFile)
                else "has a corrupt GGUF header"
            )
            raise ModelFileError(
                f"{p} {what}: {exc}. Re-download it (for a catalog "
                "model: `agentkit models pull NAME --force`)."
            ) from exc
        finally:
            buf.close()
