"""`fnnkit verify`: what a clean folder reports, what the exit codes mean, and that it only reads."""

from __future__ import annotations

import json
import os

from clitools import fnnkit_in_process

from fnnkit.store import EXPORT_MANIFEST, WEIGHTS_FILE
from fnnkit.verify import verify

from .helpers import problems, snapshot, temp_files

ONNX_CHECKS = {"regular file", "current weights", "sha256", "onnx graph"}
NATIVE_CHECKS = {"regular file", "current weights", "sha256"}
EXPECTED_CHECKS = {  # the shared export: every CPU format (tests/conftest.py)
    "model.json": {"schema"},
    WEIGHTS_FILE: {"regular file", "safetensors header", "sha256"},
    EXPORT_MANIFEST: {
        "schema", "entry onnx", "entry torchscript", "entry torchscript-lite", "entry compiled:cpu",
        "entry onnx-int8", "entry onnx-int8-static", "entry onnx-fp16",
    },
    "model.onnx": ONNX_CHECKS,
    "model.int8.onnx": ONNX_CHECKS,
    "model.int8-static.onnx": ONNX_CHECKS,
    "model.fp16.onnx": ONNX_CHECKS,
    "model.torchscript.pt": NATIVE_CHECKS,
    "model.ptl": NATIVE_CHECKS,
    "model.pt2": NATIVE_CHECKS,
}  # fmt: skip


def test_an_exported_folder_passes_every_check(variant):
    checks = verify(variant)
    assert problems(checks) == []
    found: dict[str, set[str]] = {}
    for c in checks:
        found.setdefault(c.file.name, set()).add(c.check)
    assert found == EXPECTED_CHECKS


def test_a_root_is_verified_recursively(trained_root, capsys, monkeypatch):
    checks = verify(trained_root)
    assert problems(checks) == [] and len({c.file.parent.name for c in checks}) == 5
    code, text = fnnkit_in_process(capsys, monkeypatch, "verify", "--artifacts", str(trained_root))
    assert code == 0 and f"all {len(checks)} checks passed" in text and "mnist-sample/E/model.safetensors" in text


def test_one_file(variant):
    checks = verify(variant / "model.onnx")
    assert {c.file.name for c in checks} == {"model.onnx"} and problems(checks) == []
    assert {c.check for c in checks} == EXPECTED_CHECKS["model.onnx"]


def test_problems_exit_1_with_the_table(variant, capsys, monkeypatch):
    manifest = json.loads((variant / EXPORT_MANIFEST).read_text())
    manifest["formats"]["onnx"]["source_sha256"] = "0" * 64  # exported from other weights
    manifest["formats"]["torchscript"]["file"] = "../../elsewhere.pt"
    (variant / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    checks = verify(variant)
    assert [c.check for c in checks if not c.ok] == ["current weights", "entry torchscript", "recorded"]
    assert "no longer matches the trained model" in problems(checks, variant / "model.onnx")[0]
    assert "names file '../../elsewhere.pt', fnnkit writes 'model.torchscript.pt'" in problems(checks)[1]
    code, text = fnnkit_in_process(capsys, monkeypatch, "verify", str(variant))
    assert code == 1 and f"3 problem(s) in 3 of {len(EXPECTED_CHECKS)} file(s)" in text
    assert text.count("problem:") == 3 and "entry torchscript" in text and "current weights" in text


def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch):
    code, text = fnnkit_in_process(capsys, monkeypatch, "verify", str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in text
    code, text = fnnkit_in_process(capsys, monkeypatch, "verify", str(tmp_path))
    assert code == 2 and "no fnnkit artifacts under" in text


def test_verify_only_reads(variant):
    """A dead writer's temp file is noted (the next write or load removes it), not removed by verify."""
    temp = variant / f".model.onnx.tmp-{2**22 + 12345}-deadbeef"  # a pid above Linux's pid_max
    temp.write_bytes(b"half")
    before = snapshot(variant), temp_files(variant), os.stat(variant).st_mtime_ns
    checks = verify(variant)
    assert (snapshot(variant), temp_files(variant), os.stat(variant).st_mtime_ns) == before
    (note,) = [c for c in checks if c.file == temp]
    assert note.ok and "interrupted write" in note.note
