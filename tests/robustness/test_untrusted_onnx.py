"""Untrusted ONNX files: files that point outside themselves, and malformed graphs.

Escaping files: a weight stored as external data at ``../../etc/passwd``, at an absolute path, or in a
symlink leading out of the folder, with the file's sha256 re-recorded (a forger's file):
refused by ``fnnkit verify`` and by every loader, the bench's own ONNX path included
(tests/test_export.py covers ``load_exported``). Malformed graphs: a graph onnx.checker rejects is
reported as a ValidationError naming the file, by verify and by the loaders, before any
onnxruntime session exists, so the bench cannot mistake it for an unavailable backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fnnkit.backends import get_backend, read_exported
from fnnkit.errors import ArtifactError
from fnnkit.export import load_exported
from fnnkit.verify import verify

from .helpers import problems, rerecord_export

ONNX = "model.onnx"


def rewrite(folder: Path, change) -> Path:
    """Apply ``change`` to model.onnx's ModelProto, save it, and re-record its sha256."""
    import onnx

    path = folder / ONNX
    model = onnx.load_model_from_string(path.read_bytes())
    change(model)
    path.write_bytes(model.SerializeToString())
    rerecord_export(folder, "onnx")
    return path


def external(location: str):
    def change(model) -> None:
        import onnx

        tensor = model.graph.initializer[0]
        onnx.external_data_helper.set_external_data(tensor, location=location)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")

    return change


def _onnx_loaders():
    return {
        "load_exported": lambda f: load_exported(f, "onnx"),
        "bench read_exported": lambda f: read_exported(f, "onnx", "cpu"),
        "backend onnxruntime": lambda f: get_backend("onnxruntime").load(f, "cpu", 1),
    }


@pytest.fixture
def no_sessions(monkeypatch) -> list[str]:
    """onnxruntime.InferenceSession replaced by a recorder: a refused file must never reach one."""
    import onnxruntime

    made: list[str] = []

    def session(*args, **kwargs):
        made.append("InferenceSession")
        raise AssertionError("an InferenceSession was created")

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    return made


@pytest.mark.parametrize(
    "location, reason",
    [
        ("../../etc/passwd", "a path outside its folder"),
        ("/etc/passwd", "an absolute path"),
        ("weights.bin", "a symlink out of its folder"),
    ],  # fmt: skip
    ids=["dotdot", "absolute", "symlink"],
)
def test_external_data_outside_the_folder_is_refused(location, reason, variant, no_sessions):
    if location == "weights.bin":
        (variant / location).symlink_to("/etc/passwd")
    path = rewrite(variant, external(location))
    for name, load in _onnx_loaders().items():
        with pytest.raises(ArtifactError, match="external data") as info:
            load(variant)
        assert str(path) in str(info.value) and reason in str(info.value), (name, info.value)
    checks = verify(variant)
    found = problems(checks, path)
    assert len(found) == 1 and "external data" in found[0] and reason in found[0]
    assert [c.check for c in checks if c.file == path and not c.ok] == ["onnx graph"]  # refused before the checker
    if location == "weights.bin":
        assert "symlink" in problems(checks, variant / location)[0]
    assert no_sessions == []


def dangling_input(model) -> None:
    model.graph.node[0].input[0] = "no_such_tensor"


def unknown_operator(model) -> None:
    model.graph.node[0].op_type = "NoSuchOperator"


@pytest.mark.parametrize("change", [dangling_input, unknown_operator], ids=["dangling-input", "unknown-op"])
def test_malformed_graph_is_a_validation_error_naming_the_file(change, variant, no_sessions):
    path = rewrite(variant, change)
    found = problems(verify(variant), path)
    assert len(found) == 1 and "onnx.checker ValidationError" in found[0] and str(path) in found[0], found
    for name, load in _onnx_loaders().items():
        with pytest.raises(ArtifactError, match="onnx.checker ValidationError") as info:
            load(variant)
        assert str(path) in str(info.value), name
    assert no_sessions == []


def test_bytes_that_are_not_onnx_are_named(variant):
    (variant / ONNX).write_bytes(b"\x08\x01 not a protobuf \xff\xff")
    rerecord_export(variant, "onnx")
    found = problems(verify(variant), variant / ONNX)
    assert len(found) == 1 and "not a readable ONNX file" in found[0]
