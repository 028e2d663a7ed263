"""Export stage: every variant x every format runs outside fnnkit and matches eager; faults fail safely.

The exports are the session's shared ones (tests/conftest.py: ``exported_root``, and
``compiled_root`` for the four extra AOTInductor compiles, which only the ``slow`` round trips
need); tests that damage files work on private copies of one variant folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from artifactkit import DATASET, PT2_VARIANT
from clitools import assert_user_error

import fnnkit.train
from fnnkit.backends import get_backend
from fnnkit.data import preprocess
from fnnkit.errors import ArtifactError, ConfigError, IntegrityError, ParityError
from fnnkit.export import (
    DEFAULT_OPSET,
    FORMATS,
    core,
    export_variant,
    load_exported,
    read_export_manifest,
    resolve_formats,
)
from fnnkit.formats.pt2 import package_metadata
from fnnkit.store import EXPORT_MANIFEST, WEIGHTS_FILE, load_trained, sha256_file
from fnnkit.train import TrainConfig, train_and_save
from fnnkit.variants import VARIANTS

# How a process with only the format's own runtime opens and runs each file: the README's
# snippets, executed. A registered format missing here fails test_every_format_has_a_standalone_loader.
_ORT = """
import onnxruntime as ort
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
logits = session.run(["logits"], {"input": x})[0]
"""
STANDALONE_LOADERS = {
    "onnx": _ORT,
    "onnx-int8": _ORT,
    "onnx-int8-static": _ORT,
    "onnx-fp16": _ORT,
    "torchscript-lite": """
import torch
from torch.jit.mobile import _load_for_lite_interpreter
model = _load_for_lite_interpreter(path)
logits = model(torch.from_numpy(x)).detach().numpy()
""",
    "torchscript": """
import torch
model = torch.jit.load(path)
logits = model(torch.from_numpy(x)).detach().numpy()
""",
    "compiled": """
import torch, torch._inductor
model = torch._inductor.aoti_load_package(path)
logits = model(torch.from_numpy(x)).numpy()
""",
}
_HARNESS = """
import json, sys
import numpy as np
x = np.load(sys.argv[2])
{loaders}
for fmt, path, out in json.loads(sys.argv[1]):
    np.save(out, np.asarray(LOADERS[fmt](path, x), dtype=np.float32))
assert "fnnkit" not in sys.modules, "the standalone loader imported fnnkit"
"""


def _runtime(fmt: str) -> str:
    """The one runtime a format's standalone loader imports: formats sharing it share a process."""
    return "onnxruntime" if STANDALONE_LOADERS[fmt] is _ORT else "torch"


def standalone_script(formats: list[str]) -> str:
    """One script that defines each format's loader as a function and runs the jobs it is given."""
    loaders = [
        f"def _load_{i}(path, x):\n{textwrap.indent(STANDALONE_LOADERS[fmt].strip(), '    ')}\n    return logits\n"
        for i, fmt in enumerate(formats)
    ]
    table = "LOADERS = {" + ", ".join(f"{fmt!r}: _load_{i}" for i, fmt in enumerate(formats)) + "}"
    return _HARNESS.format(loaders="\n".join([*loaders, table]))


# --------------------------------------------------------------------------- shared exports


@pytest.fixture(scope="session")
def test_inputs(sample_data, tmp_path_factory) -> tuple[torch.Tensor, torch.Tensor, Path]:
    x = preprocess(sample_data.test_x)
    path = tmp_path_factory.mktemp("inputs") / "test_x.npy"
    np.save(path, x.numpy())
    return x, sample_data.test_y, path


