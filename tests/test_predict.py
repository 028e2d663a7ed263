"""`fnnkit predict` on real-looking pictures built from MNIST test digits, and on hostile files."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from artifactkit import DATASET
from clitools import assert_user_error, run_fnnkit
from PIL import Image

from fnnkit.errors import BackendUnavailable
from fnnkit.predict import InputError, load_model, load_samples, predict, probabilities, to_mnist
from fnnkit.predict.normalize import SIDE, BlankImage

N = 200  # test digits per transformation: enough to see a systematic failure, quick on 2 cores


@pytest.fixture(scope="module")
def artifacts(served_root) -> Path:
    return served_root


@pytest.fixture(scope="module")
def model(trained_root):
    return load_model(trained_root, "C", DATASET, "eager")


@pytest.fixture(scope="module")
def digits(sample_data) -> tuple[np.ndarray, np.ndarray]:
    return sample_data.test_x.numpy()[:N], sample_data.test_y.numpy()[:N]


def _classes(model, images: list[np.ndarray]) -> np.ndarray:
    return probabilities(model, np.stack(images)).argmax(axis=1)


def _jpeg(image: Image.Image, quality: int = 60) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("L"), dtype=np.float32) / 255


def _photo(digit: np.ndarray, rng: np.random.Generator, size: int = 120) -> Image.Image:
    """Dark ink on light paper, enlarged, off-centre on a larger RGB page."""
    ink = Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BICUBIC)
    page = Image.new("L", (size * 2 + 40, size + 80), 235)  # off-white paper
    page.paste(ink.point(lambda v: min(v, 235)), (int(rng.integers(0, size + 40)), int(rng.integers(0, 80))))
    return page.convert("RGB")


TRANSFORMS = {
    "identity": lambda d, rng: d / 255,
    "inverted": lambda d, rng: 1 - d / 255,
    "enlarged": lambda d, rng: np.asarray(Image.fromarray(d).resize((140, 140), Image.Resampling.BICUBIC)) / 255,
    "shifted-padded": lambda d, rng: np.pad(d, ((30, 5), (2, 40))) / 255,
    "jpeg-rgb-photo": lambda d, rng: _jpeg(_photo(d, rng)),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_real_looking_inputs_keep_predictions(model, digits, transform):
    """The normalisation undoes what paper, cameras and framing do: predictions match the raw digits."""
    images, _ = digits
    rng = np.random.default_rng(0)
    raw = _classes(model, [d / 255 for d in images])
    seen = _classes(model, [to_mnist(TRANSFORMS[transform](d, rng).astype(np.float32)).pixels for d in images])
    agreement = float((raw == seen).mean())
    assert agreement >= 0.93, f"{transform}: {agreement:.1%} of {N} predictions unchanged"


def test_normalised_digit_is_mnist_shaped(digits):
    """Longer side 20 px, centre of mass at MNIST's (14, 14), light ink on black."""
    result = to_mnist(1 - digits[0][3] / 255)
    x = result.pixels
    rows, cols = np.nonzero(x > 0)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == 20
    r, c = np.mgrid[:SIDE, :SIDE]
    assert abs((r * x).sum() / x.sum() - 14) <= 0.5 and abs((c * x).sum() / x.sum() - 14) <= 0.5
    assert x[0].max() == 0 and any("inverted" in s for s in result.steps)


