"""A Triton model repository fnnkit wrote, then tampered with: `fnnkit verify` names every change Triton would
act on, reads nothing unbounded, and the next export repairs what a killed one left.

Triton serves the newest version folder, loads the file ``default_model_filename`` names, dlopens
``model_operations.op_library_filename`` and names answers from ``labels.txt`` in file order, so
each member of these classes would change what a server answers or runs.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from artifactkit import DATASET
from clitools import assert_user_error

from fnnkit.export.triton import TritonSettings, write_repository
from fnnkit.verify import verify

from .helpers import child_env, run_python

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="Triton's schema: pip install 'fnnkit[triton]'")

FP32, INT8 = f"fnnkit_{DATASET}_C", f"fnnkit_{DATASET}_C_int8"


@pytest.fixture(scope="module")
def pristine(served_root, tmp_path_factory) -> Path:
    """One repository written by fnnkit (from the session's verified exports), copied by every test."""
    out = tmp_path_factory.mktemp("triton") / "repo"
    write_repository(served_root / DATASET / "C", out, TritonSettings())
    return out


@pytest.fixture
def repo(pristine, tmp_path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def problems(root: Path) -> list[tuple[Path, str]]:
    return [(c.file, c.problem) for c in verify(root) if not c.ok]


def test_the_untouched_repository_passes(repo):
    assert problems(repo) == []


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _extra_version(repo: Path) -> None:
    (repo / FP32 / "2").mkdir()
    shutil.copy(repo / INT8 / "1" / "model.onnx", repo / FP32 / "2" / "model.onnx")  # other weights, valid ONNX


TAMPERING = {  # name -> (change, the path a problem must name, a fragment of that problem)
    "extra version 2/": (_extra_version, f"{FP32}/2", "serves the newest version"),
    "garbage version 3/": (
        lambda r: (r / FP32 / "3").mkdir() or (r / FP32 / "3" / "model.onnx").write_bytes(b"\x00junk"),
        f"{FP32}/3", "version folder",
    ),
    "1/ renamed 7/": (lambda r: (r / FP32 / "1").rename(r / FP32 / "7"), f"{FP32}/7", "version folder"),
    "no 1/": (lambda r: shutil.rmtree(r / FP32 / "1"), f"{FP32}/1", "missing"),
    "default_model_filename": (
        lambda r: _append(r / FP32 / "config.pbtxt", 'default_model_filename: "evil.onnx"\n'),
        f"{FP32}/config.pbtxt", "default_model_filename",
    ),
    "op library": (
        lambda r: _append(r / INT8 / "config.pbtxt", 'model_operations { op_library_filename: "/tmp/evil.so" }\n'),
        f"{INT8}/config.pbtxt", "model_operations",
    ),
    "platform beside backend": (
        lambda r: _append(r / FP32 / "config.pbtxt", 'platform: "onnxruntime_onnx"\n'),
        f"{FP32}/config.pbtxt", "platform",
    ),
    "another parameter": (
        lambda r: _append(r / FP32 / "config.pbtxt", 'parameters { key: "intra_op_thread_count", value: '
                                                      '{ string_value: "64" } }\n'),
        f"{FP32}/config.pbtxt", "parameters",
    ),
    "execution accelerator": (
        lambda r: _append(r / FP32 / "config.pbtxt", 'optimization { execution_accelerators { cpu_execution_accelerator'
                                                      ' : [ { name : "openvino" } ] } }\n'),
        f"{FP32}/config.pbtxt", "optimization",
    ),
    "labels reordered": (
        lambda r: (r / FP32 / "labels.txt").write_text("1\n0\n2\n3\n4\n5\n6\n7\n8\n9\n"),
        f"{FP32}/labels.txt", "logit order",
    ),
    "labels missing": (lambda r: (r / INT8 / "labels.txt").unlink(), f"{INT8}/labels.txt", "does not exist"),
    "symlinked model": (
        lambda r: (r / FP32 / "1" / "model.onnx").unlink()
        or (r / FP32 / "1" / "model.onnx").symlink_to(r / INT8 / "1" / "model.onnx"),
        f"{FP32}/1/model.onnx", "symlink",
    ),
    "symlinked model folder": (
        lambda r: shutil.rmtree(r / FP32) or (r / FP32).symlink_to(r / INT8), FP32, "symlink",
    ),
    "extra file in 1/": (
        lambda r: (r / FP32 / "1" / "model.plan").write_bytes(b"x"), f"{FP32}/1/model.plan", "not written",
    ),
    "extra file beside config": (
        lambda r: (r / INT8 / "notes.txt").write_text("x"), f"{INT8}/notes.txt", "not written",
    ),
    "foreign model folder": (
        lambda r: shutil.copytree(r / FP32, r / "other_model"), "other_model", "did not write",
    ),
    "int8 model swapped for fp32": (
        lambda r: shutil.copy(r / FP32 / "1" / "model.onnx", r / INT8 / "1" / "model.onnx"),
        f"{INT8}/1/model.onnx", "sha256",
    ),
}  # fmt: skip


@pytest.mark.parametrize("attack", TAMPERING)
def test_verify_names_every_change_triton_would_act_on(repo, attack):
    change, where, fragment = TAMPERING[attack]
    change(repo)
    found = problems(repo)
    assert any(path == repo / where and fragment in text for path, text in found), found


def test_verify_exits_non_zero_on_a_tampered_repository(repo, cli):
    _append(repo / FP32 / "config.pbtxt", 'model_operations { op_library_filename: "/tmp/evil.so" }\n')
    code, text = cli("verify", str(repo))
    assert code == 1 and "model_operations" in text and "Traceback" not in text, text


# --------------------------------------------------------------------------- unbounded reads


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _sparse(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(6 << 30)  # 6 GB on disk in name only


HOSTILE_FILES = {"fifo": _fifo, "/dev/zero": _dev_zero, "6 GB sparse": _sparse}


@pytest.mark.parametrize("target", ["config.pbtxt", "labels.txt", "1/model.onnx"])
@pytest.mark.parametrize("kind", HOSTILE_FILES)
def test_special_and_huge_files_are_refused_before_a_byte_is_read(repo, target, kind):
    """A verify that read these would hang (FIFO) or fill memory (/dev/zero, 6 GB): each is one problem row."""
    path = repo / FP32 / target
    HOSTILE_FILES[kind](path)
    found = problems(repo)
    assert any(p == path and ("not a regular file" in t or "symlink" in t or "more than" in t) for p, t in found), found


@pytest.mark.slow  # a fresh fnnkit process: ~2 s
def test_a_fifo_model_never_hangs_the_command(repo):
    """The same refusal through the real command, bounded in time: a blocking read would hang past the timeout."""
    from clitools import run_fnnkit

    _fifo(repo / FP32 / "1" / "model.onnx")
    result = run_fnnkit("verify", str(repo), timeout=60)
    text = result.stdout + result.stderr
    assert result.returncode == 1 and "1 problem(s)" in text and "regular file │ problem" in text, text


# --------------------------------------------------------------------------- writers


@pytest.mark.parametrize("step", ["staged", "aside", "swapped"])
def test_a_killed_export_is_repaired_by_the_next_one(repo, served_root, step):
    """kill -9 inside a model folder's commit (the two-rename path, where the folder is briefly absent, included):
    the next export puts things right, and verify passes with nothing left over."""
    code = f"""
        import fnnkit.store as store
        import fnnkit.store.commit as commit
        from pathlib import Path
        from fnnkit.export.triton import TritonSettings, write_repository
        commit._exchange = lambda a, b: False  # the fallback: old folder aside, new one in
        write_repository(Path({str(served_root / DATASET / "C")!r}), Path({str(repo)!r}), TritonSettings())
    """
    result = run_python(code, env=child_env(FNNKIT_CRASH_AT=step))
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = sorted(p.name for p in repo.iterdir() if ".old-" in p.name or ".stage-" in p.name)
    assert left, "the kill left nothing behind: it did not land inside the commit"
    if step == "aside":
        assert not (repo / FP32).exists() and problems(repo)  # what the issue saw: reported, with the remedy
        assert any("export killed mid-write" in text for _, text in problems(repo))
    write_repository(served_root / DATASET / "C", repo, TritonSettings())
    assert problems(repo) == []
    assert sorted(p.name for p in repo.iterdir()) == sorted([FP32, INT8, f".{FP32}.lock", f".{INT8}.lock"])


def test_a_legacy_aside_folder_is_put_back(repo, served_root):
    """The writer before this one named its aside folder ``.<model>.old-<pid>``: it is recovered too."""
    (repo / FP32).rename(repo / f".{FP32}.old-{2**22 + 1}")
    write_repository(served_root / DATASET / "C", repo, TritonSettings())
    assert problems(repo) == [] and not any(".old-" in p.name for p in repo.iterdir())


def test_user_files_in_a_model_folder_stop_the_export_before_any_work(repo, served_root, cli):
    (repo / FP32 / "notes.txt").write_text("mine")
    (repo / INT8 / "2").mkdir()
    before = (repo / FP32 / "config.pbtxt").read_bytes()
    result = cli("export", "--format", "triton", "--variant", "C", "--dataset", DATASET,
                 "--artifacts", str(served_root), "--out", str(repo))  # fmt: skip
    assert_user_error(result, "--out", "notes.txt", "move those elsewhere")
    assert (repo / FP32 / "notes.txt").read_text() == "mine" and (repo / FP32 / "config.pbtxt").read_bytes() == before


def test_out_that_is_a_file_and_out_without_triton_are_refused(served_root, tmp_path, cli):
    (tmp_path / "file").write_text("x")
    result = cli("export", "--format", "triton", "--variant", "C", "--artifacts", str(served_root),
                 "--out", str(tmp_path / "file"))  # fmt: skip
    assert_user_error(result, "--out", "is not a folder")
    result = cli("export", "--format", "onnx", "--variant", "C", "--artifacts", str(served_root),
                 "--out", str(tmp_path / "x"))  # fmt: skip
    assert_user_error(result, "--out", "--format triton only")
