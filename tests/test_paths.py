"""Paths become absolute once, where they enter (fnnkit.paths), and nothing below sees a relative one.

The class, not one example: every command run from a project folder with the default relative
``artifacts``, from a subfolder with ``../`` paths, and with the artifacts root behind a symlink;
bench workers and cold-start probes run in private folders, so a relative path reaching them fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from artifactkit import DATASET, copy_variants
from clitools import assert_user_error

from fnnkit.bench import BenchConfig
from fnnkit.bench.job import Job
from fnnkit.errors import ConfigError
from fnnkit.paths import require_absolute, user_path
from fnnkit.store import find_variant_dir, trained_datasets, variant_dir

# --------------------------------------------------------------------------- the boundary function


def test_user_path_makes_relative_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert user_path("artifacts", "--artifacts") == tmp_path / "artifacts"
    assert user_path("sub/../out.json", "--json") == tmp_path / "out.json"
    assert user_path(".", "--artifacts", folder=True) == tmp_path
    assert user_path("sub/..", "--artifacts", folder=True) == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_path("~/data", "--data-dir") == tmp_path / "home" / "data"


def test_user_path_resolves_symlinked_folders_but_keeps_the_last_name(tmp_path, monkeypatch):
    """``..`` after a symlinked folder means the kernel's parent, and a symlink the user named is kept,
    so the readers that refuse symlinks still see it."""
    real = tmp_path / "real" / "deep"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    assert user_path("link/../x.json", "--json") == tmp_path / "real" / "x.json"
    assert user_path("link", "--artifacts", folder=True) == tmp_path / "link"


@pytest.mark.parametrize(
    "value, folder, fragment",
    [
        ("", False, "--flag is empty"),
        ("   ", False, "--flag is empty"),
        ("a\0b", False, "NUL byte"),
        ("file.txt", True, "is not a folder"),
    ],
)
def test_user_path_refuses_what_is_no_path(value, folder, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match=fragment):
        user_path(value, "--flag", folder=folder)


# --------------------------------------------------------------------------- the guards below it


JOB = dict(
    backend="eager", device="cpu", batch_threads=((1, 1),), min_time_s=0.1, max_time_s=0.4, warmup_rounds=1,
    warmup_s=0.01, stability=0.03, spread_limit=0.25, contention_limit=0.25,
)  # fmt: skip


@pytest.mark.parametrize(
    "call",
    [
        lambda: variant_dir("artifacts", DATASET, "A"),
        lambda: find_variant_dir("artifacts", "A"),
        lambda: trained_datasets("artifacts"),
        lambda: Job(variant_dir="artifacts/mnist/A", **JOB),
        lambda: Job(variant_dir="/abs/mnist/A", data_dir="data", **JOB),
    ],
    ids=["variant_dir", "find_variant_dir", "trained_datasets", "job-folder", "job-data-dir"],
)
def test_a_relative_path_below_the_boundary_fails_loudly(call):
    with pytest.raises(ValueError, match="is relative"):
        call()
    assert require_absolute("/x", "root") == Path("/x")


def test_python_callers_get_absolute_paths_too(tmp_path, monkeypatch):
    """BenchConfig and fnnkit.load are the Python callers' boundary: relative paths become absolute there."""
    monkeypatch.chdir(tmp_path)
    config = BenchConfig(variants=("A",), backends=("eager",), artifacts="artifacts", data_dir="data")
    assert config.artifacts == str(tmp_path / "artifacts") and config.data_dir == str(tmp_path / "data")


def test_every_path_option_goes_through_the_boundary():
    """Each command's path parameters are parsed by fnnkit.cli.options (a new one that is not fails here)."""
    import inspect

    import typer

    from fnnkit.cli import app

    group = typer.main.get_group(app)
    commands = {name: cmd for name, cmd in group.commands.items() if not hasattr(cmd, "commands")}
    for sub in ("data", "bench"):
        commands |= {f"{sub} {n}": c for n, c in group.commands[sub].commands.items()}
    assert {"bench latency", "bench load", "bench coldstart"} <= set(commands)
    unchecked = []
    for name, command in commands.items():
        signature = inspect.signature(command.callback)
        for param in command.params:
            annotation = str(signature.parameters[param.name].annotation)
            if "Path" in annotation and param.callback is None:
                unchecked.append(f"{name} {param.opts[0]}")
    assert unchecked == [], f"path options not made absolute at the boundary: {unchecked}"


