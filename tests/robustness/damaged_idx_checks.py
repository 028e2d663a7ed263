"""Every damaged-IDX fault, checked without ``assert``: run as ``python -O damaged_idx_checks.py DIR``.

Under ``-O`` Python drops every assert statement (pytest's own included), so these checks
are plain ``if``s that exit non-zero; the script first proves that asserts really are off.
Prints one JSON line {case: error message}. tests/test_data.py covers the same faults with
pytest in the normal mode.
"""

from __future__ import annotations

import gzip
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def idx(array: np.ndarray, type_code: int = 0x08, prefix: bytes = b"\0\0", ndim: int | None = None) -> bytes:
    ndim = array.ndim if ndim is None else ndim
    return prefix + bytes([type_code, ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


IMAGES = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
LABELS = np.array([1, 2, 3], dtype=np.uint8)


def cases() -> dict[str, tuple[str, bytes, str, list[str]]]:
    """case -> (file name, bytes, reader, words its DataError must contain)."""
    whole = gzip.compress(idx(IMAGES), mtime=0)
    corrupt = bytearray(whole)
    corrupt[10] = 0xFF  # a reserved deflate block type
    crc = bytearray(whole)
    crc[-6] ^= 0xFF  # the CRC trailer no longer matches
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container: 64 MiB of zeros after a 3-image header
    bomb_bytes = bomb.compress(idx(IMAGES)) + b"".join(bomb.compress(bytes(1 << 20)) for _ in range(64)) + bomb.flush()
    overflow = b"\0\0\x08\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    return {
        "gzip bomb": ("images.gz", bomb_bytes, "read_images", ["payload length", "more than 2352 bytes"]),
        "dims overflow": ("images", overflow + bytes(8), "read_images", ["payload size", "at most"]),
        "bad magic": ("images", idx(IMAGES, prefix=b"PK"), "read_images", ["magic number"]),
        "unknown type code": ("images", idx(IMAGES, type_code=0x07), "read_images", ["type code", "unknown"]),
        "wrong ndim (labels as images)": ("images", idx(LABELS), "read_images", ["magic number", "2051"]),
        "zero dims": ("images", b"\0\0\x08\0", "read_idx", ["number of dimensions"]),
        "payload short": ("images", idx(IMAGES)[:-1], "read_images", ["payload length", "expected 2352", "got 2351"]),
        "payload long": ("images", idx(IMAGES) + b"\0", "read_images", ["payload length", "expected 2352", "got 2353"]),
        "truncated gzip": ("images.gz", whole[: len(whole) // 2], "read_idx", ["gzip stream", "EOFError"]),
        "corrupt gzip (deflate)": ("images.gz", bytes(corrupt), "read_idx", ["gzip stream", "zlib.error"]),
        "corrupt gzip (crc)": ("images.gz", bytes(crc), "read_idx", ["gzip stream", "BadGzipFile"]),
    }


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def check_file_cases(folder: Path, out: dict[str, str]) -> None:
    from fnnkit import data
    from fnnkit.errors import DataError

    for case, (name, payload, reader, words) in cases().items():
        path = folder / case.replace(" ", "-").replace("(", "").replace(")", "") / name
        path.parent.mkdir(parents=True)
        path.write_bytes(payload)
        try:
            getattr(data, reader)(path)
        except DataError as exc:
            message = str(exc)
        else:
            fail(f"{case}: {reader} accepted a bad file")
        if str(path) not in message or "expected" not in message or not all(w in message for w in words):
            fail(f"{case}: the message lacks the file, 'expected' or {words}: {message}")
        out[case] = message


def check_label_count(folder: Path, out: dict[str, str]) -> None:
    from fnnkit.data import load_dataset
    from fnnkit.errors import DataError

    mnist = folder / "counts" / "mnist"
    mnist.mkdir(parents=True)
    for stem, array in {"train-images-idx3-ubyte": IMAGES, "train-labels-idx1-ubyte": LABELS,
                        "t10k-images-idx3-ubyte": IMAGES, "t10k-labels-idx1-ubyte": LABELS[:2]}.items():  # fmt: skip
        (mnist / stem).write_bytes(idx(array))
    try:
        load_dataset("mnist", mnist.parent, download=False)
    except DataError as exc:
        message = str(exc)
    else:
        fail("label count != image count: accepted")
    if "label count" not in message or "t10k-labels-idx1-ubyte" not in message or "expected 3, got 2" not in message:
        fail(f"label count != image count: unclear message: {message}")
    out["label count != image count"] = message


def check_sparse_file(folder: Path, out: dict[str, str]) -> None:
    """A 100 GiB sparse file with a valid header: refused from its size, before any payload is read."""
    from fnnkit.data import read_images
    from fnnkit.errors import DataError

    path = folder / "sparse" / "train-images-idx3-ubyte"
    path.parent.mkdir()
    with open(path, "wb") as f:
        f.write(idx(IMAGES)[:16])
        f.truncate(100 << 30)
    try:
        read_images(path)
    except DataError as exc:
        message = str(exc)
    else:
        fail("sparse 100 GiB file: accepted")
    if "payload length" not in message or str(path) not in message:
        fail(f"sparse 100 GiB file: unclear message: {message}")
    out["sparse huge file"] = message


def main(folder: Path) -> None:
    try:
        assert False  # noqa: B011 - the point: is it stripped?
        asserts = "stripped"
    except AssertionError:
        asserts = "active"
    out = {"optimize": str(sys.flags.optimize), "asserts": asserts}
    check_file_cases(folder, out)
    check_label_count(folder, out)
    check_sparse_file(folder, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
