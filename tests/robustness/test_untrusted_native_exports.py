"""Untrusted native exports: ``.pt2`` and TorchScript files can carry native code and pickles, so
their sha256 is checked before torch sees a byte, and there is no way to open one unverified.

Changed files: one byte changed -> refused by the hash; torch's openers are replaced by tripwires
that record any call, so "before torch opens them" is observed, not assumed. No bypass: fnnkit
offers no ``--no-verify``; an unrecorded file is refused, and garbage that a forger recorded in
export.json is opened (fnnkit trusts its own record) in a child here, where it must end as a
clean error, not a crash.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from clitools import fnnkit_in_process

from fnnkit.backends import get_backend
from fnnkit.errors import ArtifactError, IntegrityError
from fnnkit.export import load_exported
from fnnkit.formats import manifest
from fnnkit.store import EXPORT_MANIFEST
from fnnkit.verify import verify

from .helpers import REPO, flip_byte, last_json, problems, rerecord_export, run_python

NATIVE = {"torchscript": ("model.torchscript.pt", "torchscript"), "compiled": ("model.pt2", "aoti")}


class Opened(BaseException):
    """Raised by a tripwire; a BaseException, so no ``except Exception`` in a loader can hide it."""


@pytest.fixture
def tripwires(monkeypatch) -> list[str]:
    """torch.jit.load and aoti_load_package replaced by functions that record the call and stop."""
    import torch
    import torch._inductor

    calls: list[str] = []

    def wire(name: str):
        def opened(*args, **kwargs):
            calls.append(name)
            raise Opened(name)

        return opened

    monkeypatch.setattr(torch.jit, "load", wire("torch.jit.load"))
    monkeypatch.setattr(torch._inductor, "aoti_load_package", wire("aoti_load_package"))
    return calls


def _loaders(fmt: str, backend: str):
    return {
        "load_exported": lambda f: load_exported(f, fmt),
        f"backend {backend}": lambda f: get_backend(backend).load(f, "cpu", 1),
    }  # noqa: E501


@pytest.mark.parametrize("fmt", list(NATIVE))
def test_tripwires_are_on_the_real_path(fmt, variant, tripwires):
    """The control: an intact file does reach torch's opener (so the tripwire would see a tampered one)."""

    with pytest.raises(Opened):
        load_exported(variant, fmt)
    assert len(tripwires) == 1


@pytest.mark.parametrize("fmt", list(NATIVE))
def test_one_changed_byte_is_refused_before_torch_opens_the_file(fmt, variant, tripwires, capsys, monkeypatch):
    name, backend = NATIVE[fmt]
    path = variant / name
    flip_byte(path, path.stat().st_size // 2)
    for load in _loaders(fmt, backend).values():
        with pytest.raises(IntegrityError, match="changed or damaged") as info:
            load(variant)
        assert str(path) in str(info.value)
    found = problems(verify(variant), path)
    assert len(found) == 1 and "sha256" in found[0]
    code, text = fnnkit_in_process(capsys, monkeypatch, "verify", str(variant))
    assert code == 1 and "changed or damaged" in text
    assert tripwires == []


def test_there_is_no_unverified_open():
    """No --no-verify flag exists, and torch's two openers are called only on bytes passed in
    (``io.BytesIO(data)``), which ``read_exported`` hands over after the sha256 check."""
    sources = {p: p.read_text() for p in (REPO / "fnnkit").rglob("*.py")}
    assert not [p for p, text in sources.items() if re.search(r"no[-_]verify|skip[-_]verif", text)]
    opens = [
        (path.name, ast.unparse(node))
        for path, text in sources.items()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("jit.load", "aoti_load_package"))
    ]
    assert len(opens) == 2 and all("(io.BytesIO(data)" in call for _, call in opens), opens

    from fnnkit.store import artifact

    assert "artifact.exported(fmt, device)" in Path(manifest.__file__).read_text()  # read_exported's bytes are...
    assert "read_verified(path, entry.sha256" in Path(artifact.__file__).read_text()  # ...sha256-checked there


@pytest.mark.parametrize("how", ["no export.json", "no entry"])
@pytest.mark.parametrize("fmt", list(NATIVE))
def test_unrecorded_file_is_refused_unopened(fmt, how, variant, tripwires):
    name, backend = NATIVE[fmt]
    manifest = json.loads((variant / EXPORT_MANIFEST).read_text())
    if how == "no export.json":
        (variant / EXPORT_MANIFEST).unlink()
    else:
        del manifest["formats"]["torchscript" if fmt == "torchscript" else "compiled:cpu"]
        (variant / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    for load in _loaders(fmt, backend).values():
        with pytest.raises(ArtifactError, match=f"fnnkit export --format {fmt}"):
            load(variant)
    found = problems(verify(variant), variant / name)
    assert len(found) == 1 and "not recorded" in found[0] and "will not load it" in found[0]
    assert tripwires == []


def test_a_stray_native_file_outside_any_folder_is_reported_unopened(tmp_path, tripwires):
    stray = tmp_path / "downloaded.pt2"
    stray.write_bytes(os.urandom(4096))
    (check,) = verify(stray)
    assert not check.ok and "cannot verify it and will not load it" in check.problem
    assert tripwires == []


def _junk_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("model/data.pkl", b"\x80\x04junk")
        z.writestr("model/code/__torch__.py", "def forward(self, x): return x\n")
        z.writestr("model/data/aotinductor/model/model.so", os.urandom(2048))
    return buffer.getvalue()


@pytest.mark.slow  # children that import torch: ~6 s
def test_garbage_with_a_forged_record_ends_as_an_error_in_a_child(variant, tmp_path):
    """Random bytes and a zip of junk entries, recorded in export.json: opened by torch in a child;
    each must become an ArtifactError naming the file, and the child must exit normally."""
    folders = {}
    for kind, data in {"random": os.urandom(64 << 10), "junk zip": _junk_zip(), "empty": b""}.items():
        folder = shutil.copytree(variant, tmp_path / kind.replace(" ", "-") / "C")
        for name, _ in NATIVE.values():
            (folder / name).write_bytes(data)
        rerecord_export(folder, "torchscript")
        rerecord_export(folder, "compiled:cpu")
        folders[kind] = str(folder)
    result = run_python(
        """
        import json, sys
        from fnnkit.errors import FnnkitError
        from fnnkit.export import load_exported
        out = {}
        for kind, folder in json.loads(sys.argv[1]).items():
            for fmt in ("torchscript", "compiled"):
                try:
                    load_exported(folder, fmt)
                    out[f"{kind} {fmt}"] = "LOADED"
                except FnnkitError as exc:
                    out[f"{kind} {fmt}"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
        """,
        json.dumps(folders),
    )
    outcomes = last_json(result)
    assert len(outcomes) == 6
    for where, outcome in outcomes.items():
        file = "model.torchscript.pt" if where.endswith("torchscript") else "model.pt2"
        assert outcome.startswith("ArtifactError") and file in outcome and "re-export it" in outcome, (where, outcome)
