"""What `POST /predict` accepts, checked before a model sees it: every bad body is a 4xx with one line.

Pure functions of bytes, so they are tested without Ray, and the service's only job is routing.
"""

from __future__ import annotations

import io

import numpy as np

from fnnkit.predict.normalize import SIDE
from fnnkit.serve.jsonbody import BodyError, load_bounded

MAX_BODY = 8 * 2**20  # 8 MiB: a 2,000-sample JSON batch or a phone photo
MAX_SAMPLES = 4096  # per request; larger batches are the client's to split
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp")


class PayloadError(ValueError):
    """A request the service refuses: ``status`` is the HTTP code, the message its one-line reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def pixels_from_json(body: bytes) -> np.ndarray:
    """``{"pixels": ...}`` shaped [784], [28,28], [N,784] or [N,28,28] -> float32 [N, 784] in [0, 1]."""
    try:
        payload = load_bounded(body)  # depth, huge integers, NaN / Infinity refused before objects are built
    except BodyError as exc:
        raise PayloadError(f'{exc}; send {{"pixels": [[...784 numbers...]]}}') from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise PayloadError("JSON body needs a 'pixels' field: one sample [784] or [28,28], or a batch [N,784]")
    _only_numbers(payload["pixels"])
    try:
        with np.errstate(over="ignore"):  # 1e300 becomes inf here and is refused just below, by name
            x = np.asarray(payload["pixels"], dtype=np.float32)
    except OverflowError:  # an integer past float's range (up to 4,300 digits get this far)
        raise PayloadError(
            "'pixels' contains values too large for float32; send numbers in [0, 1] or [0, 255]"
        ) from None
    except (ValueError, TypeError):
        raise PayloadError("'pixels' must be a rectangular array of numbers (ragged or non-numeric found)") from None
    if x.ndim in (1, 2) and x.shape[-1] == SIDE * SIDE or x.ndim in (2, 3) and x.shape[-2:] == (SIDE, SIDE):
        x = x.reshape(-1, SIDE * SIDE)
    else:
        raise PayloadError(f"'pixels' is shaped {list(x.shape)}; expected [784], [28,28], [N,784] or [N,28,28]")
    if not 1 <= len(x) <= MAX_SAMPLES:
        raise PayloadError(f"'pixels' holds {len(x)} samples; send 1..{MAX_SAMPLES} per request", 413)
    if not np.isfinite(x).all():  # float32 overflow of huge numbers, e.g. 1e300
        raise PayloadError("'pixels' contains values too large for float32; send numbers in [0, 1] or [0, 255]")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise PayloadError(f"'pixels' values span [{low:g}, {high:g}]; expected [0, 1] or [0, 255]")
    return x / 255.0 if high > 1.0 else x


def _only_numbers(pixels: object) -> None:
    """Every leaf a JSON number, at most 3 lists deep: numpy would read ``true`` as 1 and ``"7"`` as 7, and
    ``null`` / ``"nan"`` must be named as what they are. Walked without recursion."""
    if _plainly_numbers(pixels):  # the common body: a type set per level, ~8x cheaper than the walk below
        return
    stack = [(pixels, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, list):
            if depth > 3:
                raise PayloadError(
                    "'pixels' nests deeper than [N,28,28]; expected [784], [28,28], [N,784] or [N,28,28]"
                )
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str):
                what = f"the string {value[:20]!r}"
            elif value is None or isinstance(value, bool):
                what = {None: "null", True: "true", False: "false"}[value]
            else:
                what = "an object" if isinstance(value, dict) else type(value).__name__
            raise PayloadError(f"'pixels' holds {what} (non-numeric); send JSON numbers in [0, 1] or [0, 255]")


def _plainly_numbers(pixels: object) -> bool:
    """True when every level is all lists or all ints/floats, at most 3 lists deep; False sends a body to the
    item-by-item walk, which names what is wrong. True only where that walk would find nothing (tested)."""
    if not isinstance(pixels, list):
        return type(pixels) in (int, float)
    level = [pixels]
    for _ in range(3):  # level holds the lists at depth 1, 2, 3
        kinds = set()
        for items in level:
            kinds.update(map(type, items))  # bool is its own type: refused like any other non-number
        if kinds <= {int, float}:
            return True
        if kinds != {list}:  # mixed levels, strings, null, true, objects: the walk decides
            return False
        level = [item for items in level for item in items]
    return False  # lists at depth 4: the walk names the nesting


def pixels_from_image(body: bytes) -> tuple[np.ndarray, tuple[str, ...]]:
    """An uploaded PNG/JPEG/BMP, normalised exactly as `fnnkit predict` does -> float32 [1, 784] and the steps."""
    from fnnkit.predict.inputs import InputError, load_image
    from fnnkit.predict.normalize import BlankImage

    try:
        sample = load_image(io.BytesIO(body), name="uploaded image")
    except (InputError, BlankImage) as exc:
        raise PayloadError(str(exc), 422 if isinstance(exc, BlankImage) else 400) from None
    return sample.pixels.reshape(1, SIDE * SIDE), sample.steps


def parse(body: bytes, content_type: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Dispatch on Content-Type: JSON pixels or an image upload."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in IMAGE_TYPES:
        return pixels_from_image(body)
    if kind in ("application/json", ""):
        return pixels_from_json(body), ()
    raise PayloadError(f"Content-Type {kind!r} is not served; send application/json or {', '.join(IMAGE_TYPES)}", 415)
