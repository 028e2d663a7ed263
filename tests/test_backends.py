"""The backend registry with real models: every backend that can run here runs, and agrees with eager.

Parametrized over the registry, so a new backend is tested without editing this file; a
backend that cannot run on this machine is skipped with its own reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fnnkit.backends import BACKENDS, DEVICES, get_backend, ort_session, read_exported, resolve_backends
from fnnkit.errors import ArtifactError, BackendUnavailable, ConfigError, IntegrityError
from fnnkit.export import FP32, export_variant, get_format
from fnnkit.export.parity import measure, reference

DATASET = "mnist-sample"
VARIANT = "A"  # the smallest network: the slowest steps here are compilers, not the model


@pytest.fixture(scope="module")
def folder(trained_root, tmp_path_factory) -> Path:
    """Variant A with every CPU-exportable format, in a private copy of the trained root."""
    target = tmp_path_factory.mktemp("backends") / DATASET / VARIANT
    shutil.copytree(trained_root / DATASET / VARIANT, target)
    formats = {get_backend(n).export_format for n in BACKENDS if get_backend(n).available("cpu")[0]} - {None}
    export_variant(target, [get_format(f) for f in sorted(formats)], device="cpu")
    return target


@pytest.fixture(scope="module")
def test_set(folder, sample_data):
    from fnnkit.artifacts import load_trained
    from fnnkit.data import preprocess

    inputs = preprocess(sample_data.test_x)
    model, _ = load_trained(folder)
    return inputs, sample_data.test_y, reference(model, inputs)


def test_every_backend_has_a_test_path():
    """Each backend declares devices this suite knows, and one that claims the CPU really runs on it here,
    so ``test_backend_matches_eager[...-cpu]`` runs it instead of skipping silently."""
    for name, backend in BACKENDS.items():
        assert backend.devices and set(backend.devices) <= set(DEVICES), name
        assert backend.summary and backend.precision, name
        if "cpu" in backend.devices:
            ok, reason = backend.available("cpu")
            assert ok, f"{name} claims the CPU but is unavailable here: {reason}"
        if backend.precision == "fp32":
            assert backend.tolerance == FP32, f"{name}: an fp32 backend is held to the fp32 tolerance"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_matches_eager(name, device, folder, test_set):
    backend = BACKENDS[name]
    ok, reason = backend.available(device)
    if not ok:
        pytest.skip(reason)
    inputs, labels, eager = test_set
    predictor = backend.load(folder, device, threads=1)
    predictor.warmup(64, rounds=2)
    parity = measure(predictor.predict, inputs, labels, eager, backend.tolerance)
    assert parity.passed, parity
    if backend.precision == "fp32":
        assert parity.max_abs_diff <= 1e-4
        assert parity.accuracy == parity.eager_accuracy


@pytest.mark.parametrize("name", [n for n in BACKENDS if BACKENDS[n].available("cpu")[0]])
def test_prepared_input_is_reused_and_outputs_are_not_aliased(name, folder, test_set):
    predictor = BACKENDS[name].load(folder, "cpu", threads=1)
    inputs = test_set[0]
    first = predictor.prepare(inputs[:8])
    a = predictor.to_host(predictor(first))
    predictor(predictor.prepare(inputs[8:16]))  # a second batch must not overwrite the first result
    assert torch.equal(a, predictor.to_host(predictor(first)))
    assert a.shape == (8, 10) and a.dtype == torch.float32


def test_compile_refuses_to_compile_inside_the_timed_region(folder):
    predictor = get_backend("compile").load(folder, "cpu", threads=1)
    predictor.warmup(8, rounds=1)
    compiled = predictor.compilations
    with predictor.steady():
        predictor(predictor.prepare(torch.rand(16, 784)))  # dynamic batch: no new graph
    assert predictor.compilations == compiled
    with pytest.raises(Exception, match="(?i)recompil"), predictor.steady():
        predictor(predictor.prepare(torch.rand(2, 1, 784)))  # a 3-d input: a new graph, never seen in this process


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the CUDA provider may start; nothing to refuse")
def test_onnxruntime_silent_cpu_fallback_is_refused(folder):
    data, path = read_exported(folder, "onnx", "cpu")
    with pytest.raises(BackendUnavailable, match="fell back to CPUExecutionProvider"):
        ort_session(data, path, ("CUDAExecutionProvider", "CPUExecutionProvider"), {}, threads=1)


def test_cuda_backends_on_this_machine_say_why(folder):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for backend in BACKENDS.values():
        ok, reason = backend.available("cuda")
        assert not ok and reason
        with pytest.raises(BackendUnavailable, match=backend.name):
            backend.load(folder, "cuda", threads=1)


def test_tampered_file_is_refused(folder, tmp_path):
    copy = tmp_path / DATASET / VARIANT
    shutil.copytree(folder, copy)
    onnx_file = copy / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        get_backend("onnxruntime").load(copy, "cpu", threads=1)
    (copy / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(IntegrityError, match="sha256"):
        get_backend("eager").load(copy, "cpu", threads=1)


def test_missing_export_names_the_command(trained_root, tmp_path):
    copy = tmp_path / DATASET / VARIANT
    shutil.copytree(trained_root / DATASET / VARIANT, copy)
    assert get_backend("eager").missing(copy, "cpu") is None
    need = get_backend("onnxruntime-int8").missing(copy, "cpu")
    assert need and "fnnkit export --format onnx-int8 --variant A" in need
    with pytest.raises(ArtifactError, match="fnnkit export --format onnx "):
        get_backend("onnxruntime").load(copy, "cpu", threads=1)
    assert "fnnkit train --variant B" in get_backend("eager").missing(tmp_path / DATASET / "B", "cpu")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown backend 'tensorflow'.*onnxruntime"):
        get_backend("tensorflow")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        get_backend("eager").available("tpu")
    assert [b.name for b in resolve_backends("onnxruntime,eager")] == ["eager", "onnxruntime"]
    assert len(resolve_backends(["all"])) == len(BACKENDS)