@pytest.mark.slow  # a real fnnkit predict process: ~1.9 s
def test_done_when_200px_offcentre_dark_on_white_png(artifacts, digits, tmp_path):
    """The issue's acceptance: a 200x200 off-centre dark-on-white PNG is classified correctly by `fnnkit predict`."""
    images, labels = digits
    model = load_model(artifacts, "C", DATASET, "onnxruntime")
    i = next(i for i in range(N) if _classes(model, [images[i] / 255])[0] == labels[i] and labels[i] == 7)
    ink = Image.fromarray(255 - images[i]).resize((96, 96), Image.Resampling.LANCZOS)
    page = Image.new("L", (200, 200), 255)
    page.paste(ink, (96, 12))  # top-right corner
    path = tmp_path / "seven.png"
    page.save(path)
    result = run_fnnkit("predict", str(path), "--artifacts", str(artifacts), "--dataset", DATASET, "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout.strip().splitlines()[0])
    assert row["top"][0]["class"] == "7" and row["top"][0]["probability"] > 0.5


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height: 2 KB on disk, width*height bytes if decoded (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width + 1) * 64)  # a few rows of a stream that would go on and on
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        ("bomb.png", lambda p: p.write_bytes(_png_header_only(20_000, 20_000)), "400000000 pixels"),
        ("big.png", lambda p: p.write_bytes(_png_header_only(8_000, 6_000)), "declares 8000x6000"),
        ("tiny.png", lambda p: Image.new("L", (1, 1)).save(p), "too small"),
        ("blank.png", lambda p: Image.new("L", (300, 200), 250).save(p), "blank page"),
        ("cut.jpg", lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40), "cannot be decoded"),
        ("text.png", lambda p: p.write_text("not an image"), "is not a PNG"),
        ("nan.npy", lambda p: np.save(p, np.full((28, 28), np.nan)), "NaN"),
        ("objects.npy", lambda p: np.save(p, np.array([{}], dtype=object), allow_pickle=True), "expected numbers"),
        ("wide.npy", lambda p: np.save(p, np.zeros((2, 3, 4, 5))), "expected numbers shaped"),
    ],
)
def test_hostile_file_is_one_line_not_a_traceback(model, tmp_path, name, make, fragment):
    path = tmp_path / name
    make(path)
    (sample,) = load_samples([path])
    assert sample.pixels is None and fragment in sample.problem and str(path) in sample.problem


def test_cli_reports_each_bad_file_and_exits_nonzero(artifacts, digits, tmp_path, cli):
    """Good files are still classified; each bad one gets one line; the exit code says some failed."""
    np.save(tmp_path / "batch.npy", digits[0][:3])
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20_000, 20_000))
    Image.new("L", (1, 1)).save(tmp_path / "tiny.png")
    saved = tmp_path / "seen"
    result = cli(
        "predict", str(tmp_path), "--artifacts", str(artifacts), "--dataset", DATASET, "--save-inputs", str(saved)
    )
    assert_user_error(result, "bomb.png is refused before decoding", "tiny.png: 1x1 px", "2 of 5 input(s)")
    assert "batch.npy[2]" in result[1]
    assert len(list(saved.glob("*.png"))) == 3


def test_idx_and_npy_batches_match_the_model(model, digits, tmp_path):
    """IDX (gzip) and .npy batches are used as is: the same probabilities as the backend on the raw pixels."""
    import gzip

    images, _ = digits
    header = struct.pack(">IIII", 0x803, 10, SIDE, SIDE)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images[:10].tobytes()))
    np.save(tmp_path / "x.npy", images[:10].reshape(10, -1))
    samples = list(load_samples([tmp_path]))
    assert len(samples) == 20 and not any(s.problem for s in samples)
    expected = probabilities(model, images[:10] / 255)
    for half in (samples[:10], samples[10:]):
        got = np.array([p for _, p in (r.top[0] for r in predict(model, half, 1))])
        np.testing.assert_allclose(got, expected.max(axis=1), rtol=1e-5)


def test_missing_path_and_missing_model_are_user_errors(artifacts, tmp_path, cli):
    with pytest.raises(InputError, match="does not exist"):
        list(load_samples([tmp_path / "nope.png"]))
    result = cli("predict", str(tmp_path), "--artifacts", str(tmp_path / "empty"), "--variant", "C")
    assert_user_error(result, "fnnkit train --variant C")


def test_blank_image_error_type():
    with pytest.raises(BlankImage, match="blank page"):
        to_mnist(np.full((50, 50), 0.9, np.float32))


def test_gzip_bomb_idx_is_refused_before_it_is_expanded(tmp_path):
    """A 100 KB .gz that would expand to 100 MiB of IDX is refused while counting, never held in memory."""
    import gzip

    header = struct.pack(">IIII", 0x803, 133_000, SIDE, SIDE)
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header)
        for _ in range(100):
            f.write(bytes(2**20))
    (sample,) = load_samples([path])
    assert "gzip bomb" in sample.problem and path.stat().st_size < 2**20


def test_gpu_only_backend_is_named_not_sent_to_export(trained_root):
    with pytest.raises(BackendUnavailable, match="onnxruntime-fp16 cannot run here on cpu"):
        load_model(trained_root, "C", DATASET, "onnxruntime-fp16")
