"""Concurrent writers: two processes training (and two exporting) into the same folder at once end with one
complete version: every record matches its file, ``fnnkit verify`` passes, it loads.

Both children import everything first and wait at a barrier, so their work really overlaps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fnnkit.export import load_exported
from fnnkit.store import MODEL_CARD, load_trained, sha256_file
from fnnkit.train import TrainConfig, fit
from fnnkit.variants import get_spec
from fnnkit.verify import verify

from .helpers import REPO, child_env, problems

BARRIER = """
import pathlib, sys, time
ready, go, target, tag = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4]
{prepare}
ready.touch()
while not go.exists():
    time.sleep(0.005)
{work}
"""


def race(prepare: str, work: str, target: Path, tags: tuple[str, str], tmp_path: Path) -> None:
    """Start one child per tag, release them together, require both to succeed."""
    code = BARRIER.format(prepare=textwrap.dedent(prepare), work=textwrap.dedent(work))
    go = tmp_path / "go"
    children = []
    for tag in tags:
        ready = tmp_path / f"ready-{tag}"
        args = [sys.executable, "-c", code, str(ready), str(go), str(target), tag]
        children.append((ready, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                 env=child_env(), cwd=REPO)))  # fmt: skip
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _ in children):
        assert time.monotonic() < deadline and all(c.poll() is None for _, c in children), "a child never got ready"
        time.sleep(0.02)
    go.touch()
    for _, child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-4000:]


@pytest.mark.slow  # two children that import torch and race: ~5 s
def test_two_trainings_into_one_folder_leave_one_verified_version(tmp_path, sample_data):
    root = tmp_path / "artifacts"
    race(
        """
        from fnnkit.data import load_dataset
        from fnnkit.train import TrainConfig, train_and_save
        from fnnkit.variants import get_spec
        data = load_dataset("mnist-sample")
        """,
        """
        train_and_save(get_spec("C"), data, target, TrainConfig(iterations=60, eval_every=60, seed=int(tag)))
        """,
        root, ("1", "2"), tmp_path,
    )  # fmt: skip
    folder = root / "mnist-sample" / "C"
    assert problems(verify(folder)) == []
    model, card = load_trained(folder)
    assert card["seed"] in (1, 2)

    expected, _ = fit(get_spec("C"), sample_data, TrainConfig(iterations=60, eval_every=60, seed=card["seed"]))
    for name, tensor in expected.state_dict().items():  # the card's run and the weights' run are the same run
        assert torch.equal(model.state_dict()[name], tensor), name


@pytest.mark.slow  # two children that import torch and race: ~20 s
def test_two_exports_into_one_folder_leave_one_verified_version(variant, tmp_path):
    race(
        """
        from fnnkit.export import export_variant
        """,
        """
        export_variant(target, "onnx,torchscript", force=True)
        """,
        variant, ("a", "b"), tmp_path,
    )  # fmt: skip
    assert problems(verify(variant)) == []
    manifest = json.loads((variant / "export.json").read_text())
    for key in ("onnx", "torchscript"):
        assert manifest["formats"][key]["sha256"] == sha256_file(variant / manifest["formats"][key]["file"])
    card = json.loads((variant / MODEL_CARD).read_text())
    assert {e["source_sha256"] for e in manifest["formats"].values()} == {card["weights"]["sha256"]}

    x = torch.rand(3, 784).numpy()
    onnx, script = (load_exported(variant, fmt).predict(x) for fmt in ("onnx", "torchscript"))
    assert np.allclose(onnx, script, atol=1e-4)
