import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import fnnkit
from fnnkit.errors import ArtifactError, IntegrityError
from fnnkit.store import (
    MODEL_CARD,
    WEIGHTS_FILE,
    atomic_write,
    atomic_write_bytes,
    load_trained,
    sweep_stale_temps,
)
from fnnkit.train import TrainConfig, train_and_save
from fnnkit.variants import VARIANTS


@pytest.fixture
def variant_copy(trained_root, tmp_path):
    """A private copy of trained variant C, free to damage."""
    folder = tmp_path / "mnist-sample" / "C"
    shutil.copytree(trained_root / "mnist-sample" / "C", folder)
    return folder


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def test_public_load_returns_verified_module(trained_root):
    model = fnnkit.load("C", artifacts=str(trained_root))
    assert isinstance(model, torch.nn.Module) and not model.training
    same = fnnkit.load(str(trained_root / "mnist-sample" / "C"))
    x = torch.rand(4, 784)
    assert torch.equal(model(x), same(x))


def test_card_records_what_the_issue_lists(trained_root):
    card = json.loads((trained_root / "mnist-sample" / "E" / MODEL_CARD).read_text())
    for field in (
        "variant",
        "dataset",
        "preprocessing",
        "hyperparameters",
        "history",
        "test_accuracy",
        "seed",
        "versions",
        "weights",
    ):
        assert field in card, field
    assert card["dataset"]["name"] == "mnist-sample" and card["parameters"] == 99_710
    assert card["hyperparameters"]["learning_rate"] == 0.1 and card["hyperparameters"]["batch_size"] == 100
    assert len(card["weights"]["sha256"]) == 64


def test_tampered_weights_are_refused(variant_copy):
    weights = variant_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one bit of one float
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.safetensors.*changed or damaged"):
        load_trained(variant_copy)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="fnnkit train --variant C"):
        fnnkit.load("C", artifacts=str(tmp_path))


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"schema": "fnnkit.model/1"}', "lacks field"),
    ],
)
def test_bad_model_card(variant_copy, content, match):
    (variant_copy / MODEL_CARD).write_text(content)
    with pytest.raises(ArtifactError, match=match):
        load_trained(variant_copy)


def test_card_from_other_schema_is_refused(variant_copy):
    card = json.loads((variant_copy / MODEL_CARD).read_text())
    card["schema"] = "fnnkit.model/99"
    (variant_copy / MODEL_CARD).write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="schema"):
        load_trained(variant_copy)


def test_failed_write_keeps_previous_file_and_no_temp(tmp_path):
    target = atomic_write_bytes(tmp_path / "f.bin", b"good")

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"good" and temp_files(tmp_path) == []


def test_unwritable_artifacts_root_is_clear(tmp_path, sample_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ArtifactError, match="cannot create artifacts folder"):
        train_and_save(VARIANTS["A"], sample_data, blocker / "artifacts", TrainConfig(iterations=1))


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_kill_9_while_saving_keeps_previous_artifact(tmp_path):
    target = atomic_write_bytes(tmp_path / "model.safetensors", b"previous good bytes")
    child = _child(f"""
        import time
        from pathlib import Path
        from fnnkit.store import atomic_write
        def slow(temp):
            with open(temp, "wb") as f:
                f.write(b"half of the new file")
                f.flush()
                time.sleep(60)
        atomic_write(Path({str(target)!r}), slow)
    """)
    assert _wait_for(lambda: temp_files(tmp_path)), child.stderr.read() if child.poll() is not None else "no temp"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert target.read_bytes() == b"previous good bytes"
    assert len(sweep_stale_temps(tmp_path)) == 1 and temp_files(tmp_path) == []


def test_disk_full_while_saving_keeps_previous_artifact(tmp_path):
    target = atomic_write_bytes(tmp_path / "model.safetensors", b"previous good bytes")
    child = _child(f"""
        import resource, signal, sys
        from pathlib import Path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        from fnnkit.store import atomic_write_bytes
        from fnnkit.errors import ArtifactError
        try:
            atomic_write_bytes(Path({str(target)!r}), b"x" * 100_000)
        except ArtifactError as exc:
            print(exc)
            sys.exit(3)
    """)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert b"could not write" in out and b"nothing was changed" in out
    assert target.read_bytes() == b"previous good bytes" and temp_files(tmp_path) == []


@pytest.mark.slow  # a fresh process interrupted while training: ~6 s
def test_ctrl_c_during_training_keeps_previous_artifact(variant_copy):
    root = variant_copy.parent.parent
    before = {p.name: p.read_bytes() for p in variant_copy.iterdir() if p.is_file()}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fnnkit",
            "train",
            "--variant",
            "C",
            "--dataset",
            "mnist-sample",
            "--iters",
            "1000000",
            "--artifacts",
            str(root),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    time.sleep(6)  # imports, data, then well inside the training loop
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err.decode()
    assert b"interrupted by SIGINT" in err and b"Traceback" not in err
    after = {p.name: p.read_bytes() for p in variant_copy.iterdir() if p.is_file()}
    assert after == before and temp_files(variant_copy) == []