@pytest.fixture(scope="session")
def standalone_logits(test_inputs, tmp_path_factory):
    """``get(fmt, root) -> {variant: logits}`` for every variant whose file ``root`` holds.

    One fnnkit-free subprocess per (runtime, root), on demand: it runs every format of that
    runtime on every file present, so the suite starts two such processes, not one per format.
    """
    cache: dict[tuple[str, Path], dict[str, dict[str, np.ndarray]]] = {}

    def get(fmt: str, root: Path) -> dict[str, np.ndarray]:
        key = (_runtime(fmt), root)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"standalone-{key[0]}")
            formats = [f for f in FORMATS if _runtime(f) == key[0]]
            jobs = [(f, str(root / DATASET / v / FORMATS[f].file), str(out / f"{f}-{v}.npy"))
                    for f in formats for v in VARIANTS if (root / DATASET / v / FORMATS[f].file).is_file()]  # fmt: skip
            result = subprocess.run(
                [sys.executable, "-c", standalone_script(formats), json.dumps(jobs), str(test_inputs[2])],
                capture_output=True,
                text=True,
                cwd=out,  # not the repository: nothing named fnnkit on the path by accident
                timeout=300,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            cache[key] = {f: {} for f in formats}
            for f, _path, saved in jobs:
                cache[key][f][Path(saved).stem.removeprefix(f"{f}-")] = np.load(saved)
        return cache[key][fmt]

    return get


@pytest.fixture
def variant_copy(exported_root, tmp_path) -> Path:
    """A private copy of exported variant C (all formats), free to damage."""
    folder = tmp_path / "artifacts" / DATASET / "C"
    shutil.copytree(exported_root / DATASET / "C", folder)
    return folder


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


# --------------------------------------------------------------------------- round trips


def test_every_format_has_a_standalone_loader():
    missing = set(FORMATS) - set(STANDALONE_LOADERS)
    assert not missing, f"registered formats without a round-trip test: {sorted(missing)}"


def _needs_a_compile(fmt: str, variant: str) -> bool:
    """Only ``PT2_VARIANT`` has a shared .pt2 in the fast tier; the others' are compiled for these tests."""
    return fmt == "compiled" and variant != PT2_VARIANT


ROUND_TRIPS = [
    pytest.param(fmt, v, id=f"{fmt}-{v}", marks=[pytest.mark.slow] if _needs_a_compile(fmt, v) else [])
    for v in VARIANTS
    for fmt in FORMATS
]


@pytest.mark.parametrize("fmt, variant", ROUND_TRIPS)
def test_round_trip_without_fnnkit_matches_eager(fmt, variant, exported_root, test_inputs, standalone_logits, request):
    """The file alone, in a process that never imports fnnkit, computes what the trained model does."""
    x, labels, _ = test_inputs
    model, _card = load_trained(exported_root / DATASET / variant)
    with torch.inference_mode():
        eager = model(x)
    root = request.getfixturevalue("compiled_root") if _needs_a_compile(fmt, variant) else exported_root
    logits = torch.from_numpy(standalone_logits(fmt, root)[variant])
    tol = get_backend(FORMATS[fmt].backend).tolerance  # the one tolerance table: the proving backend's
    agreement = 100.0 * (logits.argmax(1) == eager.argmax(1)).float().mean().item()
    accuracy_drop = 100.0 * ((eager.argmax(1) == labels).float().mean() - (logits.argmax(1) == labels).float().mean())
    assert logits.shape == (len(x), 10) and torch.isfinite(logits).all()
    if tol.max_abs_diff is not None:
        assert (logits - eager).abs().max().item() <= tol.max_abs_diff
    assert agreement >= tol.min_agreement
    if tol.max_accuracy_drop is not None:
        assert accuracy_drop.item() <= tol.max_accuracy_drop


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_manifest_records_each_export(fmt, exported_root):
    variant = PT2_VARIANT if fmt == "compiled" else "D"  # the shared root holds one .pt2
    folder = exported_root / DATASET / variant
    manifest = read_export_manifest(folder)
    entry = manifest["formats"][FORMATS[fmt].key("cpu")]
    assert manifest["schema"] == "fnnkit.export/1" and manifest["variant"] == variant
    assert entry["sha256"] == sha256_file(folder / entry["file"])
    assert entry["bytes"] == (folder / entry["file"]).stat().st_size
    assert entry["source_sha256"] == sha256_file(folder / WEIGHTS_FILE)
    assert entry["parity"]["passed"] and entry["parity"]["samples"] == 1000
    assert entry["export_seconds"] > 0 and entry["device"] == "cpu"
    assert {"torch", "onnx", "onnxruntime"} <= set(entry["versions"])
    assert (entry["versions"].get("opset") == DEFAULT_OPSET) == FORMATS[fmt].uses_opset


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_loaded_export_has_a_dynamic_batch(fmt, exported_root):
    variant = PT2_VARIANT if fmt == "compiled" else "E"  # the shared root holds one .pt2
    loaded = load_exported(exported_root / DATASET / variant, fmt, "cpu")
    for batch in (1, 3, 257):
        assert loaded.predict(np.random.default_rng(0).random((batch, 784), np.float32)).shape == (batch, 10)


def test_onnx_file_is_self_contained_and_documented(exported_root):
    import onnx

    folder = exported_root / DATASET / "B"
    model = onnx.load(folder / "model.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    assert props["variant"] == "B" and props["dataset"] == DATASET and props["fnnkit_version"]
    assert props["source_sha256"] == sha256_file(folder / WEIGHTS_FILE) and float(props["test_accuracy"]) > 50
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [DEFAULT_OPSET]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not [p for p in folder.iterdir() if p.suffix == ".data" or "external" in p.name]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # torch 2.14
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")  # torch 2.11
def test_torchscript_carries_the_metadata(exported_root):
    extra = {"fnnkit.json": ""}
    folder = exported_root / DATASET / "A"
    torch.jit.load(str(folder / "model.torchscript.pt"), _extra_files=extra)
    assert json.loads(extra["fnnkit.json"])["source_sha256"] == sha256_file(folder / WEIGHTS_FILE)


def test_reexport_reuses_unchanged_files_and_force_rebuilds(variant_copy):
    files = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in variant_copy.iterdir() if p.is_file()}
    results = export_variant(variant_copy, list(FORMATS.values()))
    assert {r.status for r in results} == {"reused"}
    for result in results:  # reused means untouched: not rewritten, not even with the same bytes
        mtime, data = files[result.path.name]
        assert result.path.stat().st_mtime_ns == mtime and result.path.read_bytes() == data
    before = sha256_file(variant_copy / "model.onnx")
    (forced,) = export_variant(variant_copy, "onnx", force=True)
    assert forced.status == "exported" and forced.sha256 == sha256_file(variant_copy / "model.onnx")
    assert forced.sha256 == before  # the dynamo exporter is deterministic for the same weights


def test_retrained_weights_are_exported_again(variant_copy, sample_data):
    root = variant_copy.parent.parent
    train_and_save(
        VARIANTS["C"], sample_data, root, TrainConfig(iterations=50, eval_every=50, seed=1), replace_worse=True
    )
    (result,) = export_variant(variant_copy, "onnx")
    assert result.status == "exported"
    assert read_export_manifest(variant_copy)["formats"]["onnx"]["source_sha256"] == sha256_file(
        variant_copy / WEIGHTS_FILE
    )


def test_all_means_fp16_only_for_cuda():
    assert [f.name for f in resolve_formats("all", "cpu")] == [
        "onnx", "torchscript", "compiled", "onnx-int8", "onnx-int8-static"
    ]  # fmt: skip
    assert "onnx-fp16" in [f.name for f in resolve_formats("all", "cuda")]
    assert [f.name for f in resolve_formats("compiled,onnx", "cpu")] == ["onnx", "compiled"]
    assert len(resolve_formats("all,onnx-fp16,torchscript-lite", "cpu")) == len(FORMATS)
    assert FORMATS["compiled"].filename("cuda") == "model.cuda.pt2"


# --------------------------------------------------------------------------- bad input and faults


def test_unknown_format_lists_the_valid_ones(tmp_path, cli):
    with pytest.raises(
        ConfigError, match="onnx, torchscript, torchscript-lite, compiled, onnx-int8, onnx-int8-static, onnx-fp16, all"
    ):
        resolve_formats("tflite")
    result = cli("export", "--format", "tflite", "--artifacts", str(tmp_path))
    assert_user_error(
        result, "unknown format 'tflite'", "torchscript-lite, compiled, onnx-int8, onnx-int8-static, onnx-fp16, all"
    )


def test_bad_opset_is_refused(tmp_path, cli):
    assert_user_error(cli("export", "--opset", "7", "--artifacts", str(tmp_path)), "--opset 7 is outside")


def test_missing_trained_model_gives_the_command(tmp_path, cli):
    result = cli("export", "--format", "onnx", "-v", "C", "-d", DATASET, "--artifacts", str(tmp_path))
    assert_user_error(
        result, f"fnnkit train --variant C --dataset {DATASET} --artifacts {tmp_path}", "--train-if-missing"
    )


def test_cli_trains_if_missing(tmp_path, monkeypatch, cli):
    """In-process, with training shortened: the flag's path, not the tutorial's 3,000 steps, is under test."""

    full = fnnkit.train.train_and_save
    short = fnnkit.train.TrainConfig(iterations=50, eval_every=50)
    monkeypatch.setattr(fnnkit.train, "train_and_save", lambda spec, data, root, **kw: full(spec, data, root, short))
    args = ["export", "-f", "torchscript", "-v", "A", "-d", DATASET, "--train-if-missing", "--artifacts", str(tmp_path)]
    code, text = cli(*args)
    assert code == 0, text
    assert "training A on mnist-sample" in text
    assert load_exported(tmp_path / DATASET / "A", "torchscript").predict(
        np.random.default_rng(0).random((2, 784), np.float32)
    ).shape == (2, 10)


def test_cli_exports_and_prints_the_table(variant_copy, cli):
    root = variant_copy.parent.parent
    code, text = cli("export", "-f", "onnx,onnx-int8", "-v", "C", "-d", DATASET, "--artifacts", str(root))
    assert code == 0, text
    assert "model.int8.onnx" in text and "reused" in text and "agreement" in text


def test_changed_weights_are_refused(variant_copy, cli):
    weights = variant_copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    before = (variant_copy / "model.onnx").read_bytes()
    with pytest.raises(IntegrityError, match=str(weights)):
        export_variant(variant_copy, "onnx", force=True)
    assert (variant_copy / "model.onnx").read_bytes() == before
    result = cli("export", "-f", "onnx", "-v", "C", "-d", DATASET, "--artifacts", str(variant_copy.parent.parent))
    assert_user_error(result, "model.safetensors", "Refusing to load it")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_truncated_export_is_refused_naming_the_file(fmt, variant_copy):
    path = variant_copy / FORMATS[fmt].file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IntegrityError, match=str(path)):
        load_exported(variant_copy, fmt)


