"""Crash safety: kill -9 while saving (train and export) and a full disk while saving (RLIMIT_FSIZE):
the previous artifacts stay byte-identical, no temp file survives the next operation, and the
folder still passes ``fnnkit verify``.

tests/test_artifacts.py kills a bare ``atomic_write`` and tests/test_export.py kills an ONNX
export at its parity check; here the kills land inside the real writes of ``train_and_save``
(the weights) and of a TorchScript export (the file itself), and the full disk hits every format.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fnnkit.export import export_variant, load_exported
from fnnkit.verify import verify

from .helpers import REPO, child_env, kill_9, last_json, problems, run_python, snapshot, temp_files, wait_for

STALL_IN_WRITE = """
    import pathlib, sys, time
    marker, prefix = pathlib.Path(sys.argv[1]), sys.argv[2]
    real = pathlib.Path.write_bytes

    def half_then_stall(self, data):  # the real staged file, half written, then the kill
        if not (self.name == prefix and ".stage-" in self.parent.name):
            return real(self, data)
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
        marker.touch()
        time.sleep(600)

    pathlib.Path.write_bytes = half_then_stall
"""


def kill_while_writing(code: str, folder: Path, tmp_path: Path, prefix: str) -> list[str]:
    """Run ``code`` in a child that stalls half-way through writing file ``prefix`` in its staging folder;
    kill -9 it there; return the staging folders left beside ``folder``. The child gets argv: marker, prefix,
    folder."""
    marker = tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(STALL_IN_WRITE) + textwrap.dedent(code),
                              str(marker), prefix, str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=child_env(), cwd=REPO)  # fmt: skip
    wait_for(marker.exists, child)
    kill_9(child)
    return stages(folder)


def stages(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if ".stage-" in p.name)


@pytest.mark.slow  # a child killed with -9 mid-save: ~1.4 s
def test_kill_9_while_train_saves_keeps_the_previous_model(variant, tmp_path):
    before = snapshot(variant)
    left = kill_while_writing(
        """
        from fnnkit.data import load_dataset
        from fnnkit.train import TrainConfig, train_and_save
        from fnnkit.variants import get_spec
        root = pathlib.Path(sys.argv[3]).parent.parent
        config = TrainConfig(iterations=30, eval_every=30, seed=7)
        train_and_save(get_spec("C"), load_dataset("mnist-sample"), root, config, replace_worse=True)  # 30 steps
        """,
        variant, tmp_path, "model.safetensors",
    )  # fmt: skip
    assert len(left) == 1 and left[0].startswith(".C.stage-"), left
    assert snapshot(variant) == before
    export_variant(variant, "onnx")  # the next operation: takes the dead writer's lock, sweeps, reuses
    assert stages(variant) == [] and temp_files(variant) == [] and snapshot(variant) == before
    assert problems(verify(variant)) == []


@pytest.mark.slow  # a child killed with -9 mid-export: ~1.5 s
def test_kill_9_while_export_saves_keeps_the_previous_file(variant, tmp_path):
    before = snapshot(variant)
    left = kill_while_writing(
        """
        from fnnkit.export import export_variant
        export_variant(sys.argv[3], "torchscript", force=True)
        """,
        variant, tmp_path, "model.torchscript.pt",
    )  # fmt: skip
    assert len(left) == 1 and left[0].startswith(".C.stage-"), left
    assert snapshot(variant) == before
    load_exported(variant, "torchscript")  # the old file still loads, the staging folder never mattered
    export_variant(variant, "onnx")  # the next write takes the lock and sweeps the dead writer's stage
    assert stages(variant) == [] and temp_files(variant) == [] and snapshot(variant) == before
    assert problems(verify(variant)) == []


@pytest.mark.slow  # a child that trains and tries every export, the compiler included: ~10 s
def test_disk_full_while_saving_is_a_clear_error_and_changes_nothing(variant):
    """RLIMIT_FSIZE (64 KiB) in a child: training's weights and every export format fail to save."""
    before = snapshot(variant)
    result = run_python(
        """
        import json, resource, signal, sys
        from pathlib import Path
        import onnx, onnxscript, safetensors.torch, torch.onnx  # imported before the limit
        from fnnkit.data import load_dataset
        from fnnkit.errors import FnnkitError
        from fnnkit.export import export_variant
        from fnnkit.train import TrainConfig, train_and_save
        from fnnkit.variants import get_spec
        folder = Path(sys.argv[1])
        data = load_dataset("mnist-sample")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed by the signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
        saves = {
            "train": lambda: train_and_save(get_spec("C"), data, folder.parent.parent,
                                            TrainConfig(iterations=30, eval_every=30, seed=7), replace_worse=True),
            **{fmt: (lambda fmt=fmt: export_variant(folder, fmt, force=True))
               for fmt in ("onnx", "torchscript", "compiled")},
        }
        out = {}
        for name, save in saves.items():
            try:
                save()
                out[name] = "SAVED"
            except FnnkitError as exc:
                out[name] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
        """,
        str(variant),
    )
    out = last_json(result)  # a child killed by SIGABRT/SIGXFSZ fails here
    for name in ("train", "onnx", "torchscript"):
        assert out[name].startswith("ArtifactError: could not write") and "nothing was changed" in out[name], out
    assert out["compiled"].startswith("ExportError"), out  # the compiler itself cannot write
    assert stages(variant) == [] and temp_files(variant) == [] and snapshot(variant) == before
    assert problems(verify(variant)) == []
