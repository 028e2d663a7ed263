"""Untrusted pickles: a pickled checkpoint whose ``__reduce__`` creates a marker file is never unpickled.

The attacker rewrote the file *and* its record (sha256 in model.json / export.json match),
so only the parsers stand between the bytes and code execution. Every entry point that takes
a file is offered the payload; none may create the marker.
"""

from __future__ import annotations

import ast
import io
import pickle
import re
import shutil
from pathlib import Path

import pytest
from clitools import fnnkit_in_process

import fnnkit
from fnnkit.backends import get_backend
from fnnkit.bench import BenchConfig, Job
from fnnkit.bench.measure import measure
from fnnkit.errors import ArtifactError
from fnnkit.export import export_variant
from fnnkit.store import WEIGHTS_FILE, load_trained
from fnnkit.verify import verify

from .helpers import last_json, problems, rerecord_export, rerecord_weights, run_python

FNNKIT = Path(__file__).resolve().parents[2] / "fnnkit"


class _Touch:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def payloads(marker: Path) -> dict[str, bytes]:
    """The same live payload as a bare pickle and as a torch.save checkpoint (a zip holding data.pkl)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"layers.0.weight": _Touch(marker)}, buffer)
    return {"pickle": pickle.dumps(_Touch(marker)), "torch.save": buffer.getvalue()}


@pytest.fixture(params=["pickle", "torch.save"])
def poisoned(request, variant, tmp_path):
    """The variant folder with model.safetensors replaced by a live pickle, its sha256 re-recorded."""
    marker = tmp_path / "marker"
    (variant / WEIGHTS_FILE).write_bytes(payloads(marker)[request.param])
    rerecord_weights(variant)
    return variant, marker


def test_payload_is_live(tmp_path):
    """The control: unpickling the payload really does create the marker, so the refusals below mean something."""
    marker = tmp_path / "marker"
    pickle.loads(payloads(marker)["pickle"])
    assert marker.exists()


def _load(folder: Path) -> None:
    fnnkit.load(str(folder))


def _load_trained(folder: Path) -> None:
    load_trained(folder)


def _export(folder: Path) -> None:
    export_variant(folder, "onnx", force=True)


def _backend(folder: Path) -> None:
    get_backend("eager").load(folder, "cpu", 1)


def _bench_worker(folder: Path) -> None:
    config = BenchConfig(variants=("C",), backends=("onnxruntime",), batch_sizes=(1,))
    measure(Job.of(config, folder, "onnxruntime", "cpu"))  # loads the eager reference first


ENTRY_POINTS = {
    "fnnkit.load": _load,
    "load_trained": _load_trained,
    "export_variant": _export,
    "backend eager": _backend,
    "bench measure": _bench_worker,
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_pickle_as_weights_is_refused_by_every_loader(entry, poisoned):
    folder, marker = poisoned
    with pytest.raises(ArtifactError, match="not a safetensors file") as info:
        ENTRY_POINTS[entry](folder)
    assert str(folder / WEIGHTS_FILE) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["evaluate", "export", "verify"])
def test_pickle_as_weights_is_refused_by_the_cli(command, poisoned, capsys, monkeypatch):
    folder, marker = poisoned
    root = folder.parent.parent
    args = [folder] if command == "verify" else ["-v", "C", "-d", "mnist-sample", "--artifacts", root]
    if command == "export":
        args += ["-f", "onnx", "--force"]
    code, text = fnnkit_in_process(capsys, monkeypatch, command, *map(str, args))
    assert code == (1 if command == "verify" else 2), text
    assert "not a safetensors file" in text and "Traceback" not in text
    assert not marker.exists()


def test_verify_reports_the_pickle_without_loading_it(poisoned):
    folder, marker = poisoned
    found = problems(verify(folder), folder / WEIGHTS_FILE)
    assert len(found) == 1 and "not a safetensors file" in found[0]
    assert not marker.exists()


@pytest.mark.slow  # children that import torch: ~6 s
def test_pickle_in_torchscript_and_pt2_slots_is_never_unpickled(variant, tmp_path):
    """The same payloads as model.torchscript.pt and model.pt2, recorded in export.json, opened by a
    child process (torch parses these formats natively: a crash must not take pytest with it)."""
    marker = tmp_path / "marker"
    for name, data in payloads(marker).items():
        folder = shutil.copytree(variant, tmp_path / name / "C")
        (folder / "model.torchscript.pt").write_bytes(data)
        (folder / "model.pt2").write_bytes(data)
        rerecord_export(folder, "torchscript")
        rerecord_export(folder, "compiled:cpu")
    result = run_python(
        """
        import json, sys
        from pathlib import Path
        from fnnkit.backends import get_backend
        from fnnkit.errors import FnnkitError
        from fnnkit.export import load_exported
        out = {}
        for folder in sys.argv[1:]:
            calls = {"load_exported torchscript": lambda f: load_exported(f, "torchscript"),
                     "load_exported compiled": lambda f: load_exported(f, "compiled"),
                     "backend torchscript": lambda f: get_backend("torchscript").load(f, "cpu", 1),
                     "backend aoti": lambda f: get_backend("aoti").load(f, "cpu", 1)}
            for name, call in calls.items():
                try:
                    call(Path(folder))
                    out[f"{folder} {name}"] = "LOADED"
                except FnnkitError as exc:
                    out[f"{folder} {name}"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
        """,
        *(str(tmp_path / name / "C") for name in ("pickle", "torch.save")),
    )
    outcomes = last_json(result)
    assert len(outcomes) == 8
    for where, outcome in outcomes.items():
        assert outcome.startswith("ArtifactError") and "re-export it" in outcome, (where, outcome)
    assert not marker.exists()


def pickle_offences(path: Path, text: str) -> list[str]:
    """Lines that could unpickle: weights_only=False anywhere, torch.load without weights_only=True,
    pickle/dill/joblib imports, numpy's allow_pickle other than False."""
    offences = [f"{path}: weights_only=False"] if re.search(r"weights_only\s*=\s*False", text) else []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            offences += [f"{path}:{node.lineno}: imports {n}" for n in names
                         if n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle")]  # fmt: skip
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if func.endswith("torch.load") and keywords.get("weights_only") != "True":
            offences.append(f"{path}:{node.lineno}: {func} without weights_only=True")
        if keywords.get("allow_pickle") not in (None, "False"):
            offences.append(f"{path}:{node.lineno}: allow_pickle={keywords['allow_pickle']}")
    return offences


def test_no_pickle_loading_anywhere_in_fnnkit():
    sources = sorted(FNNKIT.rglob("*.py"))
    assert len(sources) > 20
    offences = [line for path in sources for line in pickle_offences(path, path.read_text())]
    assert offences == [], "\n".join(offences)


def test_the_scan_flags_what_it_forbids():
    """The scan is not vacuous: each forbidden form in a sample is reported."""
    sample = (
        "import torch, pickle\n"
        "torch.load(p)\n"
        "torch.load(p, weights_only=True)\n"
        "torch.load(p, weights_only=False)\n"
        "numpy.load(p, allow_pickle=True)\n"
    )
    found = pickle_offences(Path("sample.py"), sample)
    assert found == [
        "sample.py: weights_only=False",
        "sample.py:1: imports pickle",
        "sample.py:2: torch.load without weights_only=True",
        "sample.py:4: torch.load without weights_only=True",
        "sample.py:5: allow_pickle=True",
    ], found