def test_corrupt_export_is_rebuilt_not_reused(variant_copy):
    path = variant_copy / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    (result,) = export_variant(variant_copy, "onnx")
    assert result.status == "exported"
    assert load_exported(variant_copy, "onnx").predict(np.random.default_rng(0).random((2, 784), np.float32)).shape == (
        2,
        10,
    )


def test_failed_parity_keeps_the_previous_file(variant_copy, monkeypatch):
    def write_wrong_model(ctx, temp):
        broken = dataclasses.replace(ctx, model=torch.nn.Sequential(torch.nn.Linear(784, 10)))
        write(broken, temp)

    write = core.WRITERS["torchscript"]
    monkeypatch.setitem(core.WRITERS, "torchscript", write_wrong_model)
    bad = FORMATS["torchscript"]
    before = (variant_copy / "model.torchscript.pt").read_bytes()
    manifest = (variant_copy / EXPORT_MANIFEST).read_bytes()
    with pytest.raises(ParityError, match="disagrees with eager"):
        export_variant(variant_copy, [bad], force=True)
    assert (variant_copy / "model.torchscript.pt").read_bytes() == before
    assert (variant_copy / EXPORT_MANIFEST).read_bytes() == manifest
    assert temp_files(variant_copy) == []


@contextlib.contextmanager
def _as_unprivileged_user():
    """Root ignores permission bits; as root, become `nobody` (real and effective uid) for the block.

    The saved uid stays 0, which is what allows switching back afterwards.
    """
    if os.geteuid() != 0:
        yield
        return
    try:
        nobody = pwd.getpwnam("nobody")
        os.setresgid(nobody.pw_gid, nobody.pw_gid, 0)
        os.setresuid(nobody.pw_uid, nobody.pw_uid, 0)
    except (KeyError, PermissionError) as exc:
        os.setresgid(0, 0, 0)
        pytest.skip(f"running as root without a way to drop to 'nobody' ({exc}): permission bits cannot bind")
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)