def test_bad_path_flags_are_one_line(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    assert_user_error(cli("info", "--artifacts", ""), "--artifacts is empty")
    assert_user_error(cli("info", "--artifacts", "file.txt"), "is not a folder")
    monkeypatch.setenv("FNNKIT_ARTIFACTS", "file.txt")
    assert_user_error(cli("info"), "--artifacts", "is not a folder")


# --------------------------------------------------------------------------- every command, three layouts

LAYOUTS = ("root", "subfolder", "symlink")


@pytest.fixture(params=LAYOUTS)
def project(request, exported_root, tmp_path, monkeypatch):
    """A project folder holding ``artifacts`` (A and C, exported), the working directory per layout:
    root: cwd = project, default paths; subfolder: cwd = project/work, ``../`` paths; symlink: cwd =
    project, ``artifacts`` a symlink to a folder elsewhere. Returns (flags to add, the real artifacts root)."""
    root = tmp_path / "project"
    root.mkdir()
    real = tmp_path / "elsewhere" / "artifacts" if request.param == "symlink" else root / "artifacts"
    copy_variants(exported_root, real, "A", "C")
    if request.param == "symlink":
        (root / "artifacts").symlink_to(real)
    if request.param == "subfolder":
        (root / "work").mkdir()
        monkeypatch.chdir(root / "work")
        return ["--artifacts", "../artifacts"], "../", real
    monkeypatch.chdir(root)
    return [], "", real


@pytest.mark.slow  # bench worker processes, cold-start probes and two exports per layout: ~15 s each
def test_every_command_works_with_relative_paths(project, cli, digits_png):
    flags, up, real = project
    os.link(digits_png, "seven.png") if not up else None
    picture = f"{up}seven.png" if not up else str(digits_png)
    ok = lambda *args: _ok(cli(*args))  # noqa: E731
    ok("info", *flags)
    ok("verify", f"{up}artifacts/{DATASET}/C")
    ok("evaluate", "--variant", "C", "--backend", "onnxruntime", *flags)
    ok("export", "--format", "onnx", "--variant", "A", "--force", *flags)
    ok("export", "--format", "triton", "--variant", "C", "--out", f"{up}triton_repo", *flags)
    assert list(Path(f"{up}triton_repo").glob("fnnkit_*_C*/config.pbtxt"))
    ok("predict", picture, "--save-inputs", f"{up}seen", *flags)
    assert list(Path(f"{up}seen").glob("*.png"))
    text = ok("bench", "--variant", "A", "--backend", "eager,onnxruntime", "--batch-sizes", "1", "--min-time",
              "0.02", "--device", "cpu", "--json", f"{up}run.json", "--csv", f"{up}run.csv", *flags)  # fmt: skip
    assert "onnxruntime" in text and Path(f"{up}run.json").is_file() and Path(f"{up}run.csv").is_file()
    ok(
        "bench",
        "coldstart",
        "--variant",
        "A",
        "--backend",
        "onnxruntime",
        "--repeats",
        "1",
        "--json",
        f"{up}cold.json",
        *flags,
    )
    ok("train", "--variant", "B", "--dataset", "mnist-sample", "--iters", "20", "--eval-every", "10", *flags)
    assert (real / DATASET / "B" / "model.json").is_file()  # written where the (linked) root really is


def _ok(result: tuple[int, str]) -> str:
    code, text = result
    assert code == 0 and "Traceback" not in text, text
    return text


@pytest.fixture
def digits_png(tmp_path_factory) -> Path:
    """One real test digit as a PNG (what `fnnkit predict` reads)."""
    import numpy as np
    from PIL import Image

    from fnnkit.data import load_dataset

    path = tmp_path_factory.mktemp("digits") / "seven.png"
    Image.fromarray(255 - np.asarray(load_dataset("mnist-sample").test_x[0])).save(path)
    return path
