"""What `fnnkit predict` is pointed at, and the pixels `POST /predict` is sent, by what each attack does.

Every bad input is one line naming it and a non-zero exit; no traceback, no RuntimeWarning, no raw control
character on the terminal. Real pictures are read the way their maker meant them: EXIF orientation
applied, 16-bit grey scaled (not clipped), a phone's MPO file read from its first frame.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from artifactkit import DATASET
from clitools import assert_user_error
from PIL import Image

from fnnkit.predict import InputError, load_samples
from fnnkit.serve.payload import PayloadError, pixels_from_json

# --------------------------------------------------------------------------- .npy headers


def _npy(path: Path, header: str, data: bytes = b"") -> None:
    text = header.encode()
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data)


ZERO_SIZE = [(0,), (0, 784), (0, 28, 28), (5, 0), (28, 0), (3, 0, 28)]
BAD_HEADERS = {
    "negative": ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 784), }", "zero or negative dimension"),
    "unbalanced": ("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 784, }", "not a readable .npy"),
    "not a dict": ("[1, 2, 3]", "not a readable .npy"),
    "object dtype": ("{'descr': '|O', 'fortran_order': False, 'shape': (784,), }", "expected numbers"),
    "huge shape": ("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 784), }", "at most"),
    "short data": ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 784), }", "cut short"),
    "code": ("{'descr': __import__('os').system('true'), 'shape': (1,), }", "not a readable .npy"),
}


@pytest.mark.parametrize("shape", ZERO_SIZE, ids=str)
def test_zero_size_arrays_are_one_line(tmp_path, shape):
    path = tmp_path / "z.npy"
    np.save(path, np.zeros(shape, np.float32))
    (sample,) = load_samples([path])
    assert sample.pixels is None and "zero or negative dimension" in sample.problem


@pytest.mark.parametrize("name", BAD_HEADERS)
def test_malformed_npy_headers_are_one_line(tmp_path, name):
    header, fragment = BAD_HEADERS[name]
    path = tmp_path / "bad.npy"
    _npy(path, header, data=bytes(784 * 4))
    (sample,) = load_samples([path])
    assert sample.pixels is None and fragment in sample.problem and str(path) in sample.problem


def test_overflowing_values_are_a_problem_not_a_warning(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.full((28, 28), 1e300))  # float64: overflows float32
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (sample,) = load_samples([path])
    assert sample.pixels is None and sample.problem and not seen, [str(w.message) for w in seen]


# --------------------------------------------------------------------------- folders


def _nest(root: Path, depth: int) -> Path:
    """A folder chain ``depth`` deep, made without recursion (os.makedirs itself recurses)."""
    folder = root
    for _ in range(depth):
        folder = folder / "d"
        os.mkdir(folder)
    return folder


def _unnest(root: Path, depth: int) -> None:
    """Remove a ``_nest`` chain bottom-up: shutil.rmtree recurses, and pytest's clean-up of old temp
    folders would hit RecursionError on it in a later session."""
    chain = [root / ("d/" * n).rstrip("/") for n in range(depth, 0, -1)]
    for file in chain[0].iterdir():
        file.unlink()
    for folder in chain:
        os.rmdir(folder)


def test_a_folder_nested_1200_deep_is_one_line(tmp_path, served_root, cli):
    deep = tmp_path / "scans"
    deep.mkdir()
    (_nest(deep, 1200) / "x.npy").write_bytes(b"")
    try:
        with pytest.raises(InputError, match="nests folders more than"):
            list(load_samples([deep]))
        assert_user_error(cli("predict", str(deep), "--artifacts", str(served_root), "--dataset", DATASET), "nests")
    finally:
        _unnest(deep, 1200)
    assert not any(deep.iterdir())


def test_a_few_levels_deep_are_read(tmp_path):
    np.save(_nest(tmp_path, 5) / "x.npy", np.zeros((28, 28), np.float32))
    (sample,) = load_samples([tmp_path])
    assert sample.pixels is not None


# --------------------------------------------------------------------------- pictures


@pytest.fixture(scope="module")
def digit(sample_data) -> Image.Image:
    """A real test digit as a 140x140 dark-on-white picture (what a scan looks like)."""
    x = 255 - sample_data.test_x[0].numpy()
    return Image.fromarray(x).resize((140, 140), Image.Resampling.BICUBIC)


def _pixels(path: Path) -> np.ndarray:
    (sample,) = load_samples([path])
    assert sample.pixels is not None, sample.problem
    return sample.pixels


def _close(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_exif_orientation_is_applied(digit, tmp_path):
    """A phone stores the sensor's rows and a tag saying how to turn them: read as shown, not as stored."""
    digit.save(tmp_path / "upright.jpg", quality=95)
    stored = digit.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    stored.save(tmp_path / "tagged.jpg", quality=95, exif=exif.tobytes())
    stored.save(tmp_path / "untagged.jpg", quality=95)
    upright = _pixels(tmp_path / "upright.jpg")
    assert _close(_pixels(tmp_path / "tagged.jpg"), upright) > 0.95
    assert _close(_pixels(tmp_path / "untagged.jpg"), upright) < 0.8  # the test can tell a turned digit