def test_unwritable_export_folder_is_refused(variant_copy):
    """A folder fnnkit may read but not write: a clear error before any work, old files intact."""
    base = Path(tempfile.mkdtemp(prefix="fnnkit-ro-"))  # pytest's tmp is 0700: `nobody` could not even enter it
    folder = base / DATASET / "C"
    try:
        shutil.copytree(variant_copy, folder)
        for path in (base, base / DATASET):
            path.chmod(0o755)
        for path in folder.iterdir():
            path.chmod(0o644)
        folder.chmod(0o555)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        with _as_unprivileged_user(), pytest.raises(ArtifactError, match=f"{folder} is not writable"):
            export_variant(folder, "onnx", force=True)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    finally:
        with contextlib.suppress(FileNotFoundError):
            folder.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow  # a child killed during an export: ~6 s
def test_kill_during_export_keeps_the_previous_file(variant_copy, tmp_path):
    """SIGKILL while a new file is still temporary: the old file stays, the next operation sweeps the temp."""
    marker = tmp_path / "writing"
    script = textwrap.dedent(f"""
        import pathlib, time
        import fnnkit.export.parity as parity

        def stall(*args, **kwargs):  # the new file is written, not yet checked nor renamed
            pathlib.Path({str(marker)!r}).touch()
            time.sleep(600)

        parity.measure = stall
        from fnnkit.export import export_variant
        export_variant({str(variant_copy)!r}, "onnx", force=True)
    """)
    before = (variant_copy / "model.onnx").read_bytes()
    manifest = (variant_copy / EXPORT_MANIFEST).read_bytes()
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the exporting process ended before it was killed"
            assert time.monotonic() < deadline, "the export never reached its parity check"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    stages = lambda: [p.name for p in variant_copy.parent.iterdir() if ".stage-" in p.name]  # noqa: E731
    assert stages(), "no staging folder: kill landed late"
    assert (variant_copy / "model.onnx").read_bytes() == before
    assert (variant_copy / EXPORT_MANIFEST).read_bytes() == manifest
    load_exported(variant_copy, "onnx")
    export_variant(variant_copy, "onnx")  # the next write takes the lock and sweeps the dead writer's stage
    assert temp_files(variant_copy) == [] and stages() == []


