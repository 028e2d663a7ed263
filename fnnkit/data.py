"""Datasets as in-memory uint8 tensors: MNIST, Fashion-MNIST (IDX files) and the bundled sample.

Sources, in the order they are tried:

- ``mnist``: the four IDX files (``.gz`` or uncompressed) in ``<data_dir>/mnist``,
  ``<data_dir>`` or ``<data_dir>/MNIST/raw`` (torchvision's layout); otherwise a download
  from torchvision's mirrors into ``<data_dir>/mnist``.
- ``fashion-mnist``: ``<data_dir>/fashion-mnist``, ``<data_dir>/FashionMNIST/raw``, the
  Debian copy in ``/usr/share/datasets/fashion-mnist``; otherwise a download.
- ``mnist-sample``: 4,000/1,000 real MNIST digits shipped inside the package (offline).
- ``auto``: ``mnist`` if present or downloadable, else ``mnist-sample``, saying why in
  ``DatasetInfo.note``.

Integrity: a download is checked against the md5 torchvision publishes before it is moved
into place. Files a user supplies are not md5-checked (recompressed or uncompressed copies,
such as Debian's, are legitimate); instead every IDX file is fully validated: header, type,
dimensions, exact payload length, gzip stream and CRC, label range, image/label counts.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.client
import os
import secrets
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from fnnkit.errors import DataError, unknown_choice

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
DIGITS = tuple(str(i) for i in range(NUM_CLASSES))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SYSTEM_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
SAMPLE_RESOURCE = "datasets/mnist_sample.npz"  # inside the fnnkit package
DOWNLOAD_TIMEOUT_S = 10.0  # per connect/read: an offline or firewalled machine gives up fast

IMAGES_MAGIC = 0x0803  # unsigned byte, 3 dims
LABELS_MAGIC = 0x0801  # unsigned byte, 1 dim
_IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_GZIP_MAGIC = b"\x1f\x8b"
SPLIT_FILES = {  # split -> (images, labels), the names every MNIST-format dataset uses
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FILES = tuple(name for pair in SPLIT_FILES.values() for name in pair)

Progress = Callable[[str, int, "int | None"], None]  # (file name, bytes so far, total or None)


@dataclass(frozen=True)
class DatasetInfo:
    """Where the data came from: recorded in every artifact's metadata."""

    name: str  # "mnist" | "fashion-mnist" | "mnist-sample"
    source: str  # a folder, a URL or "bundled"
    train_size: int
    test_size: int
    classes: tuple[str, ...] = tuple(str(i) for i in range(10))
    note: str = ""  # e.g. why `auto` fell back to the sample


