"""IDX files (the MNIST format), read defensively: the header decides how much is ever read.

A hostile or damaged file must not cost more than a valid one: the header is read and
checked first, the payload size is computed with Python integers (no overflow wrap) and
bounded, an uncompressed file's size is compared with the header before its payload is
read (a 100 GB sparse file is refused from its size), and a gzip stream is inflated only up
to the declared payload plus one byte, which detects trailing data (a gzip bomb stops there).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from fnnkit.errors import DataError
from fnnkit.shapes import IMAGE_SHAPE, INPUT_DIM, NUM_CLASSES  # noqa: F401  (the data's shape, named here too)
from fnnkit.store.io import open_regular

MAX_PAYLOAD_BYTES = 1 << 30  # 1 GiB: 20x full MNIST's largest file; anything bigger is not a dataset we train on
_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _idx_error(path: Path, what: str, expected: object, actual: object) -> DataError:
    return DataError(
        f"bad IDX file {path}: {what}: expected {expected}, got {actual}; "
        "the file is damaged or not what its name says: replace it (or delete it to download again)"
    )


def open_dataset_file(path: Path):
    """``path`` opened only if it is a regular file (a FIFO or device would hang or never end); a dataset
    may be a symlink (a system copy), and its header, not its size, bounds what is read."""
    return open_regular(path, None, "dataset file", error=DataError, follow_symlinks=True)


def _read_exact(stream, view: memoryview) -> int:
    """Fill ``view`` from ``stream`` as far as it goes; returns the bytes read."""
    done = 0
    while done < len(view):
        got = stream.readinto(view[done : done + _CHUNK])
        if not got:
            break
        done += got
    return done


def _read_header(path: Path, stream, ndim_wanted: int | None) -> tuple[int, ...]:
    head = stream.read(4)
    if len(head) < 4:
        raise _idx_error(path, "header length", "at least 4 bytes", f"{len(head)} bytes")
    if head[:2] != b"\x00\x00":
        raise _idx_error(path, "magic number (first two bytes)", "0x0000", f"0x{head[:2].hex()}")
    type_code, ndim = head[2], head[3]
    if type_code != 0x08:
        kind = _IDX_TYPES.get(type_code, "unknown")
        raise _idx_error(
            path, "type code", "0x08 (unsigned byte, the only type fnnkit reads)", f"0x{type_code:02x} ({kind})"
        )
    if ndim == 0:
        raise _idx_error(path, "number of dimensions", "at least 1", 0)
    if ndim_wanted is not None and ndim != ndim_wanted:
        kind = {3: "2051 (images)", 1: "2049 (labels)"}
        actual = kind.get(ndim, f"{0x0800 | ndim} ({ndim}-dim data)")
        raise _idx_error(path, "magic number", kind.get(ndim_wanted, ndim_wanted), actual)
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise _idx_error(path, "header length", f"{4 + 4 * ndim} bytes for {ndim} dims", f"{4 + len(raw_dims)} bytes")
    return tuple(int.from_bytes(raw_dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """One IDX file (raw or gzip) as a uint8 array shaped by its header, every field checked.

    ``ndim`` (3 for images, 1 for labels) is checked from the header, before any payload is read.
    """
    path = Path(path)
    with open_dataset_file(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            return _read_payload(path, stream, ndim, None if compressed else size)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            kind = {zlib.error: "zlib.error", gzip.BadGzipFile: "BadGzipFile"}.get(type(exc), type(exc).__name__)
            raise _idx_error(path, "gzip stream", "a complete, valid gzip file", f"{kind}: {exc}") from None
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_payload(path: Path, stream, ndim: int | None, file_size: int | None) -> np.ndarray:
    dims = _read_header(path, stream, ndim)
    header = 4 + 4 * len(dims)
    expected = 1
    for d in dims:  # Python ints: a product that would overflow 64 bits stays exact and is refused below
        expected *= d
    shape = "x".join(map(str, dims))
    if expected > MAX_PAYLOAD_BYTES:
        raise _idx_error(path, f"payload size ({shape})", f"at most {MAX_PAYLOAD_BYTES:,} bytes", f"{expected:,}")
    if file_size is not None and file_size - header != expected:
        raise _idx_error(path, "payload length", f"{expected} bytes ({shape})", f"{file_size - header} bytes")
    array = np.empty(expected, dtype=np.uint8)
    got = _read_exact(stream, memoryview(array))
    if got < expected:
        raise _idx_error(path, "payload length", f"{expected} bytes ({shape})", f"{got} bytes")
    if stream.read(1):  # for gzip also reaches the end of the stream, where the CRC and length are checked
        raise _idx_error(path, "payload length", f"{expected} bytes ({shape})", f"more than {expected} bytes")
    return array.reshape(dims)


def read_images(path: str | os.PathLike) -> np.ndarray:
    """An IDX image file: uint8 [N, 28, 28]."""
    path = Path(path)
    images = read_idx(path, ndim=3)
    if images.shape[1:] != IMAGE_SHAPE:
        raise _idx_error(path, "image size", "28x28", "x".join(map(str, images.shape[1:])))
    return images


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """An IDX label file: uint8 [N], every value a class 0..9."""
    path = Path(path)
    labels = read_idx(path, ndim=1)
    if labels.size and labels.max() >= NUM_CLASSES:
        at = int(np.argmax(labels >= NUM_CLASSES))
        raise _idx_error(path, f"label at index {at}", f"0..{NUM_CLASSES - 1}", int(labels[at]))
    return labels


def read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 [N, 28, 28]) and labels (int64 [N]) that belong together: counts must agree and be non-zero."""
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise _idx_error(labels_path, f"label count (one per image in {images_path.name})", len(images), len(labels))
    if len(images) == 0:
        raise _idx_error(images_path, "image count", "at least 1", 0)
    return images, labels.astype(np.int64)
