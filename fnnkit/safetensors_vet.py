"""safetensors vetting shared by the loaders (``store.load_state_dict``) and ``fnnkit verify``.

The header's length is checked against the file and a cap before a byte of it is parsed, then every
tensor's offsets, dtype and shape against the variant's module, so a damaged or hostile header never
decides what is allocated. One implementation: verify reports what this raises.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import BinaryIO

from fnnkit.errors import ArtifactError

MAX_HEADER_BYTES = 16 << 20  # fnnkit's headers are under 1 KiB; safetensors itself stops at 100 MB
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
Expected = dict[str, tuple[str, list[int]]]  # tensor name -> (safetensors dtype, shape)


def expected_tensors(spec) -> Expected:
    """Names, dtypes and shapes of the variant module's state dict, from the spec alone (no torch): a Linear's
    weight is [out, in], its bias [out]. A test holds this to ``FeedForward(spec).state_dict()``."""
    expected: Expected = {}
    for name, (fan_in, fan_out) in zip(spec.linear_names, spec.layer_dims, strict=True):
        expected[f"{name}.weight"] = ("F32", [fan_out, fan_in])
        expected[f"{name}.bias"] = ("F32", [fan_out])
    return expected


def read_safetensors_header(f: BinaryIO, size: int, path: Path) -> tuple[dict, int]:
    """The JSON header and the data section's length.

    The 8-byte length field is checked against the file size and a cap before a byte of the
    header is read, so a damaged or hostile length never decides how much memory is allocated.
    """
    if size < 8:
        raise ArtifactError(f"{path} is {size} bytes: too short for a safetensors file; re-create it")
    (length,) = struct.unpack("<Q", f.read(8))
    if length > size - 8:
        raise ArtifactError(
            f"{path}: the safetensors header length field says {length:,} bytes, but only {size - 8:,} follow it: "
            "the file is truncated or not a safetensors file; re-create it with fnnkit train"
        )
    if length > MAX_HEADER_BYTES:
        raise ArtifactError(
            f"{path}: safetensors header of {length:,} bytes exceeds the {MAX_HEADER_BYTES:,}-byte limit "
            "(fnnkit's are under 1 KiB): the file is damaged or was not written by fnnkit; re-create it"
        )
    raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArtifactError(
            f"{path}: the safetensors header is not valid UTF-8 JSON ({type(exc).__name__}); the file is damaged"
        ) from None
    if not isinstance(header, dict):
        raise ArtifactError(f"{path}: the safetensors header is a JSON {type(header).__name__}, not an object")
    return header, size - 8 - length


def check_safetensors_layout(header: dict, data_bytes: int, path: Path, expected: Expected | None = None) -> str:
    """Every tensor's dtype, shape and byte range consistent, the ranges tiling the data section exactly."""
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArtifactError(f"{path}: safetensors __metadata__ must map names to strings")
    spans = sorted((_tensor_span(name, info, path), name) for name, info in tensors.items())
    cursor = 0
    for (begin, end), name in spans:
        if begin != cursor:
            raise ArtifactError(
                f"{path}: tensor {name!r} starts at byte {begin:,} of the data section, expected {cursor:,} "
                "(a gap or an overlap): the file is damaged"
            )
        cursor = end
    if cursor != data_bytes:
        raise ArtifactError(
            f"{path}: the tensors cover {cursor:,} bytes, but the data section holds {data_bytes:,}: "
            "the file is truncated or has bytes appended"
        )
    if expected is not None:
        _match_expected(tensors, expected, path)
    return f"{len(tensors)} tensors, {data_bytes:,} data bytes" + (", as the variant expects" if expected else "")


def _tensor_span(name: str, info: object, path: Path) -> tuple[int, int]:
    """(begin, end) of one tensor's bytes, after its dtype, shape and offsets agree with each other."""
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ArtifactError(f"{path}: tensor {name!r} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPE_BYTES:
        raise ArtifactError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise ArtifactError(f"{path}: tensor {name!r} has shape {shape!r}; expected a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_natural(o) for o in offsets):
        raise ArtifactError(f"{path}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
    begin, end = offsets
    needed = DTYPE_BYTES[dtype]
    for dim in shape:
        needed *= dim  # Python integers: no overflow, whatever the header claims
    if end - begin != needed:
        raise ArtifactError(
            f"{path}: tensor {name!r} ({dtype} {shape}) needs {needed:,} bytes, its data_offsets span {end - begin:,}"
        )
    return begin, end


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _match_expected(tensors: dict, expected: Expected, path: Path) -> None:
    found = {name: (info["dtype"], info["shape"]) for name, info in tensors.items()}
    if found == expected:
        return
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [f"{n}: {found[n][0]} {found[n][1]} (expected {expected[n][0]} {expected[n][1]})"
             for n in sorted(set(found) & set(expected)) if found[n] != expected[n]]  # fmt: skip
    parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "", "; ".join(wrong)]
    raise ArtifactError(
        f"{path} does not hold the tensors its model card's variant needs: {'; '.join(p for p in parts if p)}; "
        "re-train it"
    )


def vet_safetensors(data: bytes, path: Path, spec=None) -> str:
    """The safetensors checks loaders and ``fnnkit verify`` both run, on the bytes about to be parsed."""
    header, data_bytes = read_safetensors_header(io.BytesIO(data), len(data), path)
    return check_safetensors_layout(header, data_bytes, path, expected_tensors(spec) if spec is not None else None)