@dataclass(frozen=True)
class Dataset:
    train_x: torch.Tensor  # uint8 [N, 28, 28]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor  # uint8 [M, 28, 28]
    test_y: torch.Tensor  # int64 [M]
    info: DatasetInfo = field(compare=False)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 784] in [0, 1]: exactly what ToTensor + view(-1, 784) gave."""
    return images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)


def default_data_dir() -> Path:
    """Where datasets live unless the caller (the CLI: --data-dir / FNNKIT_DATA) says otherwise."""
    return Path("~/.cache/fnnkit/data").expanduser()


# --------------------------------------------------------------------------- IDX files


def _idx_error(path: Path, what: str, expected: object, actual: object) -> DataError:
    return DataError(
        f"bad IDX file {path}: {what}: expected {expected}, got {actual}; "
        "the file is damaged or not what its name says: replace it (or delete it to download again)"
    )


def _read_bytes(path: Path) -> bytes:
    """The file's IDX bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)  # checks the CRC and length trailer too
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        kind = {zlib.error: "zlib.error", gzip.BadGzipFile: "BadGzipFile"}.get(type(exc), type(exc).__name__)
        raise _idx_error(path, "gzip stream", "a complete, valid gzip file", f"{kind}: {exc}") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (raw or gzip) as a uint8 array shaped by its header, every field checked."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise _idx_error(path, "header length", "at least 4 bytes", f"{len(data)} bytes")
    if data[:2] != b"\x00\x00":
        raise _idx_error(path, "magic number (first two bytes)", "0x0000", f"0x{data[:2].hex()}")
    type_code, ndim = data[2], data[3]
    if type_code != 0x08:
        kind = _IDX_TYPES.get(type_code, "unknown")
        raise _idx_error(
            path, "type code", "0x08 (unsigned byte, the only type fnnkit reads)", f"0x{type_code:02x} ({kind})"
        )
    if ndim == 0:
        raise _idx_error(path, "number of dimensions", "at least 1", 0)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _idx_error(path, "header length", f"{header} bytes for {ndim} dims", f"{len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    payload = len(data) - header
    expected = int(np.prod(dims, dtype=np.int64))
    if payload != expected:
        shape = "x".join(map(str, dims))
        raise _idx_error(path, "payload length", f"{expected} bytes ({shape})", f"{payload} bytes")
    # one copy: the array owns writable memory, so torch.from_numpy needs no further copy
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _check_magic(path: Path, array: np.ndarray, expected: int, what: str) -> None:
    magic = 0x0800 | array.ndim
    if magic != expected:
        kind = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(magic, f"{array.ndim}-dim data")
        raise _idx_error(path, "magic number", f"{expected} ({what})", f"{magic} ({kind})")


def read_images(path: str | os.PathLike) -> np.ndarray:
    """An IDX image file: uint8 [N, 28, 28]."""
    path = Path(path)
    images = read_idx(path)
    _check_magic(path, images, IMAGES_MAGIC, "images")
    if images.shape[1:] != IMAGE_SHAPE:
        raise _idx_error(path, "image size", "28x28", "x".join(map(str, images.shape[1:])))
    return images


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """An IDX label file: uint8 [N], every value a class 0..9."""
    path = Path(path)
    labels = read_idx(path)
    _check_magic(path, labels, LABELS_MAGIC, "labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        at = int(np.argmax(labels >= NUM_CLASSES))
        raise _idx_error(path, f"label at index {at}", f"0..{NUM_CLASSES - 1}", int(labels[at]))
    return labels


def _read_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise _idx_error(labels_path, f"label count (one per image in {images_path.name})", len(images), len(labels))
    if len(images) == 0:
        raise _idx_error(images_path, "image count", "at least 1", 0)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


# --------------------------------------------------------------------------- IDX sources


@dataclass(frozen=True)
class IdxSource:
    """A dataset published as the four MNIST-format IDX files: where to look, how to fetch."""

    name: str
    title: str
    subdirs: tuple[str, ...]  # under data_dir, in order; the first is where downloads go
    torchvision_class: str  # its .mirrors/.resources give the URLs and md5s to download
    classes: tuple[str, ...] = DIGITS
    system_dirs: tuple[Path, ...] = ()  # read-only copies installed by the OS

    def folders(self, data_dir: Path) -> list[Path]:
        return [(data_dir / sub) if sub != "." else data_dir for sub in self.subdirs] + list(self.system_dirs)


IDX_SOURCES: dict[str, IdxSource] = {
    source.name: source
    for source in (
        IdxSource("mnist", "MNIST", ("mnist", ".", "MNIST/raw"), "MNIST"),
        IdxSource(
            "fashion-mnist",
            "Fashion-MNIST",
            ("fashion-mnist", "FashionMNIST/raw"),
            "FashionMNIST",
            FASHION_CLASSES,
            (SYSTEM_FASHION_DIR,),
        ),
    )
}


def _find_file(folder: Path, stem: str) -> Path | None:
    """Uncompressed first (faster to read), then the .gz."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_folder(source: IdxSource, data_dir: Path) -> dict[str, Path] | None:
    """The first folder holding all four files, as {stem: path}; None if there is none."""
    for folder in source.folders(data_dir):
        files = {stem: _find_file(folder, stem) for stem in IDX_FILES}
        if all(files.values()):
            return files  # type: ignore[return-value]
    return None


def _load_idx_files(source: IdxSource, files: dict[str, Path], note: str = "") -> Dataset:
    (train_x, train_y), (test_x, test_y) = (_read_split(files[i], files[lab]) for i, lab in SPLIT_FILES.values())
    folder = files[IDX_FILES[0]].parent
    info = DatasetInfo(source.name, str(folder), len(train_x), len(test_x), source.classes, note)
    return Dataset(train_x, train_y, test_x, test_y, info)


def _where_to_put(source: IdxSource, data_dir: Path) -> str:
    names = ", ".join(f"{stem}.gz" for stem in IDX_FILES)
    return f"put these four files (gzipped or not) in {data_dir / source.subdirs[0]}: {names}"


def _missing_message(source: IdxSource, data_dir: Path, why: str) -> str:
    partial = ""
    for folder in source.folders(data_dir):
        missing = [stem for stem in IDX_FILES if _find_file(folder, stem) is None]
        if len(missing) < len(IDX_FILES):
            partial = f" ({folder} has some files but lacks {', '.join(missing)})"
            break
    looked = ", ".join(str(f) for f in source.folders(data_dir))
    todo = _where_to_put(source, data_dir)
    return f"{source.title} not found (looked in {looked}){partial} and {why}.\nTo use it, {todo}"


def _offline_alternatives() -> str:
    fashion = IDX_SOURCES["fashion-mnist"]
    debian = next((d for d in fashion.system_dirs if d.is_dir()), None)
    where = f"installed here in {debian}" if debian else "apt-get install dataset-fashion-mnist"
    return f"offline datasets: mnist-sample (bundled, 4,000/1,000 real MNIST digits), fashion-mnist ({where})"


def _load_idx(source: IdxSource, data_dir: Path, download: bool, progress: Progress | None) -> Dataset:
    files = find_idx_folder(source, data_dir)
    if files is not None:
        return _load_idx_files(source, files)
    if not download:
        raise DataError(f"{_missing_message(source, data_dir, 'downloading is off')}\n{_offline_alternatives()}")
    return _download_and_load(source, data_dir, progress)


def _download_and_load(source: IdxSource, data_dir: Path, progress: Progress | None) -> Dataset:
    url = _download(source, data_dir, progress)
    files = find_idx_folder(source, data_dir)
    assert files is not None, "a completed download places all four files"
    return _load_idx_files(source, files, note=f"downloaded from {url}")


# --------------------------------------------------------------------------- download


def _resources(source: IdxSource) -> tuple[list[str], list[tuple[str, str]]]:
    """(mirrors, [(file name, md5)]) as torchvision publishes them: one list, kept upstream."""
    import torchvision.datasets  # heavy; only a download needs it

    cls = getattr(torchvision.datasets, source.torchvision_class)
    return list(cls.mirrors), [tuple(r) for r in cls.resources]


def _describe(exc: BaseException) -> str:
    """One line for a failed fetch: the resolver's or server's own words, not a traceback."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib.error.HTTPError) or reason is None:
        return f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return f"{type(reason).__name__}: {reason}".replace("\n", " ")


def _fetch(url: str, target: Path, md5: str, progress: Progress | None) -> None:
    """Stream one URL into ``target``, hashing as it goes; a wrong md5 is a DataError."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": "fnnkit"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        done = 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(target.name, done, total)
    if digest.hexdigest() != md5:
        raise DataError(f"downloaded {url}: md5 {digest.hexdigest()} does not match the published {md5}")


class _DownloadError(DataError):
    """A fetch failed on every mirror; ``reason`` is the first failure in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _fetch_any(mirrors: list[str], name: str, target: Path, md5: str, progress: Progress | None) -> str:
    """Try each mirror in turn; returns the URL that worked."""
    failures = []
    for mirror in mirrors:
        url = mirror + name
        try:
            _fetch(url, target, md5, progress)
            return url
        except DataError as exc:
            failures.append((url, str(exc)))
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            failures.append((url, _describe(exc)))
    raise _DownloadError("; ".join(f"{url}: {why}" for url, why in failures), failures[0][1])


def _writable_dir(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {folder}: {exc.strerror or exc}; choose another data dir") from None
    return folder


def _sweep_stale_downloads(data_dir: Path, name: str) -> None:
    """Remove temp folders of downloads whose process died (kill -9): they are never resumed."""
    for entry in data_dir.glob(f".{name}.download-*"):
        try:
            os.kill(int(entry.name.split("-")[-2]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (ValueError, OSError):
            pass  # alive (maybe another user's) or not ours to judge


def _download(source: IdxSource, data_dir: Path, progress: Progress | None) -> str:
    """All four files into a temp folder, md5-checked, then renamed into place; returns the mirror.

    Any failure removes the temp folder, so no partial file is ever left where a loader looks.
    """
    temp = data_dir / f".{source.name}.download-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _writable_dir(data_dir)
        _sweep_stale_downloads(data_dir, source.name)
        temp.mkdir()
        mirrors, files = _resources(source)
        used = [_fetch_any(mirrors, name, temp / name, md5, progress) for name, md5 in files]
        target = _writable_dir(data_dir / source.subdirs[0])
        for name, _ in files:
            os.replace(temp / name, target / name)
    except (DataError, OSError) as exc:
        reason = exc.reason if isinstance(exc, _DownloadError) else f"{type(exc).__name__}: {exc}"
        raise _DownloadError(
            f"could not download {source.title}: {exc}\n"
            f"To use it offline, {_where_to_put(source, data_dir)}\n{_offline_alternatives()}",
            reason,
        ) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return used[0].rsplit("/", 1)[0] + "/"


# --------------------------------------------------------------------------- bundled sample


def _sample_file():  # -> importlib.resources.abc.Traversable
    return resources.files("fnnkit").joinpath(SAMPLE_RESOURCE)


def _sample_array(npz: np.lib.npyio.NpzFile, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    array = npz[key]
    if array.dtype != np.uint8 or len(array.shape) != len(shape):
        raise ValueError(f"{key}: expected uint8 with {len(shape)} dims, got {array.dtype} {array.shape}")
    if any(want is not None and got != want for got, want in zip(array.shape, shape, strict=True)):
        raise ValueError(f"{key}: expected shape {shape}, got {array.shape}")
    return array


def load_sample(path: str | os.PathLike | None = None) -> Dataset:
    """The bundled 4,000/1,000 MNIST sample (or an npz of the same layout at ``path``)."""
    target = _sample_file() if path is None else Path(path)
    try:
        with target.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            train_x = _sample_array(npz, "train_x", (None, *IMAGE_SHAPE))
            train_y = _sample_array(npz, "train_y", (len(train_x),))
            test_x = _sample_array(npz, "test_x", (None, *IMAGE_SHAPE))
            test_y = _sample_array(npz, "test_y", (len(test_x),))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"bundled sample {target} is damaged ({type(exc).__name__}: {exc}); reinstall fnnkit, "
            "or rebuild it with scripts/make_mnist_sample.py"
        ) from None
    for name, labels in (("train_y", train_y), ("test_y", test_y)):
        if labels.size and labels.max() >= NUM_CLASSES:
            raise DataError(f"bundled sample {target} is damaged ({name} holds {labels.max()}); reinstall fnnkit")
    info = DatasetInfo("mnist-sample", "bundled" if path is None else str(path), len(train_x), len(test_x))
    as_labels = lambda y: torch.from_numpy(y.astype(np.int64))  # noqa: E731
    return Dataset(torch.from_numpy(train_x), as_labels(train_y), torch.from_numpy(test_x), as_labels(test_y), info)


# --------------------------------------------------------------------------- registry + auto


def _load_auto(data_dir: Path, download: bool, progress: Progress | None) -> Dataset:
    """Full MNIST when present or downloadable, else the sample, saying why in one line.

    Only absence falls back: a damaged local MNIST file is an error to fix, not to hide.
    """
    mnist = IDX_SOURCES["mnist"]
    files = find_idx_folder(mnist, data_dir)
    if files is not None:
        return _load_idx_files(mnist, files)
    where = data_dir / mnist.subdirs[0]
    if download:
        try:
            return _download_and_load(mnist, data_dir, progress)
        except _DownloadError as exc:
            reason = f"not in {where} and could not be downloaded ({exc.reason})"
    else:
        reason = f"not in {where} and downloads are off"
    sample = load_sample()
    note = f"auto: full MNIST {reason}; using the bundled mnist-sample (4,000/1,000 real MNIST digits)"
    return dataclasses.replace(sample, info=dataclasses.replace(sample.info, note=note))


_Loader = Callable[[Path, bool, "Progress | None"], Dataset]
_LOADERS: dict[str, _Loader] = {
    "auto": _load_auto,
    **{name: functools.partial(_load_idx, source) for name, source in IDX_SOURCES.items()},
    "mnist-sample": lambda data_dir, download, progress: load_sample(),
}
DATASET_NAMES: tuple[str, ...] = tuple(_LOADERS)  # ("auto", "mnist", "fashion-mnist", "mnist-sample")


def load_dataset(
    name: str = "auto",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """Load a dataset by name into memory; ``progress`` is called while downloading."""
    if name not in _LOADERS:
        raise unknown_choice("dataset", name, DATASET_NAMES)
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return _LOADERS[name](folder, download, progress)


def dataset_status(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Per dataset name, whether it is here and where from: for ``fnnkit info``; never downloads."""
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    status = {}
    for name, source in IDX_SOURCES.items():
        files = find_idx_folder(source, folder)
        status[name] = (
            f"available: {files[IDX_FILES[0]].parent}"
            if files
            else f"not here (looked in {', '.join(map(str, source.folders(folder)))}); downloads on first use"
        )
    sample = _sample_file()
    status["mnist-sample"] = f"available: bundled ({sample})" if sample.is_file() else f"missing: {sample}"
    auto = (
        "uses mnist"
        if status["mnist"].startswith("available")
        else "uses mnist after downloading it when online, else mnist-sample"
    )
    return {"auto": auto, **status}
