"""Bounded, validated reading of what a user points `fnnkit predict` at.

Every file is hostile until checked: its size is bounded before it is read, an image's pixel
count is read from its header and bounded *before* it is decoded (a 20000x20000 PNG is 2 KB on
disk and 400 MB decoded), arrays are checked for shape, dtype and finite values. A bad file
becomes one ``Sample`` with a ``problem`` line, so the others still run.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fnnkit.errors import FnnkitError
from fnnkit.predict.normalize import SIDE, BlankImage, to_mnist
from fnnkit.store.io import open_regular

MAX_FILE_BYTES = 64 * 2**20  # MNIST's largest IDX file is 47 MB; a phone photo is under 20 MB
MAX_PIXELS = 40_000_000  # decoded size of a 40 MP image: 40 MB gray, 160 MB RGBA
MAX_ARRAY_VALUES = 16_000_000  # 20,000 samples of 784 values
MAX_DEPTH = 32  # folders below a given folder: photo libraries nest a few levels, not thousands
MAX_FILES = 100_000  # files found under given folders
DECODE_SIDE = 512  # a large JPEG is decoded at reduced scale, keeping at least this many px (25x the 20 px box)
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "MPO")  # MPO: a phone camera's JPEG with extra frames; the first is read
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grayscale PNG: scaled from 0..65535, not clipped
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_MAGIC = {b"\x89PNG": "image", b"\xff\xd8\xff": "image", b"BM": "image", b"\x93NUMPY": "npy"}
_IDX_IMAGES = b"\x00\x00\x08\x03"  # IDX magic: unsigned bytes, 3 dimensions
_GZIP = b"\x1f\x8b"
_SOF_ARITHMETIC = (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)  # JPEG frame markers of arithmetic-coded images


class InputError(FnnkitError):
    """An input file cannot be used: unreadable, too large, blank, or not an image/array fnnkit reads."""


@dataclass(frozen=True)
class Sample:
    """One picture to classify: its 28x28 pixels, or why there are none."""

    name: str
    pixels: np.ndarray | None = None  # float32 [28, 28] in [0, 1]
    steps: tuple[str, ...] = field(default=())
    problem: str = ""


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders become their image/.npy/IDX files, sorted. A missing path is an error now."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in _walk(path) if _looks_readable(p))
            if not found:
                raise InputError(f"{path} holds no PNG/JPEG/BMP, .npy or IDX files")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"{path} does not exist; give image files, folders of them, .npy arrays or IDX files")
    return files


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under ``root``, without recursion (a folder nested 1,200 deep is named, not a RecursionError);
    symlinked folders are not followed (no loops), and depth and count are bounded."""
    stack, count = [(root, 0)], 0
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DEPTH:
                    raise InputError(
                        f"{root} nests folders more than {MAX_DEPTH} deep ({entry.path}); give the folders that "
                        "hold the pictures"
                    )
                stack.append((Path(entry.path), depth + 1))
            elif entry.is_file():
                count += 1
                if count > MAX_FILES:
                    raise InputError(f"{root} holds more than {MAX_FILES:,} files; give a smaller folder")
                yield Path(entry.path)