def _point_at_external_data(folder: Path, location: str) -> Path:
    """Rewrite model.onnx so a weight lives in ``location``; re-record its sha256 as a forger would."""
    import onnx

    path = folder / "model.onnx"
    model = onnx.load(path)
    tensor = model.graph.initializer[0]
    onnx.external_data_helper.set_external_data(tensor, location=location)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    path.write_bytes(model.SerializeToString())
    manifest = json.loads((folder / EXPORT_MANIFEST).read_text())
    manifest["formats"]["onnx"]["sha256"] = sha256_file(path)
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(
    "location, reason",
    [
        ("../../etc/passwd", "a path outside its folder"),
        ("/etc/passwd", "an absolute path"),
        ("weights.bin", "a symlink out of its folder"),
        ("model.data", "a file beside it"),
    ],
)
def test_onnx_with_external_data_is_refused(location, reason, variant_copy):
    if location == "weights.bin":
        (variant_copy / location).symlink_to("/etc/passwd")
    path = _point_at_external_data(variant_copy, location)
    with pytest.raises(ArtifactError, match="external data") as info:
        load_exported(variant_copy, "onnx")
    assert reason in str(info.value) and str(path) in str(info.value)


def test_symlinked_export_file_is_refused(variant_copy, tmp_path):
    elsewhere = tmp_path / "elsewhere.onnx"
    shutil.move(variant_copy / "model.onnx", elsewhere)
    (variant_copy / "model.onnx").symlink_to(elsewhere)
    with pytest.raises(ArtifactError, match="symlink"):
        load_exported(variant_copy, "onnx")