def test_sixteen_bit_grey_ink_is_scaled_not_clipped(digit, tmp_path):
    eight = np.asarray(digit, dtype=np.float64)
    Image.fromarray((eight / 255 * 30_000 + 20_000).astype(np.uint16)).save(tmp_path / "grey16.png")
    digit.save(tmp_path / "eight.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    assert _close(_pixels(tmp_path / "grey16.png"), _pixels(tmp_path / "eight.png")) > 0.99


def test_mpo_phone_pictures_are_read_from_their_first_frame(digit, tmp_path):
    digit.save(tmp_path / "photo.mpo", format="MPO", save_all=True, append_images=[digit.rotate(90)])
    digit.save(tmp_path / "photo.png")
    assert Image.open(tmp_path / "photo.mpo").format == "MPO"
    assert _close(_pixels(tmp_path / "photo.mpo"), _pixels(tmp_path / "photo.png")) > 0.95


def _jpeg(image: Image.Image) -> bytearray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return bytearray(buffer.getvalue())


def _promise(data: bytearray, side: int) -> bytes:
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: _promise(_jpeg(d), 6000),  # the header promises 6000x6000, the data holds 140x140
        lambda d: _promise(_jpeg(d), 2000),
        lambda d: bytes(_jpeg(d))[: len(_jpeg(d)) // 2],  # cut in half
    ],
    ids=["6000-promised", "2000-promised", "cut"],
)
def test_jpegs_holding_less_than_they_declare_are_refused(digit, tmp_path, make):
    path = tmp_path / "short.jpg"
    path.write_bytes(make(digit))
    (sample,) = load_samples([path])
    assert sample.pixels is None and ("cut short" in sample.problem or "truncated" in sample.problem), sample.problem


def test_an_idx_file_of_zero_images_says_so(tmp_path, served_root, cli):
    path = tmp_path / "empty-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 0x803, 0, 28, 28))
    result = cli("predict", str(path), "--artifacts", str(served_root), "--dataset", DATASET)
    assert_user_error(result, "holding 0 images")


# --------------------------------------------------------------------------- what reaches the terminal


def test_control_characters_in_file_names_are_escaped(tmp_path, served_root, cli):
    """A newline or an escape sequence in a name is shown as \\n / \\x1b, in results and in problem lines."""
    np.save(tmp_path / "ok\x1b]0;owned\x07.npy", np.zeros((28, 28), np.float32))
    (tmp_path / "bad\nline\x1b[2J.png").write_text("not a picture")
    code, text = cli("predict", str(tmp_path), "--artifacts", str(served_root), "--dataset", DATASET)
    assert code != 0 and "\x1b" not in text and "\x07" not in text, repr(text)
    assert "ok\\x1b]0;owned\\x07.npy" in text and "bad\\nline\\x1b[2J.png" in text, text


def test_save_inputs_refusals_name_save_inputs(tmp_path, served_root, cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    np.save(tmp_path / "x.npy", np.zeros((28, 28), np.float32))
    result = cli("predict", str(tmp_path / "x.npy"), "--artifacts", str(served_root), "--dataset", DATASET,
                 "--save-inputs", str(blocker))  # fmt: skip
    assert_user_error(result, "--save-inputs")
    assert "--artifacts" not in result[1]


# --------------------------------------------------------------------------- JSON pixels (POST /predict)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(True, "true"), (False, "false"), ("7", "the string '7'"), ("nan", "the string 'nan'"), (None, "null"),
     ({}, "an object")],
    ids=["true", "false", "numeric string", "nan string", "null", "object"],
)  # fmt: skip
def test_pixels_must_be_json_numbers(value, fragment):
    for pixels in ([value] * 784, [[0.5] * 783 + [value]], [[[value] * 28] * 28]):
        with pytest.raises(PayloadError, match=fragment) as err:
            pixels_from_json(json.dumps({"pixels": pixels}).encode())
        assert err.value.status == 400


def test_numbers_still_pass():
    x = pixels_from_json(json.dumps({"pixels": [[0, 255] * 392]}).encode())
    assert x.shape == (1, 784) and x.max() == 1.0
