"""The CLI end to end, as a user types it: real processes, real exit codes."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from clitools import assert_user_error, cli_env, fnnkit_in_process, run_fnnkit

# What `fnnkit --help` must not load: torch, and the heavy optional packages each command imports when it runs
HEAVY_OPTIONAL = ("torch", "onnxruntime", "onnx", "openvino", "ray", "matplotlib", "tritonclient", "mlperf_loadgen",
                  "PIL")  # fmt: skip
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
def test_bad_flags_are_one_clear_line(args, fragments, cli):
    assert_user_error(cli(*args), *fragments)


@pytest.mark.slow  # a real fnnkit process that imports torch: ~1.9 s
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU; the no-GPU message cannot be shown")
def test_cuda_without_gpu_is_refused():
    assert_user_error(run_fnnkit("train", "--device", "cuda", "--variant", "A"), "no CUDA GPU is usable here")


def test_mnist_missing_offline_says_where_to_put_files(tmp_path, cli):
    result = cli("train", "--dataset", "mnist", "--no-download", "--data-dir", str(tmp_path))
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


def test_evaluate_without_training_says_how(tmp_path, cli):
    result = cli("evaluate", "--variant", "B", "--artifacts", str(tmp_path))
    assert_user_error(result, "fnnkit train --variant B")


# --------------------------------------------------------------------------- every numeric option, one helper

SCENARIO = ("bench", "load", "--scenario", "server", "--variant", "C", "--backend", "eager")
NUMERIC_FLAGS = [  # (command and what it needs to get as far as its options, flag, values that are valid here)
    (("predict", "digit.png"), "--top", ()),
    (("serve",), "--replicas", ()),
    (("serve",), "--max-batch", ()),
    (("serve",), "--batch-wait-ms", ("0",)),
    (("serve",), "--port", ()),
    (("serve",), "--num-cpus", ()),
    (("serve",), "--replica-cpus", ()),
    (("serve",), "--workers", ()),
    (("serve-load",), "--qps", ()),
    (("serve-load",), "--latency-bound-ms", ()),
    (("serve-load",), "--seconds", ()),
    (("serve-load",), "--connections", ()),
    (("serve-load",), "--batch", ()),
    (("bench", "coldstart"), "--repeats", ()),
    (("bench", "coldstart"), "--threads", ()),
    (("bench",), "--min-time", ()),
    (("bench",), "--threads", ()),
    (("bench",), "--accuracy-tolerance", ("0",)),
    (("export",), "--opset", ()),
    *((SCENARIO, flag, ()) for flag in ("--qps", "--latency-bound-ms", "--max-batch", "--workers")),
    *((SCENARIO, flag, ()) for flag in ("--min-duration-ms", "--min-query-count", "--time-cap-s", "--min-qps")),
    *((SCENARIO, flag, ()) for flag in ("--max-qps", "--peak-precision")),
    (SCENARIO, "--max-queue-delay-us", ("0",)),
    (SCENARIO, "--seed", ("0",)),
]
BAD_NUMBERS = ("nan", "inf", "-1", "0", str(10**30))


@pytest.mark.parametrize(
    "command, flag, value",
    [(command, flag, value) for command, flag, valid in NUMERIC_FLAGS for value in BAD_NUMBERS if value not in valid],
)
def test_bad_numbers_are_one_line_naming_the_flag(capsys, monkeypatch, tmp_path, command, flag, value):
    where = () if command[0] == "serve-load" else ("--artifacts", str(tmp_path))  # it talks to a URL, not files
    code, text = fnnkit_in_process(capsys, monkeypatch, *command, flag, value, *where)
    assert code == 2, text
    assert "Traceback" not in text and "Usage:" not in text, text
    assert len(text.strip().splitlines()) == 1 and flag in text and "must be" in text, text


BENCH_OWN = {  # each `fnnkit bench` subcommand's options that no other one has
    "latency": ("--batch-sizes", "--min-time", "--csv", "--compare", "--fail-threshold", "--accuracy-tolerance",
                "--in-process", "--wait-policy"),
    "load": ("--scenario", "--qps", "--latency-bound-ms", "--find-peak", "--max-batch", "--max-queue-delay-us",
             "--min-duration-ms", "--min-query-count", "--time-cap-s", "--peak-precision", "--confirm-runs"),
    "coldstart": ("--repeats",),
}  # fmt: skip


@pytest.mark.parametrize("command", list(BENCH_OWN))
def test_each_bench_subcommand_shows_and_takes_only_its_own_options(capsys, monkeypatch, tmp_path, command):
    """`fnnkit bench X --help` lists X's options and none of the others'; another's option is refused by name."""
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", command, "--help")
    assert code == 0, text
    shown = set(re.findall(r"--[a-z][a-z-]+", text))
    others = {flag for name, flags in BENCH_OWN.items() if name != command for flag in flags}
    assert set(BENCH_OWN[command]) <= shown and not shown & others, (shown & others, text)
    stranger = sorted(others)[0]
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", command, stranger, "1", "--artifacts", str(tmp_path))
    assert code == 2 and "No such option" in text and stranger in text and "Traceback" not in text, text


@pytest.mark.parametrize(
    "old, new",
    [(("coldstart", "--variant", "A"), "fnnkit bench coldstart"), (("bench", "--scenario", "server"), "bench load")],
)
def test_old_spellings_are_one_line_naming_the_new_command(capsys, monkeypatch, old, new):
    code, text = fnnkit_in_process(capsys, monkeypatch, *old)
    assert code == 2 and len(text.strip().splitlines()) == 1 and "moved" in text and new in text, text


def test_bare_bench_is_the_latency_run(capsys, monkeypatch):
    """`fnnkit bench [options]` is `fnnkit bench latency [options]`: the README's command stays as it is."""
    bare = fnnkit_in_process(capsys, monkeypatch, "bench", "--threads", "0")
    named = fnnkit_in_process(capsys, monkeypatch, "bench", "latency", "--threads", "0")
    assert bare == named and bare[0] == 2 and "--threads must be" in bare[1], bare


@pytest.mark.parametrize("command", [("train",), ("evaluate",), ("export",), ("bench",), ("predict", "digit.png")])
def test_one_device_vocabulary(capsys, monkeypatch, tmp_path, command):
    code, text = fnnkit_in_process(capsys, monkeypatch, *command, "--device", "tpu", "--artifacts", str(tmp_path))
    assert code == 2 and "unknown device 'tpu'" in text and "auto, cpu, cuda" in text, text


@pytest.mark.parametrize(
    "command, default",
    [("train", "auto"), ("evaluate", "auto"), ("export", "cpu"), ("bench latency", "all"), ("bench load", "all"),
     ("predict", "cpu")],
)  # fmt: skip
def test_device_help_says_each_default_and_why(capsys, monkeypatch, command, default):
    code, text = fnnkit_in_process(capsys, monkeypatch, *command.split(), "--help")
    assert code == 0 and f"default: {default}:" in re.sub(r"[│\s]+", " ", text), text
