"""The CLI end to end, as a user types it: real processes, real exit codes."""

import json
import os
import subprocess
import sys

import pytest
import torch
from clitools import assert_user_error, cli_env, run_fnnkit

# What `fnnkit --help` must not load: the heavy optional packages each command imports when it runs
HEAVY_OPTIONAL = ("onnxruntime", "onnx", "openvino", "ray", "matplotlib", "torch._inductor", "tritonclient",
                  "mlperf_loadgen", "PIL")  # fmt: skip
_HELP_AND_MODULES = """
import json, sys
from fnnkit.cli import main
sys.argv = ["fnnkit", "--help"]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def test_help_is_fast_and_lists_commands():
    """Fast by construction, not by a wall clock: a fresh process lists the commands and has imported
    none of the heavy optional packages (the entry point `python -m fnnkit` calls, then sys.modules)."""
    script = f"HEAVY = {HEAVY_OPTIONAL!r}\n" + _HELP_AND_MODULES
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=cli_env(), timeout=120)
    *help_lines, last = child.stdout.strip().splitlines() or [""]
    assert json.loads(last) == {"code": 0, "loaded": []}, child.stdout[-2000:] + child.stderr[-2000:]
    for command in ("train", "evaluate", "info"):
        assert command in "\n".join(help_lines)


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "fnnkit")
    assert subprocess.run([script, "--help"], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--variant", "Z"], ["unknown variant 'Z'", "A, B, C, D, E"]),
        (["train", "--dataset", "cifar"], ["unknown dataset 'cifar'", "mnist-sample"]),
        (["train", "--device", "tpu"], ["unknown device 'tpu'", "auto, cpu, cuda"]),
        (["train", "--iters", "0", "--dataset", "mnist-sample"], ["--iters must be a positive integer"]),
    ],
)
def test_bad_flags_are_one_clear_line(args, fragments):
    assert_user_error(run_fnnkit(*args), *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU; the no-GPU message cannot be shown")
def test_cuda_without_gpu_is_refused():
    assert_user_error(run_fnnkit("train", "--device", "cuda", "--variant", "A"), "no CUDA GPU is usable here")


def test_mnist_missing_offline_says_where_to_put_files(tmp_path):
    result = run_fnnkit("train", "--dataset", "mnist", "--no-download", "--data-dir", str(tmp_path))
    assert_user_error(result, "train-images-idx3-ubyte", "mnist-sample")


@pytest.mark.slow  # three fresh fnnkit processes, one of them training: ~10 s
def test_train_evaluate_info_end_to_end(tmp_path):
    root = tmp_path / "artifacts"
    result = run_fnnkit(
        "train",
        "--variant",
        "A,E",
        "--dataset",
        "mnist-sample",
        "--iters",
        "200",
        "--eval-every",
        "100",
        "--artifacts",
        str(root),
    )
    assert result.returncode == 0, result.stderr
    assert "Training results" in result.stdout and "mnist-sample" in result.stdout
    for variant in ("A", "E"):
        assert (root / "mnist-sample" / variant / "model.safetensors").stat().st_size > 300_000
    assert not (root / "mnist-sample" / "C").exists()
    curves = root / "mnist-sample" / "training_curves.png"
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    recorded = json.loads((root / "mnist-sample" / "E" / "model.json").read_text())["test_accuracy"]
    evaluated = run_fnnkit("evaluate", "--variant", "E", "--artifacts", str(root), "--device", "cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.count(f"{recorded:.2f}") >= 2  # recorded and re-measured columns agree

    info = run_fnnkit("info", "--artifacts", str(root))
    assert info.returncode == 0, info.stderr
    assert "torch" in info.stdout and "mnist-sample" in info.stdout


def test_evaluate_without_training_says_how(tmp_path):
    result = run_fnnkit("evaluate", "--variant", "B", "--artifacts", str(tmp_path))
    assert_user_error(result, "fnnkit train --variant B")