def _looks_readable(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((*IMAGE_SUFFIXES, ".npy")) or "idx3" in name


def load_samples(paths: list[Path]) -> Iterator[Sample]:
    """Every sample in every file, in order; a file that fails yields one Sample with its problem.

    Arithmetic trouble (overflow, 0/0) in a file's numbers is that file's problem line, never a
    RuntimeWarning on stderr; library warnings about a file (a malformed EXIF block) are not printed.
    """
    for path in expand(paths):
        try:
            with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = list(_load_file(path))
        except InputError as exc:
            yield Sample(str(path), problem=str(exc))
        except BlankImage as exc:
            yield Sample(str(path), problem=f"{path}: {exc}")
        except FloatingPointError as exc:
            yield Sample(str(path), problem=f"{path}: its values cannot be used ({exc}); expected pixels in [0, 255]")
        else:
            yield from samples


def _load_file(path: Path) -> Iterator[Sample]:
    head = _head(path)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind == "image":
        yield load_image(path)
    elif kind == "npy":
        yield from load_npy(path)
    elif head.startswith((_IDX_IMAGES, _GZIP)):
        yield from load_idx(path)
    else:
        raise InputError(f"{path} is not a PNG, JPEG, BMP, .npy or IDX image file (first bytes {head[:8].hex()})")


def _head(path: Path) -> bytes:
    """The first bytes, after checking the file is a regular file of bounded size (``store.open_regular``)."""
    with open_regular(path, MAX_FILE_BYTES, "input", error=InputError, follow_symlinks=True) as f:
        try:
            head = f.read(16)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise InputError(f"{path} is empty")
    return head


# --------------------------------------------------------------------------- images


@contextlib.contextmanager
def _pixel_limit() -> Iterator[None]:
    """PIL's own bomb guard at fnnkit's limit (it raises above 2x in ``open``), restored afterwards.

    Its warning (1x..2x) is silenced: ``load_image`` refuses those itself, naming the declared size.
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def load_image(path: Path | BinaryIO, name: str | None = None) -> Sample:
    """A PNG/JPEG/BMP file (or an uploaded body), its size checked from the header before a pixel is decoded.

    Raises InputError (unreadable, too large) or BlankImage (no digit in it).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or str(path)
    try:
        with _pixel_limit(), Image.open(path) as image:  # lazy: reads the header only
            if image.format not in IMAGE_FORMATS:
                raise InputError(f"{name} is a {image.format} image; fnnkit reads PNG, JPEG (MPO too), BMP")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InputError(
                    f"{name} declares {width}x{height} px ({width * height / 1e6:.0f} MP), over the "
                    f"{MAX_PIXELS / 1e6:.0f} MP limit (a decompression bomb or a huge scan); downscale it first"
                )
            kind = f"{image.format} {image.mode}"
            if image.format in ("JPEG", "MPO"):
                _check_jpeg_data(image, name)
                longer = max(width, height)
                if longer > 2 * DECODE_SIDE:  # decode at 1/2..1/8 scale: cheaper
                    image.draft("L", (width * DECODE_SIDE // longer, height * DECODE_SIDE // longer))
            upright = ImageOps.exif_transpose(image)  # a phone's rotated photo, turned as its camera meant
            if upright is not image and _orientation(image) not in (None, 1):
                kind += f", EXIF orientation {_orientation(image)} applied"
            gray = _to_gray(upright)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name} is refused before decoding, as a decompression bomb: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name} is damaged or truncated and cannot be decoded ({exc})") from None
    result = to_mnist(gray)
    return Sample(name, result.pixels, (kind, *result.steps))


def _orientation(image) -> int | None:
    try:
        return image.getexif().get(0x0112)  # the EXIF Orientation tag
    except Exception:  # a malformed EXIF block: Pillow raises whatever its parser hit; no orientation then
        return None


def _check_jpeg_data(image, name: str) -> None:
    """Refuse a JPEG that holds too little data for the size it declares (a cut file, or a header rewritten to
    promise more): libjpeg would fill the missing rows with grey and say nothing. Every block's DC value is
    Huffman-coded with at least one bit in every sequential or progressive JPEG, so a complete image needs
    at least (blocks / 8) bytes after its first scan header. Arithmetic-coded files (rare) are not bounded so."""
    fp = image.fp
    position = fp.tell()
    try:
        fp.seek(0)
        data = fp.read(MAX_FILE_BYTES + 1)
    finally:
        fp.seek(position)
    if any(bytes([0xFF, m]) in data[:65536] for m in _SOF_ARITHMETIC):
        return
    scan = data.find(b"\xff\xda")
    width, height = image.size
    blocks = -(-width // 8) * -(-height // 8)
    held = len(data) - scan if scan >= 0 else 0
    if held * 8 < blocks:
        raise InputError(
            f"{name} declares {width}x{height} px but holds {held:,} bytes of image data, fewer than any complete "
            f"JPEG of that size needs ({blocks // 8:,}): the file is cut short or its header was altered"
        )


def _to_gray(image) -> np.ndarray:
    """Grayscale in [0, 1]; transparent pixels become white paper (ink drawn on a transparent canvas); 16-bit
    grayscale is scaled from its own range (Pillow's 8-bit conversion would clip grey ink to white)."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT:
        return np.clip(np.asarray(image, dtype=np.float64) / 65535.0, 0.0, 1.0).astype(np.float32)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        return np.clip(values / 255.0 if values.max(initial=0) > 1 else values, 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- arrays


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, validated before numpy maps a byte: every dimension a positive
    integer, numbers only, and the data section exactly the size the header implies."""
    import tokenize

    from numpy.lib import format as npy_format

    readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
    try:
        with path.open("rb") as f:
            version = npy_format.read_magic(f)
            if version not in readers:
                raise InputError(f"{path} is a .npy of format version {version}; fnnkit reads versions 1.0 and 2.0")
            shape, _, dtype = readers[version](f)
            offset = f.tell()
    except InputError:
        raise
    except (ValueError, TypeError, SyntaxError, tokenize.TokenError, OSError, EOFError, MemoryError) as exc:
        raise InputError(f"{path} is not a readable .npy array (its header: {str(exc)[:120]})") from None
    dims = ", ".join(str(d) for d in shape)
    if not all(isinstance(d, int) and d >= 1 for d in shape):
        raise InputError(f"{path} is shaped ({dims}): an array with a zero or negative dimension holds no picture")
    if dtype.kind not in "uif" or not 1 <= len(shape) <= 3 or math.prod(shape) > MAX_ARRAY_VALUES:
        raise InputError(
            f"{path} holds {dtype} ({dims}); expected numbers shaped [28,28], [784], [N,28,28], "
            f"[N,784] or [H,W], at most {MAX_ARRAY_VALUES:,} values"
        )
    expected, actual = math.prod(shape) * dtype.itemsize, path.stat().st_size - offset
    if actual != expected:
        raise InputError(
            f"{path}: its header promises ({dims}) {dtype}, {expected:,} bytes of data, but the file holds {actual:,}: "
            "it is cut short or has bytes appended"
        )
    return shape, dtype


def load_npy(path: Path) -> Iterator[Sample]:
    """A .npy of MNIST-shaped samples ([28,28], [784], [N,28,28], [N,784]) or one grayscale picture [H,W]."""
    _npy_header(path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # header checked above; data not read yet
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path} is not a readable .npy array ({exc})") from None
    values = np.asarray(array, dtype=np.float32)
    if not np.isfinite(values).all():
        raise InputError(f"{path} contains NaN or infinite values")
    if values.min() < 0 or values.max() > 255:
        raise InputError(f"{path} has values in [{values.min():g}, {values.max():g}]; expected [0, 1] or [0, 255]")
    if values.max() > 1.0:
        values = values / 255.0
    shape = values.shape
    if shape in ((SIDE, SIDE), (SIDE * SIDE,)):
        yield Sample(str(path), values.reshape(SIDE, SIDE), ("MNIST-shaped array, used as is",))
    elif values.ndim == 2 and shape[1] == SIDE * SIDE or values.ndim == 3 and shape[1:] == (SIDE, SIDE):
        yield from _batch(path, values.reshape(-1, SIDE, SIDE), "array")
    elif values.ndim == 2:
        result = to_mnist(values)
        yield Sample(str(path), result.pixels, ("grayscale array", *result.steps))
    else:
        raise InputError(f"{path} is shaped {list(shape)}; expected [28,28], [784], [N,28,28], [N,784] or [H,W]")


def load_idx(path: Path) -> Iterator[Sample]:
    """An IDX image file (MNIST's own format, raw or gzip), parsed by fnnkit's validating reader."""
    from fnnkit.data import read_images
    from fnnkit.errors import DataError

    if _head(path).startswith(_GZIP):
        _check_gunzipped_size(path)
    try:
        images = read_images(path)
    except DataError as exc:
        raise InputError(str(exc)) from None
    if images.shape[1:] != (SIDE, SIDE):
        raise InputError(f"{path} holds {list(images.shape[1:])} images; expected {SIDE}x{SIDE}")
    if len(images) == 0:
        raise InputError(f"{path} is a valid IDX file holding 0 images: nothing to classify")
    yield from _batch(path, images.astype(np.float32) / 255.0, "IDX")


def _check_gunzipped_size(path: Path, chunk: int = 2**20) -> None:
    """Refuse a gzip bomb: decompress in bounded steps, counting, before the IDX reader decompresses it whole."""
    import zlib

    inflate, total = zlib.decompressobj(wbits=31), 0
    try:
        with path.open("rb") as f:
            while block := f.read(chunk):
                while block:
                    total += len(inflate.decompress(block, chunk))
                    if total > MAX_FILE_BYTES:
                        raise InputError(
                            f"{path} expands to more than {MAX_FILE_BYTES >> 20} MiB when gunzipped (a gzip bomb?); "
                            "fnnkit predict reads IDX files up to that size"
                        )
                    block = inflate.unconsumed_tail
    except zlib.error as exc:
        raise InputError(f"{path} is not a valid gzip file ({exc})") from None


def _batch(path: Path, images: np.ndarray, kind: str) -> Iterator[Sample]:
    width = len(str(len(images) - 1))
    for i, pixels in enumerate(images):
        yield Sample(f"{path}[{i:0{width}d}]", pixels, (f"{kind} sample {i}, MNIST-shaped, used as is",))


def save_inputs(samples: list[Sample], folder: Path) -> list[Path]:
    """The 28x28 each model saw, as PNGs (white ink on black, as MNIST), written atomically."""
    from PIL import Image

    from fnnkit.store import atomic_write, ensure_writable_dir

    folder = ensure_writable_dir(folder, "--save-inputs")
    written = []
    for i, sample in enumerate(s for s in samples if s.pixels is not None):
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", os.path.basename(sample.name).replace("]", ""))[:80]  # a safe name
        image = Image.fromarray(np.round(sample.pixels * 255).astype(np.uint8), mode="L")
        target = folder / f"{i:05d}_{stem}.png"
        written.append(atomic_write(target, lambda temp, im=image: im.save(temp, format="PNG")))
    return written