def test_missing_export_names_the_command(variant_copy):
    (variant_copy / EXPORT_MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="fnnkit export --format onnx --variant C"):
        load_exported(variant_copy, "onnx")


# --------------------------------------------------------------------------- GPU


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_cuda_exports_round_trip(variant_copy):
    import onnxruntime as ort

    torch_formats = ["torchscript", "compiled"]
    onnx_formats = [f for f in FORMATS if FORMATS[f].runtime == "onnxruntime"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        onnx_formats = []  # e.g. the CPU-only onnxruntime wheel: the torch formats are still checked
    results = export_variant(variant_copy, ",".join(torch_formats + onnx_formats), device="cuda")
    assert [r.format for r in results] == [f for f in FORMATS if f in torch_formats + onnx_formats]
    assert all(r.parity["passed"] and r.status == "exported" for r in results)
    assert (variant_copy / "model.cuda.pt2").is_file() and (variant_copy / "model.pt2").is_file()
    for fmt in torch_formats + onnx_formats:
        assert load_exported(variant_copy, fmt, "cuda").predict(
            np.random.default_rng(0).random((5, 784), np.float32)
        ).shape == (5, 10)
    assert {"compiled:cpu", "compiled:cuda"} <= set(read_export_manifest(variant_copy)["formats"])


# --------------------------------------------------------------------------- portable .pt2


def evex_instructions(library: Path) -> list[str]:
    """AVX-512 instructions in a shared library: EVEX-encoded (first opcode byte 0x62) or naming zmm/k registers."""
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed, so the library cannot be disassembled here")
    listing = subprocess.run([objdump, "-d", str(library)], capture_output=True, text=True)
    assert listing.returncode == 0 and "ret" in listing.stdout, listing.stderr
    prefixes = {"66", "67", "f2", "f3", "2e", "3e", "26", "64", "65", "36"}  # legacy prefixes before an opcode
    found = []
    for line in listing.stdout.splitlines():
        parts = line.split("\t")  # "  addr:", raw bytes, mnemonic and operands
        if len(parts) >= 3 and parts[0].strip().endswith(":"):
            opcodes = [b for b in parts[1].split() if b not in prefixes]
            if opcodes[:1] == ["62"] or "%zmm" in parts[2] or "{%k" in parts[2]:
                found.append(line)
    return found


def test_default_pt2_has_no_avx512_instructions(exported_root, tmp_path):
    """The default package runs on any AVX2 CPU: its kernels hold no EVEX/zmm instruction, and it says so."""
    import zipfile

    folder = exported_root / DATASET / PT2_VARIANT
    data = (folder / "model.pt2").read_bytes()
    metadata = package_metadata(data, folder / "model.pt2")
    assert metadata["fnnkit_isa"] == "avx2" and "avx512f" not in metadata["fnnkit_isa_flags"].split()
    assert read_export_manifest(folder)["formats"]["compiled:cpu"]["isa"] == "avx2"
    with zipfile.ZipFile(folder / "model.pt2") as archive:
        libraries = [n for n in archive.namelist() if n.endswith(".so")]
        assert libraries
        for name in libraries:
            archive.extract(name, tmp_path)
    for name in libraries:
        assert evex_instructions(tmp_path / name) == [], name


def test_package_for_instructions_this_cpu_lacks_is_refused_before_loading(exported_root):
    """The loader reads the ISA record from the zip and refuses in one line; the library is never mapped."""
    import io
    import zipfile

    path = exported_root / DATASET / PT2_VARIANT / "model.pt2"
    source, target = zipfile.ZipFile(path), io.BytesIO()
    with zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("_metadata.json"):
                meta = json.loads(data) | {"fnnkit_isa": "native", "fnnkit_isa_flags": "avx2 amx_imaginary"}
                data = json.dumps(meta).encode()
            out.writestr(item, data)
    with pytest.raises(ArtifactError, match=r"compiled for isa native, and this CPU lacks amx_imaginary"):
        get_backend("aoti").open(target.getvalue(), path, "cpu", 1)
