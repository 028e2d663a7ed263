"""MNIST's own normalisation for real pictures: what LeCun et al. did to NIST scans, done to yours.

Photos and scans are dark ink on light paper, any size, anywhere in the frame; the models were
trained on light ink on black, the digit's longer side 20 px, its centre of mass at the centre
of a 28x28 frame. ``to_mnist`` maps one onto the other and says, step by step, what it did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDE = 28  # the frame the models read
BOX = 20  # MNIST's digits fit a 20x20 box, aspect ratio kept
CENTRE = 14.0  # MNIST's mean centre of mass (row, col), measured on its test set
MIN_SIDE = 8  # a smaller picture cannot hold a legible digit
MIN_CONTRAST = 0.15  # ink must differ from the paper by this much of full scale, or the page is blank
INK = 0.25  # of the ink's peak: what counts as ink when finding its bounding box
NOISE = 0.10  # below this (after background removal) is paper grain / JPEG ringing, set to 0


class BlankImage(ValueError):
    """The picture holds no digit: too small, uniform, or no ink stands out from the paper."""


@dataclass(frozen=True)
class Normalized:
    pixels: np.ndarray  # float32 [28, 28] in [0, 1], light ink on black, as the models were trained
    steps: tuple[str, ...]  # what was done, in order, for --explain


def to_mnist(gray: np.ndarray) -> Normalized:
    """A grayscale picture (float, 0 = black, 1 = white, any size) -> the 28x28 the model reads."""
    height, width = gray.shape
    if min(height, width) < MIN_SIDE:
        raise BlankImage(f"{width}x{height} px is too small to hold a digit (need at least {MIN_SIDE}x{MIN_SIDE})")
    steps = [f"grayscale {width}x{height}"]
    x = gray.astype(np.float32)
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    if np.median(border) > 0.5:  # light paper: MNIST digits are light ink on black
        x = 1.0 - x
        border = 1.0 - border
        steps.append(f"inverted (light background, border median {1 - np.median(border):.2f})")
    paper = float(np.median(border))
    contrast = float(x.max()) - paper
    if contrast < MIN_CONTRAST:
        raise BlankImage(f"blank page: the darkest ink differs from the paper by {contrast:.2f} (need {MIN_CONTRAST})")
    x = np.clip((x - paper) / contrast, 0.0, 1.0)
    x[x < NOISE] = 0.0
    if paper > 0.02:
        steps.append(f"background {paper:.2f} removed, contrast stretched x{1 / contrast:.2f}")
    rows, cols = np.nonzero(x >= INK)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    x = x[top:bottom, left:right]
    steps.append(f"cropped to the ink's box {right - left}x{bottom - top} at ({left},{top})")
    patch, note = _fit_box(x)
    steps.append(note)
    frame, com = _centre(patch)
    steps.append(f"pasted into {SIDE}x{SIDE} with its centre of mass at ({com[1]:.1f},{com[0]:.1f}) (x,y)")
    return Normalized(frame, tuple(steps))


def _fit_box(x: np.ndarray) -> tuple[np.ndarray, str]:
    """Longer side -> 20 px, aspect ratio kept, anti-aliased (Lanczos; box-filtered first when shrinking a lot)."""
    from PIL import Image

    height, width = x.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(x.astype(np.float32), mode="F")
    patch = np.asarray(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float32)
    patch = np.clip(patch, 0.0, 1.0)  # Lanczos rings slightly below 0 and above 1
    peak = float(patch.max())
    if peak > 0:
        patch = patch / peak  # thin strokes lose intensity when shrunk; MNIST strokes peak at full scale
    return patch, f"scaled {width}x{height} -> {size[0]}x{size[1]} (longer side {BOX} px, Lanczos)"


def _centre(patch: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Paste ``patch`` into a 28x28 frame so its centre of mass lands on MNIST's, staying inside the frame."""
    height, width = patch.shape
    rows, cols = np.mgrid[:height, :width]
    mass = float(patch.sum())
    com_row, com_col = float((rows * patch).sum() / mass), float((cols * patch).sum() / mass)
    top = int(np.clip(round(CENTRE - com_row), 0, SIDE - height))
    left = int(np.clip(round(CENTRE - com_col), 0, SIDE - width))
    frame = np.zeros((SIDE, SIDE), dtype=np.float32)
    frame[top : top + height, left : left + width] = patch
    return frame, (top + com_row, left + com_col)
